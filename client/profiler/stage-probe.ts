/**
 * A stage-shaped probe graph for the profiler: `layers` blocks shaped like a decoder layer's matmuls,
 * run by the page's own ONNX Runtime at a dynamic row count t, so the compute sweep measures the kernels
 * a stage runs and not a stand-in. Per block, with x [1, t, D]:
 *     q, k, v = x·Wq, x·Wk, x·Wv                 Wq, Wk, Wv [D, D]
 *     h = x + (q + k + v)·Wo                     Wo [D, D]   (the sum stands in for attention's mixing)
 *     y = h + (silu(h·Wg) ⊙ (h·Wu))·Wd            Wg, Wu [D, F]; Wd [F, D]
 * Attention's own t² products (QKᵀ, AV), norms and RoPE are left out: the probe measures the matmul
 * rate; elementwise ops are not counted as FLOPs. All ops (MatMul, Add, Mul, Sigmoid) run on
 * onnxruntime's node CPU, web wasm and web WebGPU backends.
 *
 * Weights are fp32 in one external-data file (like a stage's units), block after block in the order of
 * `stageProbeLayout`. Pure: no DOM, no Node APIs.
 */
import { TandemError } from '../../core/errors.ts';
import { GraphBuilder } from '../../shards/onnx/builder.ts';
import { DataType, encodeModel, type GraphDef } from '../../shards/onnx/model.ts';
import type { HostTensor } from '../../shards/runtime/stage-runtime.ts';
import { relativeError, type SweepProbe } from './sweep-probe.ts';

export const STAGE_PROBE_WEIGHTS_FILE = 'profiler-stage-probe.bin';

/** Shape of the probe: hidden size D, MLP size F, number of blocks. */
export interface StageProbeShape {
  dim: number;
  ffn: number;
  layers: number;
}

/** What the page profiles with: one block, D 256 and MLP 3D like Qwen3's (1024 / 3072), 3.25 MiB fp32. */
export const PROFILE_PROBE: { shape: StageProbeShape; sweep: readonly number[] } = {
  shape: { dim: 256, ffn: 768, layers: 1 },
  sweep: [1, 2, 4, 8, 16, 32, 64, 128, 256],
};
/** For a GPU that runs the largest size above in a few ms: a Qwen3-0.6B-sized block, 52 MiB fp32. */
export const PROFILE_PROBE_LARGE: { shape: StageProbeShape; sweep: readonly number[] } = {
  shape: { dim: 1024, ffn: 3072, layers: 1 },
  sweep: [1, 4, 16, 64, 256, 512, 1024, 2048],
};

/** One weight matrix [rows, cols] fp32, row-major, at `offset` floats into the weights file. */
export interface ProbeWeight {
  name: string;
  layer: number;
  role: 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';
  rows: number;
  cols: number;
  offset: number;
}

export interface StageProbeModel {
  shape: StageProbeShape;
  /** ONNX ModelProto bytes; input `x` [1, t, D], output `y` [1, t, D] */
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
  /** the graph before encoding (tests count its MatMuls independently) */
  graph: GraphDef;
  /** fp32 weights, a view of externalData[0] */
  weights: Float32Array;
  weightBytes: number;
}

export function checkProbeShape(shape: StageProbeShape): void {
  const { dim, ffn, layers } = shape;
  for (const [k, v] of [
    ['dim', dim],
    ['ffn', ffn],
    ['layers', layers],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new TandemError(
        'bench-invalid',
        `The stage probe needs positive integer sizes; ${k} was ${v} (shape ${JSON.stringify(shape)}).`,
      );
  }
}

/** Where each weight lives in the weights file (floats), block after block. */
export function stageProbeLayout(shape: StageProbeShape): ProbeWeight[] {
  checkProbeShape(shape);
  const { dim: d, ffn: f } = shape;
  const out: ProbeWeight[] = [];
  let offset = 0;
  for (let l = 0; l < shape.layers; l++) {
    const mats: [ProbeWeight['role'], number, number][] = [
      ['q', d, d],
      ['k', d, d],
      ['v', d, d],
      ['o', d, d],
      ['gate', d, f],
      ['up', d, f],
      ['down', f, d],
    ];
    for (const [role, rows, cols] of mats) {
      out.push({ name: `l${l}.${role}`, layer: l, role, rows, cols, offset });
      offset += rows * cols;
    }
  }
  return out;
}

/** Counted FLOPs of one run at t rows: the MatMuls only, 2 FLOP per multiply-add. */
export function stageProbeFlops(shape: StageProbeShape, tokens: number): number {
  checkProbeShape(shape);
  const { dim: d, ffn: f } = shape;
  // per block: q, k, v, o [D, D] and gate, up [D, F], down [F, D]
  return 2 * tokens * shape.layers * (4 * d * d + 3 * d * f);
}

/** Small pseudo-random weights (xorshift32), uniform in ±1/sqrt(fan-in), so the blocks neither blow up nor vanish. */
function fillWeights(layout: readonly ProbeWeight[], seed: number): Float32Array {
  const last = layout[layout.length - 1];
  const w = new Float32Array(last.offset + last.rows * last.cols);
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  for (const m of layout) {
    const scale = 1 / Math.sqrt(m.rows);
    for (let i = m.offset; i < m.offset + m.rows * m.cols; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      w[i] = (((s >>> 0) / 4294967296) * 2 - 1) * scale;
    }
  }
  return w;
}

export function buildStageProbeModel(shape: StageProbeShape, seed = 1): StageProbeModel {
  const layout = stageProbeLayout(shape);
  const weights = fillWeights(layout, seed);
  const g = new GraphBuilder();
  const init = (m: ProbeWeight) =>
    g.initializer({
      name: m.name,
      dataType: DataType.FLOAT,
      dims: [m.rows, m.cols],
      external: { location: STAGE_PROBE_WEIGHTS_FILE, offset: m.offset * 4, length: m.rows * m.cols * 4 },
    });
  let x = g.input('x', DataType.FLOAT, [1, 't', shape.dim]);
  for (let l = 0; l < shape.layers; l++) {
    const w = Object.fromEntries(layout.filter((m) => m.layer === l).map((m) => [m.role, init(m)]));
    const q = g.op('MatMul', [x, w['q']], `l${l}/q_proj`);
    const k = g.op('MatMul', [x, w['k']], `l${l}/k_proj`);
    const v = g.op('MatMul', [x, w['v']], `l${l}/v_proj`);
    const mix = g.op('Add', [g.op('Add', [q, k], `l${l}/qk`), v], `l${l}/qkv`);
    const h = g.op('Add', [x, g.op('MatMul', [mix, w['o']], `l${l}/o_proj`)], `l${l}/attn_residual`);
    const gate = g.op('MatMul', [h, w['gate']], `l${l}/gate_proj`);
    const up = g.op('MatMul', [h, w['up']], `l${l}/up_proj`);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate], `l${l}/sigmoid`)], `l${l}/silu`);
    const down = g.op('MatMul', [g.op('Mul', [act, up], `l${l}/gated`), w['down']], `l${l}/down_proj`);
    x = g.op('Add', [h, down], `l${l}/mlp_residual`);
  }
  g.node('Identity', [x], { name: 'out', outputs: ['y'] });
  g.output('y', DataType.FLOAT, [1, 't', shape.dim]);
  const graph = g.graph('profiler_stage_probe');
  const model = encodeModel({
    irVersion: 10,
    opsetImports: [{ domain: '', version: 21 }],
    producerName: 'tandem-profiler',
    producerVersion: '1',
    graph,
  });
  const data = new Uint8Array(weights.buffer);
  return {
    shape,
    model,
    externalData: [{ path: STAGE_PROBE_WEIGHTS_FILE, data }],
    graph,
    weights,
    weightBytes: data.byteLength,
  };
}

