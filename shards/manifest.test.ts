import { describe, expect, it } from 'vitest';
import { parseManifest, sha256Hex, unitsForRange, verifyUnit, type ModelManifest, type UnitEntry } from './manifest.ts';

function manifest(layers = 3): ModelManifest {
  const unit = (id: string, kind: UnitEntry['kind'], layer?: number): UnitEntry => ({
    id,
    kind,
    ...(layer !== undefined ? { layer } : {}),
    file: `${id}.bin`,
    bytes: 192,
    sha256: '0'.repeat(64),
    tensors: [
      { name: 'a', dtype: 'float32', shape: [4, 4], offset: 0, length: 64 },
      { name: 'b', dtype: 'uint4', shape: [2, 64], offset: 64, length: 64 },
      { name: 'c', dtype: 'float16', shape: [8], offset: 128, length: 16 },
    ],
  });
  return {
    format: 'tandem-model-package',
    version: 1,
    name: 'test-model',
    architecture: 'qwen3',
    dtype: 'fp32',
    config: {
      num_hidden_layers: layers,
      hidden_size: 4,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      intermediate_size: 8,
      vocab_size: 16,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
    },
    generation: null,
    tokenizer: { files: ['tokenizer.json'] },
    units: [
      unit('embed', 'embed'),
      ...Array.from({ length: layers }, (_, i) => unit(`layer.${i}`, 'layer', i)),
      unit('head', 'head'),
    ],
  };
}

function mutate(f: (m: ModelManifest & Record<string, unknown>) => void): unknown {
  const m = structuredClone(manifest()) as ModelManifest & Record<string, unknown>;
  f(m);
  return m;
}

describe('parseManifest', () => {
  it('accepts a valid manifest', () => {
    expect(parseManifest(JSON.parse(JSON.stringify(manifest()))).units.map((u) => u.id)).toEqual([
      'embed',
      'layer.0',
      'layer.1',
      'layer.2',
      'head',
    ]);
  });

  it('names the bad field', () => {
    const cases: [unknown, string | RegExp][] = [
      [mutate((m) => ((m as Record<string, unknown>).format = 'other')), 'format'],
      [mutate((m) => ((m.config as Record<string, unknown>).hidden_size = 'x')), 'config.hidden_size'],
      [mutate((m) => delete (m.config as Record<string, unknown>).rope_theta), 'config.rope_theta'],
      [mutate((m) => (m.units[1].sha256 = 'abc')), 'units.1.sha256'],
      [mutate((m) => (m.units[2].file = '../x.bin')), 'units.2.file'],
      [mutate((m) => (m.name = 'has space')), 'name'],
      [mutate((m) => m.units.splice(2, 1)), /expected 5 units/],
      [mutate((m) => ([m.units[1], m.units[2]] = [m.units[2], m.units[1]])), /expected unit 'layer.0'/],
      [mutate((m) => (m.units[1].tensors[1].offset = 65)), /not 64-byte aligned/],
      [mutate((m) => (m.units[1].tensors[0].length = 60)), /length 60 != 64/],
      [mutate((m) => (m.units[1].bytes = 100)), /past the file size/],
      [mutate((m) => (m.units[3].file = 'layer.0.bin')), /used by two units/],
    ];
    for (const [json, expected] of cases) {
      let error: unknown;
      try {
        parseManifest(json);
      } catch (e) {
        error = e;
      }
      expect(error, String(expected)).toMatchObject({ code: 'manifest-invalid' });
      expect((error as Error).message).toMatch(expected);
    }
  });
});

describe('unitsForRange', () => {
  it('returns embed, the layers of the half-open range and head, in order', () => {
    const m = manifest(5);
    expect(unitsForRange(m, { start: 0, end: 2 }, true, false).map((u) => u.id)).toEqual([
      'embed',
      'layer.0',
      'layer.1',
    ]);
    expect(unitsForRange(m, { start: 2, end: 5 }, false, true).map((u) => u.id)).toEqual([
      'layer.2',
      'layer.3',
      'layer.4',
      'head',
    ]);
    expect(unitsForRange(m, { start: 3, end: 3 }, false, false)).toEqual([]);
    expect(() => unitsForRange(m, { start: 4, end: 6 }, false, false)).toThrow(
      expect.objectContaining({ code: 'range-invalid' }),
    );
    expect(() => unitsForRange(m, { start: 3, end: 2 }, false, false)).toThrow(
      expect.objectContaining({ code: 'range-invalid' }),
    );
  });
});

describe('verifyUnit', () => {
  it('accepts the right bytes and rejects tampered or truncated ones', async () => {
    const bytes = new Uint8Array(100).map((_, i) => i * 7);
    const entry: UnitEntry = {
      id: 'layer.0',
      kind: 'layer',
      layer: 0,
      file: 'layer.0.bin',
      bytes: 100,
      sha256: await sha256Hex(bytes),
      tensors: [],
    };
    await expect(verifyUnit(entry, bytes)).resolves.toBeUndefined();
    const tampered = bytes.slice();
    tampered[50] ^= 1;
    await expect(verifyUnit(entry, tampered)).rejects.toMatchObject({ code: 'shard-hash-mismatch' });
    await expect(verifyUnit(entry, bytes.subarray(0, 99))).rejects.toMatchObject({ code: 'shard-truncated' });
  });

  it('computes the standard SHA-256', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
