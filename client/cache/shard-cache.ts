/**
 * The page's shard cache: unit blobs of model packages kept in IndexedDB (idb-keyval) across reloads
 * and sessions. See bookkeeping.ts for the key layout and the commit protocol.
 *
 *   ensure(units)   fetch only the units not committed yet (progress), verify SHA-256, write the blob,
 *                   then its commit record. The fetch, the hash and the file write go through `fetchUnit`
 *                   (unit-fetch.ts; in the page, its download worker), the records are written here. A
 *                   hash mismatch or a quota error stops with a TandemError ('shard-hash-mismatch',
 *                   'shard-truncated', 'quota-exceeded') and leaves no commit.
 *   readUnit(id)    read a committed unit back for the stage runtime, check its size (and SHA-256 only
 *                   with verifyOnRead), and record how long the storage read took.
 *   verifyUnit(id)  re-hash a committed unit on demand; a damaged one is dropped (fetched again later).
 *
 * Integrity: a unit is hashed ONCE, when it is written (ensure); the commit record exists only for a
 * blob whose SHA-256 matched the manifest, and the blob key is that hash. Re-hashing every unit on every
 * cold start cost ~0.8 s of CPU for the 207 MB demo package on the critical path, for storage that only
 * this origin writes. Where the page has the origin private file system, a unit's bytes are an OPFS file
 * (opfs-units.ts) and its IndexedDB value names that file: the inference worker reads it with one
 * synchronous read (shards/runtime/opfs-file.ts), 1.4x the speed and 0.55x the CPU of an IndexedDB Blob
 * here (`npm run bench:storage`). Elsewhere units are Blob values: Chromium keeps large Blobs as files
 * beside the database and reads them back at several hundred MB/s, where a Uint8Array value is
 * deserialised from the database itself (~55 MB/s for 26 units at once here). Values written as Blob or
 * Uint8Array by older versions are still read.
 *   cachedUnitIds() the unit ids of the package that are complete, for `cache-status`.
 */
import { createStore, del, delMany, getMany, keys, set, type UseStore } from 'idb-keyval';
import { TandemError } from '../../core/errors.ts';
import type { ModelManifest, UnitEntry } from '../../shards/manifest.ts';
import type { Emulation } from '../profiler/emulation.ts';
import { ReadPacer } from '../profiler/read-pacer.ts';
import { sleepSeconds } from '../profiler/timing.ts';
import {
  isQuotaError,
  localUnitFetcher,
  quotaExceeded,
  verify,
  type FetchedValue,
  type UnitFetcher,
} from './unit-fetch.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';
import { isOpfsUnit, opfsRoot, type OpfsDirectory } from '../../shards/runtime/opfs-file.ts';
import { OpfsUnits, opfsUnitFile, parseOpfsUnitFile } from './opfs-units.ts';
import { committedValue, type UnitStoreLocation } from './committed-unit.ts';
import {
  blobKey,
  cachedUnitIds,
  commitKey,
  debrisKeys,
  makeCommitRecord,
  planFetch,
  type FetchPlan,
} from './bookkeeping.ts';

export interface FetchProgress {
  /** unit being downloaded, null when done */
  unitId: string | null;
  bytesDone: number;
  bytesTotal: number;
  unitsDone: number;
  unitsTotal: number;
}

export interface EnsureResult {
  plan: FetchPlan;
  /** units downloaded now */
  fetched: string[];
  /** units found in the cache */
  reused: string[];
  bytesDownloaded: number;
  seconds: number;
}

export interface UnitRead {
  unitId: string;
  bytes: Uint8Array;
  /** IndexedDB get (emulated read cap included), seconds */
  readSeconds: number;
  /** SHA-256 re-verification, seconds (0 when skipped: the unit was verified when it was written) */
  verifySeconds: number;
}

/** A unit for the stage runtime: its Blob, read later by the runtime (off the main thread), or its bytes. */
export interface UnitDataRead {
  unitId: string;
  data: UnitData;
  /** main-thread storage time, seconds (for a Blob only the IndexedDB get of its handle; the runtime reports its read) */
  readSeconds: number;
  verifySeconds: number;
}

