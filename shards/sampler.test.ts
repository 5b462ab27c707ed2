import { describe, expect, it } from 'vitest';
import { mulberry32, mulberry32At } from '../core/random.ts';
import { argmax, Sampler, samplingDistribution, type SamplingOptions } from './sampler.ts';

/**
 * Brute-force reference: softmax(logits / T) over all tokens; top-k keeps the k largest by rank;
 * top-p keeps, among ALL subsets of the survivors, the smallest one with mass >= p (the most massive
 * of those on ties), found by enumerating every subset.
 */
function bruteForce(logits: number[], opts: SamplingOptions): Map<number, number> {
  const T = opts.temperature!;
  const exps = logits.map((l) => Math.exp(l / T));
  let alive = logits.map((_, i) => i);
  if (opts.topK) {
    const ranked = [...alive].sort((a, b) => logits[b] - logits[a] || a - b);
    alive = ranked.slice(0, opts.topK);
  }
  const total = alive.reduce((s, i) => s + exps[i], 0);
  const p = opts.topP ?? 1;
  let best: number[] = alive;
  if (p < 1) {
    let bestSize = Infinity;
    let bestMass = -1;
    for (let mask = 1; mask < 1 << alive.length; mask++) {
      const subset = alive.filter((_, j) => mask & (1 << j));
      const mass = subset.reduce((s, i) => s + exps[i], 0) / total;
      if (mass >= p - 1e-12 && (subset.length < bestSize || (subset.length === bestSize && mass > bestMass))) {
        best = subset;
        bestSize = subset.length;
        bestMass = mass;
      }
    }
  }
  const keptMass = best.reduce((s, i) => s + exps[i], 0);
  return new Map(best.map((i) => [i, exps[i] / keptMass]));
}

const LOGITS = [1.2, -0.3, 2.5, 0.7, 2.1, -1.5, 0.0];

describe('sampler', () => {
  it('greedy picks the argmax, lowest index on ties', () => {
    expect(argmax([0, 3, 1, 3])).toBe(1);
    expect(new Sampler().sample(LOGITS, 0)).toBe(2);
    expect(new Sampler({ temperature: 1.5, topK: 1, seed: 9 }).sample(LOGITS, 3)).toBe(2);
  });

  const cases: SamplingOptions[] = [
    { temperature: 1 },
    { temperature: 0.6 },
    { temperature: 1.3, topK: 3 },
    { temperature: 1, topP: 0.8 },
    { temperature: 0.8, topK: 5, topP: 0.9 },
    { temperature: 2, topP: 0.5 },
  ];
  for (const opts of cases) {
    it(`distribution matches brute force: ${JSON.stringify(opts)}`, () => {
      const want = bruteForce(LOGITS, opts);
      const got = samplingDistribution(LOGITS, opts);
      expect(new Set(got.tokens)).toEqual(new Set(want.keys()));
      got.tokens.forEach((t, i) => expect(got.probs[i]).toBeCloseTo(want.get(t)!, 12));
    });

    it(`seeded draws follow the brute-force distribution: ${JSON.stringify(opts)}`, () => {
      const want = bruteForce(LOGITS, opts);
      const n = 20000;
      const sampler = new Sampler({ ...opts, seed: 1234 });
      const counts = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const t = sampler.sample(LOGITS, i);
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      for (const t of counts.keys()) expect(want.has(t)).toBe(true);
      for (const [t, p] of want) {
        const sigma = Math.sqrt((p * (1 - p)) / n);
        expect(Math.abs((counts.get(t) ?? 0) / n - p)).toBeLessThan(5 * sigma + 1e-9);
      }
    });
  }

  it('the same seed repeats the same tokens; another seed differs', () => {
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, seed });
      return Array.from({ length: 50 }, (_, i) => s.sample(LOGITS, i));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('the tokens drawn from index k onwards do not depend on the draws before k (resume after a loss)', () => {
    const opts = { temperature: 0.9, topK: 5, topP: 0.95, seed: 4242 };
    const k = 17;
    const whole = new Sampler(opts);
    const uninterrupted = Array.from({ length: 60 }, (_, i) => whole.sample(LOGITS, i));
    // A fresh sampler (the repaired pipeline's last stage) that starts at k, after other logits were drawn.
    const resumed = new Sampler(opts);
    for (let i = 0; i < 5; i++) resumed.sample([0, 0, 0, 9], i);
    const tail = Array.from({ length: 60 - k }, (_, j) => resumed.sample(LOGITS, k + j));
    expect(tail).toEqual(uninterrupted.slice(k));
    // Drawing out of order gives the same tokens too.
    const backwards = new Sampler(opts);
    const reversed = Array.from({ length: 60 }, (_, j) => backwards.sample(LOGITS, 59 - j)).reverse();
    expect(reversed).toEqual(uninterrupted);
  });

  it("the draw for index i is the i-th number of the seed's mulberry32 stream (same tokens as before indices)", () => {
    const rng = mulberry32(99);
    for (let i = 0; i < 1000; i++) expect(mulberry32At(99, i)).toBe(rng());
  });

  it('top-k on a large vocabulary keeps exactly the k largest', () => {
    const rng = mulberry32(3);
    const logits = Float32Array.from({ length: 5000 }, () => rng() * 10);
    const sorted = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    const got = samplingDistribution(logits, { temperature: 1, topK: 40 });
    expect(got.tokens).toEqual(sorted.slice(0, 40));
  });

  it('rejects bad options with a clear error code', () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow(expect.objectContaining({ code: 'sampling-invalid' }));
    expect(() => new Sampler({ topP: 0 })).toThrow(expect.objectContaining({ code: 'sampling-invalid' }));
    expect(() => new Sampler({ topK: 1.5 })).toThrow(expect.objectContaining({ code: 'sampling-invalid' }));
    expect(() => new Sampler({ temperature: 1 }).sample(LOGITS, -1)).toThrow(
      expect.objectContaining({ code: 'sampling-invalid' }),
    );
    expect(() => argmax([])).toThrow(expect.objectContaining({ code: 'logits-invalid' }));
  });
});
