/**
 * The profile's storage read, measured as a stage reads (issue 12, item 2: profiles from the runtime that
 * runs). A test unit is stored the way the shard cache stores a verified unit: an OPFS file where this
 * browser can write one, else an IndexedDB Blob. The page's inference worker then reads it as it reads a
 * stage's units before creating the stage's session (shards/runtime/unit-data.ts), with the emulated
 * read cap applied there, and times the read itself: from a file already open, as a prepared stage's
 * are (shards/runtime/opfs-read-handles.ts). The test unit is the external data of the
 * profiler's MatMul-chain graph (session-bench.ts), so every read ends in a real session creation.
 *
 * The probe it replaces read a Uint8Array from IndexedDB on the main thread: 3-5 MiB/s on lab devices
 * whose stages read at 8-20 MiB/s, and not the store or the thread a stage reads from.
 */
import { createStore, del, get, set, type UseStore } from 'idb-keyval';
import { TandemError } from '../../core/errors.ts';
import { writeOpfsFile, type OpfsDirectory, type OpfsUnit } from '../../shards/runtime/opfs-file.ts';
import type { ExecutionBackend, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';
import { buildMatmulChainModel, SYNTHETIC_WEIGHTS_FILE } from './session-bench.ts';
import type { StorageBenchResult } from './storage-bench.ts';
import { median } from './timing.ts';

export type UnitStoreKind = 'opfs' | 'indexeddb';

/** Where the test unit is kept: written like a cached unit, handed to the runtime like one. */
export interface TestUnitStore {
  kind: UnitStoreKind;
  /** Stores `bytes`; returns the value the runtime reads them by. */
  put(bytes: Uint8Array<ArrayBuffer>): Promise<UnitData>;
  remove(): Promise<void>;
}

/** readSeconds: the median read in the worker (emulated cap included) */
export type StoredReadResult = StorageBenchResult & {
  store: UnitStoreKind;
  /** each probe session's creation after its read, seconds (worker trip included) */
  createSeconds: number[];
};

export interface StoredReadOptions {
  runtime: StageRuntime;
  backend: ExecutionBackend;
  store: TestUnitStore;
  /** the probe graph: `layers` MatMuls of dim² fp32 weights, one external-data file */
  dim: number;
  layers: number;
  runs: number;
  /** the page's emulated storage read cap (bytes/s), applied in the worker as for a stage */
  readCapBytesPerSec?: number;
}

export async function benchmarkStoredUnitRead(opts: StoredReadOptions): Promise<StoredReadResult> {
  if (!Number.isInteger(opts.runs) || opts.runs < 1)
    throw new TandemError('bench-invalid', `The storage read needs at least one run (got ${opts.runs}).`);
  const m = buildMatmulChainModel(opts.dim, opts.layers);
  const bytes = m.externalData[0].data as Uint8Array<ArrayBuffer>;
  const w0 = performance.now();
  const stored = await opts.store.put(bytes);
  const writeSeconds = (performance.now() - w0) / 1000;
  try {
    const reads: number[] = [];
    const creates: number[] = [];
    for (let r = 0; r < opts.runs; r++) {
      const t0 = performance.now();
      const session = await opts.runtime.createSession({
        model: m.model,
        externalData: [{ path: SYNTHETIC_WEIGHTS_FILE, data: stored }],
        config: {},
        backend: opts.backend,
        // a prepared stage has its unit files open before its cold start (opfs-read-handles.ts): the
        // read timed here is the read such a start makes
        openAhead: true,
        ...(opts.readCapBytesPerSec ? { readCapBytesPerSec: opts.readCapBytesPerSec } : {}),
      });
      const total = (performance.now() - t0) / 1000;
      await session.release();
      const read = session.readSeconds;
      if (read === undefined || !(read > 0))
        throw new TandemError(
          'storage-bench-unmeasured',
          'The inference runtime did not report reading the stored test unit; the storage read cannot be measured on it.',
        );
      reads.push(read);
      creates.push(Math.max(0, total - read));
    }
    const readSeconds = median(reads);
    return {
      store: opts.store.kind,
      bytes: bytes.byteLength,
      readSeconds,
      readBytesPerSec: bytes.byteLength / readSeconds,
      writeBytesPerSec: bytes.byteLength / writeSeconds,
      runs: opts.runs,
      createSeconds: creates,
      method: `a ${(bytes.byteLength / 2 ** 20).toFixed(0)} MiB unit stored as ${opts.store.kind === 'opfs' ? 'an OPFS file' : 'an IndexedDB Blob'}, read by the inference worker before creating a session from it, as a stage's units are; median of ${opts.runs} reads`,
    };
  } finally {
    await opts.store.remove().catch(() => undefined);
  }
}

const TEST_DIR = 'tandem-profiler';
const TEST_FILE = 'storage-test-unit.bin';
const TEST_KEY = 'tandem-profiler-test-unit';

/** The test unit as an OPFS file (outside the cache's folder, so cache clean-ups never touch it). */
export function opfsTestUnitStore(root: () => Promise<OpfsDirectory>): TestUnitStore {
  const dir = async () => (await root()).getDirectoryHandle(TEST_DIR, { create: true });
  return {
    kind: 'opfs',
    async put(bytes) {
      const handle = await (await dir()).getFileHandle(TEST_FILE, { create: true });
      if (!handle.createWritable)
        throw new TandemError('storage-unavailable', 'This browser cannot write files to its private file system.');
      await writeOpfsFile(await handle.createWritable(), bytes);
      const unit: OpfsUnit = { kind: 'opfs-file', dir: TEST_DIR, file: TEST_FILE, bytes: bytes.byteLength };
      return unit;
    },
    async remove() {
      await (await dir()).removeEntry(TEST_FILE);
    },
  };
}

/** The test unit as an IndexedDB Blob value, read back so the runtime gets the stored (disk-backed) Blob. */
export function indexedDbTestUnitStore(store: UseStore = createStore('tandem-profiler', 'scratch')): TestUnitStore {
  return {
    kind: 'indexeddb',
    async put(bytes) {
      await set(TEST_KEY, new Blob([bytes]), store);
      const back = await get<Blob>(TEST_KEY, store);
      if (!(back instanceof Blob) || back.size !== bytes.byteLength)
        throw new TandemError(
          'storage-unreliable',
          'IndexedDB returned a different value than was written; storage on this browser is unreliable (private mode or a full disk?).',
        );
      return back;
    },
    remove: () => del(TEST_KEY, store),
  };
}
