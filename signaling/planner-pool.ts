/**
 * Runs plans off the event loop: the exact DP grows as 2^K, and a large session must not stall the
 * heartbeats and messages of every other session. One worker thread by default; plans queue on it.
 * Falls back to planning inline when worker threads cannot load the TypeScript sources.
 */
import { Worker } from 'node:worker_threads';
import type { PlanCompletion } from './coordinator.ts';
import type { PlanRequest } from './planning.ts';
import { planWithSpares } from './spares.ts';

interface WorkerReply {
  id: number;
  completion: PlanCompletion;
}

/** Plans inline (tests, or where workers are unavailable), with the plan's spares when asked. */
export function planInline(request: PlanRequest): Promise<PlanCompletion> {
  try {
    return Promise.resolve({ ok: true, outcome: planWithSpares(request) });
  } catch (error) {
    const code =
      typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'planner-error';
    return Promise.resolve({ ok: false, code, message: error instanceof Error ? error.message : String(error) });
  }
}

export class PlannerPool {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { request: PlanRequest; resolve: (completion: PlanCompletion) => void }>();
  private nextId = 1;
  private broken: string | null = null;

  constructor() {
    // The worker registers tsx's loader itself, so it loads the .ts planner whether this process runs
    // under tsx, vitest or anything else.
    this.worker = new Worker(new URL('./planner-worker-boot.mjs', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => {
      const job = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      job?.resolve(reply.completion);
    });
    // If the worker dies, everything it held is planned inline, and so is everything after.
    const fail = (why: string) => {
      this.broken = why;
      for (const [id, job] of this.waiting) {
        this.waiting.delete(id);
        void planInline(job.request).then(job.resolve);
      }
    };
    this.worker.on('error', (error) => fail(`the planner worker failed: ${error.message}`));
    this.worker.on('exit', (code) => fail(`the planner worker exited (${code})`));
  }

  /** Plan in the worker; if the worker is gone, plan inline. */
  plan(request: PlanRequest): Promise<PlanCompletion> {
    if (this.broken) return planInline(request);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, { request, resolve });
      this.worker.postMessage({ id, request });
    });
  }

  /** Why the worker is not used (null while it is). */
  get fallbackReason(): string | null {
    return this.broken;
  }

  async close(): Promise<void> {
    this.broken = 'closed';
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
