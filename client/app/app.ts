/**
 * The page controller: owns the state (app-state.ts), talks to the coordinator, runs the profiler,
 * the shard cache and the stage, and tells the view to re-render. Flow:
 *
 *   load      parse URL params; profile the device at once (seconds); connect the WebSocket
 *   create    (host) create-session, then join it as a peer too (the host's device can take layers)
 *   join      join {code}; send the profile as soon as it exists; fetch + validate the manifest;
 *             report what the cache already holds (cache-status)
 *   assign    fetch only the missing units (verified), report cache-status again
 *   start     run the stage (client/runtime StagePeer) at once; report phases and tokens
 *
 * Every failure becomes a banner with its code and, when it concerns the session, a report-error.
 */
import { TandemError } from '../../core/errors.ts';
import { parseManifest, type ModelManifest } from '../../shards/manifest.ts';
import type { Sampling, ServerMessage, ServerMessageOf, TimingEntry } from '../../core/protocol.ts';
import { ShardCache } from '../cache/shard-cache.ts';
import { profileDevice } from '../profiler/profile.ts';
import { CoordinatorClient } from '../session/coordinator-client.ts';
import { initialState, snapshotOf, type AppState, type PageError, type TandemSnapshot } from './app-state.ts';
import { normaliseJoinCode, normaliseName, parsePageParams } from './url-params.ts';
import { StageController } from './stage-runner.ts';
import { mergeTimings } from './timings.ts';
import { TimingReporter } from './timing-reporter.ts';
import { FailoverClient } from './failover-client.ts';

export interface PlanRequest {
  tokens: number;
  method: 'dp' | 'even' | 'heuristic' | 'single';
}

export interface GoRequest {
  prompt: string;
  maxNewTokens: number;
  sampling: Sampling;
}

function asTandemError(e: unknown, fallbackCode: string): TandemError {
  if (e instanceof TandemError) return e;
  return new TandemError(fallbackCode, e instanceof Error ? e.message : String(e), { cause: e });
}

/** sessionStorage key of the host credentials of this tab's session. */
const HOST_KEY = 'tandem.host';

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

export class App {
  readonly state: AppState = initialState();
  private readonly listeners = new Set<() => void>();
  private client: CoordinatorClient | null = null;
  private hostSecret: string | null = null;
  private manifest: ModelManifest | null = null;
  private cache: ShardCache | null = null;
  private readonly stage = new StageController({
    onPhase: (requestId, p) => this.onPhase(requestId, p),
    onTokens: (requestId, r) => this.onTokens(requestId, r),
    onBackend: (backend, why) => {
      this.state.stage.backend = backend;
      this.state.stage.detail = why;
      this.changed();
    },
    onLinkLost: (peerId, requestId) => this.failover.onLinkLost(peerId, requestId),
  });
  // ---- failover (issue 13): heartbeats, link-lost reports, stop for repair, the recovery view
  private readonly failover = new FailoverClient({
    send: (m) => {
      if (!this.client) throw new TandemError('server-gone', 'Not connected to the server.');
      this.client.send(m);
    },
    stopRun: (requestId, reason) => this.stage.stopForRepair(requestId, reason),
    nameOf: (peerId) => this.state.roster.find((p) => p.peerId === peerId)?.displayName ?? peerId,
    changed: () => {
      this.state.failover = this.failover.view;
      this.changed();
    },
  });
  // ---- end failover
  private readonly timingReporter = new TimingReporter(
    (m) => this.client?.send(m),
    (e) => this.error(e, 'stage'),
  );
  private profilePromise: Promise<void> | null = null;
  private ensureRun = 0;
  /** the download of the current assignment's units; a `start` waits for it */
  private ensuring: Promise<void> = Promise.resolve();
  private renderQueued = false;
  private wakeListener: (() => void) | null = null;
  /** Requests the coordinator cancelled, with what this page's stage did after the cancel arrived. */
  private readonly cancelled = new Map<number, { tokens: number; steps: number; reported: boolean }>();
  /** Requests this page's stage ran to an end (done, failed or cancelled). */
  private readonly ranHere = new Set<number>();

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Batches re-renders to one per animation frame. */
  changed(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    const flush = () => {
      this.renderQueued = false;
      for (const l of this.listeners) l();
    };
    if (typeof requestAnimationFrame === 'function' && document.visibilityState === 'visible')
      requestAnimationFrame(flush);
    else setTimeout(flush, 0);
  }

