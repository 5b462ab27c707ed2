/**
 * Builds the ONNX graph of one pipeline stage: optionally the token embedding, a contiguous range of
 * decoder layers (each with its own KV cache), optionally the final norm + LM head. Weights are external
 * data pointing into the package's unit blobs (location = unit.file, offset/length from the manifest);
 * RoPE cos/sin tables are initializers inside the model. Pure: no I/O.
 *
 * Graph interface (transformers.js names; i = GLOBAL layer index):
 *   inputs : input_ids int64 (B, S)                     [first stage]  | hidden_states float32 (B, S, H)
 *            attention_mask int64 (B, past+S), position_ids int64 (B, S)
 *            past_key_values.{i}.key / .value float32 (B, nkv, past, hd)
 *   outputs: hidden_states_out float32 (B, S, H)        [not last]     | logits float32 (B, 1, V) [last]
 *            (logits of the LAST position only: the final norm + head run on one row, since only that
 *            row is sampled; `logits: 'all'` gives (B, S, V), the layout transformers.js' export keeps)
 *            present.{i}.key / .value float32 (B, nkv, past+S, hd)
 *
 * One decoder layer (x = residual stream, shapes for B=1):
 *   h   = RMSNorm(x) * input_layernorm                    (S, H)
 *   q,k,v = h @ Wq (+bq), h @ Wk (+bk), h @ Wv (+bv)      (S, nq*hd), (S, nkv*hd)
 *   [qwen3] q, k = per-head RMSNorm(q) * q_norm, ... * k_norm
 *   q, k = RoPE(q, position_ids), RoPE(k, position_ids)
 *   a   = GroupQueryAttention(q, k, v, past) @ Wo         (S, H)
 *   x   = x + a;  h = RMSNorm(x) * post_attention_layernorm
 *   x   = x + (silu(h @ Wg) * (h @ Wu)) @ Wd
 */
import { TandemError } from '../core/errors.ts';
import type { LayerRange, ModelConfigJson, ModelManifest, TensorEntry, UnitEntry } from './manifest.ts';
import { getTensor, headDim, unitsForRange } from './manifest.ts';
import { GraphBuilder, float32Raw } from './onnx/builder.ts';
import { DataType, encodeModel } from './onnx/model.ts';
import type { DataTypeCode, ModelDef } from './onnx/model.ts';
import { ropeTables } from './rope.ts';

export interface StageSpec {
  layers: LayerRange;
  embeds: boolean;
  hasHead: boolean;
}

export interface StageGraph {
  /** ONNX ModelProto bytes */
  model: Uint8Array;
  /** external data files the model references: path == TensorProto location == unit.file */
  externalData: { path: string; unitId: string }[];
  inputNames: string[];
  outputNames: string[];
}

/** Main input of a stage without the embedding, and main output of a stage without the head. ONNX value
 * names must be unique, so a middle stage cannot call both 'hidden_states'. */
export const HIDDEN_INPUT = 'hidden_states';
export const HIDDEN_OUTPUT = 'hidden_states_out';
/** The last stage's main output: logits (1, 1, V) of the last position. */
export const LOGITS_OUTPUT = 'logits';

export type GraphBackend = 'wasm' | 'webgpu' | 'cpu';

export interface StageGraphOptions {
  /** Where the graph will run; picks the 4-bit kernel (default 'cpu'). */
  backend?: GraphBackend;
  /** Rows of the RoPE tables = longest supported sequence (default min(max_position_embeddings, 4096)). */
  maxPositions?: number;
  /**
   * How q4 matmuls run: 'matmulnbits' (com.microsoft.MatMulNBits, fast on native CPU and WebGPU) or
   * 'dequantize' (DequantizeLinear(uint4) -> MatMul, folded to fp32 at session creation; fast on wasm,
   * needs the session option from `stageSessionConfig`). Default: 'dequantize' on wasm, else 'matmulnbits'.
   */
  q4Kernel?: 'matmulnbits' | 'dequantize';
  /**
   * fp16 packages: keep matmul weights in float16 and run those matmuls in float16 (activations cast
   * around each one), halving weight memory. Only for a backend with fp16 kernels: WebGPU with the
   * 'shader-f16' feature (without it the JSEP backend silently returns zeros), or native CPU. Default
   * false: fp16 weights are cast to fp32 once at session creation, which works everywhere.
   */
  f16Matmul?: boolean;
  /**
   * Which positions the head computes logits for: 'last' (default) slices the last position of the
   * residual stream before the final norm + head, so prefill gives (B, 1, V) and costs one head row
   * instead of S (for a 256-token prompt the head over every row was more work than 24 small layers);
   * 'all' gives (B, S, V), the layout of the whole-model export for transformers.js.
   */
  logits?: 'last' | 'all';
}

