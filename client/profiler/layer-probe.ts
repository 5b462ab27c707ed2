/**
 * Real stage layers as the compute probe: `layers` qwen3 decoder layers (fp32) of the given widths,
 * built by the stages' own graph builder (shards/stage-graph.ts) from in-memory units of small random
 * weights, run as a stage runs a prefill (hidden states in, empty KV cache kept in the session, t rows).
 * So the sweep times everything a stage's layers cost on this backend: the matmuls, and also the norms,
 * RoPE, attention and per-op overheads that dominate thin layers on wasm. FLOPs per run are the
 * planner's own count (planner/cost-model.ts `layerCost`), so c* U(t) predicts the planner's terms
 * directly. Checked against the fp64 reference forward pass (shards/reference-forward.ts).
 */
import { layerCost } from '../../planner/cost-model.ts';
import type { ModelConfigJson, ModelManifest, UnitEntry } from '../../shards/manifest.ts';
import { packUnit, type TensorData } from '../../shards/package-layout.ts';
import { ReferenceModel } from '../../shards/reference-forward.ts';
import { buildStageGraph, HIDDEN_OUTPUT, stageSessionConfig, type StageSpec } from '../../shards/stage-graph.ts';
import { stageFeeds } from '../../shards/runtime/stage-stepper.ts';
import type { HostTensor, StageBackend } from '../../shards/runtime/stage-runtime.ts';
import { checkProbeShape } from './stage-probe.ts';
import { relativeError, type SweepProbe } from './sweep-probe.ts';

/** Widths of the probe's layers (Hugging Face names). */
export interface LayerProbeShape {
  hidden_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  intermediate_size: number;
  layers: number;
}

/**
 * What the page profiles with: 2 layers split like Qwen3-0.6B's (q heads x head_dim = hidden, h_k = h_q / 2,
 * MLP 3 x hidden) at hidden 256: 6 MiB fp32, prefills of 1 .. 256 rows.
 */
export const PROFILE_LAYER_PROBE: { shape: LayerProbeShape; sweep: readonly number[]; maxPositions: number } = {
  shape: {
    hidden_size: 256,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    intermediate_size: 768,
    layers: 2,
  },
  sweep: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  maxPositions: 256,
};

/** For a GPU that runs the largest size above in a few ms: one Qwen3-0.6B layer (60 MiB fp32), up to 2048 rows. */
export const PROFILE_LAYER_PROBE_LARGE: typeof PROFILE_LAYER_PROBE = {
  shape: {
    hidden_size: 1024,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    intermediate_size: 3072,
    layers: 1,
  },
  sweep: [1, 4, 16, 64, 256, 512, 1024, 2048],
  maxPositions: 2048,
};

