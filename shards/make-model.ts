/**
 * Deterministic test/demo checkpoints: a Hugging Face style folder (config.json, model.safetensors,
 * generation_config.json, tokenizer.json, tokenizer_config.json) with seeded random weights, so tests
 * and the embedded default need no download. Same options -> same bytes, every run.
 *
 * Weights are uniform with the variance of N(0, std^2), std chosen so activations stay O(1):
 * projections 1/sqrt(fan_in), norm weights 1 +- 0.1, embedding 1 (tied head: logits ~ N(0, H) after the
 * final norm, untied head 1/sqrt(H) * 4), so greedy tokens vary with the input.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TandemError } from '../core/errors.ts';
import type { Architecture } from './manifest.ts';
import { encodeBfloat16, encodeFloat16, encodeFloat32, encodeHeader, type SafetensorsDType } from './safetensors.ts';
import { bundledQwen3TokenizerDir, copyTokenizerFiles, QWEN3_TOKENS } from './tokenizer-files.ts';
import { mulberry32 } from '../core/random.ts';

export type Preset = 'tiny' | 'demo' | 'realistic';
export type CheckpointDType = 'bf16' | 'fp16' | 'fp32';

export interface ModelShape {
  num_hidden_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  intermediate_size: number;
  vocab_size: number;
  max_position_embeddings: number;
}

/** vocab_size 151936 like Qwen3: covers the real tokenizer's 151,669 tokens. */
export const PRESETS: Record<Preset, ModelShape> = {
  // 37 MiB of embedding (fp32); everything else is tiny so tests stay fast.
  tiny: {
    num_hidden_layers: 4,
    hidden_size: 64,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    intermediate_size: 128,
    vocab_size: 151936,
    max_position_embeddings: 2048,
  },
  // 24 layers of 2.44 MiB fp32 each + 74 MiB embedding + 74 MiB head: ~207 MiB fp32 package.
  demo: {
    num_hidden_layers: 24,
    hidden_size: 128,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    intermediate_size: 1536,
    vocab_size: 151936,
    max_position_embeddings: 4096,
  },
  // Split like Qwen3-0.6B (28 layers of 15.7 M parameters, 155.6 M embedding, tied): the layers hold
  // ~74% of the parameters and, with the head over every position, ~74% of a 256-token prefill's FLOPs.
  // The vocabulary must stay 151936 (the real tokenizer), so the embedding fixes the size: hidden 32
  // (q heads x head_dim = 2 x hidden and h_k = h_q / 2, as Qwen3), and a wide FFN carries the layers'
  // share. 16 layers of 0.87 M + 4.9 M embedding = 18.7 M parameters: 37 MiB bf16 checkpoint,
  // ~90 MiB fp32 package (head stored apart), ~47 MiB fp16.
  realistic: {
    num_hidden_layers: 16,
    hidden_size: 32,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    intermediate_size: 8960,
    vocab_size: 151936,
    max_position_embeddings: 4096,
  },
};

export interface MakeModelOptions {
  preset: Preset;
  arch?: Architecture;
  /** tie_word_embeddings (default true, like Qwen3-0.6B) */
  tied?: boolean;
  /** storage dtype of the checkpoint (default bf16, like real Qwen3 checkpoints) */
  dtype?: CheckpointDType;
  seed?: number;
  /** change preset shape fields (tests use a small vocab_size to stay fast) */
  overrides?: Partial<ModelShape>;
}

/** The config.json of a made model: the shape and the fields every architecture has, plus architecture-specific ones. */
export type MadeConfig = ModelShape & {
  architectures: string[];
  tie_word_embeddings: boolean;
  torch_dtype: string;
} & Record<string, unknown>;

