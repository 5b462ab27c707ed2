/**
 * A synthetic run for calibration tests (pure, seeded): what pages with KNOWN parameters would report
 * for a request, event by event as a page records them (client/runtime/stage-peer.ts), with noise and
 * optional outliers. It shares only the cost definitions (P, W, A) with the planner; the timeline is
 * worked out here, step by step, not by planner/timing.ts.
 */
import type { TimingEntry } from '../core/protocol.ts';
import { mulberry32 } from '../core/random.ts';
import { effectiveFlops } from './devices.ts';
import { TOKEN_FRAME_BYTES } from './calibration-samples.ts';
import { buildCostTable, stageFlops, stageParamBytes } from './stage-costs.ts';
import type { DeviceProfile, PlanProblem, PlanStage } from './types.ts';

/** A device's true parameters: the planner's profile fields plus its decode FLOP/s. */
export interface TrueDevice extends DeviceProfile {
  sessionCreateBytesPerSec: number;
  sessionCreateFixedSec: number;
  warmupSec: number;
  linkLatencySec: number;
  decodeFlopsPerSec: number;
}

export interface SimOptions {
  seed: number;
  /** Relative spread of every duration (uniform in 1 +- noise). */
  noise: number;
  decodeSteps: number;
  /**
   * Multiplies one phase of one stage (an outlier: a page stalled by a long task); 'receive' is the prefill
   * hand-over into that stage (its latency and transfer both), a hand-over that met a stalled page.
   */
  outlier?: { stage: number; phase: 'storage-read' | 'session-create' | 'compute' | 'receive'; factor: number };
}

export interface SimRun {
  /** Per stage, its report (ms from the request's start). */
  timings: TimingEntry[][];
  /** End of the first sample on the last stage, seconds (what the pages call TTFT). */
  ttft: number;
  /** Decode tokens/s after the first token. */
  tokensPerSec: number;
}

/** Seconds the sampling of one token takes on the last stage (part of the step, as on a page). */
export const SIM_SAMPLE_SEC = 0.002;

export function simulateRun(
  problem: PlanProblem & { devices: TrueDevice[] },
  stages: readonly PlanStage[],
  o: SimOptions,
): SimRun {
  const rnd = mulberry32(o.seed);
  const jitter = () => 1 + o.noise * (2 * rnd() - 1);
  const prefill = buildCostTable(problem);
  const decode = buildCostTable({ ...problem, tokens: 1 });
  const N = stages.length;
  const out: TimingEntry[][] = stages.map(() => []);
  const rec = (n: number, phase: TimingEntry['phase'], step: number, a: number, b: number) =>
    out[n].push({ phase, step, startMs: a * 1000, endMs: b * 1000 });
  const outlier = (n: number, phase: string) =>
    o.outlier && o.outlier.stage === n && o.outlier.phase === phase ? o.outlier.factor : 1;
  const dev = (n: number) => problem.devices[stages[n].device];
  // Link time of `bytes` a -> b: first byte after both latencies, last after the bits at the narrower rate.
  const link = (a: TrueDevice, b: TrueDevice, bytes: number) => ({
    first: (a.linkLatencySec + b.linkLatencySec) * jitter(),
    all: (8 * bytes) / Math.min(a.uplinkBitsPerSec, b.downlinkBitsPerSec),
  });

  // Load: warm-up, storage read, session creation, all from the request's arrival.
  const loadEnd = stages.map((s, n) => {
    const d = dev(n);
    const P = stageParamBytes(prefill, s.layers.start, s.layers.end);
    // the embedding's table is read, not prepared by the session creation
    const created = P - (s.layers.start === 0 && prefill.embed ? prefill.embed.paramBytes : 0);
    const w = d.warmupSec * jitter();
    const r = w + (P / d.readBytesPerSec) * jitter() * outlier(n, 'storage-read');
    const c =
      r + (d.sessionCreateFixedSec + created / d.sessionCreateBytesPerSec) * jitter() * outlier(n, 'session-create');
    rec(n, 'storage-read', 0, w, r);
    rec(n, 'session-create', 0, r, c);
    return c;
  });

  // One step through the ring: inputReady(0) is when the first stage's input is there.
  const stepThrough = (step: number, firstReady: number): number => {
    const ct = step === 0 ? prefill : decode;
    let ready = firstReady;
    let sentAt = 0;
    for (let n = 0; n < N; n++) {
      const s = stages[n];
      const d = dev(n);
      const free = step === 0 ? loadEnd[n] : (out[n].at(-1)?.endMs ?? 0) / 1000;
      if (n > 0) {
        const l = link(dev(n - 1), d, ct.layerAct[s.layers.start - 1]);
        const slow = step === 0 ? outlier(n, 'receive') : 1;
        const first = sentAt + l.first * slow;
        const all = first + l.all * slow;
        rec(n, 'wait', step, free, Math.max(free, first));
        rec(n, 'receive', step, Math.max(free, first), Math.max(free, all));
        ready = Math.max(free, all);
      } else {
        ready = Math.max(free, ready);
      }
      const W = stageFlops(ct, s.layers.start, s.layers.end);
      const rate = step === 0 ? effectiveFlops(d, problem.tokens) : d.decodeFlopsPerSec;
      const sample = n === N - 1 ? SIM_SAMPLE_SEC : 0;
      const computeEnd = ready + (W / rate - sample) * jitter() * (step === 0 ? outlier(n, 'compute') : 1);
      rec(n, 'compute', step, ready, computeEnd);
      sentAt = computeEnd;
      if (n === N - 1) rec(n, 'sample', step, computeEnd, computeEnd + sample);
    }
    return sentAt + SIM_SAMPLE_SEC;
  };

  let sampled = stepThrough(0, 0);
  const ttft = sampled;
  for (let step = 1; step <= o.decodeSteps; step++) {
    // The token goes back to the first stage (which waits for it) unless one page runs everything.
    let ready = sampled;
    if (N > 1) {
      const l = link(dev(N - 1), dev(0), TOKEN_FRAME_BYTES);
      const free = (out[0].at(-1)?.endMs ?? 0) / 1000;
      rec(0, 'wait', step, free, Math.max(free, sampled + l.first));
      rec(0, 'receive', step, Math.max(free, sampled + l.first), Math.max(free, sampled + l.first + l.all));
      ready = Math.max(free, sampled + l.first + l.all);
    }
    sampled = stepThrough(step, ready);
  }
  return { timings: out, ttft, tokensPerSec: o.decodeSteps > 0 ? o.decodeSteps / (sampled - ttft) : NaN };
}
