/**
 * Tandem wire frames: hidden states, tokens, errors and end-of-request markers between pipeline stages.
 *
 * Used by the browser transport (WebRTC data channels) and by the Node pipeline runner, so it is pure:
 * no Node or DOM APIs. One frame is split into one or more chunks (messages); every message, header
 * included, is at most `maxChunkBytes` (default 256 KiB = the SCTP max message size of data channels).
 *
 * Chunk layout (all integers little-endian; header length = 40 + 4 * rank bytes):
 *
 *   off  size  field
 *   0    4     magic 'TNDM' (0x54 0x4E 0x44 0x4D)
 *   4    1     version (1)
 *   5    1     kind    (0 hidden, 1 token, 2 error, 3 end)
 *   6    1     dtype   (0 float32, 1 float16, 2 int32, 3 uint8)
 *   7    1     rank    (0..8)
 *   8    4     request id                      u32
 *   12   4     step (0 = prefill)              u32
 *   16   4     frame sequence number           u32 (per sender; lets a receiver spot lost/reordered frames)
 *   20   4     chunk index                     u32 (0-based)
 *   24   4     chunk count                     u32 (>= 1)
 *   28   4     frame payload bytes             u32 (whole frame, == prod(dims) * dtype size)
 *   32   4     chunk payload bytes             u32 (bytes of payload after this header)
 *   36   4*r   dims                            u32 each
 *   36+4r 4    CRC-32 of header bytes [0, 36+4r)
 *   40+4r ...  payload bytes of this chunk
 *
 * Reassembly (FrameAssembler) rejects, with a TandemError and without crashing or keeping half a frame:
 * unknown magic, version, kind or dtype; a header checksum mismatch; a truncated or over-long chunk; a
 * payload length that does not match dims x dtype; out-of-order chunks; chunks of two frames interleaved;
 * frames larger than `maxFrameBytes`; and (with `strictSequence`) a gap in frame sequence numbers.
 */
import { TandemError } from './errors.ts';

export type FrameKind = 'hidden' | 'token' | 'error' | 'end';
export type WireDType = 'float32' | 'float16' | 'int32' | 'uint8';

export interface Frame {
  kind: FrameKind;
  /** u32: which generation request this frame belongs to. */
  requestId: number;
  /** u32: 0 = prefill, n = n-th decode step. */
  step: number;
  dtype: WireDType;
  /** Tensor shape, e.g. [B, S, H] for hidden states; [] for a scalar; rank <= 8. */
  dims: number[];
  /** Raw little-endian element bytes, length = prod(dims) * dtype size. */
  payload: Uint8Array;
  /** u32 per-sender frame sequence number; set by FrameEncoder, 0 when absent. */
  seq?: number;
}

export const FRAME_MAGIC = 0x4d444e54; // bytes 'T','N','D','M' read as little-endian u32
export const FRAME_VERSION = 1;
export const MAX_RANK = 8;
/** SCTP max message size of a WebRTC data channel: no message may exceed it. */
export const SCTP_MAX_MESSAGE_BYTES = 256 * 1024;
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

const KINDS: readonly FrameKind[] = ['hidden', 'token', 'error', 'end'];
const DTYPES: readonly WireDType[] = ['float32', 'float16', 'int32', 'uint8'];
const DTYPE_BYTES: Record<WireDType, number> = { float32: 4, float16: 2, int32: 4, uint8: 1 };
const FIXED_HEADER_BYTES = 40;
const U32_MAX = 0xffffffff;

/** Header length in bytes of a chunk whose tensor has `rank` dimensions. */
export function headerBytes(rank: number): number {
  return FIXED_HEADER_BYTES + 4 * rank;
}

export function dtypeBytes(dtype: WireDType): number {
  return DTYPE_BYTES[dtype];
}

// ---------- CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) ----------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------- validation shared by encoder and decoder ----------

function isU32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= U32_MAX;
}