/** Hugging Face config.json for a made model. */
export function makeConfig(opts: MakeModelOptions): MadeConfig {
  const arch = opts.arch ?? 'qwen3';
  const tied = opts.tied ?? true;
  const shape: ModelShape = { ...PRESETS[opts.preset], ...opts.overrides };
  if (shape.hidden_size !== shape.num_attention_heads * shape.head_dim && arch !== 'qwen3') {
    throw new TandemError('make-model-options', `${arch} needs hidden_size == num_attention_heads * head_dim.`);
  }
  if (shape.num_attention_heads % shape.num_key_value_heads !== 0) {
    throw new TandemError(
      'make-model-options',
      `num_attention_heads (${shape.num_attention_heads}) must be a multiple of num_key_value_heads (${shape.num_key_value_heads}).`,
    );
  }
  const torchDtype = { bf16: 'bfloat16', fp16: 'float16', fp32: 'float32' }[opts.dtype ?? 'bf16'];
  const common = {
    ...shape,
    hidden_act: 'silu',
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: tied,
    torch_dtype: torchDtype,
    use_cache: true,
    attention_dropout: 0.0,
    bos_token_id: QWEN3_TOKENS.endOfText,
    eos_token_id: QWEN3_TOKENS.imEnd,
  };
  switch (arch) {
    case 'qwen3':
      return {
        architectures: ['Qwen3ForCausalLM'],
        model_type: 'qwen3',
        ...common,
        attention_bias: false,
        rope_theta: 1000000,
        rope_scaling: null,
        sliding_window: null,
        use_sliding_window: false,
        max_window_layers: shape.num_hidden_layers,
      };
    case 'qwen2':
      return {
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        ...common,
        rope_theta: 1000000,
        rope_scaling: null,
        sliding_window: null,
        use_sliding_window: false,
        max_window_layers: shape.num_hidden_layers,
      };
    case 'llama':
      return {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        ...common,
        attention_bias: false,
        mlp_bias: false,
        pretraining_tp: 1,
        rope_theta: 500000,
        rope_scaling: null,
      };
  }
}

export function makeGenerationConfig(): Record<string, unknown> {
  return {
    bos_token_id: QWEN3_TOKENS.endOfText,
    eos_token_id: [QWEN3_TOKENS.imEnd, QWEN3_TOKENS.endOfText],
    pad_token_id: QWEN3_TOKENS.endOfText,
    do_sample: false,
  };
}

interface TensorSpec {
  name: string;
  /** HF orientation: [out, in] for projections */
  shape: number[];
  /**
   * 'normal': uniform with standard deviation std around 0; 'norm': 1 + uniform(-0.1, 0.1);
   * 'signed-norm': +-(1 + uniform(-0.1, 0.1)) with random signs (the final norm: with a tied head it
   * cancels the self-similarity e_t . e_t that otherwise makes greedy decoding repeat its input token)
   */
  init: { kind: 'normal'; std: number } | { kind: 'norm' } | { kind: 'signed-norm' };
}

