/**
 * StagePeer: runs one pipeline stage for one request at a time, in the page and in Node alike.
 *
 * How to use it (the page: client/app/stage-runner.ts; Node: shards/runtime/pipeline-runner.ts):
 *
 *   // once, on 'assignment' (construct BEFORE 'go' so no early frame from a fast predecessor is missed):
 *   const peer = new StagePeer({
 *     manifest, assignment,                      // the 'assignment' message's fields (StageAssignment)
 *     transport,                                 // page: createPeerJsTransport(...); Node: LoopbackNetwork
 *     runtime, backend,                          // page: createBrowserRuntime() + chooseBackend(...).backend
 *                                                // Node: createNodeRuntime('node') + 'node'
 *     readUnit: (unitId) => cache.read(unitId),  // verified bytes of one unit ('embed', 'layer.N', 'head')
 *     tokenizer,                                 // first stage: prompt -> ids (unless the start has the ids);
 *                                                // last stage: ids -> text for onToken
 *     onPhase: (e) => timeline.add(e),           // { requestId, phase, step, startMs, endMs }
 *     onToken: (e) => ...,                       // last stage: { requestId, index, tokenId, text, done }
 *     onError: (err, requestId) => ...,          // e.g. report-error to the coordinator
 *   });
 *   // on 'start' (every assigned page gets the same message):
 *   await peer.load();                           // optional: create the session now, not in the first run
 *   const result = await peer.run(start);        // resolves at EOS / max tokens; rejects with a TandemError
 *   peer.cancel(requestId, reason);              // the coordinator cancelled it: run() rejects, no error frame
 *   peer.abort(reason);                          // this page stops it: run() rejects, an error frame goes round
 *   // on a new plan or leaving: await peer.dispose();
 *
 * Its role in the ring is fixed by the assignment (stageRole): 'single' (embeds and head), 'first'
 * (embeds), 'middle', or 'last' (head). run() then reads top to bottom:
 *   0. at once, on the first run only (unless load() did it): read the unit blobs ('storage-read'), build the stage graph and
 *      create the ONNX Runtime session ('session-create'); later runs reuse the session;
 *   per step (0 = prefill of the whole prompt, n = n-th decode step, one token):
 *   1. input: first/single take token ids (the prompt, then each sampled token: from the last stage, or
 *      on a single stage its own); middle/last wait for the predecessor's hidden states ('wait', 'receive');
 *   2. forward: run the layers with this stage's KV cache ('compute', stage-stepper.ts);
 *   3. first/middle: send the hidden states on ('send');
 *   4. last/single: sample the next token ('sample', shards/sampler.ts); at EOS or maxNewTokens send an
 *      'end' frame round the ring, which stops every stage; else send the token to the first stage (a
 *      single stage keeps it); then report it with its text (onToken, text-stream.ts), off the ring's path.
 *   Each step's time on the stage is also recorded in three contiguous parts, 'ingress' (input here ->
 *   compute began in the runtime), 'kernel' (the runtime's compute) and 'egress' (compute ended -> output
 *   handed to the link): the overhead of a step is ingress + egress (core/step-breakdown.ts).
 * A failing stage sends an 'error' frame round the ring instead, so no one waits forever. Phase times are
 * milliseconds since run() was called on this stage. Errors are TandemErrors with stable codes
 * ('stage-timeout', 'transport-closed', 'session-create-failed', 'prompt-too-long', ...), passed to
 * onError and thrown from run(); nothing hangs: every wait has a timeout (frameTimeoutMs).
 */
import { usableOrigin } from '../../core/clock-offset.ts';
import { TandemError } from '../../core/errors.ts';
import {
  endFrame,
  errorFrame,
  frameToFloat32,
  frameToInt32,
  hiddenFrame,
  readEndFrame,
  readErrorFrame,
  tokenFrame,
  type Frame,
} from '../../core/frame-codec.ts';
import type { FrameArrival, PipelineTransport, TransportEvent } from '../../core/transport/transport.ts';
import { eosTokens, headDim, unitsForRange, type LayerRange, type ModelManifest, type UnitEntry } from '../manifest.ts';
import { Sampler, type SamplingOptions } from '../sampler.ts';
import { stageMaxPositions, stageSessionConfig, type StageSpec } from '../stage-graph.ts';
import { FrameGate, maxFrameBytesFor, type GateAssignment } from './frame-gate.ts';
import type { PromptTokenizer } from './prompt-tokenizer.ts';
import type { LoadPartsPolicy } from './stage-parts.ts';
import type { HostTensor, RunTiming, StageBackend, StageRuntime, StageSession } from './stage-runtime.ts';
import { lastLogitsRow } from './head-sampling.ts';
import { isOpfsUnit, opfsRoot } from './opfs-file.ts';
import type { StageGraphRecipe } from './stage-graph-recipe.ts';
import { threadReadHandles } from './opfs-read-handles.ts';
import { idsTensor, StageStepper } from './stage-stepper.ts';
import { TextStream } from './text-stream.ts';
import { unitDataBytes, type UnitData } from './unit-data.ts';

export type Phase =
  | 'storage-read'
  | 'session-create'
  | 'wait'
  | 'receive'
  | 'compute'
  | 'send'
  | 'sample'
  // each step's time on this stage in three contiguous parts (see recordStep): input ready -> compute
  // began in the runtime -> compute ended -> output handed to the link
  | 'ingress'
  | 'kernel'
  | 'egress';

