/**
 * Entry of the page's dedicated inference worker (started by browser-runtime.ts): onnxruntime-web
 * sessions, their runs and KV caches live here, so a cold start or a long prefill never blocks the main
 * thread's transport, heartbeats and UI. Where the browser can transfer data channels, the page's stage
 * and its links live here too (stage-worker-host.ts), so the decode ring never waits for a main thread.
 */
import type { StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { committedUnitLookup } from '../cache/committed-unit.ts';
import { serveInference } from './inference-worker-host.ts';
import { createOrtWebRuntime } from './ort-web.ts';
import { serialRuntime } from './serial-runtime.ts';
import { readStoredUnit } from '../../shards/runtime/unit-data.ts';
import { keepWhereRead, readOnThread, unitReadThread } from './unit-read-thread.ts';
import { serveStages } from './stage-worker-host.ts';
import type { StageReply, StageRequest } from './stage-worker-protocol.ts';
import type { MessagePort, WorkerReply, WorkerRequest } from './worker-protocol.ts';

let runtime: StageRuntime | null = null;
serveInference(
  globalThis as unknown as MessagePort<WorkerReply, WorkerRequest>,
  ({ wasmUrl, cpuWasmUrl, numThreads }) =>
    (runtime = serialRuntime(
      createOrtWebRuntime({
        wasmUrl: wasmUrl ?? undefined,
        cpuWasmUrl: cpuWasmUrl ?? undefined,
        numThreads,
        // a stage in parts reads on the reader thread (where this browser starts one), while sessions are created here
        readOne: readOnThread(unitReadThread, (path, data) => readStoredUnit(path, data)),
        // a prepared stage's files are kept open on the thread that will read them
        keepFiles: (files, o) => keepWhereRead(unitReadThread, files, o),
      }),
    )),
  () => unitReadThread(),
);
// committed units are looked up here, not asked of a main thread that may be drawing (committed-unit.ts)
serveStages(globalThis as unknown as MessagePort<StageReply, StageRequest>, () => runtime, {
  unitLookup: (where, packageName) => committedUnitLookup(where, packageName),
});
