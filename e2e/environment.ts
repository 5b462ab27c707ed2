/**
 * What the end-to-end runs need from the machine (a Chromium, network namespaces), checked once, and a
 * Chromium launched inside a private network. Shared by the e2e tests, the demo and the bench.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { chromium as playwright, type Browser, type BrowserContext } from 'playwright-core';
import { TandemError } from '../core/errors.ts';
import { chromiumArgs, ensureChromium, type BrowserLocation } from './browser.ts';
import { ensureIproute2, namespaceSupport, type PrivateNetwork } from './netns.ts';

export type E2eReadiness = { ok: true; chromium: BrowserLocation } | { ok: false; reason: string };

/**
 * Find (or on root Debian, install) Chromium and iproute2 and check that namespaces can be made.
 * Missing capabilities give `{ ok: false, reason }` for a loud skip, unless TANDEM_E2E_REQUIRED=1, where
 * they throw (CI machines that must run the browser tests set it).
 */
export function prepareE2e(log: (line: string) => void = (l) => console.log(l)): E2eReadiness {
  let result: E2eReadiness;
  try {
    const support = namespaceSupport();
    if (!support.ok) {
      result = { ok: false, reason: support.reason };
    } else {
      ensureIproute2(log);
      result = { ok: true, chromium: ensureChromium(log) };
    }
  } catch (err) {
    if (!(err instanceof TandemError)) throw err;
    result = { ok: false, reason: `${err.code}: ${err.message}` };
  }
  if (!result.ok && process.env.TANDEM_E2E_REQUIRED === '1') {
    throw new TandemError(
      'e2e-unavailable',
      `TANDEM_E2E_REQUIRED=1 but the browser tests cannot run: ${result.reason}`,
    );
  }
  return result;
}

/** The Chromium a CLI (`what`: 'The demo', ...) runs; throws TandemError('e2e-unavailable') saying why it cannot. */
export function requireE2e(what: string, log: (line: string) => void): BrowserLocation {
  const ready = prepareE2e(log);
  if (!ready.ok)
    throw new TandemError(
      'e2e-unavailable',
      `${what} needs headless Chromium in a private network namespace: ${ready.reason}`,
    );
  return ready.chromium;
}

/** A loud banner for skipped browser tests: a skip must never look like a pass. */
export function skipBanner(what: string, reason: string): string {
  const line = '!'.repeat(100);
  return `\n${line}\n!!! SKIPPED ${what}: ${reason}\n!!! These tests did NOT run. Run as root on Linux with Chromium to run them.\n${line}\n`;
}

export interface LaunchOptions {
  /** Add --enable-unsafe-webgpu (SwiftShader on this machine). */
  webgpu: boolean;
  headless?: boolean;
}

/** Launch Chromium inside `net` (through the namespace wrapper script, so Playwright's pipe still works). */
export async function launchInNetwork(net: PrivateNetwork, opts: LaunchOptions): Promise<Browser> {
  return launchWithWrapper(net.chromiumWrapper, opts);
}

/** Launch Chromium through a wrapper script (a namespace's, or a lab device's that also enters its CPU group). */
export async function launchWithWrapper(wrapper: string, opts: LaunchOptions): Promise<Browser> {
  return playwright.launch({
    executablePath: wrapper,
    headless: opts.headless ?? true,
    args: chromiumArgs({ webgpu: opts.webgpu }),
    // Playwright's own handlers would kill the browser before our namespace teardown runs; we close it.
    handleSIGINT: false,
    handleSIGTERM: false,
    timeout: 60_000,
  });
}

/** The viewport of every e2e page (a laptop's window). */
export const PAGE_VIEWPORT = { width: 1280, height: 900 } as const;

/** A lab device's browser and where it keeps its profile. */
export interface DeviceBrowser {
  /** the device's browser: closing it closes the browser */
  context: BrowserContext;
  /** its profile folder (removed once the context closes) */
  profileDir: string;
}

/**
 * A lab device's browser with a profile folder of its own (a persistent context, as a phone's browser
 * keeps its storage on disk), through its wrapper script. An off-the-record context, Playwright's
 * default, keeps OPFS and IndexedDB in memory behind the browser process: in a 0.4-core group, reading
 * 217 MB of units with OPFS sync handles ran at 36 MB/s there and at 105 MB/s from a profile folder
 * (IndexedDB Blobs 50 and 58 MB/s; `npm run bench:storage` with and without --incognito), so the lab's
 * stage loads read at a third of a real device's speed. The folder goes when the context closes, or with
 * the lab.
 */
export async function launchDeviceContext(wrapper: string, opts: LaunchOptions): Promise<DeviceBrowser> {
  // beside the device's wrapper script, in the lab's folder, which the lab removes when it ends (on exit
  // too), so a killed run leaves no profile behind
  const profile = mkdtempSync(join(dirname(wrapper), 'profile-'));
  try {
    const context = await playwright.launchPersistentContext(profile, {
      executablePath: wrapper,
      headless: opts.headless ?? true,
      args: chromiumArgs({ webgpu: opts.webgpu }),
      viewport: PAGE_VIEWPORT,
      handleSIGINT: false,
      handleSIGTERM: false,
      timeout: 60_000,
    });
    // the browser may still be writing the folder as it exits: retried, and never an error of the run
    context.once('close', () => {
      void rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => {});
    });
    return { context, profileDir: profile };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}
