/**
 * The main thread's end of a stage that runs in the inference worker (stage-worker-host.ts):
 *
 *   const stages = new WorkerStages(worker);                  // once per page, on the shared worker
 *   await stages.connect(peerJsOptions);                      // registers with PeerJS; the worker gets a link hub
 *   const stage = await stages.create({ manifest, assignment, ... });   // a StageHandle, like a StagePeer
 *   await stage.run(start);
 *
 * The main thread keeps what the worker cannot have or need not pay for: PeerJS signaling (the carrier
 * dials and accepts connections and transfers each frame channel to the worker as it opens), the unit
 * cache, the prompt's tokenizer (a first stage sends ids) and the token text (a last stage's tokens come
 * back as ids and are decoded here, off the ring's path).
 */
import { TandemError } from '../../core/errors.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import {
  sameStageWork,
  type PhaseEvent,
  type StageAssignment,
  type StartRequest,
  type TokenEvent,
} from '../../shards/runtime/stage-peer.ts';
import type { PromptTokenizer } from '../../shards/runtime/prompt-tokenizer.ts';
import type { LoadPartsPolicy } from '../../shards/runtime/stage-parts.ts';
import type { StageBackend } from '../../shards/runtime/stage-runtime.ts';
import { TextStream } from '../../shards/runtime/text-stream.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';
import type { UnitStoreLocation } from '../cache/committed-unit.ts';
import type { Emulation } from '../profiler/emulation.ts';
import type {
  CarriedChannel,
  createPeerJsCarrier,
  PeerJsCarrier,
  PeerJsTransportOptions,
} from '../transport/peerjs-transport.ts';
import { isStageReply, type StageReply, type StageRequest, type WorkerStart } from './stage-worker-protocol.ts';
import { assertNever, transferables, type MessagePort } from './worker-protocol.ts';

/** What the page's controller needs of its stage, on the main thread (StagePeer) or in the worker (WorkerStage). */
export interface StageHandle {
  sameStage(a: StageAssignment): boolean;
  relink(a: StageAssignment): void | Promise<void>;
  load(): Promise<{ storageReadMs: number; sessionCreateMs: number }>;
  /** Keeps the stage's unit files open for its cold start's read (StagePeer.prepareLoad); how many. */
  prepareLoad(): Promise<number>;
  run(start: StartRequest): Promise<unknown>;
  cancel(requestId: number, reason: string): void;
  stopForRepair(requestId: number, reason: string): void;
  abort(reason?: string): void;
  dispose(): Promise<void>;
}

export interface WorkerStageOptions {
  manifest: ModelManifest;
  assignment: StageAssignment;
  backend: StageBackend;
  emulation: Emulation | null;
  /** load the stage in parts (StagePeerOptions.loadParts) */
  loadParts?: LoadPartsPolicy;
  readUnit: (unitId: string) => Promise<UnitData>;
  /** where the worker may look committed units up itself (ShardCache.workerLookup); else it asks readUnit */
  unitStore?: UnitStoreLocation | null;
  /** a first stage whose start has no ids: the tokenizer that encodes its prompt (chat template where it has one) */
  loadTokenizer?: () => Promise<PromptTokenizer>;
  /** a last stage: token ids -> text */
  tokenText?: Pick<PromptTokenizer, 'decode'>;
  /** `beforeCancel`: the step ran before the request's cancel reached the stage (it was reported after) */
  onPhase?: (e: PhaseEvent, beforeCancel: boolean) => void;
  onToken?: (e: TokenEvent) => void;
  onLinkLost?: (peerId: string, requestId: number) => void;
  onDropped?: (kind: string, requestId: number, from: string) => void;
  beforeStep?: (generated: number) => Promise<void>;
}

type Settle = { resolve: (r: Extract<StageReply, { type: 'stage-done' }>) => void; reject: (e: TandemError) => void };

/**
 * Whether this browser can move an RTCDataChannel to a worker (Chromium and Safari can; a channel must
 * move in the task that created it). Without it the stage runs on the main thread as before.
 */