/** The probe's input at t rows: x [1, t, D], deterministic values in [-1, 1). */
export function stageProbeInput(shape: StageProbeShape, tokens: number): Float32Array {
  return Float32Array.from({ length: tokens * shape.dim }, (_, i) => ((i * 40503) % 997) / 498.5 - 1);
}

/** Y (m, n) = X (m, k) @ W (k, n) with W at `offset` floats into `w`; fp64 accumulation. */
function matmul(x: Float32Array | Float64Array, w: Float32Array, m: ProbeWeight, rowsOfX: number): Float64Array {
  const y = new Float64Array(rowsOfX * m.cols);
  for (let i = 0; i < rowsOfX; i++)
    for (let p = 0; p < m.rows; p++) {
      const xv = x[i * m.rows + p];
      const wRow = m.offset + p * m.cols;
      for (let j = 0; j < m.cols; j++) y[i * m.cols + j] += xv * w[wRow + j];
    }
  return y;
}

/**
 * The probe's forward pass in plain JS (fp64 accumulation): x [t, D] -> y [t, D]. The profiler checks the
 * runtime's output against it once, so a broken backend cannot report a fast kernel.
 */
export function stageProbeForward(
  shape: StageProbeShape,
  weights: Float32Array,
  x: Float32Array,
  tokens: number,
): Float64Array {
  const layout = stageProbeLayout(shape);
  let cur: Float64Array = Float64Array.from(x);
  for (let l = 0; l < shape.layers; l++) {
    const m = (role: ProbeWeight['role']) => layout.find((w) => w.layer === l && w.role === role)!;
    const q = matmul(cur, weights, m('q'), tokens);
    const k = matmul(cur, weights, m('k'), tokens);
    const v = matmul(cur, weights, m('v'), tokens);
    const o = matmul(
      q.map((qv, i) => qv + k[i] + v[i]),
      weights,
      m('o'),
      tokens,
    );
    const h = cur.map((xv, i) => xv + o[i]);
    const gate = matmul(h, weights, m('gate'), tokens);
    const up = matmul(h, weights, m('up'), tokens);
    const gated = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
    const down = matmul(gated, weights, m('down'), tokens);
    cur = h.map((hv, i) => hv + down[i]);
  }
  return cur;
}

/** The probe as the compute sweep runs it (runtime-sweep.ts): x [1, t, D] -> y, FLOPs = its MatMuls. */
export function matmulSweepProbe(shape: StageProbeShape, seed = 1): SweepProbe {
  const m = buildStageProbeModel(shape, seed);
  const feeds = (tokens: number): Record<string, HostTensor> => ({
    x: { dtype: 'float32', dims: [1, tokens, shape.dim], data: stageProbeInput(shape, tokens) },
  });
  return {
    description: `${shape.layers} decoder-layer-shaped block${shape.layers === 1 ? '' : 's'} of fp32 MatMuls (q/k/v/o ${shape.dim}×${shape.dim}, MLP ${shape.dim}×${shape.ffn}×3; FLOPs = the MatMuls)`,
    dim: shape.dim,
    weightBytes: m.weightBytes,
    session: { model: m.model, externalData: m.externalData, config: {} },
    feeds,
    runOptions: {},
    flops: (tokens) => stageProbeFlops(shape, tokens),
    checkError: (tokens, outputs) =>
      relativeError(outputs['y'], stageProbeForward(shape, m.weights, stageProbeInput(shape, tokens), tokens)),
  };
}