/** Bytes a tensor of this dtype and shape occupies; throws 'frame-invalid' for a bad shape. */
export function expectedPayloadBytes(dtype: WireDType, dims: readonly number[]): number {
  if (dims.length > MAX_RANK) {
    throw new TandemError('frame-invalid', `Frame rank ${dims.length} exceeds the maximum of ${MAX_RANK}.`);
  }
  let elements = 1;
  for (const d of dims) {
    if (!isU32(d)) throw new TandemError('frame-invalid', `Frame dimension ${d} is not an integer in 0..2^32-1.`);
    elements *= d;
  }
  const bytes = elements * DTYPE_BYTES[dtype];
  if (bytes > U32_MAX) {
    throw new TandemError(
      'frame-too-large',
      `A ${dtype} tensor of shape [${dims.join(', ')}] needs ${bytes} bytes; one frame carries at most 4 GiB - 1.`,
    );
  }
  return bytes;
}

function validateFrame(f: Frame): void {
  if (!KINDS.includes(f.kind))
    throw new TandemError(
      'frame-invalid',
      `Unknown frame kind ${JSON.stringify(f.kind)}; expected one of ${KINDS.join(', ')}.`,
    );
  if (!DTYPES.includes(f.dtype))
    throw new TandemError(
      'frame-invalid',
      `Unknown frame dtype ${JSON.stringify(f.dtype)}; expected one of ${DTYPES.join(', ')}.`,
    );
  if (!isU32(f.requestId)) throw new TandemError('frame-invalid', `Frame requestId ${f.requestId} is not a u32.`);
  if (!isU32(f.step)) throw new TandemError('frame-invalid', `Frame step ${f.step} is not a u32.`);
  if (f.seq !== undefined && !isU32(f.seq)) throw new TandemError('frame-invalid', `Frame seq ${f.seq} is not a u32.`);
  const want = expectedPayloadBytes(f.dtype, f.dims);
  if (f.payload.byteLength !== want) {
    throw new TandemError(
      'frame-invalid',
      `Frame payload is ${f.payload.byteLength} bytes but a ${f.dtype} tensor of shape [${f.dims.join(', ')}] needs ${want}.`,
    );
  }
}

// ---------- encoder ----------

/**
 * Split a frame into messages of at most `maxChunkBytes` bytes each, header included
 * (default 256 KiB, the data-channel limit). Throws TandemError('frame-invalid') for a frame whose
 * payload does not match its dtype and dims, or a chunk size too small to carry any payload.
 */
export function encodeFrame(f: Frame, maxChunkBytes: number = SCTP_MAX_MESSAGE_BYTES): Uint8Array[] {
  validateFrame(f);
  const hdr = headerBytes(f.dims.length);
  if (!Number.isInteger(maxChunkBytes) || maxChunkBytes < hdr + 1) {
    throw new TandemError(
      'frame-invalid',
      `maxChunkBytes ${maxChunkBytes} is too small: a rank-${f.dims.length} header alone is ${hdr} bytes.`,
    );
  }
  const perChunk = maxChunkBytes - hdr; // payload bytes per chunk
  const total = f.payload.byteLength;
  const count = Math.max(1, Math.ceil(total / perChunk));
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const begin = i * perChunk;
    const end = Math.min(total, begin + perChunk);
    const msg = new Uint8Array(hdr + (end - begin));
    const view = new DataView(msg.buffer);
    view.setUint32(0, FRAME_MAGIC, true);
    view.setUint8(4, FRAME_VERSION);
    view.setUint8(5, KINDS.indexOf(f.kind));
    view.setUint8(6, DTYPES.indexOf(f.dtype));
    view.setUint8(7, f.dims.length);
    view.setUint32(8, f.requestId, true);
    view.setUint32(12, f.step, true);
    view.setUint32(16, f.seq ?? 0, true);
    view.setUint32(20, i, true);
    view.setUint32(24, count, true);
    view.setUint32(28, total, true);
    view.setUint32(32, end - begin, true);
    f.dims.forEach((d, k) => view.setUint32(36 + 4 * k, d, true));
    view.setUint32(hdr - 4, crc32(msg.subarray(0, hdr - 4)), true);
    msg.set(f.payload.subarray(begin, end), hdr);
    chunks.push(msg);
  }
  return chunks;
}