/** One measured phase (ms since run() started on this page); matches the protocol's timing entry. */
export interface PhaseEvent {
  requestId: number;
  phase: Phase;
  /** 0 = prefill, n = n-th decode step. */
  step: number;
  startMs: number;
  endMs: number;
  /** 'session-create': how many sessions the stage was opened as (stage-parts.ts) */
  parts?: number;
}

export interface TokenEvent {
  requestId: number;
  /** 0-based index of the generated token. */
  index: number;
  tokenId: number;
  /** Text this token adds (needs a tokenizer; '' without). */
  text: string;
  /** True for the last token of the request. */
  done: boolean;
  finishReason?: FinishReason;
}

export type FinishReason = 'eos' | 'max-tokens';

/** The fields of the coordinator's 'assignment' message a stage needs. */
export interface StageAssignment extends GateAssignment {
  layers: LayerRange;
}

/** Every stage's assignment for `split`, stage i on peer `ids[i]` (as the coordinator assigns them). */
export function ringAssignments(split: readonly LayerRange[], ids: readonly string[]): StageAssignment[] {
  const last = split.length - 1;
  return split.map((layers, i) => ({
    layers,
    embeds: i === 0,
    hasHead: i === last,
    predecessorPeerId: i > 0 ? ids[i - 1] : null,
    successorPeerId: i < last ? ids[i + 1] : null,
    firstPeerId: ids[0],
    lastPeerId: ids[last],
  }));
}

/** Whether two assignments ask for the same work (layers, embedding and head): a kept stage only re-links. */
export function sameStageWork(a: StageAssignment, b: StageAssignment): boolean {
  return (
    a.layers.start === b.layers.start &&
    a.layers.end === b.layers.end &&
    a.embeds === b.embeds &&
    a.hasHead === b.hasHead
  );
}

/** A stage's place in the ring: 'single' embeds and has the head; 'first' embeds; 'last' has the head. */
export type StageRole = 'single' | 'first' | 'middle' | 'last';

export function stageRole(a: Pick<StageAssignment, 'embeds' | 'hasHead'>): StageRole {
  if (a.embeds) return a.hasHead ? 'single' : 'first';
  return a.hasHead ? 'last' : 'middle';
}

/** The fields of the coordinator's 'start' message. */
export interface StartRequest {
  requestId: number;
  prompt: string;
  maxNewTokens: number;
  sampling: SamplingOptions;
  /** The prompt already tokenised (chat template applied) by the server: the first stage runs these ids. */
  promptTokenIds?: readonly number[];
  /** Token ids that end this request (default: the peer's stopTokens option, else the package's eos ids). */
  stopTokens?: readonly number[];
  /**
   * Failover (issue 13): this request continues request `of` after a stage was lost. `promptTokenIds` is
   * the history (prompt + the `firstIndex` tokens generated so far); the last stage numbers its tokens
   * from `firstIndex` and samples with index firstIndex + i, so the continuation equals an uninterrupted run.
   */
  resume?: ResumeInfo;
  /**
   * performance.now() of this process when the request began for the whole pipeline (in a page: the
   * server's send of `start`, mapped through the page's heartbeat clock offset, core/clock-offset.ts): the
   * phases are timed from it, so that every stage's phases share one origin. Absent, or not in the past
   * 10 minutes: from run().
   */
  originMs?: number;
}

/** The `resume` field of a continuation `start` (core/protocol.ts). */
export interface ResumeInfo {
  of: number;
  firstIndex: number;
  attempt: number;
}

export interface StagePeerOptions {
  manifest: ModelManifest;
  assignment: StageAssignment;
  transport: PipelineTransport;
  runtime: StageRuntime;
  backend: StageBackend;
  /**
   * One unit ('embed', 'layer.N', 'head') from the page's cache: its OPFS file or Blob, which the runtime
   * reads (in a page, off the main thread), or verified bytes in a buffer of their own, handed over to the runtime (an
   * inference worker may take them, detaching them here).
   */
  readUnit: (unitId: string) => Promise<UnitData>;
  /**
   * Where a stored unit is, without reading it (null: not known here without asking elsewhere): lets
   * `prepareLoad` keep the stage's OPFS files open before a request. Without it nothing is opened ahead.
   */
  locateUnit?: (unitId: string) => Promise<UnitData | null>;
  /** First stage: prompt -> ids (not needed when every start carries promptTokenIds); last: tokens -> text for onToken. */
  tokenizer?: PromptTokenizer;
  /**
   * Without `tokenizer`: loads one the first time a start needs it (a first stage whose starts carry
   * promptTokenIds, as the server's do, never pays the load: seconds of main thread on a slow phone).
   */
  loadTokenizer?: () => Promise<PromptTokenizer>;
  /** Last stage: tokens -> text for onToken, when it is not `tokenizer` (the page's byte-level table). */
  tokenText?: Pick<PromptTokenizer, 'decode'>;
  /** Wrap the prompt in the tokenizer's chat template (default: when the tokenizer has one). */
  chatTemplate?: boolean;
  /** Hidden states on the wire (default float32; float16 halves the bytes, ~1e-3 relative error). */
  wire?: 'float32' | 'float16';
  /** Longest wait for a frame from another stage, ms (default 120 000: covers a slow peer's cold start). */
  frameTimeoutMs?: number;
  /** RoPE table rows = longest sequence (default min(max_position_embeddings, 4096)). */
  maxPositions?: number;
  /**
   * Load the stage in parts (stage-parts.ts): a part's session is created while the next parts' units are
   * read. For a runtime that reads on a second thread, on a device whose cores let both run at once (the
   * page's profile says: profiler/parallel-load.ts). Absent: one session.
   */
  loadParts?: LoadPartsPolicy;
  /** Token ids that end generation (default: the package's eos ids). */
  stopTokens?: number[];
  onPhase?: (e: PhaseEvent) => void;
  onToken?: (e: TokenEvent) => void;
  onError?: (err: TandemError, requestId: number | null) => void;
  /** A ring neighbour's link closed while `requestId` ran (failover: the page reports it to the coordinator). */
  onLinkLost?: (peerId: string, requestId: number) => void;
  /**
   * Awaited before each step's compute with the request's tokens generated so far (a continuation counts
   * those before the loss): a fault-injection point where tests hold the ring (client/app/hold-points.ts).
   */
  beforeStep?: (generated: number) => Promise<void>;
  /** A frame the gate refused (wrong sender, or a finished request's): for diagnosis. */
  onDropped?: (kind: string, requestId: number, from: string) => void;
}

