/**
 * The main thread's UnitFetcher over the download worker (unit-fetch-protocol.ts): the shard cache's
 * downloads run there, and only progress and each unit's stored value come back.
 *
 *   const cache = new ShardCache(manifest, { baseUrl, fetchUnit: startDownloadWorker()?.fetch });
 */
import { TandemError } from '../../core/errors.ts';
import type { UnitFetchMessage, UnitFetchPort, UnitFetchReply } from './unit-fetch-protocol.ts';
import type { FetchedUnit, UnitFetcher } from './unit-fetch.ts';

interface Call {
  onBytes: (delta: number) => void;
  resolve: (f: FetchedUnit) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A URL the worker resolves as the page would: a relative one resolves against the worker's script. */
function absolute(url: string): string {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  return base ? new URL(url, base).href : url;
}

export class WorkerUnitFetcher {
  private readonly calls = new Map<number, Call>();
  private nextId = 1;
  private dead: TandemError | null = null;

  constructor(private readonly port: UnitFetchPort<UnitFetchMessage, UnitFetchReply>) {
    port.addEventListener('message', (e) => this.onReply(e.data));
  }

  /** The UnitFetcher: one unit downloaded, verified and stored by the worker. */
  readonly fetch: UnitFetcher = (request, onBytes, signal) =>
    new Promise<FetchedUnit>((resolve, reject) => {
      signal?.throwIfAborted();
      if (this.dead) throw this.dead;
      const callId = this.nextId++;
      const onAbort = () => this.port.postMessage({ type: 'abort', callId });
      this.calls.set(callId, { onBytes, resolve, reject, ...(signal ? { signal, onAbort } : {}) });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.port.postMessage({ type: 'fetch', callId, request: { ...request, url: absolute(request.url) } });
    });

  /** The worker is gone (it failed to load or crashed): every call in flight and every later one fails. */
  fail(reason: string): void {
    this.dead = new TandemError('download-worker-failed', `The download worker stopped (${reason}); reload the page.`);
    for (const call of this.calls.values()) {
      if (call.onAbort) call.signal?.removeEventListener('abort', call.onAbort);
      call.reject(this.dead);
    }
    this.calls.clear();
  }

  private onReply(reply: UnitFetchReply): void {
    const call = this.calls.get(reply.callId);
    if (!call) return;
    if (reply.type === 'bytes') {
      call.onBytes(reply.delta);
      return;
    }
    this.calls.delete(reply.callId);
    if (call.onAbort) call.signal?.removeEventListener('abort', call.onAbort);
    if (reply.type === 'fetched') call.resolve(reply.fetched);
    else if (reply.code === 'fetch-aborted' && call.signal?.aborted) call.reject(call.signal.reason);
    else if (reply.code) call.reject(new TandemError(reply.code, reply.message));
    else call.reject(Object.assign(new Error(reply.message), { name: reply.name }));
  }
}

/** The page's download worker; null where a module worker cannot start (the cache then downloads in-thread). */
export function startDownloadWorker(): WorkerUnitFetcher | null {
  try {
    const worker = new Worker(new URL('./unit-fetch-worker.ts', import.meta.url), {
      type: 'module',
      name: 'tandem-unit-fetch',
    });
    const fetcher = new WorkerUnitFetcher(worker);
    worker.addEventListener('error', (e) => fetcher.fail(e.message || 'it failed to start'));
    return fetcher;
  } catch {
    return null;
  }
}
