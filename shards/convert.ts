/**
 * Checkpoint converter: a Hugging Face folder (config.json, model.safetensors or a sharded
 * model.safetensors.index.json, tokenizer files, generation_config.json) -> a Tandem model package
 * (manifest.json, one blob per unit, tokenizer files). Node only (file I/O).
 *
 * Memory: one unit at a time. Tensors are read from the checkpoint by byte range (never the whole
 * file), converted, laid out, hashed and written before the next unit starts; the largest unit (the
 * embedding or the head) is held at most twice (source + transposed copy).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { TandemError } from '../core/errors.ts';
import {
  parseManifest,
  TENSOR_ALIGNMENT,
  tensorByteLength,
  unitIdForLayer,
  type Architecture,
  type ModelConfigJson,
  type ModelManifest,
  type PackageDType,
  type TensorEntry,
  type UnitEntry,
  type UnitKind,
} from './manifest.ts';
import { transpose, type TensorData } from './package-layout.ts';
import { quantizeQ4 } from './quantize.ts';
import {
  decodeToFloat32,
  encodeFloat16,
  parseHeader,
  parseSafetensorsIndex,
  readHeaderLength,
  type SafetensorsTensorInfo,
} from './safetensors.ts';
import { copyTokenizerFiles, findTokenizerFiles } from './tokenizer-files.ts';

/** Hugging Face `architectures[0]` -> Tandem architecture. */
export const SUPPORTED_ARCHITECTURES: Record<string, Architecture> = {
  Qwen3ForCausalLM: 'qwen3',
  Qwen2ForCausalLM: 'qwen2',
  LlamaForCausalLM: 'llama',
};

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new TandemError('checkpoint-invalid', `Cannot read ${what} at ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Architecture of a config.json; throws TandemError('architecture-unsupported') naming it. */
export function detectArchitecture(config: Record<string, unknown>): Architecture {
  const archs = config.architectures;
  const name = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : undefined;
  if (name === undefined) {
    throw new TandemError(
      'architecture-unsupported',
      `config.json has no \`architectures\` list; supported: ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')}.`,
    );
  }
  const arch = Object.hasOwn(SUPPORTED_ARCHITECTURES, name) ? SUPPORTED_ARCHITECTURES[name] : undefined; // own keys only
  if (!arch) {
    throw new TandemError(
      'architecture-unsupported',
      `Architecture '${name}' is not supported; supported: ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')}.`,
    );
  }
  return arch;
}

/**
 * Check the config fields the runtime relies on and fill `rope_theta` from `rope_parameters` (newer
 * transformers) when needed. Throws TandemError('config-unsupported') for features Tandem cannot run.
 */
export function normaliseConfig(raw: Record<string, unknown>, arch: Architecture): ModelConfigJson {
  const config: Record<string, unknown> = { ...raw };
  const ropeParams = config.rope_parameters as { rope_theta?: unknown; rope_type?: unknown } | undefined;
  if (config.rope_theta === undefined && ropeParams && typeof ropeParams.rope_theta === 'number')
    config.rope_theta = ropeParams.rope_theta;
  const unsupported = (msg: string) => new TandemError('config-unsupported', `config.json: ${msg}`);
  const rawScaling: unknown = config.rope_scaling ?? null;
  const scaling = rawScaling as { rope_type?: unknown; type?: unknown } | null;
  const ropeType: unknown = scaling?.rope_type ?? scaling?.type ?? ropeParams?.rope_type ?? 'default';
  if (typeof ropeType !== 'string' || !['default', 'linear', 'llama3'].includes(ropeType)) {
    throw unsupported(
      `rope scaling '${typeof ropeType === 'string' ? ropeType : JSON.stringify(ropeType)}' is not supported (only default, linear, llama3).`,
    );
  }
  if (config.use_sliding_window === true) throw unsupported('sliding-window attention is not supported.');
  if (config.hidden_act !== undefined && config.hidden_act !== 'silu')
    throw unsupported(
      `hidden_act '${typeof config.hidden_act === 'string' ? config.hidden_act : JSON.stringify(config.hidden_act)}' is not supported (only silu).`,
    );
  if (arch !== 'qwen2' && config.attention_bias === true)
    throw unsupported(`attention_bias true is not supported for ${arch}.`);
  if (config.mlp_bias === true) throw unsupported('mlp_bias true is not supported.');
  for (const f of [
    'num_hidden_layers',
    'hidden_size',
    'num_attention_heads',
    'num_key_value_heads',
    'intermediate_size',
    'vocab_size',
    'rms_norm_eps',
    'rope_theta',
  ]) {
    if (typeof config[f] !== 'number')
      throw new TandemError('config-invalid', `config.json: field \`${f}\` is missing or not a number.`);
  }
  const c = config as unknown as ModelConfigJson;
  const hd = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(hd))
    throw new TandemError(
      'config-invalid',
      `config.json: head_dim is missing and hidden_size/num_attention_heads = ${hd} is not an integer.`,
    );
  if (c.num_attention_heads % c.num_key_value_heads !== 0)
    throw new TandemError(
      'config-invalid',
      'config.json: num_attention_heads must be a multiple of num_key_value_heads.',
    );
  return c;
}