  snapshot(): TandemSnapshot {
    return snapshotOf(this.state);
  }

  error(e: unknown, source: string, fallbackCode = 'unexpected', level: 'error' | 'warning' = 'error'): TandemError {
    const err = asTandemError(e, fallbackCode);
    const last = this.state.errors.at(-1);
    if (!(last && last.code === err.code && last.message === err.message && !last.dismissed)) {
      this.state.errors.push({
        level,
        code: err.code,
        message: err.message,
        source,
        atMs: Date.now(),
        dismissed: false,
      });
    }
    console.warn(`[tandem] ${source}: ${err.code}: ${err.message}`);
    this.changed();
    return err;
  }

  dismissError(index: number): void {
    // the index comes from the UI and may be out of range
    const e = this.state.errors[index] as PageError | undefined;
    if (e) e.dismissed = true;
    this.changed();
  }

  /** Reports a session-relevant failure to the server too (best effort). */
  private reportError(err: TandemError, requestId: number | null, unitId?: string): void {
    if (!this.state.peerId || !this.client) return;
    try {
      this.client.send({
        type: 'report-error',
        requestId,
        code: /^[a-z0-9]+(-[a-z0-9]+)*$/.test(err.code) ? err.code.slice(0, 64) : 'unexpected',
        message: err.message.slice(0, 2000),
        ...(unitId && /^(embed|head|layer\.\d+)$/.test(unitId) ? { unitId } : {}),
      });
    } catch {
      // not connected: the banner is all we can do
    }
  }

  // ------------------------------------------------------------------------------------------
  // start-up

  async start(search: string): Promise<void> {
    try {
      this.state.params = parsePageParams(search);
    } catch (e) {
      this.error(e, 'params');
      this.state.params = { join: null, host: false, name: null, emulation: null, backend: 'auto' };
    }
    const params = this.state.params;
    if (!window.isSecureContext) {
      this.error(
        new TandemError(
          'insecure-context',
          `This page was opened over plain http from ${location.host}, which browsers do not treat as secure: WebGPU is hidden, so this device measures and runs on wasm (CPU). For WebGPU, start the server with --https and open the https:// address.`,
        ),
        'page',
        'insecure-context',
        'warning',
      );
    }
    this.state.displayName = params.name ?? localStorage.getItem('tandem.name') ?? defaultName();
    this.changed();
    this.profilePromise = this.runProfile();
    const t0 = performance.now();
    this.client = new CoordinatorClient(CoordinatorClient.urlFor(location));
    this.client.onState((s, detail) => {
      const wasGone = this.state.connection === 'reconnecting';
      this.state.connection = s;
      this.state.connectionDetail = detail;
      if (s === 'reconnecting' && !wasGone)
        this.error(
          new TandemError(
            'server-gone',
            `Lost the connection to the server: ${detail}. The page keeps retrying; your cache is kept.`,
          ),
          'server',
        );
      if (s === 'open' && wasGone) {
        for (const err of this.state.errors) if (err.code === 'server-gone') err.dismissed = true;
      }
      this.changed();
    });
    this.client.onMessage((m) => this.onServerMessage(m));
    try {
      await this.client.connect();
      this.state.phases.connectSeconds = (performance.now() - t0) / 1000;
    } catch (e) {
      this.error(e, 'server', 'server-unreachable');
      return;
    }
    if (params.host) await this.createSession();
    else if (params.join) {
      this.restoreHost(params.join);
      await this.join(params.join);
    }
  }

  /** After a reload of the host's tab: take the host role back for that session. */
  private restoreHost(code: string): void {
    try {
      const saved = JSON.parse(sessionStorage.getItem(HOST_KEY) ?? 'null') as {
        code?: unknown;
        hostSecret?: unknown;
      } | null;
      if (saved && saved.code === code && typeof saved.hostSecret === 'string') {
        this.hostSecret = saved.hostSecret;
        this.state.role = 'host';
      }
    } catch {
      // unreadable storage: join as a peer
    }
  }

