/**
 * A stage's unit bytes as the runtime receives them: bytes already in memory, or a Blob (an IndexedDB
 * value) whose bytes the runtime reads itself. A page hands its inference worker the Blobs, so the
 * storage read (hundreds of ms of file reading per large unit) runs in the worker and never blocks the
 * page's main thread, where the transport and heartbeats live.
 *
 * An emulated storage read cap (?emulate= readMBps) applies to the whole read, as one disk's: the units
 * of a stage are read at once and together take at least sum(bytes) / cap (client/profiler/read-pacer.ts
 * paces reads made on the main thread the same way).
 */

import { TandemError } from '../../core/errors.ts';

export type UnitData = Uint8Array | Blob;

export function unitDataBytes(data: UnitData): number {
  return data instanceof Uint8Array ? data.byteLength : data.size;
}

export interface MaterialisedUnits {
  externalData: { path: string; data: Uint8Array }[];
  /** seconds spent reading Blob data, pacing included (0 when every unit came as bytes) */
  readSeconds: number;
}

/** Reads every Blob of `externalData` into memory, all at once; the whole read keeps to `capBytesPerSec`. */
export async function materialiseUnits(
  externalData: readonly { path: string; data: UnitData }[],
  capBytesPerSec?: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<MaterialisedUnits> {
  if (externalData.every((e) => e.data instanceof Uint8Array))
    return { externalData: externalData as { path: string; data: Uint8Array }[], readSeconds: 0 };
  const t0 = performance.now();
  const read = await Promise.all(
    externalData.map(async (e) => ({
      path: e.path,
      data: e.data instanceof Uint8Array ? e.data : await readBlob(e.path, e.data),
    })),
  );
  if (capBytesPerSec !== undefined && capBytesPerSec > 0) {
    const blobBytes = externalData.reduce((s, e) => s + (e.data instanceof Uint8Array ? 0 : unitDataBytes(e.data)), 0);
    const waitMs = (1000 * blobBytes) / capBytesPerSec - (performance.now() - t0);
    if (waitMs > 0) await sleep(waitMs);
  }
  return { externalData: read, readSeconds: (performance.now() - t0) / 1000 };
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
