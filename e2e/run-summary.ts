/**
 * Predicted vs measured, per stage and per request (pure): turns the coordinator's `plan-ready` and the
 * pages' `timings` reports into the figures the demo, the bench and the tests print and save.
 *
 * Units: seconds everywhere here (the wire's timings are ms from the server's send of `start`, each page's
 * clock read through its heartbeat clock offset). Layer ranges shown to people are 1-based inclusive.
 */
import { generationMetrics, measuredPhaseInputs, type MeasuredPhaseInput } from '../client/ui/timeline-layout.ts';
import type { PlanMethod, PredictedStage, ServerMessageOf, TimingEntry } from '../core/protocol.ts';

export interface PredictedPhases {
  load: number;
  wait: number;
  comm: number;
  compute: number;
  start: number;
  finish: number;
}

export interface MeasuredPhases {
  /** End of the last load phase (storage read, session create) of the prefill: when the stage was ready. */
  load: number;
  storageRead: number;
  sessionCreate: number;
  wait: number;
  receive: number;
  compute: number;
  send: number;
  /** End of the stage's prefill work (compute, send, or sampling on the last stage). */
  finish: number;
}

export interface StageComparison {
  stageIndex: number;
  peerId: string;
  name: string;
  /** 1-based inclusive, e.g. "1-3" */
  layers: string;
  /** 0-based half-open */
  range: { start: number; end: number };
  layerCount: number;
  embeds: boolean;
  hasHead: boolean;
  predicted: PredictedPhases;
  /** null when the page reported no prefill timings */
  measured: MeasuredPhases | null;
}

export interface RequestMetrics {
  /** Seconds from `start` to the first sampled token (last stage's clock). */
  ttft: number | null;
  /** Decode tokens/s after the first token (last stage's clock), null with < 2 tokens. */
  decodeTokensPerSec: number | null;
  tokensSampled: number;
}

/** 0-based half-open -> 1-based inclusive label. */
export function layerLabel(r: { start: number; end: number }): string {
  return r.end - r.start === 1 ? `${r.start + 1}` : `${r.start + 1}-${r.end}`;
}

export function toPhaseInputs(timings: readonly TimingEntry[]): MeasuredPhaseInput[] {
  return measuredPhaseInputs(timings);
}

/** Measured prefill phases of one stage from its timing report (step 0 only). */
export function measuredPrefill(timings: readonly TimingEntry[]): MeasuredPhases | null {
  const prefill = timings.filter((t) => t.step === 0);
  if (prefill.length === 0) return null;
  const sum = (phase: TimingEntry['phase']) =>
    prefill.filter((t) => t.phase === phase).reduce((s, t) => s + (t.endMs - t.startMs), 0) / 1000;
  const lastEnd = (phases: TimingEntry['phase'][]) =>
    prefill.filter((t) => phases.includes(t.phase)).reduce((m, t) => Math.max(m, t.endMs), 0) / 1000;
  return {
    load: lastEnd(['storage-read', 'session-create']),
    storageRead: sum('storage-read'),
    sessionCreate: sum('session-create'),
    wait: sum('wait'),
    receive: sum('receive'),
    compute: sum('compute'),
    send: sum('send'),
    finish: lastEnd(['compute', 'send', 'sample']),
  };
}

function predictedPhases(s: PredictedStage): PredictedPhases {
  return { load: s.load, wait: s.wait, comm: s.comm, compute: s.compute, start: s.startTime, finish: s.finishTime };
}

/** Every stage of a plan beside what its page measured (stages without a report get `measured: null`). */
export function compareStages(
  plan: Pick<ServerMessageOf<'plan-ready'>, 'stages'>,
  timingsByPeer: ReadonlyMap<string, readonly TimingEntry[]>,
): StageComparison[] {
  return [...plan.stages]
    .sort((a, b) => a.stageIndex - b.stageIndex)
    .map((s) => {
      const timings = timingsByPeer.get(s.peerId);
      return {
        stageIndex: s.stageIndex,
        peerId: s.peerId,
        name: s.displayName,
        layers: layerLabel(s.layers),
        range: { start: s.layers.start, end: s.layers.end },
        layerCount: s.layers.end - s.layers.start,
        embeds: s.embeds,
        hasHead: s.hasHead,
        predicted: predictedPhases(s),
        measured: timings ? measuredPrefill(timings) : null,
      };
    });
}

/** TTFT and decode rate from the last stage's 'sample' timings. */
export function requestMetrics(lastStageTimings: readonly TimingEntry[]): RequestMetrics {
  const m = generationMetrics(toPhaseInputs(lastStageTimings));
  return { ttft: m.ttft, decodeTokensPerSec: m.decodeTokensPerSec, tokensSampled: m.tokens };
}

/** One plan's run, as the demo and bench report it. */
export interface PlanRun {
  method: PlanMethod;
  planId: string;
  requestId: number;
  /** Prompt length the plan was optimised for (tokens). */
  planTokens: number;
  /** Predicted cold-start latency T (seconds). */
  predictedLatency: number;
  metrics: RequestMetrics;
  /** Seconds from the driver's `go` to the first `output` message it received (includes the relay). */
  driverTtft: number | null;
  generatedTokenIds: number[];
  text: string;
  stages: StageComparison[];
  /** Raw timing reports per peer id, for the report's Gantt chart. */
  timings: Record<string, TimingEntry[]>;
  /**
   * Per peer id, the bound (ms) to which its timings are on the server's clock (from the server's send of
   * start), or null where they count from the page's own start; absent in runs before session 10.
   */
  clocks?: Record<string, number | null>;
  finishReason: 'eos' | 'max-tokens' | 'error' | 'cancelled' | null;
  /** The request's failover messages (stage-lost, repair) as JSON, oldest first: empty when no stage was lost. */
  failover?: string[];
  screenshot?: string;
}

const f = (x: number | null | undefined, digits = 3) => (x === null || x === undefined ? '-' : x.toFixed(digits));

/** A plain-text table of runs (one line per plan), then per stage predicted vs measured. */
export function formatRuns(runs: readonly PlanRun[]): string {
  const lines: string[] = [];
  lines.push('plan       stages  predicted T (s)  measured TTFT (s)  driver TTFT (s)  decode tok/s  tokens');
  for (const r of runs) {
    lines.push(
      `${r.method.padEnd(10)} ${String(r.stages.length).padStart(6)}  ${f(r.predictedLatency).padStart(15)}  ` +
        `${f(r.metrics.ttft).padStart(17)}  ${f(r.driverTtft).padStart(15)}  ${f(r.metrics.decodeTokensPerSec, 1).padStart(12)}  ${r.generatedTokenIds.length}`,
    );
  }
  for (const r of runs) {
    lines.push('', `${r.method}: per stage, predicted / measured (s)`);
    lines.push(
      '  # name                 layers   load            wait            comm/receive    compute         finish',
    );
    for (const s of r.stages) {
      const m = s.measured;
      const pair = (p: number, q: number | undefined) => `${f(p)} / ${f(q)}`.padEnd(15);
      lines.push(
        `  ${s.stageIndex} ${s.name.slice(0, 20).padEnd(20)} ${s.layers.padEnd(8)} ${pair(s.predicted.load, m?.load)} ${pair(s.predicted.wait, m?.wait)} ` +
          `${pair(s.predicted.comm, m?.receive)} ${pair(s.predicted.compute, m?.compute)} ${pair(s.predicted.finish, m?.finish)}`,
      );
    }
  }
  return lines.join('\n');
}
