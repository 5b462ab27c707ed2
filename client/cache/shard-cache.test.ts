/**
 * ShardCache against a real IndexedDB implementation (fake-indexeddb, in memory) and a fake package
 * server. Hashes in the fixtures come from node:crypto, independent of the code under test.
 */
import 'fake-indexeddb/auto';
import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { createStore, get, keys, set, type UseStore } from 'idb-keyval';
import { ShardCache } from './shard-cache.ts';
import { OPFS_UNITS_DIR, OpfsUnits } from './opfs-units.ts';
import { localUnitFetcher } from './unit-fetch.ts';
import { serveUnitFetches } from './unit-fetch-host.ts';
import { WorkerUnitFetcher } from './worker-unit-fetcher.ts';
import { fakeOpfs } from '../../shards/runtime/fake-opfs.ts';
import { readUnitsInOrder } from '../../shards/runtime/unit-data.ts';
import { blobKey, commitKey } from './bookkeeping.ts';
import { committedUnitLookup } from './committed-unit.ts';
import { TandemError } from '../../core/errors.ts';
import type { UnitEntry } from '../../shards/manifest.ts';
import { testManifest, TINY_MODEL_WIDTHS, unitEntry, unitIds } from '../../shards/test-manifest.ts';

const PKG = 'cache-test';

function bytesOf(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const FILES = new Map<string, Uint8Array>([
  ['embed.bin', bytesOf(1, 5000)],
  ['layer.0.bin', bytesOf(2, 3000)],
  ['layer.1.bin', bytesOf(3, 3001)],
  ['head.bin', bytesOf(4, 4096)],
]);

function unit(id: string): UnitEntry {
  const data = FILES.get(`${id}.bin`)!;
  return unitEntry(id, data.byteLength, createHash('sha256').update(data).digest('hex'));
}

const MANIFEST = testManifest({
  name: PKG,
  dtype: 'fp32',
  config: { num_hidden_layers: 2, ...TINY_MODEL_WIDTHS },
  units: unitIds(2).map(unit),
});

/** A package server over FILES; `override` changes what a file serves; every request is logged. */
function fakeServer(override: (file: string, data: Uint8Array) => Uint8Array | null = (_, d) => d) {
  const requests: string[] = [];
  const fetchImpl = ((input: RequestInfo | URL) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const file = decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
    requests.push(file);
    const data = FILES.get(file);
    const served = data ? override(file, data) : null;
    if (!served) return Promise.resolve(new Response('not found', { status: 404 }));
    // stream in small chunks, like a network response
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < served.byteLength; i += 1024) controller.enqueue(served.slice(i, i + 1024));
        controller.close();
      },
    });
    return Promise.resolve(new Response(body, { status: 200 }));
  }) as typeof fetch;
  return { fetchImpl, requests };
}

let storeCount = 0;
function freshStore(): UseStore {
  return createStore(`tandem-test-${process.pid}-${storeCount++}`, 'units');
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof TandemError ? e.code : `not a TandemError: ${String(e)}`;
  }
  return 'no error';
}

