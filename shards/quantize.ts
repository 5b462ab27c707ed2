/**
 * 4-bit block quantisation in the package's q4 layout (pure).
 *
 * A weight W in Hugging Face orientation [out, in] (row n = output feature n) is cut along `in` into
 * blocks of Q4_BLOCK = 32 values. Each block gets one float32 scale = max|w| / 7 and each value
 * q = clamp(round(w / scale) + 8, 0, 15), so w ~= (q - 8) * scale (symmetric, zero point 8) and
 * |w - dequantised| <= scale / 2. Two values per byte, low nibble first: byte j of row n holds
 * in-indices 2j (low) and 2j+1 (high) = MatMulNBits' B layout [N, K/32, 16].
 */
import { TandemError } from '../core/errors.ts';
import { Q4_BLOCK } from './manifest.ts';

export interface Q4Weight {
  /** uint4 [out, in], packed: out * in / 2 bytes */
  qweight: Uint8Array;
  /** float32 [out, in / 32] */
  scales: Float32Array;
}

function checkShape(out: number, inp: number, what: string): void {
  if (inp % Q4_BLOCK !== 0) {
    throw new TandemError(
      'q4-shape',
      `${what}: input dimension ${inp} is not a multiple of ${Q4_BLOCK}; q4 needs whole blocks. Use --dtype fp32 or fp16 for this model.`,
    );
  }
  if (out <= 0 || inp <= 0) throw new TandemError('q4-shape', `${what}: bad shape [${out}, ${inp}].`);
}

/** Quantise W [out, in] (row-major float32) to q4. */
export function quantizeQ4(w: ArrayLike<number>, out: number, inp: number, what = 'weight'): Q4Weight {
  checkShape(out, inp, what);
  if (w.length !== out * inp)
    throw new TandemError('q4-shape', `${what}: has ${w.length} values, expected ${out} x ${inp}.`);
  const blocksPerRow = inp / Q4_BLOCK;
  const qweight = new Uint8Array((out * inp) / 2);
  const scales = new Float32Array(out * blocksPerRow);
  for (let n = 0; n < out; n++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const base = n * inp + b * Q4_BLOCK;
      // scale = max|w| / 7 over the block
      let amax = 0;
      for (let k = 0; k < Q4_BLOCK; k++) amax = Math.max(amax, Math.abs(w[base + k]));
      const scale = Math.fround(amax / 7);
      scales[n * blocksPerRow + b] = scale;
      const inv = scale === 0 ? 0 : 1 / scale;
      // q = round(w / scale) + 8, two per byte, low nibble first
      for (let k = 0; k < Q4_BLOCK; k += 2) {
        const q0 = Math.min(15, Math.max(0, Math.round(w[base + k] * inv) + 8));
        const q1 = Math.min(15, Math.max(0, Math.round(w[base + k + 1] * inv) + 8));
        qweight[(base + k) >> 1] = q0 | (q1 << 4);
      }
    }
  }
  return { qweight, scales };
}

/** Dequantise to W [out, in] (row-major): w = (q - 8) * scale. */
export function dequantizeQ4(q: Q4Weight, out: number, inp: number, what = 'weight'): Float32Array {
  checkShape(out, inp, what);
  const blocksPerRow = inp / Q4_BLOCK;
  if (q.qweight.length !== (out * inp) / 2 || q.scales.length !== out * blocksPerRow) {
    throw new TandemError(
      'q4-shape',
      `${what}: qweight/scales sizes (${q.qweight.length}, ${q.scales.length}) do not match [${out}, ${inp}].`,
    );
  }
  const w = new Float32Array(out * inp);
  for (let i = 0; i < out * inp; i += 2) {
    const byte = q.qweight[i >> 1];
    const n = Math.floor(i / inp);
    const scale = q.scales[n * blocksPerRow + Math.floor((i % inp) / Q4_BLOCK)];
    w[i] = ((byte & 0x0f) - 8) * scale;
    w[i + 1] = ((byte >> 4) - 8) * scale;
  }
  return w;
}
