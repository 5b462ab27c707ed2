/**
 * The seam between the page controller and the client runtime (client/runtime/, owned by the
 * client-runtime engineer): keeps this page's PeerJS transport (opened right after joining, so the
 * peer id is registered long before "go"), builds a stage on every assignment (backend choice,
 * tokenizer for the first and last stage), and runs it on `start`, passing phases and tokens out. The
 * stage runs in the page's inference worker with its frame links (client/runtime/worker-stage.ts) where
 * the browser can move data channels there, else as a StagePeer on this thread (?ring=main forces it).
 * Each assignment brings its hooks and its AbortSignal: when the signal fires (a new plan, leaving),
 * that assignment's StagePeer stops any request it runs and is disposed, unless the next assignment
 * keeps its layers (failover's repaired plans): then it is re-linked to its new neighbours.
 *
 * The runtime (onnxruntime-web, transformers.js, PeerJS) is imported lazily: the page shows and
 * profiles at once, and the large modules load while the user reads the join code.
 */
import type { RequestOrigin } from '../../core/clock-offset.ts';
import { TandemError } from '../../core/errors.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import type { ServerMessageOf, TimingPhase } from '../../core/protocol.ts';
import type { PipelineTransport } from '../../core/transport/transport.ts';
import type { Emulation } from '../profiler/emulation.ts';
import { emulatedRuntime } from '../runtime/emulated-runtime.ts';
import type { StageHandle, WorkerStages } from '../runtime/worker-stage.ts';
import type { RingPlace } from './url-params.ts';
import type { PromptTokenizer } from '../runtime/tokenizer.ts';
import type { TokenText } from '../runtime/token-text.ts';
import type { ExecutionBackend, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';
import type { LoadPartsPolicy } from '../../shards/runtime/stage-parts.ts';
import type { UnitStoreLocation } from '../cache/committed-unit.ts';
import type { PhaseEvent, TokenEvent } from '../../shards/runtime/stage-peer.ts';

export interface PhaseRecord {
  phase: TimingPhase;
  step: number;
  /** ms from this page's run() of the request */
  startMs: number;
  endMs: number;
  /** the step ran before the request's cancel reached the stage, and was reported after it (worker batches) */
  beforeCancel?: boolean;
  /** 'session-create': how many sessions the stage was opened as */
  parts?: number;
}

export interface TokenReport {
  tokenIds: number[];
  text: string;
  /** tokens generated so far, this one included */
  generated: number;
  done: boolean;
  finishReason?: 'eos' | 'max-tokens' | 'error';
}

export interface StageHooks {
  onPhase: (requestId: number, p: PhaseRecord) => void;
  onTokens: (requestId: number, r: TokenReport) => void;
  /** the stage's backend, why, and where the stage runs (in the inference worker, or on this thread) */
  onBackend: (backend: 'webgpu' | 'wasm', why: string, place: 'worker' | 'main') => void;
  /** the kernel warm-up (prefill + decode of one layer) finished: seconds, session runs */
  onWarmUp?: (seconds: number, runs: number) => void;
  /** failover: a ring neighbour's link closed while `requestId` ran here */
  onLinkLost?: (peerId: string, requestId: number) => void;
  /** failover: a repaired plan's assignment kept this stage; it re-linked without a new session */
  onRelinked?: (planId: string) => void;
  /**
   * `requestId`'s phases count from the server's send of its start, on this page's clock to within
   * `boundMs`, or (null) from the run's own start
   */
  onClock?: (requestId: number, boundMs: number | null) => void;
}

export interface PrepareOptions {
  assignment: ServerMessageOf<'assignment'>;
  manifest: ModelManifest;
  backend: 'auto' | 'webgpu' | 'wasm';
  /** ?emulate=: its compute slow-down stretches every session run */
  emulation: Emulation | null;
  /** a unit's OPFS file or Blob (read by the inference worker) or bytes */
  readUnit: (unitId: string) => Promise<UnitData>;
  /** where the inference worker may look committed units up itself, without asking readUnit */
  unitStore?: UnitStoreLocation | null;
  /** load the stage in parts (the profile found that this device reads and creates at once); null: one session */
  loadParts?: LoadPartsPolicy | null;
  /** where this assignment's phases, tokens and backend choice go */
  hooks: StageHooks;
  /** fires when the assignment ends: its StagePeer is disposed */
  signal: AbortSignal;
  /** fault injection (?hold=): awaited before each step with the tokens generated so far */
  beforeStep?: (generated: number) => Promise<void>;
  /**
   * The origin on this page's performance.now() of a request the server started at a server time (its
   * heartbeat clock offset, core/clock-offset.ts); null while unknown. The stage times a request's phases
   * from the server's send of its start.
   */
  originOf?: (serverTimeMs: number) => RequestOrigin | null;
}

/** The request's origin on this page's clock: when the server sent its start, where the offset is known. */
function originOf(start: ServerMessageOf<'start'>, opts: PrepareOptions): { originMs?: number } {
  const origin = opts.originOf?.(start.serverTimeMs) ?? null;
  opts.hooks.onClock?.(start.requestId, origin?.boundMs ?? null);
  return origin ? { originMs: origin.originMs } : {};
}

/** How long the stage of an ended assignment waits for a repaired plan that keeps its layers. */
const RETIRED_STAGE_MS = 30_000;

function abortedError(signal: AbortSignal): TandemError {
  return signal.reason instanceof TandemError
    ? signal.reason
    : new TandemError('assignment-aborted', 'This assignment was replaced before its stage was ready.');
}

function pageEndpoint(): { host: string; port: number; secure: boolean } {
  const secure = location.protocol === 'https:';
  return { host: location.hostname, port: Number(location.port) || (secure ? 443 : 80), secure };
}

export class StageController {
  private transport: PipelineTransport | null = null;
  private transportFor: string | null = null;
  private runtime: StageRuntime | null = null;
  private tokenizer: PromptTokenizer | null = null;
  /** The last stage's token text (a byte-level table, or the full tokenizer where that does not apply). */
  private tokenText: { packageName: string; text: TokenText } | null = null;
  /** The package's byte-level token table, loading or loaded (null: not byte-level): see tokenTable(). */
  private tokenTableLoad: { packageName: string; table: Promise<TokenText | null> } | null = null;
  /**
   * Where the stage and its frame links run: the inference worker (its frames never wake this thread),
   * where the browser can transfer data channels and ?ring=main does not say otherwise; else here.
   */
  private workerStages: WorkerStages | null = null;
  private peer: StageHandle | null = null;
  private prepared: Promise<StageHandle> | null = null;
  private preparedPlanId: string | null = null;
  /** The plan whose stage is built and ready for its start (token text loaded on a last stage), null when none. */
  private readyPlanId: string | null = null;
  /** The repaired plan announced by the coordinator's `repair` (failover): its assignments may re-link. */
  private repairPlanId: string | null = null;
  /** Where the current stage's phases and tokens go: the hooks of the assignment it now serves. */
  private hooks: StageHooks | null = null;
  /** The stage of an ended assignment, kept a while for a repaired plan that keeps its layers. */
  private retired: { peer: StageHandle; timer: ReturnType<typeof setTimeout> } | null = null;
  /** The request running on this page's stage (a cancelled one may still be stopping). */
  private running: Promise<void> = Promise.resolve();
  /** Requests the coordinator cancelled (one may be cancelled while it waits for the previous one). */
  private readonly cancelled = new Set<number>();
  /** the kernel warm-up of this page, awaited before a request runs */
  private warmUp: Promise<void> = Promise.resolve();
  /** paths warmed ('package:backend:layers|embed|head'): each once per page */
  private readonly warmed = new Set<string>();
  /** warm-ups queued or running on the inference worker (warmPaths, rehearse) */
  private warmUpsPending = 0;
  /** the plan of the latest run() call: a rehearsal of its stage still queued then is dropped */
  private lastRunPlanId: string | null = null;
  /** stage shapes whose creation this page rehearsed (rehearse) */
  private readonly rehearsed = new Set<string>();
  /** failover: requests the coordinator declared broken (stage-lost); they do not start here any more */
  private readonly lost = new Set<number>();

  /** Registers this page's peer id with the PeerJS server on the access point, with its token from `joined` (idempotent). */
  async connect(peerId: string, peerjs: { path: string; token: string }, ring: RingPlace = 'worker'): Promise<void> {
    if (this.transportFor === peerId) return;
    if (this.transportFor)
      console.warn(`[tandem] transport: ${this.transportFor} is now ${peerId}: the old links close`);
    this.transport?.close();
    this.transport = null;
    this.workerStages?.close();
    this.workerStages = null;
    this.transportFor = null;
    const options = { peerId, path: peerjs.path, token: peerjs.token, ...pageEndpoint() };
    const { canTransferDataChannels } = await import('../runtime/worker-stage.ts');
    if (ring === 'worker' && canTransferDataChannels()) {
      const { browserWorkerStages } = await import('../runtime/browser-runtime.ts');
      const stages = browserWorkerStages();
      await stages.connect(options);
      this.workerStages = stages;
      console.info('[tandem] stage: runs in the inference worker, frames on worker-owned data channels');
    } else {
      const { createPeerJsTransport } = await import('../transport/peerjs-transport.ts');
      this.transport = await createPeerJsTransport(options);
      console.info(`[tandem] stage: runs on the main thread${ring === 'main' ? ' (?ring=main)' : ''}`);
    }
    this.transportFor = peerId;
  }

  /**
   * The plan whose stage this page has built (its StagePeer, and a last stage's token text, built in a
   * worker) and whose warm-ups (kernels, the stage's creation rehearsal, its unit files opened) are over,
   * null before: a start that arrives earlier waits for the warm-ups and its first phase (its clock may
   * start late), and its reads for the files still opening.
   */
  preparedPlan(): string | null {
    return this.warmUpsPending === 0 ? this.readyPlanId : null;
  }

  /**
   * Warms every kernel path of `manifest` (layers, embedding, head) in the background, once per page: the
   * page calls it at join, when its profile is done, so that the first request after a plan does not wait
   * for the warm-up (it did: ~1 s on an unthrottled page, several on a 0.4-core lab device, shown as the
   * request's 'warm-up' phase and missing from the prediction). A later assignment then warms nothing.
   */
  warmUpKernels(manifest: ModelManifest, backend: 'auto' | 'webgpu' | 'wasm'): void {
    // any page may be a plan's last stage: its token table is built now too, in its worker
    this.tokenTable(manifest.name).catch(() => undefined); // a failure is retried by the stage that needs it
    const warming = (async () => {
      const { chooseBackend } = await import('../runtime/ort-web.ts');
      const choice = await chooseBackend(manifest.dtype, backend === 'auto' ? undefined : backend, false);
      this.warmPaths(manifest, choice.backend, ['layers', 'embed', 'head']);
    })();
    warming.catch(() => undefined); // a failure only costs the first request its warm-up
  }

  /** Starts the warm-up of those of `paths` this page has not warmed on `backend` (this.warmUp follows it). */
  private warmPaths(
    manifest: ModelManifest,
    backend: ExecutionBackend,
    paths: readonly ('layers' | 'embed' | 'head')[],
    onWarmUp?: (seconds: number, runs: number) => void,
  ): void {
    const pathKey = (path: string) => `${manifest.name}:${backend}:${path}`;
    const unwarmed = paths.filter((path) => !this.warmed.has(pathKey(path)));
    if (unwarmed.length === 0) return;
    for (const path of unwarmed) this.warmed.add(pathKey(path));
    // in the background, while the units download; a failure only costs the request the warm-up
    // on the plain runtime: the emulated one would stretch the warm-up runs too
    // WebGPU needs each shader compiled once (no tier-up): a short prefill and two decode steps do it. It
    // keeps three creations: each one uploads the weights, and the twelve were measured on wasm only
    const shape = {
      embeds: unwarmed.includes('embed'),
      hasHead: unwarmed.includes('head'),
      ...(backend === 'webgpu' ? { prefillTokens: 16, decodeSteps: 2, sequences: 1, creations: 3 } : {}),
    };
    const previous = this.warmUp;
    this.warmUpsPending++;
    this.warmUp = (async () => {
      await previous; // one warm-up at a time: the worker runs one call at a time anyway
      const [{ warmUpStageKernels }, { createBrowserRuntime }] = await Promise.all([
        import('../runtime/stage-warmup.ts'),
        import('../runtime/browser-runtime.ts'),
      ]);
      const r = await warmUpStageKernels(createBrowserRuntime(), manifest, backend, shape);
      onWarmUp?.(r.seconds, r.runs);
    })()
      .catch(() => undefined)
      .finally(() => this.warmUpsPending--);
  }

  /**
   * Creates the assigned stage's session once from zero weights, after the kernel warm-up and before the
   * request (stage-warmup.ts rehearseStageCreation; this.warmUp follows it), once per stage shape per page.
   * On wasm only: there a page's first creation of a size pays its memory growth and ORT's tier-up; on
   * WebGPU it would upload the stage's bytes twice.
   */
  private rehearse(manifest: ModelManifest, backend: ExecutionBackend, a: ServerMessageOf<'assignment'>): void {
    // a repair's request, or a start that came before the rehearsal began (Go right after the plan), is
    // waiting already: its own creation comes first, and creating the stage twice would only delay it
    const started = () => a.planId === this.repairPlanId || a.planId === this.lastRunPlanId;
    if (backend !== 'wasm' || started()) return;
    const key = rehearsalKey(manifest, a);
    if (this.rehearsed.has(key)) return;
    this.rehearsed.add(key);
    const previous = this.warmUp;
    this.warmUpsPending++;
    this.warmUp = (async () => {
      await previous;
      if (started()) return; // a start came while it waited
      const [{ rehearseStageCreation }, { createBrowserRuntime }] = await Promise.all([
        import('../runtime/stage-warmup.ts'),
        import('../runtime/browser-runtime.ts'),
      ]);
      const t0 = performance.now();
      await rehearseStageCreation(createBrowserRuntime(), manifest, backend, {
        layers: a.layers,
        embeds: a.embeds,
        hasHead: a.hasHead,
      });
      console.info(`[tandem] stage: rehearsed the creation of ${key} in ${Math.round(performance.now() - t0)} ms`);
    })()
      .catch(() => undefined) // a failure only leaves the request its first creation
      .finally(() => this.warmUpsPending--);
  }

  /**
   * The package's byte-level token table, built once per page in a worker (token-text.ts), from join on
   * (warmUpKernels): a last stage's build waits for it, and when the table was first asked for at the
   * assignment, a Go that followed the plan within seconds began that stage's load 2.1-2.5 s late (e2e,
   * tiny model, every stage's units already stored). A failed load is forgotten, so the next ask retries.
   */
  private tokenTable(packageName: string): Promise<TokenText | null> {
    if (this.tokenTableLoad?.packageName !== packageName) {
      const table = import('../runtime/token-text.ts').then(({ loadTokenText }) =>
        loadTokenText({ modelRoot: '/models/', packageName }),
      );
      const load = { packageName, table };
      this.tokenTableLoad = load;
      table.catch(() => {
        if (this.tokenTableLoad === load) this.tokenTableLoad = null;
      });
    }
    return this.tokenTableLoad.table;
  }

  /** Builds the StagePeer for a new assignment (before "go", so no early frame is missed). */
  prepare(opts: PrepareOptions): Promise<StageHandle> {
    if (opts.signal.aborted) return Promise.reject(abortedError(opts.signal));
    if (this.preparedPlanId === opts.assignment.planId && this.prepared) return this.prepared;
    // failover (issue 13): a repaired plan that kept this stage's layers re-links it, session and all
    const kept = opts.assignment.planId === this.repairPlanId ? (this.peer ?? this.retired?.peer ?? null) : null;
    if (kept?.sameStage(opts.assignment)) {
      this.reclaim(kept);
      this.hooks = opts.hooks;
      this.preparedPlanId = opts.assignment.planId;
      const relinked = this.running.then(async () => {
        await kept.relink(opts.assignment);
        this.readyPlanId = opts.assignment.planId;
        opts.hooks.onRelinked?.(opts.assignment.planId);
        return kept;
      });
      this.prepared = relinked;
      opts.signal.addEventListener('abort', () => this.retire(relinked), { once: true });
      relinked.catch(() => {
        if (this.prepared !== relinked) return;
        this.prepared = null;
        this.preparedPlanId = null;
      });
      return relinked;
    }
    this.disposeRetired();
    const old = this.peer;
    this.peer = null;
    this.preparedPlanId = opts.assignment.planId;
    const hooks = opts.hooks;
    this.hooks = hooks;
    const prepared = (async () => {
      await old?.dispose();
      if (!this.transport && !this.workerStages)
        throw new TandemError(
          'transport-missing',
          'This page is not registered with the signaling server (PeerJS) yet; re-join the session.',
        );
      const [{ StagePeer }, { chooseBackend }, { createBrowserRuntime }] = await Promise.all([
        import('../../shards/runtime/stage-peer.ts'),
        import('../runtime/ort-web.ts'),
        import('../runtime/browser-runtime.ts'),
      ]);
      // the inference worker pins its own WebGPU device: none is needed on the main thread
      const choice = await chooseBackend(
        opts.manifest.dtype,
        opts.backend === 'auto' ? undefined : opts.backend,
        false,
      );
      hooks.onBackend(choice.backend, choice.reason, this.workerStages ? 'worker' : 'main');
      const a = opts.assignment;
      // the first and last stages run the embedding's and head's kernels too: a page warms each path once
      // (usually all of them at join already: warmUpKernels)
      this.warmPaths(
        opts.manifest,
        choice.backend,
        ['layers', ...(a.embeds ? ['embed' as const] : []), ...(a.hasHead ? ['head' as const] : [])],
        hooks.onWarmUp,
      );
      this.rehearse(opts.manifest, choice.backend, a);
      // transformers.js' tokenizer load is one long main-thread task (~2 s on a laptop core; many seconds
      // on a slow phone, which then sends no heartbeat): a first stage loads it only when a start comes
      // without the server's prompt ids; the last stage decodes token text over a table a worker builds
      const loadTokenizer = async (): Promise<PromptTokenizer> => {
        const { loadPackageTokenizer } = await import('../runtime/tokenizer.ts');
        // a same-origin PATH, not a full URL: transformers.js treats an http(s) URL as remote, and remote
        // loading is off (nothing may download at run time)
        this.tokenizer ??= await loadPackageTokenizer({ modelRoot: '/models/', packageName: opts.manifest.name });
        return this.tokenizer;
      };
      if (a.hasHead && this.tokenText?.packageName !== opts.manifest.name) {
        const packageName = opts.manifest.name;
        const text = (await this.tokenTable(packageName)) ?? (await loadTokenizer());
        this.tokenText = { packageName, text };
      }
      let generated = 0;
      const common = {
        manifest: opts.manifest,
        assignment: a,
        backend: choice.backend,
        ...(opts.loadParts ? { loadParts: opts.loadParts } : {}),
        readUnit: opts.readUnit,
        onPhase: (e: PhaseEvent, beforeCancel = false) =>
          this.hooks?.onPhase(e.requestId, {
            phase: e.phase,
            step: e.step,
            startMs: e.startMs,
            endMs: e.endMs,
            ...(beforeCancel ? { beforeCancel } : {}),
            ...(e.parts !== undefined ? { parts: e.parts } : {}),
          }),
        onLinkLost: (peerId: string, requestId: number) => this.hooks?.onLinkLost?.(peerId, requestId),
        beforeStep: opts.beforeStep,
        onDropped: (kind: string, requestId: number, from: string) =>
          console.info(`[tandem] stage: ignored a '${kind}' frame of request ${requestId} from ${from}`),
        onToken: (e: TokenEvent) => {
          generated = e.index + 1;
          this.hooks?.onTokens(e.requestId, {
            tokenIds: [e.tokenId],
            text: e.text,
            generated,
            done: e.done,
            ...(e.finishReason ? { finishReason: e.finishReason } : {}),
          });
        },
      };
      const peer: StageHandle = this.workerStages
        ? await this.workerStages.create({
            ...common,
            emulation: opts.emulation,
            unitStore: opts.unitStore ?? null,
            loadTokenizer: a.embeds ? loadTokenizer : undefined,
            tokenText: a.hasHead ? this.tokenText?.text : undefined,
          })
        : new StagePeer({
            ...common,
            transport: this.transport!,
            runtime: (this.runtime ??= emulatedRuntime(createBrowserRuntime(), opts.emulation)),
            tokenizer: this.tokenizer ?? undefined,
            tokenText: a.hasHead ? this.tokenText?.text : undefined,
            loadTokenizer: a.embeds ? loadTokenizer : undefined,
          });
      if (opts.signal.aborted) {
        await peer.dispose();
        throw abortedError(opts.signal);
      }
      this.peer = peer;
      this.readyPlanId = a.planId;
      opts.signal.addEventListener('abort', () => this.retire(prepared), { once: true });
      // the units are stored (a page prepares its stage once its downloads are done): their files are
      // opened now, so that the request's cold start reads bytes and makes no round trips; the page is
      // prepared (preparedPlan) once they are open. A start that comes first does not wait for it: its
      // reads wait for the files still opening
      this.warmUpsPending++;
      peer
        .prepareLoad()
        .then(
          (n) => n > 0 && console.info(`[tandem] stage: ${n} unit files kept open for the cold start`),
          () => undefined,
        )
        .finally(() => this.warmUpsPending--);
      return peer;
    })();
    this.prepared = prepared;
    // a failed preparation may be retried by the next assignment or start
    prepared.catch(() => {
      if (this.prepared !== prepared) return;
      this.prepared = null;
      this.preparedPlanId = null;
    });
    return prepared;
  }

  /**
   * The assignment that built `prepared` ended (a new plan, leaving): its stage is disposed. During a
   * failover (a `repair` was announced) it is kept aside instead: the repaired plan's assignment arrives
   * after the old one ends and, when it keeps this stage's layers, re-links it (no storage read, no
   * session create). Anything else, or RETIRED_STAGE_MS without a new assignment, disposes it.
   */
  private retire(prepared: Promise<StageHandle>): void {
    if (this.prepared !== prepared) return;
    const peer = this.peer;
    this.peer = null;
    this.prepared = null;
    this.preparedPlanId = null;
    this.hooks = null;
    if (!peer) return;
    this.disposeRetired();
    if (this.repairPlanId === null) {
      void peer.dispose(); // an ordinary new plan: nothing will re-link it
      return;
    }
    peer.abort('the plan changed');
    this.retired = { peer, timer: setTimeout(() => this.disposeRetired(), RETIRED_STAGE_MS) };
  }

  /** Failover: the coordinator announced repaired plan `planId`; the assignment ending next is kept aside. */
  expectRepair(planId: string): void {
    this.repairPlanId = planId;
  }

  private reclaim(peer: StageHandle): void {
    if (this.retired?.peer !== peer) return;
    clearTimeout(this.retired.timer);
    this.retired = null;
    this.peer = peer;
  }

  private disposeRetired(): void {
    const retired = this.retired;
    if (!retired) return;
    this.retired = null;
    clearTimeout(retired.timer);
    void retired.peer.dispose();
  }

  /**
   * Warm mode (?warm=1): builds the stage for the assignment and loads it now (reads its units, creates
   * its session), so that a request finds it loaded. Returns the two phases' durations, ms.
   */
  async load(opts: PrepareOptions): Promise<{ storageReadMs: number; sessionCreateMs: number }> {
    this.rehearsed.add(rehearsalKey(opts.manifest, opts.assignment)); // it creates the real session now
    const peer = await this.prepare(opts);
    return peer.load();
  }

  /** Runs the request on this page's stage; resolves at EOS / max tokens, rejects with a TandemError. */
  async run(start: ServerMessageOf<'start'>, opts: PrepareOptions): Promise<void> {
    this.lastRunPlanId = opts.assignment.planId;
    const peer = await this.prepare(opts);
    // The server starts the next queued request as soon as it cancels one: let the old one stop first.
    const previous = this.running;
    // The inference worker runs one call at a time: the kernel warm-up finishes first.
    const run = Promise.all([previous, this.warmUp]).then(() => {
      if (this.cancelled.has(start.requestId))
        throw new TandemError('request-cancelled', `Request ${start.requestId} was cancelled before it started here.`);
      if (this.lost.has(start.requestId))
        throw new TandemError('stage-lost', `Request ${start.requestId} lost a stage before it started here.`);
      return peer.run({
        requestId: start.requestId,
        prompt: start.prompt,
        maxNewTokens: start.maxNewTokens,
        sampling: start.sampling,
        ...(start.promptTokenIds ? { promptTokenIds: start.promptTokenIds } : {}),
        ...(start.resume ? { resume: start.resume } : {}),
        ...originOf(start, opts),
      });
    });
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    await run;
  }

  /** The coordinator cancelled a request: stop it on this stage (no-op when it is not running here). */
  cancel(requestId: number, reason: string): void {
    this.cancelled.add(requestId);
    this.peer?.cancel(requestId, reason);
  }

  /**
   * Failover: a stage of `requestId` was lost. The run stops at once (run() rejects with 'stage-lost');
   * the StagePeer and its warm session stay for the repaired plan.
   */
  stopForRepair(requestId: number, reason: string): void {
    this.lost.add(requestId);
    this.peer?.stopForRepair(requestId, reason);
  }

  /** Drops the stage (new plan without this page, session ended); the transport stays. */
  async release(): Promise<void> {
    this.disposeRetired();
    const peer = this.peer;
    this.peer = null;
    this.prepared = null;
    this.preparedPlanId = null;
    await peer?.dispose();
  }

  close(): void {
    void this.release();
    this.transport?.close();
    this.transport = null;
    this.workerStages?.close();
    this.workerStages = null;
    this.transportFor = null;
  }
}

/** One stage shape of one package: what a creation rehearsal covers. */
function rehearsalKey(manifest: ModelManifest, a: ServerMessageOf<'assignment'>): string {
  return `${manifest.name}:${a.layers.start}-${a.layers.end}:${a.embeds}:${a.hasHead}`;
}