export interface RunResult {
  requestId: number;
  backend: StageBackend;
  /** Generated token ids: all of them on the last stage; all but the final one on the first; [] elsewhere. */
  tokens: number[];
  /** Prompt length in tokens (known on every stage from the prefill's shape). */
  promptTokens: number;
  finishReason: FinishReason;
  /** Phases, their times in ms since `originMs`. */
  phases: PhaseEvent[];
  /** The origin of `phases`: the start's `originMs`, else performance.now() when run() began. */
  originMs: number;
  /** Time to first token on the last stage (ms since `originMs`), else null. */
  timeToFirstTokenMs: number | null;
}

type RequestResult = Omit<RunResult, 'phases' | 'originMs'>;
/** Records one phase of the running request (absolute performance.now() times). */
type PhaseRecorder = (p: Phase, step: number, startAbs: number, endAbs: number, parts?: number) => void;
/** [start, end], performance.now() ms */
type Span = [number, number];

interface Inbound {
  frame: Frame;
  from: string;
  arrival: FrameArrival;
}

interface Waiter {
  accept: (m: Inbound) => boolean;
  resolve: (m: Inbound) => void;
  reject: (err: TandemError) => void;
}

/** The runtime's compute span of a run, inside the caller's span [c0, c1] around it (that span when unknown). */
export function kernelSpan(span: RunTiming | undefined, c0: number, c1: number): RunTiming {
  if (!span) return { startMs: c0, endMs: c1 };
  const startMs = Math.min(c1, Math.max(c0, span.startMs));
  return { startMs, endMs: Math.min(c1, Math.max(startMs, span.endMs)) };
}

/**
 * Records one step's time on this stage as three contiguous phases: 'ingress' (input here -> compute
 * began in the runtime: frame decode, feeds, the trip to a worker and its wake-up), 'kernel' (the
 * runtime's compute), 'egress' (compute ended -> output handed to the link: the trip back, sampling and
 * text on the last stage, encoding, sending). Together they span readyAt -> sentAt exactly.
 */
function recordStep(record: PhaseRecorder, step: number, readyAt: number, kernel: RunTiming, sentAt: number): void {
  const k0 = Math.max(readyAt, kernel.startMs);
  const k1 = Math.max(k0, kernel.endMs);
  const end = Math.max(k1, sentAt);
  record('ingress', step, readyAt, k0);
  record('kernel', step, k0, k1);
  record('egress', step, k1, end);
}

/** Frames kept for requests that have not started here yet (a fast predecessor); older ones are dropped. */
const MAX_EARLY_FRAMES = 64;

export class StagePeer {
  private session: StageSession | null = null;
  private lazyTokenizer: Promise<PromptTokenizer> | null = null;
  private inbox: Inbound[] = [];
  private waiter: Waiter | null = null;
  private current: number | null = null;
  private failure: TandemError | null = null;
  private readonly finished = new Set<number>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly spec: StageSpec;
  /** This stage's place in the ring, fixed by the assignment. */
  readonly role: StageRole;
  private readonly maxPositions: number;
  private disposed = false;
  /** Admits channels and frames from this stage's ring neighbours only; counts what it drops. */
  gate: FrameGate;
  // ---- failover (issue 13) state: see stopForRepair / relink below
  /** Bumped by every run(): a run stopped for repair that is still computing sees it changed and stops. */
  private runToken = 0;
  /** Rejects the current run() at once (stopForRepair). */
  private stopRun: ((err: TandemError) => void) | null = null;
  /** The session being created (a stopped run may still be creating it when the continuation starts). */
  private sessionPromise: Promise<StageSession> | null = null;
  // ---- end failover state
  /** `prepareLoad`, once; and how to let go of the unit files it keeps open (dispose). */
  private loadPrepared: Promise<number> | null = null;
  /** Units `prepareLoad` found, with their files kept open: the start reads them without a lookup. */
  private readonly located = new Map<string, UnitData>();
  private releaseReads: (() => void) | null = null;

  constructor(private opts: StagePeerOptions) {
    const a = opts.assignment;
    this.spec = { layers: a.layers, embeds: a.embeds, hasHead: a.hasHead };
    this.role = stageRole(a);
    this.maxPositions = stageMaxPositions(opts.manifest, { maxPositions: opts.maxPositions });
    if (a.embeds !== (a.firstPeerId === this.localId)) {
      throw new TandemError(
        'assignment-invalid',
        `Stage embeds=${a.embeds} but the first peer is '${a.firstPeerId}' and this page is '${this.localId}'.`,
      );
    }
    if (a.hasHead !== (a.lastPeerId === this.localId)) {
      throw new TandemError(
        'assignment-invalid',
        `Stage hasHead=${a.hasHead} but the last peer is '${a.lastPeerId}' and this page is '${this.localId}'.`,
      );
    }
    if (!a.embeds && !a.predecessorPeerId)
      throw new TandemError('assignment-invalid', 'A stage without the embedding needs a predecessor.');
    if (!a.hasHead && !a.successorPeerId)
      throw new TandemError('assignment-invalid', 'A stage without the head needs a successor.');
    this.gate = new FrameGate(a, this.localId);
    opts.transport.setPolicy({
      admitChannel: (id) => this.gate.admitChannel(id),
      maxFrameBytes: maxFrameBytesFor(opts.manifest.config.hidden_size, this.maxPositions),
    });
    this.unsubscribe.push(opts.transport.onFrame((frame, from, arrival) => this.deliver({ frame, from, arrival })));
    this.unsubscribe.push(opts.transport.onEvent((e) => this.onTransportEvent(e)));
    this.preconnect();
  }

