/**
 * The page controller's shell: holds the state, passes every event through `reduce` (app-reducer.ts),
 * runs the effects it returns, and turns their results into events again. All decisions live in the
 * reducer; this file only does I/O: the coordinator WebSocket, the profiler, the manifest fetch, the
 * shard cache, the stage (StageController), the browser's storage, history and wake lock.
 *
 *   event --reduce--> state (re-render) + effects --run here--> results --> events
 *
 * The views read `app.state` and send user events with `app.dispatch(...)`.
 */
import { TandemError } from '../../core/errors.ts';
import { parseManifest } from '../../shards/manifest.ts';
import { ShardCache } from '../cache/shard-cache.ts';
import { startDownloadWorker, type WorkerUnitFetcher } from '../cache/worker-unit-fetcher.ts';
import { loadPartsPolicy } from '../profiler/parallel-load.ts';
import { profileDevice } from '../profiler/profile.ts';
import { CoordinatorClient } from '../session/coordinator-client.ts';
import type { Effect } from './app-effects.ts';
import type { AppEvent } from './app-events.ts';
import { reduce } from './app-reducer.ts';
import { HoldPoints } from './hold-points.ts';
import { frameOrTimeout, RenderPacer } from './render-pacer.ts';
import { initialState, snapshotOf, type Assignment, type AppState, type TandemSnapshot } from './app-state.ts';
import { asTandemError } from './reducer-step.ts';
import { AssignmentSignals } from './assignment-signals.ts';
import { FailoverClient } from './failover-client.ts';
import { StageController, type PrepareOptions } from './stage-runner.ts';
import { TimingReporter } from './timing-reporter.ts';
import { TokenReportBatcher } from './token-report-batcher.ts';

export type { GoRequest, PlanRequest } from './app-events.ts';

/** sessionStorage key of the host credentials of this tab's session. */
const HOST_KEY = 'tandem.host';
/** localStorage key of the device name. */
const NAME_KEY = 'tandem.name';
/** A draw waits at most this long (ms) for an animation frame (render-pacer.ts frameOrTimeout). */
const FRAME_FALLBACK_MS = 1000;

function defaultName(): string {
  const ua = navigator.userAgent;
  const kind = /iPhone/.test(ua)
    ? 'iPhone'
    : /iPad/.test(ua)
      ? 'iPad'
      : /Android/.test(ua)
        ? 'Android'
        : /Mac/.test(ua)
          ? 'Mac'
          : /Windows/.test(ua)
            ? 'PC'
            : 'Device';
  return `${kind} ${Math.floor(Math.random() * 900 + 100)}`;
}

function savedHost(): { code: string; hostSecret: string } | null {
  try {
    const saved = JSON.parse(sessionStorage.getItem(HOST_KEY) ?? 'null') as {
      code?: unknown;
      hostSecret?: unknown;
    } | null;
    if (saved && typeof saved.code === 'string' && typeof saved.hostSecret === 'string')
      return { code: saved.code, hostSecret: saved.hostSecret };
  } catch {
    // unreadable storage: join as a peer
  }
  return null;
}

