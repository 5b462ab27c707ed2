/**
 * A Node worker thread that plays a page's inference worker for the ring benchmark (ring-bench.ts):
 * the page's own worker host (client/runtime/inference-worker-host.ts) over a MessagePort it is given,
 * serving a Node StageRuntime, so a stage's every run crosses a thread and back as it does in a page.
 */
import { workerData } from 'node:worker_threads';
import { serveInference } from '../client/runtime/inference-worker-host.ts';
import type { MessagePort, WorkerReply, WorkerRequest } from '../client/runtime/worker-protocol.ts';
import { createNodeRuntime, type NodeBackend } from '../shards/runtime/ort-node.ts';

const data = workerData as { port: globalThis.MessagePort; backend: NodeBackend };
const port: MessagePort<WorkerReply, WorkerRequest> = data.port;
serveInference(port, () => createNodeRuntime(data.backend));
data.port.start();
