/**
 * The compute t-sweep on the page's own ONNX Runtime: one session of a probe graph (sweep-probe.ts: real
 * stage layers, layer-probe.ts, or MatMul blocks, stage-probe.ts) on the backend a stage would use, run
 * at several row counts t through the same StageRuntime the stages use (in the page: the inference
 * worker). Achieved FLOP/s = the probe's counted FLOPs / seconds per run; c* is the best point and U(t)
 * is fitted to the rest (utilization-fit.ts).
 *
 * Protocol (as the JS and WGSL sweeps): the output is checked once against the probe's reference; the
 * first run of every t is a warm-up and the second sizes the samples (small t repeat the run inside one
 * sample so it lasts >= 8 ms), both dropped; then rounds over all sizes, so that a burst of load from
 * elsewhere hits every size alike; the median per size. Emulation sleeps (slow-down - 1) x the measured
 * time inside the timed region. A size whose sizing run took longer than `maxSampleSeconds` ends the
 * sweep there (a slow device saturates early), and `budgetSeconds` bounds the whole sweep: past it no
 * size is added and no round after the first starts (WebGPU compiles shaders for every new shape and a
 * software adapter pays ~10 ms a dispatch: a sweep there took over a minute); the profile must finish
 * in seconds.
 */
import { TandemError } from '../../core/errors.ts';
import type { HostTensor, StageBackend, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { computeStretch, type Emulation } from './emulation.ts';
import type { SweepProbe } from './sweep-probe.ts';
import { median, nextFrame, sleepSeconds } from './timing.ts';
import { fitUtilization, type UtilizationFit } from './utilization-fit.ts';
import type { MatmulPoint } from './webgpu-matmul.ts';

const MIN_SAMPLE_SECONDS = 0.008;
const MAX_REPS = 64;
/** rows of the correctness check */
const CHECK_TOKENS = 3;
/** largest accepted max |runtime - JS| / max |JS| (fp32 kernels vs an fp64 reference) */
const CHECK_TOLERANCE = 1e-3;

export interface RuntimeSweepOptions {
  runtime: StageRuntime;
  backend: StageBackend;
  probe: SweepProbe;
  /** row counts t, ascending */
  sweep: readonly number[];
  /** timed rounds after the warm-up */
  runs: number;
  emulation: Emulation | null;
  /** what runs it, for `method`, e.g. "onnxruntime-web wasm, 1 thread, in the inference worker" */
  runtimeLabel: string;
  /** a sizing run (after the warm-up) slower than this ends the sweep at that size (default 1 s) */
  maxSampleSeconds?: number;
  /**
   * Once the sweep has run this long (check, warm-ups, sizing and rounds), no further size is added and
   * no further round starts after the first (default none).
   */
  budgetSeconds?: number;
  onProgress?: (done: number, total: number) => void;
  /** seconds since some origin (default performance.now() / 1000); tests pass a fake clock */
  clock?: () => number;
  /** sleeps the emulated stretch (default sleepSeconds) */
  sleep?: (seconds: number) => Promise<void>;
}

export interface RuntimeSweepResult {
  points: MatmulPoint[];
  peakFlops: number;
  fit: UtilizationFit;
  /** max |runtime - reference| / max |reference| at t = 3 */
  checkError: number;
  /** sizes of `sweep` left out: a smaller one was slower than maxSampleSeconds, or the time budget ran out */
  skippedTokens: number[];
  method: string;
}

export async function benchmarkRuntimeCompute(opts: RuntimeSweepOptions): Promise<RuntimeSweepResult> {
  const clock = opts.clock ?? (() => performance.now() / 1000);
  const sleep = opts.sleep ?? sleepSeconds;
  const maxSample = opts.maxSampleSeconds ?? 1;
  const budget = opts.budgetSeconds ?? Infinity;
  const { probe } = opts;
  if (
    opts.sweep.length < 2 ||
    opts.sweep.some((t, i) => !Number.isInteger(t) || t < 1 || t <= (opts.sweep[i - 1] ?? 0))
  )
    throw new TandemError(
      'bench-invalid',
      `The compute sweep needs at least 2 ascending positive integer row counts (got ${opts.sweep.join(', ')}).`,
    );
  if (!Number.isInteger(opts.runs) || opts.runs < 1)
    throw new TandemError('bench-invalid', `The compute sweep needs at least one timed round (got ${opts.runs}).`);

  const session = await opts.runtime.createSession({ ...probe.session, backend: opts.backend });
  try {
    const runAt = (feeds: Record<string, HostTensor>) => session.run(feeds, probe.runOptions);

    // 1. correctness, once: a backend that returns zeros or garbage must not report a fast kernel
    const started = clock();
    const checkError = probe.checkError(CHECK_TOKENS, await runAt(probe.feeds(CHECK_TOKENS)));
    if (!(checkError <= CHECK_TOLERANCE))
      throw new TandemError(
        'compute-sweep-bad-output',
        `The profiler's probe session on ${opts.backend} computed a wrong result (relative error ${checkError.toExponential(1)}); ONNX Runtime may be broken on this browser. Reload with ?backend=wasm.`,
      );

    // 2. per size, ascending: a warm-up run (one-off costs: WebGPU compiles shaders per shape), then one
    //    timed run that sizes the samples and may end the sweep; both dropped
    const sizes: { tokens: number; feeds: Record<string, HostTensor>; reps: number; times: number[] }[] = [];
    /** Seconds for `reps` runs back to back. */
    const timeRuns = async (s: (typeof sizes)[number], reps: number): Promise<number> => {
      const t0 = clock();
      for (let i = 0; i < reps; i++) await runAt(s.feeds);
      return clock() - t0;
    };
    /** One timed sample: seconds per run, the emulated stretch slept inside the timed region. */
    const sample = async (s: (typeof sizes)[number]): Promise<number> => {
      const t0 = clock();
      for (let i = 0; i < s.reps; i++) await runAt(s.feeds);
      await sleep(computeStretch(opts.emulation, clock() - t0));
      const perRun = (clock() - t0) / s.reps;
      await nextFrame();
      return perRun;
    };
    const skippedTokens: number[] = [];
    let total = opts.sweep.length * (opts.runs + 1);
    let done = 0;
    let slow = false;
    for (const tokens of opts.sweep) {
      // a size slower than maxSampleSeconds, or the time budget spent, ends the sweep (at least 2 sizes are kept)
      if (slow && sizes.length >= 2) {
        skippedTokens.push(tokens);
        total -= opts.runs + 1;
        continue;
      }
      const s = { tokens, feeds: probe.feeds(tokens), reps: 1, times: [] as number[] };
      await runAt(s.feeds);
      const measured = await timeRuns(s, 1);
      s.reps = Math.max(1, Math.min(MAX_REPS, Math.ceil(MIN_SAMPLE_SECONDS / Math.max(measured, 1e-6))));
      sizes.push(s);
      slow = measured > maxSample || clock() - started > budget;
      opts.onProgress?.(++done, total);
      await nextFrame();
    }

    // 3. rounds over all sizes (after the first, only while the time budget lasts)
    let rounds = 0;
    for (; rounds < opts.runs && (rounds === 0 || clock() - started <= budget); rounds++) {
      for (const s of sizes) {
        s.times.push(await sample(s));
        opts.onProgress?.(++done, total);
      }
    }
    const points = sizes.map((s): MatmulPoint => {
      const seconds = median(s.times);
      return {
        tokens: s.tokens,
        dim: probe.dim,
        seconds,
        runs: rounds,
        flops: probe.flops(s.tokens) / seconds,
      };
    });
    const peakFlops = Math.max(...points.map((p) => p.flops));
    // the best measured point is the ceiling: a sweep cut short (a slow device) must not extrapolate past it
    const fit = fitUtilization(
      points.map((p) => ({ tokens: p.tokens, utilization: p.flops / peakFlops })),
      { aMax: 1 },
    );
    return {
      points,
      peakFlops,
      fit,
      checkError,
      skippedTokens,
      method:
        `${opts.runtimeLabel}: ${probe.description} (${(probe.weightBytes / 2 ** 20).toFixed(1)} MiB), input [1, t, ${probe.dim}], ` +
        `t = ${points.map((p) => p.tokens).join(', ')}${skippedTokens.length ? ` (stopped before t = ${skippedTokens[0]}: a run over ${maxSample} s, or over the ${budget} s budget)` : ''}; ` +
        `checked against a JS reference (error ${checkError.toExponential(1)}); warm-up and sizing runs dropped, median of ${rounds} round${rounds === 1 ? '' : 's'} over all sizes`,
    };
  } finally {
    await session.release();
  }
}