export const DEFAULT_MAX_POSITIONS = 4096;

/**
 * Session config entries a stage graph needs: with 'dequantize' q4 kernels, `disable_quant_qdq` stops ORT
 * fusing DequantizeLinear -> MatMul back into the slow-on-wasm MatMulNBits.
 */
/** Session config entries as onnxruntime-js takes them: `{ extra: { session: { disable_quant_qdq: '1' } } }`. */
export function toOrtExtra(config: Record<string, string>): { session: Record<string, string> } {
  const session: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) session[k.replace(/^session\./, '')] = v;
  return { session };
}

export function stageSessionConfig(manifest: ModelManifest, opts: StageGraphOptions = {}): Record<string, string> {
  return manifest.dtype === 'q4' && q4KernelFor(opts) === 'dequantize' ? { 'session.disable_quant_qdq': '1' } : {};
}

function q4KernelFor(opts: StageGraphOptions): 'matmulnbits' | 'dequantize' {
  return opts.q4Kernel ?? (opts.backend === 'wasm' ? 'dequantize' : 'matmulnbits');
}

const ONNX_DTYPE: Record<TensorEntry['dtype'], DataTypeCode> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  uint4: DataType.UINT4,
};

function shapeError(unit: UnitEntry, t: TensorEntry, want: number[]): TandemError {
  return new TandemError(
    'tensor-shape-mismatch',
    `Unit '${unit.id}' tensor '${t.name}' has shape [${t.shape.join(', ')}] but config.json implies [${want.join(', ')}]; the package does not match its config, re-convert it.`,
  );
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Emits the ops of one stage into a GraphBuilder. */
class StageEmitter {
  readonly g = new GraphBuilder();
  private readonly cfg: ModelConfigJson;
  private readonly H: number;
  private readonly nq: number;
  private readonly nkv: number;
  private readonly hd: number;
  private readonly eps: number;
  private readonly q4Kernel: 'matmulnbits' | 'dequantize';
  private readonly f16Matmul: boolean;
  private readonly logits: 'last' | 'all';

  constructor(
    private readonly manifest: ModelManifest,
    opts: StageGraphOptions,
  ) {
    this.cfg = manifest.config;
    this.H = this.cfg.hidden_size;
    this.nq = this.cfg.num_attention_heads;
    this.nkv = this.cfg.num_key_value_heads;
    this.hd = headDim(this.cfg);
    this.eps = this.cfg.rms_norm_eps;
    this.q4Kernel = q4KernelFor(opts);
    this.f16Matmul = opts.f16Matmul ?? false;
    this.logits = opts.logits ?? 'last';
    if (!Number.isInteger(this.hd) || this.hd % 2 !== 0) {
      throw new TandemError('config-invalid', `head_dim ${this.hd} must be an even integer; check config.json.`);
    }
    if (this.nq % this.nkv !== 0) {
      throw new TandemError(
        'config-invalid',
        `num_attention_heads ${this.nq} is not a multiple of num_key_value_heads ${this.nkv}; check config.json.`,
      );
    }
  }

  /** An external initializer for a unit tensor, after checking its shape. */
  private external(
    unit: UnitEntry,
    name: string,
    want: number[],
    as?: { dataType: DataTypeCode; dims: number[] },
  ): string {
    const t = getTensor(unit, name);
    if (!sameShape(t.shape, want)) throw shapeError(unit, t, want);
    return this.g.initializer({
      name: as ? `${unit.id}.${name}.${as.dataType === DataType.UINT8 ? 'u8' : 'as'}` : `${unit.id}.${name}`,
      dataType: as?.dataType ?? ONNX_DTYPE[t.dtype],
      dims: as?.dims ?? t.shape,
      external: { location: unit.file, offset: t.offset, length: t.length },
    });
  }

  private has(unit: UnitEntry, name: string): boolean {
    return unit.tensors.some((t) => t.name === name);
  }

  /** A float32 value for a float32 or float16 tensor (fp16 is cast up; ORT folds the cast at load). */
  floatParam(unit: UnitEntry, name: string, want: number[]): string {
    const t = getTensor(unit, name);
    const value = this.external(unit, name, want);
    if (t.dtype === 'float32') return value;
    if (t.dtype === 'float16') return this.g.op('Cast', [value], `${unit.id}/${name}/cast`, { to: DataType.FLOAT });
    throw new TandemError(
      'tensor-dtype-unsupported',
      `Unit '${unit.id}' tensor '${name}' has dtype ${t.dtype}, expected float32 or float16.`,
    );
  }

  /** y = x @ W for a projection `prefix` with W (in, out): fp32/fp16 '.weight' or q4 '.qweight' + '.scales'. */
  linear(x: string, unit: UnitEntry, prefix: string, inDim: number, outDim: number): string {
    const base = `${unit.id}/${prefix}`;
    if (this.has(unit, `${prefix}.weight`)) {
      if (this.f16Matmul && getTensor(unit, `${prefix}.weight`).dtype === 'float16') {
        const w16 = this.external(unit, `${prefix}.weight`, [inDim, outDim]);
        const x16 = this.g.op('Cast', [x], `${base}/x16`, { to: DataType.FLOAT16 });
        const y16 = this.g.op('MatMul', [x16, w16], base);
        return this.g.op('Cast', [y16], `${base}/y32`, { to: DataType.FLOAT });
      }
      return this.g.op('MatMul', [x, this.floatParam(unit, `${prefix}.weight`, [inDim, outDim])], base);
    }
    if (!this.has(unit, `${prefix}.qweight`)) getTensor(unit, `${prefix}.weight`); // throws tensor-missing
    if (inDim % 32 !== 0) {
      throw new TandemError('config-invalid', `q4 needs input widths divisible by 32; ${prefix} has ${inDim}.`);
    }
    const blocks = inDim / 32;
    if (this.q4Kernel === 'matmulnbits') {
      // B as uint8 (N, K/32, 16): the same bytes as the packed uint4 (N, K), low nibble first.
      const b = this.external(unit, `${prefix}.qweight`, [outDim, inDim], {
        dataType: DataType.UINT8,
        dims: [outDim, blocks, 16],
      });
      const s = this.external(unit, `${prefix}.scales`, [outDim, blocks], {
        dataType: DataType.FLOAT,
        dims: [outDim * blocks],
      });
      return this.g.op(
        'MatMulNBits',
        [x, b, s],
        base,
        { K: inDim, N: outDim, bits: 4, block_size: 32 },
        'com.microsoft',
      );
    }
    const q = this.external(unit, `${prefix}.qweight`, [outDim, inDim]);
    const s = this.external(unit, `${prefix}.scales`, [outDim, blocks]);
    const zp = this.zeroPoints(outDim, blocks);
    const w = this.g.op('DequantizeLinear', [q, s, zp], `${base}/dq`, { axis: 1, block_size: 32 });
    const wt = this.g.op('Transpose', [w], `${base}/t`, { perm: [1, 0] });
    return this.g.op('MatMul', [x, wt], base);
  }

  private readonly zpCache = new Map<string, string>();
  /** uint4 zero points, all 8, shape (rows, cols). */
  private zeroPoints(rows: number, cols: number): string {
    const key = `${rows}x${cols}`;
    let name = this.zpCache.get(key);
    if (name === undefined) {
      name = this.g.initializer({
        name: `q4_zero_point_${key}`,
        dataType: DataType.UINT4,
        dims: [rows, cols],
        raw: new Uint8Array(Math.ceil((rows * cols) / 2)).fill(0x88),
      });
      this.zpCache.set(key, name);
    }
    return name;
  }

  rmsNorm(x: string, gamma: string, name: string): string {
    return this.g.op('SimplifiedLayerNormalization', [x, gamma], name, {
      axis: -1,
      epsilon: { float: this.eps },
      stash_type: 1,
    });
  }

  /** (normed, sum) = (RMSNorm(x + skip) * gamma, x + skip) */
  skipRmsNorm(x: string, skip: string, gamma: string, name: string): [string, string] {
    const normed = this.g.unique(`${name}/out`);
    const sum = this.g.unique(`${name}/sum`);
    this.g.node('SkipSimplifiedLayerNormalization', [x, skip, gamma], {
      name,
      outputs: [normed, '', '', sum],
      attrs: { epsilon: { float: this.eps } },
      domain: 'com.microsoft',
    });
    return [normed, sum];
  }

  /** Per-head RMSNorm of (B, S, heads*hd) with weight (hd). */
  headNorm(x: string, gamma: string, heads: number, name: string): string {
    const split = this.g.op('Reshape', [x, this.g.int64([0, 0, heads, this.hd])], `${name}/split`);
    const normed = this.rmsNorm(split, gamma, name);
    return this.g.op('Reshape', [normed, this.g.int64([0, 0, heads * this.hd])], `${name}/merge`);
  }

  /** x (B, S, C) -> x[:, S-1:S, :] (B, 1, C). */
  private lastPosition(x: string, name: string): string {
    const g = this.g;
    return g.op('Slice', [x, g.int64([-1]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([1])], name);
  }

  /** Emits the whole stage; returns input and output names. */
  build(spec: StageSpec, maxPositions: number): { inputNames: string[]; outputNames: string[]; units: UnitEntry[] } {
    const { g, H, nq, nkv, hd } = this;
    const V = this.cfg.vocab_size;
    const I = this.cfg.intermediate_size;
    const units = unitsForRange(this.manifest, spec.layers, spec.embeds, spec.hasHead);
    const unitOf = (id: string) => units.find((u) => u.id === id)!;
    const arch = this.manifest.architecture;

    // Inputs.
    let x: string;
    if (spec.embeds) {
      const ids = g.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
      const embed = unitOf('embed');
      const t = getTensor(embed, 'embed_tokens.weight');
      if (t.dtype === 'float16' && this.f16Matmul) {
        // Gather the fp16 rows, then widen them: the table stays fp16 in memory.
        const gathered = g.op('Gather', [this.external(embed, 'embed_tokens.weight', [V, H]), ids], 'embed/gather', {
          axis: 0,
        });
        x = g.op('Cast', [gathered], 'embed/cast', { to: DataType.FLOAT });
      } else {
        // fp32 table (an fp16 one is widened once at session creation: WebGPU without shader-f16 has no fp16 Gather).
        x = g.op('Gather', [this.floatParam(embed, 'embed_tokens.weight', [V, H]), ids], 'embed/gather', { axis: 0 });
      }
    } else {
      x = g.input(HIDDEN_INPUT, DataType.FLOAT, ['batch_size', 'sequence_length', H]);
    }
    const mask = g.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
    const positions = g.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
    const outputNames: string[] = [];

    const layerCount = spec.layers.end - spec.layers.start;
    let seqlensK = '';
    let totalLen = '';
    let cos = '';
    let sin = '';
    if (layerCount > 0) {
      // GroupQueryAttention wants seqlens_k = (valid tokens - 1) as int32 (B) and the total length as an int32 scalar.
      const valid = g.op('ReduceSum', [mask, g.int64([1])], 'mask/valid', { keepdims: 0 });
      seqlensK = g.op('Cast', [g.op('Sub', [valid, g.int64([1], [])], 'mask/minus1')], 'mask/seqlens_k', {
        to: DataType.INT32,
      });
      const maskShape = g.op('Shape', [mask], 'mask/shape');
      const total = g.op('Gather', [maskShape, g.int64([1], [])], 'mask/total', { axis: 0 });
      totalLen = g.op('Cast', [total], 'mask/total_i32', { to: DataType.INT32 });
      const rope = ropeTables(this.cfg, maxPositions);
      cos = g.initializer({
        name: 'rope.cos_cache',
        dataType: DataType.FLOAT,
        dims: [maxPositions, rope.half],
        raw: float32Raw(rope.cos),
      });
      sin = g.initializer({
        name: 'rope.sin_cache',
        dataType: DataType.FLOAT,
        dims: [maxPositions, rope.half],
        raw: float32Raw(rope.sin),
      });
    }

    // Decoder layers. `pending` is the last MLP output not yet added to the residual stream `x`.
    let pending: string | null = null;
    for (let i = spec.layers.start; i < spec.layers.end; i++) {
      const u = unitOf(`layer.${i}`);
      const p = `layer.${i}`;
      const pastK = g.input(`past_key_values.${i}.key`, DataType.FLOAT, [
        'batch_size',
        nkv,
        'past_sequence_length',
        hd,
      ]);
      const pastV = g.input(`past_key_values.${i}.value`, DataType.FLOAT, [
        'batch_size',
        nkv,
        'past_sequence_length',
        hd,
      ]);

      const inNorm = this.floatParam(u, 'input_layernorm.weight', [H]);
      let h: string;
      if (pending === null) h = this.rmsNorm(x, inNorm, `${p}/input_layernorm`);
      else [h, x] = this.skipRmsNorm(pending, x, inNorm, `${p}/input_layernorm`);

      // Attention.
      let q = this.linear(h, u, 'q_proj', H, nq * hd);
      let k = this.linear(h, u, 'k_proj', H, nkv * hd);
      let v = this.linear(h, u, 'v_proj', H, nkv * hd);
      if (arch === 'qwen2') {
        q = g.op('Add', [q, this.floatParam(u, 'q_proj.bias', [nq * hd])], `${p}/q_bias`);
        k = g.op('Add', [k, this.floatParam(u, 'k_proj.bias', [nkv * hd])], `${p}/k_bias`);
        v = g.op('Add', [v, this.floatParam(u, 'v_proj.bias', [nkv * hd])], `${p}/v_bias`);
      }
      if (arch === 'qwen3') {
        q = this.headNorm(q, this.floatParam(u, 'q_norm.weight', [hd]), nq, `${p}/q_norm`);
        k = this.headNorm(k, this.floatParam(u, 'k_norm.weight', [hd]), nkv, `${p}/k_norm`);
      }
      q = g.op('RotaryEmbedding', [q, positions, cos, sin], `${p}/q_rope`, { interleaved: 0 }, 'com.microsoft');
      k = g.op('RotaryEmbedding', [k, positions, cos, sin], `${p}/k_rope`, { interleaved: 0 }, 'com.microsoft');
      const presentK = `present.${i}.key`;
      const presentV = `present.${i}.value`;
      const attn = g.unique(`${p}/attn/out`);
      g.node('GroupQueryAttention', [q, k, v, pastK, pastV, seqlensK, totalLen], {
        name: `${p}/attn`,
        outputs: [attn, presentK, presentV],
        attrs: {
          num_heads: nq,
          kv_num_heads: nkv,
          scale: { float: 1 / Math.sqrt(hd) },
          do_rotary: 0,
          local_window_size: -1,
        },
        domain: 'com.microsoft',
      });
      const o = this.linear(attn, u, 'o_proj', nq * hd, H);

      // MLP (SwiGLU).
      const postNorm = this.floatParam(u, 'post_attention_layernorm.weight', [H]);
      const [h2, x2] = this.skipRmsNorm(o, x, postNorm, `${p}/post_attention_layernorm`);
      x = x2;
      const gate = this.linear(h2, u, 'gate_proj', H, I);
      const up = this.linear(h2, u, 'up_proj', H, I);
      const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate], `${p}/mlp/sigmoid`)], `${p}/mlp/silu`);
      pending = this.linear(g.op('Mul', [silu, up], `${p}/mlp/gated`), u, 'down_proj', I, H);

      g.output(presentK, DataType.FLOAT, ['batch_size', nkv, 'total_sequence_length', hd]);
      g.output(presentV, DataType.FLOAT, ['batch_size', nkv, 'total_sequence_length', hd]);
      outputNames.push(presentK, presentV);
    }

    // Outputs.
    if (spec.hasHead) {
      const head = unitOf('head');
      const normW = this.floatParam(head, 'norm.weight', [H]);
      if (this.logits === 'last') {
        // (B, S, H) -> (B, 1, H): both halves of the residual sum, so the fused skip-norm still applies.
        x = this.lastPosition(x, 'head/last/x');
        if (pending !== null) pending = this.lastPosition(pending, 'head/last/pending');
      }
      const normed =
        pending === null ? this.rmsNorm(x, normW, 'head/norm') : this.skipRmsNorm(pending, x, normW, 'head/norm')[0];
      const logits = this.linear(normed, head, 'lm_head', H, V);
      g.node('Identity', [logits], { name: 'head/logits', outputs: [LOGITS_OUTPUT] });
      g.output(LOGITS_OUTPUT, DataType.FLOAT, ['batch_size', this.logits === 'last' ? 1 : 'sequence_length', V]);
      outputNames.unshift(LOGITS_OUTPUT);
    } else {
      const hidden = pending === null ? x : g.op('Add', [pending, x], 'residual/final');
      g.node('Identity', [hidden], { name: 'hidden_states/out', outputs: [HIDDEN_OUTPUT] });
      g.output(HIDDEN_OUTPUT, DataType.FLOAT, ['batch_size', 'sequence_length', H]);
      outputNames.unshift(HIDDEN_OUTPUT);
    }
    // Main output first, then the presents in layer order.
    g.outputs.unshift(g.outputs.pop()!);
    return { inputNames: g.inputs.map((i) => i.name), outputNames, units };
  }
}

