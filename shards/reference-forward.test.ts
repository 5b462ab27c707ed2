import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from './convert.ts';
import { sha256Hex, type Architecture, type ModelManifest, type UnitEntry } from './manifest.ts';
import { writeModel } from './make-model.ts';
import { PackageReader } from './package-reader.ts';
import { packUnit, type TensorData } from './package-layout.ts';
import { ReferenceModel, referenceInvFreq } from './reference-forward.ts';

const root = mkdtempSync(join(tmpdir(), 'tandem-reference-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// ---- an in-memory llama package from explicit float32 tensors ([in, out] orientation) ----------------

function f32(name: string, shape: number[], values: number[]): TensorData {
  return { name, dtype: 'float32', shape, data: new Uint8Array(Float32Array.from(values).buffer) };
}
function identity(n: number): number[] {
  return Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) === i % n ? 1 : 0));
}
function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

interface HandAttention {
  nq: number;
  nkv: number;
  hd: number;
  wq: number[]; // (H, nq*hd)
  wk: number[]; // (H, nkv*hd)
  wv: number[]; // (H, nkv*hd)
  wo: number[]; // (nq*hd, H)
}

async function handModel(
  H: number,
  V: number,
  embed: number[],
  wq: number[],
  wk: number[],
  attn?: HandAttention,
): Promise<ReferenceModel> {
  const I = 4;
  const a = attn ?? { nq: 1, nkv: 1, hd: H, wq, wk, wv: identity(H), wo: identity(H) };
  const units: { id: string; kind: UnitEntry['kind']; layer?: number; tensors: TensorData[] }[] = [
    { id: 'embed', kind: 'embed', tensors: [f32('embed_tokens.weight', [V, H], embed)] },
    {
      id: 'layer.0',
      kind: 'layer',
      layer: 0,
      tensors: [
        f32('input_layernorm.weight', [H], new Array<number>(H).fill(1)),
        f32('q_proj.weight', [H, a.nq * a.hd], a.wq),
        f32('k_proj.weight', [H, a.nkv * a.hd], a.wk),
        f32('v_proj.weight', [H, a.nkv * a.hd], a.wv),
        f32('o_proj.weight', [a.nq * a.hd, H], a.wo),
        f32('post_attention_layernorm.weight', [H], new Array<number>(H).fill(1)),
        f32('gate_proj.weight', [H, I], zeros(H * I)),
        f32('up_proj.weight', [H, I], zeros(H * I)),
        f32('down_proj.weight', [I, H], zeros(H * I)),
      ],
    },
    {
      id: 'head',
      kind: 'head',
      tensors: [f32('norm.weight', [H], new Array<number>(H).fill(1)), f32('lm_head.weight', [H, V], identity(H))],
    },
  ];
  const blobs = new Map<string, Uint8Array>();
  const entries: UnitEntry[] = [];
  for (const u of units) {
    const { bytes, entries: tensors } = packUnit(u.tensors);
    blobs.set(u.id, bytes);
    entries.push({
      id: u.id,
      kind: u.kind,
      ...(u.layer !== undefined ? { layer: u.layer } : {}),
      file: `${u.id}.bin`,
      bytes: bytes.length,
      sha256: await sha256Hex(bytes),
      tensors,
    });
  }
  const manifest: ModelManifest = {
    format: 'tandem-model-package',
    version: 1,
    name: 'hand',
    architecture: 'llama',
    dtype: 'fp32',
    config: {
      num_hidden_layers: 1,
      hidden_size: H,
      num_attention_heads: a.nq,
      num_key_value_heads: a.nkv,
      head_dim: a.hd,
      intermediate_size: I,
      vocab_size: V,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
    },
    generation: null,
    tokenizer: { files: [] },
    units: entries,
  };
  return new ReferenceModel(manifest, (u) => blobs.get(u.id)!);
}

/** x / sqrt(mean(x^2) + 1e-6) */
function rn(v: number[]): number[] {
  const ms = v.reduce((s, x) => s + x * x, 0) / v.length;
  return v.map((x) => x / Math.sqrt(ms + 1e-6));
}