/** Encoder that numbers frames 0, 1, 2, ... so a strict FrameAssembler can detect lost or reordered frames. */
export class FrameEncoder {
  private nextSeq = 0;
  constructor(private readonly maxChunkBytes: number = SCTP_MAX_MESSAGE_BYTES) {}

  encode(f: Frame): Uint8Array[] {
    const chunks = encodeFrame({ ...f, seq: this.nextSeq }, this.maxChunkBytes);
    this.nextSeq = (this.nextSeq + 1) >>> 0;
    return chunks;
  }
}

// ---------- decoder ----------

interface ChunkHeader {
  kind: FrameKind;
  dtype: WireDType;
  dims: number[];
  requestId: number;
  step: number;
  seq: number;
  chunkIndex: number;
  chunkCount: number;
  payloadBytes: number;
  chunkPayloadBytes: number;
  headerBytes: number;
}

function malformed(message: string): TandemError {
  return new TandemError('frame-malformed', message);
}

function parseChunkHeader(chunk: Uint8Array): ChunkHeader {
  if (chunk.byteLength < FIXED_HEADER_BYTES) {
    throw malformed(
      `Chunk of ${chunk.byteLength} bytes is shorter than the smallest frame header (${FIXED_HEADER_BYTES} bytes): truncated or not a Tandem frame.`,
    );
  }
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== FRAME_MAGIC) {
    throw malformed(
      `Chunk does not start with the Tandem frame magic (got 0x${magic.toString(16).padStart(8, '0')}): the peer is not speaking this protocol.`,
    );
  }
  const rank = view.getUint8(7);
  if (rank > MAX_RANK) throw malformed(`Frame rank ${rank} exceeds the maximum of ${MAX_RANK}.`);
  const hdr = headerBytes(rank);
  if (chunk.byteLength < hdr) {
    throw malformed(
      `Chunk of ${chunk.byteLength} bytes is shorter than its rank-${rank} header (${hdr} bytes): truncated.`,
    );
  }
  const storedCrc = view.getUint32(hdr - 4, true);
  const actualCrc = crc32(chunk.subarray(0, hdr - 4));
  if (storedCrc !== actualCrc) {
    throw malformed(
      `Frame header checksum mismatch (stored 0x${storedCrc.toString(16)}, computed 0x${actualCrc.toString(16)}): the header is corrupted.`,
    );
  }
  const version = view.getUint8(4);
  if (version !== FRAME_VERSION) {
    throw new TandemError(
      'frame-unsupported-version',
      `Frame version ${version} is not supported (this build speaks version ${FRAME_VERSION}); update every page to the same Tandem build.`,
    );
  }
  const kindCode = view.getUint8(5);
  const kind = KINDS.at(kindCode); // a code from the wire may be out of range
  if (kind === undefined) throw new TandemError('frame-unknown-kind', `Unknown frame kind code ${kindCode}.`);
  const dtypeCode = view.getUint8(6);
  const dtype = DTYPES.at(dtypeCode);
  if (dtype === undefined) throw new TandemError('frame-unknown-dtype', `Unknown frame dtype code ${dtypeCode}.`);
  const dims: number[] = [];
  for (let k = 0; k < rank; k++) dims.push(view.getUint32(36 + 4 * k, true));
  const h: ChunkHeader = {
    kind,
    dtype,
    dims,
    requestId: view.getUint32(8, true),
    step: view.getUint32(12, true),
    seq: view.getUint32(16, true),
    chunkIndex: view.getUint32(20, true),
    chunkCount: view.getUint32(24, true),
    payloadBytes: view.getUint32(28, true),
    chunkPayloadBytes: view.getUint32(32, true),
    headerBytes: hdr,
  };
  if (chunk.byteLength !== hdr + h.chunkPayloadBytes) {
    throw malformed(
      `Chunk is ${chunk.byteLength} bytes but its header announces ${hdr} + ${h.chunkPayloadBytes}: ${chunk.byteLength < hdr + h.chunkPayloadBytes ? 'truncated' : 'trailing bytes'}.`,
    );
  }
  let want: number;
  try {
    want = expectedPayloadBytes(dtype, dims);
  } catch (err) {
    throw malformed(`Frame shape is invalid: ${(err as Error).message}`);
  }
  if (h.payloadBytes !== want) {
    throw malformed(
      `Frame announces ${h.payloadBytes} payload bytes but a ${dtype} tensor of shape [${dims.join(', ')}] needs ${want}.`,
    );
  }
  if (h.chunkCount < 1 || h.chunkIndex >= h.chunkCount) {
    throw malformed(`Chunk ${h.chunkIndex} of ${h.chunkCount} is impossible.`);
  }
  if (h.chunkCount > Math.max(1, h.payloadBytes)) {
    throw malformed(
      `${h.chunkCount} chunks for a ${h.payloadBytes}-byte payload: every chunk but an empty frame's must carry data.`,
    );
  }
  if (h.chunkPayloadBytes > h.payloadBytes) {
    throw malformed(`Chunk carries ${h.chunkPayloadBytes} bytes, more than the whole frame (${h.payloadBytes}).`);
  }
  if (h.chunkCount > 1 && h.chunkPayloadBytes === 0) {
    throw malformed(`Chunk ${h.chunkIndex} of ${h.chunkCount} carries no payload.`);
  }
  return h;
}