export function canTransferDataChannels(): boolean {
  if (typeof RTCPeerConnection === 'undefined' || typeof structuredClone !== 'function') return false;
  let pc: RTCPeerConnection | null = null;
  try {
    pc = new RTCPeerConnection();
    const dc = pc.createDataChannel('probe', { negotiated: true, id: 1 });
    structuredClone(dc, { transfer: [dc as unknown as Transferable] });
    return true;
  } catch {
    return false;
  } finally {
    pc?.close();
  }
}

export class WorkerStages {
  private carrier: PeerJsCarrier | null = null;
  private nextSeq = 1;
  private nextStageId = 1;
  private readonly calls = new Map<number, Settle>();
  private readonly stages = new Map<number, WorkerStage>();
  private readonly pongs = new Map<number, (workerNowMs: number) => void>();
  /** the worker's performance.now() minus this thread's (measured, not from the two timeOrigins) */
  private workerClock: Promise<number> | null = null;

  constructor(private readonly port: MessagePort<StageRequest, StageReply>) {
    port.addEventListener('message', (e) => {
      const msg = e.data as StageReply | { type: string };
      if (isStageReply(msg)) this.handle(msg);
    });
  }

  get localId(): string | null {
    return this.carrier?.localId ?? null;
  }

  /**
   * Registers with the PeerJS server (a new id closes the old links) and opens the worker's link hub.
   * `makeCarrier` stands in for PeerJS in Node tests.
   */
  async connect(opts: PeerJsTransportOptions, makeCarrier?: typeof createPeerJsCarrier): Promise<void> {
    if (this.carrier?.localId === opts.peerId) return;
    this.close();
    const create = makeCarrier ?? (await import('../transport/peerjs-transport.ts')).createPeerJsCarrier;
    this.carrier = await create(opts, {
      incoming: (c) => this.handOver(c, null),
      closed: (key, reason) => this.post({ type: 'link-gone', key, reason }),
      error: (err) => this.post({ type: 'link-error', code: err.code, message: err.message }),
    });
    this.post({ type: 'links-open', localId: opts.peerId });
  }

  /** The worker died: every pending stage call rejects (a request fails instead of waiting forever). */
  fail(message: string): void {
    const err = new TandemError(
      'inference-worker-failed',
      `The inference worker stopped (${message}); reload the page.`,
    );
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }

  close(): void {
    if (!this.carrier) return;
    this.post({ type: 'links-close' });
    this.carrier.close();
    this.carrier = null;
  }

  /** Builds the stage in the worker; rejects as a StagePeer's constructor would ('assignment-invalid', ...). */
  async create(opts: WorkerStageOptions): Promise<WorkerStage> {
    if (!this.carrier)
      throw new TandemError(
        'transport-missing',
        'This page is not registered with the signaling server (PeerJS) yet; re-join the session.',
      );
    const stageId = this.nextStageId++;
    const stage = new WorkerStage(this, stageId, opts);
    this.stages.set(stageId, stage);
    try {
      await this.call((seq) => ({
        type: 'stage-create',
        stageId,
        seq,
        manifest: opts.manifest,
        assignment: opts.assignment,
        backend: opts.backend,
        emulation: opts.emulation,
        holds: opts.beforeStep !== undefined,
        unitStore: opts.unitStore ?? null,
        loadParts: opts.loadParts ?? null,
      }));
    } catch (err) {
      this.stages.delete(stageId);
      throw err;
    }
    return stage;
  }