/** xorshift32 uniform values in ±scale, as little-endian fp32 bytes. */
function randomF32(n: number, scale: number, state: { s: number }, offset = 0): Uint8Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state.s ^= state.s << 13;
    state.s ^= state.s >>> 17;
    state.s ^= state.s << 5;
    f[i] = offset + (((state.s >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return new Uint8Array(f.buffer);
}

/** A qwen3 fp32 package's manifest with `layers` random layer units (no embedding or head weights). */
export function layerProbePackage(
  shape: LayerProbeShape,
  maxPositions: number,
  seed = 1,
): { manifest: ModelManifest; blobs: Map<string, Uint8Array> } {
  const H = shape.hidden_size;
  const hd = shape.head_dim;
  const q = shape.num_attention_heads * hd;
  const kv = shape.num_key_value_heads * hd;
  const I = shape.intermediate_size;
  checkProbeShape({ dim: H, ffn: I, layers: shape.layers });
  const state = { s: (seed * 0x9e3779b9) >>> 0 || 1 };
  // matmuls stored [in, out] for x @ W (as the converter writes them), uniform in ±1/sqrt(in); norms ~1
  const mm = (name: string, inp: number, out: number): TensorData => ({
    name,
    dtype: 'float32',
    shape: [inp, out],
    data: randomF32(inp * out, 1 / Math.sqrt(inp), state),
  });
  const norm = (name: string, n: number): TensorData => ({
    name,
    dtype: 'float32',
    shape: [n],
    data: randomF32(n, 0.1, state, 1),
  });
  const blobs = new Map<string, Uint8Array>();
  const units: UnitEntry[] = [
    { id: 'embed', kind: 'embed', file: 'embed.bin', bytes: 0, sha256: '0'.repeat(64), tensors: [] },
  ];
  for (let l = 0; l < shape.layers; l++) {
    const { bytes, entries } = packUnit([
      norm('input_layernorm.weight', H),
      mm('q_proj.weight', H, q),
      mm('k_proj.weight', H, kv),
      mm('v_proj.weight', H, kv),
      mm('o_proj.weight', q, H),
      norm('q_norm.weight', hd),
      norm('k_norm.weight', hd),
      norm('post_attention_layernorm.weight', H),
      mm('gate_proj.weight', H, I),
      mm('up_proj.weight', H, I),
      mm('down_proj.weight', I, H),
    ]);
    const file = `layer.${l}.bin`;
    blobs.set(file, bytes);
    units.push({
      id: `layer.${l}`,
      kind: 'layer',
      layer: l,
      file,
      bytes: bytes.byteLength,
      sha256: '0'.repeat(64),
      tensors: entries,
    });
  }
  units.push({ id: 'head', kind: 'head', file: 'head.bin', bytes: 0, sha256: '0'.repeat(64), tensors: [] });
  const config: ModelConfigJson = {
    num_hidden_layers: shape.layers,
    hidden_size: H,
    num_attention_heads: shape.num_attention_heads,
    num_key_value_heads: shape.num_key_value_heads,
    head_dim: hd,
    intermediate_size: I,
    vocab_size: 1,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
    max_position_embeddings: maxPositions,
  };
  const manifest: ModelManifest = {
    format: 'tandem-model-package',
    version: 1,
    name: 'profiler-layer-probe',
    architecture: 'qwen3',
    dtype: 'fp32',
    config,
    generation: null,
    tokenizer: { files: [] },
    units,
  };
  return { manifest, blobs };
}

/** The probe's hidden states in: [1, t, H], deterministic values in ±0.5. */
function hiddenInput(H: number, tokens: number): Float32Array {
  return Float32Array.from({ length: tokens * H }, (_, i) => Math.sin(i * 0.37) * 0.5);
}

/**
 * The layers as the compute sweep runs them: each run is a prefill of t rows from an empty KV cache.
 * `maxPositions` bounds t (the RoPE tables' rows).
 */
export function layerSweepProbe(shape: LayerProbeShape, backend: StageBackend, maxPositions: number): SweepProbe {
  const { manifest, blobs } = layerProbePackage(shape, maxPositions);
  const spec: StageSpec = { layers: { start: 0, end: shape.layers }, embeds: false, hasHead: false };
  const opts = { backend: backend === 'node' ? ('cpu' as const) : backend, maxPositions };
  const graph = buildStageGraph(manifest, spec, opts);
  const H = shape.hidden_size;
  const model = { ...manifest.config, bytesPerParam: 4 };
  const feeds = (tokens: number): Record<string, HostTensor> =>
    stageFeeds(spec, { dtype: 'float32', dims: [1, tokens, H], data: hiddenInput(H, tokens) }, 0);
  const unitBytes = (u: UnitEntry) => blobs.get(u.file) ?? new Uint8Array(0);
  return {
    description:
      `${shape.layers} qwen3 decoder layer${shape.layers === 1 ? '' : 's'} built as a stage (hidden ${H}, ` +
      `${shape.num_attention_heads}/${shape.num_key_value_heads} heads of ${shape.head_dim}, MLP ${shape.intermediate_size}, fp32), ` +
      `a prefill of t rows from an empty KV cache per run; FLOPs = the planner's layer count`,
    dim: H,
    weightBytes: [...blobs.values()].reduce((n, b) => n + b.byteLength, 0),
    session: {
      model: graph.model,
      externalData: graph.externalData.map((e) => ({ path: e.path, data: blobs.get(e.path)! })),
      config: stageSessionConfig(manifest, opts),
      kvCache: {
        layers: Array.from({ length: shape.layers }, (_, l) => l),
        heads: shape.num_key_value_heads,
        headDim: shape.head_dim,
      },
    },
    feeds,
    runOptions: { newSequence: true },
    flops: (tokens) => shape.layers * layerCost(model, tokens).flops,
    checkError: (tokens, outputs) => {
      const ref = new ReferenceModel(manifest, unitBytes);
      const want = ref.layers(Float64Array.from(hiddenInput(H, tokens)), spec.layers, ref.newCache());
      return relativeError(outputs[HIDDEN_OUTPUT], want);
    },
  };
}
