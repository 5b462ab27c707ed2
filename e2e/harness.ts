/**
 * The end-to-end harness: the Tandem server (`signaling/main.ts`, as `npm start` runs it) and headless
 * Chromium pages inside one private network namespace, plus a Node driver on the coordinator WebSocket
 * (core/protocol-client.ts on `ws`) acting as the session's host (it holds the host secret; the
 * protocol lets a driver that is not a peer plan and start requests). Tests, the demo and the bench all drive sessions through this one class.
 *
 *   const h = await Harness.start({ chromium, model, backend: 'auto' });
 *   await h.createSession();
 *   await h.openPeers([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
 *   await h.waitProfiled();
 *   const plan = await h.plan('dp');
 *   await h.waitCached(plan);
 *   const run = await h.go('Hello', 8);
 *   await h.stop();
 */
import type { ParallelLoad } from '../client/profiler/parallel-load.ts';
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import WebSocket from 'ws';
import { mergeClockBound } from '../core/clock-offset.ts';
import { TandemError } from '../core/errors.ts';
import { coordinatorUrl, ProtocolClient } from '../core/protocol-client.ts';
import {
  unitsForStage,
  type PlanMethod,
  type RosterPeer,
  type Sampling,
  type ServerMessageOf,
  type TimingEntry,
} from '../core/protocol.ts';
import { launchDeviceContext, launchInNetwork } from './environment.ts';
import { createLab, type Lab, type LabDevice, type LabDeviceShape } from './lab.ts';
import type { ModelFixture } from './model-fixture.ts';
import { createPrivateNetwork, type PrivateNetwork } from './netns.ts';
import { compareStages, requestMetrics, type PlanRun } from './run-summary.ts';
import { startServerInNetwork, type ServerProcess } from './server-process.ts';
import { TandemPage, type PeerSpec } from './tandem-page.ts';

export interface HarnessOptions {
  chromium: string;
  model: ModelFixture;
  /** Launch Chromium with WebGPU (--enable-unsafe-webgpu; default true: a wasm run is ?backend=wasm). */
  webgpu?: boolean;
  /** The pages' ?backend= (auto: WebGPU on a hardware adapter; SwiftShader here is a fallback adapter, so wasm). */
  backend: 'auto' | 'wasm' | 'webgpu';
  /** Port inside the namespace (every namespace has its own ports). */
  port?: number;
  /** Server's silent-peer timeout (default 120 s; a closed tab is reported as left only after it). */
  heartbeatTimeoutMs?: number;
  /** Silence during a request that marks a stage lost, ms (server default 3000; here 30 000 unless given). */
  lossTimeoutMs?: number;
  /** A stage whose page answers pings but sends nothing this long is lost, ms (server default 15 000; here 120 000 unless given). */
  stallTimeoutMs?: number;
  /** Extra arguments for signaling/main.ts. */
  serverArgs?: string[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Echo the server's output. */
  verboseServer?: boolean;
  /**
   * Pages that will run as lab devices (each spec's `device` shape): the lab is made at start, the server
   * runs in its hub, and openPeers gives each of these pages its own browser inside its device.
   */
  lab?: readonly PeerSpec[];
}

function labShape(spec: PeerSpec): LabDeviceShape {
  if (!spec.device)
    throw new TandemError('e2e-usage', `${spec.name} is in Harness.start({ lab }) without a device shape`);
  return spec.device;
}

export const GREEDY: Sampling = { temperature: 0, topK: 0, topP: 1, seed: 1 };

/**
 * The page, built once per process with Vite into a private root (.tandem/e2e/page-<pid>/dist/client), and
 * the server started with that root as its working directory and --no-build: a stale or concurrently
 * rebuilt shared dist/client can then never serve these pages old or missing assets. TANDEM_PAGE_MINIFY=0
 * leaves it unminified, so that a Chrome trace's sampled functions have their names.
 */
let pageRoot: string | null = null;

export function buildPage(): string {
  if (pageRoot) return pageRoot;
  const root = resolve(`.tandem/e2e/page-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  // r.stderr is null when vite could not be started at all
  const r = spawnSync(
    resolve('node_modules/.bin/vite'),
    [
      'build',
      '--logLevel',
      'error',
      '--outDir',
      join(root, 'dist', 'client'),
      '--emptyOutDir',
      // TANDEM_PAGE_MINIFY=0: readable function names in a trace's profile (bench:decode-trace)
      ...(process.env.TANDEM_PAGE_MINIFY === '0' ? ['--minify', 'false'] : []),
    ],
    { encoding: 'utf8', timeout: 300_000 },
  );
  if (r.status !== 0 || !existsSync(join(root, 'dist', 'client', 'index.html'))) {
    throw new TandemError(
      'page-build-failed',
      `vite build of the page failed (exit ${r.status}): ${((r.stderr as string | null) ?? '').slice(-2000)}`,
    );
  }
  pageRoot = root;
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** `TANDEM_E2E_VERBOSE=1`: harness steps and the server's output go to stderr (for debugging a failing e2e run). */
const VERBOSE = process.env.TANDEM_E2E_VERBOSE === '1';

function verboseLog(): (line: string) => void {
  return VERBOSE ? (line) => process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`) : () => {};
}

export class Harness {
  readonly pages: TandemPage[] = [];
  session: { code: string; hostSecret: string } | null = null;
  readonly log: (line: string) => void;

