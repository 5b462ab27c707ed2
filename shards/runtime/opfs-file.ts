/**
 * A unit kept as a file of the origin private file system (OPFS), and its read where the runtime runs.
 * The page's shard cache writes each verified unit there (client/cache/opfs-units.ts) and hands the
 * runtime only the file's name; the inference worker opens it and reads it with a synchronous access
 * handle: one read() into the buffer the session gets. Measured here (`npm run bench:storage`, 217 MB in
 * 26 units): 207 MB/s and 5.3 CPU-s/GB against IndexedDB Blob values' 152 MB/s and 9.5 CPU-s/GB, the CPU
 * being what a read costs a phone or a lab device held to a share of a core. Outside a worker (no sync
 * handles) the file is read as a Blob.
 *
 * The OPFS types are the few members used here, so that Node code and tests can supply their own.
 */
import { TandemError } from '../../core/errors.ts';

/** A unit stored as an OPFS file: `dir`/`file` under the origin's root. */
export interface OpfsUnit {
  kind: 'opfs-file';
  dir: string;
  file: string;
  bytes: number;
}

export interface OpfsSyncHandle {
  getSize(): number;
  read(buffer: Uint8Array, options?: { at?: number }): number;
  close(): void;
}

export interface OpfsWritable {
  write(data: Uint8Array<ArrayBuffer>): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

export interface OpfsFileHandle {
  getFile(): Promise<Blob>;
  createWritable?(): Promise<OpfsWritable>;
  /** dedicated workers only; 'read-only' lets several readers share the file (Chromium 121+) */
  createSyncAccessHandle?(options?: { mode?: 'read-only' | 'readwrite' }): Promise<OpfsSyncHandle>;
}

export interface OpfsDirectory {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<OpfsDirectory>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<OpfsFileHandle>;
  removeEntry(name: string): Promise<void>;
  keys(): AsyncIterableIterator<string>;
}

/** Writes `bytes` as the file's whole content (it lands on close); a failed write is aborted and rethrown. */
export async function writeOpfsFile(writable: OpfsWritable, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  try {
    await writable.write(bytes);
    await writable.close();
  } catch (err) {
    await writable.abort().catch(() => undefined);
    throw err;
  }
}

export function isOpfsUnit(value: unknown): value is OpfsUnit {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<OpfsUnit>;
  return (
    v.kind === 'opfs-file' && typeof v.dir === 'string' && typeof v.file === 'string' && typeof v.bytes === 'number'
  );
}

/**
 * Each OPFS handle is a round trip to the browser process. In a cold request on the lab's 0.4-core devices
 * a stage's first round trip waited 50-240 ms (7-20 ms idle), whichever call it was (traced: keeping the
 * lookup's file handle for the read only moved that wait to the next call), so fewer calls save little
 * there; they still cost a phone's CPU. The origin's root handle never changes: asked for once per context.
 */
let originRoot: Promise<OpfsDirectory> | null = null;

/** The origin's OPFS root, or null where there is none (Node, an insecure context, an old browser). */
export function opfsRoot(): (() => Promise<OpfsDirectory>) | null {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<unknown> } } }).navigator
    ?.storage;
  if (typeof storage?.getDirectory !== 'function') return null;
  return () =>
    (originRoot ??= (storage.getDirectory!() as Promise<OpfsDirectory>).catch((err: unknown) => {
      originRoot = null; // a failure is not kept: the next call asks again
      throw err;
    }));
}

/** Per root handle, its unit folders' handles, asked for once (a removed folder's is asked for again). */
const folders = new WeakMap<OpfsDirectory, Map<string, Promise<OpfsDirectory>>>();

function folderOf(root: OpfsDirectory, name: string): Promise<OpfsDirectory> {
  let byName = folders.get(root);
  if (!byName) folders.set(root, (byName = new Map<string, Promise<OpfsDirectory>>()));
  let folder = byName.get(name);
  if (!folder) {
    folder = root.getDirectoryHandle(name);
    byName.set(name, folder);
    folder.catch(() => byName.delete(name));
  }
  return folder;
}

/** The unit's file handle, through its folder's kept handle; once more afresh if that folder was removed. */
export async function unitFileHandle(root: () => Promise<OpfsDirectory>, unit: OpfsUnit): Promise<OpfsFileHandle> {
  const r = await root();
  try {
    return await (await folderOf(r, unit.dir)).getFileHandle(unit.file);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    folders.get(r)?.delete(unit.dir);
    return (await folderOf(r, unit.dir)).getFileHandle(unit.file);
  }
}

/** The error OPFS gives for a file or folder that is not there. */
export const isNotFound = (e: unknown) => (e as { name?: string } | null)?.name === 'NotFoundError';

/** The stored file's size without reading it; null when the file (or its folder) is gone. */
export async function opfsFileSize(root: () => Promise<OpfsDirectory>, unit: OpfsUnit): Promise<number | null> {
  try {
    return (await (await unitFileHandle(root, unit)).getFile()).size;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** A unit file's bytes: one synchronous read in a worker, else a Blob read; a missing or short file fails. */
export async function readOpfsUnit(root: () => Promise<OpfsDirectory>, unit: OpfsUnit): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    const handle = await unitFileHandle(root, unit);
    // another page of this origin writing the same unit holds a lock a sync handle cannot share: read
    // the file as a Blob then
    bytes = handle.createSyncAccessHandle
      ? await readSync(handle).catch((err: unknown) => {
          if ((err as { name?: string } | null)?.name !== 'NoModificationAllowedError') throw err;
          return readBlob(handle);
        })
      : await readBlob(handle);
  } catch (err) {
    throw new TandemError(
      'storage-read-failed',
      `Reading unit file '${unit.file}' from the origin private file system failed: ${err instanceof Error ? err.message : String(err)}. Re-download the layers.`,
      { cause: err },
    );
  }
  if (bytes.byteLength !== unit.bytes)
    throw new TandemError(
      'storage-read-failed',
      `Unit file '${unit.file}' holds ${bytes.byteLength} bytes, not ${unit.bytes}: the stored file is damaged. Re-download the layers.`,
    );
  return bytes;
}

async function readSync(handle: OpfsFileHandle): Promise<Uint8Array> {
  const h = await handle.createSyncAccessHandle!({ mode: 'read-only' });
  try {
    return readWholeFile(h);
  } finally {
    h.close();
  }
}

/** The whole file through an open sync handle (a read may return fewer bytes than asked: read on). */
export function readWholeFile(h: OpfsSyncHandle): Uint8Array {
  const out = new Uint8Array(h.getSize());
  for (let at = 0; at < out.byteLength;) {
    const n = h.read(out.subarray(at), { at });
    if (n <= 0) return out.subarray(0, at);
    at += n;
  }
  return out;
}

async function readBlob(handle: OpfsFileHandle): Promise<Uint8Array> {
  return new Uint8Array(await (await handle.getFile()).arrayBuffer());
}
