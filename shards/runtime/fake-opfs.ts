/**
 * Test helper: an in-memory origin private file system with the members Tandem uses (opfs-file.ts),
 * behaving as Chromium's does where it matters: a missing entry rejects with NotFoundError, a writable
 * lands its bytes only on close(), sync access handles exist only when `workerScope` is set (they are
 * exposed to dedicated workers only), and a file with an open sync handle cannot be removed or rewritten.
 */
import type { OpfsDirectory, OpfsFileHandle, OpfsSyncHandle, OpfsWritable } from './opfs-file.ts';

export interface FakeOpfs {
  root: () => Promise<OpfsDirectory>;
  /** every file, 'dir/file' -> bytes */
  files: Map<string, Uint8Array>;
  /** sync handles opened so far, and with which mode */
  syncOpens: string[];
  /** sync handles open now, per 'dir/file' */
  openHandles: Map<string, number>;
  /** calls that are a round trip to the browser process in Chromium (lookups, handle opens) */
  roundTrips: () => number;
  /** closes every open sync handle, as the browser may (its reads then throw InvalidStateError) */
  closeAllHandles: () => void;
}

const notFound = (name: string) => new DOMException(`'${name}' was not found`, 'NotFoundError');

export function fakeOpfs(opts: { workerScope?: boolean; failWrites?: Error } = {}): FakeOpfs {
  const files = new Map<string, Uint8Array>();
  const dirs = new Set<string>();
  const syncOpens: string[] = [];
  const openHandles = new Map<string, number>();
  const closers = new Set<() => void>();
  let roundTrips = 0;
  const fileHandle = (path: string): OpfsFileHandle => ({
    getFile: () => {
      const bytes = files.get(path);
      return bytes ? Promise.resolve(new Blob([bytes.slice()])) : Promise.reject(notFound(path));
    },
    createWritable: () => {
      if (opts.failWrites) return Promise.reject(opts.failWrites);
      if (openHandles.has(path))
        return Promise.reject(
          new DOMException(`'${path}' is locked by an open access handle`, 'NoModificationAllowedError'),
        );
      const parts: Uint8Array[] = [];
      const writable: OpfsWritable = {
        write: (data) => {
          parts.push(data.slice());
          return Promise.resolve();
        },
        close: () => {
          const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
          let at = 0;
          for (const p of parts) out.set(p, (at += p.byteLength) - p.byteLength);
          files.set(path, out);
          return Promise.resolve();
        },
        abort: () => Promise.resolve(),
      };
      return Promise.resolve(writable);
    },
    ...(opts.workerScope
      ? {
          createSyncAccessHandle: (o?: { mode?: 'read-only' | 'readwrite' }) => {
            roundTrips++;
            const bytes = files.get(path);
            if (!bytes) return Promise.reject(notFound(path));
            syncOpens.push(`${path}:${o?.mode ?? 'readwrite'}`);
            openHandles.set(path, (openHandles.get(path) ?? 0) + 1);
            let open = true;
            const close = () => {
              if (!open) return;
              open = false;
              closers.delete(close);
              const n = (openHandles.get(path) ?? 1) - 1;
              if (n > 0) openHandles.set(path, n);
              else openHandles.delete(path);
            };
            closers.add(close);
            const h: OpfsSyncHandle = {
              getSize: () => bytes.byteLength,
              // at most 1000 bytes per call, as a real read may return fewer bytes than asked
              read: (buffer, r) => {
                if (!open) throw new DOMException('The access handle was closed', 'InvalidStateError');
                const from = r?.at ?? 0;
                const n = Math.min(buffer.byteLength, bytes.byteLength - from, 1000);
                buffer.set(bytes.subarray(from, from + n));
                return Math.max(0, n);
              },
              close,
            };
            return Promise.resolve(h);
          },
        }
      : {}),
  });
  const directory = (prefix: string): OpfsDirectory => ({
    getDirectoryHandle: (name, o) => {
      roundTrips++;
      const path = `${prefix}${name}`;
      const exists = dirs.has(path) || [...files.keys()].some((f) => f.startsWith(`${path}/`));
      if (!exists && !o?.create) return Promise.reject(notFound(path));
      dirs.add(path);
      return Promise.resolve(directory(`${path}/`));
    },
    getFileHandle: (name, o) => {
      roundTrips++;
      const path = `${prefix}${name}`;
      if (!files.has(path) && !o?.create) return Promise.reject(notFound(path));
      if (!files.has(path)) files.set(path, new Uint8Array(0));
      return Promise.resolve(fileHandle(path));
    },
    removeEntry: (name) => {
      const path = `${prefix}${name}`;
      if (openHandles.has(path))
        return Promise.reject(
          new DOMException(`'${path}' is locked by an open access handle`, 'NoModificationAllowedError'),
        );
      return files.delete(path) ? Promise.resolve() : Promise.reject(notFound(path));
    },
    keys: async function* () {
      await Promise.resolve();
      for (const path of [...files.keys()])
        if (path.startsWith(prefix) && !path.slice(prefix.length).includes('/')) yield path.slice(prefix.length);
    },
  });
  return {
    root: () => Promise.resolve(directory('')),
    files,
    syncOpens,
    openHandles,
    roundTrips: () => roundTrips,
    closeAllHandles: () => {
      for (const close of [...closers]) close();
    },
  };
}
