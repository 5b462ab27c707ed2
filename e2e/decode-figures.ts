/**
 * Pure figures of the decode part of `npm run bench` (e2e/decode-bench.ts): the hop latency a ring budget
 * uses, the units a stage reads, the shard-load ratio against the raw read of the same units, and the
 * main-thread long tasks of a cold request.
 */
import type { LongTask } from '../client/app/long-tasks.ts';
import { median } from '../core/step-breakdown.ts';

/** One measured hop size (e2e/hop-bench.ts HopFigures). */
export interface HopSize {
  /** frame payload bytes */
  bytes: number;
  /** one-way estimate, ms */
  oneWayMs: number;
}

/**
 * The hop figure for a frame of `frameBytes`: the smallest measured size that holds it, else the largest
 * measured (a lower bound then); null when nothing was measured.
 */
export function hopForFrame(sizes: readonly HopSize[], frameBytes: number): HopSize | null {
  const sorted = [...sizes].sort((a, b) => a.bytes - b.bytes);
  return sorted.find((s) => s.bytes >= frameBytes) ?? sorted.at(-1) ?? null;
}

/** A manifest unit as far as a stage's unit set goes. */
export interface UnitRef {
  kind: string;
  layer?: number;
  bytes: number;
}

/** A stage's layer range [start, end) (0-based, end exclusive) and whether it holds the embedding and the head. */
export interface StageUnits {
  range: { start: number; end: number };
  embeds: boolean;
  hasHead: boolean;
}

/** Indices into `units` of the units a stage reads (its layers, the embedding if it embeds, the head if it has it). */
export function stageUnitIndices(units: readonly UnitRef[], stage: StageUnits): number[] {
  return units.flatMap((u, i) =>
    (u.kind === 'embed' && stage.embeds) ||
    (u.kind === 'head' && stage.hasHead) ||
    (u.kind === 'layer' && u.layer !== undefined && u.layer >= stage.range.start && u.layer < stage.range.end)
      ? [i]
      : [],
  );
}

/** One stage's cold load beside the raw read of the same units on a device of the same emulation. */
export interface ShardLoadRow {
  unitBytes: number;
  /** unit bytes / (storage read + session create), MB/s */
  loadMBps: number;
  /** the same units read raw (all at once), MB/s; null where not measured */
  rawReadMBps: number | null;
}

/**
 * Issue 11's shard-load figure: per stage, load MB/s / raw read MB/s of its own units, over the stages of
 * at least `minBytes` (smaller ones read in a few ms and time nothing but overhead); the median of those
 * ratios, or null without one.
 */
export function shardLoadRatio(rows: readonly ShardLoadRow[], minBytes: number): number | null {
  const ratios = rows.flatMap((r) =>
    r.unitBytes >= minBytes && r.rawReadMBps !== null && r.rawReadMBps > 0 ? [r.loadMBps / r.rawReadMBps] : [],
  );
  return ratios.length ? median(ratios) : null;
}

/** Main-thread tasks over 50 ms: how many, and the longest (ms, wall; null when none). */
export interface LongTaskFigures {
  count: number;
  maxMs: number | null;
  /** What the longest task ran, where the page attributed it (client/app/long-tasks.ts), e.g.
   * "Worker.onmessage onReply @worker-stage.js 80 ms; render 20 ms". */
  longestWhat?: string;
}

export function longTaskFigures(tasks: readonly LongTask[]): LongTaskFigures {
  if (!tasks.length) return { count: 0, maxMs: null };
  const longest = tasks.reduce((a, b) => (b.durationMs > a.durationMs ? b : a));
  const parts = [
    ...(longest.scripts ?? []).map((s) => `${s.what} ${s.durationMs} ms`),
    ...(longest.renderMs ? [`render ${longest.renderMs} ms`] : []),
  ];
  return { count: tasks.length, maxMs: longest.durationMs, ...(parts.length ? { longestWhat: parts.join('; ') } : {}) };
}
