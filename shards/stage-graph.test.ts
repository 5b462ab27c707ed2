/**
 * Stage graphs against the independent fp64 reference (reference-forward.ts): for tiny models of each
 * architecture, chained stages over several splits == the one-stage full graph == the reference, over an
 * 8-token prefill and 4 decode steps, on onnxruntime-node and on onnxruntime-web (wasm) in Node.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Architecture, LayerRange, PackageDType } from './manifest.ts';
import { createStageSession, type NodeBackend } from './runtime/ort-node.ts';
import type { HostTensor, StageSession } from './runtime/stage-runtime.ts';
import { stageFeeds } from './runtime/stage-stepper.ts';
import { ReferenceModel } from './reference-forward.ts';
import { buildStageGraph, HIDDEN_OUTPUT, stageSessionConfig, type StageGraphOptions } from './stage-graph.ts';
import { removeTestPackages, testPackage, type TestPackage } from './stage-test-packages.ts';

const TOKENS = [17, 301, 5, 99, 250, 3, 42, 128, 7, 77, 366, 1]; // 8 prefill + 4 decode
const PREFILL = 8;

/** Prefill 8, then 4 single-token decode steps. */
const STEPS = [TOKENS.slice(0, PREFILL), ...TOKENS.slice(PREFILL).map((t) => [t])];

/** Positions whose logits a 'last' stage graph returns: the last of each step. */
function lastOfEachStep<T>(rows: T[], steps: number[][] = STEPS): T[] {
  let end = 0;
  return steps.map((ids) => rows[(end += ids.length) - 1]);
}

/** Logits rows (one Float64Array of V per position) from the fp64 reference. */
function referenceLogits(pkg: TestPackage): Float64Array[] {
  const ref = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u));
  const cache = ref.newCache();
  const rows: Float64Array[] = [];
  const push = (logits: Float64Array) => {
    for (let s = 0; s < logits.length / ref.V; s++) rows.push(logits.slice(s * ref.V, (s + 1) * ref.V));
  };
  push(ref.forward(TOKENS.slice(0, PREFILL), cache));
  for (const t of TOKENS.slice(PREFILL)) push(ref.forward([t], cache));
  return rows;
}

const sessions: StageSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
  removeTestPackages();
});

/**
 * Runs the split stage by stage (hidden states handed over directly) and returns logits rows: one per
 * position with `logits: 'all'`, one per step (its last position) by default.
 */
async function pipelineLogits(
  pkg: TestPackage,
  backend: NodeBackend,
  split: LayerRange[],
  graphOpts: StageGraphOptions = {},
  steps: number[][] = STEPS,
): Promise<Float32Array[]> {
  const manifest = pkg.reader.manifest;
  const { num_key_value_heads: nkv, vocab_size: V } = manifest.config;
  const hd = manifest.config.head_dim ?? manifest.config.hidden_size / manifest.config.num_attention_heads;
  const opts: StageGraphOptions = { backend: backend === 'wasm' ? 'wasm' : 'cpu', maxPositions: 64, ...graphOpts };
  const stages = await Promise.all(
    split.map(async (layers, i) => {
      const spec = { layers, embeds: i === 0, hasHead: i === split.length - 1 };
      const g = buildStageGraph(manifest, spec, opts);
      const session = await createStageSession(backend, {
        model: g.model,
        externalData: g.externalData.map((e) => ({ path: e.path, data: pkg.blobs.get(e.path)! })),
        config: stageSessionConfig(manifest, opts),
      });
      sessions.push(session);
      const cache = new Map<string, HostTensor>();
      for (let l = layers.start; l < layers.end; l++) {
        for (const kv of ['key', 'value'])
          cache.set(`past_key_values.${l}.${kv}`, {
            dtype: 'float32',
            dims: [1, nkv, 0, hd],
            data: new Float32Array(0),
          });
      }
      return { spec, session, cache };
    }),
  );
  const rows: Float32Array[] = [];
  let past = 0;
  for (const ids of steps) {
    const S = ids.length;
    let x: HostTensor = { dtype: 'int64', dims: [1, S], data: BigInt64Array.from(ids, BigInt) };
    for (const st of stages) {
      // the cache is fed and read back here (no kvCache in the request) to check every present's shape
      const out = await st.session.run({ ...stageFeeds(st.spec, x, past), ...Object.fromEntries(st.cache) });
      for (const k of st.cache.keys()) {
        const present = out[k.replace('past_key_values.', 'present.')];
        expect(present.dims).toEqual([1, nkv, past + S, hd]);
        st.cache.set(k, present);
      }
      x = out[st.spec.hasHead ? 'logits' : HIDDEN_OUTPUT]!;
    }
    const R = opts.logits === 'all' ? S : 1;
    expect(x.dims).toEqual([1, R, V]);
    for (let s = 0; s < R; s++) rows.push((x.data as Float32Array).slice(s * V, (s + 1) * V));
    past += S;
  }
  return rows;
}

function maxAbsDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((row, r) => {
    expect(row.length).toBe(b[r].length);
    for (let i = 0; i < row.length; i++) m = Math.max(m, Math.abs(row[i] - b[r][i]));
  });
  return m;
}

const FULL: LayerRange[] = [{ start: 0, end: 4 }];
const SPLITS: LayerRange[][] = [
  [
    { start: 0, end: 1 },
    { start: 1, end: 4 },
  ],
  [
    { start: 0, end: 2 },
    { start: 2, end: 3 },
    { start: 3, end: 4 },
  ],
];

const MODELS: { arch: Architecture; tied: boolean; backends: NodeBackend[] }[] = [
  { arch: 'qwen3', tied: true, backends: ['node', 'wasm'] },
  { arch: 'qwen2', tied: false, backends: ['node', 'wasm'] },
  { arch: 'llama', tied: false, backends: ['node', 'wasm'] },
  { arch: 'llama', tied: true, backends: ['wasm'] },
];

describe('stage graphs == full graph == fp64 reference (fp32 packages)', () => {
  for (const { arch, tied, backends } of MODELS) {
    for (const backend of backends) {
      it(`${arch} ${tied ? 'tied' : 'untied'} on ${backend}`, async () => {
        const pkg = await testPackage(arch, tied, 'fp32');
        const ref = referenceLogits(pkg);
        // every position (the export-full layout), then the last position per step (the stages' layout)
        const full = await pipelineLogits(pkg, backend, FULL, { logits: 'all' });
        const errors = [maxAbsDiff(full, ref)];
        expect(errors[0]).toBeLessThan(1e-4);
        const fullLast = await pipelineLogits(pkg, backend, FULL);
        errors.push(maxAbsDiff(fullLast, lastOfEachStep(ref)));
        expect(errors.at(-1)).toBeLessThan(1e-4);
        for (const split of SPLITS) {
          const chained = await pipelineLogits(pkg, backend, split);
          errors.push(maxAbsDiff(chained, lastOfEachStep(ref)));
          expect(errors.at(-1)).toBeLessThan(1e-4);
          expect(maxAbsDiff(chained, lastOfEachStep(full))).toBeLessThan(1e-4);
        }
        console.log(
          `${arch} ${tied ? 'tied' : 'untied'} ${backend}: max |logits - fp64 reference| full/splits = ${errors.map((e) => e.toExponential(2)).join(' ')}`,
        );
      });
    }
  }
});

