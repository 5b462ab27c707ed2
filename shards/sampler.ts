/**
 * Next-token sampling from a logits row: greedy, temperature, top-k, top-p (nucleus), with a seeded
 * PRNG so runs repeat exactly. Pure; the Node pipeline runner and the page share it.
 *
 * The random draw for the token at 0-based generated index i is u = mulberry32At(seed, i): it depends
 * only on (seed, i), so a pipeline that resumes at token i after a failover (docs/failover.md) draws what
 * an uninterrupted run would have drawn.
 *
 * Order of operations (as Hugging Face generate): logits / temperature -> keep the top-k -> keep the
 * smallest set of most likely tokens whose probability sums to >= top-p -> renormalise -> draw.
 */
import { TandemError } from '../core/errors.ts';
import { mulberry32At } from '../core/random.ts';

export interface SamplingOptions {
  /** 0 (default) = greedy argmax; > 0 divides the logits before softmax */
  temperature?: number;
  /** keep only the k most likely tokens (0 or undefined = all) */
  topK?: number;
  /** keep the smallest most-likely set with total probability >= topP (1 or undefined = all) */
  topP?: number;
  /** PRNG seed (u32); default 0 */
  seed?: number;
}

/** Index of the largest logit (the lowest index among ties). NaN logits are never chosen. */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > bestValue || (best === -1 && v === -Infinity)) {
      best = i;
      bestValue = v;
    }
  }
  if (best === -1) throw new TandemError('logits-invalid', 'Cannot sample: the logits are empty or all NaN.');
  return best;
}

function validate(opts: SamplingOptions): void {
  const { temperature = 0, topK = 0, topP = 1 } = opts;
  if (!(temperature >= 0) || !Number.isFinite(temperature))
    throw new TandemError('sampling-invalid', `temperature must be a finite number >= 0, got ${temperature}.`);
  if (!Number.isInteger(topK) || topK < 0)
    throw new TandemError('sampling-invalid', `topK must be an integer >= 0 (0 = off), got ${topK}.`);
  if (!(topP > 0 && topP <= 1))
    throw new TandemError('sampling-invalid', `topP must be in (0, 1] (1 = off), got ${topP}.`);
}

/**
 * The candidate tokens and their renormalised probabilities after temperature, top-k and top-p, most
 * likely first. For temperature 0 this is the single argmax token with probability 1.
 */
export function samplingDistribution(
  logits: ArrayLike<number>,
  opts: SamplingOptions = {},
): { tokens: number[]; probs: number[] } {
  validate(opts);
  const { temperature = 0, topK = 0, topP = 1 } = opts;
  if (temperature === 0) return { tokens: [argmax(logits)], probs: [1] };

  // Candidates sorted by logit, descending (ties: lower index first). Top-k trims before the sort.
  let candidates = Array.from({ length: logits.length }, (_, i) => i).filter((i) => !Number.isNaN(logits[i]));
  if (candidates.length === 0)
    throw new TandemError('logits-invalid', 'Cannot sample: the logits are empty or all NaN.');
  const byLogit = (a: number, b: number) => logits[b] - logits[a] || a - b;
  if (topK > 0 && topK < candidates.length) candidates = topKIndices(logits, candidates, topK);
  candidates.sort(byLogit);

  // Softmax of logits / temperature over the candidates, in fp64.
  const max = logits[candidates[0]] / temperature;
  let weights = candidates.map((i) => Math.exp(logits[i] / temperature - max));
  let total = weights.reduce((a, b) => a + b, 0);

  if (topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < weights.length && cumulative < topP * total) cumulative += weights[keep++];
    candidates = candidates.slice(0, Math.max(keep, 1));
    weights = weights.slice(0, candidates.length);
    total = weights.reduce((a, b) => a + b, 0);
  }
  return { tokens: candidates, probs: weights.map((w) => w / total) };
}

/** The k candidates with the largest logits (unordered), by a bounded min-heap: O(n log k). */
function topKIndices(logits: ArrayLike<number>, candidates: number[], k: number): number[] {
  const heap: number[] = [];
  // "less" = worse candidate: smaller logit, or equal logit and larger index.
  const less = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l], heap[m])) m = l;
      if (r < heap.length && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (const c of candidates) {
    if (heap.length < k) {
      heap.push(c);
      for (let i = heap.length - 1; i > 0;) {
        const p = (i - 1) >> 1;
        if (!less(heap[i], heap[p])) break;
        [heap[i], heap[p]] = [heap[p], heap[i]];
        i = p;
      }
    } else if (less(heap[0], c)) {
      heap[0] = c;
      down(0);
    }
  }
  return heap;
}

/** A seeded sampler: the same options, seed, logits and token index give the same token. */
export class Sampler {
  private readonly seed: number;

  constructor(readonly options: SamplingOptions = {}) {
    validate(options);
    this.seed = options.seed ?? 0;
  }

  /** Token for the logits of generated token `index` (0-based; the first new token of a request is 0). */
  sample(logits: ArrayLike<number>, index: number): number {
    if ((this.options.temperature ?? 0) === 0) return argmax(logits);
    if (!Number.isInteger(index) || index < 0)
      throw new TandemError('sampling-invalid', `the token index must be an integer >= 0, got ${index}.`);
    const { tokens, probs } = samplingDistribution(logits, this.options);
    const u = mulberry32At(this.seed, index);
    let cumulative = 0;
    for (let i = 0; i < tokens.length; i++) {
      cumulative += probs[i];
      if (u < cumulative) return tokens[i];
    }
    return tokens[tokens.length - 1];
  }
}