export interface FrameAssemblerOptions {
  /** Largest frame payload accepted, in bytes (default 256 MiB); larger frames are rejected before allocation. */
  maxFrameBytes?: number;
  /** Require frame sequence numbers 0, 1, 2, ... (as written by one FrameEncoder). Default false. */
  strictSequence?: boolean;
}

interface Pending {
  header: ChunkHeader;
  payload: Uint8Array;
  filled: number;
  nextIndex: number;
}

/**
 * Reassembles frames from the chunks of ONE ordered channel. `push` returns the completed frame when its
 * last chunk arrives, null while a frame is incomplete, and throws a TandemError for a bad chunk. After a
 * throw the partial frame is dropped and the assembler accepts new frames, so one bad message costs one
 * frame, not the connection.
 */
export class FrameAssembler {
  private pending: Pending | null = null;
  private expectedSeq: number | null = null;
  /** Largest frame payload accepted, bytes; a receiver may lower it once it knows its model. */
  maxFrameBytes: number;
  private readonly strictSequence: boolean;

  constructor(opts: FrameAssemblerOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.strictSequence = opts.strictSequence ?? false;
  }

  /** True while a frame is partly received. */
  get busy(): boolean {
    return this.pending !== null;
  }

  push(chunk: Uint8Array): Frame | null {
    try {
      return this.accept(chunk);
    } catch (err) {
      this.pending = null;
      throw err;
    }
  }