  /** The lab devices' browsers (persistent contexts, each with a profile folder of its own) still open. */
  private readonly deviceContexts = new Set<BrowserContext>();

  private constructor(
    readonly opts: HarnessOptions,
    readonly net: PrivateNetwork,
    readonly lab: Lab | null,
    readonly server: ServerProcess,
    readonly browser: Browser,
    readonly driver: ProtocolClient,
  ) {
    this.log = opts.log ?? verboseLog();
  }

  /** Namespace, server, browser and driver; everything made so far is torn down if a step fails. */
  static async start(opts: HarnessOptions): Promise<Harness> {
    const log = opts.log ?? verboseLog();
    const port = opts.port ?? 8080;
    const root = buildPage();
    const lab = opts.lab
      ? createLab(
          opts.chromium,
          opts.lab.map((spec) => labShape(spec)),
          port,
          cpus().length,
        )
      : null;
    const net = lab ? lab.hub : createPrivateNetwork(opts.chromium);
    let server: ServerProcess | null = null;
    let browser: Browser | null = null;
    try {
      log(`harness: namespace ${net.name}; starting the server on ${port}`);
      if (lab) log(`harness: lab CPUs: ${lab.confinement}`);
      server = await startServerInNetwork({
        net,
        // in the lab the server runs in its own weighted control group (a busy host must not starve it)
        onSpawn: lab ? (pid) => lab.admitServer(pid) : undefined,
        command: resolve('node_modules/.bin/tsx'),
        args: [
          resolve('signaling/main.ts'),
          '--port',
          String(port),
          '--host',
          '0.0.0.0',
          '--model',
          resolve(opts.model.packageDir),
          '--no-build',
          // Several throttled pages on a small machine can block their main threads for many seconds
          // (wasm session creation): a 20 s heartbeat timeout dropped whole sessions mid-request.
          '--heartbeat-timeout-ms',
          String(opts.heartbeatTimeoutMs ?? 120_000),
          // The same stalls would make the server take a throttled page's silence during a cold start for
          // a lost stage (failover); tests of failover itself pass the product's 3 s.
          '--loss-timeout-ms',
          String(opts.lossTimeoutMs ?? 30_000),
          // ... and a page whose main thread a cold start blocks for long (WebGPU on SwiftShader under CI's
          // load) for a frozen tab: most likely what failed a CI run over a stage that was only slow
          '--stall-timeout-ms',
          String(opts.stallTimeoutMs ?? Math.max(120_000, opts.lossTimeoutMs ?? 0)),
          ...(opts.serverArgs ?? []),
        ],
        cwd: root,
        port,
        readyPath: '/api/models',
        readyTimeoutMs: 300_000,
        echo: (opts.verboseServer ?? VERBOSE) ? (t) => process.stderr.write(t) : undefined,
      });
      browser = await launchInNetwork(net, { webgpu: opts.webgpu ?? true });
      const driver = await ProtocolClient.connect(coordinatorUrl(server.controlUrl), (url) => new WebSocket(url), {
        timeoutMs: 30_000,
      });
      return new Harness(opts, net, lab, server, browser, driver);
    } catch (err) {
      await browser?.close().catch(() => {});
      await server?.stop();
      if (lab) lab.destroy();
      else net.destroy();
      throw err;
    }
  }

  get modelName(): string {
    return this.opts.model.manifest.name;
  }

  /** The driver creates the session and becomes its host. */
  async createSession(name = 'e2e'): Promise<{ code: string; hostSecret: string }> {
    const created = await this.driver.request({ type: 'create-session', name }, 'session-created', 120_000);
    this.session = { code: created.code, hostSecret: created.hostSecret };
    this.log(`harness: session ${created.code}`);
    return this.session;
  }