  /**
   * Opens the links this stage sends on (successor; the first stage for the last one) now, on
   * 'assignment', so WebRTC set-up is off the request's critical path. A failure here is not final:
   * the first send dials again and reports the error then.
   */
  private preconnect(): void {
    const a = this.opts.assignment;
    for (const id of [a.successorPeerId, a.hasHead ? a.firstPeerId : null]) {
      if (id && id !== this.localId) this.opts.transport.connect(id).catch(() => undefined);
    }
  }

  private get localId(): string {
    return this.opts.transport.localId;
  }

  /** Runs one request to its end on this stage. Only one request runs at a time. */
  async run(start: StartRequest): Promise<RunResult> {
    if (this.disposed)
      throw new TandemError('stage-disposed', 'This StagePeer was disposed; create a new one for the new assignment.');
    if (this.current !== null)
      throw new TandemError('request-active', `Request ${this.current} is still running on this stage.`);
    const now = performance.now();
    const t0 = start.originMs !== undefined && usableOrigin(start.originMs, now) ? start.originMs : now;
    const phases: PhaseEvent[] = [];
    const record = (phase: Phase, step: number, startAbs: number, endAbs: number, parts?: number): void => {
      const e: PhaseEvent = {
        requestId: start.requestId,
        phase,
        step,
        startMs: Math.max(0, startAbs - t0),
        endMs: Math.max(0, endAbs - t0),
        ...(parts !== undefined ? { parts } : {}),
      };
      phases.push(e);
      this.opts.onPhase?.(e);
    };
    this.current = start.requestId;
    this.gate.begin(start.requestId);
    this.failure = this.failedElsewhere.get(start.requestId) ?? null; // another stage failed before we started
    // Frames of requests that have finished or were superseded are no longer needed.
    this.inbox = this.inbox.filter((m) => m.frame.requestId === start.requestId);
    const token = ++this.runToken;
    const stopped = new Promise<never>((_, reject) => (this.stopRun = reject));
    stopped.catch(() => undefined);
    try {
      const result = await Promise.race([this.runRequest(start, record, t0, token), stopped]);
      return { ...result, phases, originMs: t0 };
    } catch (err) {
      const e =
        err instanceof TandemError
          ? err
          : new TandemError('stage-failed', `Stage failed: ${(err as Error).message}`, { cause: err });
      this.opts.onError?.(e, start.requestId);
      if (e.code !== 'request-failed-elsewhere' && e.code !== 'request-cancelled' && e.code !== 'stage-lost')
        await this.broadcastError(start.requestId, e);
      throw e;
    } finally {
      this.stopRun = null;
      this.finished.add(start.requestId);
      this.gate.end(start.requestId);
      this.current = null;
      this.waiter = null;
      this.inbox = [];
    }
  }

  /**
   * Reads the units and creates the session now instead of in the first run() (the Node runner does, so
   * that a request's figures leave the cold start out). Returns both phases' durations, ms.
   */
  async load(): Promise<{ storageReadMs: number; sessionCreateMs: number }> {
    if (this.disposed)
      throw new TandemError('stage-disposed', 'This StagePeer was disposed; create a new one for the new assignment.');
    const ms: Partial<Record<Phase, number>> = {};
    await this.ensureSession((phase, _step, a, b) => (ms[phase] = b - a));
    return { storageReadMs: ms['storage-read'] ?? 0, sessionCreateMs: ms['session-create'] ?? 0 };
  }

  /**
   * Prepares the stage's cold start as far as it can go without loading weights (a page does this once
   * the stage's units are in its cache): its stored unit files are opened now, so that the start's storage
   * read is the bytes alone, with no round trip to the browser process per unit (opfs-read-handles.ts),
   * and the runtime builds the stage's graph, where it can keep it for the start (StageRuntime.prepareSession).
   * Best effort, once: returns how many unit files are kept open (0 where units are not OPFS files, or
   * sync handles do not exist on this thread).
   */
  prepareLoad(): Promise<number> {
    return (this.loadPrepared ??= this.prepareOnce());
  }

  private async prepareOnce(): Promise<number> {
    const { runtime, locateUnit: locate, loadParts } = this.opts;
    runtime.prepareSession?.({ model: this.graphRecipe(), ...this.partsOption() });
    const root = opfsRoot();
    if (!locate || !root) return 0;
    const units = unitsForRange(this.opts.manifest, this.spec.layers, this.spec.embeds, this.spec.hasHead);
    const found = await Promise.all(units.map((u) => locate(u.id).catch(() => null)));
    const files = found.filter(isOpfsUnit);
    // where the runtime reads them: a stage loaded in parts reads on a thread of its own
    const { open, release } = runtime.keepFiles
      ? await runtime.keepFiles(files, { inParts: loadParts !== undefined })
      : await threadReadHandles.keep(root, files);
    if (this.disposed) {
      release();
      return 0;
    }
    this.releaseReads = release;
    // a unit whose file is open needs no lookup at the start either (its IndexedDB records and the file's
    // size: 28-150 ms for a stage's units on a 0.4-core lab device); the read checks the size it finds
    const isOpen = new Set(open.map((f) => `${f.dir}/${f.file}`));
    for (const [i, data] of found.entries())
      if (isOpfsUnit(data) && isOpen.has(`${data.dir}/${data.file}`)) this.located.set(units[i].id, data);
    return open.length;
  }

