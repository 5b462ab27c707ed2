/** Bookkeeping of measured phase timings (pure). */
import type { TimingEntry } from '../../core/protocol.ts';

/**
 * Adds measured phases to a peer's list: an entry with the same phase, step and start replaces the old
 * one (the same report arriving twice, e.g. our own echo from the server); the result is sorted by start.
 */
export function mergeTimings(existing: readonly TimingEntry[], incoming: readonly TimingEntry[]): TimingEntry[] {
  const key = (t: TimingEntry) => `${t.phase}:${t.step}:${t.startMs}`;
  const map = new Map(existing.map((t) => [key(t), t]));
  for (const t of incoming) map.set(key(t), t);
  return [...map.values()].sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
}
