/**
 * A stage's unit bytes as the runtime receives them: bytes already in memory, or a stored unit whose
 * bytes the runtime reads itself: an OPFS file (opfs-file.ts, what the page's cache writes where it can)
 * or a Blob (an IndexedDB value). A page hands its inference worker the file names and Blobs, so the
 * storage read (hundreds of ms of file reading per large unit) runs in the worker and never blocks the
 * page's main thread, where the transport and heartbeats live.
 *
 * An emulated storage read cap (?emulate= readMBps) applies to the whole read, as one disk's: the units
 * of a stage are read at once and together take at least sum(bytes) / cap (client/profiler/read-pacer.ts
 * paces reads made on the main thread the same way).
 */

import { TandemError } from '../../core/errors.ts';
import { isOpfsUnit, opfsRoot, readOpfsUnit, type OpfsDirectory, type OpfsUnit } from './opfs-file.ts';

export type UnitData = Uint8Array | Blob | OpfsUnit;

export function unitDataBytes(data: UnitData): number {
  if (data instanceof Uint8Array) return data.byteLength;
  return isOpfsUnit(data) ? data.bytes : data.size;
}

export interface MaterialisedUnits {
  externalData: { path: string; data: Uint8Array }[];
  /** seconds spent reading stored units, pacing included (0 when every unit came as bytes) */
  readSeconds: number;
}

export interface MaterialiseOptions {
  sleep?: (ms: number) => Promise<void>;
  /** where OPFS units are (default the origin's: navigator.storage.getDirectory()) */
  opfs?: (() => Promise<OpfsDirectory>) | null;
}

/** Reads every stored unit of `externalData` into memory, all at once; the whole read keeps to `capBytesPerSec`. */
export async function materialiseUnits(
  externalData: readonly { path: string; data: UnitData }[],
  capBytesPerSec?: number,
  opts: MaterialiseOptions = {},
): Promise<MaterialisedUnits> {
  if (externalData.every((e) => e.data instanceof Uint8Array))
    return { externalData: externalData as { path: string; data: Uint8Array }[], readSeconds: 0 };
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const t0 = performance.now();
  const read = await Promise.all(
    externalData.map(async ({ path, data }) => ({
      path,
      data:
        data instanceof Uint8Array ? data : isOpfsUnit(data) ? await readOpfs(data, opts) : await readBlob(path, data),
    })),
  );
  if (capBytesPerSec !== undefined && capBytesPerSec > 0) {
    const storedBytes = externalData.reduce(
      (s, e) => s + (e.data instanceof Uint8Array ? 0 : unitDataBytes(e.data)),
      0,
    );
    const waitMs = (1000 * storedBytes) / capBytesPerSec - (performance.now() - t0);
    if (waitMs > 0) await sleep(waitMs);
  }
  return { externalData: read, readSeconds: (performance.now() - t0) / 1000 };
}

function readOpfs(unit: OpfsUnit, opts: MaterialiseOptions): Promise<Uint8Array> {
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
