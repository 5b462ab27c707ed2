/**
 * Failover scenarios in real headless Chromium (issue 13), shared by e2e/failover.test.ts and the
 * failover bench (e2e/failover-bench.ts): a session of lab devices (lab.ts: each page its own Chromium,
 * network namespace and CPU share), requests during which pages are taken away at a given token:
 *
 *   const f = await FailoverSession.start({ chromium, model, devices: 4, log });
 *   const plan = await f.planAll();                          // every live page gets a stage
 *   const run = await f.run(plan, PROMPT, 16, [{ atGenerated: 5, stage: 'middle', how: 'close' }]);
 *   run.tokenIds, run.lost, run.repairs, run.resumes, run.recoveredInMs
 *   await f.refill();                                         // a fresh page on every emptied device
 *
 * A page is lost by closing its tab (its browser context: WebSocket, data channels and all) or by
 * taking its device's network link down (ip link set eth0 down in the device's namespace): then only
 * silence tells, as when a phone leaves the Wi-Fi. Every page is opened with `?hold=` and armed to hold
 * its stage after each loss's token count: the ring stops there until the page is taken and the hold
 * released, so each loss lands mid-request by construction (`lossesInFlight` still records it).
 */
import { TandemError } from '../core/errors.ts';
import type { Sampling, ServerMessage, ServerMessageOf, TimingEntry } from '../core/protocol.ts';
import { DEFAULT_LIMITS } from '../signaling/coordinator.ts';
import { GREEDY, Harness } from './harness.ts';
import type { LabDevice } from './lab.ts';
import type { ModelFixture } from './model-fixture.ts';
import type { PeerSpec, TandemPage } from './tandem-page.ts';

export type StagePick = 'first' | 'middle' | 'last' | number;

export interface Loss {
  /** take the page away once the host has seen this many generated tokens of the request */
  atGenerated: number;
  /** which stage of the pipeline running at that moment (the repaired one after an earlier loss) */
  stage: StagePick;
  how: 'close' | 'cut';
}

export interface FailoverRun {
  requestId: number;
  tokenIds: number[];
  text: string;
  finishReason: string | null;
  /** the pages taken away, in order: name, peer id, stage index, tokens seen when it was taken */
  taken: { name: string; peerId: string; stageIndex: number; atGenerated: number; how: Loss['how'] }[];
  lost: ServerMessageOf<'stage-lost'>[];
  repairs: ServerMessageOf<'repair'>[];
  resumes: ServerMessageOf<'start'>[];
  /** `recoveredInMs` of the outputs that carry one (loss detected -> next token, server clock) */
  recoveredInMs: number[];
  failed: ServerMessageOf<'request-failed'>[];
  peerErrors: ServerMessageOf<'peer-error'>[];
  /** every loss was injected before the request's final output */
  lossesInFlight: boolean;
  /** timings the pages reported per request id (the original and each continuation) and peer id */
  timings: Map<number, Map<string, TimingEntry[]>>;
}

export interface FailoverSessionOptions {
  chromium: string;
  model: ModelFixture;
  /** lab devices (one page each) */
  devices: number;
  /** compute slow-down of every page (?emulate= compute), so that tokens come at a pace a loss can hit */
  computeSlowdown?: number;
  /** extra server flags */
  serverArgs?: string[];
  log?: (line: string) => void;
  verboseServer?: boolean;
}

/** Device shapes: equal CPU shares that leave the server a quarter core; fast links. */
function deviceSpecs(n: number, slowdown: number): PeerSpec[] {
  const cores = Math.floor((1.6 / n) * 100) / 100;
  return Array.from({ length: n }, (_, i) => ({
    name: `dev${i + 1}`,
    emulate: JSON.stringify({ label: `lab ${cores} core, compute/${slowdown}`, compute: slowdown }),
    device: { cores, uplinkMbps: 200, downlinkMbps: 200 },
    hold: true,
  }));
}

/** A stage's reported phases in one line: ms per phase (summed over steps) and the last step reached. */
function phaseSummary(entries: readonly TimingEntry[]): string {
  const ms = new Map<string, number>();
  for (const e of entries) ms.set(e.phase, (ms.get(e.phase) ?? 0) + e.endMs - e.startMs);
  const lastStep = Math.max(...entries.map((e) => e.step));
  return `${[...ms].map(([p, v]) => `${p} ${Math.round(v)} ms`).join(', ')}; last step ${lastStep}`;
}

