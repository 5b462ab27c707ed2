/**
 * Whether this device can read a stage's units and create its sessions at the same time. A stage loaded in
 * parts (shards/runtime/stage-parts.ts) reads on a second thread while the inference worker creates: on a
 * phone or laptop with cores to spare the load then takes about max(read, create) instead of the sum; on a
 * device whose threads share one core's time (the lab's CPU-quota devices, a phone held to one core) the
 * two only interleave, and the parts' extra run per step would buy nothing.
 *
 * Measured as two threads (the inference worker and its unit reader) each spinning the same fixed work,
 * first one at a time, then both at once: parallelism = (alone + alone) / together, 1 for one core's time,
 * 2 for two free cores.
 */

import { DEFAULT_LOAD_PARTS, type LoadPartsPolicy } from '../../shards/runtime/stage-parts.ts';
import type { PartsChoice } from '../app/url-params.ts';

/** The measurement the inference worker makes (worker-protocol.ts 'measure-parallel'). */
export interface ParallelSample {
  /** ms of the work on the inference worker's thread alone, and on the reader thread alone */
  aloneMs: [number, number];
  /** ms from both starting to both done */
  togetherMs: number;
}

export interface ParallelLoad {
  /** how many of the two threads' work ran at once: 1 (none) .. 2 (all); the median of the samples' */
  parallelism: number;
  /** whether this page loads its stages in parts (parallelism >= PARALLEL_LOAD_MIN) */
  inParts: boolean;
  /** one per repetition; empty when it could not be measured */
  samples: ParallelSample[];
  /** why not, when it could not be measured (no second thread) */
  reason?: string;
}

/** Parts pay where at least half of the second thread's work runs alongside the first. */
export const PARALLEL_LOAD_MIN = 1.5;

/**
 * Spin rounds of each thread's work: ~30 ms of one core here (unit-read-thread.ts spin), and
 * PARALLEL_REPEATS repetitions, the median kept: a CPU-quota group (the lab's devices) lets short bursts
 * run past its share, and one short measurement there once read 1.5 and more where loads in parts ran
 * 1.3x slower.
 */
export const PARALLEL_SPIN_ROUNDS = 160;
export const PARALLEL_REPEATS = 3;

/** One sample's figure: (alone + alone) / together, within 1..2. */
export function sampleParallelism(s: ParallelSample): number {
  return s.togetherMs > 0 ? Math.min(2, Math.max(1, (s.aloneMs[0] + s.aloneMs[1]) / s.togetherMs)) : 1;
}

export function parallelLoad(samples: readonly ParallelSample[], reason?: string): ParallelLoad {
  const valid = samples.filter((s) => s.togetherMs > 0);
  if (valid.length === 0) return { parallelism: 1, inParts: false, samples: [], reason: reason ?? 'not measured' };
  const figures = valid.map(sampleParallelism).sort((a, b) => a - b);
  const mid = figures.length >> 1;
  const parallelism = figures.length % 2 ? figures[mid] : (figures[mid - 1] + figures[mid]) / 2;
  return { parallelism, inParts: parallelism >= PARALLEL_LOAD_MIN, samples: valid };
}

/**
 * How this page loads its stages (url-params.ts ?parts=): 'on' in parts (DEFAULT_LOAD_PARTS), 'off' in one
 * session, a number n in up to n parts of any size (tests, field trials), 'auto' in parts where the profile
 * found a second core for the reads (elsewhere the parts only interleave, and cost a session run per step
 * for nothing). null: one session.
 */
export function loadPartsPolicy(
  choice: PartsChoice,
  parallel: ParallelLoad | null | undefined,
): LoadPartsPolicy | null {
  if (typeof choice === 'number') return { minPartBytes: 1, maxParts: choice };
  if (choice === 'off') return null;
  return choice === 'on' || parallel?.inParts === true ? DEFAULT_LOAD_PARTS : null;
}