  /** Stops a running request: run() rejects with TandemError('stage-aborted'). */
  abort(reason = 'aborted by the page'): void {
    this.fail(new TandemError('stage-aborted', `The request was stopped: ${reason}.`));
  }

  /**
   * The coordinator cancelled request `requestId` (every page gets the same message, so no error frame
   * goes round the ring): run() rejects with TandemError('request-cancelled') before its next step.
   */
  cancel(requestId: number, reason: string): void {
    if (this.current !== requestId) return;
    const err = new TandemError('request-cancelled', `Request ${requestId} was cancelled: ${reason}.`);
    this.fail(err);
    // run() returns now, whatever the request awaits (a send, the worker): the server starts the next
    // request at once and this stage runs it only after this one ended (a stale step is dropped by runToken)
    this.stopRun?.(err);
  }

  // ---- failover (issue 13)

  /**
   * The coordinator reported a stage of `requestId` lost: run() rejects at once with
   * TandemError('stage-lost') (no error frame goes round the ring; the page does not report it as an
   * error). The ONNX session, its cache and this StagePeer stay, for the continuation on the repaired plan.
   */
  stopForRepair(requestId: number, reason: string): void {
    if (this.current !== requestId) return;
    const err = new TandemError('stage-lost', `Request ${requestId} stopped for repair: ${reason}.`);
    this.fail(err);
    this.stopRun?.(err);
  }

  /** Whether `a` asks for exactly this stage's work (same layers, embedding and head): then relink() suffices. */
  sameStage(a: StageAssignment): boolean {
    return sameStageWork(a, this.opts.assignment);
  }

  /**
   * A repaired plan kept this stage's layers but gave it new ring neighbours: adopt them (gate, link
   * policy, pre-connected links) and keep the session: no storage read, no session create.
   */
  relink(a: StageAssignment): void {
    if (!this.sameStage(a))
      throw new TandemError(
        'assignment-invalid',
        `relink() keeps the stage's layers; layers ${a.layers.start}-${a.layers.end} need a new StagePeer.`,
      );
    if (this.current !== null)
      throw new TandemError('request-active', `Request ${this.current} still runs here; stop it before relinking.`);
    this.opts = { ...this.opts, assignment: a };
    this.gate = new FrameGate(a, this.localId);
    this.opts.transport.setPolicy({
      admitChannel: (id) => this.gate.admitChannel(id),
      maxFrameBytes: maxFrameBytesFor(this.opts.manifest.config.hidden_size, this.maxPositions),
    });
    // frames a new neighbour sent before the relink waited in the transport (a held channel) and follow it
    this.inbox = [];
    this.preconnect();
  }

  // ---- end failover

  /** Releases the ONNX session and the transport subscriptions; the transport itself stays open. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.abort('the stage was disposed');
    this.releaseReads?.();
    this.releaseReads = null;
    for (const u of this.unsubscribe) u();
    const s = this.session;
    this.session = null;
    if (s) await s.release();
  }

  // ---------------------------------------------------------------------------------------------
  // One request, top to bottom

  private async runRequest(
    start: StartRequest,
    record: PhaseRecorder,
    t0: number,
    token: number,
  ): Promise<RequestResult> {
    /** A run stopped for repair goes on in the background until here; then it must touch nothing. */
    const checkLive = (): void => {
      if (token !== this.runToken || this.stopRun === null)
        throw new TandemError('stage-lost', `Request ${start.requestId} was stopped for repair.`);
    };
    const a = this.opts.assignment;
    const role = this.role;
    if (!Number.isInteger(start.maxNewTokens) || start.maxNewTokens < 1) {
      throw new TandemError('request-invalid', `maxNewTokens must be a positive integer, got ${start.maxNewTokens}.`);
    }
    const embeds = role === 'first' || role === 'single';
    const hasHead = role === 'last' || role === 'single';
    // first stage: the prompt's ids are known before the session loads; other stages learn S from step 0
    let nextIds: number[] | null = embeds ? this.promptIds(start, await this.tokenizerFor(start)) : null;
    const session = await this.ensureSession(record);
    const stepper = new StageStepper(session, this.spec); // a new sequence: the KV cache starts empty
    const sampler = hasHead ? new Sampler(start.sampling) : null;
    const stops = new Set(start.stopTokens ?? this.opts.stopTokens ?? eosTokens(this.opts.manifest));
    const r: RequestResult = {
      requestId: start.requestId,
      backend: session.backend,
      tokens: [],
      promptTokens: nextIds?.length ?? 0,
      finishReason: 'max-tokens',
      timeToFirstTokenMs: null,
    };
    // a continuation (failover) numbers its tokens after the ones generated before the loss, and cuts
    // its text deltas against the text already shown, so nothing repeats
    const firstIndex = start.resume?.firstIndex ?? 0;
    const priorTokens = firstIndex > 0 && start.promptTokenIds ? start.promptTokenIds.slice(-firstIndex) : [];
    const textSource = this.opts.tokenText ?? this.opts.tokenizer;
    const textStream = hasHead && textSource ? new TextStream(textSource, priorTokens) : null;

