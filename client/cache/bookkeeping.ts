/**
 * Shard-cache bookkeeping (pure): which unit blobs a page still has to fetch, which are complete, and
 * which stored entries are debris to delete.
 *
 * Storage layout (IndexedDB, one object store, string keys):
 *   blob:<package>:<sha256>    the unit file's bytes (Uint8Array)
 *   commit:<package>:<sha256>  a CommitRecord, written only AFTER the blob was written and verified
 * A unit counts as cached only when its commit record exists and matches the manifest entry (same
 * sha256 and byte count). A blob without a commit record (a crash or quota error between the two
 * writes) is never read and is swept on the next start. Keys use the content hash, so a re-converted
 * package with changed weights never reuses old bytes, and a unit survives reloads and sessions.
 */
import type { UnitEntry } from '../../shards/manifest.ts';

export interface CommitRecord {
  format: 'tandem-unit-commit';
  version: 1;
  packageName: string;
  unitId: string;
  sha256: string;
  /** bytes of the blob */
  bytes: number;
  /** page clock, ms since epoch */
  storedAtMs: number;
}

export function blobKey(packageName: string, sha256: string): string {
  return `blob:${packageName}:${sha256}`;
}

export function commitKey(packageName: string, sha256: string): string {
  return `commit:${packageName}:${sha256}`;
}

/** Splits a store key into its parts; null for keys this cache did not write. */
export function parseKey(key: string): { kind: 'blob' | 'commit'; packageName: string; sha256: string } | null {
  const m = /^(blob|commit):([A-Za-z0-9._-]+):([0-9a-f]{64})$/.exec(key);
  if (!m) return null;
  return { kind: m[1] as 'blob' | 'commit', packageName: m[2], sha256: m[3] };
}

export function makeCommitRecord(packageName: string, unit: UnitEntry, storedAtMs: number): CommitRecord {
  return {
    format: 'tandem-unit-commit',
    version: 1,
    packageName,
    unitId: unit.id,
    sha256: unit.sha256,
    bytes: unit.bytes,
    storedAtMs,
  };
}

/** Whether a commit record (or anything read from the store) vouches for this unit of this package. */
export function commitMatches(record: unknown, packageName: string, unit: UnitEntry): boolean {
  if (typeof record !== 'object' || record === null) return false;
  const r = record as Partial<CommitRecord>;
  return (
    r.format === 'tandem-unit-commit' &&
    r.version === 1 &&
    r.packageName === packageName &&
    r.sha256 === unit.sha256 &&
    r.bytes === unit.bytes
  );
}

export interface FetchPlan {
  /** Units already committed: nothing to download. */
  cached: UnitEntry[];
  /** Units to download, verify and store, in the order given. Duplicated content is fetched once. */
  toFetch: UnitEntry[];
  bytesCached: number;
  bytesToFetch: number;
}

/**
 * Decides what to download for the needed units given the commit records present.
 * `commits` maps commit keys to whatever the store holds under them.
 */
export function planFetch(
  packageName: string,
  needed: readonly UnitEntry[],
  commits: ReadonlyMap<string, unknown>,
): FetchPlan {
  const cached: UnitEntry[] = [];
  const toFetch: UnitEntry[] = [];
  const planned = new Set<string>();
  let bytesCached = 0;
  let bytesToFetch = 0;
  for (const unit of needed) {
    if (commitMatches(commits.get(commitKey(packageName, unit.sha256)), packageName, unit)) {
      cached.push(unit);
      bytesCached += unit.bytes;
    } else if (!planned.has(unit.sha256)) {
      planned.add(unit.sha256);
      toFetch.push(unit);
      bytesToFetch += unit.bytes;
    }
  }
  return { cached, toFetch, bytesCached, bytesToFetch };
}

/** Unit ids of the whole package that are complete (committed) in the store, in manifest order. */
export function cachedUnitIds(
  packageName: string,
  units: readonly UnitEntry[],
  commits: ReadonlyMap<string, unknown>,
): string[] {
  return units
    .filter((u) => commitMatches(commits.get(commitKey(packageName, u.sha256)), packageName, u))
    .map((u) => u.id);
}

/** True when every needed unit is committed. */
export function isComplete(
  packageName: string,
  needed: readonly UnitEntry[],
  commits: ReadonlyMap<string, unknown>,
): boolean {
  return planFetch(packageName, needed, commits).toFetch.length === 0;
}

/**
 * Store keys to delete: blobs without a commit record (half-written) and commit records without their
 * blob (the blob was evicted or deleted). Keys this cache did not write are left alone.
 */
export function debrisKeys(allKeys: readonly string[]): string[] {
  const blobs = new Set<string>();
  const commits = new Set<string>();
  for (const key of allKeys) {
    const p = parseKey(key);
    if (!p) continue;
    (p.kind === 'blob' ? blobs : commits).add(`${p.packageName}:${p.sha256}`);
  }
  const debris: string[] = [];
  for (const id of blobs) if (!commits.has(id)) debris.push(`blob:${id}`);
  for (const id of commits) if (!blobs.has(id)) debris.push(`commit:${id}`);
  return debris.sort();
}