/** One line for a failover message in the run's log. */
function describeFailover(m: ServerMessage, name: (peerId: string) => string): string {
  switch (m.type) {
    case 'stage-lost':
      return `${m.lostPeerIds.map(name).join(', ')} (${m.reason}${m.silence ? `: ${m.silence.of === 'any' ? 'no sign of life' : 'no message'} for ${m.silence.silentMs} ms, limit ${m.silence.limitMs} ms` : ''})`;
    case 'repair':
      return `${m.mode}: ${m.stages.map((s) => `${name(s.peerId)} [${s.layers.start + 1}-${s.layers.end}]`).join(' -> ')}`;
    case 'request-failed':
    case 'peer-error':
      return `${m.code}: ${m.message}`;
    default:
      return m.type;
  }
}

export class FailoverSession {
  /** the live page of each device, by device name (null once taken away, until refill) */
  private readonly live = new Map<string, TandemPage | null>();
  /** devices whose link take() cut, until closeCut() brings them back */
  private readonly cut = new Set<LabDevice>();
  private readonly log: (line: string) => void;

  private constructor(
    readonly h: Harness,
    readonly specs: PeerSpec[],
    log: (line: string) => void,
  ) {
    this.log = log;
  }

  static async start(o: FailoverSessionOptions): Promise<FailoverSession> {
    const specs = deviceSpecs(o.devices, o.computeSlowdown ?? 1);
    const h = await Harness.start({
      chromium: o.chromium,
      model: o.model,
      backend: 'wasm',
      webgpu: false,
      lab: specs,
      // a closed tab is lost for the request at once (socket) or after the loss timeout; the session
      // itself forgets it only after this (roster entries of taken pages stay, disconnected, meanwhile)
      heartbeatTimeoutMs: 60_000,
      // the product's defaults: failover is what these runs measure
      lossTimeoutMs: DEFAULT_LIMITS.lossTimeoutMs,
      stallTimeoutMs: DEFAULT_LIMITS.stallTimeoutMs,
      serverArgs: o.serverArgs,
      log: o.log,
      verboseServer: o.verboseServer,
    });
    const f = new FailoverSession(h, specs, o.log ?? (() => {}));
    try {
      await h.createSession('failover');
      // in parallel: each device profiles on its own CPU share
      const pages = await h.openPeers(specs);
      specs.forEach((spec, i) => f.live.set(spec.name, pages[i]));
      await f.waitLiveProfiled();
    } catch (err) {
      await h.stop();
      throw err;
    }
    return f;
  }

  /** The display name of a peer id (any roster entry, connected or not). */
  nameOf(peerId: string): string {
    return this.h.roster().find((p) => p.peerId === peerId)?.displayName ?? peerId;
  }

  /** Peer id of the live page on device `name`: the newest connected roster entry of that name. */
  peerIdOf(name: string): string {
    return this.h.peerId(name);
  }

  livePages(): { name: string; page: TandemPage }[] {
    return [...this.live].flatMap(([name, page]) => (page ? [{ name, page }] : []));
  }

  private async waitLiveProfiled(): Promise<void> {
    const names = this.livePages().map((p) => p.name);
    await this.h.waitRoster(
      (peers) => names.every((n) => peers.some((p) => p.displayName === n && p.connected && p.profile !== null)),
      `profiles of ${names.join(', ')}`,
      600_000, // profiling at a fraction of a core is slow on a busy machine
    );
  }

  /** A fresh page (new browser context: empty cache) on every device whose page was taken away. */
  async refill(): Promise<void> {
    const empty = this.specs.filter((s) => this.live.get(s.name) === null);
    if (!empty.length) return;
    const before = new Set(this.h.roster().map((p) => p.peerId));
    const pages = await this.h.openPeers(empty);
    empty.forEach((spec, i) => this.live.set(spec.name, pages[i]));
    await this.h.waitRoster(
      (peers) =>
        empty.every((s) =>
          peers.some((p) => p.displayName === s.name && p.connected && p.profile !== null && !before.has(p.peerId)),
        ),
      `fresh pages on ${empty.map((s) => s.name).join(', ')} to profile`,
      600_000, // profiling at a fraction of a core is slow on a busy machine
    );
  }