    for (let step = 0; ; step++) {
      checkLive();
      if (this.failure) throw this.failure; // aborted, or another stage failed, while we computed

      // 1. Input. First/single: token ids (the prompt at step 0; then the sampled token, which comes back
      //    from the last stage or, on a single stage, is already here). Middle/last: the predecessor's
      //    hidden states (1, S, H). An 'end' frame instead means the request is over.
      let input: HostTensor;
      /** When this step's input was here: the frame reassembled (or, waited for, the wait began). */
      let readyAt = performance.now();
      if (embeds) {
        if (nextIds === null) {
          const m = await this.receive(step, 'token', a.lastPeerId, record);
          if ('end' in m) return this.finish(r, m.end);
          readyAt = m.readyAt;
          nextIds = Array.from(frameToInt32(m.frame));
          r.tokens.push(...nextIds);
        }
        input = idsTensor(nextIds);
        nextIds = null;
      } else {
        const m = await this.receive(step, 'hidden', a.predecessorPeerId!, record);
        if ('end' in m) return this.finish(r, m.end);
        readyAt = m.readyAt;
        input = this.hiddenInput(m);
        if (step === 0) {
          r.promptTokens = input.dims[1]!;
          this.checkLength(r.promptTokens + start.maxNewTokens - 1);
        }
      }

      // 2. Forward through this stage's layers (the KV cache lives in the session's runtime).
      if (this.opts.beforeStep) {
        await this.opts.beforeStep(firstIndex + step);
        checkLive();
        this.throwIfFailed(); // stopped or failed elsewhere while it held
        readyAt = performance.now(); // a hold is not this step's overhead
      }
      //    The last stage's runtime samples the next token where the logits are (a worker returns one id).
      const c0 = performance.now();
      const out = hasHead
        ? await stepper.stepHead(input, { sampling: start.sampling, index: firstIndex + r.tokens.length })
        : await stepper.step(input);
      const c1 = performance.now();
      checkLive();
      const kernel = kernelSpan(session.lastRun, c0, c1);
      // The step's records go out once its output is on the link: a listener's work (a page's reducer and
      // view) then overlaps the next stage's compute instead of delaying this hand-over.
      const stepDone = (sent: Span | null, sampled?: Span) => {
        const sentAt = sent?.[1] ?? performance.now(); // a single stage keeps its token: done now
        record('compute', step, c0, c1);
        if (sampled) record('sample', step, sampled[0], sampled[1]);
        if (sent) record('send', step, sent[0], sent[1]);
        recordStep(record, step, readyAt, kernel, sentAt);
      };

      // 3. First/middle: hand the hidden states on.
      if ('data' in out) {
        const frame = hiddenFrame(start.requestId, step, out.data, out.dims, this.opts.wire ?? 'float32');
        stepDone(await this.sendTimed(a.successorPeerId!, frame));
        continue;
      }

      // 4. Last/single: the next token (sampled here when the runtime returned the logits); report it.
      const s0 = performance.now();
      const token =
        'token' in out ? out.token : sampler!.sample(lastLogitsRow(out.logits), firstIndex + r.tokens.length);
      r.tokens.push(token);
      const sampled: Span = [s0, performance.now()];
      r.timeToFirstTokenMs ??= performance.now() - t0;
      const finishReason: FinishReason | null = stops.has(token)
        ? 'eos'
        : r.tokens.length >= start.maxNewTokens
          ? 'max-tokens'
          : null;
      // 5. The token goes on at once: to the first stage, or at the end an 'end' frame that travels the ring
      //    and stops every stage (a single stage keeps its token). Its text and report follow, while the
      //    ring computes the next step.
      let sent: Span | null = null;
      if (role === 'last') {
        const next =
          finishReason !== null
            ? endFrame(start.requestId, step + 1, finishReason)
            : tokenFrame(start.requestId, step + 1, [token]);
        sent = await this.sendTimed(a.firstPeerId, next);
      } else if (finishReason === null) nextIds = [token];
      stepDone(sent, sampled);
      this.opts.onToken?.({
        requestId: start.requestId,
        index: firstIndex + r.tokens.length - 1,
        tokenId: token,
        text: textStream ? textStream.push(token, finishReason !== null) : '',
        done: finishReason !== null,
        ...(finishReason ? { finishReason } : {}),
      });
      if (finishReason !== null) return { ...r, finishReason };
    }
  }

  /** The tokenizer a first stage needs for `start`: none when it carries the ids. */
  private async tokenizerFor(start: StartRequest): Promise<PromptTokenizer | undefined> {
    if (start.promptTokenIds || this.opts.tokenizer || !this.opts.loadTokenizer) return this.opts.tokenizer;
    this.lazyTokenizer ??= this.opts.loadTokenizer();
    try {
      return await this.lazyTokenizer;
    } catch (err) {
      this.lazyTokenizer = null; // the next start tries again
      throw err;
    }
  }

  /** The first stage's prompt ids: the server's, else the prompt encoded here (chat template by default). */
  private promptIds(start: StartRequest, tokenizer: PromptTokenizer | undefined): number[] {
    let ids: number[];
    if (start.promptTokenIds) ids = [...start.promptTokenIds];
    else if (tokenizer)
      ids = tokenizer.encode(start.prompt, { chatTemplate: this.opts.chatTemplate ?? tokenizer.hasChatTemplate });
    else
      throw new TandemError('tokenizer-missing', 'The first stage needs the package tokenizer to encode the prompt.');
    if (ids.length === 0) throw new TandemError('prompt-empty', 'The prompt encodes to no tokens; type a prompt.');
    this.checkLength(ids.length + start.maxNewTokens - 1);
    return ids;
  }

  /** Hidden states (1, S, H) from the predecessor's frame, shape-checked. */
  private hiddenInput(m: Inbound): HostTensor {
    const hiddenSize = this.opts.manifest.config.hidden_size;
    const dims = m.frame.dims;
    if (dims.length !== 3 || dims[0] !== 1 || dims[2] !== hiddenSize || dims[1] < 1) {
      throw new TandemError(
        'frame-shape-invalid',
        `Hidden states from '${m.from}' have shape [${dims.join(', ')}]; expected [1, S, ${hiddenSize}].`,
      );
    }
    return { dtype: 'float32', dims: [1, dims[1], hiddenSize], data: frameToFloat32(m.frame) };
  }

  /** Sends `frame`; returns when the send began and when the frame was handed to the link (performance.now()). */
  private async sendTimed(peerId: string, frame: Frame): Promise<Span> {
    const s0 = performance.now();
    await this.opts.transport.send(peerId, frame);
    return [s0, performance.now()];
  }

  /** An 'end' frame arrived on a stage without the head: pass it on along the ring (not back to the last stage). */
  private async finish(r: RequestResult, end: Frame): Promise<RequestResult> {
    const a = this.opts.assignment;
    if (a.successorPeerId && a.successorPeerId !== a.lastPeerId) await this.opts.transport.send(a.successorPeerId, end);
    return { ...r, finishReason: readEndFrame(end) === 'eos' ? 'eos' : 'max-tokens', timeToFirstTokenMs: null };
  }

  private checkLength(positions: number): void {
    if (positions > this.maxPositions) {
      throw new TandemError(
        'prompt-too-long',
        `Prompt plus new tokens need ${positions} positions; the stage graphs hold ${this.maxPositions}. Shorten the prompt or lower max new tokens.`,
      );
    }
  }

  /** Reads the blobs, builds the graph and creates the session, recording both phases (first run only). */
  private async ensureSession(record: PhaseRecorder): Promise<StageSession> {
    if (this.session) return this.session;
    if (this.sessionPromise) {
      // being created already: by load() (warm mode), or by a run stopped for repair (failover); one
      // creation at a time, and the wait for it is this run's 'session-create'
      const w0 = performance.now();
      const session = await this.sessionPromise;
      record('session-create', 0, w0, performance.now());
      return session;
    }
    this.sessionPromise = this.createSession(record);
    this.sessionPromise.catch(() => {
      this.sessionPromise = null;
      this.located.clear(); // a failed load looks its units up again (the cache settles damaged ones)
    });
    return this.sessionPromise;
  }

  private async createSession(record: PhaseRecorder): Promise<StageSession> {
    const { manifest, runtime, backend, readUnit } = this.opts;
    const r0 = performance.now();
    const recipe = this.graphRecipe();
    // the units' reads (a stored unit is read by the runtime) and the graph's build happen where the session is
    // created: in a page, its inference worker
    const units = unitsForRange(manifest, this.spec.layers, this.spec.embeds, this.spec.hasHead);
    const lookUp = (id: string) => {
      const found = this.located.get(id);
      return found ? Promise.resolve(found) : readUnit(id);
    };
    const reads = Promise.all(units.map((u) => this.readVerifiedSize(u, lookUp)));
    const blobs = await reads;
    const r1 = performance.now();
    const session = await runtime.createSession({
      model: recipe,
      externalData: units.map((u, i) => ({ path: u.file, data: blobs[i] })),
      config: stageSessionConfig(manifest, recipe.options),
      backend,
      handOver: true, // the unit bytes were read for this session only: the worker may take them without a copy
      ...this.partsOption(),
      kvCache: {
        layers: Array.from(
          { length: this.spec.layers.end - this.spec.layers.start },
          (_, i) => this.spec.layers.start + i,
        ),
        heads: manifest.config.num_key_value_heads,
        headDim: headDim(manifest.config),
      },
    });
    // stored units are read by the runtime itself (the page's inference worker): that read is storage time
    const readEnd = Math.min(r1 + 1000 * (session.readSeconds ?? 0), performance.now());
    record('storage-read', 0, r0, readEnd);
    record('session-create', 0, readEnd, performance.now(), session.parts ?? 1);
    if (this.disposed) {
      await session.release();
      throw new TandemError('stage-disposed', 'The stage was disposed while its session was being created.');
    }
    this.session = session;
    return session;
  }

  /** The stage's graph as the runtime builds it (shards/runtime/stage-graph-recipe.ts). */
  private graphRecipe(): StageGraphRecipe {
    const { manifest, backend } = this.opts;
    const options = { backend: backend === 'node' ? 'cpu' : backend, maxPositions: this.maxPositions } as const;
    return { kind: 'stage-graph', manifest, spec: this.spec, options };
  }

  private partsOption(): { loadParts?: LoadPartsPolicy } {
    return this.opts.loadParts ? { loadParts: this.opts.loadParts } : {};
  }

  private async readVerifiedSize(unit: UnitEntry, readUnit: (id: string) => Promise<UnitData>): Promise<UnitData> {
    let bytes: UnitData;
    try {
      bytes = await readUnit(unit.id);
    } catch (err) {
      if (err instanceof TandemError) throw err;
      throw new TandemError(
        'storage-read-failed',
        `Reading unit '${unit.id}' from the cache failed: ${(err as Error).message}. Re-download the layers.`,
        { cause: err },
      );
    }
    if (unitDataBytes(bytes) !== unit.bytes) {
      throw new TandemError(
        'shard-size-mismatch',
        `Unit '${unit.id}' from the cache is ${unitDataBytes(bytes)} bytes; the manifest says ${unit.bytes}. Clear the cache and re-download.`,
      );
    }
    return bytes;
  }

  // ---------------------------------------------------------------------------------------------
  // Inbound frames

  /**
   * Waits for the `kind` frame of `step` from `from`, recording 'wait' and 'receive'; or for the 'end'
   * frame of this request, which is returned as { end }.
   */
  private async receive(
    step: number,
    kind: 'hidden' | 'token',
    from: string,
    record: PhaseRecorder,
  ): Promise<(Inbound & { readyAt: number }) | { end: Frame }> {
    const requestId = this.current!;
    const w0 = performance.now();
    const m = await this.waitFor(
      (x) => x.frame.requestId === requestId && (x.frame.kind === 'end' || (x.frame.kind === kind && x.from === from)),
      `${kind === 'hidden' ? 'hidden states' : 'the next token'} of step ${step} from peer '${from}'`,
    );
    const arrivedFirst = Math.max(w0, m.arrival.firstChunkAt);
    const arrivedAll = Math.max(w0, m.arrival.completedAt);
    record('wait', step, w0, arrivedFirst);
    if (m.frame.kind === 'end') return { end: m.frame };
    record('receive', step, arrivedFirst, arrivedAll);
    if (m.frame.step !== step) {
      throw new TandemError(
        'frame-out-of-order',
        `Expected ${kind} of step ${step} from '${from}' but got step ${m.frame.step}.`,
      );
    }
    return { ...m, readyAt: arrivedAll };
  }

  private waitFor(accept: (m: Inbound) => boolean, what: string): Promise<Inbound> {
    if (this.failure) return Promise.reject(this.failure);
    const i = this.inbox.findIndex(accept);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    const timeoutMs = this.opts.frameTimeoutMs ?? 120_000;
    return new Promise<Inbound>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(
          new TandemError(
            'stage-timeout',
            `No ${what} within ${timeoutMs / 1000} s. That peer may have left, lost its connection or be too slow; the host can re-plan without it.`,
          ),
        );
      }, timeoutMs);
      this.waiter = {
        accept,
        resolve: (m) => {
          clearTimeout(timer);
          this.waiter = null;
          resolve(m);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.waiter = null;
          reject(err);
        },
      };
    });
  }

  private deliver(m: Inbound): void {
    const { frame } = m;
    if (!this.gate.admitFrame(frame.kind, frame.requestId, m.from)) {
      // not from where this kind comes from, or stale: counted, ignored
      this.opts.onDropped?.(frame.kind, frame.requestId, m.from);
      return;
    }
    if (this.finished.has(frame.requestId) && frame.requestId !== this.current) return; // late frame of an old request
    if (frame.kind === 'error') {
      this.onErrorFrame(m);
      return;
    }
    if (frame.requestId === this.current && this.waiter?.accept(m)) {
      this.waiter.resolve(m);
      return;
    }
    this.inbox.push(m);
    if (this.inbox.length > MAX_EARLY_FRAMES) this.inbox.shift();
  }

  private onErrorFrame(m: Inbound): void {
    const { code, message, origin } = readErrorFrame(m.frame);
    const requestId = m.frame.requestId;
    // Pass it on around the ring until it is back at the stage it started from.
    const a = this.opts.assignment;
    const ringNext = a.hasHead ? a.firstPeerId : a.successorPeerId;
    if (ringNext && ringNext !== this.localId && ringNext !== origin && !this.forwardedErrors.has(requestId)) {
      this.forwardedErrors.add(requestId);
      this.opts.transport.send(ringNext, m.frame).catch(() => undefined);
    }
    const err = new TandemError(
      'request-failed-elsewhere',
      `The stage on peer '${origin ?? m.from}' failed (${code}): ${message}`,
    );
    if (requestId === this.current) this.fail(err);
    else if (!this.finished.has(requestId)) this.failedElsewhere.set(requestId, err);
  }

  private readonly forwardedErrors = new Set<number>();
  /** Requests that failed on another stage before they started here. */
  private readonly failedElsewhere = new Map<number, TandemError>();

  private onTransportEvent(e: TransportEvent): void {
    if (this.current === null) return;
    const a = this.opts.assignment;
    const neighbours = [
      a.predecessorPeerId,
      a.successorPeerId,
      a.hasHead ? a.firstPeerId : null,
      a.embeds ? a.lastPeerId : null,
    ];
    if (e.type === 'close' && neighbours.includes(e.peerId)) {
      this.opts.onLinkLost?.(e.peerId, this.current);
      this.fail(
        new TandemError(
          'transport-closed',
          `The connection to peer '${e.peerId}' closed (${e.reason}) during request ${this.current}.`,
        ),
      );
    } else if (e.type === 'error' && e.peerId !== null && neighbours.includes(e.peerId)) {
      this.fail(new TandemError(e.error.code, `From peer '${e.peerId}': ${e.error.message}`, { cause: e.error }));
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private fail(err: TandemError): void {
    if (this.current === null || this.failure) return;
    this.failure = err;
    this.waiter?.reject(err);
  }

  private async broadcastError(requestId: number, err: TandemError): Promise<void> {
    const a = this.opts.assignment;
    const ringNext = a.hasHead ? a.firstPeerId : a.successorPeerId;
    if (!ringNext || ringNext === this.localId) return;
    this.forwardedErrors.add(requestId);
    try {
      await this.opts.transport.send(ringNext, errorFrame(requestId, 0, err.code, err.message, this.localId));
    } catch {
      // The link itself may be what failed; the other stages then see the closed connection or time out.
    }
  }
}
