import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256HexJs } from './sha256.ts';

const ref = (d: Uint8Array) => createHash('sha256').update(d).digest('hex');

describe('sha256HexJs', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(sha256HexJs(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256HexJs(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('matches node:crypto at every length around the block and padding edges, and on offset views', () => {
    let s = 7;
    const big = Uint8Array.from({ length: 4096 }, () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24);
    for (let n = 0; n <= 200; n++) expect(sha256HexJs(big.subarray(0, n)), `length ${n}`).toBe(ref(big.subarray(0, n)));
    for (const n of [511, 512, 1000, 4095])
      expect(sha256HexJs(big.subarray(3, 3 + n))).toBe(ref(big.subarray(3, 3 + n)));
  });
});
