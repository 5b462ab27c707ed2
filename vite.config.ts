// vitest/config's defineConfig is vite's, typed with the `test` block.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// COOP/COEP make the page cross-origin isolated, which onnxruntime-web needs for wasm threads.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: 'client',
  base: './',
  build: {
    outDir: '../dist/client',
    emptyOutDir: true,
    target: 'es2022',
    // the page, and the transformers.js anchor the bench measures it against (npm run bench:anchor)
    rolldownOptions: {
      input: {
        main: fileURLToPath(new URL('./client/index.html', import.meta.url)),
        transformersAnchor: fileURLToPath(new URL('./client/anchor.html', import.meta.url)),
      },
    },
  },
  // the inference worker is an ES module worker (onnxruntime-web is an ES module)
  worker: { format: 'es' },
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
  test: {
    root: '.',
    include: [
      'core/**/*.test.ts',
      'planner/**/*.test.ts',
      'shards/**/*.test.ts',
      'signaling/**/*.test.ts',
      'client/**/*.test.ts',
      'e2e/**/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
