/**
 * The model the end-to-end runs use: a deterministic seeded checkpoint (shards/make-model.ts) converted to
 * a Tandem package (shards/convert.ts), made once under .tandem/e2e/ and reused. Same options -> same
 * bytes, so a cached folder is as good as a fresh one; the folder name carries a hash of the generator and
 * converter sources, so a change there makes a new one. Built in a temporary folder and renamed into place,
 * so parallel test files never see half a package.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { convertCheckpoint } from '../shards/convert.ts';
import { writeModel, type Preset } from '../shards/make-model.ts';
import { parseManifest, type ModelManifest, type PackageDType } from '../shards/manifest.ts';

export const E2E_CACHE_DIR = resolve('.tandem/e2e');

export interface ModelFixture {
  /** Hugging Face style checkpoint folder (config.json, model.safetensors, tokenizer files). */
  checkpointDir: string;
  /** Tandem package folder (manifest.json + unit blobs + tokenizer files). */
  packageDir: string;
  manifest: ModelManifest;
}

export interface ModelFixtureOptions {
  preset: Preset;
  dtype?: PackageDType;
  seed?: number;
  /** Package name (default `e2e-<preset>-<dtype>`). */
  name?: string;
}

export async function ensureModelFixture(o: ModelFixtureOptions): Promise<ModelFixture> {
  const dtype = o.dtype ?? 'fp32';
  const seed = o.seed ?? 1234;
  const name = o.name ?? `e2e-${o.preset}-${dtype}`;
  const root = join(E2E_CACHE_DIR, `${name}-s${seed}-${generatorHash()}`);
  const checkpointDir = join(root, 'checkpoint');
  const packageDir = join(root, name);
  const manifestPath = join(packageDir, 'manifest.json');
  if (!existsSync(manifestPath)) {
    // A folder without a manifest is debris of an older layout or a killed run.
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
    const tmp = `${root}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeModel(join(tmp, 'checkpoint'), { preset: o.preset, seed });
    await convertCheckpoint(join(tmp, 'checkpoint'), join(tmp, name), { dtype, name });
    mkdirSync(E2E_CACHE_DIR, { recursive: true });
    try {
      renameSync(tmp, root);
    } catch {
      // Another process finished first (rename onto a non-empty folder fails): use theirs.
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const manifest = parseManifest(JSON.parse(readFileSync(manifestPath, 'utf8')));
  return { checkpointDir, packageDir, manifest };
}

/** Short hash of the sources that decide the package bytes. */
function generatorHash(): string {
  const h = createHash('sha256');
  for (const f of [
    'make-model.ts',
    'convert.ts',
    'package-layout.ts',
    'quantize.ts',
    'safetensors.ts',
    'manifest.ts',
  ]) {
    const path = resolve('shards', f);
    h.update(existsSync(path) ? readFileSync(path) : f);
  }
  return h.digest('hex').slice(0, 10);
}