function stageName(spec: StageSpec): string {
  return `${spec.embeds ? 'embed+' : ''}layers_${spec.layers.start}-${spec.layers.end - 1}${spec.hasHead ? '+head' : ''}`;
}

/** The stage model before serialisation (full-graph.ts relocates its external tensors). */
export interface StageModelDef {
  def: ModelDef;
  units: UnitEntry[];
  inputNames: string[];
  outputNames: string[];
}

/** Rows of the RoPE tables = the longest sequence (prompt + generated tokens) a stage graph supports. */
export function stageMaxPositions(manifest: ModelManifest, opts: StageGraphOptions = {}): number {
  return (
    opts.maxPositions ??
    Math.min(manifest.config.max_position_embeddings ?? DEFAULT_MAX_POSITIONS, DEFAULT_MAX_POSITIONS)
  );
}

export function buildStageModelDef(
  manifest: ModelManifest,
  spec: StageSpec,
  opts: StageGraphOptions = {},
): StageModelDef {
  const maxPositions = stageMaxPositions(manifest, opts);
  if (!Number.isInteger(maxPositions) || maxPositions < 1)
    throw new TandemError('range-invalid', `maxPositions must be a positive integer, got ${maxPositions}.`);
  if (spec.layers.end === spec.layers.start && !spec.embeds && !spec.hasHead) {
    throw new TandemError('range-invalid', 'A stage needs at least one layer, the embedding or the head.');
  }
  const emitter = new StageEmitter(manifest, opts);
  const { inputNames, outputNames, units } = emitter.build(spec, maxPositions);
  const def: ModelDef = {
    irVersion: 10,
    opsetImports: [
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ],
    producerName: 'tandem',
    producerVersion: '0.1.0',
    graph: emitter.g.graph(`${manifest.name}:${stageName(spec)}`),
    metadata: { 'tandem.package': manifest.name, 'tandem.dtype': manifest.dtype, 'tandem.stage': stageName(spec) },
  };
  return { def, units, inputNames, outputNames };
}

/** Builds the ONNX model of one stage; see the file comment for its inputs and outputs. */
export function buildStageGraph(manifest: ModelManifest, spec: StageSpec, opts: StageGraphOptions = {}): StageGraph {
  const { def, units, inputNames, outputNames } = buildStageModelDef(manifest, spec, opts);
  return {
    model: encodeModel(def),
    externalData: units.map((u) => ({ path: u.file, unitId: u.id })),
    inputNames,
    outputNames,
  };
}
