/**
 * The Tandem model package format: `manifest.json` + one blob per unit ('embed', 'layer.i', 'head') +
 * tokenizer files. Types follow the cross-team contract exactly; `parseManifest` checks every field at
 * the load boundary, and `verifyUnit` checks a downloaded blob against its SHA-256. Pure: no Node or DOM
 * APIs (WebCrypto's `crypto.subtle` exists in Node 20 and in the page).
 */
import { z } from 'zod';
import { TandemError } from '../core/errors.ts';

export type Architecture = 'qwen3' | 'qwen2' | 'llama';
export type PackageDType = 'fp32' | 'fp16' | 'q4';
export type TensorDType = 'float32' | 'float16' | 'uint4';
export type UnitKind = 'embed' | 'layer' | 'head';

/** Hugging Face config.json, verbatim; the fields Tandem relies on are typed. */
export interface ModelConfigJson {
  num_hidden_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  intermediate_size: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings?: boolean;
  max_position_embeddings?: number;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  [key: string]: unknown;
}

export interface TensorEntry {
  name: string;
  dtype: TensorDType;
  shape: number[];
  /** bytes from the start of the unit file; a multiple of TENSOR_ALIGNMENT */
  offset: number;
  /** bytes */
  length: number;
}

export interface UnitEntry {
  id: string;
  kind: UnitKind;
  /** 0-based layer index, only for kind 'layer' */
  layer?: number;
  /** file name inside the package folder */
  file: string;
  /** size of the whole file in bytes */
  bytes: number;
  /** lower-case hex SHA-256 of the whole file */
  sha256: string;
  tensors: TensorEntry[];
}

export interface ModelManifest {
  format: 'tandem-model-package';
  version: 1;
  /** package name, URL-safe */
  name: string;
  architecture: Architecture;
  dtype: PackageDType;
  config: ModelConfigJson;
  generation: Record<string, unknown> | null;
  tokenizer: { files: string[] };
  /** 'embed', 'layer.0' .. 'layer.{L-1}', 'head', in that order */
  units: UnitEntry[];
}

/** Internal layer ranges are 0-based and half-open: layers start..end-1. */
export interface LayerRange {
  start: number;
  end: number;
}

/** Every tensor inside a unit file starts at a multiple of this many bytes. */
export const TENSOR_ALIGNMENT = 64;
/** q4 block size along the input dimension. */
export const Q4_BLOCK = 32;

const URL_SAFE = /^[A-Za-z0-9._-]+$/;
const SAFE_FILE = /^[A-Za-z0-9._-]+$/;

const positiveInt = z.number().int().positive();
const configSchema = z.looseObject({
  num_hidden_layers: positiveInt,
  hidden_size: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt,
  head_dim: positiveInt.optional(),
  intermediate_size: positiveInt,
  vocab_size: positiveInt,
  rms_norm_eps: z.number().positive(),
  rope_theta: z.number().positive(),
  tie_word_embeddings: z.boolean().optional(),
  max_position_embeddings: positiveInt.optional(),
  bos_token_id: z.number().int().nonnegative().nullable().optional(),
  eos_token_id: z
    .union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())])
    .nullable()
    .optional(),
});

const tensorSchema = z.strictObject({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'float16', 'uint4']),
  shape: z.array(z.number().int().nonnegative()).min(1),
  offset: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
});

const unitSchema = z.strictObject({
  id: z.string().min(1),
  kind: z.enum(['embed', 'layer', 'head']),
  layer: z.number().int().nonnegative().optional(),
  file: z.string().regex(SAFE_FILE, 'must be a plain file name (letters, digits, . _ -)'),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'),
  tensors: z.array(tensorSchema),
});

const manifestSchema = z.strictObject({
  format: z.literal('tandem-model-package'),
  version: z.literal(1),
  name: z.string().regex(URL_SAFE, 'must be URL-safe (letters, digits, . _ -)'),
  architecture: z.enum(['qwen3', 'qwen2', 'llama']),
  dtype: z.enum(['fp32', 'fp16', 'q4']),
  config: configSchema,
  generation: z.record(z.string(), z.unknown()).nullable(),
  tokenizer: z.strictObject({ files: z.array(z.string().regex(SAFE_FILE, 'must be a plain file name')) }),
  units: z.array(unitSchema),
});

function badManifest(message: string): TandemError {
  return new TandemError(
    'manifest-invalid',
    `Model package manifest is invalid: ${message}. Re-create the package with \`npm run shards -- convert\`.`,
  );
}

/** Bytes one tensor of this dtype and shape occupies in a unit file. */
export function tensorByteLength(dtype: TensorDType, shape: readonly number[]): number {
  const count = shape.reduce((a, b) => a * b, 1);
  switch (dtype) {
    case 'float32':
      return count * 4;
    case 'float16':
      return count * 2;
    case 'uint4':
      return Math.ceil(count / 2);
  }
}

/** Head dimension: config.head_dim if given, else hidden_size / num_attention_heads. */
export function headDim(config: ModelConfigJson): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

export function layerCount(manifest: ModelManifest): number {
  return manifest.config.num_hidden_layers;
}

export function unitIdForLayer(layer: number): string {
  return `layer.${layer}`;
}

/**
 * Validate parsed manifest.json content. Throws TandemError('manifest-invalid') naming the bad field.
 * Checks the schema and the cross-field rules: unit order, layer indices, tensor offsets (aligned, inside
 * the file, lengths matching dtype x shape, not overlapping) and unique file names.
 */
