/**
 * Laying out and decoding unit blobs (pure). A unit file is its tensors' raw little-endian bytes, each
 * starting at a multiple of TENSOR_ALIGNMENT (64) bytes, zero padding between them; the manifest's
 * TensorEntry list says where each one is.
 */
import { TandemError } from '../core/errors.ts';
import {
  getTensor,
  TENSOR_ALIGNMENT,
  tensorByteLength,
  type TensorDType,
  type TensorEntry,
  type UnitEntry,
} from './manifest.ts';
import { dequantizeQ4 } from './quantize.ts';
import { float16BitsToNumber } from './safetensors.ts';

export interface TensorData {
  name: string;
  dtype: TensorDType;
  shape: number[];
  /** raw little-endian bytes (float32/float16) or packed nibbles (uint4) */
  data: Uint8Array;
}

function alignUp(n: number): number {
  return Math.ceil(n / TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT;
}

/** Lay tensors out in one unit blob, in the given order. */
export function packUnit(tensors: readonly TensorData[]): { bytes: Uint8Array; entries: TensorEntry[] } {
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const t of tensors) {
    const length = tensorByteLength(t.dtype, t.shape);
    if (t.data.byteLength !== length) {
      throw new TandemError(
        'unit-pack',
        `Tensor '${t.name}' has ${t.data.byteLength} bytes, but ${t.dtype} [${t.shape.join(', ')}] needs ${length}.`,
      );
    }
    offset = alignUp(offset);
    entries.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], offset, length });
    offset += length;
  }
  const bytes = new Uint8Array(offset);
  tensors.forEach((t, i) => bytes.set(t.data, entries[i].offset));
  return { bytes, entries };
}

/** The raw bytes of one tensor inside a unit blob (a view, no copy). */
export function tensorBytes(unit: UnitEntry, bytes: Uint8Array, name: string): Uint8Array {
  const t = getTensor(unit, name);
  if (t.offset + t.length > bytes.byteLength) {
    throw new TandemError(
      'shard-truncated',
      `Unit '${unit.id}' (${unit.file}) is ${bytes.byteLength} bytes, too short for tensor '${name}' (ends at ${t.offset + t.length}).`,
    );
  }
  return bytes.subarray(t.offset, t.offset + t.length);
}

/** A float32 or float16 tensor of a unit decoded to float32 values (row-major, the manifest's shape). */
export function readFloatTensor(
  unit: UnitEntry,
  bytes: Uint8Array,
  name: string,
): { shape: number[]; data: Float32Array } {
  const t = getTensor(unit, name);
  const raw = tensorBytes(unit, bytes, name);
  if (t.dtype === 'float32') {
    const data =
      raw.byteOffset % 4 === 0
        ? new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)
        : new Float32Array(raw.slice().buffer);
    return { shape: t.shape, data };
  }
  if (t.dtype === 'float16') {
    const halves =
      raw.byteOffset % 2 === 0
        ? new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2)
        : new Uint16Array(raw.slice().buffer);
    const data = new Float32Array(halves.length);
    for (let i = 0; i < halves.length; i++) data[i] = float16BitsToNumber(halves[i]);
    return { shape: t.shape, data };
  }
  throw new TandemError('tensor-dtype', `Tensor '${name}' of unit '${unit.id}' is ${t.dtype}, not a float tensor.`);
}

/**
 * A matmul weight `<prefix>.weight` as float32 in `x @ W` orientation [in, out], whatever the package
 * dtype: float32/float16 are stored that way; q4 (`<prefix>.qweight` [out, in] + `.scales`) is
 * dequantised and transposed.
 */
export function readMatmulWeight(
  unit: UnitEntry,
  bytes: Uint8Array,
  prefix: string,
): { shape: [number, number]; data: Float32Array } {
  if (unit.tensors.some((t) => t.name === `${prefix}.weight`)) {
    const { shape, data } = readFloatTensor(unit, bytes, `${prefix}.weight`);
    return { shape: [shape[0], shape[1]], data };
  }
  const qt = getTensor(unit, `${prefix}.qweight`);
  const [out, inp] = [qt.shape[0], qt.shape[1]];
  const qweight = tensorBytes(unit, bytes, `${prefix}.qweight`);
  const scales = readFloatTensor(unit, bytes, `${prefix}.scales`).data;
  const w = dequantizeQ4({ qweight, scales }, out, inp, `${unit.id} ${prefix}`);
  return { shape: [inp, out], data: transpose(w, out, inp) };
}

/** Transpose a row-major [rows, cols] matrix into a new [cols, rows] one. */
export function transpose(src: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[base + c]!;
  }
  return out;
}
