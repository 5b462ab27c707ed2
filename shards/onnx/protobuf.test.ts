import { describe, expect, it } from 'vitest';
import { ProtoWriter } from './protobuf.ts';

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

// Expected bytes are the worked examples of the protobuf encoding guide (protobuf.dev/programming-guides/encoding).
describe('ProtoWriter', () => {
  it('encodes varints, strings, packed ints and negative ints as the protobuf guide does', () => {
    expect(hex(new ProtoWriter().int(1, 150).finish())).toBe('08 96 01');
    expect(hex(new ProtoWriter().string(2, 'testing').finish())).toBe('12 07 74 65 73 74 69 6e 67');
    expect(hex(new ProtoWriter().packedInts(4, [3, 270, 86942]).finish())).toBe('22 06 03 8e 02 9e a7 05');
    expect(hex(new ProtoWriter().int(1, -2).finish())).toBe('08 fe ff ff ff ff ff ff ff ff 01');
    expect(hex(new ProtoWriter().message(3, new ProtoWriter().int(1, 150).finish()).finish())).toBe('1a 03 08 96 01');
  });

  it('encodes fixed32 floats little-endian and grows past its initial capacity', () => {
    expect(hex(new ProtoWriter().float(2, 1).finish())).toBe('15 00 00 80 3f');
    const big = new Uint8Array(100_000).fill(7);
    const out = new ProtoWriter(4).bytes(9, big).finish();
    expect(out.length).toBe(1 + 3 + big.length);
    expect(out[out.length - 1]).toBe(7);
  });

  it('refuses unsafe integers instead of corrupting them', () => {
    expect(() => new ProtoWriter().int(1, 2 ** 60)).toThrow(RangeError);
  });
});
