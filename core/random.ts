/**
 * mulberry32: a small seeded PRNG returning uniform numbers in [0, 1). Integer-only arithmetic, so the
 * same seed gives the same stream on every platform (seeded weights, sampling, fuzz cases, random plans).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The `index`-th number (0-based) of `mulberry32(seed)`'s stream, computed directly: mulberry32's state
 * after k + 1 draws is seed + (k + 1) * 0x6d2b79f5, and each output depends on that state only. So a
 * draw depends on (seed, index) alone, never on how many draws came before (replay after a failover).
 */
export function mulberry32At(seed: number, index: number): number {
  let t = ((seed >>> 0) + Math.imul((index + 1) >>> 0, 0x6d2b79f5)) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
