/**
 * A plain fp64 reference forward pass with a KV cache for qwen3 / qwen2 / llama packages, written top
 * to bottom like llama2.c's forward(). Batch size 1. Weights come from the package's unit blobs
 * (float32, float16, or q4 dequantised); every activation is a Float64Array. Pure: the caller supplies
 * the unit bytes (Node: PackageReader; page: IndexedDB).
 *
 * Used as the independent reference the ONNX stage graphs and the pipeline are compared against, so it
 * shares nothing with them but the manifest and the unit decoding.
 */
import { TandemError } from '../core/errors.ts';
import {
  getUnit,
  headDim,
  type LayerRange,
  type ModelConfigJson,
  type ModelManifest,
  type UnitEntry,
} from './manifest.ts';
import { readFloatTensor, readMatmulWeight } from './package-layout.ts';

/** Weights of one decoder layer, matmuls in `x @ W` orientation [in, out]. */
interface LayerWeights {
  inputNorm: Float32Array; // (H,)
  wq: Float32Array; // (H, nq*hd)
  wk: Float32Array; // (H, nkv*hd)
  wv: Float32Array; // (H, nkv*hd)
  bq: Float32Array | null; // (nq*hd,) qwen2 only
  bk: Float32Array | null; // (nkv*hd,)
  bv: Float32Array | null; // (nkv*hd,)
  qNorm: Float32Array | null; // (hd,) qwen3 only
  kNorm: Float32Array | null; // (hd,)
  wo: Float32Array; // (nq*hd, H)
  postNorm: Float32Array; // (H,)
  wGate: Float32Array; // (H, I)
  wUp: Float32Array; // (H, I)
  wDown: Float32Array; // (I, H)
}

/** Per-layer cache of rotated keys and values, one (nkv*hd,) row per cached position. */
export class KVCache {
  readonly keys = new Map<number, Float64Array[]>();
  readonly values = new Map<number, Float64Array[]>();

  /** Number of positions cached for `layer` (0 if none). */
  length(layer: number): number {
    return this.keys.get(layer)?.length ?? 0;
  }

  /** Cached keys or values of a layer as (nkv, past, hd), the layout of `present.{i}.key/value`. */
  export(layer: number, which: 'key' | 'value', nkv: number, hd: number): Float64Array {
    const rows = (which === 'key' ? this.keys : this.values).get(layer) ?? [];
    const out = new Float64Array(nkv * rows.length * hd);
    rows.forEach((row, p) => {
      for (let h = 0; h < nkv; h++) for (let d = 0; d < hd; d++) out[(h * rows.length + p) * hd + d] = row[h * hd + d]!;
    });
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// Small pure helpers

/** out = x (n,) @ W (n, m) [+ b (m,)] -> (m,) */
function matvec(x: Float64Array, w: Float32Array, n: number, m: number, b: Float32Array | null = null): Float64Array {
  const out = new Float64Array(m);
  if (b) for (let j = 0; j < m; j++) out[j] = b[j]!;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    const row = i * m;
    for (let j = 0; j < m; j++) out[j] += xi * w[row + j];
  }
  return out;
}

/** RMSNorm of x[offset .. offset+n) in place: x / sqrt(mean(x^2) + eps) * w */
function rmsnormInPlace(x: Float64Array, offset: number, n: number, w: Float32Array, eps: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[offset + i] * x[offset + i];
  const inv = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) x[offset + i] = x[offset + i] * inv * w[i];
}

function rmsnorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  const out = Float64Array.from(x);
  rmsnormInPlace(out, 0, x.length, w, eps);
  return out;
}