  /**
   * An even plan over the live pages: one stage per page up to the model's layers (the tiny model's 4),
   * pages beyond that idle (spares a repair may take).
   */
  async planAll(): Promise<ServerMessageOf<'plan-ready'>> {
    const plan = await this.h.plan('even', 32);
    const want = Math.min(this.livePages().length, this.h.opts.model.manifest.config.num_hidden_layers);
    if (plan.stages.length !== want)
      throw new TandemError(
        'e2e-setup',
        `The even plan has ${plan.stages.length} stages over ${this.livePages().length} live pages; expected ${want}.`,
      );
    await this.h.waitCached(plan);
    return plan;
  }

  /** Take the page on device `name` away: close its tab, or cut its device's link. */
  take(name: string, how: Loss['how']): Promise<void> {
    const page = this.live.get(name);
    if (!page) throw new TandemError('e2e-usage', `device ${name} has no live page`);
    this.live.set(name, null);
    if (how === 'close') return page.close();
    const device = this.deviceOf(name);
    device.setOnline(false);
    this.cut.add(device);
    // the page lives on, unreachable; its tab is closed by closeCut
    return Promise.resolve();
  }

  /** Pages whose links were cut stay unreachable: close them and bring their devices back online (after their case, before a refill). */
  async closeCut(): Promise<void> {
    for (const p of this.h.pages)
      if (!p.page.isClosed() && !this.livePages().some((l) => l.page === p)) await p.close();
    for (const device of this.cut) device.setOnline(true);
    this.cut.clear();
  }

  private deviceOf(name: string): LabDevice {
    const device = this.h.lab?.devices[this.specs.findIndex((s) => s.name === name)];
    if (!device) throw new TandemError('e2e-usage', `device ${name} is not a lab device`);
    return device;
  }