describe('reference forward vs hand computation', () => {
  it('1 layer, zero q/k (uniform causal attention), identity v/o, zero FFN: x_s = e_s + mean(rn(e_0..e_s))', async () => {
    const E = [
      [1, 0, 0, 2],
      [0, -1, 3, 0],
      [0.5, 0.5, -0.5, 1],
      [2, 1, 0, -1],
    ];
    const model = await handModel(4, 4, E.flat(), zeros(16), zeros(16));
    const tokens = [2, 0, 3, 1, 1];
    const logits = model.forward(tokens, model.newCache());
    tokens.forEach((t, s) => {
      const mean = [0, 1, 2, 3].map((i) => tokens.slice(0, s + 1).reduce((acc, p) => acc + rn(E[p])[i], 0) / (s + 1));
      const x = E[t].map((v, i) => v + mean[i]);
      const expected = rn(x); // final norm weight 1, lm_head identity
      for (let i = 0; i < 4; i++) expect(logits[s * 4 + i]).toBeCloseTo(expected[i], 12);
    });
  });

  it('RoPE: hd = 2 rotates (q, k) by angle = position, like complex multiplication by e^{i pos}', async () => {
    const E = [
      [1, 0.5],
      [-0.375, 2], // values exact in float32
    ];
    const model = await handModel(2, 2, E.flat(), identity(2), identity(2));
    expect(referenceInvFreq(model.config)[0]).toBe(1);
    const tokens = [0, 1, 1, 0];
    const logits = model.forward(tokens, model.newCache());
    const rot = (v: number[], angle: number) => [
      v[0] * Math.cos(angle) - v[1] * Math.sin(angle),
      v[0] * Math.sin(angle) + v[1] * Math.cos(angle),
    ];
    tokens.forEach((t, s) => {
      const n = tokens.map((p) => rn(E[p]));
      const q = rot(n[s], s);
      const scores = tokens.slice(0, s + 1).map((_, p) => {
        const k = rot(n[p], p);
        return (q[0] * k[0] + q[1] * k[1]) / Math.sqrt(2);
      });
      const z = scores.map(Math.exp);
      const sum = z.reduce((a, b) => a + b, 0);
      const att = [0, 1].map((i) => z.reduce((acc, w, p) => acc + (w / sum) * n[p][i], 0));
      const expected = rn(E[t].map((v, i) => v + att[i]));
      for (let i = 0; i < 2; i++) expect(logits[s * 2 + i]).toBeCloseTo(expected[i], 12);
    });
  });

  it('GQA: 4 query heads share 2 kv heads (heads 0,1 -> kv 0; 2,3 -> kv 1), hd = 2', async () => {
    const H = 4,
      nq = 4,
      nkv = 2,
      hd = 2;
    const val = (i: number, k: number) => (((i * 7 + k * 13) % 11) - 5) / 8; // exact in float32
    const attn: HandAttention = {
      nq,
      nkv,
      hd,
      wq: Array.from({ length: H * nq * hd }, (_, i) => val(i, 1)),
      wk: Array.from({ length: H * nkv * hd }, (_, i) => val(i, 2)),
      wv: Array.from({ length: H * nkv * hd }, (_, i) => val(i, 3)),
      wo: Array.from({ length: nq * hd * H }, (_, i) => val(i, 4)),
    };
    const E = [
      [1, 0, -0.5, 2],
      [0, -1, 3, 0.25],
      [0.5, 0.5, -0.5, 1],
      [2, 1, 0, -1],
    ];
    const model = await handModel(H, 4, E.flat(), [], [], attn);
    const tokens = [3, 1, 0, 2, 2];
    const logits = model.forward(tokens, model.newCache());
    // theta = 10000, hd = 2: one rotation pair with inverse frequency 1
    const mul = (x: number[], w: number[], cols: number) =>
      Array.from({ length: cols }, (_, c) => x.reduce((acc, xi, r) => acc + xi * w[r * cols + c], 0));
    const rot = (v: number[], angle: number) => [
      v[0] * Math.cos(angle) - v[1] * Math.sin(angle),
      v[0] * Math.sin(angle) + v[1] * Math.cos(angle),
    ];
    const n = tokens.map((t) => rn(E[t]));
    const qs = n
      .map((x) => mul(x, attn.wq, nq * hd))
      .map((q, pos) => [0, 1, 2, 3].flatMap((h) => rot(q.slice(h * 2, h * 2 + 2), pos)));
    const ks = n
      .map((x) => mul(x, attn.wk, nkv * hd))
      .map((k, pos) => [0, 1].flatMap((g) => rot(k.slice(g * 2, g * 2 + 2), pos)));
    const vs = n.map((x) => mul(x, attn.wv, nkv * hd));
    tokens.forEach((t, s) => {
      const heads: number[] = [];
      for (const [h, g] of [
        [0, 0],
        [1, 0],
        [2, 1],
        [3, 1],
      ] as const) {
        const z = ks
          .slice(0, s + 1)
          .map((k) => Math.exp((qs[s][h * 2] * k[g * 2] + qs[s][h * 2 + 1] * k[g * 2 + 1]) / Math.sqrt(2)));
        const sum = z.reduce((x, y) => x + y, 0);
        for (const d of [0, 1]) heads.push(z.reduce((acc, w, p) => acc + (w / sum) * vs[p][g * 2 + d], 0));
      }
      const o = mul(heads, attn.wo, H);
      const expected = rn(E[t].map((v, i) => v + o[i]));
      for (let i = 0; i < 4; i++) expect(logits[s * 4 + i]).toBeCloseTo(expected[i], 12);
    });
  });
});

