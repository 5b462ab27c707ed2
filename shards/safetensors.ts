/**
 * Safetensors reader/writer, pure over Uint8Array (no file I/O: callers read the header bytes and the
 * tensor byte ranges themselves, so a large checkpoint never has to be in memory at once).
 *
 * Format: u64 little-endian header length N, N bytes of JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {...}}`, then the raw data;
 * offsets are relative to the start of the data (byte 8 + N). Also: float16/bfloat16 <-> float32
 * conversions and the sharded `model.safetensors.index.json` format.
 */
import { TandemError } from '../core/errors.ts';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** byte offsets relative to the start of the data section, half-open */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** absolute byte offset where the data section starts (8 + header length) */
  dataStart: number;
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string> | null;
}

function malformed(what: string, message: string): TandemError {
  return new TandemError('safetensors-malformed', `${what} is not a valid safetensors file: ${message}.`);
}

/** Largest header we accept (the reference implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** Read the header length from the first 8 bytes. `what` names the file in errors. */
export function readHeaderLength(first8: Uint8Array, what = 'file'): number {
  if (first8.byteLength < 8)
    throw malformed(what, `it has ${first8.byteLength} bytes, fewer than the 8-byte header length`);
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw malformed(what, `header length ${n} is larger than ${MAX_HEADER_BYTES}`);
  return Number(n);
}

/**
 * Parse the JSON header. `headerBytes` are the N bytes after the length prefix; `fileBytes` (if known)
 * lets us check that every tensor lies inside the file.
 */
export function parseHeader(headerBytes: Uint8Array, what = 'file', fileBytes?: number): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch (cause) {
    throw malformed(what, `its header is not JSON (${String(cause)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw malformed(what, 'its header is not a JSON object');
  const dataStart = 8 + headerBytes.byteLength;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let metadata: Record<string, string> | null = null;
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null) throw malformed(what, `entry '${name}' is not an object`);
    const r = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof r.dtype !== 'string' || !(r.dtype in DTYPE_BYTES))
      throw malformed(what, `tensor '${name}' has unsupported dtype ${JSON.stringify(r.dtype)}`);
    const dtype = r.dtype as SafetensorsDType;
    if (!Array.isArray(r.shape) || !r.shape.every((d) => Number.isInteger(d) && d >= 0))
      throw malformed(what, `tensor '${name}' has a bad shape ${JSON.stringify(r.shape)}`);
    const shape = r.shape as number[];
    const offs = r.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((d) => Number.isInteger(d) && d >= 0) ||
      offs[0] > offs[1]
    ) {
      throw malformed(what, `tensor '${name}' has bad data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    const want = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (end - begin !== want)
      throw malformed(
        what,
        `tensor '${name}' spans ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${want}`,
      );
    if (fileBytes !== undefined && dataStart + end > fileBytes) {
      throw malformed(
        what,
        `tensor '${name}' ends at byte ${dataStart + end}, past the end of the file (${fileBytes} bytes); the file is truncated`,
      );
    }
    tensors.set(name, { name, dtype, shape, begin, end });
  }
  return { dataStart, tensors, metadata };
}

/** Parse a whole safetensors file held in memory. Tensor data are views into `file` (no copy). */
export function parseSafetensors(
  file: Uint8Array,
  what = 'file',
): { header: SafetensorsHeader; data(name: string): Uint8Array } {
  const n = readHeaderLength(file, what);
  if (8 + n > file.byteLength)
    throw malformed(what, `header needs ${n} bytes but the file has only ${file.byteLength - 8} after the length`);
  const header = parseHeader(file.subarray(8, 8 + n), what, file.byteLength);
  return {
    header,
    data(name: string): Uint8Array {
      const t = header.tensors.get(name);
      if (!t) throw new TandemError('tensor-missing', `${what} has no tensor '${name}'.`);
      return file.subarray(header.dataStart + t.begin, header.dataStart + t.end);
    },
  };
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** raw little-endian bytes */
  data: Uint8Array;
}