  private need(): { code: string; hostSecret: string } {
    if (!this.session) throw new TandemError('e2e-usage', 'createSession() first');
    return this.session;
  }

  /**
   * Open one page per spec with ?join=CODE (each in its own browser context) and wait until it joined.
   * `oneByOne`: open each page only after the previous one reported its profile, so that the pages'
   * benchmarks do not compete for the machine's cores (cleaner profiles; slower).
   */
  async openPeers(specs: readonly PeerSpec[], opts: { oneByOne?: boolean } = {}): Promise<TandemPage[]> {
    if (opts.oneByOne) {
      const pages: TandemPage[] = [];
      for (const spec of specs) {
        pages.push(...(await this.openPeers([spec])));
        await this.waitProfiled([spec.name]);
      }
      return pages;
    }
    const { code } = this.need();
    const opened = await Promise.all(
      specs.map(async (spec) =>
        TandemPage.open(await this.browserFor(spec), spec, {
          baseUrl: this.labDevice(spec)?.serverUrl ?? this.server.pageUrl,
          join: code,
          backend: this.opts.backend,
          modelName: this.modelName,
          unitFiles: this.opts.model.manifest.units.map((u) => u.file),
        }),
      ),
    );
    this.pages.push(...opened);
    await this.waitRoster(
      (peers) => specs.every((s) => peers.some((p) => p.displayName === s.name && p.connected)),
      `${specs.map((s) => s.name).join(', ')} to join`,
    );
    return opened;
  }

  /** The lab device a spec runs on, or null for a page of the shared browser. */
  private labDevice(spec: PeerSpec): LabDevice | null {
    if (!spec.device) return null;
    const i = this.opts.lab?.findIndex((s) => s.name === spec.name) ?? -1;
    const device = i >= 0 ? this.lab?.devices[i] : undefined;
    if (!device)
      throw new TandemError('e2e-usage', `${spec.name} has a device shape but was not in Harness.start({ lab })`);
    return device;
  }

  /**
   * The shared browser, or a new browser inside the page's lab device with a profile folder of its own:
   * every page opened on a device starts with empty storage, as a new context of the shared browser does
   * (a device whose last page is still open gets a second browser in its CPU group, not that page's tab).
   */
  private async browserFor(spec: PeerSpec): Promise<Browser | BrowserContext> {
    const device = this.labDevice(spec);
    if (!device) return this.browser;
    const { context } = await launchDeviceContext(device.chromiumWrapper, { webgpu: this.opts.webgpu ?? true });
    this.deviceContexts.add(context);
    context.once('close', () => this.deviceContexts.delete(context));
    return context;
  }

  page(name: string): TandemPage {
    const p = this.pages.find((x) => x.spec.name === name);
    if (!p) throw new TandemError('e2e-usage', `no page named ${name}`);
    return p;
  }

  /** The latest roster the driver received (empty before any). */
  roster(): RosterPeer[] {
    for (let i = this.driver.log.length - 1; i >= 0; i--) {
      const m = this.driver.log[i];
      if (m.type === 'roster') return m.peers;
      if (m.type === 'joined') return m.roster;
    }
    return [];
  }

  /** The peer id of the newest connected roster entry with this display name (a reloaded page rejoins anew). */
  peerId(name: string): string {
    const p = this.roster()
      .filter((r) => r.displayName === name && r.connected)
      .sort((a, b) => b.joinedAtMs - a.joinedAtMs)
      .at(0);
    if (!p) throw new TandemError('e2e-usage', `${name} is not in the roster`);
    return p.peerId;
  }

  /** Wait until the roster satisfies `pred` (checks the latest roster, then every new one). */
  async waitRoster(pred: (peers: RosterPeer[]) => boolean, what: string, timeoutMs = 120_000): Promise<RosterPeer[]> {
    if (pred(this.roster())) return this.roster();
    try {
      const m = await this.driver.next('roster', (r) => pred(r.peers), timeoutMs, this.driver.log.length);
      return m.peers;
    } catch (err) {
      throw new TandemError(
        'e2e-timeout',
        `Waited for ${what}: ${(err as Error).message}\nroster: ${JSON.stringify(this.roster().map((p) => ({ n: p.displayName, c: p.connected, prof: p.profile !== null, cached: p.cachedUnits })))}\n${this.diagnostics()}`,
      );
    }
  }

