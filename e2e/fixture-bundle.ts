/**
 * Builds the fixture page scripts (e2e/fixtures/*-page.ts) into single IIFE files with Vite, so that a blank
 * page served by the fixture server can run the client's real transport code without the whole app.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'vite';

/** Default output folder (gitignored). */
export const FIXTURE_BUILD_DIR = resolve('.tandem/e2e-fixtures');

/** Bundle `e2e/fixtures/<name>.ts` to `<outDir>/<name>.js`; returns outDir. */
export async function bundleFixture(name: string, outDir = FIXTURE_BUILD_DIR): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    configFile: false,
    logLevel: 'warn',
    root: resolve('.'),
    build: {
      outDir,
      emptyOutDir: false,
      minify: false,
      target: 'es2022',
      lib: {
        entry: join(resolve('e2e/fixtures'), `${name}.ts`),
        formats: ['iife'],
        name: name.replace(/\W/g, '_'),
        fileName: () => `${name}.js`,
      },
    },
  });
  return outDir;
}