  private accept(chunk: Uint8Array): Frame | null {
    const h = parseChunkHeader(chunk);
    const body = chunk.subarray(h.headerBytes);
    const p = this.pending;
    if (p === null) {
      if (h.chunkIndex !== 0) {
        throw new TandemError(
          'frame-out-of-order',
          `Got chunk ${h.chunkIndex} of ${h.chunkCount} of frame ${h.seq} (request ${h.requestId}, step ${h.step}) without its first chunk.`,
        );
      }
      if (h.payloadBytes > this.maxFrameBytes) {
        throw new TandemError(
          'frame-too-large',
          `Frame of ${h.payloadBytes} bytes exceeds this receiver's limit of ${this.maxFrameBytes} bytes; send a smaller tensor or raise maxFrameBytes.`,
        );
      }
      if (this.strictSequence && this.expectedSeq !== null && h.seq !== this.expectedSeq) {
        const expected = this.expectedSeq;
        this.expectedSeq = (h.seq + 1) >>> 0; // resynchronise on the frame that arrived
        throw new TandemError(
          'frame-sequence-gap',
          `Expected frame ${expected} but got frame ${h.seq}: frames were lost or reordered.`,
        );
      }
      if (h.chunkCount === 1) {
        this.expectedSeq = (h.seq + 1) >>> 0;
        return toFrame(h, body.slice());
      }
      const payload = new Uint8Array(h.payloadBytes);
      payload.set(body, 0);
      this.pending = { header: h, payload, filled: body.byteLength, nextIndex: 1 };
      return null;
    }
    const ph = p.header;
    if (
      h.chunkIndex === 0 ||
      h.seq !== ph.seq ||
      h.requestId !== ph.requestId ||
      h.step !== ph.step ||
      h.kind !== ph.kind ||
      h.dtype !== ph.dtype ||
      h.chunkCount !== ph.chunkCount ||
      h.payloadBytes !== ph.payloadBytes ||
      h.dims.length !== ph.dims.length ||
      h.dims.some((d, k) => d !== ph.dims[k])
    ) {
      throw new TandemError(
        'frame-interleaved',
        `Chunk ${h.chunkIndex} of frame ${h.seq} (request ${h.requestId}, step ${h.step}) arrived while frame ${ph.seq} (request ${ph.requestId}, step ${ph.step}) was incomplete (${p.nextIndex} of ${ph.chunkCount} chunks): chunks of two frames were interleaved.`,
      );
    }
    if (h.chunkIndex !== p.nextIndex) {
      throw new TandemError(
        'frame-out-of-order',
        `Expected chunk ${p.nextIndex} of frame ${ph.seq} but got chunk ${h.chunkIndex} of ${h.chunkCount}.`,
      );
    }
    if (p.filled + body.byteLength > ph.payloadBytes) {
      throw malformed(`Chunks of frame ${ph.seq} carry more than the announced ${ph.payloadBytes} payload bytes.`);
    }
    p.payload.set(body, p.filled);
    p.filled += body.byteLength;
    p.nextIndex++;
    if (p.nextIndex < ph.chunkCount) return null;
    this.pending = null;
    if (p.filled !== ph.payloadBytes) {
      throw malformed(`Frame ${ph.seq} ended after ${p.filled} of ${ph.payloadBytes} payload bytes.`);
    }
    this.expectedSeq = (ph.seq + 1) >>> 0;
    return toFrame(ph, p.payload);
  }
}

function toFrame(h: ChunkHeader, payload: Uint8Array): Frame {
  return { kind: h.kind, requestId: h.requestId, step: h.step, dtype: h.dtype, dims: h.dims, payload, seq: h.seq };
}

// ---------- typed helpers for the payloads the pipeline sends ----------

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * A hidden-state frame [B, S, H], on the wire as float32 or (halving the bytes) float16. A float32
 * payload views `data` (no copy: encoding copies it into the chunks): leave `data` unchanged until sent.
 */
export function hiddenFrame(
  requestId: number,
  step: number,
  data: Float32Array,
  dims: number[],
  wire: 'float32' | 'float16' = 'float32',
): Frame {
  const payload = wire === 'float32' ? bytesOf(data) : bytesOf(float32ToFloat16(data));
  return { kind: 'hidden', requestId, step, dtype: wire, dims: [...dims], payload };
}

/** A token frame: int32 ids, shape [n]. */
export function tokenFrame(requestId: number, step: number, tokenIds: readonly number[]): Frame {
  const ids = Int32Array.from(tokenIds);
  return { kind: 'token', requestId, step, dtype: 'int32', dims: [ids.length], payload: bytesOf(ids) };
}