  /** Wait until every connected page (or the named ones) has reported a profile. */
  async waitProfiled(names?: readonly string[], timeoutMs = 180_000): Promise<RosterPeer[]> {
    const want = names ?? this.pages.filter((p) => !p.page.isClosed()).map((p) => p.spec.name);
    const peers = await this.waitRoster(
      (peers) => want.every((n) => peers.some((p) => p.displayName === n && p.profile !== null)),
      `profiles of ${want.join(', ')}`,
      timeoutMs,
    );
    // whether each page will load its stages in parts (client/profiler/parallel-load.ts): it changes the
    // cold start's phases, so a bench's log says it
    const figures = await Promise.all(
      this.pages
        .filter((p) => want.includes(p.spec.name))
        .map(async (p) => {
          const snap = await p.state<{ profile?: { details?: { load?: { parallel?: ParallelLoad | null } } } }>();
          const par = snap?.profile?.details?.load?.parallel;
          return `${p.spec.name} ${par ? `${par.parallelism.toFixed(2)}${par.inParts ? ' (in parts)' : ''}` : '-'}`;
        }),
    );
    this.log(`harness: parallel-load figures: ${figures.join(', ')}`);
    return peers;
  }

  async plan(method: PlanMethod = 'dp', tokens?: number): Promise<ServerMessageOf<'plan-ready'>> {
    const { code, hostSecret } = this.need();
    // Generous: on a small shared machine the pages' work can starve the server for a while.
    const plan = await this.driver.request(
      { type: 'plan', code, hostSecret, method, ...(tokens !== undefined ? { tokens } : {}) },
      'plan-ready',
      180_000,
    );
    this.log(
      `harness: ${method} plan ${plan.planId}: T = ${plan.predictedLatency.toFixed(3)} s, ` +
        plan.stages.map((s) => `${s.displayName} [${s.layers.start + 1}-${s.layers.end}]`).join(' -> '),
    );
    return plan;
  }

  /** Wait until every stage's page reports (cache-status) holding all the units its stage needs. */
  async waitCached(plan: ServerMessageOf<'plan-ready'>, timeoutMs = 180_000): Promise<void> {
    const need = plan.stages.map((s) => ({ peerId: s.peerId, units: unitsForStage(s.layers, s.embeds, s.hasHead) }));
    await this.waitRoster(
      (peers) =>
        need.every((n) => {
          const p = peers.find((x) => x.peerId === n.peerId);
          return p !== undefined && n.units.every((u) => p.cachedUnits.includes(u));
        }),
      `stage pages to cache their units (${plan.planId})`,
      timeoutMs,
    );
  }

  /**
   * Waits until every stage page of `plan` has built its stage: a last stage loads the tokenizer first (a
   * main-thread task of seconds on a lab device), and a start that arrives during it starts that page's
   * clock late, so its phases and the TTFT on its clock would read short.
   */
  async waitPrepared(plan: ServerMessageOf<'plan-ready'>): Promise<void> {
    await Promise.all(plan.stages.map((s) => this.page(s.displayName).waitPrepared(plan.planId)));
  }