export function parseManifest(json: unknown): ModelManifest {
  const result = manifestSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw badManifest(`field \`${path}\`: ${issue.message}`);
  }
  const m = result.data;
  const L = m.config.num_hidden_layers;
  if (m.units.length !== L + 2) {
    throw badManifest(`expected ${L + 2} units (embed, ${L} layers, head), found ${m.units.length}`);
  }
  const files = new Set<string>();
  m.units.forEach((u, i) => {
    const where = `units.${i} (${u.id})`;
    const expected = i === 0 ? 'embed' : i === L + 1 ? 'head' : unitIdForLayer(i - 1);
    const expectedKind: UnitKind = i === 0 ? 'embed' : i === L + 1 ? 'head' : 'layer';
    if (u.id !== expected || u.kind !== expectedKind) {
      throw badManifest(`${where}: expected unit '${expected}' of kind '${expectedKind}' at this position`);
    }
    if (expectedKind === 'layer' ? u.layer !== i - 1 : u.layer !== undefined) {
      throw badManifest(`${where}: field \`layer\` must be ${expectedKind === 'layer' ? i - 1 : 'absent'}`);
    }
    if (files.has(u.file)) throw badManifest(`${where}: file '${u.file}' is used by two units`);
    files.add(u.file);
    const names = new Set<string>();
    let previousEnd = 0;
    const sorted = [...u.tensors].sort((a, b) => a.offset - b.offset);
    for (const t of sorted) {
      const tw = `${where} tensor '${t.name}'`;
      if (names.has(t.name)) throw badManifest(`${tw}: duplicate tensor name`);
      names.add(t.name);
      if (t.offset % TENSOR_ALIGNMENT !== 0)
        throw badManifest(`${tw}: offset ${t.offset} is not ${TENSOR_ALIGNMENT}-byte aligned`);
      const want = tensorByteLength(t.dtype, t.shape);
      if (t.length !== want)
        throw badManifest(`${tw}: length ${t.length} != ${want} bytes for ${t.dtype} [${t.shape.join(', ')}]`);
      if (t.offset < previousEnd) throw badManifest(`${tw}: overlaps the previous tensor`);
      if (t.offset + t.length > u.bytes)
        throw badManifest(`${tw}: ends at byte ${t.offset + t.length}, past the file size ${u.bytes}`);
      previousEnd = t.offset + t.length;
    }
  });
  return m;
}

/** Find a unit by id; throws TandemError('unit-unknown'). */
export function getUnit(manifest: ModelManifest, id: string): UnitEntry {
  const unit = manifest.units.find((u) => u.id === id);
  if (!unit) throw new TandemError('unit-unknown', `Model package '${manifest.name}' has no unit '${id}'.`);
  return unit;
}

/** Find a tensor entry inside a unit; throws TandemError('tensor-missing'). */
export function getTensor(unit: UnitEntry, name: string): TensorEntry {
  const t = unit.tensors.find((x) => x.name === name);
  if (!t)
    throw new TandemError(
      'tensor-missing',
      `Unit '${unit.id}' (${unit.file}) has no tensor '${name}'; the package is incomplete, re-convert it.`,
    );
  return t;
}

/**
 * The units a stage needs, in manifest order: optionally 'embed', then layers range.start..range.end-1,
 * then optionally 'head'. Throws TandemError('range-invalid') for a range outside the model.
 */
export function unitsForRange(
  manifest: ModelManifest,
  range: LayerRange,
  embeds: boolean,
  hasHead: boolean,
): UnitEntry[] {
  const L = layerCount(manifest);
  if (
    !Number.isInteger(range.start) ||
    !Number.isInteger(range.end) ||
    range.start < 0 ||
    range.end > L ||
    range.start > range.end
  ) {
    throw new TandemError(
      'range-invalid',
      `Layer range {start: ${range.start}, end: ${range.end}} is not inside 0..${L} (0-based, half-open) for model '${manifest.name}'.`,
    );
  }
  const units: UnitEntry[] = [];
  if (embeds) units.push(manifest.units[0]);
  for (let i = range.start; i < range.end; i++) units.push(manifest.units[i + 1]);
  if (hasHead) units.push(manifest.units[L + 1]);
  return units;
}

/** Total bytes of a list of units (e.g. what a stage must download). */
export function unitBytes(units: readonly UnitEntry[]): number {
  return units.reduce((sum, u) => sum + u.bytes, 0);
}

/** Lower-case hex SHA-256 of some bytes (WebCrypto; Node 20 and browsers). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Check a unit blob against its manifest entry. Throws TandemError('shard-truncated') when the size is
 * wrong and TandemError('shard-hash-mismatch') when the SHA-256 differs.
 */
export async function verifyUnit(entry: UnitEntry, bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength !== entry.bytes) {
    throw new TandemError(
      'shard-truncated',
      `Unit '${entry.id}' (${entry.file}) has ${bytes.byteLength} bytes but the manifest says ${entry.bytes}; the download or the file is incomplete. Delete it and fetch it again.`,
    );
  }
  const actual = await sha256Hex(bytes);
  if (actual !== entry.sha256) {
    throw new TandemError(
      'shard-hash-mismatch',
      `Unit '${entry.id}' (${entry.file}) has SHA-256 ${actual} but the manifest says ${entry.sha256}; the file is corrupted or was modified. Delete it and fetch it again (or re-convert the package).`,
    );
  }
}

/** The package's end-of-sequence ids: generation_config.json's, else config.json's. */
export function eosTokens(manifest: ModelManifest): number[] {
  const raw = manifest.generation?.['eos_token_id'] ?? manifest.config.eos_token_id;
  if (typeof raw === 'number') return [raw];
  if (Array.isArray(raw)) return raw.filter((x): x is number => typeof x === 'number');
  return [];
}
