/** Layer shapes the stage benchmarks build (`--shape`), shared by bench:shards and bench:compute. */
import { usageError } from '../core/cli.ts';
import type { ModelShape } from './make-model.ts';

export const BENCH_LAYER_SHAPES: Record<string, Partial<ModelShape>> = {
  // One Qwen3-0.6B decoder layer (hidden 1024, 16/8 heads of 128, FFN 3072); small vocab, few layers.
  'qwen3-0.6b': {
    hidden_size: 1024,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    intermediate_size: 3072,
    vocab_size: 1024,
    max_position_embeddings: 4096,
  },
  // The embedded demo model's layer shape.
  demo: {
    hidden_size: 128,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    intermediate_size: 1536,
    vocab_size: 1024,
    max_position_embeddings: 4096,
  },
};

/** The shape called `name` (own keys only), or a usage error naming the choices. */
export function benchLayerShape(name: string): Partial<ModelShape> {
  if (!Object.hasOwn(BENCH_LAYER_SHAPES, name))
    throw usageError(`--shape must be one of ${Object.keys(BENCH_LAYER_SHAPES).join(', ')}.`);
  return BENCH_LAYER_SHAPES[name];
}