export class App {
  private current: AppState = initialState();
  private readonly listeners = new Set<() => void>();
  private client: CoordinatorClient | null = null;
  private cache: ShardCache | null = null;
  /** downloads, hashes and writes units off the main thread; started with the first manifest */
  private downloads: WorkerUnitFetcher | null | undefined;
  private readonly stage = new StageController();
  private readonly signals = new AssignmentSignals();
  /** the last stage's tokens, batched on their way to the server (token-report-batcher.ts) */
  private readonly tokenReports = new TokenReportBatcher();
  private readonly timingReporter = new TimingReporter(
    (m) => this.client?.send(m),
    (error) => this.dispatch({ type: 'failed', source: 'stage', fallbackCode: 'unexpected', error }),
  );
  /** Failover (issue 13): request heartbeats, link-lost reports, stops for repair, the recovery view. */
  private readonly failover = new FailoverClient({
    send: (m) => {
      if (!this.client) throw new TandemError('server-gone', 'Not connected to the server.');
      this.client.send(m);
    },
    stopRun: (requestId, reason) => this.stage.stopForRepair(requestId, reason),
    nameOf: (peerId) => this.current.roster.find((p) => p.peerId === peerId)?.displayName ?? peerId,
    changed: () => this.dispatch({ type: 'failover-changed', view: this.failover.view }),
  });
  private holdPoints: HoldPoints | null = null;
  private readonly renderPacer = new RenderPacer({
    draw: () => {
      for (const l of this.listeners) l();
    },
    frame: (cb) => {
      if (typeof requestAnimationFrame === 'function' && document.visibilityState === 'visible')
        frameOrTimeout(cb, FRAME_FALLBACK_MS, (f) => requestAnimationFrame(f));
      else setTimeout(cb, 0);
    },
  });
  private wakeListener: (() => void) | null = null;

