import { describe, expect, it } from 'vitest';
import { TandemError } from './errors.ts';
import {
  crc32,
  encodeFrame,
  endFrame,
  errorFrame,
  float16ToFloat32,
  float32ToFloat16,
  FrameAssembler,
  FrameEncoder,
  frameToFloat32,
  frameToInt32,
  headerBytes,
  hiddenFrame,
  readEndFrame,
  readErrorFrame,
  tokenFrame,
  SCTP_MAX_MESSAGE_BYTES,
  type Frame,
  type WireDType,
} from './frame-codec.ts';
import { mulberry32 as prng } from './random.ts';

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

const SIZES: Record<WireDType, number> = { float32: 4, float16: 2, int32: 4, uint8: 1 };

function makeFrame(rand: () => number, dtype: WireDType, dims: number[], kind: Frame['kind'] = 'hidden'): Frame {
  const n = dims.reduce((a, b) => a * b, 1);
  return {
    kind,
    requestId: Math.floor(rand() * 2 ** 32),
    step: Math.floor(rand() * 1000),
    dtype,
    dims,
    payload: randomBytes(rand, n * SIZES[dtype]),
  };
}

function decodeAll(chunks: Uint8Array[], asm = new FrameAssembler()): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) {
    const f = asm.push(c);
    if (f) out.push(f);
  }
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof TandemError) return err.code;
    throw err; // anything but a TandemError is a crash: fail the test
  }
  return 'no-error';
}

/** Rewrite a header field and fix the CRC, so the field itself (not the checksum) is what the decoder sees. */
function patch(chunk: Uint8Array, edit: (v: DataView) => void): Uint8Array {
  const c = chunk.slice();
  const v = new DataView(c.buffer);
  edit(v);
  const rank = v.getUint8(7);
  const hdr = headerBytes(Math.min(rank, 8));
  v.setUint32(hdr - 4, crc32(c.subarray(0, hdr - 4)), true);
  return c;
}