/** Reads tensors of a (possibly sharded) safetensors checkpoint by byte range. Call close() when done. */
export class CheckpointReader {
  private readonly shards = new Map<
    string,
    { fd: number; header: { dataStart: number; tensors: Map<string, SafetensorsTensorInfo> } }
  >();
  /** tensor name -> shard file name */
  readonly tensorFiles = new Map<string, string>();

  constructor(readonly dir: string) {
    const index = join(dir, 'model.safetensors.index.json');
    const single = join(dir, 'model.safetensors');
    let files: string[];
    if (existsSync(index)) {
      const map = parseSafetensorsIndex(readJson(index, 'the sharded index'));
      files = [...new Set(map.values())];
    } else if (existsSync(single)) {
      files = ['model.safetensors'];
    } else {
      throw new TandemError(
        'checkpoint-invalid',
        `No model.safetensors or model.safetensors.index.json in ${dir}. Point convert at the downloaded Hugging Face folder.`,
      );
    }
    try {
      for (const file of files) this.openShard(file);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private openShard(file: string): void {
    const path = join(this.dir, file);
    if (!existsSync(path))
      throw new TandemError('checkpoint-invalid', `Shard ${file} listed in the index is missing from ${this.dir}.`);
    const fd = openSync(path, 'r');
    this.shards.set(file, { fd, header: { dataStart: 0, tensors: new Map() } });
    const size = fstatSync(fd).size;
    const first8 = new Uint8Array(8);
    readSync(fd, first8, 0, 8, 0);
    const n = readHeaderLength(first8, file);
    const headerBytes = new Uint8Array(n);
    if (readSync(fd, headerBytes, 0, n, 8) !== n)
      throw new TandemError('safetensors-malformed', `${file} is truncated inside its header.`);
    const header = parseHeader(headerBytes, file, size);
    this.shards.set(file, { fd, header });
    for (const name of header.tensors.keys()) this.tensorFiles.set(name, file);
  }

  has(name: string): boolean {
    return this.tensorFiles.has(name);
  }

  /** Check a tensor's presence, shape and dtype from the headers alone. Throws TandemError('tensor-missing' | 'tensor-shape-mismatch' | 'dtype-unsupported'). */
  check(name: string, shape: readonly number[]): { file: string; info: SafetensorsTensorInfo } {
    const file = this.tensorFiles.get(name);
    if (!file)
      throw new TandemError(
        'tensor-missing',
        `Checkpoint ${this.dir} has no tensor '${name}'; is the checkpoint complete and of the architecture config.json says?`,
      );
    const info = this.shards.get(file)!.header.tensors.get(name)!;
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new TandemError(
        'tensor-shape-mismatch',
        `Tensor '${name}' in ${file} has shape [${info.shape.join(', ')}], but config.json implies [${shape.join(', ')}].`,
      );
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      throw new TandemError(
        'dtype-unsupported',
        `Tensor '${name}' in ${file} has dtype ${info.dtype}; only F32, F16, BF16 and F64 weights can be converted.`,
      );
    }
    return { file, info };
  }

  /** Read a tensor as float32, checking its shape (see check()). */
  read(name: string, shape: readonly number[]): Float32Array {
    const { file, info } = this.check(name, shape);
    const { fd, header } = this.shards.get(file)!;
    const bytes = new Uint8Array(info.end - info.begin);
    let done = 0;
    while (done < bytes.byteLength) {
      const n = readSync(fd, bytes, done, bytes.byteLength - done, header.dataStart + info.begin + done);
      if (n <= 0) throw new TandemError('safetensors-malformed', `${file} ended while reading tensor '${name}'.`);
      done += n;
    }
    return decodeToFloat32(info.dtype, bytes, `Tensor '${name}' in ${file}`);
  }

  close(): void {
    for (const { fd } of this.shards.values()) closeSync(fd);
    this.shards.clear();
  }
}

export interface ConvertOptions {
  dtype?: PackageDType;
  /** package name (URL-safe); default: the output folder's name */
  name?: string;
  /** progress callback (unit id, index, total) */
  onUnit?: (id: string, index: number, total: number) => void;
}

export interface ConvertResult {
  manifest: ModelManifest;
  /** checkpoint tensors not used by the package (e.g. rotary inv_freq buffers) */
  unusedTensors: string[];
}

/** Turn an arbitrary folder name into a URL-safe package name. */
export function safePackageName(s: string): string {
  const name = s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  return name || 'model';
}

/** Convert the checkpoint in `srcDir` to a package in `outDir`. manifest.json is written last. */
// eslint-disable-next-line @typescript-eslint/require-await -- the contract is a promise that rejects (callers and tests use `.rejects`), not a synchronous throw
export async function convertCheckpoint(
  srcDir: string,
  outDir: string,
  opts: ConvertOptions = {},
): Promise<ConvertResult> {
  const dtype = opts.dtype ?? 'fp32';
  if (!['fp32', 'fp16', 'q4'].includes(dtype))
    throw new TandemError('convert-options', `--dtype must be fp32, fp16 or q4, not '${dtype}'.`);
  const name = opts.name ?? safePackageName(basename(resolve(outDir)));
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    throw new TandemError(
      'convert-options',
      `Package name '${name}' is not URL-safe; use letters, digits, '.', '_' and '-'.`,
    );
  if (resolve(srcDir) === resolve(outDir))
    throw new TandemError('convert-options', 'The output folder must differ from the checkpoint folder.');
  const rawConfig = readJson(join(srcDir, 'config.json'), 'config.json') as Record<string, unknown>;
  const arch = detectArchitecture(rawConfig);
  const config = normaliseConfig(rawConfig, arch);
  const generationPath = join(srcDir, 'generation_config.json');
  const generation = existsSync(generationPath)
    ? (readJson(generationPath, 'generation_config.json') as Record<string, unknown>)
    : null;

  const reader = new CheckpointReader(srcDir);
  try {
    // Check everything that can be checked from headers before touching the output folder.
    const plan = unitPlan(config, arch, reader);
    for (const u of plan) for (const t of u.tensors) reader.check(t.source, t.sourceShape);
    if (dtype === 'q4') {
      for (const u of plan)
        for (const t of u.tensors)
          if (t.role === 'matmul' && t.sourceShape[1] % 32 !== 0)
            quantizeQ4([], t.sourceShape[0], t.sourceShape[1], t.source);
    }
    findTokenizerFiles(srcDir);
    mkdirSync(outDir, { recursive: true });
    // A stale manifest must not describe the unit files this run is about to replace.
    rmSync(join(outDir, 'manifest.json'), { force: true });
    const tokenizerFiles = copyTokenizerFiles(srcDir, outDir);
    const used = new Set<string>();
    const units: UnitEntry[] = [];
    for (let i = 0; i < plan.length; i++) {
      const u = plan[i];
      opts.onUnit?.(u.id, i, plan.length);
      const file = `${u.id}.bin`;
      const writer = new UnitWriter(join(outDir, file));
      try {
        for (const t of u.tensors) {
          for (const data of convertTensor(reader, t, dtype)) writer.add(data);
          used.add(t.source);
        }
      } finally {
        writer.close();
      }
      const { bytes, sha256, entries } = writer.result();
      units.push({
        id: u.id,
        kind: u.kind,
        ...(u.kind === 'layer' ? { layer: u.layer } : {}),
        file,
        bytes,
        sha256,
        tensors: entries,
      });
    }
    const manifest: ModelManifest = {
      format: 'tandem-model-package',
      version: 1,
      name,
      architecture: arch,
      dtype,
      config,
      generation,
      tokenizer: { files: tokenizerFiles },
      units,
    };
    parseManifest(JSON.parse(JSON.stringify(manifest)));
    const tmp = join(outDir, 'manifest.json.tmp');
    writeFileSync(tmp, JSON.stringify(manifest, null, 1) + '\n');
    renameSync(tmp, join(outDir, 'manifest.json'));
    const unusedTensors = [...reader.tensorFiles.keys()].filter((n) => !used.has(n));
    return { manifest, unusedTensors };
  } finally {
    reader.close();
  }
}

/**
 * Writes a unit blob tensor by tensor (the same layout as package-layout's packUnit: each tensor at the
 * next multiple of TENSOR_ALIGNMENT, zero padding), hashing as it goes, so a unit is never copied whole.
 */
class UnitWriter {
  private readonly fd: number;
  private readonly hash = createHash('sha256');
  private readonly entries: TensorEntry[] = [];
  private offset = 0;
  private closed = false;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }

  add(t: TensorData): void {
    const length = tensorByteLength(t.dtype, t.shape);
    if (t.data.byteLength !== length)
      throw new TandemError(
        'unit-pack',
        `Tensor '${t.name}' has ${t.data.byteLength} bytes, but ${t.dtype} [${t.shape.join(', ')}] needs ${length}.`,
      );
    const start = Math.ceil(this.offset / TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT;
    if (start > this.offset) this.write(new Uint8Array(start - this.offset));
    this.entries.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], offset: start, length });
    this.write(t.data);
  }

  private write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(this.fd, bytes, done, bytes.byteLength - done);
    this.hash.update(bytes);
    this.offset += bytes.byteLength;
  }

  close(): void {
    if (!this.closed) closeSync(this.fd);
    this.closed = true;
  }

  result(): { bytes: number; sha256: string; entries: TensorEntry[] } {
    return { bytes: this.offset, sha256: this.hash.digest('hex'), entries: this.entries };
  }
}

/** One package tensor and where it comes from. */
interface TensorPlan {
  /** package tensor name (contract) */
  name: string;
  /** checkpoint tensor name */
  source: string;
  /** checkpoint shape (HF orientation) */
  sourceShape: number[];
  /** 'matmul': [out, in] -> stored [in, out] (or q4 [out, in]); 'vector': norms and biases; 'table': embedding [V, H] */
  role: 'matmul' | 'vector' | 'table' | 'head';
}

