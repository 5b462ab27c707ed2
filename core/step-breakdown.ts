/**
 * Where a decode step's time goes around the ring (pure, no I/O): from each stage's measured phases
 * ('ingress', 'kernel', 'egress' per step; shards/runtime/stage-peer.ts records them), the per-stage
 * medians and, where the stages share a clock (one process: the Node benchmark and tests), the wire time
 * of every hop and an exact account of each token:
 *
 *   token n's cycle = first stage's input of step n+1 - its input of step n            (ms)
 *                   = sum over stages (ingress + kernel + egress)   [stage i, step n]
 *                   + sum over hops i -> i+1 (receiver's input ready - sender's output sent)
 *                   + the last -> first hop (first stage's input of step n+1 - last stage's sent of step n)
 *
 * Pages do not share a clock: there, only the ring's wire time as a whole is known, as the median cycle
 * (on the first stage's own clock) minus the stages' median step times (`ringWireMs`).
 */
import { TandemError } from './errors.ts';
import type { TimingEntry } from './protocol.ts';

/** The three contiguous parts of a step on one stage, in order. */
export const STEP_PARTS = ['ingress', 'kernel', 'egress'] as const;
export type StepPart = (typeof STEP_PARTS)[number];

export function isStepPart(phase: TimingEntry['phase']): phase is StepPart {
  return (STEP_PARTS as readonly string[]).includes(phase);
}

/** One stage's timings in ring order; `offsetMs` puts them on a clock shared by all stages (or null). */
export interface StageTimings {
  timings: readonly TimingEntry[];
  /** Added to this stage's startMs/endMs to reach the shared clock; null when the stages share none. */
  offsetMs: number | null;
}

/** One step's parts on one stage, ms. */
export interface StepParts {
  step: number;
  /** input ready (start of ingress), on the stage's own clock */
  readyMs: number;
  ingressMs: number;
  kernelMs: number;
  egressMs: number;
  /** output handed to the link (end of egress), on the stage's own clock */
  sentMs: number;
}

/** Medians over decode steps of one stage, ms. */
export interface StageMedians {
  steps: number;
  ingressMs: number;
  kernelMs: number;
  egressMs: number;
  /** median of ingress + kernel + egress per step */
  stepMs: number;
}

/** One decode token's cycle accounted for on the shared clock, ms. */
export interface TokenAccount {
  step: number;
  cycleMs: number;
  /** sum of the stages' kernel times */
  computeMs: number;
  /** sum of the stages' ingress + egress */
  overheadMs: number;
  /** sum of the hops' wire times */
  wireMs: number;
  /** wire time per hop: hop i is stage i -> i+1, the last one last -> first */
  hopWireMs: number[];
}

