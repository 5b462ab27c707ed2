/** Bookkeeping of measured phase timings (pure). */
import type { TimingEntry } from '../../core/protocol.ts';

const key = (t: TimingEntry) => `${t.phase}:${t.step}:${t.startMs}`;
const before = (a: TimingEntry, b: TimingEntry) =>
  a.startMs < b.startMs || (a.startMs === b.startMs && a.endMs < b.endMs);

/**
 * Adds measured phases to a peer's list: an entry with the same phase, step and start replaces the old
 * one (the same report arriving twice, e.g. our own echo from the server); the result is sorted by start
 * (then end; the order of entries equal in both is not kept). A page adds ten entries per decode step to lists thousands long, on its stage's path: a
 * sorted list takes each entry by binary search, without re-sorting or re-keying the whole list.
 */
export function mergeTimings(existing: readonly TimingEntry[], incoming: readonly TimingEntry[]): TimingEntry[] {
  if (!isSorted(existing)) return mergeUnsorted(existing, incoming);
  const out = [...existing];
  for (const t of incoming) {
    const dup = findSameKey(out, t);
    if (dup >= 0 && out[dup].endMs === t.endMs) {
      out[dup] = t; // an echo: same place
      continue;
    }
    if (dup >= 0) out.splice(dup, 1);
    out.splice(upperBound(out, t), 0, t);
  }
  return out;
}

function isSorted(list: readonly TimingEntry[]): boolean {
  for (let i = 1; i < list.length; i++) if (before(list[i], list[i - 1])) return false;
  return true;
}

/** The first index whose entry sorts after `t` (entries equal to it stay before it). */
function upperBound(list: readonly TimingEntry[], t: TimingEntry): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(t, list[mid])) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Index of the entry with `t`'s key (same start, so among the entries starting when it does), else -1. */
function findSameKey(list: readonly TimingEntry[], t: TimingEntry): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].startMs < t.startMs) lo = mid + 1;
    else hi = mid;
  }
  const k = key(t);
  for (let i = lo; i < list.length && list[i].startMs === t.startMs; i++) if (key(list[i]) === k) return i;
  return -1;
}

function mergeUnsorted(existing: readonly TimingEntry[], incoming: readonly TimingEntry[]): TimingEntry[] {
  const map = new Map(existing.map((t) => [key(t), t]));
  for (const t of incoming) map.set(key(t), t);
  return [...map.values()].sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
}