/** Header bytes (length prefix + padded JSON) for these tensors, laid out in the given order. */
export function encodeHeader(
  tensors: readonly { name: string; dtype: SafetensorsDType; shape: number[]; byteLength: number }[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const want = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.byteLength !== want) {
      throw new TandemError(
        'safetensors-write',
        `Tensor '${t.name}' has ${t.byteLength} bytes but ${t.dtype} [${t.shape.join(', ')}] needs ${want}.`,
      );
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  out.set(jsonBytes, 8);
  return out;
}

/** A whole safetensors file in memory. */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const head = encodeHeader(
    tensors.map((t) => ({ ...t, byteLength: t.data.byteLength })),
    metadata,
  );
  const total = head.byteLength + tensors.reduce((s, t) => s + t.data.byteLength, 0);
  const out = new Uint8Array(total);
  out.set(head, 0);
  let pos = head.byteLength;
  for (const t of tensors) {
    out.set(t.data, pos);
    pos += t.data.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Floating-point conversions

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits -> number. */
export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> IEEE binary16 bits, round to nearest even (overflow -> Infinity). */
export function numberToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let result = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && result & 1)) result++;
    return sign | result;
  }
  let result = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && result & 1)) result++; // may carry into the exponent: still correct
  return sign | result;
}

/** bfloat16 bits -> float32 value (exact: bf16 is the top half of a float32). */
export function bfloat16BitsToNumber(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** number -> bfloat16 bits, round to nearest even. */
export function numberToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

function u16view(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return new Uint16Array(bytes.slice().buffer);
}

/** Decode raw little-endian F32/F16/BF16/F64 tensor bytes to float32. */
export function decodeToFloat32(dtype: SafetensorsDType, bytes: Uint8Array, what = 'tensor'): Float32Array {
  switch (dtype) {
    case 'F32': {
      if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      return new Float32Array(bytes.slice().buffer);
    }
    case 'F64': {
      const src =
        bytes.byteOffset % 8 === 0
          ? new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8)
          : new Float64Array(bytes.slice().buffer);
      return Float32Array.from(src);
    }
    case 'BF16': {
      const src = u16view(bytes);
      const out = new Float32Array(src.length);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
      return out;
    }
    case 'F16': {
      const src = u16view(bytes);
      const out = new Float32Array(src.length);
      const table = halfTable();
      for (let i = 0; i < src.length; i++) out[i] = table[src[i]]!;
      return out;
    }
    default:
      throw new TandemError(
        'dtype-unsupported',
        `${what} has dtype ${dtype}; only F32, F16, BF16 and F64 weights can be converted.`,
      );
  }
}

let halfLookup: Float32Array | null = null;
function halfTable(): Float32Array {
  if (!halfLookup) {
    halfLookup = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfLookup[h] = float16BitsToNumber(h);
  }
  return halfLookup;
}

/** float32 values -> raw F16 bytes (round to nearest even). */
export function encodeFloat16(values: ArrayLike<number>): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToFloat16Bits(values[i]);
  return new Uint8Array(out.buffer);
}

/** float32 values -> raw BF16 bytes (round to nearest even). */
export function encodeBfloat16(values: ArrayLike<number>): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToBfloat16Bits(values[i]);
  return new Uint8Array(out.buffer);
}

/** float32 values -> raw F32 bytes (a copy). */
export function encodeFloat32(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

// ---------------------------------------------------------------------------------------------------
// Sharded checkpoints: model.safetensors.index.json = {metadata?: {...}, weight_map: {tensor: file}}

/** Parse a sharded index; returns tensor name -> shard file name. */
export function parseSafetensorsIndex(json: unknown, what = 'model.safetensors.index.json'): Map<string, string> {
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new TandemError(
      'safetensors-malformed',
      `${what} has no \`weight_map\` object mapping tensor names to shard files.`,
    );
  }
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || !/^[A-Za-z0-9._-]+$/.test(file)) {
      throw new TandemError(
        'safetensors-malformed',
        `${what}: tensor '${name}' maps to ${JSON.stringify(file)}, which is not a plain shard file name.`,
      );
    }
    map.set(name, file);
  }
  return map;
}

/** model.safetensors.index.json content for tensors spread over shard files. */
export function encodeSafetensorsIndex(weightMap: ReadonlyMap<string, string>, totalSize: number): string {
  return (
    JSON.stringify({ metadata: { total_size: totalSize }, weight_map: Object.fromEntries(weightMap) }, null, 2) + '\n'
  );
}