/** The checkpoint's tensors, in the order they are written (HF names). */
export function checkpointTensorSpecs(config: Record<string, unknown>): TensorSpec[] {
  const c = config as unknown as ModelShape & { tie_word_embeddings: boolean; model_type: Architecture };
  const H = c.hidden_size,
    I = c.intermediate_size,
    V = c.vocab_size,
    hd = c.head_dim;
  const q = c.num_attention_heads * hd,
    kv = c.num_key_value_heads * hd;
  const proj = (name: string, out: number, inp: number): TensorSpec => ({
    name,
    shape: [out, inp],
    init: { kind: 'normal', std: 1 / Math.sqrt(inp) },
  });
  const norm = (name: string, n: number): TensorSpec => ({ name, shape: [n], init: { kind: 'norm' } });
  const specs: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, H], init: { kind: 'normal', std: 1 } }];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    specs.push(norm(`${p}.input_layernorm.weight`, H));
    specs.push(proj(`${p}.self_attn.q_proj.weight`, q, H));
    specs.push(proj(`${p}.self_attn.k_proj.weight`, kv, H));
    specs.push(proj(`${p}.self_attn.v_proj.weight`, kv, H));
    if (c.model_type === 'qwen2') {
      specs.push({ name: `${p}.self_attn.q_proj.bias`, shape: [q], init: { kind: 'normal', std: 0.1 } });
      specs.push({ name: `${p}.self_attn.k_proj.bias`, shape: [kv], init: { kind: 'normal', std: 0.1 } });
      specs.push({ name: `${p}.self_attn.v_proj.bias`, shape: [kv], init: { kind: 'normal', std: 0.1 } });
    }
    if (c.model_type === 'qwen3') {
      specs.push(norm(`${p}.self_attn.q_norm.weight`, hd));
      specs.push(norm(`${p}.self_attn.k_norm.weight`, hd));
    }
    specs.push(proj(`${p}.self_attn.o_proj.weight`, H, q));
    specs.push(norm(`${p}.post_attention_layernorm.weight`, H));
    specs.push(proj(`${p}.mlp.gate_proj.weight`, I, H));
    specs.push(proj(`${p}.mlp.up_proj.weight`, I, H));
    specs.push(proj(`${p}.mlp.down_proj.weight`, H, I));
  }
  specs.push({ name: 'model.norm.weight', shape: [H], init: { kind: 'signed-norm' } });
  if (!c.tie_word_embeddings)
    specs.push({ name: 'lm_head.weight', shape: [V, H], init: { kind: 'normal', std: 4 / Math.sqrt(H) } });
  return specs;
}

/** FNV-1a 32-bit hash of a string (to give every tensor its own PRNG stream). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Values of one tensor; depends only on (seed, name, shape, init). */
export function generateTensor(spec: TensorSpec, seed: number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const rand = mulberry32((seed ^ fnv1a(spec.name)) >>> 0);
  const out = new Float32Array(n);
  if (spec.init.kind === 'norm') {
    for (let i = 0; i < n; i++) out[i] = 1 + 0.2 * (rand() - 0.5);
  } else if (spec.init.kind === 'signed-norm') {
    for (let i = 0; i < n; i++) out[i] = (rand() < 0.5 ? -1 : 1) * (1 + 0.2 * (rand() - 0.5));
  } else {
    const a = spec.init.std * Math.sqrt(3);
    for (let i = 0; i < n; i++) out[i] = a * (2 * rand() - 1);
  }
  return out;
}

const ST_DTYPE: Record<CheckpointDType, SafetensorsDType> = { bf16: 'BF16', fp16: 'F16', fp32: 'F32' };
const ST_BYTES: Record<CheckpointDType, number> = { bf16: 2, fp16: 2, fp32: 4 };

function encode(dtype: CheckpointDType, values: Float32Array): Uint8Array {
  switch (dtype) {
    case 'bf16':
      return encodeBfloat16(values);
    case 'fp16':
      return encodeFloat16(values);
    case 'fp32':
      return encodeFloat32(values);
  }
}

/**
 * Write the checkpoint folder. Tensors are generated and written one at a time (the demo never sits in
 * memory whole). Returns the config written.
 */
export function writeModel(outDir: string, opts: MakeModelOptions): MadeConfig {
  const dtype = opts.dtype ?? 'bf16';
  const seed = opts.seed ?? 1234;
  const config = makeConfig(opts);
  const specs = checkpointTensorSpecs(config);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileSync(join(outDir, 'generation_config.json'), JSON.stringify(makeGenerationConfig(), null, 2) + '\n');
  copyTokenizerFiles(bundledQwen3TokenizerDir(), outDir);
  const header = encodeHeader(
    specs.map((s) => ({
      name: s.name,
      dtype: ST_DTYPE[dtype],
      shape: s.shape,
      byteLength: s.shape.reduce((a, b) => a * b, 1) * ST_BYTES[dtype],
    })),
    { format: 'pt' },
  );
  const fd = openSync(join(outDir, 'model.safetensors'), 'w');
  try {
    writeSync(fd, header);
    for (const spec of specs) writeSync(fd, encode(dtype, generateTensor(spec, seed)));
  } finally {
    closeSync(fd);
  }
  return config;
}
