/**
 * A stage's unit bytes as the runtime receives them: bytes already in memory, or a stored unit whose
 * bytes the runtime reads itself: an OPFS file (opfs-file.ts, what the page's cache writes where it can)
 * or a Blob (an IndexedDB value). A page hands its inference worker the file names and Blobs, so the
 * storage read (hundreds of ms of file reading per large unit) runs in the worker and never blocks the
 * page's main thread, where the transport and heartbeats live.
 *
 * Units are read in order and each is handed on as soon as it is in memory, so that a stage loaded in
 * parts (stage-parts.ts) creates its first part while the later parts' units are still being read.
 *
 * An emulated storage read cap (?emulate= readMBps) applies to the whole read, as one disk's: unit i
 * arrives no earlier than the bytes of units 0..i / cap, so together they take at least sum(bytes) / cap
 * (client/profiler/read-pacer.ts paces reads made on the main thread the same way).
 */

import { TandemError } from '../../core/errors.ts';
import { isOpfsUnit, opfsRoot, readOpfsUnit, type OpfsDirectory, type OpfsUnit } from './opfs-file.ts';
import { threadReadHandles, type KeptReadHandles } from './opfs-read-handles.ts';

export type UnitData = Uint8Array | Blob | OpfsUnit;

export function unitDataBytes(data: UnitData): number {
  if (data instanceof Uint8Array) return data.byteLength;
  return isOpfsUnit(data) ? data.bytes : data.size;
}

export interface MaterialiseOptions {
  sleep?: (ms: number) => Promise<void>;
  /** where OPFS units are (default the origin's: navigator.storage.getDirectory()) */
  opfs?: (() => Promise<OpfsDirectory>) | null;
  /** handles kept open for prepared stages, read first (default this thread's: opfs-read-handles.ts) */
  kept?: KeptReadHandles;
  /**
   * Reads one stored unit (default `readStoredUnit`, on this thread). The page's inference worker passes a
   * reader thread's (client/runtime/unit-read-thread.ts), so that reads go on while it creates a session.
   */
  readOne?: (path: string, data: Blob | OpfsUnit) => Promise<Uint8Array>;
}

/** A stage's unit reads under way: each unit's bytes as soon as they are in memory. */
export interface UnitReads {
  /** The bytes of the unit file `path` (one of the reads' paths). */
  bytes(path: string): Promise<Uint8Array>;
  /** Seconds from the reads' start until the last unit was in memory, pacing included (0: all came as bytes). */
  readonly seconds: Promise<number>;
  /**
   * Lets go of the unit's bytes (a session holds its own copy once created), so that a stage loaded in
   * parts does not keep every part's bytes until its last part is created; `bytes(path)` fails after it.
   */
  release(path: string): void;
}

/**
 * Starts reading every stored unit of `externalData`, in order, and gives each one's bytes as soon as it
 * is read. With a cap, the reads keep to it as one disk's: unit i arrives no earlier than
 * (stored bytes of units 0..i) / cap after the start.
 */
export function readUnitsInOrder(
  externalData: readonly { path: string; data: UnitData }[],
  capBytesPerSec?: number,
  opts: MaterialiseOptions = {},
): UnitReads {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const readOne = opts.readOne ?? ((path: string, data: Blob | OpfsUnit) => readStoredUnit(path, data, opts));
  const paced = capBytesPerSec !== undefined && capBytesPerSec > 0;
  const t0 = performance.now();
  let storedSoFar = 0;
  const byPath = new Map<string, Promise<Uint8Array>>();
  for (const { path, data } of externalData) {
    if (data instanceof Uint8Array) {
      byPath.set(path, Promise.resolve(data));
      continue;
    }
    storedSoFar += unitDataBytes(data);
    const dueMs = paced ? (1000 * storedSoFar) / capBytesPerSec : 0;
    // a reader that throws at once fails this unit's read, like one that rejects
    const read = new Promise<Uint8Array>((resolve) => resolve(readOne(path, data))).then(async (bytes) => {
      const waitMs = dueMs - (performance.now() - t0);
      if (waitMs > 0) await sleep(waitMs);
      return bytes;
    });
    read.catch(() => undefined); // a caller that stops at an earlier failure never awaits this one
    byPath.set(path, read);
  }
  const stored = storedSoFar > 0;
  // waits for every read without holding their bytes (released units must be free to go)
  const seconds = Promise.all([...byPath.values()].map((read) => read.then(() => undefined))).then(() =>
    stored ? (performance.now() - t0) / 1000 : 0,
  );
  seconds.catch(() => undefined);
  const released = new Set<string>();
  return {
    bytes: (path) =>
      byPath.get(path) ??
      Promise.reject(
        new TandemError(
          'manifest-invalid',
          released.has(path)
            ? `Unit file '${path}' was asked for after its bytes were let go.`
            : `Unit file '${path}' is not among the stage's units.`,
        ),
      ),
    seconds,
    release: (path) => {
      if (byPath.delete(path)) released.add(path);
    },
  };
}

/** One stored unit's bytes, read on this thread: an OPFS file (a sync read in a worker) or a Blob. */
export async function readStoredUnit(
  path: string,
  data: Blob | OpfsUnit,
  opts: Pick<MaterialiseOptions, 'opfs' | 'kept'> = {},
): Promise<Uint8Array> {
  return isOpfsUnit(data) ? readOpfs(data, opts) : readBlob(path, data);
}

async function readOpfs(unit: OpfsUnit, opts: Pick<MaterialiseOptions, 'opfs' | 'kept'>): Promise<Uint8Array> {
  // a prepared stage's unit: its handle is open already, no round trip to the browser process
  const kept = await (opts.kept ?? threadReadHandles).read(unit);
  if (kept) return kept;
  const root = opts.opfs === undefined ? opfsRoot() : opts.opfs;
  if (!root)
    throw new TandemError(
      'storage-read-failed',
      `Unit file '${unit.file}' is in the origin private file system, which this context cannot open. Re-download the layers.`,
    );
  return readOpfsUnit(root, unit);
}

/** A Blob's bytes; a storage failure (the browser lost the IndexedDB file) is 'storage-read-failed'. */
async function readBlob(path: string, blob: Blob): Promise<Uint8Array> {
  try {
    return new Uint8Array(await blob.arrayBuffer());
  } catch (err) {
    throw new TandemError(
      'storage-read-failed',
      `Reading unit file '${path}' from the cache failed: ${err instanceof Error ? err.message : String(err)}. Re-download the layers.`,
      { cause: err },
    );
  }
}