  private async runProfile(): Promise<void> {
    const t0 = performance.now();
    this.state.profile = null;
    this.state.profileSent = false;
    try {
      const result = await profileDevice({
        name: this.state.displayName,
        backend: this.state.params?.backend ?? 'auto',
        emulation: this.state.params?.emulation ?? null,
        origin: location.origin,
        onProgress: (p) => {
          this.state.profileProgress = p;
          this.changed();
        },
      });
      this.state.profile = result;
      this.state.phases.profileSeconds = (performance.now() - t0) / 1000;
      for (const issue of result.details.issues)
        this.error(new TandemError(issue.code, issue.message), 'profile', issue.code, 'warning');
      this.changed();
      this.sendProfile();
    } catch (e) {
      this.error(e, 'profile', 'profile-failed');
    }
  }

  reprofile(): void {
    if (this.state.stage.state === 'running') return;
    this.profilePromise = this.runProfile();
  }

  private sendProfile(): void {
    const p = this.state.profile;
    if (!p || !this.state.peerId || !this.client) return;
    this.client
      .request(
        { type: 'profile', profile: { ...p.report, name: this.state.displayName.slice(0, 80) || p.report.name } },
        'ack',
      )
      .then(() => {
        this.state.profileSent = true;
        this.changed();
      })
      .catch((e: unknown) => this.error(e, 'session'));
  }

  // ------------------------------------------------------------------------------------------
  // session

  setName(raw: string): void {
    const name = normaliseName(raw);
    if (!name) return;
    this.state.displayName = name;
    localStorage.setItem('tandem.name', name);
    this.changed();
  }

  async createSession(): Promise<void> {
    if (!this.client) return;
    try {
      const created = await this.client.request(
        { type: 'create-session', name: `${this.state.displayName}'s session`.slice(0, 64) },
        'session-created',
      );
      this.hostSecret = created.hostSecret;
      this.state.role = 'host';
      this.state.model = created.model;
      // a reload of the host's tab keeps the host role (the secret stays in this tab's sessionStorage)
      sessionStorage.setItem(HOST_KEY, JSON.stringify({ code: created.code, hostSecret: created.hostSecret }));
      this.changed();
      await this.join(created.code);
    } catch (e) {
      this.error(e, 'session');
    }
  }

