/**
 * A second thread of the inference worker that reads a stage's stored units (OPFS files, Blobs) and moves
 * their bytes over. onnxruntime-web creates a session synchronously on the inference worker's thread, and
 * an OPFS sync read blocks the thread that makes it: read there, the reads of a stage loaded in parts
 * (shards/runtime/stage-parts.ts) would wait for each part's creation. Read here, they go on meanwhile.
 *
 * The thread also measures how far two threads of this device run at once (`spin`): the profile's
 * parallel-load figure (profiler/parallel-load.ts), which decides whether a stage is loaded in parts.
 */
import { TandemError } from '../../core/errors.ts';
import { opfsRoot, type OpfsDirectory, type OpfsUnit } from '../../shards/runtime/opfs-file.ts';
import { NOTHING_KEPT, threadReadHandles, type KeptFiles } from '../../shards/runtime/opfs-read-handles.ts';
import { readStoredUnit } from '../../shards/runtime/unit-data.ts';

export type UnitReadRequest =
  | { type: 'read'; id: number; path: string; data: Blob | OpfsUnit }
  | { type: 'spin'; id: number; rounds: number }
  /** keep these files open here for the reads to come (shards/runtime/opfs-read-handles.ts) */
  | { type: 'keep'; id: number; units: OpfsUnit[] }
  /** let go of the files the 'keep' call `keepId` kept (no reply) */
  | { type: 'let-go'; keepId: number };

export type UnitReadReply =
  | { type: 'read'; id: number; bytes: Uint8Array }
  | { type: 'spun'; id: number; ms: number; result: number }
  | { type: 'kept'; id: number; open: OpfsUnit[] }
  | { type: 'failed'; id: number; code: string; message: string };

export interface UnitReadPort<Out, In> {
  postMessage(msg: Out, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<In>) => void): void;
}

/**
 * A fixed amount of integer work (`rounds` x 2^16 steps of a xorshift), the same on every thread, whose
 * result is returned so that no engine can drop it.
 */
export function spin(rounds: number): number {
  let x = 2463534242;
  for (let r = 0; r < rounds; r++)
    for (let i = 0; i < 65536; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
  return x >>> 0;
}

/** The thread's side: one request at a time, in arrival order (reads of a stage come in its order). */
export function serveUnitReads(
  port: UnitReadPort<UnitReadReply, UnitReadRequest>,
  root: (() => Promise<OpfsDirectory>) | null = opfsRoot(),
): void {
  let queue: Promise<void> = Promise.resolve();
  const held = new Map<number, () => void>();
  port.addEventListener('message', (e) => {
    const msg = e.data;
    if (msg.type === 'let-go') {
      held.get(msg.keepId)?.();
      held.delete(msg.keepId);
      return;
    }
    queue = queue.then(async () => {
      try {
        if (msg.type === 'keep') {
          const { open, release } = root ? await threadReadHandles.keep(root, msg.units) : NOTHING_KEPT;
          held.set(msg.id, release);
          port.postMessage({ type: 'kept', id: msg.id, open });
          return;
        }
        if (msg.type === 'spin') {
          const t0 = performance.now();
          const result = spin(msg.rounds);
          port.postMessage({ type: 'spun', id: msg.id, ms: performance.now() - t0, result });
          return;
        }
        const bytes = await readStoredUnit(msg.path, msg.data, { opfs: root });
        const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
        port.postMessage({ type: 'read', id: msg.id, bytes }, whole ? [bytes.buffer as ArrayBuffer] : []);
      } catch (err) {
        const e =
          err instanceof TandemError
            ? err
            : new TandemError('storage-read-failed', `Reading a unit failed: ${String(err)}`);
        port.postMessage({ type: 'failed', id: msg.id, code: e.code, message: e.message });
      }
    });
  });
}

/** The inference worker's end of the reader thread. */
export class UnitReadThread {
  private nextId = 1;
  private stopped: string | null = null;
  private readonly pending = new Map<number, { resolve: (r: UnitReadReply) => void; reject: (e: Error) => void }>();

  constructor(private readonly port: UnitReadPort<UnitReadRequest, UnitReadReply>) {
    port.addEventListener('message', (e) => {
      const p = this.pending.get(e.data.id);
      this.pending.delete(e.data.id);
      p?.resolve(e.data);
    });
  }

  /** One stored unit's bytes, read on the thread. */
  async readOne(path: string, data: Blob | OpfsUnit): Promise<Uint8Array> {
    const r = await this.call((id) => ({ type: 'read', id, path, data }));
    if (r.type !== 'read') throw this.error(r);
    return r.bytes;
  }

  /** Keeps the files open on the thread, so that its reads of them make no round trip. */
  async keep(units: readonly OpfsUnit[]): Promise<KeptFiles> {
    const r = await this.call((id) => ({ type: 'keep', id, units: [...units] }));
    if (r.type !== 'kept') throw this.error(r);
    let released = false;
    const release = () => {
      if (released || this.stopped !== null) return;
      released = true;
      this.port.postMessage({ type: 'let-go', keepId: r.id });
    };
    return { open: r.open, release };
  }

  /** `spin(rounds)` on the thread: its own ms of it. */
  async spin(rounds: number): Promise<number> {
    const r = await this.call((id) => ({ type: 'spin', id, rounds }));
    if (r.type !== 'spun') throw this.error(r);
    return r.ms;
  }

  /** The thread died: every pending call fails with 'unit-reader-stopped', and so does every later one. */
  fail(message: string): void {
    this.stopped = message;
    for (const p of this.pending.values()) p.reject(new TandemError('unit-reader-stopped', message));
    this.pending.clear();
  }

  private call(make: (id: number) => UnitReadRequest): Promise<UnitReadReply> {
    if (this.stopped !== null) return Promise.reject(new TandemError('unit-reader-stopped', this.stopped));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.port.postMessage(make(id));
    });
  }

  private error(r: UnitReadReply): TandemError {
    return r.type === 'failed'
      ? new TandemError(r.code, r.message)
      : new TandemError('storage-read-failed', `The unit reader answered '${r.type}'; reload the page.`);
  }
}