/** HF rotate_half RoPE on each head of x (heads, hd) in place, at position pos. */
function ropeInPlace(x: Float64Array, heads: number, hd: number, pos: number, invFreq: Float64Array): void {
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * hd;
    for (let j = 0; j < half; j++) {
      const angle = pos * invFreq[j];
      const c = Math.cos(angle),
        s = Math.sin(angle);
      const a = x[base + j],
        b = x[base + j + half];
      x[base + j] = a * c - b * s;
      x[base + j + half] = b * c + a * s;
    }
  }
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** inv_freq[j] = theta^(-2j/hd), with HF 'linear' or 'llama3' rope scaling applied when configured. */
export function referenceInvFreq(config: ModelConfigJson): Float64Array {
  const hd = headDim(config);
  const inv = new Float64Array(hd / 2);
  for (let j = 0; j < hd / 2; j++) inv[j] = 1 / config.rope_theta ** ((2 * j) / hd);
  const scaling = (config.rope_scaling ?? null) as Partial<Record<string, number | string>> | null; // HF fields are optional
  const kind = scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  if (kind === 'default') return inv;
  const factor = Number(scaling!.factor);
  if (kind === 'linear') return inv.map((f) => f / factor);
  if (kind === 'llama3') {
    const low = Number(scaling!.low_freq_factor),
      high = Number(scaling!.high_freq_factor);
    const oldCtx = Number(scaling!.original_max_position_embeddings);
    const lowWavelen = oldCtx / low,
      highWavelen = oldCtx / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (oldCtx / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new TandemError(
    'config-unsupported',
    `The reference forward pass does not implement rope scaling '${String(kind)}'.`,
  );
}

// ---------------------------------------------------------------------------------------------------

export class ReferenceModel {
  readonly config: ModelConfigJson;
  readonly H: number; // hidden size
  readonly nq: number; // query heads
  readonly nkv: number; // key/value heads
  readonly hd: number; // head dim
  readonly I: number; // FFN inner size
  readonly V: number; // vocab size
  private readonly invFreq: Float64Array; // (hd/2,)
  private readonly layerCache = new Map<number, LayerWeights>();
  private embedTable: Float32Array | null = null; // (V, H)
  private headWeights: { norm: Float32Array; lmHead: Float32Array } | null = null; // (H,), (H, V)

  /** `loadUnit` returns a unit's (already verified) bytes; it is called at most once per unit. */
  constructor(
    readonly manifest: ModelManifest,
    private readonly loadUnit: (unit: UnitEntry) => Uint8Array,
  ) {
    const c = manifest.config;
    this.config = c;
    this.H = c.hidden_size;
    this.nq = c.num_attention_heads;
    this.nkv = c.num_key_value_heads;
    this.hd = headDim(c);
    this.I = c.intermediate_size;
    this.V = c.vocab_size;
    this.invFreq = referenceInvFreq(c);
  }

  newCache(): KVCache {
    return new KVCache();
  }

  private layer(i: number): LayerWeights {
    const cached = this.layerCache.get(i);
    if (cached) return cached;
    const unit = getUnit(this.manifest, `layer.${i}`);
    const bytes = this.loadUnit(unit);
    const vec = (name: string) => readFloatTensor(unit, bytes, name).data;
    const opt = (name: string) => (unit.tensors.some((t) => t.name === name) ? vec(name) : null);
    const mm = (p: string) => readMatmulWeight(unit, bytes, p).data;
    const arch = this.manifest.architecture;
    const w: LayerWeights = {
      inputNorm: vec('input_layernorm.weight'),
      wq: mm('q_proj'),
      wk: mm('k_proj'),
      wv: mm('v_proj'),
      bq: arch === 'qwen2' ? vec('q_proj.bias') : opt('q_proj.bias'),
      bk: arch === 'qwen2' ? vec('k_proj.bias') : opt('k_proj.bias'),
      bv: arch === 'qwen2' ? vec('v_proj.bias') : opt('v_proj.bias'),
      qNorm: arch === 'qwen3' ? vec('q_norm.weight') : null,
      kNorm: arch === 'qwen3' ? vec('k_norm.weight') : null,
      wo: mm('o_proj'),
      postNorm: vec('post_attention_layernorm.weight'),
      wGate: mm('gate_proj'),
      wUp: mm('up_proj'),
      wDown: mm('down_proj'),
    };
    this.layerCache.set(i, w);
    return w;
  }

  /** Token ids (S,) -> hidden states (S, H), row-major. */
  embed(tokens: readonly number[]): Float64Array {
    if (!this.embedTable) {
      const unit = getUnit(this.manifest, 'embed');
      this.embedTable = readFloatTensor(unit, this.loadUnit(unit), 'embed_tokens.weight').data;
    }
    const { H, V } = this;
    const x = new Float64Array(tokens.length * H);
    tokens.forEach((t, s) => {
      if (!Number.isInteger(t) || t < 0 || t >= V)
        throw new TandemError('token-out-of-range', `Token id ${t} is outside the vocabulary 0..${V - 1}.`);
      for (let i = 0; i < H; i++) x[s * H + i] = this.embedTable![t * H + i]!;
    });
    return x;
  }

  /**
   * Run decoder layers range.start..range.end-1 on hidden states (S, H), appending to `cache`. Token s
   * is at position cache.length(layer) + s (its layers' own cache: a stage's cache holds its layers only).
   */
  layers(hidden: Float64Array, range: LayerRange, cache: KVCache): Float64Array {
    const { H, nq, nkv, hd, I } = this;
    const eps = this.config.rms_norm_eps;
    const S = hidden.length / H;
    const q = nq * hd,
      kv = nkv * hd;
    const group = nq / nkv; // query heads per kv head
    const scale = 1 / Math.sqrt(hd);
    const x = Float64Array.from(hidden); // (S, H) residual stream
    for (let l = range.start; l < range.end; l++) {
      const w = this.layer(l);
      if (!cache.keys.has(l)) {
        cache.keys.set(l, []);
        cache.values.set(l, []);
      }
      const keys = cache.keys.get(l)!; // past rows, each (nkv*hd,)
      const values = cache.values.get(l)!;
      const past = keys.length;
      for (let s = 0; s < S; s++) {
        const pos = past + s;
        const xs = x.subarray(s * H, (s + 1) * H); // (H,)
        // attention: RMSNorm -> q, k, v (+ bias)
        const xn = rmsnorm(xs, w.inputNorm, eps); // (H,)
        const qv = matvec(xn, w.wq, H, q, w.bq); // (nq*hd,)
        const kvec = matvec(xn, w.wk, H, kv, w.bk); // (nkv*hd,)
        const vvec = matvec(xn, w.wv, H, kv, w.bv); // (nkv*hd,)
        // qwen3: RMSNorm over each head's hd values before RoPE
        if (w.qNorm && w.kNorm) {
          for (let h = 0; h < nq; h++) rmsnormInPlace(qv, h * hd, hd, w.qNorm, eps);
          for (let h = 0; h < nkv; h++) rmsnormInPlace(kvec, h * hd, hd, w.kNorm, eps);
        }
        // RoPE (rotate_half) on q and k
        ropeInPlace(qv, nq, hd, pos, this.invFreq);
        ropeInPlace(kvec, nkv, hd, pos, this.invFreq);
        keys.push(kvec);
        values.push(vvec);
        // causal GQA attention over positions 0..pos
        const att = new Float64Array(q); // (nq*hd,)
        const scores = new Float64Array(pos + 1);
        for (let h = 0; h < nq; h++) {
          const kh = Math.floor(h / group);
          let max = -Infinity;
          for (let p = 0; p <= pos; p++) {
            let dot = 0;
            for (let d = 0; d < hd; d++) dot += qv[h * hd + d] * keys[p][kh * hd + d];
            scores[p] = dot * scale;
            max = Math.max(max, scores[p]);
          }
          let sum = 0;
          for (let p = 0; p <= pos; p++) {
            scores[p] = Math.exp(scores[p] - max);
            sum += scores[p];
          }
          for (let p = 0; p <= pos; p++) {
            const a = scores[p] / sum;
            for (let d = 0; d < hd; d++) att[h * hd + d] += a * values[p][kh * hd + d];
          }
        }
        // output projection + residual
        const o = matvec(att, w.wo, q, H); // (H,)
        for (let i = 0; i < H; i++) xs[i] += o[i];
        // FFN: RMSNorm -> SwiGLU -> down + residual
        const xn2 = rmsnorm(xs, w.postNorm, eps); // (H,)
        const gate = matvec(xn2, w.wGate, H, I); // (I,)
        const up = matvec(xn2, w.wUp, H, I); // (I,)
        for (let i = 0; i < I; i++) gate[i] = silu(gate[i]) * up[i];
        const down = matvec(gate, w.wDown, I, H); // (H,)
        for (let i = 0; i < H; i++) xs[i] += down[i];
      }
    }
    return x;
  }

  /** Final RMSNorm + LM head: hidden states (S, H) -> logits (S, V). */
  head(hidden: Float64Array): Float64Array {
    if (!this.headWeights) {
      const unit = getUnit(this.manifest, 'head');
      const bytes = this.loadUnit(unit);
      this.headWeights = {
        norm: readFloatTensor(unit, bytes, 'norm.weight').data,
        lmHead: readFloatTensor(unit, bytes, 'lm_head.weight').data,
      };
    }
    const { H, V } = this;
    const S = hidden.length / H;
    const logits = new Float64Array(S * V);
    for (let s = 0; s < S; s++) {
      const xn = rmsnorm(hidden.subarray(s * H, (s + 1) * H), this.headWeights.norm, this.config.rms_norm_eps);
      logits.set(matvec(xn, this.headWeights.lmHead, H, V), s * V);
    }
    return logits;
  }

  /** Whole model: token ids (S,) -> logits (S, V), appending to `cache`. */
  forward(tokens: readonly number[], cache: KVCache): Float64Array {
    const x = this.embed(tokens);
    const h = this.layers(x, { start: 0, end: this.config.num_hidden_layers }, cache);
    return this.head(h);
  }

  /** Greedy decoding: prefill `prompt`, then `maxNewTokens` argmax steps (stops after an id in `stop`). */
  greedy(prompt: readonly number[], maxNewTokens: number, stop: readonly number[] = []): number[] {
    const cache = this.newCache();
    const out: number[] = [];
    let logits = this.forward(prompt, cache);
    let last = logits.subarray(logits.length - this.V);
    for (let n = 0; n < maxNewTokens; n++) {
      const next = argmax(last);
      out.push(next);
      if (stop.includes(next)) break;
      logits = this.forward([next], cache);
      last = logits;
    }
    return out;
  }
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