  /**
   * How far the worker's performance.now() is ahead of this thread's, ms: the two tick together (one
   * monotonic clock) from different origins. From the fastest of a few round trips (its midpoint),
   * measured once; a round trip is a fraction of a millisecond when the worker is idle.
   */
  workerClockOffset(): Promise<number> {
    this.workerClock ??= (async () => {
      let best = { rtt: Infinity, offset: 0 };
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const workerNowMs = await new Promise<number>((resolve) => {
          const seq = this.nextSeq++;
          this.pongs.set(seq, resolve);
          this.post({ type: 'clock-ping', seq });
        });
        const t1 = performance.now();
        if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: workerNowMs - (t0 + t1) / 2 };
      }
      return best.offset;
    })();
    return this.workerClock;
  }

  /** @internal a stage call: resolves with its stage-done, rejects with its TandemError */
  call(make: (seq: number) => StageRequest): Promise<Extract<StageReply, { type: 'stage-done' }>> {
    return new Promise((resolve, reject) => {
      const seq = this.nextSeq++;
      this.calls.set(seq, { resolve, reject });
      this.post(make(seq));
    });
  }

  /** @internal */
  post(m: StageRequest, transfer: Transferable[] = []): void {
    this.port.postMessage(m, transfer);
  }

  /** @internal */
  forget(stageId: number): void {
    this.stages.delete(stageId);
  }

  private handOver(c: CarriedChannel, dialSeq: number | null): void {
    this.post({ type: 'link-channel', ...c, dialSeq }, [c.channel]);
  }

  private handle(msg: StageReply): void {
    switch (msg.type) {
      case 'link-dial': {
        const carrier = this.carrier;
        if (!carrier) {
          this.post({
            type: 'link-dial-failed',
            dialSeq: msg.dialSeq,
            code: 'transport-closed',
            message: 'This page left the signaling server.',
          });
          return;
        }
        carrier
          .dial(msg.peerId, msg.timeoutMs, (c) => this.handOver(c, msg.dialSeq))
          .catch((err: unknown) => {
            const e = err instanceof TandemError ? err : new TandemError('transport-connect-failed', String(err));
            this.post({ type: 'link-dial-failed', dialSeq: msg.dialSeq, code: e.code, message: e.message });
          });
        return;
      }
      case 'link-close':
        this.carrier?.closeLink(msg.key);
        return;
      case 'clock-pong': {
        const pong = this.pongs.get(msg.seq);
        this.pongs.delete(msg.seq);
        pong?.(msg.workerNowMs);
        return;
      }
      case 'stage-reports':
        this.stages.get(msg.stageId)?.reports(msg.phases, msg.tokens);
        return;
      case 'stage-cancel-seen':
        this.stages.get(msg.stageId)?.cancelSeen(msg.requestId);
        return;
      case 'stage-link-lost':
        this.stages.get(msg.stageId)?.opts.onLinkLost?.(msg.peerId, msg.requestId);
        return;
      case 'stage-dropped':
        this.stages.get(msg.stageId)?.opts.onDropped?.(msg.kind, msg.requestId, msg.from);
        return;
      case 'unit-read': {
        const stage = this.stages.get(msg.stageId);
        const read = stage
          ? stage.opts.readUnit(msg.unitId)
          : Promise.reject(new TandemError('stage-disposed', `Stage ${msg.stageId} is gone.`));
        read.then(
          (data) =>
            this.post(
              { type: 'unit-data', seq: msg.seq, data },
              data instanceof Uint8Array ? transferables([data]) : [],
            ),
          (err: unknown) => {
            const e = err instanceof TandemError ? err : new TandemError('unit-read-failed', String(err));
            this.post({ type: 'unit-failed', seq: msg.seq, code: e.code, message: e.message });
          },
        );
        return;
      }
      case 'hold': {
        const hold = this.stages.get(msg.stageId)?.opts.beforeStep?.(msg.generated) ?? Promise.resolve();
        const done = () => this.post({ type: 'hold-done', seq: msg.seq });
        hold.then(done, done);
        return;
      }
      case 'stage-done':
      case 'stage-failed': {
        const settle = this.calls.get(msg.seq);
        this.calls.delete(msg.seq);
        if (!settle) return;
        if (msg.type === 'stage-done') settle.resolve(msg);
        else settle.reject(new TandemError(msg.code, msg.message));
        return;
      }
      default:
        assertNever(msg);
    }
  }
}