interface UnitPlanEntry {
  id: string;
  kind: UnitKind;
  layer?: number;
  tensors: TensorPlan[];
}

/** Which checkpoint tensors go into which unit, with their expected shapes. */
function unitPlan(c: ModelConfigJson, arch: Architecture, reader: CheckpointReader): UnitPlanEntry[] {
  const H = c.hidden_size,
    I = c.intermediate_size,
    V = c.vocab_size;
  const hd = c.head_dim ?? H / c.num_attention_heads;
  const q = c.num_attention_heads * hd,
    kv = c.num_key_value_heads * hd;
  const units: UnitPlanEntry[] = [
    {
      id: 'embed',
      kind: 'embed',
      tensors: [
        { name: 'embed_tokens.weight', source: 'model.embed_tokens.weight', sourceShape: [V, H], role: 'table' },
      ],
    },
  ];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const mm = (name: string, source: string, out: number, inp: number): TensorPlan => ({
      name,
      source: `${p}.${source}`,
      sourceShape: [out, inp],
      role: 'matmul',
    });
    const vec = (name: string, source: string, n: number): TensorPlan => ({
      name,
      source: `${p}.${source}`,
      sourceShape: [n],
      role: 'vector',
    });
    const tensors: TensorPlan[] = [
      vec('input_layernorm.weight', 'input_layernorm.weight', H),
      mm('q_proj.weight', 'self_attn.q_proj.weight', q, H),
      mm('k_proj.weight', 'self_attn.k_proj.weight', kv, H),
      mm('v_proj.weight', 'self_attn.v_proj.weight', kv, H),
      mm('o_proj.weight', 'self_attn.o_proj.weight', H, q),
    ];
    if (arch === 'qwen2')
      tensors.push(
        vec('q_proj.bias', 'self_attn.q_proj.bias', q),
        vec('k_proj.bias', 'self_attn.k_proj.bias', kv),
        vec('v_proj.bias', 'self_attn.v_proj.bias', kv),
      );
    if (arch === 'qwen3')
      tensors.push(
        vec('q_norm.weight', 'self_attn.q_norm.weight', hd),
        vec('k_norm.weight', 'self_attn.k_norm.weight', hd),
      );
    tensors.push(
      vec('post_attention_layernorm.weight', 'post_attention_layernorm.weight', H),
      mm('gate_proj.weight', 'mlp.gate_proj.weight', I, H),
      mm('up_proj.weight', 'mlp.up_proj.weight', I, H),
      mm('down_proj.weight', 'mlp.down_proj.weight', H, I),
    );
    units.push({ id: unitIdForLayer(i), kind: 'layer', layer: i, tensors });
  }
  // Tied (explicitly, or no lm_head in the checkpoint): the head is a transposed copy of the embedding.
  const tied = c.tie_word_embeddings === true || (c.tie_word_embeddings === undefined && !reader.has('lm_head.weight'));
  const headSource = tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
  units.push({
    id: 'head',
    kind: 'head',
    tensors: [
      { name: 'norm.weight', source: 'model.norm.weight', sourceShape: [H], role: 'vector' },
      { name: 'lm_head.weight', source: headSource, sourceShape: [V, H], role: 'head' },
    ],
  });
  return units;
}