  /** The current state (immutable: a new object after every change). */
  get state(): AppState {
    return this.current;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The view is drawn at the next animation frame; while this page's stage runs a request, in the ring's
   * gaps instead, and less often as one stage of a ring (render-pacer.ts): `handedOver` says the stage
   * just handed a step's output on.
   */
  changed(handedOver = false): void {
    const s = this.current;
    const stage = s.stage.state !== 'running' ? 'idle' : (s.assignment?.stages.length ?? 1) > 1 ? 'ring' : 'alone';
    this.renderPacer.changed(stage, handedOver);
  }

  /** Fault injection (`?hold=`): where this page's stage holds, and the switch that lets it go on. */
  get holds(): HoldPoints {
    this.holdPoints ??= new HoldPoints(this.current.params?.holdAt ?? []);
    return this.holdPoints;
  }

  /** The plan whose stage this page has built and can start at once (StageController.preparedPlan). */
  preparedPlan(): string | null {
    return this.stage.preparedPlan();
  }

  snapshot(): TandemSnapshot {
    return snapshotOf(this.current);
  }

  dispatch(event: AppEvent): void {
    const { state, effects } = reduce(this.current, event, Date.now());
    const changed = state !== this.current;
    this.current = state;
    for (const effect of effects) this.run(effect);
    if (changed) this.changed(event.type === 'stage-phase' && event.phase === 'egress');
  }

  start(search: string): void {
    this.dispatch({
      type: 'page-opened',
      search,
      secureContext: window.isSecureContext,
      host: location.host,
      storedName: localStorage.getItem(NAME_KEY),
      fallbackName: defaultName(),
      savedHost: savedHost(),
    });
  }

  /** Download the measured profile (and the session's timings) as JSON. */
  profileJson(): string {
    const s = this.current;
    return JSON.stringify(
      { format: 'tandem-profile', version: 1, profile: s.profile, peerId: s.peerId, session: s.code },
      null,
      2,
    );
  }

  sessionJson(): string {
    return JSON.stringify({ format: 'tandem-session-view', snapshot: this.snapshot() }, null, 2);
  }

  // ------------------------------------------------------------------------------------------
  // effects

  private failed(source: string, fallbackCode = 'unexpected', report = false): (error: unknown) => void {
    return (error) => this.dispatch({ type: 'failed', source, fallbackCode, error, ...(report ? { report } : {}) });
  }

  private run(effect: Effect): void {
    const client = this.client;
    switch (effect.type) {
      case 'connect':
        this.connect();
        return;
      case 'send':
        try {
          client?.send(effect.message);
        } catch (error) {
          if (effect.source !== null) this.failed(effect.source)(error);
        }
        return;
      case 'request-create':
        client
          ?.request(effect.message, 'session-created')
          .then((created) => this.dispatch({ type: 'session-created', created }), this.failed('session'));
        return;
      case 'request-join': {
        const t0 = performance.now();
        client?.request(effect.message, 'joined').then((joined) => {
          this.failover.onServerMessage(joined); // the request heartbeat interval
          this.dispatch({ type: 'join-replied', joined, seconds: (performance.now() - t0) / 1000 });
        }, this.failed('session'));
        return;
      }
      case 'request-profile':
        client
          ?.request({ type: 'profile', profile: effect.profile }, 'ack')
          .then(() => this.dispatch({ type: 'profile-acked' }), this.failed('session'));
        return;
      case 'request-plan':
        client
          ?.request(effect.message, 'plan-ready')
          .then((ready) => this.dispatch({ type: 'plan-replied', ready }), this.failed('plan'));
        return;
      case 'request-serve-api':
        client?.request(effect.message, 'api-serving').then(
          (reply) => this.dispatch({ type: 'serve-api-replied', serve: reply.serve }),
          (error: unknown) => this.dispatch({ type: 'serve-api-failed', before: effect.before, error }),
        );
        return;
      case 'report-cache':
        this.reportCache().catch(this.failed('session'));
        return;
      case 'remember-peer':
        client?.rememberPeer(effect.credentials);
        return;
      case 'profile':
        this.profile(effect);
        return;
      case 'load-manifest':
        this.loadManifest(effect).catch((error: unknown) => this.dispatch({ type: 'manifest-failed', error }));
        return;
      case 'warm-up-kernels':
        if (this.current.manifest) this.stage.warmUpKernels(this.current.manifest, effect.params?.backend ?? 'auto');
        return;
      case 'sweep-cache':
        this.cache?.sweep().then(
          () => this.dispatch({ type: 'cache-swept' }),
          (error: unknown) => this.dispatch({ type: 'manifest-failed', error }),
        );
        return;
      case 'clear-cache':
        // the prepared stage keeps its unit files open (and so locked against removal) until it is dropped;
        // without its units it could not load anyway
        this.stage
          .release()
          .catch(() => undefined)
          .then(() => this.cache?.clearPackage())
          .then(() => this.dispatch({ type: 'cache-cleared' }), this.failed('cache'));
        return;
      case 'download-units':
        this.download(effect.seq, effect.units);
        return;
      case 'connect-transport':
        this.stage
          .connect(effect.peerId, effect.peerjs, this.current.params?.ring ?? 'worker')
          .catch(this.failed('transport', 'signaling-unavailable', true));
        return;
      case 'prepare-stage': {
        const opts = this.stageOptions(effect.seq, effect.assignment);
        if (!opts) return;
        const { seq } = effect;
        const ready = effect.load
          ? this.stage.load(opts).then((ms) =>
              this.dispatch({
                type: 'stage-loaded',
                seq,
                storageReadSeconds: ms.storageReadMs / 1000,
                sessionCreateSeconds: ms.sessionCreateMs / 1000,
              }),
            )
          : this.stage.prepare(opts);
        ready.catch((error: unknown) => {
          if (!opts.signal.aborted) this.dispatch({ type: 'stage-prepare-failed', seq, error });
        });
        return;
      }
      case 'run-stage':
        this.runStage(effect);
        return;
      case 'cancel-stage':
        this.stage.cancel(effect.requestId, effect.reason);
        return;
      case 'abort-assignment':
        this.signals.abort(effect.seq);
        return;
      case 'close-stage':
        this.stage.close();
        return;
      case 'report-timing':
        this.timingReporter.add(effect.requestId, effect.entry);
        return;
      case 'flush-timings':
        this.timingReporter.flush();
        return;
      case 'save-name':
        localStorage.setItem(NAME_KEY, effect.name);
        return;
      case 'save-host':
        sessionStorage.setItem(HOST_KEY, JSON.stringify({ code: effect.code, hostSecret: effect.hostSecret }));
        return;
      case 'show-joined-url': {
        const q = new URLSearchParams(location.search);
        q.delete('host');
        q.set('join', effect.code);
        history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
        return;
      }
      case 'keep-awake':
        void this.keepAwake();
        return;
      case 'log':
        console.warn(effect.text);
        return;
    }
  }

  private connect(): void {
    if (this.client) return;
    const t0 = performance.now();
    const client = new CoordinatorClient(CoordinatorClient.urlFor(location));
    this.client = client;
    client.onState((state, detail) => {
      if (state !== 'open' && state !== 'connecting') console.warn(`[tandem] server connection: ${state} (${detail})`);
      this.dispatch({ type: 'connection-changed', state, detail });
    });
    client.onMessage((message) => {
      // failover first: a stage-lost stops the run, and a continuation's start is known as the user's
      // request, before the reducer sees the message
      this.failover.onServerMessage(message);
      if (message.type === 'repair') this.stage.expectRepair(message.planId); // its assignments may re-link
      if (message.type === 'start' && this.current.assignment?.planId === message.planId)
        this.failover.onRunStarted(message.requestId); // beat at the request's pace, downloads included
      this.dispatch({ type: 'server', message });
    });
    client.connect().then(
      () => this.dispatch({ type: 'connected', seconds: (performance.now() - t0) / 1000 }),
      (error: unknown) => this.dispatch({ type: 'connect-failed', error }),
    );
  }

  private profile(effect: Extract<Effect, { type: 'profile' }>): void {
    const t0 = performance.now();
    profileDevice({
      name: effect.name,
      backend: effect.params?.backend ?? 'auto',
      emulation: effect.params?.emulation ?? null,
      origin: location.origin,
      onProgress: (progress) => this.dispatch({ type: 'profile-progress', progress }),
    }).then(
      (result) => this.dispatch({ type: 'profile-finished', result, seconds: (performance.now() - t0) / 1000 }),
      (error: unknown) => this.dispatch({ type: 'profile-failed', error }),
    );
  }

  private async loadManifest(effect: Extract<Effect, { type: 'load-manifest' }>): Promise<void> {
    const { model } = effect;
    const t0 = performance.now();
    const res = await fetch(model.manifestUrl, { cache: 'no-store' });
    if (!res.ok)
      throw new TandemError(
        'manifest-unavailable',
        `The server answered HTTP ${res.status} for ${model.manifestUrl}; it has no model package '${model.name}'.`,
      );
    const manifest = parseManifest(await res.json());
    if (this.downloads === undefined) this.downloads = startDownloadWorker();
    this.cache = new ShardCache(manifest, {
      baseUrl: ShardCache.baseUrlOf(model.manifestUrl),
      emulation: effect.params?.emulation ?? null,
      ...(this.downloads ? { fetchUnit: this.downloads.fetch } : {}),
    });
    this.dispatch({ type: 'manifest-loaded', manifest, seconds: (performance.now() - t0) / 1000 });
  }

  /** Lists what the cache holds, shows it, and tells the server (cache-status). */
  private async reportCache(): Promise<void> {
    const cache = this.cache;
    const client = this.client;
    if (!cache || !client) return;
    const units = await cache.cachedUnitIds();
    this.dispatch({ type: 'cache-listed', units });
    await client.request({ type: 'cache-status', units }, 'ack');
  }

  private download(seq: number, units: readonly string[]): void {
    const cache = this.cache;
    if (!cache) return;
    const signal = this.signals.signalFor(seq);
    const t0 = performance.now();
    let unitId: string | null = null;
    cache
      .ensure(
        units,
        (progress) => {
          if (signal.aborted) return;
          unitId = progress.unitId ?? unitId;
          this.dispatch({ type: 'download-progress', seq, progress });
        },
        signal,
      )
      .then(
        (result) => {
          if (!signal.aborted)
            this.dispatch({ type: 'download-finished', seq, result, seconds: (performance.now() - t0) / 1000 });
        },
        (error: unknown) => {
          if (!signal.aborted) this.dispatch({ type: 'download-failed', seq, error, unitId });
        },
      );
  }

  private stageOptions(seq: number, assignment: Assignment): PrepareOptions | null {
    const manifest = this.current.manifest;
    const cache = this.cache;
    if (!manifest || !cache) return null;
    const params = this.current.params;
    return {
      assignment,
      manifest,
      backend: params?.backend ?? 'auto',
      emulation: params?.emulation ?? null,
      signal: this.signals.signalFor(seq),
      ...(params?.holdAt ? { beforeStep: (generated: number) => this.holds.wait(generated) } : {}),
      originOf: (serverTimeMs: number) => this.client?.serverClock.originOf(serverTimeMs) ?? null,
      unitStore: cache.workerLookup,
      loadParts: loadPartsPolicy(params?.parts ?? 'auto', this.current.profile?.details.load.parallel),
      readUnit: async (unitId: string) => {
        const r = await cache.readUnitData(unitId);
        this.dispatch({
          type: 'unit-read',
          seq,
          read: { unitId, readSeconds: r.readSeconds, verifySeconds: r.verifySeconds },
        });
        return r.data;
      },
      hooks: {
        onBackend: (backend, why, place) => this.dispatch({ type: 'stage-backend', seq, backend, why, place }),
        onPhase: (requestId, p) => this.dispatch({ type: 'stage-phase', seq, requestId, ...p }),
        onTokens: (requestId, report) =>
          this.tokenReports.push(requestId, report, (batch) =>
            this.dispatch({ type: 'stage-tokens', seq, requestId, report: batch }),
          ),
        onLinkLost: (peerId, requestId) => this.failover.onLinkLost(peerId, requestId),
        onClock: (requestId, boundMs) => this.timingReporter.setClock(requestId, boundMs),
      },
    };
  }

  private runStage(effect: Extract<Effect, { type: 'run-stage' }>): void {
    const { seq, start, startedAtMs } = effect;
    const seconds = () => (Date.now() - startedAtMs) / 1000;
    const opts = this.stageOptions(seq, effect.assignment);
    if (!opts) {
      const error = new TandemError('stage-not-ready', 'The shard cache is not open; reload the page and re-join.');
      this.dispatch({ type: 'stage-failed', seq, requestId: start.requestId, error, seconds: seconds() });
      return;
    }
    const requestId = start.requestId;
    this.stage.run(start, opts).then(
      () => {
        this.tokenReports.flush(requestId);
        this.failover.onRunFinished(requestId);
        this.dispatch({ type: 'stage-finished', seq, requestId, seconds: seconds() });
      },
      (error: unknown) => {
        this.tokenReports.flush(requestId); // the tokens made before the failure still count
        const failed = () => this.dispatch({ type: 'stage-failed', seq, requestId, error, seconds: seconds() });
        if (this.current.cancelled.has(requestId)) {
          failed(); // the reducer shows a cancelled request as done
          return;
        }
        // a lost stage is repaired by the coordinator; a link failure waits a while for its verdict
        const outcome = this.failover.onRunFailed(requestId, asTandemError(error, 'stage-failed'), failed);
        if (outcome === 'report') failed();
        else
          this.dispatch({
            type: 'stage-stopped',
            seq,
            requestId,
            detail: outcome === 'repair' ? 'stopped for repair' : 'a neighbour vanished: waiting',
            seconds: seconds(),
          });
      },
    );
  }

  /**
   * Keeps a phone's screen on while it is in a session (Screen Wake Lock): a sleeping phone stops its
   * heartbeats and drops out of the pipeline. Re-acquired when the tab becomes visible again.
   */
  private async keepAwake(): Promise<void> {
    // not every browser has the Screen Wake Lock API, whatever lib.dom says
    const wl = (navigator as Partial<Pick<Navigator, 'wakeLock'>>).wakeLock;
    if (!wl) return;
    const acquire = () =>
      wl.request('screen').catch((e: unknown) => console.info(`[tandem] no screen wake lock: ${String(e)}`));
    await acquire();
    if (!this.wakeListener) {
      this.wakeListener = () => {
        if (document.visibilityState === 'visible' && this.current.peerId) void acquire();
      };
      document.addEventListener('visibilitychange', this.wakeListener);
    }
  }
}