/**
 * Reads a unit on the reader thread `thread()` gives, and on this thread where there is none or it stopped
 * (a unit it failed to read for another reason fails here too: the storage said so). The files of a
 * stage in parts are kept open on the reader thread (`keepWhereRead`); where it had stopped before, they
 * are kept here, and the read here (`inline`) finds them.
 */
export function readOnThread(
  thread: () => UnitReadThread | null,
  inline: (path: string, data: Blob | OpfsUnit) => Promise<Uint8Array>,
): (path: string, data: Blob | OpfsUnit) => Promise<Uint8Array> {
  return async (path, data) => {
    const t = thread();
    if (!t) return inline(path, data);
    try {
      return await t.readOne(path, data);
    } catch (err) {
      if (err instanceof TandemError && err.code === 'unit-reader-stopped') return inline(path, data);
      throw err;
    }
  };
}

/**
 * StageRuntime.keepFiles for the inference worker: a stage loaded in parts is read on the reader thread
 * (`readOnThread`), so its files are kept open there; any other is read here, and kept here.
 */
export async function keepWhereRead(
  thread: () => UnitReadThread | null,
  files: readonly OpfsUnit[],
  opts: { inParts: boolean },
  root: (() => Promise<OpfsDirectory>) | null = opfsRoot(),
): Promise<KeptFiles> {
  const t = opts.inParts ? thread() : null;
  if (t) {
    try {
      return await t.keep(files);
    } catch (err) {
      if (!(err instanceof TandemError && err.code === 'unit-reader-stopped')) throw err;
    }
  }
  return root ? threadReadHandles.keep(root, files) : NOTHING_KEPT;
}

/**
 * The reader thread of this worker, started on first use; null where a worker cannot start one (a
 * browser without nested workers): the inference worker then reads on its own thread.
 */
let started: UnitReadThread | null | undefined;
export function unitReadThread(): UnitReadThread | null {
  if (started !== undefined) return started;
  if (typeof Worker === 'undefined') return (started = null);
  try {
    const worker = new Worker(new URL('./unit-read-worker.ts', import.meta.url), {
      type: 'module',
      name: 'tandem-unit-read',
    });
    const thread = new UnitReadThread(worker);
    worker.addEventListener('error', (e) => {
      thread.fail(`The unit reader thread stopped (${e.message || 'error'}); reload the page.`);
      started = null; // later reads happen on the inference worker's own thread
    });
    return (started = thread);
  } catch {
    return (started = null);
  }
}
