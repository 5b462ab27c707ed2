/** Worker thread of PlannerPool: plans one request per message. */
import { parentPort } from 'node:worker_threads';
import { planInline } from './planner-pool.ts';
import type { PlanRequest } from './planning.ts';

parentPort?.on('message', (message: { id: number; request: PlanRequest }) => {
  void planInline(message.request).then((completion) => parentPort?.postMessage({ id: message.id, completion }));
});
