/**
 * Messages between the page's main thread and its download worker (unit-fetch-worker.ts): the shard
 * cache asks for one unit at a time (`fetch`, with a `callId`); the worker answers with the bytes it
 * received as they come (`bytes`, batched), then exactly one `fetched` (the stored value: an OPFS file's
 * name or a Blob, never the bytes themselves where a file was written) or `failed`. `abort` stops a
 * call; its `failed` then carries the code 'fetch-aborted' and the main thread rejects with its own
 * signal's reason.
 */
import type { FetchedUnit, UnitFetchRequest } from './unit-fetch.ts';

/** main thread -> worker */
export type UnitFetchMessage =
  { type: 'fetch'; callId: number; request: UnitFetchRequest } | { type: 'abort'; callId: number };

/** worker -> main thread */
export type UnitFetchReply =
  | { type: 'bytes'; callId: number; delta: number }
  | { type: 'fetched'; callId: number; fetched: FetchedUnit }
  | {
      type: 'failed';
      callId: number;
      /** a TandemError's code, 'fetch-aborted', or null for another error */
      code: string | null;
      /** the error's name (a DOMException's, e.g. 'QuotaExceededError') */
      name: string;
      message: string;
    };

/** The two ends: a Worker and the worker's global scope both fit this shape. */
export interface UnitFetchPort<Out, In> {
  postMessage(message: Out, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<In>) => void): void;
}
