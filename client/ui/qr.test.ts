import { describe, expect, it } from 'vitest';
import { qrMatrix } from './qr.ts';

/** A QR finder pattern: 7x7 dark ring, light ring, 3x3 dark core. */
function isFinder(m: boolean[][], top: number, left: number): boolean {
  for (let r = 0; r < 7; r++)
    for (let c = 0; c < 7; c++) {
      const ring = Math.max(Math.abs(r - 3), Math.abs(c - 3));
      const want = ring !== 2; // rings 3 (outer) and 0-1 (core) dark, ring 2 light
      if (m[top + r][left + c] !== want) return false;
    }
  return true;
}

describe('qrMatrix', () => {
  it('has a QR size (21 + 4k) and finder patterns in three corners only', () => {
    const m = qrMatrix('https://10.0.0.2:8443/?join=K7Q2MN0P');
    const n = m.length;
    expect((n - 21) % 4).toBe(0);
    expect(n).toBeGreaterThanOrEqual(25); // 38 bytes do not fit version 1 at level M
    expect(isFinder(m, 0, 0)).toBe(true);
    expect(isFinder(m, 0, n - 7)).toBe(true);
    expect(isFinder(m, n - 7, 0)).toBe(true);
    expect(isFinder(m, n - 7, n - 7)).toBe(false);
    // timing pattern between the top finders alternates
    for (let c = 8; c < n - 8; c++) expect(m[6][c]).toBe(c % 2 === 0);
  });

  it('differs for different links', () => {
    expect(qrMatrix('http://a/?join=AAAAAAAA')).not.toEqual(qrMatrix('http://a/?join=BBBBBBBB'));
  });
});