  /**
   * Start a request and wait for it to finish: the last `output` with done, then the timing reports of
   * every stage (until each stage has reported and 1 s passes without a new report).
   */
  async go(
    plan: ServerMessageOf<'plan-ready'>,
    prompt: string,
    maxNewTokens: number,
    sampling: Sampling = GREEDY,
    timeoutMs = 300_000,
    /** runs as soon as the request's last output arrives, before its timings are gathered (~1-2 s) */
    onDone?: () => Promise<void>,
  ): Promise<PlanRun> {
    const { code, hostSecret } = this.need();
    const mark = this.driver.log.length;
    const t0 = performance.now();
    const start = await this.driver.request(
      { type: 'go', code, hostSecret, prompt, maxNewTokens, sampling },
      'start',
      120_000,
    );
    const requestId = start.requestId;
    this.log(`harness: request ${requestId} started (${plan.method})`);
    const first = this.driver
      .next('output', (m) => m.requestId === requestId, timeoutMs, mark)
      .then(
        () => performance.now(),
        () => null,
      );
    const failure = this.driver
      .next('peer-error', (m) => m.requestId === requestId, timeoutMs, mark)
      .then((e) => {
        throw new TandemError('e2e-peer-error', `${e.peerId} reported ${e.code}: ${e.message}\n${this.diagnostics()}`);
      });
    failure.catch(() => {});
    let done: ServerMessageOf<'output'>;
    try {
      done = await Promise.race([
        this.driver.next('output', (m) => m.requestId === requestId && m.done, timeoutMs, mark),
        failure,
      ]);
    } catch (err) {
      throw new TandemError(
        'e2e-request-failed',
        `Request ${requestId} (${plan.method}) did not finish: ${(err as Error).message}\n${this.diagnostics()}`,
      );
    }
    if (done.finishReason === 'error') {
      const failed = this.driver.log
        .slice(mark)
        .find((m): m is ServerMessageOf<'request-failed'> => m.type === 'request-failed' && m.requestId === requestId);
      const lost = this.driver.log.slice(mark).filter((m) => m.type === 'stage-lost' || m.type === 'repair');
      throw new TandemError(
        'e2e-request-failed',
        `Request ${requestId} (${plan.method}) ended in error: ${failed ? `${failed.code}: ${failed.message}` : '(no request-failed)'}\nfailover messages: ${JSON.stringify(lost)}\n${this.diagnostics()}`,
      );
    }
    await onDone?.();
    const firstAt = await first;
    const driverTtft = firstAt === null ? null : (firstAt - t0) / 1000;
    const timings = await this.collectTimings(plan, requestId, mark);
    const outputs = this.driver.log
      .slice(mark)
      .filter((m): m is ServerMessageOf<'output'> => m.type === 'output' && m.requestId === requestId);
    const lastPeer = plan.stages[plan.stages.length - 1].peerId;
    const byPeer = new Map(Object.entries(timings));
    return {
      method: plan.method,
      planId: plan.planId,
      requestId,
      planTokens: plan.tokens,
      predictedLatency: plan.predictedLatency,
      metrics: requestMetrics(timings[lastPeer] ?? []),
      driverTtft,
      generatedTokenIds: outputs.flatMap((o) => o.tokenIds),
      text: outputs.map((o) => o.text).join(''),
      stages: compareStages(plan, byPeer),
      timings,
      clocks: this.collectClocks(requestId, mark),
      finishReason: done.finishReason ?? null,
      failover: this.driver.log
        .slice(mark)
        .filter((m) => (m.type === 'stage-lost' || m.type === 'repair') && m.requestId === requestId)
        .map((m) => JSON.stringify(m)),
    };
  }

  private async collectTimings(
    plan: ServerMessageOf<'plan-ready'>,
    requestId: number,
    mark: number,
  ): Promise<Record<string, TimingEntry[]>> {
    const gather = () => {
      const out: Record<string, TimingEntry[]> = {};
      for (const m of this.driver.log.slice(mark)) {
        if (m.type === 'timings' && m.requestId === requestId) (out[m.peerId] ??= []).push(...m.timings);
      }
      return out;
    };
    const deadline = Date.now() + 20_000;
    let count = -1;
    while (Date.now() < deadline) {
      const now = gather();
      const n = Object.values(now).reduce((s, t) => s + t.length, 0);
      const everyStage = plan.stages.every((s) => Object.hasOwn(now, s.peerId) && now[s.peerId].length > 0);
      if (everyStage && n === count) return now;
      count = n;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return gather();
  }

  /**
   * Per page, the bound (ms) to which its timings of `requestId` are on the server's clock, or null where
   * any of its reports counted from its own start (core/clock-offset.ts).
   */
  private collectClocks(requestId: number, mark: number): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const m of this.driver.log.slice(mark)) {
      if (m.type !== 'timings' || m.requestId !== requestId) continue;
      out[m.peerId] = mergeClockBound(Object.hasOwn(out, m.peerId) ? out[m.peerId] : undefined, m.clockUncertaintyMs);
    }
    return out;
  }

  /** Screenshot a page into `dir/<file>`; returns the path. */
  async screenshot(page: TandemPage, dir: string, file: string): Promise<string> {
    mkdirSync(dir, { recursive: true });
    const path = `${dir}/${file}`;
    await page.screenshot(path);
    return path;
  }

  diagnostics(): string {
    const server = this.server.output().split('\n').slice(-25).join('\n');
    return `${this.pages.map((p) => p.diagnostics()).join('\n')}\nserver output (tail):\n${server}`;
  }

  async stop(): Promise<void> {
    if (VERBOSE) for (const p of this.pages) process.stderr.write(`--- ${p.spec.name}\n${p.consoleText()}\n`);
    this.driver.close();
    await this.browser.close().catch(() => {});
    for (const c of [...this.deviceContexts]) await c.close().catch(() => {});
    await this.server.stop();
    if (this.lab) this.lab.destroy();
    else this.net.destroy();
  }
}
