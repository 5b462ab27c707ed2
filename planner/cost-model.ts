/**
 * Per-layer cost model of a transformer block (GQA attention + SwiGLU FFN), equations [1]-[7] of the
 * CSGO paper, plus the embedding and the final norm + LM head as optional extra costs of the first and
 * last pipeline stage. Pure: no I/O.
 */
import { TandemError } from '../core/errors.ts';
import type { CostOptions, ModelConfig } from './types.ts';

/** Costs of one unit (a layer, the embedding or the head) at a given prefill length t. */
export interface UnitCost {
  flops: number; // W, FLOP for the whole prefill of t tokens
  activationBytes: number; // A, bytes of the unit's output activation for t tokens
  paramBytes: number; // P, bytes of stored parameters
}

/** d_head: head_dim if given, else hidden_size / num_attention_heads. */
export function headDim(model: ModelConfig): number {
  return model.head_dim ?? model.hidden_size / model.num_attention_heads;
}

/** Bytes per stored parameter of the embedding and the head (default: the layers' bytesPerParam). */
export function extrasBytesPerParam(model: ModelConfig): number {
  return model.extrasBytesPerParam ?? model.bytesPerParam;
}

/** Bytes per activation value (default 2: bf16, as in [4]). */
export function activationBytesPerValue(model: ModelConfig): number {
  return model.bytesPerActivation ?? 2;
}

/** Throws TandemError('model-invalid') naming the first bad field. */
export function checkModel(model: ModelConfig): void {
  const positiveInts: (keyof ModelConfig)[] = [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'num_key_value_heads',
    'intermediate_size',
    'vocab_size',
  ];
  for (const key of positiveInts) {
    const v = model[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new TandemError('model-invalid', `model.${key} must be a positive integer, got ${String(v)}`);
    }
  }
  const positiveReals: (keyof ModelConfig)[] = ['bytesPerParam'];
  if (model.extrasBytesPerParam !== undefined) positiveReals.push('extrasBytesPerParam');
  if (model.head_dim !== undefined) positiveReals.push('head_dim');
  if (model.bytesPerActivation !== undefined) positiveReals.push('bytesPerActivation');
  for (const key of positiveReals) {
    const v = model[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new TandemError('model-invalid', `model.${key} must be a positive number, got ${String(v)}`);
    }
  }
}

/** Costs of one transformer block for a prefill of t tokens, [1]-[7]. */
export function layerCost(model: ModelConfig, t: number, options: CostOptions = {}): UnitCost {
  const d = model.hidden_size; // d_model
  const hq = model.num_attention_heads; // h_q
  const hk = model.num_key_value_heads; // h_k
  const dh = headDim(model); // d_head
  const dff = model.intermediate_size; // d_ff
  // [1] projections Q,O (d_model h_q each), K,V (d_model h_k each, or counted once), QK^T + AV (t h_q)
  const kvFactor = options.kvProjections === 'once' ? 0.5 : 1;
  const wAttn = 4 * t * dh * (d * hq + kvFactor * d * hk + t * hq);
  const wFfn = 6 * t * d * dff; // [2] gate, up, down: 3 matmuls x 2 FLOP/MAC
  const paramsAttn = 2 * d * dh * (hq + hk); // [5] / bytes-per-param: Q,O [d, hq dh]; K,V [d, hk dh]
  const paramsFfn = 3 * d * dff; // [6] / bytes-per-param: gate, up [d, dff]; down [dff, d]
  return {
    flops: wAttn + wFfn, // [3]
    activationBytes: activationBytesPerValue(model) * t * d, // [4] hidden state [t, d_model]
    paramBytes: model.bytesPerParam * (paramsAttn + paramsFfn), // [7]
  };
}

/** The token embedding, an extra cost of the first stage: a table [V, d_model], a gather (no FLOPs). */
export function embeddingCost(model: ModelConfig, t: number): UnitCost {
  return {
    flops: 0,
    activationBytes: activationBytesPerValue(model) * t * model.hidden_size,
    paramBytes: extrasBytesPerParam(model) * model.vocab_size * model.hidden_size,
  };
}

/**
 * The final RMSNorm + LM head, an extra cost of the last stage: norm weight [d_model] and lm_head
 * [d_model, V] (every stage is self-contained, so a tied head is a stored copy). The stage graph slices
 * the last of the t positions before the norm (only that row is sampled): logits [1, V], whatever t is.
 */
export function headCost(model: ModelConfig, _t: number): UnitCost {
  const d = model.hidden_size;
  const v = model.vocab_size;
  return {
    flops: 2 * d * v + 4 * d, // logits matmul + norm (square, sum, scale, weight), one row
    activationBytes: activationBytesPerValue(model) * v, // logits [1, V]
    paramBytes: extrasBytesPerParam(model) * (d + d * v),
  };
}