describe('crc32', () => {
  it('matches the standard check value of CRC-32/IEEE', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('frame round trips', () => {
  const rand = prng(1);
  const shapes: number[][] = [[], [0], [1], [7], [2, 3, 4], [1, 5, 64], [1, 1, 1, 1, 1, 1, 2, 3]];
  for (const dtype of ['float32', 'float16', 'int32', 'uint8'] as WireDType[]) {
    for (const dims of shapes) {
      it(`${dtype} [${dims.join(',')}] single and multi-chunk`, () => {
        const f = makeFrame(rand, dtype, dims);
        for (const maxChunk of [SCTP_MAX_MESSAGE_BYTES, headerBytes(dims.length) + 1, headerBytes(dims.length) + 7]) {
          const chunks = encodeFrame(f, maxChunk);
          for (const c of chunks) expect(c.byteLength).toBeLessThanOrEqual(maxChunk);
          const [g] = decodeAll(chunks);
          expect(g.kind).toBe(f.kind);
          expect(g.requestId).toBe(f.requestId);
          expect(g.step).toBe(f.step);
          expect(g.dtype).toBe(dtype);
          expect(g.dims).toEqual(dims);
          expect(Array.from(g.payload)).toEqual(Array.from(f.payload));
        }
      });
    }
  }

  it('splits a 1 MiB hidden state into <= 256 KiB messages and reassembles it', () => {
    const data = new Float32Array(1 * 256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 1e3;
    const f = hiddenFrame(9, 0, data, [1, 256, 1024]);
    const chunks = encodeFrame(f);
    expect(chunks.length).toBe(5);
    for (const c of chunks) expect(c.byteLength).toBeLessThanOrEqual(256 * 1024);
    const [g] = decodeAll(chunks);
    const back = frameToFloat32(g);
    expect(back.length).toBe(data.length);
    expect(back.every((x, i) => x === data[i])).toBe(true);
  });

  it('carries every kind, and several frames back to back through one assembler', () => {
    const enc = new FrameEncoder(100);
    const asm = new FrameAssembler({ strictSequence: true });
    const frames = [
      hiddenFrame(1, 0, Float32Array.from([1, -2, 3.5, 1e-8]), [1, 2, 2]),
      tokenFrame(1, 0, [151643]),
      errorFrame(1, 1, 'session-create-failed', 'out of memory: try a smaller range'),
      endFrame(1, 2, 'eos'),
    ];
    const got = decodeAll(
      frames.flatMap((f) => enc.encode(f)),
      asm,
    );
    expect(got.map((g) => g.kind)).toEqual(['hidden', 'token', 'error', 'end']);
    expect(got.map((g) => g.seq)).toEqual([0, 1, 2, 3]);
    expect(Array.from(frameToFloat32(got[0]))).toEqual([1, -2, 3.5, Math.fround(1e-8)]);
    expect(Array.from(frameToInt32(got[1]))).toEqual([151643]);
    expect(readErrorFrame(got[2])).toEqual({
      code: 'session-create-failed',
      message: 'out of memory: try a smaller range',
    });
    expect(readEndFrame(got[3])).toBe('eos');
  });
});

describe('encoder input checks', () => {
  it('rejects a payload that does not match dims x dtype', () => {
    expect(
      codeOf(() =>
        encodeFrame({
          kind: 'hidden',
          requestId: 0,
          step: 0,
          dtype: 'float32',
          dims: [2, 2],
          payload: new Uint8Array(15),
        }),
      ),
    ).toBe('frame-invalid');
  });
  it('rejects non-u32 ids, bad ranks and too-small chunk sizes', () => {
    const ok: Frame = { kind: 'token', requestId: 0, step: 0, dtype: 'int32', dims: [1], payload: new Uint8Array(4) };
    expect(codeOf(() => encodeFrame({ ...ok, requestId: -1 }))).toBe('frame-invalid');
    expect(codeOf(() => encodeFrame({ ...ok, step: 2 ** 32 }))).toBe('frame-invalid');
    expect(codeOf(() => encodeFrame({ ...ok, step: 1.5 }))).toBe('frame-invalid');
    expect(codeOf(() => encodeFrame({ ...ok, dims: [1, 1, 1, 1, 1, 1, 1, 1, 1] }))).toBe('frame-invalid');
    expect(codeOf(() => encodeFrame(ok, headerBytes(1)))).toBe('frame-invalid');
  });
});

describe('malformed chunks', () => {
  const rand = prng(2);
  const f = makeFrame(rand, 'float32', [1, 3, 8]); // 96-byte payload
  const two = encodeFrame(f, headerBytes(3) + 64); // 2 chunks: 64 + 32 payload bytes
  const good = encodeFrame(makeFrame(rand, 'int32', [3]))[0];

  function expectRecovers(asm: FrameAssembler): void {
    const g = asm.push(good);
    expect(g?.kind).toBe('hidden');
  }

  it('rejects a flip of any single header byte (checksum or field check) and recovers', () => {
    const hdr = headerBytes(3);
    for (let i = 0; i < hdr; i++) {
      for (const bit of [0x01, 0x80]) {
        const c = two[0].slice();
        c[i] ^= bit;
        const asm = new FrameAssembler();
        expect(
          codeOf(() => asm.push(c)),
          `byte ${i} bit ${bit}`,
        ).toMatch(/^frame-/);
        expectRecovers(asm);
      }
    }
  });

  it('names the field when a header field is wrong but the checksum is consistent', () => {
    const cases: [string, (v: DataView) => void, string][] = [
      ['magic', (v) => v.setUint32(0, 0x12345678, true), 'frame-malformed'],
      ['version', (v) => v.setUint8(4, 2), 'frame-unsupported-version'],
      ['kind', (v) => v.setUint8(5, 9), 'frame-unknown-kind'],
      ['dtype', (v) => v.setUint8(6, 9), 'frame-unknown-dtype'],
      ['dtype size', (v) => v.setUint8(6, 1), 'frame-malformed'],
      ['rank too big', (v) => v.setUint8(7, 200), 'frame-malformed'],
      ['rank smaller', (v) => v.setUint8(7, 2), 'frame-malformed'],
      ['chunk index', (v) => v.setUint32(20, 1, true), 'frame-out-of-order'],
      ['chunk index past count', (v) => v.setUint32(20, 5, true), 'frame-malformed'],
      ['chunk count zero', (v) => v.setUint32(24, 0, true), 'frame-malformed'],
      ['chunk count huge', (v) => v.setUint32(24, 0xffffffff, true), 'frame-malformed'],
      ['payload bytes', (v) => v.setUint32(28, 95, true), 'frame-malformed'],
      ['chunk payload bytes', (v) => v.setUint32(32, 63, true), 'frame-malformed'],
      ['dim', (v) => v.setUint32(40, 4, true), 'frame-malformed'],
      ['dim overflow', (v) => v.setUint32(36, 0xffffffff, true), 'frame-malformed'],
    ];
    for (const [name, edit, code] of cases) {
      const asm = new FrameAssembler();
      expect(
        codeOf(() => asm.push(patch(two[0], edit))),
        name,
      ).toBe(code);
      expectRecovers(asm);
    }
  });

  it('detects a changed request id, step or sequence number (header checksum)', () => {
    for (const off of [8, 12, 16]) {
      const c = two[0].slice();
      c[off] ^= 0x04;
      expect(codeOf(() => new FrameAssembler().push(c))).toBe('frame-malformed');
    }
  });

  it('rejects truncation at every byte of a small frame', () => {
    const small = encodeFrame(tokenFrame(3, 4, [1, 2, 3]))[0];
    for (let n = 0; n < small.byteLength; n++) {
      const asm = new FrameAssembler();
      expect(
        codeOf(() => asm.push(small.subarray(0, n))),
        `length ${n}`,
      ).toBe('frame-malformed');
      expectRecovers(asm);
    }
    expect(codeOf(() => new FrameAssembler().push(Uint8Array.of(...small, 0)))).toBe('frame-malformed');
  });

  it('rejects out-of-order and missing chunks', () => {
    const three = encodeFrame(f, headerBytes(3) + 32);
    expect(three.length).toBe(3);
    let asm = new FrameAssembler();
    expect(codeOf(() => asm.push(three[1]))).toBe('frame-out-of-order');
    asm = new FrameAssembler();
    asm.push(three[0]);
    expect(codeOf(() => asm.push(three[2]))).toBe('frame-out-of-order');
    expect(asm.busy).toBe(false);
    expectRecovers(asm);
    asm = new FrameAssembler();
    asm.push(three[0]);
    expect(codeOf(() => asm.push(three[0]))).toBe('frame-interleaved');
  });

  it('rejects interleaved chunks of two frames', () => {
    const enc = new FrameEncoder(headerBytes(3) + 64);
    const a = enc.encode(f);
    const b = enc.encode({ ...f, step: f.step + 1 });
    const asm = new FrameAssembler();
    expect(asm.push(a[0])).toBeNull();
    expect(codeOf(() => asm.push(b[1]))).toBe('frame-interleaved');
    expect(asm.push(b[0])).toBeNull();
    expect(asm.push(b[1])?.step).toBe(f.step + 1);
  });

  it('rejects frames over maxFrameBytes before allocating them', () => {
    const big = makeFrame(rand, 'float32', [1000]);
    const asm = new FrameAssembler({ maxFrameBytes: 3999 });
    const chunks = encodeFrame(big, 1000);
    expect(codeOf(() => asm.push(chunks[0]))).toBe('frame-too-large');
    expect(codeOf(() => asm.push(chunks[1]))).toBe('frame-out-of-order');
    expect(decodeAll(encodeFrame(big), new FrameAssembler({ maxFrameBytes: 4000 }))).toHaveLength(1);
  });

  it('with strictSequence, reports a lost frame and resynchronises', () => {
    const enc = new FrameEncoder();
    const frames = [0, 1, 2, 3].map((i) => enc.encode(tokenFrame(1, i, [i]))[0]);
    const asm = new FrameAssembler({ strictSequence: true });
    expect(asm.push(frames[0])?.step).toBe(0);
    expect(codeOf(() => asm.push(frames[2]))).toBe('frame-sequence-gap');
    expect(asm.push(frames[3])?.step).toBe(3);
    expect(decodeAll([frames[0], frames[2]], new FrameAssembler())).toHaveLength(2); // not strict: accepted
  });

  it('survives seeded random garbage and random corruption of valid chunks', () => {
    const r = prng(12345);
    let errors = 0;
    const asm = new FrameAssembler({ maxFrameBytes: 1 << 20 });
    for (let i = 0; i < 3000; i++) {
      const garbage = randomBytes(r, Math.floor(r() * 200));
      if (i % 3 === 0 && garbage.length >= 4) garbage.set([0x54, 0x4e, 0x44, 0x4d], 0); // real magic, random rest
      try {
        asm.push(garbage);
      } catch (err) {
        expect(err).toBeInstanceOf(TandemError);
        errors++;
      }
    }
    expect(errors).toBe(3000);
    const valid = encodeFrame(makeFrame(r, 'float16', [2, 5, 3]), headerBytes(3) + 24);
    for (let i = 0; i < 3000; i++) {
      const chunks = valid.map((c) => c.slice());
      const c = chunks[Math.floor(r() * chunks.length)];
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) c[Math.floor(r() * c.length)] ^= 1 + Math.floor(r() * 255);
      const a = new FrameAssembler();
      for (const ch of chunks) {
        try {
          const g = a.push(ch);
          if (g) expect(g.payload.byteLength).toBe(60); // payload bytes are not checksummed: shape must hold
        } catch (err) {
          expect(err).toBeInstanceOf(TandemError);
        }
      }
    }
  });
});

describe('float16 conversion', () => {
  it('decodes known bit patterns', () => {
    const bits = Uint16Array.of(0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x3555);
    const want = [0, -0, 1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, Infinity, -Infinity, 0.333251953125];
    expect(Array.from(float16ToFloat32(bits))).toEqual(want);
    expect(Number.isNaN(float16ToFloat32(Uint16Array.of(0x7e00))[0])).toBe(true);
  });

  it('encodes to the nearest half (ties to even), checked by brute force over all finite halves', () => {
    const all = new Uint16Array(0x7c00); // positive finite halves, increasing
    for (let i = 0; i < all.length; i++) all[i] = i;
    const values = float16ToFloat32(all);
    const nearest = (x: number): number => {
      let lo = 0;
      let hi = values.length - 1;
      if (x >= values[hi]) return x >= 65520 ? 0x7c00 : hi; // 65520 = halfway to 2^16 rounds to Inf
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (values[mid] <= x) lo = mid;
        else hi = mid;
      }
      const dl = x - values[lo];
      const dh = values[hi] - x;
      if (dl < dh) return lo;
      if (dh < dl) return hi;
      return lo % 2 === 0 ? lo : hi;
    };
    const r = prng(7);
    const xs: number[] = [
      0,
      1,
      65504,
      65519,
      65520,
      1e6,
      2 ** -25,
      2 ** -25 * 1.0001,
      2 ** -24 * 1.5,
      2 ** -24 * 2.5,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
    ];
    for (let i = 0; i < 20000; i++) xs.push(Math.fround(Math.exp((r() - 0.5) * 30)));
    const got = float32ToFloat16(Float32Array.from(xs));
    const neg = float32ToFloat16(Float32Array.from(xs.map((x) => -x)));
    xs.forEach((x, i) => {
      const want = nearest(Math.fround(x));
      expect(got[i], `x=${x}`).toBe(want);
      expect(neg[i], `x=-${x}`).toBe(want | 0x8000);
    });
  });

  it('sends hidden states as float16 with half the bytes', () => {
    const data = Float32Array.from([0.5, -1.25, 3.140625, 100]);
    const f = hiddenFrame(1, 0, data, [1, 1, 4], 'float16');
    expect(f.payload.byteLength).toBe(8);
    const [g] = decodeAll(encodeFrame(f));
    expect(Array.from(frameToFloat32(g))).toEqual([0.5, -1.25, 3.140625, 100]);
  });
});