async function tinyPackage(arch: Architecture, tied: boolean): Promise<ReferenceModel> {
  const ck = join(root, `${arch}-${tied}`);
  writeModel(ck, { preset: 'tiny', arch, tied, overrides: { vocab_size: 384 } });
  await convertCheckpoint(ck, `${ck}-pkg`);
  const reader = PackageReader.open(`${ck}-pkg`);
  const blobs = new Map<string, Uint8Array>();
  for (const u of reader.manifest.units) blobs.set(u.id, await reader.readUnit(u));
  return new ReferenceModel(reader.manifest, (u) => blobs.get(u.id)!);
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('reference forward consistency (tiny models)', () => {
  const prompt = [17, 300, 5, 99, 250, 3, 42, 128];
  for (const [arch, tied] of [
    ['qwen3', true],
    ['qwen2', false],
    ['llama', true],
  ] as [Architecture, boolean][]) {
    it(`${arch}: prefill of 8 tokens == token-by-token with the KV cache (1e-12), and stages chained == whole model`, async () => {
      const model = await tinyPackage(arch, tied);
      const V = model.V;
      const prefill = model.forward(prompt, model.newCache());
      const cache = model.newCache();
      const stepwise = new Float64Array(prompt.length * V);
      prompt.forEach((t, s) => stepwise.set(model.forward([t], cache), s * V));
      expect(maxAbsDiff(prefill, stepwise)).toBeLessThan(1e-12);
      expect(cache.length(3)).toBe(8);
      expect(cache.export(0, 'key', model.nkv, model.hd)).toHaveLength(model.nkv * 8 * model.hd);

      // stages [0,1) [1,3) [3,4), each with its own cache, prefill + 4 greedy decode steps
      const ranges = [
        { start: 0, end: 1 },
        { start: 1, end: 3 },
        { start: 3, end: 4 },
      ];
      const caches = ranges.map(() => model.newCache());
      const whole = model.newCache();
      let tokens = prompt;
      for (let step = 0; step < 5; step++) {
        let h = model.embed(tokens);
        ranges.forEach((r, i) => (h = model.layers(h, r, caches[i])));
        const staged = model.head(h);
        const full = model.forward(tokens, whole);
        expect(maxAbsDiff(staged, full)).toBeLessThan(1e-12);
        const last = full.subarray(full.length - V);
        let best = 0;
        for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
        tokens = [best];
      }
      // logits are O(1..10), not degenerate
      const spread = Math.max(...prefill) - Math.min(...prefill);
      expect(spread).toBeGreaterThan(1);
      expect(Number.isFinite(spread)).toBe(true);
    });
  }

  it('greedy decoding of a tiny model varies its tokens', async () => {
    const model = await tinyPackage('qwen3', true);
    const out = model.greedy(prompt, 8);
    expect(new Set(out).size).toBeGreaterThan(3);
  });
});