export interface ShardCacheOptions {
  /** base URL of the package folder, ending with '/', e.g. '/models/tiny/' */
  baseUrl: string;
  emulation?: Emulation | null;
  /** re-hash every unit on read (default false: units are hashed when written); the size is always checked */
  verifyOnRead?: boolean;
  /** the IndexedDB database and object store (default DEFAULT_UNIT_STORE) */
  location?: UnitStoreLocation;
  /** a store of the caller's (tests); the inference worker then asks this cache for every unit */
  store?: UseStore;
  fetchImpl?: typeof fetch;
  /**
   * Downloads, verifies and stores one unit's bytes (unit-fetch.ts); default: in this thread, with
   * `fetchImpl`. The page passes its download worker's (worker-unit-fetcher.ts).
   */
  fetchUnit?: UnitFetcher;
  /** parallel downloads */
  concurrency?: number;
  /** where unit files go (default the origin's OPFS where the page has one; null: Blobs in IndexedDB) */
  opfs?: (() => Promise<OpfsDirectory>) | null;
}

/** The bytes of a stored unit value: an OPFS file or a Blob (current), a Uint8Array or ArrayBuffer (older versions). */
async function valueBytes(value: unknown, opfs: OpfsUnits | null): Promise<Uint8Array | null> {
  if (isOpfsUnit(value)) return opfs ? opfs.read(value) : null;
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (typeof Blob === 'function' && value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  return null;
}

export const DEFAULT_UNIT_STORE: UnitStoreLocation = { db: 'tandem-shards', store: 'units' };

export class ShardCache {
  readonly store: UseStore;
  /**
   * Where the inference worker may look this cache's units up itself (committed-unit.ts); null when it
   * must ask this cache for each (a caller's store, or verifyOnRead: the bytes are re-hashed here).
   */
  readonly workerLookup: UnitStoreLocation | null;
  private readonly fetchUnit: UnitFetcher;
  private readonly reads: UnitRead[] = [];
  /** The emulated read cap, shared by this page's concurrent reads (a stage reads its units at once). */
  private readonly readPacer: ReadPacer;
  /** Unit files in OPFS; null where there is none, or once a write showed this browser cannot use it. */
  private opfs: OpfsUnits | null;

  constructor(
    readonly manifest: ModelManifest,
    private readonly options: ShardCacheOptions,
  ) {
    const location = options.location ?? DEFAULT_UNIT_STORE;
    this.store = options.store ?? createStore(location.db, location.store);
    this.workerLookup = options.store || options.verifyOnRead ? null : location;
    this.readPacer = new ReadPacer(options.emulation?.readBytesPerSecCap);
    const root = options.opfs === undefined ? opfsRoot() : options.opfs;
    this.opfs = root ? new OpfsUnits(root) : null;
    this.fetchUnit = options.fetchUnit ?? localUnitFetcher({ fetchImpl: options.fetchImpl, opfs: this.opfs });
  }

  /** The base URL of a package folder from its manifest URL. */
  static baseUrlOf(manifestUrl: string): string {
    return manifestUrl.replace(/manifest\.json$/, '');
  }

  private unitById(id: string): UnitEntry {
    const u = this.manifest.units.find((x) => x.id === id);
    if (!u) throw new TandemError('unit-unknown', `Model package '${this.manifest.name}' has no unit '${id}'.`);
    return u;
  }

  private async commits(units: readonly UnitEntry[]): Promise<Map<string, unknown>> {
    const ks = units.map((u) => commitKey(this.manifest.name, u.sha256));
    const values = await getMany(ks, this.store);
    return new Map(ks.map((k, i) => [k, values[i]]));
  }

  /**
   * Deletes half-written blobs and orphan commit records (all packages), and unit files no blob record
   * names (a crash between the file and its records). Returns the keys and files removed.
   */
  async sweep(): Promise<string[]> {
    const all = (await keys(this.store)).filter((k): k is string => typeof k === 'string');
    const debris = debrisKeys(all);
    if (debris.length) await delMany(debris, this.store);
    if (!this.opfs) return debris;
    const kept = new Set(all.filter((k) => !debris.includes(k)));
    const orphans = (await this.opfs.files().catch(() => [])).filter((f) => {
      const p = parseOpfsUnitFile(f);
      return p !== null && !kept.has(blobKey(p.packageName, p.sha256));
    });
    const removed: string[] = [];
    for (const f of orphans)
      // a file another tab of this origin is still writing is locked: it stays until a later sweep
      if (
        await this.opfs.remove(f).then(
          () => true,
          () => false,
        )
      )
        removed.push(f);
    return [...debris, ...removed];
  }

  /** Unit ids of this package that are complete in the store, in manifest order. */
  async cachedUnitIds(): Promise<string[]> {
    return cachedUnitIds(this.manifest.name, this.manifest.units, await this.commits(this.manifest.units));
  }

  async planFor(unitIds: readonly string[]): Promise<FetchPlan> {
    const units = unitIds.map((id) => this.unitById(id));
    return planFetch(this.manifest.name, units, await this.commits(units));
  }

  /**
   * Makes every listed unit complete in the cache, downloading only what is missing. `signal` stops it:
   * the downloads in flight are aborted, no further unit is committed, and it rejects with the reason.
   */
  async ensure(
    unitIds: readonly string[],
    onProgress?: (p: FetchProgress) => void,
    signal?: AbortSignal,
  ): Promise<EnsureResult> {
    const t0 = performance.now();
    const plan = await this.planFor(unitIds);
    const total = plan.bytesToFetch;
    await this.checkQuota(total);
    let bytesDone = 0;
    let unitsDone = 0;
    const fetched: string[] = [];
    const report = (unitId: string | null) =>
      onProgress?.({ unitId, bytesDone, bytesTotal: total, unitsDone, unitsTotal: plan.toFetch.length });
    report(plan.toFetch[0]?.id ?? null);
    const queue = [...plan.toFetch];
    const worker = async () => {
      for (let unit = queue.shift(); unit; unit = queue.shift()) {
        signal?.throwIfAborted();
        const got = await this.fetchUnit(
          {
            url: `${this.options.baseUrl}${encodeURIComponent(unit.file)}`,
            unit,
            packageName: this.manifest.name,
            useOpfs: this.opfs !== null,
          },
          (delta) => {
            bytesDone += delta;
            report(unit.id);
          },
          signal,
        );
        if (got.opfsRefused) this.opfs = null;
        signal?.throwIfAborted();
        await this.commit(unit, got.value);
        fetched.push(unit.id);
        unitsDone += 1;
        report(unit.id);
      }
    };
    const n = Math.max(1, Math.min(this.options.concurrency ?? 3, queue.length));
    await Promise.all(Array.from({ length: n }, worker));
    report(null);
    const reused = unitIds.filter((id) => !fetched.includes(id));
    return { plan, fetched, reused, bytesDownloaded: bytesDone, seconds: (performance.now() - t0) / 1000 };
  }

  private async checkQuota(bytesNeeded: number): Promise<void> {
    // navigator.storage (and its estimate) are missing in insecure contexts and older browsers
    const storage =
      typeof navigator === 'undefined' ? undefined : (navigator as { storage?: Partial<StorageManager> }).storage;
    if (bytesNeeded === 0 || !storage?.estimate) return;
    try {
      const { quota, usage } = await storage.estimate();
      if (quota !== undefined && usage !== undefined && usage + bytesNeeded > quota) {
        throw new TandemError(
          'quota-exceeded',
          `This stage needs ${(bytesNeeded / 2 ** 20).toFixed(1)} MiB more storage but the browser allows only ${((quota - usage) / 2 ** 20).toFixed(1)} MiB; free space, leave private browsing, or ask the host to plan with fewer layers for this device.`,
        );
      }
    } catch (e) {
      if (e instanceof TandemError) throw e;
    }
  }

  /**
   * The unit's stored value (its OPFS file, already written, or a Blob) first, commit record second: a
   * crash in between leaves debris, never a usable half unit.
   */
  private async commit(unit: UnitEntry, value: FetchedValue): Promise<void> {
    const bk = blobKey(this.manifest.name, unit.sha256);
    try {
      await set(bk, value, this.store);
      await set(
        commitKey(this.manifest.name, unit.sha256),
        makeCommitRecord(this.manifest.name, unit, Date.now()),
        this.store,
      );
    } catch (cause) {
      await del(bk, this.store).catch(() => undefined);
      await this.removeFile(unit);
      if (isQuotaError(cause)) throw quotaExceeded(unit, cause);
      throw new TandemError('storage-unavailable', `Storing ${unit.id} in IndexedDB failed (${String(cause)}).`, {
        cause,
      });
    }
  }

  private async removeFile(unit: UnitEntry): Promise<void> {
    await this.opfs?.remove(opfsUnitFile(this.manifest.name, unit.sha256)).catch(() => undefined);
  }

  /**
   * Reads a committed unit for the stage runtime. Throws TandemError('shard-not-cached') when the unit
   * is not complete, and 'shard-hash-mismatch' / 'shard-truncated' (after deleting it) when the stored
   * bytes are damaged.
   */
  async readUnit(unitId: string): Promise<UnitRead> {
    return this.readCommitted(unitId, this.options.verifyOnRead === true, true);
  }

  /**
   * A committed unit for the stage runtime without reading its bytes on this thread: its OPFS file or its
   * Blob (size checked), which the runtime reads in its worker under the emulated read cap
   * (shards/runtime/unit-data.ts). With verifyOnRead, or a value stored as bytes, the bytes as readUnit.
   * Reading a 40 MB Blob on the page's main thread blocked it for 0.3-0.7 s per unit.
   */
  async readUnitData(unitId: string): Promise<UnitDataRead> {
    if (this.options.verifyOnRead !== true) {
      const unit = this.unitById(unitId);
      const t0 = performance.now();
      const value = await this.committedValue(unit);
      const size = isOpfsUnit(value)
        ? await this.opfs?.size(value)
        : typeof Blob === 'function' && value instanceof Blob
          ? value.size
          : undefined;
      if (size !== undefined) {
        if (size !== unit.bytes) {
          await this.drop(unit);
          throw new TandemError(
            'shard-truncated',
            `Unit ${unitId} in the cache has ${size ?? 'no'} bytes, expected ${unit.bytes}; it will be fetched again.`,
          );
        }
        return { unitId, data: value as UnitData, readSeconds: (performance.now() - t0) / 1000, verifySeconds: 0 };
      }
    }
    const r = await this.readUnit(unitId);
    return { unitId, data: r.bytes, readSeconds: r.readSeconds, verifySeconds: r.verifySeconds };
  }

  /**
   * Re-hashes a committed unit now (a "check the cache" action, or after a suspected disk fault).
   * Throws 'shard-hash-mismatch' / 'shard-truncated' after dropping a damaged unit.
   */
  async verifyUnit(unitId: string): Promise<Omit<UnitRead, 'bytes'>> {
    const read = await this.readCommitted(unitId, true, false);
    return { unitId: read.unitId, readSeconds: read.readSeconds, verifySeconds: read.verifySeconds };
  }

  /** The stored value of a committed unit; throws 'shard-not-cached' when the unit is not complete. */
  private async committedValue(unit: UnitEntry): Promise<unknown> {
    const { committed, value } = await committedValue(this.store, this.manifest.name, unit);
    if (!committed)
      throw new TandemError(
        'shard-not-cached',
        `Unit ${unit.id} of '${this.manifest.name}' is not in this page's cache; wait for the download to finish (or plan again).`,
      );
    return value;
  }

  private async drop(unit: UnitEntry): Promise<void> {
    await delMany(
      [commitKey(this.manifest.name, unit.sha256), blobKey(this.manifest.name, unit.sha256)],
      this.store,
    ).catch(() => undefined);
    await this.removeFile(unit);
  }

  private async readCommitted(unitId: string, hash: boolean, log: boolean): Promise<UnitRead> {
    const unit = this.unitById(unitId);
    const t0 = performance.now();
    const value = await this.committedValue(unit);
    const bytes = await valueBytes(value, this.opfs).catch(() => null);
    await sleepSeconds(this.readPacer.delaySeconds(bytes?.byteLength ?? 0, t0, performance.now()));
    const readSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    try {
      if (!bytes)
        throw new TandemError(
          'shard-truncated',
          `Unit ${unitId} is committed but its blob is missing; it will be fetched again.`,
        );
      if (hash) await verify(unit, bytes);
      else if (bytes.byteLength !== unit.bytes)
        throw new TandemError(
          'shard-truncated',
          `Unit ${unitId} in the cache has ${bytes.byteLength} bytes, expected ${unit.bytes}; it will be fetched again.`,
        );
    } catch (e) {
      await this.drop(unit);
      throw e;
    }
    const read: UnitRead = { unitId, bytes, readSeconds, verifySeconds: hash ? (performance.now() - t1) / 1000 : 0 };
    if (log) this.reads.push({ ...read, bytes: new Uint8Array(0) });
    return read;
  }

  /** Storage reads since the cache was created (without the bytes), for the timeline and reports. */
  readLog(): Omit<UnitRead, 'bytes'>[] {
    return this.reads.map(({ unitId, readSeconds, verifySeconds }) => ({ unitId, readSeconds, verifySeconds }));
  }

  /** Removes every unit of this package (the "clear cache" button). */
  async clearPackage(): Promise<number> {
    const doomed = this.manifest.units.flatMap((u) => [
      blobKey(this.manifest.name, u.sha256),
      commitKey(this.manifest.name, u.sha256),
    ]);
    await delMany(doomed, this.store);
    for (const u of this.manifest.units) await this.removeFile(u);
    return this.manifest.units.length;
  }
}
