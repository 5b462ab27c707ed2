// vitest/config's defineConfig is vite's, typed with the `test` block.
import { defineConfig } from 'vitest/config';

// COOP/COEP make the page cross-origin isolated, which onnxruntime-web needs for wasm threads.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: 'client',
  base: './',
  build: { outDir: '../dist/client', emptyOutDir: true, target: 'es2022' },
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
