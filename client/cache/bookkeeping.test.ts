import { describe, expect, it } from 'vitest';
import {
  blobKey,
  cachedUnitIds,
  commitKey,
  commitMatches,
  debrisKeys,
  isComplete,
  makeCommitRecord,
  parseKey,
  planFetch,
} from './bookkeeping.ts';
import type { UnitEntry } from '../../shards/manifest.ts';

const PKG = 'tiny-qwen3';

function hex(n: number): string {
  return n.toString(16).padStart(64, '0');
}

function unit(id: string, n: number, bytes = 1000 + n): UnitEntry {
  return {
    id,
    kind: id === 'embed' ? 'embed' : id === 'head' ? 'head' : 'layer',
    file: `${id}.bin`,
    bytes,
    sha256: hex(n),
    tensors: [],
  };
}

const UNITS = [unit('embed', 1), unit('layer.0', 2), unit('layer.1', 3), unit('layer.2', 4), unit('head', 5)];

function store(committed: UnitEntry[]): Map<string, unknown> {
  return new Map(committed.map((u) => [commitKey(PKG, u.sha256), makeCommitRecord(PKG, u, 0)]));
}

describe('keys', () => {
  it('round-trip through parseKey and ignore foreign keys', () => {
    expect(parseKey(blobKey(PKG, hex(7)))).toEqual({ kind: 'blob', packageName: PKG, sha256: hex(7) });
    expect(parseKey(commitKey(PKG, hex(7)))).toEqual({ kind: 'commit', packageName: PKG, sha256: hex(7) });
    expect(parseKey('profile-test-blob')).toBeNull();
    expect(parseKey(`blob:${PKG}:XYZ`)).toBeNull();
  });
});

describe('planFetch', () => {
  it('fetches everything on an empty cache and nothing when all is committed', () => {
    const empty = planFetch(PKG, UNITS, new Map());
    expect(empty.toFetch.map((u) => u.id)).toEqual(UNITS.map((u) => u.id));
    expect(empty.bytesToFetch).toBe(UNITS.reduce((s, u) => s + u.bytes, 0));
    const full = planFetch(PKG, UNITS, store(UNITS));
    expect(full.toFetch).toEqual([]);
    expect(full.cached.map((u) => u.id)).toEqual(UNITS.map((u) => u.id));
    expect(isComplete(PKG, UNITS, store(UNITS))).toBe(true);
  });

  it('ignores commit records that do not match the manifest entry', () => {
    const layer1 = UNITS[2];
    const wrongBytes = { ...makeCommitRecord(PKG, layer1, 0), bytes: layer1.bytes - 1 };
    const otherPackage = makeCommitRecord('other-pkg', layer1, 0);
    for (const bad of [wrongBytes, otherPackage, 'garbage', null, { format: 'tandem-unit-commit' }]) {
      const commits = new Map<string, unknown>([[commitKey(PKG, layer1.sha256), bad]]);
      expect(planFetch(PKG, [layer1], commits).toFetch).toEqual([layer1]);
      expect(commitMatches(bad, PKG, layer1)).toBe(false);
    }
  });

  it('fetches identical content only once', () => {
    const a = unit('layer.0', 9);
    const b = { ...unit('layer.1', 9), file: 'layer.1.bin' };
    expect(planFetch(PKG, [a, b], new Map()).toFetch).toEqual([a]);
  });

  it('agrees with a naive set-difference oracle on random cache states', () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 200; trial++) {
      const committed = UNITS.filter(() => rand() < 0.5);
      const needed = UNITS.filter(() => rand() < 0.6);
      const plan = planFetch(PKG, needed, store(committed));
      const committedIds = new Set(committed.map((u) => u.id));
      expect(plan.toFetch.map((u) => u.id)).toEqual(needed.filter((u) => !committedIds.has(u.id)).map((u) => u.id));
      expect(plan.cached.map((u) => u.id)).toEqual(needed.filter((u) => committedIds.has(u.id)).map((u) => u.id));
      expect(plan.bytesCached + plan.bytesToFetch).toBe(needed.reduce((s, u) => s + u.bytes, 0));
      expect(cachedUnitIds(PKG, UNITS, store(committed))).toEqual(committed.map((u) => u.id));
      expect(isComplete(PKG, needed, store(committed))).toBe(needed.every((u) => committedIds.has(u.id)));
    }
  });
});

describe('debrisKeys', () => {
  it('finds half-written blobs and orphan commits, leaves complete pairs and foreign keys', () => {
    const keys = [
      blobKey(PKG, hex(1)),
      commitKey(PKG, hex(1)), // complete
      blobKey(PKG, hex(2)), // blob written, commit never written
      commitKey(PKG, hex(3)), // commit without blob
      'profiler-test',
    ];
    expect(debrisKeys(keys)).toEqual([blobKey(PKG, hex(2)), commitKey(PKG, hex(3))].sort());
  });
});
