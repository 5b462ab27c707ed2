/**
 * Seeded random planning problems for tests and benchmarks: heterogeneous devices whose load, compute
 * and link times are of the same order, so that order, split and device choice all matter.
 * Memory is optionally tight (some devices hold only a few layers; some problems fit nowhere).
 */
import { embeddingCost, headCost, layerCost } from './cost-model.ts';
import { mulberry32 } from '../core/random.ts';
import type { DeviceProfile, MemoryModel, ModelConfig, PlanProblem, PlanStage } from './types.ts';

export interface RandomProblemOptions {
  K: number;
  L: number;
  memoryModel?: MemoryModel;
  embeddingAndHead?: boolean;
  /** 'loose': everything fits; 'tight': each device holds 0.6 .. 3 times its even share. Default 'loose'. */
  memory?: 'loose' | 'tight';
  tokens?: number;
  /**
   * Draw the browser terms too (session creation per byte and fixed, warm-up, per-hop latency), of the
   * same order as the load and hop times, and half the time wider embedding and head bytes held at a
   * per-device scale; 'matrix' gives a measured K x K latency matrix instead of per-device latencies.
   */
  browserTerms?: boolean | 'matrix';
  /** Each device holds a random subset of the units; the rest cost a download. */
  heldUnits?: boolean;
}

/** A random problem from a PRNG. */
export function randomProblem(rand: () => number, o: RandomProblemOptions): PlanProblem {
  const logUniform = (lo: number, hi: number) => lo * (hi / lo) ** rand();
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const heads = pick([8, 16, 32]);
  const headDim = pick([64, 128]);
  const model: ModelConfig = {
    num_hidden_layers: o.L,
    hidden_size: heads * headDim,
    num_attention_heads: heads,
    num_key_value_heads: heads / pick([1, 2, 4, 8]),
    head_dim: headDim,
    intermediate_size: heads * headDim * pick([2, 3, 4]),
    vocab_size: pick([32000, 151936]),
    bytesPerParam: pick([2, 4]),
  };
  const tokens = o.tokens ?? Math.round(logUniform(16, 8192));
  const memoryModel = o.memoryModel ?? 'max';
  const layer = layerCost(model, tokens);
  // Bytes of the whole model under either memory model (roughly), for the 'tight' memory sizes.
  const extras = o.embeddingAndHead ? embeddingCost(model, tokens).paramBytes + headCost(model, tokens).paramBytes : 0;
  const whole = o.L * (layer.paramBytes + layer.activationBytes) + extras;
  const devices: DeviceProfile[] = Array.from({ length: o.K }, (_, k) => ({
    name: `R${k + 1}`,
    peakFlops: logUniform(2e11, 2e14),
    utilA: 0.2 + 0.8 * rand(),
    utilB: logUniform(1e-4, 1e-2),
    readBytesPerSec: logUniform(1e8, 1e10),
    memoryBytes: o.memory === 'tight' ? (whole / o.K) * logUniform(0.6, 3) : 1e15,
    uplinkBitsPerSec: logUniform(5e7, 5e9),
    downlinkBitsPerSec: logUniform(5e7, 5e9),
  }));
  const problem: PlanProblem = { model, devices, tokens, memoryModel, embeddingAndHead: o.embeddingAndHead ?? false };
  if (o.browserTerms) {
    const loadSec = layer.paramBytes / 1e9; // a layer's load at a typical read rate, seconds
    const hopSec = (8 * layer.activationBytes) / 1e9; // a hop at a typical link rate, seconds
    for (const d of devices) {
      d.sessionCreateBytesPerSec = logUniform(1e8, 1e10);
      d.sessionCreateFixedSec = loadSec * logUniform(0.05, 3);
      d.warmupSec = rand() < 0.3 ? 0 : loadSec * logUniform(0.1, 5);
      d.linkLatencySec = hopSec * logUniform(0.05, 3);
    }
    if (o.browserTerms === 'matrix') {
      problem.hopLatencySec = devices.map((_, a) =>
        devices.map((__, b) => (a === b ? 0 : hopSec * logUniform(0.05, 5))),
      );
    } // half the time a q4-like package: embedding and head stored wider than the layers, and held at
    // another scale than the layers on some devices (wasm dequantises the layers only)
    if (rand() < 0.5) {
      model.extrasBytesPerParam = model.bytesPerParam * logUniform(1, 8);
      for (const d of devices) d.extrasMemoryScale = rand() < 0.5 ? 1 : logUniform(0.1, 1);
    }
  }
  if (o.heldUnits) {
    for (const d of devices) d.downloadBytesPerSec = logUniform(1e7, 1e9);
    problem.heldUnits = devices.map(() => ({
      layers: Array.from({ length: o.L }, (_, l) => l).filter(() => rand() < 0.4),
      embedding: rand() < 0.4,
      head: rand() < 0.4,
    }));
  }
  return problem;
}

/** `count` problems from a seed, with K and L drawn uniformly from the given ranges. */
export function randomProblems(
  seed: number,
  count: number,
  ranges: { K: [number, number]; L: [number, number] },
  extra: Partial<RandomProblemOptions> = {},
): PlanProblem[] {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  return Array.from({ length: count }, () =>
    randomProblem(rand, { K: int(...ranges.K), L: int(...ranges.L), ...extra }),
  );
}

/**
 * A random problem for repair and spare tests: K devices, L layers, browser terms (scalar or per-pair),
 * held units, tight or loose memory, 16 .. 16 + maxExtraTokens tokens.
 */
export function randomHeldProblem(rand: () => number, K: number, L: number, maxExtraTokens: number): PlanProblem {
  return randomProblem(rand, {
    K,
    L,
    browserTerms: rand() < 0.5 ? true : 'matrix',
    heldUnits: true,
    memory: rand() < 0.5 ? 'tight' : 'loose',
    embeddingAndHead: rand() < 0.5,
    tokens: 16 + Math.floor(rand() * maxExtraTokens),
  });
}

/** A running pipeline of n stages on the first n of `order`, over L layers cut at random points. */
export function randomPipeline(rand: () => number, order: readonly number[], L: number, n: number): PlanStage[] {
  const cuts = [...Array(L - 1).keys()]
    .map((c) => c + 1)
    .sort(() => rand() - 0.5)
    .slice(0, n - 1)
    .sort((a, b) => a - b);
  const bounds = [0, ...cuts, L];
  return order.slice(0, n).map((device, s) => ({ device, layers: { start: bounds[s], end: bounds[s + 1] } }));
}
