/**
 * Page object for one Tandem page (one device) in headless Chromium: opens the page with the URL
 * parameters a person or the harness uses (?join, ?host, ?name, ?emulate, ?backend), applies CPU
 * throttling through the DevTools protocol, counts model blob downloads, keeps the console for error
 * messages, and reads the page's `window.tandem` test state.
 *
 * Each page gets its own browser context, so its IndexedDB (the shard cache) is its own, as on a real
 * device; a reload keeps the context and therefore the cache.
 */
import type { LongTask } from '../client/app/long-tasks.ts';
import type { Browser, BrowserContext, CDPSession, Page, Request } from 'playwright-core';
import type { LabDeviceShape } from './lab.ts';
import { TandemError } from '../core/errors.ts';
import { PAGE_VIEWPORT } from './environment.ts';

export interface PeerSpec {
  /** Display name (unique in a session). */
  name: string;
  /** `?emulate=` value: a preset (e.g. 'paper-2') or JSON; the page labels itself emulated. */
  emulate?: string;
  /** Chromium CPU throttling rate through CDP (1 = none, 4 = 4x slower): the fallback where the lab cannot run. */
  cpuThrottle?: number;
  /** Run this page as a lab device (its own browser, namespace, CPU group and shaped links; see lab.ts). */
  device?: LabDeviceShape;
  /** Open it with `?hold=` (fault injection: `armHolds` / `releaseHold` stop its stage at a token count). */
  hold?: boolean;
  /** Open it with `?ring=main`: its stage and links on the main thread (a browser without the worker ring). */
  ringOnMain?: boolean;
  /** Open it with `?parts=`: its stage in parts (on, or up to n of any size), or in one session (off); default: as its profile says. */
  parts?: 'on' | 'off' | number;
}

export interface OpenOptions {
  /** Server base URL as the page sees it (http://127.0.0.1:PORT). */
  baseUrl: string;
  /** ?join=CODE */
  join?: string;
  /** ?host=1 */
  host?: boolean;
  backend: 'auto' | 'wasm' | 'webgpu';
  /** Package name: requests under /models/<name>/ for unit files count as blob downloads. */
  modelName: string;
  /** Unit file names of the package (manifest units[].file). */
  unitFiles: readonly string[];
}

export interface BlobDownload {
  file: string;
  /** ms since the page object was made */
  atMs: number;
  /** HTTP status, or -1 when the request failed */
  status: number;
}

