/**
 * The download worker's side of unit-fetch-protocol.ts: runs each `fetch` on a UnitFetcher (in the page,
 * localUnitFetcher over the worker's own fetch and OPFS), reports received bytes at most every
 * BYTES_EVERY_MS (a progress bar needs no more, and each report is a main-thread task), and answers with
 * the stored value or the error. Separate from the entry file so that Node tests can serve a MessagePort.
 */
import { TandemError } from '../../core/errors.ts';
import type { UnitFetchMessage, UnitFetchPort, UnitFetchReply } from './unit-fetch-protocol.ts';
import type { UnitFetcher } from './unit-fetch.ts';

export const BYTES_EVERY_MS = 100;

export function serveUnitFetches(port: UnitFetchPort<UnitFetchReply, UnitFetchMessage>, fetcher: UnitFetcher): void {
  const calls = new Map<number, AbortController>();
  port.addEventListener('message', (e) => {
    const msg = e.data;
    if (msg.type === 'abort') {
      calls.get(msg.callId)?.abort();
      return;
    }
    const { callId, request } = msg;
    const controller = new AbortController();
    calls.set(callId, controller);
    let held = 0;
    let sentAt = performance.now();
    const flush = () => {
      if (held > 0) port.postMessage({ type: 'bytes', callId, delta: held });
      held = 0;
      sentAt = performance.now();
    };
    fetcher(
      request,
      (delta) => {
        held += delta;
        if (performance.now() - sentAt >= BYTES_EVERY_MS) flush();
      },
      controller.signal,
    )
      .then(
        (fetched) => {
          flush();
          const value = fetched.value;
          const transfer = value instanceof Uint8Array && value.byteOffset === 0 ? [value.buffer as ArrayBuffer] : [];
          port.postMessage({ type: 'fetched', callId, fetched }, transfer);
        },
        (err: unknown) => {
          flush();
          port.postMessage({
            type: 'failed',
            callId,
            code: controller.signal.aborted ? 'fetch-aborted' : err instanceof TandemError ? err.code : null,
            name: (err as { name?: string } | null)?.name ?? 'Error',
            message: err instanceof Error ? err.message : String(err),
          });
        },
      )
      .finally(() => calls.delete(callId));
  });
}