  /**
   * Start a request and take pages away as `losses` say; resolves when the request's final output
   * came (or a request-failed). Nothing here asserts: the caller checks the record.
   */
  async run(
    plan: ServerMessageOf<'plan-ready'>,
    prompt: string,
    maxNewTokens: number,
    losses: readonly Loss[],
    sampling: Sampling = GREEDY,
    timeoutMs = 300_000,
  ): Promise<FailoverRun> {
    const { code, hostSecret } = this.h.session!;
    const d = this.h.driver;
    // every page's stage holds after each loss's token count until that loss is done: the request is
    // provably mid-answer when a page is taken (the ring cannot make the next token while one stage holds)
    const counts = [...new Set(losses.map((l) => l.atGenerated))];
    for (const { page } of this.livePages()) await page.armHolds(counts);
    const mark = d.log.length;
    const start = await d.request({ type: 'go', code, hostSecret, prompt, maxNewTokens, sampling }, 'start', 120_000);
    const requestId = start.requestId;
    this.log(`failover: request ${requestId} started on ${plan.planId}`);
    // the request's messages: under its own id, or a continuation's (whose ids come with their starts)
    const ids = new Set([requestId]);
    const mine = (m: ServerMessage): boolean => {
      if (m.type === 'start' && m.resume?.of === requestId) ids.add(m.requestId);
      return 'requestId' in m && m.requestId !== null && ids.has(m.requestId);
    };
    const taken: FailoverRun['taken'] = [];
    let stages = plan.stages;
    let lossesInFlight = true;
    const pending = [...losses];
    const deadline = Date.now() + timeoutMs;
    let seen = mark;
    let generated = 0;
    let done = false as boolean; // set inside the loop, which the narrowing does not follow
    const releaseAll = async (): Promise<void> => {
      for (const { page } of this.livePages()) for (const n of counts) await page.releaseHold(n);
    };
    while (!done) {
      if (Date.now() > deadline) {
        await releaseAll();
        // stopped, so that the next case does not find it still running (it may have ended meanwhile)
        await d.request({ type: 'stop', code, hostSecret, requestId }, 'ack', 10_000).catch(() => undefined);
        throw new TandemError(
          'e2e-timeout',
          `request ${requestId}: no final output within ${timeoutMs / 1000} s\n${this.h.diagnostics()}`,
        );
      }
      for (; seen < d.log.length; seen++) {
        const m = d.log[seen];
        if (!mine(m)) continue;
        if (m.type === 'output') {
          generated += m.tokenIds.length;
          if (m.done) done = true;
        }
        if (m.type === 'request-failed') done = true;
        if (m.type === 'repair') stages = m.stages;
        if (m.type === 'stage-lost' || m.type === 'repair' || m.type === 'request-failed' || m.type === 'peer-error')
          this.log(`failover: request ${requestId}: ${m.type} ${describeFailover(m, (id) => this.nameOf(id))}`);
        if (m.type === 'request-failed')
          this.log(
            `failover: roster then: ${this.h
              .roster()
              .map(
                (p) =>
                  `${p.displayName} ${p.peerId.slice(0, 6)} ${p.connected ? 'connected' : 'gone'}${p.profile ? '' : ' unprofiled'}`,
              )
              .join('; ')}`,
          );
        if (m.type === 'output' && m.done) this.log(`failover: request ${requestId}: done after ${generated} tokens`);
      }
      const next = pending.at(0);
      if (!done && next && generated >= next.atGenerated) {
        pending.shift();
        const idx =
          next.stage === 'first'
            ? 0
            : next.stage === 'last'
              ? stages.length - 1
              : next.stage === 'middle'
                ? Math.floor((stages.length - 1) / 2) || (stages.length > 1 ? 1 : 0)
                : next.stage;
        const target = stages[idx];
        const name = target.displayName;
        this.log(`failover: request ${requestId}: ${next.how} ${name} (stage ${idx}) at ${generated} tokens`);
        taken.push({ name, peerId: target.peerId, stageIndex: idx, atGenerated: generated, how: next.how });
        await this.take(name, next.how);
        if (!pending.some((l) => l.atGenerated === next.atGenerated))
          for (const { page } of this.livePages()) await page.releaseHold(next.atGenerated);
        continue;
      }
      if (!done) await new Promise((r) => setTimeout(r, 20));
    }
    if (pending.length) lossesInFlight = false;
    // holds of losses that never came (the request ended first) must not stop the next request
    await releaseAll();
    // every loss must have reached the server before the end: a stage-lost for each taken page
    const all = d.log.slice(mark).filter(mine);
    const lost = all.filter((m): m is ServerMessageOf<'stage-lost'> => m.type === 'stage-lost');
    if (!taken.every((t) => lost.some((l) => l.lostPeerIds.includes(t.peerId)))) lossesInFlight = false;
    const outputs = all.filter((m): m is ServerMessageOf<'output'> => m.type === 'output');
    const resumes = all.filter((m): m is ServerMessageOf<'start'> => m.type === 'start' && m.resume !== undefined);
    // the timings of the request and its continuations, as far as they came in by now (best effort)
    await new Promise((r) => setTimeout(r, 1500));
    const timings = new Map<number, Map<string, TimingEntry[]>>();
    for (const m of d.log.slice(mark)) {
      if (m.type !== 'timings' || !ids.has(m.requestId)) continue;
      const byPeer = timings.get(m.requestId) ?? new Map<string, TimingEntry[]>();
      byPeer.set(m.peerId, [...(byPeer.get(m.peerId) ?? []), ...m.timings]);
      timings.set(m.requestId, byPeer);
    }
    for (const [id, byPeer] of timings)
      for (const [peerId, entries] of byPeer)
        this.log(`failover: request ${id}: ${this.nameOf(peerId)} ${phaseSummary(entries)}`);
    return {
      requestId,
      tokenIds: outputs.flatMap((o) => o.tokenIds),
      text: outputs.map((o) => o.text).join(''),
      finishReason: outputs.at(-1)?.finishReason ?? null,
      taken,
      lost,
      repairs: all.filter((m): m is ServerMessageOf<'repair'> => m.type === 'repair'),
      resumes,
      recoveredInMs: outputs.flatMap((o) => (o.recoveredInMs !== undefined ? [o.recoveredInMs] : [])),
      failed: all.filter((m): m is ServerMessageOf<'request-failed'> => m.type === 'request-failed'),
      peerErrors: all.filter((m): m is ServerMessageOf<'peer-error'> => m.type === 'peer-error'),
      lossesInFlight,
      timings,
    };
  }

  async stop(): Promise<void> {
    await this.h.stop();
  }
}