export class TandemPage {
  readonly downloads: BlobDownload[] = [];
  readonly console: string[] = [];
  readonly errors: string[] = [];
  private readonly born = Date.now();
  private cdp: CDPSession | null = null;

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    readonly spec: PeerSpec,
    private readonly opts: OpenOptions,
  ) {
    const unitFiles = new Set(opts.unitFiles);
    const prefix = `/models/${encodeURIComponent(opts.modelName)}/`;
    const fileOf = (req: Request): string | null => {
      const path = new URL(req.url()).pathname;
      if (!path.startsWith(prefix)) return null;
      const file = decodeURIComponent(path.slice(prefix.length));
      return unitFiles.has(file) ? file : null;
    };
    page.on('requestfinished', (req) => {
      const file = fileOf(req);
      if (!file) return;
      const atMs = Date.now() - this.born;
      req.response().then(
        (res) => this.downloads.push({ file, atMs, status: res?.status() ?? -1 }),
        () => this.downloads.push({ file, atMs, status: -1 }), // the page closed meanwhile
      );
    });
    page.on('requestfailed', (req) => {
      const file = fileOf(req);
      if (file) this.downloads.push({ file, atMs: Date.now() - this.born, status: -1 });
    });
    page.on('console', (m) => {
      this.console.push(`${new Date().toISOString().slice(11, 23)} [${m.type()}] ${m.text()}`);
      if (this.console.length > 400) this.console.splice(0, 100);
    });
    page.on('pageerror', (e) => this.errors.push(e.stack ?? e.message));
  }

  /**
   * Opens the page in a context of its own: a new one of the shared `browser`, or a lab device's own
   * (persistent) context, whose first tab it uses.
   */
  static async open(target: Browser | BrowserContext, spec: PeerSpec, opts: OpenOptions): Promise<TandemPage> {
    const context = 'newContext' in target ? await target.newContext({ viewport: PAGE_VIEWPORT }) : target;
    const page = context.pages()[0] ?? (await context.newPage());
    const p = new TandemPage(context, page, spec, opts);
    await p.throttle();
    // generous: a lab device with a fraction of a core on a busy machine can take over 30 s to load the page
    await page.goto(p.url(), { waitUntil: 'domcontentloaded', timeout: 180_000 });
    return p;
  }

  /** The page URL with this peer's parameters. */
  url(overrides: { join?: string; host?: boolean } = {}): string {
    const u = new URL(`${this.opts.baseUrl}/`);
    const join = overrides.join ?? this.opts.join;
    const host = overrides.host ?? this.opts.host;
    if (join) u.searchParams.set('join', join);
    if (host) u.searchParams.set('host', '1');
    u.searchParams.set('name', this.spec.name);
    if (this.spec.emulate) u.searchParams.set('emulate', this.spec.emulate);
    if (this.opts.backend !== 'auto') u.searchParams.set('backend', this.opts.backend);
    if (this.spec.hold) u.searchParams.set('hold', '');
    if (this.spec.ringOnMain) u.searchParams.set('ring', 'main');
    if (this.spec.parts !== undefined) u.searchParams.set('parts', String(this.spec.parts));
    // A/B runs: TANDEM_PAGE_PARAMS='ring=main' gives every page that parameter (client/app/url-params.ts)
    for (const [key, value] of new URLSearchParams(process.env.TANDEM_PAGE_PARAMS ?? ''))
      u.searchParams.set(key, value);
    return u.toString();
  }

  /** Unit files fetched at or after `sinceMs` (page-object clock, see `now()`). */
  downloadsSince(sinceMs: number): BlobDownload[] {
    return this.downloads.filter((d) => d.atMs >= sinceMs);
  }

  now(): number {
    return Date.now() - this.born;
  }

  /** Reload (same context, so the IndexedDB cache survives) and re-apply CPU throttling. */
  async reload(): Promise<void> {
    await this.page.reload({ waitUntil: 'domcontentloaded' });
    await this.throttle();
  }

  /** Navigate to a (new) URL, e.g. to join another session. */
  async goto(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: 'domcontentloaded' });
    await this.throttle();
  }

  /** The page's `window.tandem` test state (JSON-cloned), or null when the page exposes none. */
  async state<T = unknown>(): Promise<T | null> {
    return this.page.evaluate(() => {
      const t = (window as unknown as { tandem?: { snapshot?: () => unknown } }).tandem;
      if (!t) return null;
      const value = typeof t.snapshot === 'function' ? t.snapshot() : t;
      return JSON.parse(JSON.stringify(value)) as unknown;
    }) as Promise<T | null>;
  }

  /** Make the page's stage hold (once) after these many generated tokens of a request (needs `hold`). */
  async armHolds(counts: number[]): Promise<void> {
    await this.page.evaluate((c) => window.tandem.holds.arm(c), counts);
  }

  /** Let the page's stage go on past `generated` (and never hold there again). */
  async releaseHold(generated: number): Promise<void> {
    await this.page.evaluate((g) => window.tandem.holds.release(g), generated);
  }

  /** The page's own clock (performance.now(), ms), which its long-task times use. */
  async pageNow(): Promise<number> {
    return this.page.evaluate(() => (window as unknown as { tandem: { now(): number } }).tandem.now());
  }

  /** Waits until the page has built its stage of `planId` (window.tandem.preparedPlan()). */
  async waitPrepared(planId: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const prepared = await this.page.evaluate(
        () => (window as unknown as { tandem: { preparedPlan?: () => string | null } }).tandem.preparedPlan?.() ?? null,
      );
      if (prepared === planId) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new TandemError(
      'e2e-timeout',
      `${this.spec.name}: its stage of plan ${planId} was not built within ${timeoutMs / 1000} s.\n${this.diagnostics()}`,
    );
  }

  /** Main-thread long tasks (> 50 ms) that started at or after `sinceMs` on the page clock. */
  async longTasks(sinceMs = 0): Promise<LongTask[]> {
    const all = await this.page.evaluate(
      () => (window as unknown as { tandem: { longTasks?: () => LongTask[] } }).tandem.longTasks?.() ?? [],
    );
    return all.filter((t) => t.startMs >= sinceMs);
  }

  /** Wait until `pred(window.tandem)` holds in the page. */
  async waitForState<T>(pred: (s: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: T | null = null;
    while (Date.now() < deadline) {
      last = await this.state<T>();
      if (last !== null && pred(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
      `${this.spec.name}: waited ${timeoutMs / 1000} s for ${what}; last state ${(JSON.stringify(last) as string | undefined)?.slice(0, 1500)}\n${this.diagnostics()}`,
    );
  }

  async screenshot(path: string): Promise<void> {
    // a full-page shot does not scroll: the cards below the viewport (content-visibility: auto) came out blank
    const shown = await this.page.addStyleTag({ content: '.card { content-visibility: visible !important; }' });
    try {
      await this.page.screenshot({ path, fullPage: true });
    } finally {
      await shown.evaluate((el) => (el as Element).remove());
    }
  }

  async close(): Promise<void> {
    await this.context.close();
  }

  /** Every console line kept (the last 300-400), with the page's clock. */
  consoleText(): string {
    return this.console.join('\n');
  }

  /** Console tail and page errors, for failure messages. */
  diagnostics(): string {
    const errs = this.errors.length ? `page errors:\n${this.errors.slice(-5).join('\n')}\n` : '';
    return `${errs}console (${this.spec.name}):\n${this.console.slice(-30).join('\n')}`;
  }

  private async throttle(): Promise<void> {
    const rate = this.spec.cpuThrottle ?? 1;
    if (rate <= 1) return;
    this.cdp ??= await this.context.newCDPSession(this.page);
    await this.cdp.send('Emulation.setCPUThrottlingRate', { rate });
  }
}
