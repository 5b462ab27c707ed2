/**
 * A narrowed manifest describes a consistent package: an embed + layer + head stage built from it, fed the
 * first W rows of the real embedding and head tables, gives exactly the first W logits of the full-vocabulary
 * stage for ids below W (onnxruntime-web wasm in Node), for float32 and q4 packages, tied or not.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { getTensor, headDim, unitsForRange, type ModelManifest, type UnitEntry } from './manifest.ts';
import { narrowVocabulary } from './narrow-vocabulary.ts';
import { createNodeRuntime } from './runtime/ort-node.ts';
import { idsTensor, StageStepper } from './runtime/stage-stepper.ts';
import { stageSessionConfig } from './stage-graph.ts';
import { removeTestPackages, testPackage } from './stage-test-packages.ts';

afterAll(() => removeTestPackages());

const W = 40;
const PROMPT = [3, 17, 0, 39, 22];

/**
 * Unit bytes of the narrowed manifest, copied from the real unit: a tensor narrowed in its first dimension
 * keeps its leading rows, one narrowed in its last (the head's (H, V)) the leading bytes of every row.
 */
function narrowedBytes(full: UnitEntry, narrow: UnitEntry, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(narrow.bytes);
  for (const t of narrow.tensors) {
    const src = getTensor(full, t.name);
    const rows = t.shape.length > 1 && t.shape[0] === src.shape[0] ? t.shape[0] : 1;
    const [from, to] = [src.length / rows, t.length / rows];
    for (let r = 0; r < rows; r++)
      out.set(bytes.subarray(src.offset + r * from, src.offset + r * from + to), t.offset + r * to);
  }
  return out;
}

async function lastLogits(manifest: ModelManifest, unitData: (u: UnitEntry) => Uint8Array): Promise<Float32Array> {
  const spec = { layers: { start: 0, end: 2 }, embeds: true, hasHead: true };
  const options = { backend: 'wasm', maxPositions: 16 } as const;
  const units = unitsForRange(manifest, spec.layers, true, true);
  const session = await createNodeRuntime('wasm').createSession({
    model: { kind: 'stage-graph', manifest, spec, options },
    externalData: units.map((u) => ({ path: u.file, data: unitData(u) })),
    config: stageSessionConfig(manifest, options),
    backend: 'wasm',
    kvCache: { layers: [0, 1], heads: manifest.config.num_key_value_heads, headDim: headDim(manifest.config) },
  });
  try {
    const logits = await new StageStepper(session, spec).step(idsTensor(PROMPT));
    expect(logits.dims).toEqual([1, 1, manifest.config.vocab_size]);
    return logits.data;
  } finally {
    await session.release();
  }
}

describe('narrowVocabulary', () => {
  for (const [tied, dtype] of [
    [true, 'fp32'],
    [false, 'fp32'],
    [false, 'q4'],
  ] as const) {
    it(`${dtype}, ${tied ? 'tied' : 'untied'}: the narrowed stage's logits are the full stage's first ${W}`, async () => {
      const pkg = await testPackage('qwen3', tied, dtype);
      const full = pkg.reader.manifest;
      const narrow = narrowVocabulary(full, W);
      expect(narrow.config.vocab_size).toBe(W);
      const layer = (m: ModelManifest) => m.units.find((u) => u.id === 'layer.0');
      expect(layer(narrow)).toEqual(layer(full));
      for (const u of narrow.units.filter((x) => x.kind !== 'layer'))
        for (const t of u.tensors) {
          expect(t.offset % 64).toBe(0);
          expect(t.offset + t.length).toBeLessThanOrEqual(u.bytes);
        }
      const expected = (await lastLogits(full, (u) => pkg.unitBytes(u))).slice(0, W);
      const got = await lastLogits(narrow, (u) => {
        const real = full.units.find((x) => x.id === u.id);
        if (!real) throw new Error(`no unit ${u.id}`);
        return u.kind === 'layer' ? pkg.unitBytes(real) : narrowedBytes(real, u, pkg.unitBytes(real));
      });
      expect(Array.from(got)).toEqual(Array.from(expected));
    });
  }

  it('refuses a vocabulary larger than the package or not a positive integer', async () => {
    const { manifest } = (await testPackage('qwen3', true, 'fp32')).reader;
    for (const bad of [0, 1.5, manifest.config.vocab_size + 1])
      expect(() => narrowVocabulary(manifest, bad)).toThrow(/narrowed vocabulary needs/);
  });
});
