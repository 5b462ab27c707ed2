/**
 * What the end-to-end runs need from the machine (a Chromium, network namespaces), checked once, and a
 * Chromium launched inside a private network. Shared by the e2e tests, the demo and the bench.
 */
import { chromium as playwright, type Browser } from 'playwright-core';
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