describe('ShardCache', () => {
  it('an aborted ensure stops: the fetch gets the signal, nothing more is requested or committed', async () => {
    const store = freshStore();
    const server = fakeServer();
    const signals: (AbortSignal | null | undefined)[] = [];
    const fetchImpl = ((input: RequestInfo | URL, init?: RequestInit) => {
      signals.push(init?.signal);
      return server.fetchImpl(input, init);
    }) as typeof fetch;
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl, concurrency: 1 });
    const controller = new AbortController();
    const ensured = cache.ensure(
      ['embed', 'layer.0', 'layer.1'],
      (p) => {
        if (p.bytesDone > 0) controller.abort(new TandemError('assignment-aborted', 'a new plan'));
      },
      controller.signal,
    );
    expect(await code(ensured)).toBe('assignment-aborted');
    expect(server.requests).toEqual(['embed.bin']);
    expect(signals).toEqual([controller.signal]);
    expect(await cache.cachedUnitIds()).toEqual([]);
  });

  it('downloads only missing units, keeps them for the next cache object, and reads back exact bytes', async () => {
    const store = freshStore();
    const server = fakeServer();
    const cache = new ShardCache(MANIFEST, { baseUrl: `/models/${PKG}/`, store, fetchImpl: server.fetchImpl });
    const progress: number[] = [];
    const first = await cache.ensure(['embed', 'layer.0'], (p) => progress.push(p.bytesDone));
    expect(first.fetched.sort()).toEqual(['embed', 'layer.0']);
    expect(first.bytesDownloaded).toBe(8000);
    expect(progress.at(-1)).toBe(8000);
    expect(progress.length).toBeGreaterThan(4); // streamed progress, not one jump
    expect(server.requests.sort()).toEqual(['embed.bin', 'layer.0.bin']);

    // a "reload": a new cache object on the same store; an overlapping assignment fetches only layer.1
    const again = new ShardCache(MANIFEST, { baseUrl: `/models/${PKG}/`, store, fetchImpl: server.fetchImpl });
    expect(await again.cachedUnitIds()).toEqual(['embed', 'layer.0']);
    server.requests.length = 0;
    const second = await again.ensure(['layer.0', 'layer.1']);
    expect(server.requests).toEqual(['layer.1.bin']);
    expect(second.fetched).toEqual(['layer.1']);
    expect(second.reused).toEqual(['layer.0']);
    server.requests.length = 0;
    await again.ensure(['embed', 'layer.0', 'layer.1']);
    expect(server.requests).toEqual([]);

    const read = await again.readUnit('layer.1');
    expect(Buffer.from(read.bytes).equals(Buffer.from(FILES.get('layer.1.bin')!))).toBe(true);
    expect(read.readSeconds).toBeGreaterThanOrEqual(0);
    expect(await code(again.readUnit('head'))).toBe('shard-not-cached');
  });

  it('rejects a corrupted download with shard-hash-mismatch and commits nothing for it', async () => {
    const store = freshStore();
    const server = fakeServer((file, d) => {
      if (file !== 'layer.1.bin') return d;
      const bad = d.slice();
      bad[100] ^= 0xff;
      return bad;
    });
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl, concurrency: 1 });
    expect(await code(cache.ensure(['layer.0', 'layer.1']))).toBe('shard-hash-mismatch');
    expect(await cache.cachedUnitIds()).toEqual(['layer.0']);
    expect(await get(blobKey(PKG, MANIFEST.units[2].sha256), store)).toBeUndefined();
    // the server is fixed: only the broken unit is fetched again
    const good = fakeServer();
    const retry = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: good.fetchImpl });
    await retry.ensure(['layer.0', 'layer.1']);
    expect(good.requests).toEqual(['layer.1.bin']);
  });

  it('rejects truncated and oversize downloads and HTTP errors', async () => {
    const short = fakeServer((file, d) => (file === 'head.bin' ? d.slice(0, d.byteLength - 7) : d));
    expect(
      await code(
        new ShardCache(MANIFEST, { baseUrl: '/m/', store: freshStore(), fetchImpl: short.fetchImpl }).ensure(['head']),
      ),
    ).toBe('shard-truncated');
    const long = fakeServer((file, d) => (file === 'head.bin' ? new Uint8Array([...d, 1, 2, 3]) : d));
    expect(
      await code(
        new ShardCache(MANIFEST, { baseUrl: '/m/', store: freshStore(), fetchImpl: long.fetchImpl }).ensure(['head']),
      ),
    ).toBe('shard-truncated');
    const missing = fakeServer(() => null);
    expect(
      await code(
        new ShardCache(MANIFEST, { baseUrl: '/m/', store: freshStore(), fetchImpl: missing.fetchImpl }).ensure([
          'head',
        ]),
      ),
    ).toBe('shard-download-failed');
  });

  it('stores units as Blob values, hashed once when written: a plain read checks the size only', async () => {
    const store = freshStore();
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: fakeServer().fetchImpl });
    await cache.ensure(['layer.1']);
    const stored = await get<unknown>(blobKey(PKG, MANIFEST.units[2].sha256), store);
    expect(stored).toBeInstanceOf(Blob);
    const read = await cache.readUnit('layer.1');
    expect(read.verifySeconds).toBe(0);
    expect(createHash('sha256').update(read.bytes).digest('hex')).toBe(MANIFEST.units[2].sha256);
  });

  it("hands the stage runtime a unit's Blob without reading it (the worker reads it), and bytes where it must", async () => {
    const store = freshStore();
    const server = fakeServer();
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl });
    await cache.ensure(['layer.1', 'embed', 'layer.0']);
    const lazy = await cache.readUnitData('layer.1');
    expect(lazy.data).toBeInstanceOf(Blob);
    const bytes = new Uint8Array(await (lazy.data as Blob).arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(MANIFEST.units[2].sha256);
    expect(await code(cache.readUnitData('head'))).toBe('shard-not-cached');
    // a Blob truncated in storage: refused by its size, dropped, fetched again next time
    await set(blobKey(PKG, MANIFEST.units[0].sha256), new Blob([FILES.get('embed.bin')!.slice(0, 4000)]), store);
    expect(await code(cache.readUnitData('embed'))).toBe('shard-truncated');
    expect(await cache.cachedUnitIds()).toEqual(['layer.0', 'layer.1']);
    // a value stored as bytes by an older version, and verifyOnRead: bytes, read (and hashed) here
    await set(blobKey(PKG, MANIFEST.units[1].sha256), FILES.get('layer.0.bin'), store);
    expect((await cache.readUnitData('layer.0')).data).toBeInstanceOf(Uint8Array);
    const strict = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl, verifyOnRead: true });
    const verified = await strict.readUnitData('layer.1');
    expect(verified.data).toBeInstanceOf(Uint8Array);
    expect(verified.verifySeconds).toBeGreaterThan(0);
  });

  it('still reads units stored as Uint8Array values by older versions', async () => {
    const store = freshStore();
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: fakeServer().fetchImpl });
    await cache.ensure(['layer.0']);
    await set(blobKey(PKG, MANIFEST.units[1].sha256), FILES.get('layer.0.bin'), store);
    expect(Array.from((await cache.readUnit('layer.0')).bytes)).toEqual(Array.from(FILES.get('layer.0.bin')!));
  });

  it('detects a blob truncated in storage on a plain read, drops it, and fetches it again next time', async () => {
    const store = freshStore();
    const server = fakeServer();
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl });
    await cache.ensure(['embed']);
    await set(blobKey(PKG, MANIFEST.units[0].sha256), new Blob([FILES.get('embed.bin')!.slice(0, 4000)]), store);
    expect(await code(cache.readUnit('embed'))).toBe('shard-truncated');
    expect(await cache.cachedUnitIds()).toEqual([]);
    server.requests.length = 0;
    await cache.ensure(['embed']);
    expect(server.requests).toEqual(['embed.bin']);
    expect((await cache.readUnit('embed')).bytes.byteLength).toBe(5000);
  });

  it('detects a blob damaged in storage on demand (verifyUnit) and with verifyOnRead, and drops it', async () => {
    const store = freshStore();
    const server = fakeServer();
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl });
    const damage = async () => {
      await cache.ensure(['embed']);
      const key = blobKey(PKG, MANIFEST.units[0].sha256);
      const damaged = new Uint8Array(await ((await get(key, store)) as Blob).arrayBuffer());
      damaged[0] ^= 1;
      await set(key, new Blob([damaged]), store);
    };
    await damage();
    expect(await code(cache.verifyUnit('layer.0'))).toBe('shard-not-cached');
    expect(await code(cache.verifyUnit('embed'))).toBe('shard-hash-mismatch');
    expect(await cache.cachedUnitIds()).toEqual([]);
    await damage();
    const strict = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl, verifyOnRead: true });
    expect(await code(strict.readUnit('embed'))).toBe('shard-hash-mismatch');
    expect(await cache.cachedUnitIds()).toEqual([]);
    server.requests.length = 0;
    await cache.ensure(['embed']);
    expect(server.requests).toEqual(['embed.bin']);
    expect((await cache.verifyUnit('embed')).verifySeconds).toBeGreaterThan(0);
  });

  it('never uses a half-written unit (blob without commit) and sweeps it', async () => {
    const store = freshStore();
    const head = MANIFEST.units[3];
    await set(blobKey(PKG, head.sha256), FILES.get('head.bin'), store);
    await set(commitKey(PKG, 'f'.repeat(64)), { format: 'tandem-unit-commit' }, store); // orphan commit
    const server = fakeServer();
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl });
    expect(await cache.cachedUnitIds()).toEqual([]);
    expect(await code(cache.readUnit('head'))).toBe('shard-not-cached');
    expect((await cache.sweep()).sort()).toEqual([blobKey(PKG, head.sha256), commitKey(PKG, 'f'.repeat(64))].sort());
    expect(await keys(store)).toEqual([]);
  });

  it('turns a storage quota error into quota-exceeded and leaves no commit', async () => {
    const real = freshStore();
    // a store whose puts of blobs fail as a full disk does
    const full: UseStore = (mode, callback) =>
      real(mode, (os) =>
        callback(
          new Proxy(os, {
            get(target, prop) {
              if (prop === 'put')
                return (value: unknown, key?: IDBValidKey) => {
                  if (value instanceof Blob || value instanceof Uint8Array)
                    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
                  return target.put(value, key);
                };
              const v: unknown = Reflect.get(target, prop, target);
              return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
            },
          }),
        ),
      );
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store: full, fetchImpl: fakeServer().fetchImpl });
    expect(await code(cache.ensure(['layer.0']))).toBe('quota-exceeded');
    expect(await keys(real)).toEqual([]);
  });

  it('stretches reads to an emulated read cap', async () => {
    const store = freshStore();
    const cap = 100_000; // bytes/s: 5000 bytes take >= 50 ms
    const cache = new ShardCache(MANIFEST, {
      baseUrl: '/m/',
      store,
      fetchImpl: fakeServer().fetchImpl,
      emulation: { label: 'slow', computeSlowdown: 1, readBytesPerSecCap: cap },
    });
    await cache.ensure(['embed']);
    const r = await cache.readUnit('embed');
    expect(r.readSeconds).toBeGreaterThanOrEqual(5000 / cap - 0.002);
    expect(cache.readLog()).toEqual([{ unitId: 'embed', readSeconds: r.readSeconds, verifySeconds: r.verifySeconds }]);
  });

  it('makes reads that run at once share the emulated read cap (one disk per page)', async () => {
    const cap = 100_000; // bytes/s
    const cache = new ShardCache(MANIFEST, {
      baseUrl: '/m/',
      store: freshStore(),
      fetchImpl: fakeServer().fetchImpl,
      emulation: { label: 'slow', computeSlowdown: 1, readBytesPerSecCap: cap },
    });
    await cache.ensure(['embed', 'head']);
    const [embed, head] = await Promise.all([cache.readUnit('embed'), cache.readUnit('head')]);
    const total = embed.bytes.byteLength + head.bytes.byteLength;
    // stretched one by one, both would end at max(bytes) / cap; sharing the cap, the later ends at the sum
    expect(Math.max(embed.readSeconds, head.readSeconds)).toBeGreaterThanOrEqual(total / cap - 0.002);
  });

  it('verifies with the JS SHA-256 where WebCrypto is missing (insecure context)', async () => {
    vi.stubGlobal('crypto', {});
    try {
      expect(globalThis.crypto.subtle).toBeUndefined();
      const bad = fakeServer((file, d) => (file === 'head.bin' ? d.map((b, i) => (i === 9 ? b ^ 1 : b)) : d));
      expect(
        await code(
          new ShardCache(MANIFEST, { baseUrl: '/m/', store: freshStore(), fetchImpl: bad.fetchImpl }).ensure(['head']),
        ),
      ).toBe('shard-hash-mismatch');
      const store = freshStore();
      const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: fakeServer().fetchImpl });
      await cache.ensure(['head', 'layer.0']);
      expect((await cache.readUnit('head')).bytes.byteLength).toBe(4096);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('clears a package', async () => {
    const store = freshStore();
    const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: fakeServer().fetchImpl });
    await cache.ensure(['embed', 'head']);
    await cache.clearPackage();
    expect(await cache.cachedUnitIds()).toEqual([]);
    expect(await keys(store)).toEqual([]);
  });

  describe('unit files in the origin private file system', () => {
    const hashOf = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    /** A cache over a fresh store and a fresh in-memory OPFS. */
    const opfsCache = (opts: Parameters<typeof fakeOpfs>[0] = {}) => {
      const store = freshStore();
      const fs = fakeOpfs(opts);
      const server = fakeServer();
      const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, fetchImpl: server.fetchImpl, opfs: fs.root });
      return { store, fs, server, cache };
    };

    it('writes each verified unit as a file named by its hash; the runtime gets the name, readUnit the bytes', async () => {
      const { store, fs, cache } = opfsCache();
      await cache.ensure(['embed', 'layer.1']);
      const sha = MANIFEST.units[2].sha256;
      expect(hashOf(fs.files.get(`${OPFS_UNITS_DIR}/${PKG}.${sha}`)!)).toBe(sha);
      expect(await get<unknown>(blobKey(PKG, sha), store)).toEqual({
        kind: 'opfs-file',
        dir: OPFS_UNITS_DIR,
        file: `${PKG}.${sha}`,
        bytes: 3001,
      });
      const lazy = await cache.readUnitData('layer.1');
      expect(lazy.data).toEqual({ kind: 'opfs-file', dir: OPFS_UNITS_DIR, file: `${PKG}.${sha}`, bytes: 3001 });
      const bytes = await readUnitsInOrder([{ path: 'layer.1.bin', data: lazy.data }], undefined, {
        opfs: fs.root,
      }).bytes('layer.1.bin');
      expect(hashOf(bytes)).toBe(sha);
      expect(hashOf((await cache.readUnit('embed')).bytes)).toBe(MANIFEST.units[0].sha256);
      expect((await cache.verifyUnit('layer.1')).verifySeconds).toBeGreaterThan(0);
    });

    it('drops a unit whose file is short or gone (fetched again next time), and clearPackage removes the files', async () => {
      const { fs, server, cache } = opfsCache();
      await cache.ensure(['embed', 'layer.0', 'layer.1']);
      const file = (i: number) => `${OPFS_UNITS_DIR}/${PKG}.${MANIFEST.units[i].sha256}`;
      fs.files.set(file(0), fs.files.get(file(0))!.slice(0, 4000));
      expect(await code(cache.readUnitData('embed'))).toBe('shard-truncated');
      fs.files.delete(file(1));
      expect(await code(cache.readUnitData('layer.0'))).toBe('shard-truncated');
      expect(await cache.cachedUnitIds()).toEqual(['layer.1']);
      expect(fs.files.has(file(0))).toBe(false);
      await cache.ensure(['embed', 'layer.0', 'layer.1']);
      expect(server.requests.filter((r) => r === 'embed.bin')).toHaveLength(2);
      expect(hashOf(fs.files.get(file(0))!)).toBe(MANIFEST.units[0].sha256);
      await cache.clearPackage();
      expect([...fs.files.keys()]).toEqual([]);
    });

    it('sweeps unit files no record names (a crash between the file and its records), and keeps the rest', async () => {
      const { fs, cache } = opfsCache();
      await cache.ensure(['layer.0']);
      const orphan = `${PKG}.${'c'.repeat(64)}`;
      fs.files.set(`${OPFS_UNITS_DIR}/${orphan}`, new Uint8Array(10));
      fs.files.set(`${OPFS_UNITS_DIR}/not-ours.txt`, new Uint8Array(1));
      expect(await cache.sweep()).toEqual([orphan]);
      expect([...fs.files.keys()].sort()).toEqual([
        `${OPFS_UNITS_DIR}/${PKG}.${MANIFEST.units[1].sha256}`,
        `${OPFS_UNITS_DIR}/not-ours.txt`,
      ]);
      expect(await cache.cachedUnitIds()).toEqual(['layer.0']);
    });

    it('keeps units as Blobs where OPFS refuses to write (not for lack of quota), and reports a full quota', async () => {
      const { store, cache } = opfsCache({ failWrites: new DOMException('private browsing', 'SecurityError') });
      await cache.ensure(['layer.0', 'layer.1']);
      expect(await get<unknown>(blobKey(PKG, MANIFEST.units[1].sha256), store)).toBeInstanceOf(Blob);
      expect((await cache.readUnitData('layer.1')).data).toBeInstanceOf(Blob);
      const tight = opfsCache({
        failWrites: new DOMException('The quota has been exceeded.', 'QuotaExceededError'),
      }).cache;
      expect(await code(tight.ensure(['embed']))).toBe('quota-exceeded');
      expect(await tight.cachedUnitIds()).toEqual([]);
    });
  });

  describe("the inference worker's own lookup (committed-unit.ts), over the cache's store", () => {
    let dbCount = 0;
    /** A cache at a location of its own, and the lookup a worker makes of that location (same OPFS). */
    const lookupOf = (opfs: 'files' | 'none') => {
      const location = { db: `tandem-lookup-${process.pid}-${dbCount++}`, store: 'units' };
      const fs = fakeOpfs();
      const root = opfs === 'files' ? fs.root : null;
      const server = fakeServer();
      const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', location, fetchImpl: server.fetchImpl, opfs: root });
      return { cache, fs, server, lookup: committedUnitLookup(location, PKG, undefined, root) };
    };
    const unitOf = (id: string) => MANIFEST.units.find((u) => u.id === id)!;
    const blobBytes = async (d: unknown) => new Uint8Array(await (d as Blob).arrayBuffer());

    it('finds what the cache committed: the OPFS file it names, or the Blob, with the exact bytes', async () => {
      const withFiles = lookupOf('files');
      expect(withFiles.cache.workerLookup).not.toBeNull();
      await withFiles.cache.ensure(['embed', 'layer.1']);
      const found = await withFiles.lookup(unitOf('layer.1'));
      expect(found).toEqual((await withFiles.cache.readUnitData('layer.1')).data);
      const read = await readUnitsInOrder([{ path: 'layer.1.bin', data: found! }], undefined, {
        opfs: withFiles.fs.root,
      }).bytes('layer.1.bin');
      expect(read).toEqual(FILES.get('layer.1.bin'));

      const withBlobs = lookupOf('none');
      await withBlobs.cache.ensure(['embed']);
      expect(await blobBytes(await withBlobs.lookup(unitOf('embed')))).toEqual(FILES.get('embed.bin'));
    });

    it('leaves to the main thread what it cannot settle: not committed, a short or missing file, old bytes', async () => {
      const { cache, fs, lookup } = lookupOf('files');
      expect(await lookup(unitOf('head'))).toBeNull(); // never downloaded
      await cache.ensure(['embed', 'layer.0', 'layer.1']);
      const file = (id: string) => `${OPFS_UNITS_DIR}/${PKG}.${unitOf(id).sha256}`;
      fs.files.set(file('embed'), fs.files.get(file('embed'))!.slice(0, 4000));
      fs.files.delete(file('layer.0'));
      expect(await lookup(unitOf('embed'))).toBeNull();
      expect(await lookup(unitOf('layer.0'))).toBeNull();
      expect(await lookup(unitOf('layer.1'))).not.toBeNull();
      // the main thread's cache then drops the damaged units (they are fetched again)
      expect(await code(cache.readUnitData('embed'))).toBe('shard-truncated');
      expect(await code(cache.readUnitData('layer.0'))).toBe('shard-truncated');
      expect(await cache.cachedUnitIds()).toEqual(['layer.1']);
      // a value stored as bytes (an older version) is the cache's to read
      const old = lookupOf('none');
      await old.cache.ensure(['layer.0']);
      await set(blobKey(PKG, unitOf('layer.0').sha256), FILES.get('layer.0.bin')!.slice(), old.cache.store);
      expect(await old.lookup(unitOf('layer.0'))).toBeNull();
      // a Blob of the wrong size under a commit record
      await set(blobKey(PKG, unitOf('layer.0').sha256), new Blob([new Uint8Array(10)]), old.cache.store);
      expect(await old.lookup(unitOf('layer.0'))).toBeNull();
    });

    it("is not offered where units are re-hashed on every read or the store is the caller's", () => {
      const server = fakeServer();
      expect(
        new ShardCache(MANIFEST, { baseUrl: '/m/', fetchImpl: server.fetchImpl, verifyOnRead: true }).workerLookup,
      ).toBeNull();
      expect(
        new ShardCache(MANIFEST, { baseUrl: '/m/', fetchImpl: server.fetchImpl, store: freshStore() }).workerLookup,
      ).toBeNull();
    });
  });

  describe('through the download worker (its host served on a MessageChannel, as a Worker is)', () => {
    /** A cache whose downloads go over a MessageChannel to serveUnitFetches, each end with the same OPFS. */
    const workerCache = (opts: { opfs?: boolean; failWrites?: Error; fetchImpl?: typeof fetch } = {}) => {
      const store = freshStore();
      const fs = fakeOpfs(opts.failWrites ? { failWrites: opts.failWrites } : {});
      const server = fakeServer();
      const channel = new MessageChannel();
      const posted: string[] = [];
      channel.port2.addEventListener('message', (e: MessageEvent<{ type: string }>) => posted.push(e.data.type));
      const root = opts.opfs === false ? null : fs.root;
      serveUnitFetches(
        channel.port2,
        localUnitFetcher({ fetchImpl: opts.fetchImpl ?? server.fetchImpl, opfs: root ? new OpfsUnits(root) : null }),
      );
      const fetcher = new WorkerUnitFetcher(channel.port1);
      const replies: string[] = [];
      channel.port1.addEventListener('message', (e: MessageEvent<{ type: string }>) => replies.push(e.data.type));
      channel.port1.start();
      channel.port2.start();
      const cache = new ShardCache(MANIFEST, { baseUrl: '/m/', store, opfs: root, fetchUnit: fetcher.fetch });
      return { store, fs, server, cache, fetcher, replies, posted, close: () => channel.port1.close() };
    };

    it('commits what the worker stored (an OPFS file, else a Blob) and reads back exact bytes', async () => {
      const w = workerCache();
      const progress: number[] = [];
      const res = await w.cache.ensure(['embed', 'layer.0', 'layer.1'], (p) => progress.push(p.bytesDone));
      expect(res.fetched.sort()).toEqual(['embed', 'layer.0', 'layer.1']);
      expect(progress.at(-1)).toBe(5000 + 3000 + 3001);
      // the worker batches its byte reports: fewer than the 1 KiB chunks the server sent (11)
      expect(w.replies.filter((t) => t === 'bytes').length).toBeLessThan(11);
      const sha = MANIFEST.units[1].sha256;
      expect(await get<unknown>(blobKey(PKG, sha), w.store)).toEqual({
        kind: 'opfs-file',
        dir: OPFS_UNITS_DIR,
        file: `${PKG}.${sha}`,
        bytes: 3000,
      });
      for (const id of ['embed', 'layer.0', 'layer.1'])
        expect([...(await w.cache.readUnit(id)).bytes]).toEqual([...FILES.get(`${id}.bin`)!]);
      w.close();

      const blobs = workerCache({ opfs: false });
      await blobs.cache.ensure(['layer.1']);
      expect(await get<unknown>(blobKey(PKG, MANIFEST.units[2].sha256), blobs.store)).toBeInstanceOf(Blob);
      expect([...(await blobs.cache.readUnit('layer.1')).bytes]).toEqual([...FILES.get('layer.1.bin')!]);
      blobs.close();
    });

    it('a corrupted download fails in the worker with shard-hash-mismatch, and nothing is committed', async () => {
      const bad = fakeServer((file, d) =>
        file === 'head.bin' ? Uint8Array.from(d, (x, i) => (i === 7 ? x ^ 1 : x)) : d,
      );
      const w = workerCache({ fetchImpl: bad.fetchImpl });
      expect(await code(w.cache.ensure(['layer.0', 'head']))).toBe('shard-hash-mismatch');
      expect(await w.cache.cachedUnitIds()).not.toContain('head');
      w.close();
    });

    it("an abort reaches the worker's fetch, and ensure rejects with the page's own reason", async () => {
      const seen: (AbortSignal | undefined)[] = [];
      const server = fakeServer();
      const slow = ((input: RequestInfo | URL, init?: RequestInit) => {
        seen.push(init?.signal ?? undefined);
        // never answers until aborted; then fails as fetch does
        return new Promise<Response>((_, reject) =>
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))),
        ).then(() => server.fetchImpl(input, init));
      }) as typeof fetch;
      const w = workerCache({ fetchImpl: slow });
      const controller = new AbortController();
      const ensured = w.cache.ensure(['embed'], undefined, controller.signal);
      while (seen.length === 0) await new Promise((r) => setTimeout(r, 1));
      controller.abort(new TandemError('assignment-aborted', 'a new plan'));
      expect(await code(ensured)).toBe('assignment-aborted');
      expect(seen[0]?.aborted).toBe(true);
      expect(await w.cache.cachedUnitIds()).toEqual([]);
      w.close();
    });

    it('a full quota in the worker is quota-exceeded; a dead worker fails its calls with download-worker-failed', async () => {
      const tight = workerCache({ failWrites: new DOMException('The quota has been exceeded.', 'QuotaExceededError') });
      expect(await code(tight.cache.ensure(['embed']))).toBe('quota-exceeded');
      tight.close();
      const stuck = workerCache({ fetchImpl: () => new Promise<Response>(() => undefined) });
      const ensured = stuck.cache.ensure(['embed']);
      while (!stuck.posted.includes('fetch')) await new Promise((r) => setTimeout(r, 1));
      stuck.fetcher.fail('it crashed');
      expect(await code(ensured)).toBe('download-worker-failed');
      expect(await code(stuck.cache.ensure(['embed']))).toBe('download-worker-failed');
      stuck.close();
    });
  });
});
