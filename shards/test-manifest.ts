/**
 * Model package manifests for tests: a qwen3-shaped manifest of any size in memory, with placeholder
 * units (or the caller's), and the widths of a tiny and a small model. Pure.
 */
import type { ModelConfigJson, ModelManifest, PackageDType, UnitEntry } from './manifest.ts';

/** A package's unit ids in manifest order: 'embed', 'layer.0' .. 'layer.{L-1}', 'head'. */
export function unitIds(L: number): string[] {
  return ['embed', ...Array.from({ length: L }, (_, i) => `layer.${i}`), 'head'];
}

/** The manifest entry of unit `id`, stored as `<id>.bin` (no tensors listed). */
export function unitEntry(id: string, bytes: number, sha256: string): UnitEntry {
  const kind = id === 'embed' ? 'embed' : id === 'head' ? 'head' : 'layer';
  return {
    id,
    kind,
    ...(kind === 'layer' ? { layer: Number(id.slice(6)) } : {}),
    file: `${id}.bin`,
    bytes,
    sha256,
    tensors: [],
  };
}

/** A qwen3-shaped model's dimensions (Hugging Face names); rms_norm_eps and rope_theta default to Qwen3's. */
export type TestModelConfig = Pick<
  ModelConfigJson,
  | 'num_hidden_layers'
  | 'hidden_size'
  | 'num_attention_heads'
  | 'num_key_value_heads'
  | 'intermediate_size'
  | 'vocab_size'
> &
  Partial<Pick<ModelConfigJson, 'head_dim' | 'rms_norm_eps' | 'rope_theta' | 'tie_word_embeddings'>>;

/** A tiny model's widths (a few hundred parameters a layer), for tests that never compute. */
export const TINY_MODEL_WIDTHS = {
  hidden_size: 8,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 16,
  vocab_size: 32,
} satisfies Omit<TestModelConfig, 'num_hidden_layers'>;

/** A small model's widths (~0.25 M parameters a layer): plans are computed in milliseconds. */
export const SMALL_MODEL_WIDTHS = {
  hidden_size: 128,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  intermediate_size: 512,
  vocab_size: 2000,
} satisfies Omit<TestModelConfig, 'num_hidden_layers'>;

/**
 * The manifest of a qwen3-shaped package. `units`: the package's units; by default one placeholder a
 * unit (1 byte, an all-zero hash), for tests that plan and never read a blob.
 */
export function testManifest(options: {
  name: string;
  dtype: PackageDType;
  config: TestModelConfig;
  units?: UnitEntry[];
  tokenizerFiles?: string[];
}): ModelManifest {
  return {
    format: 'tandem-model-package',
    version: 1,
    name: options.name,
    architecture: 'qwen3',
    dtype: options.dtype,
    config: { rms_norm_eps: 1e-6, rope_theta: 1e6, ...options.config },
    generation: null,
    tokenizer: { files: options.tokenizerFiles ?? [] },
    units: options.units ?? unitIds(options.config.num_hidden_layers).map((id) => unitEntry(id, 1, '0'.repeat(64))),
  };
}
