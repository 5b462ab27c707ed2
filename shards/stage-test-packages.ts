/**
 * Test helper (Node): builds small model packages with the project's own make-model + converter into a
 * temporary folder, once per (arch, tied, dtype) per process, and loads their verified unit bytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertCheckpoint } from './convert.ts';
import type { Architecture, PackageDType, UnitEntry } from './manifest.ts';
import { writeModel, type ModelShape } from './make-model.ts';
import { PackageReader } from './package-reader.ts';

export interface TestPackage {
  dir: string;
  reader: PackageReader;
  /** unit file name -> verified bytes */
  blobs: Map<string, Uint8Array>;
  unitBytes(unit: UnitEntry): Uint8Array;
}

/** Small shapes: fast in an fp64 reference, still with GQA (4 query heads on 2 kv heads). */
export const TEST_SHAPE: Partial<ModelShape> = {
  vocab_size: 384,
  hidden_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  intermediate_size: 96,
  num_hidden_layers: 4,
};

const root = mkdtempSync(join(tmpdir(), 'tandem-test-packages-'));
const made = new Map<string, Promise<TestPackage>>();

/** Removes every package and folder this module made (call from afterAll; vitest may end workers without 'exit'). */
export function removeTestPackages(): void {
  made.clear();
  rmSync(root, { recursive: true, force: true });
}

/** A fresh folder inside this module's test root (removed by removeTestPackages). */
export function testTempDir(prefix: string): string {
  return mkdtempSync(join(root, `${prefix}-`));
}

export function testPackage(
  arch: Architecture,
  tied: boolean,
  dtype: PackageDType,
  shape: Partial<ModelShape> = TEST_SHAPE,
): Promise<TestPackage> {
  const key = `${arch}-${tied ? 'tied' : 'untied'}-${dtype}-${JSON.stringify(shape)}`;
  let p = made.get(key);
  if (!p) {
    p = (async () => {
      const name = `${arch}-${tied ? 'tied' : 'untied'}-${dtype}-${made.size}`;
      const ckpt = join(root, `${name}-ckpt`);
      const dir = join(root, name);
      writeModel(ckpt, { preset: 'tiny', arch, tied, dtype: 'fp32', seed: 42, overrides: shape });
      await convertCheckpoint(ckpt, dir, { dtype });
      const reader = PackageReader.open(dir);
      const blobs = new Map<string, Uint8Array>();
      for (const u of reader.manifest.units) blobs.set(u.file, await reader.readUnit(u));
      return { dir, reader, blobs, unitBytes: (u: UnitEntry) => blobs.get(u.file)! };
    })();
    made.set(key, p);
  }
  return p;
}