/** An end-of-request frame: tells every stage that request `requestId` is finished (reason in UTF-8). */
export function endFrame(requestId: number, step: number, reason: string): Frame {
  const payload = new TextEncoder().encode(reason);
  return { kind: 'end', requestId, step, dtype: 'uint8', dims: [payload.length], payload };
}

/** An error frame carrying a TandemError code and message (and the peer it started at) as UTF-8 JSON. */
export function errorFrame(requestId: number, step: number, code: string, message: string, origin?: string): Frame {
  const payload = new TextEncoder().encode(
    JSON.stringify(origin === undefined ? { code, message } : { code, message, origin }),
  );
  return { kind: 'error', requestId, step, dtype: 'uint8', dims: [payload.length], payload };
}

/** The {code, message, origin?} of an error frame; a payload that is not that JSON becomes code 'frame-malformed'. */
export function readErrorFrame(f: Frame): { code: string; message: string; origin?: string } {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(f.payload));
    if (
      typeof v === 'object' &&
      v !== null &&
      'code' in v &&
      'message' in v &&
      typeof v.code === 'string' &&
      typeof v.message === 'string'
    ) {
      const origin = 'origin' in v && typeof v.origin === 'string' ? v.origin : undefined;
      return origin === undefined ? { code: v.code, message: v.message } : { code: v.code, message: v.message, origin };
    }
  } catch {
    // fall through
  }
  return { code: 'frame-malformed', message: 'An error frame arrived whose payload is not {code, message} JSON.' };
}

/** UTF-8 text of an end frame (its reason). */
export function readEndFrame(f: Frame): string {
  return new TextDecoder().decode(f.payload);
}

/**
 * The frame payload as float32 values (float16 frames are widened); throws for int32/uint8 frames. A
 * float32 payload that fills its own aligned buffer, as every received frame's does (FrameAssembler),
 * is viewed, not copied: the values share the frame's buffer.
 */
export function frameToFloat32(f: Frame): Float32Array {
  if (f.dtype === 'float32') {
    const p = f.payload;
    const own = p.byteOffset === 0 && p.byteLength === p.buffer.byteLength && p.buffer instanceof ArrayBuffer;
    return own ? new Float32Array(p.buffer, 0, p.byteLength / 4) : new Float32Array(p.slice().buffer);
  }
  if (f.dtype === 'float16') return float16ToFloat32(new Uint16Array(f.payload.slice().buffer));
  throw new TandemError('frame-invalid', `A ${f.kind} frame of dtype ${f.dtype} has no float values.`);
}

/** Frame payload as int32 values; throws for other dtypes. */
export function frameToInt32(f: Frame): Int32Array {
  if (f.dtype !== 'int32') throw new TandemError('frame-invalid', `Expected an int32 frame, got ${f.dtype}.`);
  return new Int32Array(f.payload.slice().buffer);
}

// ---------- IEEE 754 half precision ----------

/** float32 -> float16 bits, round to nearest even; overflow -> Inf, NaN stays NaN. */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length); // reinterpret, no copy
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    const e = exp - 112; // rebias 127 -> 15
    if (e > 0 && e < 0x1f) {
      // normal half
      let half = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // a carry into the exponent is correct
      out[i] = sign | half;
    } else if (exp === 0xff) {
      // Inf or NaN
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
    } else if (e >= 0x1f) {
      // overflow
      out[i] = sign | 0x7c00;
    } else if (e < -10) {
      // underflow to zero
      out[i] = sign;
    } else {
      // subnormal half
      const m = mant | 0x800000;
      const shift = 14 - e;
      let half = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

let HALF_TABLE: Float32Array | null = null;

/** All 65536 float16 values as float32 (exact), built on first use. */
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  HALF_TABLE = t;
  return t;
}

/** float16 bits -> float32 (exact). */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const table = halfTable();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]]!;
  return out;
}