/** A stage in the inference worker, driven like a StagePeer. */
export class WorkerStage implements StageHandle {
  private assignment: StageAssignment;
  /** the last stage's text per running request */
  private readonly texts = new Map<number, TextStream>();
  /** requests whose cancel (or stop) was sent and not yet seen by the worker: their reports predate it */
  private readonly cancelling = new Set<number>();

  constructor(
    private readonly host: WorkerStages,
    private readonly stageId: number,
    readonly opts: WorkerStageOptions,
  ) {
    this.assignment = opts.assignment;
  }

  sameStage(a: StageAssignment): boolean {
    return sameStageWork(a, this.assignment);
  }

  async relink(a: StageAssignment): Promise<void> {
    await this.host.call((seq) => ({ type: 'stage-relink', stageId: this.stageId, seq, assignment: a }));
    this.assignment = a;
  }

  async load(): Promise<{ storageReadMs: number; sessionCreateMs: number }> {
    const done = await this.host.call((seq) => ({ type: 'stage-load', stageId: this.stageId, seq }));
    return done.loaded ?? { storageReadMs: 0, sessionCreateMs: 0 };
  }

  async prepareLoad(): Promise<number> {
    const done = await this.host.call((seq) => ({ type: 'stage-prepare-load', stageId: this.stageId, seq }));
    return done.keptFiles ?? 0;
  }

  async run(start: StartRequest): Promise<void> {
    const { originMs, ...rest } = start;
    const workerStart: WorkerStart = {
      ...rest,
      ...(originMs !== undefined ? { originMs: originMs + (await this.host.workerClockOffset()) } : {}),
    };
    if (this.assignment.embeds && !start.promptTokenIds && this.opts.loadTokenizer) {
      // the worker has no tokenizer: a first stage sends it the prompt's ids
      const tokenizer = await this.opts.loadTokenizer();
      workerStart.promptTokenIds = tokenizer.encode(start.prompt, { chatTemplate: tokenizer.hasChatTemplate });
    }
    if (this.assignment.hasHead && this.opts.tokenText) {
      const firstIndex = start.resume?.firstIndex ?? 0;
      const prior = firstIndex > 0 && start.promptTokenIds ? start.promptTokenIds.slice(-firstIndex) : [];
      this.texts.set(start.requestId, new TextStream(this.opts.tokenText, prior));
    }
    try {
      await this.host.call((seq) => ({ type: 'stage-run', stageId: this.stageId, seq, start: workerStart }));
    } finally {
      this.texts.delete(start.requestId);
    }
  }

  cancel(requestId: number, reason: string): void {
    this.cancelling.add(requestId);
    this.host.post({ type: 'stage-cancel', stageId: this.stageId, requestId, reason });
  }

  stopForRepair(requestId: number, reason: string): void {
    this.cancelling.add(requestId);
    this.host.post({ type: 'stage-stop-for-repair', stageId: this.stageId, requestId, reason });
  }

  abort(reason = 'aborted by the page'): void {
    this.host.post({ type: 'stage-abort', stageId: this.stageId, reason });
  }

  async dispose(): Promise<void> {
    try {
      await this.host.call((seq) => ({ type: 'stage-dispose', stageId: this.stageId, seq }));
    } finally {
      this.host.forget(this.stageId);
    }
  }

  /** @internal a batch from the worker (stage-report-queue.ts) */
  reports(phases: readonly PhaseEvent[], tokens: readonly TokenEvent[]): void {
    for (const p of phases) this.opts.onPhase?.(p, this.cancelling.has(p.requestId));
    for (const t of tokens) this.token(t);
  }

  /** @internal the worker has the cancel of `requestId`: later reports are of steps after it */
  cancelSeen(requestId: number): void {
    this.cancelling.delete(requestId);
  }

  /** @internal a token from the worker: its text is decoded here */
  token(t: TokenEvent): void {
    const text = this.texts.get(t.requestId)?.push(t.tokenId, t.done) ?? '';
    this.opts.onToken?.({ ...t, text });
  }
}
