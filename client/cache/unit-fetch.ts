/**
 * One unit's way into the cache, up to its IndexedDB records: download it, check its size and SHA-256
 * against the manifest, and store its bytes where the runtime will read them (an OPFS file, else a Blob).
 * The shard cache (shard-cache.ts) then writes the unit's records on the main thread.
 *
 * This is the heavy part of a download: a chunk copy per network read, a hash over every byte (the JS
 * SHA-256 where the page is an insecure context and has no WebCrypto: seconds per unit on a phone) and
 * the file write. In the page it runs in a download worker (unit-fetch-worker.ts, driven through
 * worker-unit-fetcher.ts), so a page that downloads while another stage computes, or a spare that keeps a
 * warm copy, never blocks its main thread; `localUnitFetcher` runs the same code in the calling thread
 * (Node, tests, a browser without module workers).
 */
import { TandemError } from '../../core/errors.ts';
import { verifyUnit, type UnitEntry } from '../../shards/manifest.ts';
import type { OpfsUnit } from '../../shards/runtime/opfs-file.ts';
import type { OpfsUnits } from './opfs-units.ts';
import { sha256HexJs } from './sha256.ts';

/** A verified unit's stored bytes: its OPFS file, or (no OPFS) a Blob or its bytes, for IndexedDB. */
export type FetchedValue = OpfsUnit | Blob | Uint8Array;

export interface UnitFetchRequest {
  url: string;
  unit: UnitEntry;
  packageName: string;
  /** write the bytes as an OPFS file (false: hand back a Blob for an IndexedDB value) */
  useOpfs: boolean;
}

export interface FetchedUnit {
  value: FetchedValue;
  /** an OPFS write was refused for a reason other than the quota (private browsing): use Blobs from now on */
  opfsRefused: boolean;
}

/**
 * Downloads, verifies and stores one unit; `onBytes` gets each received chunk's size. Fails with a
 * TandemError: 'server-unreachable', 'shard-download-failed', 'shard-truncated', 'shard-hash-mismatch',
 * 'quota-exceeded'; or with the signal's reason once it is aborted.
 */
export type UnitFetcher = (
  req: UnitFetchRequest,
  onBytes: (delta: number) => void,
  signal?: AbortSignal,
) => Promise<FetchedUnit>;

export interface LocalUnitFetcherOptions {
  fetchImpl?: typeof fetch;
  /** where OPFS files go; null: none here (every unit comes back as a Blob) */
  opfs: OpfsUnits | null;
}

/** The fetcher that runs in the calling thread (in the page: inside the download worker). */
export function localUnitFetcher(opts: LocalUnitFetcherOptions): UnitFetcher {
  const fetchImpl = opts.fetchImpl ?? fetch.bind(globalThis);
  return async (req, onBytes, signal) => {
    const bytes = await download(fetchImpl, req, onBytes, signal);
    await verify(req.unit, bytes);
    signal?.throwIfAborted();
    const file = req.useOpfs && opts.opfs ? await writeFile(opts.opfs, req, bytes) : null;
    if (file !== null && file !== 'refused') return { value: file, opfsRefused: false };
    const value = typeof Blob === 'function' ? new Blob([bytes as Uint8Array<ArrayBuffer>]) : bytes;
    return { value, opfsRefused: file === 'refused' };
  };
}

/**
 * verifyUnit (shards/manifest.ts) with WebCrypto when the context has it; in an insecure context (plain
 * http on a LAN address) `crypto.subtle` is missing, so the same checks run on the JS SHA-256.
 */
export async function verify(unit: UnitEntry, bytes: Uint8Array): Promise<void> {
  if ((globalThis as { crypto?: Partial<Crypto> }).crypto?.subtle) return verifyUnit(unit, bytes);
  if (bytes.byteLength !== unit.bytes) {
    throw new TandemError(
      'shard-truncated',
      `Unit '${unit.id}' (${unit.file}) has ${bytes.byteLength} bytes but the manifest says ${unit.bytes}; the download or the file is incomplete. It will be fetched again.`,
    );
  }
  const actual = sha256HexJs(bytes);
  if (actual !== unit.sha256) {
    throw new TandemError(
      'shard-hash-mismatch',
      `Unit '${unit.id}' (${unit.file}) has SHA-256 ${actual} but the manifest says ${unit.sha256}; the file is corrupted or was modified. It will be fetched again.`,
    );
  }
}

export function isQuotaError(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  const message = (e as { message?: unknown } | null)?.message;
  return name === 'QuotaExceededError' || (typeof message === 'string' && /quota/i.test(message));
}

export function quotaExceeded(unit: UnitEntry, cause: unknown): TandemError {
  return new TandemError(
    'quota-exceeded',
    `The browser refused to store ${unit.id} (${(unit.bytes / 2 ** 20).toFixed(1)} MiB): storage quota exceeded. Free space or leave private browsing.`,
    { cause },
  );
}

/** The unit as an OPFS file; 'refused' where this browser cannot write OPFS files (not the quota). */
async function writeFile(opfs: OpfsUnits, req: UnitFetchRequest, bytes: Uint8Array): Promise<OpfsUnit | 'refused'> {
  try {
    return (await opfs.write(req.packageName, req.unit.sha256, bytes as Uint8Array<ArrayBuffer>)) ?? 'refused';
  } catch (err) {
    if (isQuotaError(err)) throw quotaExceeded(req.unit, err);
    return 'refused';
  }
}

async function download(
  fetchImpl: typeof fetch,
  { url, unit }: UnitFetchRequest,
  onBytes: (delta: number) => void,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetchImpl(url, signal ? { cache: 'no-store', signal } : { cache: 'no-store' });
  } catch (cause) {
    if (signal?.aborted) throw signal.reason;
    throw new TandemError(
      'server-unreachable',
      `Downloading ${unit.id} from ${url} failed (${String(cause)}); check the connection to the server.`,
      { cause },
    );
  }
  if (!res.ok)
    throw new TandemError(
      'shard-download-failed',
      `The server answered HTTP ${res.status} for ${unit.id} (${url}); is the model package complete on the server?`,
    );
  const out = new Uint8Array(unit.bytes);
  let offset = 0;
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    if (all.byteLength !== unit.bytes) return all; // verifyUnit reports the truncation
    onBytes(all.byteLength);
    return all;
  }
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (offset + value.byteLength > out.byteLength) {
      await reader.cancel();
      throw new TandemError(
        'shard-truncated',
        `The server sent more than the ${unit.bytes} bytes the manifest gives for ${unit.id}; the package on the server does not match its manifest.`,
      );
    }
    out.set(value, offset);
    offset += value.byteLength;
    onBytes(value.byteLength);
  }
  return offset === out.byteLength ? out : out.subarray(0, offset);
}