export interface StepBreakdown {
  /** per stage, over decode steps (step >= 1) */
  stages: (StageMedians | null)[];
  /** median cycle of a decode token on the first stage's own clock (null: fewer than two decode inputs) */
  perTokenMs: number | null;
  /** perTokenMs minus the stages' median step times: the ring's wire and wake-up between stages */
  ringWireMs: number | null;
  /** per hop, median wire time over tokens; null per hop without a shared clock */
  hopWireMs: (number | null)[];
  /** each decode token's exact account (empty without a shared clock) */
  tokens: TokenAccount[];
  /** medians of the tokens' accounts (null without a shared clock or tokens) */
  median: Omit<TokenAccount, 'step' | 'hopWireMs'> | null;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Each step's parts on one stage (steps missing a part, or with one twice, are left out), by step. */
export function stepParts(timings: readonly TimingEntry[]): Map<number, StepParts> {
  const byStep = new Map<number, Partial<Record<StepPart, TimingEntry>>>();
  const twice = new Set<number>();
  for (const t of timings) {
    if (!isStepPart(t.phase)) continue;
    const parts = byStep.get(t.step) ?? {};
    if (parts[t.phase]) twice.add(t.step);
    parts[t.phase] = t;
    byStep.set(t.step, parts);
  }
  const out = new Map<number, StepParts>();
  for (const [step, p] of [...byStep].sort((a, b) => a[0] - b[0])) {
    if (twice.has(step) || !p.ingress || !p.kernel || !p.egress) continue;
    out.set(step, {
      step,
      readyMs: p.ingress.startMs,
      ingressMs: p.ingress.endMs - p.ingress.startMs,
      kernelMs: p.kernel.endMs - p.kernel.startMs,
      egressMs: p.egress.endMs - p.egress.startMs,
      sentMs: p.egress.endMs,
    });
  }
  return out;
}

function stageMedians(parts: Map<number, StepParts>): StageMedians | null {
  const decode = [...parts.values()].filter((p) => p.step >= 1);
  if (!decode.length) return null;
  return {
    steps: decode.length,
    ingressMs: median(decode.map((p) => p.ingressMs)),
    kernelMs: median(decode.map((p) => p.kernelMs)),
    egressMs: median(decode.map((p) => p.egressMs)),
    stepMs: median(decode.map((p) => p.ingressMs + p.kernelMs + p.egressMs)),
  };
}

/** The breakdown of the decode steps of one request over `stages` (in ring order, first stage first). */
export function stepBreakdown(stages: readonly StageTimings[]): StepBreakdown {
  const parts = stages.map((s) => stepParts(s.timings));
  const medians = parts.map(stageMedians);
  const first = parts[0] ?? new Map<number, StepParts>();
  const cycles: number[] = [];
  for (const [step, p] of first) {
    const next = first.get(step + 1);
    if (step >= 1 && next) cycles.push(next.readyMs - p.readyMs);
  }
  const perTokenMs = cycles.length ? median(cycles) : null;
  const ringWireMs =
    perTokenMs !== null && medians.every((m) => m !== null)
      ? perTokenMs - medians.reduce((sum, m) => sum + m.stepMs, 0)
      : null;

  const shared = stages.length > 0 && stages.every((s) => s.offsetMs !== null);
  const tokens: TokenAccount[] = [];
  if (shared) {
    const at = (i: number, ms: number) => ms + stages[i].offsetMs!;
    const K = stages.length;
    for (const step of first.keys()) {
      if (step < 1) continue;
      const rows = parts.map((ps) => ps.get(step));
      const next = first.get(step + 1);
      if (!next || rows.some((r) => !r)) continue;
      const r = rows as StepParts[];
      const hopWireMs = r.map((sender, i) =>
        i < K - 1 ? at(i + 1, r[i + 1].readyMs) - at(i, sender.sentMs) : at(0, next.readyMs) - at(i, sender.sentMs),
      );
      tokens.push({
        step,
        cycleMs: next.readyMs - first.get(step)!.readyMs,
        computeMs: r.reduce((sum, p) => sum + p.kernelMs, 0),
        overheadMs: r.reduce((sum, p) => sum + p.ingressMs + p.egressMs, 0),
        wireMs: hopWireMs.reduce((a, b) => a + b, 0),
        hopWireMs,
      });
    }
  }
  return {
    stages: medians,
    perTokenMs,
    ringWireMs,
    hopWireMs: stages.map((_, i) => (tokens.length ? median(tokens.map((t) => t.hopWireMs[i])) : null)),
    tokens,
    median: tokens.length
      ? {
          cycleMs: median(tokens.map((t) => t.cycleMs)),
          computeMs: median(tokens.map((t) => t.computeMs)),
          overheadMs: median(tokens.map((t) => t.overheadMs)),
          wireMs: median(tokens.map((t) => t.wireMs)),
        }
      : null,
  };
}

/** A decode token's measured time against what a K-stage ring must cost: its kernels and its hops. */
export interface RingBudget {
  perTokenMs: number;
  /** sum of the stages' median kernel times, as timed (wall) */
  kernelMs: number;
  /** K one-way hops (K stages: K - 1 hidden-state hops and the token back to the first) */
  hopsMs: number;
  /** kernelMs + hopsMs */
  budgetMs: number;
  /** perTokenMs / budgetMs */
  ratio: number;
  /**
   * Where each stage ran on a device given a share of a core (the lab's CPU groups): the same account with
   * each kernel at its device's speed, kernel / cores. A CPU quota is enforced at the scheduler's tick (4 ms
   * on this kernel), so a 1-3 ms kernel runs as a burst at the host's speed and the quota's debt is paid
   * after it, in the hand-over and wake-ups that follow: timed as is, the kernel is the host's, not the
   * device's. Null without device shares.
   */
  device: { cores: number[]; kernelMs: number; budgetMs: number; ratio: number } | null;
}

/**
 * perTokenMs against sum(kernel) + K x `hopOneWayMs`, the hop latency of the link measured on its own (a
 * data-channel ping between two pages); with `deviceCores` (one per stage, in stage order) also against
 * the kernels at the devices' speed. Null without a cycle or with a stage that reported no decode step.
 */
export function ringBudget(
  b: StepBreakdown,
  hopOneWayMs: number,
  deviceCores: readonly number[] | null = null,
): RingBudget | null {
  if (b.perTokenMs === null || b.stages.length === 0 || b.stages.some((s) => s === null)) return null;
  const kernels = b.stages.map((s) => s!.kernelMs);
  const kernelMs = kernels.reduce((sum, k) => sum + k, 0);
  const hopsMs = b.stages.length * Math.max(0, hopOneWayMs);
  const budgetMs = kernelMs + hopsMs;
  let device: RingBudget['device'] = null;
  if (deviceCores) {
    if (deviceCores.length !== kernels.length || deviceCores.some((c) => !(c > 0)))
      throw new TandemError(
        'budget-shares-invalid',
        `ringBudget: ${deviceCores.length} device shares for ${kernels.length} stages (each must be > 0)`,
      );
    const deviceKernelMs = kernels.reduce((sum, k, i) => sum + k / deviceCores[i], 0);
    const deviceBudgetMs = deviceKernelMs + hopsMs;
    device = {
      cores: [...deviceCores],
      kernelMs: deviceKernelMs,
      budgetMs: deviceBudgetMs,
      ratio: b.perTokenMs / deviceBudgetMs,
    };
  }
  return { perTokenMs: b.perTokenMs, kernelMs, hopsMs, budgetMs, ratio: b.perTokenMs / budgetMs, device };
}