describe('fp16 and q4 packages', () => {
  const cases: {
    dtype: PackageDType;
    backend: NodeBackend;
    q4Kernel?: 'matmulnbits' | 'dequantize';
    f16Matmul?: boolean;
    tol: number;
  }[] = [
    { dtype: 'fp16', backend: 'node', tol: 1e-4 },
    // fp16 activations in the matmuls: error of fp16 rounding (2^-11 relative) through 4 layers.
    { dtype: 'fp16', backend: 'node', f16Matmul: true, tol: 5e-2 },
    { dtype: 'fp16', backend: 'wasm', tol: 1e-4 },
    // q4 vs the reference run on the same dequantised weights: only kernel rounding differs (MatMulNBits accuracy_level 0 = fp32).
    { dtype: 'q4', backend: 'node', q4Kernel: 'matmulnbits', tol: 1e-4 },
    { dtype: 'q4', backend: 'wasm', q4Kernel: 'dequantize', tol: 1e-4 },
    { dtype: 'q4', backend: 'wasm', q4Kernel: 'matmulnbits', tol: 1e-4 },
  ];
  for (const c of cases) {
    it(`qwen3 ${c.dtype} on ${c.backend}${c.q4Kernel ? ` (${c.q4Kernel})` : ''}${c.f16Matmul ? ' (fp16 matmuls)' : ''} matches the reference on its own weights`, async () => {
      const pkg = await testPackage('qwen3', true, c.dtype);
      const ref = referenceLogits(pkg);
      const chained = await pipelineLogits(pkg, c.backend, SPLITS[0], {
        q4Kernel: c.q4Kernel,
        f16Matmul: c.f16Matmul,
        logits: 'all',
      });
      const err = maxAbsDiff(chained, ref);
      console.log(
        `qwen3 ${c.dtype} ${c.backend} ${c.q4Kernel ?? ''}${c.f16Matmul ? 'f16-matmul' : ''}: max |logits - fp64 reference| = ${err.toExponential(2)}`,
      );
      expect(err).toBeLessThan(c.tol);
    });
  }

  it('q4 differs from the fp32 model by the quantisation error itself, not by kernel error', async () => {
    const [fp32, q4] = await Promise.all([testPackage('qwen3', true, 'fp32'), testPackage('qwen3', true, 'q4')]);
    const exact = referenceLogits(fp32); // fp64 on the original weights
    const dequantised = referenceLogits(q4); // fp64 on the q4 weights
    const quantisationError = maxAbsDiff(dequantised, exact);
    for (const backend of ['node', 'wasm'] as const) {
      const onnx = await pipelineLogits(q4, backend, FULL, { logits: 'all' });
      expect(quantisationError).toBeGreaterThan(1e-2); // 4-bit weights really change the logits...
      expect(Math.abs(maxAbsDiff(onnx, exact) - quantisationError)).toBeLessThan(0.01 * quantisationError); // ...and that is all
    }
  });
});

describe('multi-token steps on a filled cache (a prompt continued in chunks)', () => {
  for (const backend of ['node', 'wasm'] as const) {
    it(`qwen3 on ${backend}: prefill 5 + 3 tokens, then 2 + 2 == the reference`, async () => {
      const pkg = await testPackage('qwen3', true, 'fp32');
      const chunks = [TOKENS.slice(0, 5), TOKENS.slice(5, 8), TOKENS.slice(8, 10), TOKENS.slice(10, 12)];
      const rows = await pipelineLogits(pkg, backend, SPLITS[0], {}, chunks);
      expect(maxAbsDiff(rows, lastOfEachStep(referenceLogits(pkg), chunks))).toBeLessThan(1e-4);
    });
  }
});

describe('buildStageGraph input checks', () => {
  it('rejects a range outside the model and an empty stage', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const m = pkg.reader.manifest;
    expect(() => buildStageGraph(m, { layers: { start: 2, end: 9 }, embeds: false, hasHead: false })).toThrow(
      expect.objectContaining({ code: 'range-invalid' }),
    );
    expect(() => buildStageGraph(m, { layers: { start: 1, end: 1 }, embeds: false, hasHead: false })).toThrow(
      expect.objectContaining({ code: 'range-invalid' }),
    );
  });

  it('rejects a package whose tensor shapes disagree with its config', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const m = structuredClone(pkg.reader.manifest);
    m.config.intermediate_size = 128;
    expect(() => buildStageGraph(m, { layers: { start: 0, end: 1 }, embeds: true, hasHead: false })).toThrow(
      expect.objectContaining({ code: 'tensor-shape-mismatch' }),
    );
  });

  it('names inputs and outputs like transformers.js, with global layer indices', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const g = buildStageGraph(pkg.reader.manifest, { layers: { start: 2, end: 4 }, embeds: false, hasHead: true });
    expect(g.inputNames).toEqual([
      'hidden_states',
      'attention_mask',
      'position_ids',
      'past_key_values.2.key',
      'past_key_values.2.value',
      'past_key_values.3.key',
      'past_key_values.3.value',
    ]);
    expect(g.outputNames).toEqual(['logits', 'present.2.key', 'present.2.value', 'present.3.key', 'present.3.value']);
    expect(g.externalData).toEqual([
      { path: 'layer.2.bin', unitId: 'layer.2' },
      { path: 'layer.3.bin', unitId: 'layer.3' },
      { path: 'head.bin', unitId: 'head' },
    ]);
  });
});
