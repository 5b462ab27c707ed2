import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToNumber,
  decodeToFloat32,
  encodeBfloat16,
  encodeFloat16,
  encodeFloat32,
  encodeSafetensors,
  float16BitsToNumber,
  numberToBfloat16Bits,
  numberToFloat16Bits,
  parseSafetensors,
  parseSafetensorsIndex,
} from './safetensors.ts';

describe('safetensors', () => {
  it('round-trips F32, F16 and BF16 tensors with metadata', () => {
    const a = Float32Array.from([1.5, -2.25, 3e-3, 0, 65504, -1e-5]);
    const file = encodeSafetensors(
      [
        { name: 'a.f32', dtype: 'F32', shape: [2, 3], data: encodeFloat32(a) },
        { name: 'a.f16', dtype: 'F16', shape: [6], data: encodeFloat16(a) },
        { name: 'a.bf16', dtype: 'BF16', shape: [3, 2], data: encodeBfloat16(a) },
      ],
      { format: 'pt' },
    );
    const st = parseSafetensors(file);
    expect(st.header.dataStart % 8).toBe(0);
    expect(st.header.metadata).toEqual({ format: 'pt' });
    expect(st.header.tensors.get('a.f32')!.shape).toEqual([2, 3]);
    expect([...decodeToFloat32('F32', st.data('a.f32'))]).toEqual([...a]);
    // fp16: exact for values representable in binary16; the others within half an ulp (2^-11 relative)
    const f16 = decodeToFloat32('F16', st.data('a.f16'));
    a.forEach((v, i) => expect(Math.abs(f16[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25)));
    expect(f16[0]).toBe(1.5);
    expect(f16[4]).toBe(65504);
    const bf = decodeToFloat32('BF16', st.data('a.bf16'));
    a.forEach((v, i) => expect(Math.abs(bf[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8));
    // the header is plain JSON with the reference layout
    const n = Number(new DataView(file.buffer).getBigUint64(0, true));
    const json = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<
      string,
      { data_offsets?: unknown }
    >;
    expect(json['a.f32']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(json['a.f16'].data_offsets).toEqual([24, 36]);
  });

  it('rejects a truncated file, a bad header and a tensor whose size does not match its shape', () => {
    const file = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [4], data: encodeFloat32([1, 2, 3, 4]) }]);
    expect(() => parseSafetensors(file.subarray(0, file.length - 1), 'x.safetensors')).toThrow(
      expect.objectContaining({ code: 'safetensors-malformed' }),
    );
    expect(() => parseSafetensors(file.subarray(0, 5))).toThrow(
      expect.objectContaining({ code: 'safetensors-malformed' }),
    );
    const bad = file.slice();
    bad[8] = 0x41; // break the JSON
    expect(() => parseSafetensors(bad)).toThrow(/not JSON/);
    expect(() =>
      encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [5], data: encodeFloat32([1, 2, 3, 4]) }]),
    ).toThrow(/needs 20/);
  });

  it('float16 conversion is exact on all 65536 bit patterns and rounds midpoints to even', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = float16BitsToNumber(h);
      const back = numberToFloat16Bits(v);
      if (Number.isNaN(v) ? !Number.isNaN(float16BitsToNumber(back)) : back !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
    // midpoints between neighbours (positive finite, incl. subnormals) go to the even one
    for (let h = 0; h < 0x7bff; h += 37) {
      const lo = float16BitsToNumber(h),
        hi = float16BitsToNumber(h + 1);
      const mid = (lo + hi) / 2; // exact in float32 for binary16 neighbours
      expect(numberToFloat16Bits(mid)).toBe(h % 2 === 0 ? h : h + 1);
      expect(numberToFloat16Bits(lo + (hi - lo) * 0.25)).toBe(h);
      expect(numberToFloat16Bits(lo + (hi - lo) * 0.75)).toBe(h + 1);
    }
    expect(numberToFloat16Bits(1e6)).toBe(0x7c00); // overflow -> +Infinity
    expect(float16BitsToNumber(0x3c00)).toBe(1);
    expect(float16BitsToNumber(0x0001)).toBe(2 ** -24);
  });

  it('bfloat16 conversion rounds to nearest even', () => {
    expect(bfloat16BitsToNumber(0x3f80)).toBe(1);
    expect(numberToBfloat16Bits(1)).toBe(0x3f80);
    const ulp = 2 ** -7; // bf16 spacing at 1
    expect(numberToBfloat16Bits(1 + ulp / 2)).toBe(0x3f80); // tie -> even
    expect(numberToBfloat16Bits(1 + (3 * ulp) / 2)).toBe(0x3f82); // tie -> even (up)
    expect(numberToBfloat16Bits(1 + ulp * 0.51)).toBe(0x3f81);
    const wrong: number[] = [];
    for (let b = 0; b < 65536; b++) {
      const v = bfloat16BitsToNumber(b);
      if (!Number.isNaN(v) && numberToBfloat16Bits(v) !== b) wrong.push(b);
    }
    expect(wrong).toEqual([]);
  });

  it('parses a sharded index and rejects path-like shard names', () => {
    const map = parseSafetensorsIndex({
      metadata: { total_size: 10 },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    });
    expect(map.get('b')).toBe('model-00002-of-00002.safetensors');
    expect(() => parseSafetensorsIndex({ weight_map: { a: '../etc/passwd' } })).toThrow(/plain shard file name/);
    expect(() => parseSafetensorsIndex({})).toThrow(/weight_map/);
  });
});