  async join(rawCode: string): Promise<void> {
    if (!this.client) return;
    const code = normaliseJoinCode(rawCode);
    if (!code) {
      this.error(
        new TandemError(
          'join-code-invalid',
          `"${rawCode}" is not a join code: it has 8 letters and digits, as shown big on the host's screen.`,
        ),
        'session',
      );
      return;
    }
    const t0 = performance.now();
    try {
      const joined = await this.client.request(
        {
          type: 'join',
          code,
          displayName: this.state.displayName,
          emulated: this.state.params?.emulation?.label ?? null,
        },
        'joined',
      );
      this.state.phases.joinSeconds = (performance.now() - t0) / 1000;
      this.client.rememberPeer({ code: joined.code, peerId: joined.peerId, peerSecret: joined.peerSecret });
      this.state.role ??= 'peer';
      this.applyJoined(joined);
      void this.keepAwake();
      this.stage
        .connect(joined.peerId, joined.peerjs)
        .catch((e: unknown) => this.reportError(this.error(e, 'transport', 'signaling-unavailable'), null));
      // the address bar now re-joins this session on reload (and no longer creates a new one)
      const q = new URLSearchParams(location.search);
      q.delete('host');
      q.set('join', joined.code);
      history.replaceState(null, '', `${location.pathname}?${q.toString()}`);
      this.sendProfile();
      await this.loadManifest();
    } catch (e) {
      this.error(e, 'session');
    }
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
        if (document.visibilityState === 'visible' && this.state.peerId) void acquire();
      };
      document.addEventListener('visibilitychange', this.wakeListener);
    }
  }

  private applyJoined(joined: ServerMessageOf<'joined'>): void {
    this.failover.onServerMessage(joined); // failover: the request heartbeat interval
    this.state.code = joined.code;
    this.state.sessionName = joined.sessionName;
    this.state.peerId = joined.peerId;
    this.state.model = joined.model;
    this.state.roster = joined.roster;
    this.changed();
  }

  private async loadManifest(): Promise<void> {
    const model = this.state.model;
    if (!model || this.manifest?.name === model.name) return;
    const t0 = performance.now();
    try {
      const res = await fetch(model.manifestUrl, { cache: 'no-store' });
      if (!res.ok)
        throw new TandemError(
          'manifest-unavailable',
          `The server answered HTTP ${res.status} for ${model.manifestUrl}; it has no model package '${model.name}'.`,
        );
      this.manifest = parseManifest(await res.json());
      this.cache = new ShardCache(this.manifest, {
        baseUrl: ShardCache.baseUrlOf(model.manifestUrl),
        emulation: this.state.params?.emulation ?? null,
      });
      this.state.phases.manifestSeconds = (performance.now() - t0) / 1000;
      this.state.cache.packageName = this.manifest.name;
      this.state.cache.state = 'checking';
      this.changed();
      await this.cache.sweep();
      await this.sendCacheStatus();
      this.state.cache.state = 'idle';
      this.changed();
      if (this.state.assignment) this.ensuring = this.ensureAssigned();
    } catch (e) {
      this.state.cache.state = 'error';
      this.reportError(this.error(e, 'cache', 'manifest-invalid'), null);
    }
  }

  private async sendCacheStatus(): Promise<void> {
    if (!this.cache || !this.client) return;
    this.state.cache.cachedUnits = await this.cache.cachedUnitIds();
    this.changed();
    try {
      await this.client.request({ type: 'cache-status', units: this.state.cache.cachedUnits }, 'ack');
    } catch (e) {
      this.error(e, 'session');
    }
  }

  private onServerMessage(m: ServerMessage): void {
    // failover first: a stage-lost stops the run before anything else; a continuation's start is mapped
    // to the user's request before runStart sees it
    if (m.type !== 'joined') this.failover.onServerMessage(m);
    switch (m.type) {
      case 'session-created':
      case 'ack':
      case 'heartbeat-ack':
        break;
      case 'joined':
        // also arrives after a reconnect (`resume`)
        this.applyJoined(m);
        if (!this.state.profileSent) this.sendProfile();
        break;
      case 'roster':
        this.state.roster = m.peers;
        this.state.planId = m.planId;
        break;
      case 'peer-left': {
        const gone = this.state.roster.find((p) => p.peerId === m.peerId);
        this.state.roster = this.state.roster.filter((p) => p.peerId !== m.peerId);
        const planned = this.state.plan?.stages.some((st) => st.peerId === m.peerId);
        if (gone && planned) {
          const why =
            m.reason === 'timed-out'
              ? 'stopped answering (timed out)'
              : m.reason === 'replaced'
                ? 'reconnected elsewhere'
                : 'left';
          this.error(
            new TandemError(
              'peer-left',
              `${gone.displayName} ${why}; it held a stage of the current plan.${this.state.role === 'host' ? ' Press Plan again to continue without it.' : ''}`,
            ),
            'session',
            'peer-left',
            'warning',
          );
        }
        break;
      }
      case 'plan-ready':
        this.state.plan = m;
        this.state.planId = m.planId;
        if (m.excludedPeerIds.includes(this.state.peerId ?? '')) this.state.assignment = null;
        break;
      case 'assignment':
        this.state.assignment = m;
        this.state.excluded = null;
        this.state.cache.assignedUnits = m.units;
        this.ensuring = this.ensureAssigned();
        break;
      case 'excluded':
        void this.stage.release();
        this.state.assignment = null;
        this.state.excluded = { planId: m.planId, reason: m.reason };
        this.state.cache.assignedUnits = [];
        break;
      case 'start':
        void this.runStart(m);
        break;
      case 'output':
        this.onOutput(m);
        break;
      case 'cancel':
        this.onCancel(m.requestId, m.reason);
        break;
      case 'cancelled':
        break;
      case 'api-serving':
        this.state.serveApi = m.serve;
        break;
      case 'stage-lost':
      case 'repair':
      case 'request-failed':
        break; // failover-client.ts

      case 'timings': {
        const byPeer = this.state.timings.get(m.requestId) ?? new Map<string, TimingEntry[]>();
        byPeer.set(m.peerId, mergeTimings(byPeer.get(m.peerId) ?? [], m.timings));
        this.state.timings.set(m.requestId, byPeer);
        break;
      }
      case 'peer-error': {
        const who = this.state.roster.find((p) => p.peerId === m.peerId)?.displayName ?? m.peerId;
        if (m.peerId !== this.state.peerId) this.error(new TandemError(m.code, `${who}: ${m.message}`), 'peer');
        break;
      }
      case 'session-ended':
        this.error(
          new TandemError(
            'session-ended',
            m.reason === 'server-shutdown'
              ? 'The server shut down; start it again and re-join (your cache is kept).'
              : 'The host ended the session. Join a new one with its code; your cache is kept.',
          ),
          'session',
        );
        this.stage.close();
        this.client?.rememberPeer(null);
        this.state.peerId = null;
        this.state.assignment = null;
        break;
      case 'error':
        this.error(new TandemError(m.code, m.message), m.inReplyTo ? `server (${m.inReplyTo})` : 'server');
        break;
    }
    this.changed();
  }

  /** Stop our stage's part of a cancelled request; a stage that already ended says so at once. */
  private onCancel(requestId: number, reason: string): void {
    this.cancelled.set(requestId, { tokens: 0, steps: 0, reported: false });
    this.stage.cancel(requestId, reason);
    if (this.ranHere.has(requestId)) this.reportCancelled(requestId);
  }

  private reportCancelled(requestId: number): void {
    const c = this.cancelled.get(requestId);
    if (!c || c.reported) return;
    c.reported = true;
    try {
      this.client?.send({
        type: 'report-cancelled',
        requestId,
        tokensAfterCancel: c.tokens,
        stepsAfterCancel: c.steps,
      });
    } catch (e) {
      this.error(e, 'stage');
    }
  }

  private onOutput(m: ServerMessageOf<'output'>): void {
    let out = this.state.outputs.find((o) => o.requestId === m.requestId);
    if (!out) {
      out = { requestId: m.requestId, prompt: '', text: '', tokenIds: [], done: false, finishReason: null };
      this.state.outputs.push(out);
    }
    out.text += m.text;
    out.tokenIds.push(...m.tokenIds);
    out.done = m.done;
    out.finishReason = m.finishReason ?? out.finishReason;
  }

  // ------------------------------------------------------------------------------------------
  // cache

  private async ensureAssigned(): Promise<void> {
    const a = this.state.assignment;
    if (!a || !this.cache) return;
    const run = ++this.ensureRun;
    const t0 = performance.now();
    const c = this.state.cache;
    c.state = 'fetching';
    c.progress = null;
    c.fetchedUnits = [];
    c.reusedUnits = [];
    c.bytesDownloaded = 0;
    this.changed();
    // set from the progress callback, which the type narrowing does not follow
    let currentUnit = null as string | null;
    try {
      const result = await this.cache.ensure(a.units, (p) => {
        if (run !== this.ensureRun) return;
        c.progress = p;
        currentUnit = p.unitId ?? currentUnit;
        this.changed();
      });
      if (run !== this.ensureRun) return;
      c.fetchedUnits = result.fetched;
      c.reusedUnits = result.reused;
      c.bytesDownloaded = result.bytesDownloaded;
      c.state = 'complete';
      this.state.phases.cacheSeconds = (performance.now() - t0) / 1000;
      await this.sendCacheStatus();
      const opts = this.stageOptions(a);
      if (opts)
        this.stage
          .prepare(opts)
          .catch((e: unknown) => this.reportError(this.error(e, 'stage', 'stage-prepare-failed'), null));
    } catch (e) {
      if (run !== this.ensureRun) return;
      c.state = 'error';
      const err = this.error(e, 'cache', 'cache-failed');
      this.reportError(err, null, currentUnit ?? undefined);
      await this.sendCacheStatus().catch(() => undefined);
    }
    this.changed();
  }

  async clearCache(): Promise<void> {
    if (!this.cache || this.state.stage.state === 'running') return;
    await this.cache.clearPackage();
    this.state.cache.state = 'idle';
    await this.sendCacheStatus();
    if (this.state.assignment) this.ensuring = this.ensureAssigned();
  }

  // ------------------------------------------------------------------------------------------
  // host actions

  private hostAuth(): { code: string; hostSecret: string } {
    if (!this.hostSecret || !this.state.code)
      throw new TandemError('not-host', 'Only the page that created the session can plan and start it.');
    return { code: this.state.code, hostSecret: this.hostSecret };
  }

  async plan(req: PlanRequest): Promise<void> {
    if (!this.client) return;
    try {
      const ready = await this.client.request(
        { type: 'plan', ...this.hostAuth(), tokens: req.tokens, method: req.method },
        'plan-ready',
      );
      this.state.plan = ready;
      this.changed();
    } catch (e) {
      this.error(e, 'plan');
    }
  }

  go(req: GoRequest): void {
    if (!this.client) return;
    if (!req.prompt.trim()) {
      this.error(new TandemError('prompt-empty', 'Type a prompt first.'), 'go');
      return;
    }
    try {
      this.client.send({
        type: 'go',
        ...this.hostAuth(),
        prompt: req.prompt,
        maxNewTokens: req.maxNewTokens,
        sampling: req.sampling,
      });
    } catch (e) {
      this.error(e, 'go');
    }
  }

  /** Host: whether this session answers the OpenAI-compatible HTTP API of the server. */
  async setServeApi(serve: boolean): Promise<void> {
    if (!this.client) return;
    const before = this.state.serveApi;
    // shown at once (a render before the reply must not flip the checkbox back)
    this.state.serveApi = serve;
    this.changed();
    try {
      const reply = await this.client.request({ type: 'serve-api', ...this.hostAuth(), serve }, 'api-serving');
      this.state.serveApi = reply.serve;
    } catch (e) {
      this.state.serveApi = before;
      this.error(e, 'api');
    }
    this.changed();
  }

  endSession(): void {
    if (!this.client) return;
    try {
      this.client.send({ type: 'end-session', ...this.hostAuth() });
    } catch (e) {
      this.error(e, 'session');
    }
  }

  // ------------------------------------------------------------------------------------------
  // the stage

  private stageOptions(a: NonNullable<AppState['assignment']>) {
    const manifest = this.manifest;
    const cache = this.cache;
    if (!manifest || !cache) return null;
    return {
      assignment: a,
      manifest,
      backend: this.state.params?.backend ?? 'auto',
      emulation: this.state.params?.emulation ?? null,
      readUnit: async (unitId: string) => {
        const r = await cache.readUnit(unitId);
        this.state.cache.reads.push({ unitId, readSeconds: r.readSeconds, verifySeconds: r.verifySeconds });
        return r.bytes;
      },
    } as const;
  }

  private onPhase(
    requestId: number,
    p: { phase: TimingEntry['phase']; step: number; startMs: number; endMs: number },
  ): void {
    const cancelled = this.cancelled.get(requestId);
    if (cancelled && p.phase === 'sample') cancelled.tokens++;
    if (cancelled && p.phase === 'compute') cancelled.steps++;
    const peerId = this.state.peerId;
    if (!peerId) return;
    const t: TimingEntry = {
      phase: p.phase,
      step: p.step,
      startMs: Math.max(0, p.startMs),
      endMs: Math.max(0, p.startMs, p.endMs),
    };
    const byPeer = this.state.timings.get(requestId) ?? new Map<string, TimingEntry[]>();
    byPeer.set(peerId, mergeTimings(byPeer.get(peerId) ?? [], [t]));
    this.state.timings.set(requestId, byPeer);
    this.timingReporter.add(requestId, t);
    this.changed();
  }

  private onTokens(
    requestId: number,
    r: {
      tokenIds: number[];
      text: string;
      generated: number;
      done: boolean;
      finishReason?: 'eos' | 'max-tokens' | 'error';
    },
  ): void {
    try {
      this.client?.send({ type: 'report-tokens', requestId, ...r, text: r.text.slice(0, 32 * 1024) });
    } catch (e) {
      this.error(e, 'stage');
    }
  }

  private async runStart(m: ServerMessageOf<'start'>): Promise<void> {
    const a = this.state.assignment;
    const stages =
      this.state.plan?.planId === m.planId
        ? this.state.plan.stages
        : a?.planId === m.planId
          ? a.stages
          : this.state.plan?.stages;
    if (stages) this.state.requestStages.set(m.requestId, stages);
    const shownId = this.failover.originalOf(m.requestId); // failover: a continuation shows as the user's request
    const existing = this.state.outputs.find((o) => o.requestId === shownId);
    if (existing) existing.prompt = m.prompt;
    else
      this.state.outputs.push({
        requestId: shownId,
        prompt: m.prompt,
        text: '',
        tokenIds: [],
        done: false,
        finishReason: null,
      });
    if (!a || a.planId !== m.planId) {
      this.changed();
      return; // not part of this plan: watch only
    }
    const opts = this.stageOptions(a);
    if (!opts || !this.state.peerId) {
      this.reportError(
        this.error(
          new TandemError(
            'stage-not-ready',
            'A request started before this page had its model manifest; reload the page and re-join.',
          ),
          'stage',
        ),
        m.requestId,
      );
      return;
    }
    const t0 = performance.now();
    // failover: beat at the request's pace from now on, also while the units still download
    this.failover.onRunStarted(m.requestId);
    // a "go" pressed while this page still downloads its units: the stage starts once they are in
    await this.ensuring;
    if (this.cancelled.has(m.requestId)) {
      this.ranHere.add(m.requestId);
      this.reportCancelled(m.requestId);
      return;
    }
    this.state.stage = {
      state: 'running',
      requestId: m.requestId,
      backend: this.state.stage.backend,
      detail: 'cold start',
    };
    this.state.cache.reads = [];
    this.changed();
    try {
      await this.stage.run(m, opts);
      this.state.stage.state = 'done';
      this.state.stage.detail = 'finished';
      this.failover.onRunFinished(m.requestId);
    } catch (e) {
      const err = asTandemError(e, 'stage-failed');
      // ---- failover: a lost stage is repaired by the coordinator; a link failure waits for its verdict
      const report = () => {
        this.state.stage.state = 'error';
        this.state.stage.detail = err.code;
        // StagePeer already told the other stages; tell the people and the server
        this.reportError(this.error(err, 'stage'), m.requestId);
      };
      const outcome = this.cancelled.has(m.requestId) ? null : this.failover.onRunFailed(m.requestId, err, report);
      // ---- end failover
      if (this.cancelled.has(m.requestId)) {
        // not a failure: the server stopped the request (its API client went away, or a stop sequence matched)
        this.state.stage.state = 'done';
        this.state.stage.detail = 'cancelled';
      } else if (outcome === 'report') {
        report();
      } else {
        this.state.stage.state = 'done';
        this.state.stage.detail = outcome === 'repair' ? 'stopped for repair' : 'a neighbour vanished: waiting';
      }
    } finally {
      this.ranHere.add(m.requestId);
      if (this.cancelled.has(m.requestId)) this.reportCancelled(m.requestId);
      this.timingReporter.flush();
      this.state.phases.stageSeconds = (performance.now() - t0) / 1000;
      this.changed();
    }
  }

  /** Download the measured profile (and the session's timings) as JSON. */
  profileJson(): string {
    return JSON.stringify(
      {
        format: 'tandem-profile',
        version: 1,
        profile: this.state.profile,
        peerId: this.state.peerId,
        session: this.state.code,
      },
      null,
      2,
    );
  }

  sessionJson(): string {
    return JSON.stringify({ format: 'tandem-session-view', snapshot: this.snapshot() }, null, 2);
  }
}