function f32bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Read one checkpoint tensor and produce its package tensor(s) in the package dtype. */
function convertTensor(reader: CheckpointReader, t: TensorPlan, dtype: PackageDType): TensorData[] {
  const src = reader.read(t.source, t.sourceShape);
  switch (t.role) {
    case 'vector':
      return [{ name: t.name, dtype: 'float32', shape: [...t.sourceShape], data: f32bytes(src) }];
    case 'table':
      // embedding [V, H] row lookup: float16 in fp16 packages, float32 otherwise
      return [
        {
          name: t.name,
          dtype: dtype === 'fp16' ? 'float16' : 'float32',
          shape: [...t.sourceShape],
          data: dtype === 'fp16' ? encodeFloat16(src) : f32bytes(src),
        },
      ];
    case 'head': {
      // lm_head [V, H] -> [H, V]
      const [V, H] = t.sourceShape as [number, number];
      const w = transpose(src, V, H);
      return [
        {
          name: t.name,
          dtype: dtype === 'fp16' ? 'float16' : 'float32',
          shape: [H, V],
          data: dtype === 'fp16' ? encodeFloat16(w) : f32bytes(w),
        },
      ];
    }
    case 'matmul': {
      const [out, inp] = t.sourceShape as [number, number];
      const prefix = t.name.replace(/\.weight$/, '');
      if (dtype === 'q4') {
        const qw = quantizeQ4(src, out, inp, t.source);
        return [
          { name: `${prefix}.qweight`, dtype: 'uint4', shape: [out, inp], data: qw.qweight },
          { name: `${prefix}.scales`, dtype: 'float32', shape: [out, inp / 32], data: f32bytes(qw.scales) },
        ];
      }
      const w = transpose(src, out, inp); // [in, out] for x @ W
      return [
        {
          name: t.name,
          dtype: dtype === 'fp16' ? 'float16' : 'float32',
          shape: [inp, out],
          data: dtype === 'fp16' ? encodeFloat16(w) : f32bytes(w),
        },
      ];
    }
  }
}
