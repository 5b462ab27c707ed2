/**
 * Finding (and on a fresh Debian machine, installing) the Chromium the end-to-end harness drives.
 *
 * Lookup order: $TANDEM_CHROMIUM, Debian's /usr/bin/chromium, Playwright's own downloaded Chromium.
 * Only Node APIs and playwright-core; no test framework here, so tests, demo and bench share it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { TandemError } from '../core/errors.ts';

export interface BrowserLocation {
  path: string;
  source: 'env' | 'debian' | 'playwright';
}

const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/** Where a Chromium is, or null. Never installs anything. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): BrowserLocation | null {
  const fromEnv = env.TANDEM_CHROMIUM;
  if (fromEnv) {
    if (!isExecutableFile(fromEnv)) {
      throw new TandemError(
        'browser-missing',
        `TANDEM_CHROMIUM=${fromEnv} is not an executable file: point it at a Chromium binary or unset it.`,
      );
    }
    return { path: fromEnv, source: 'env' };
  }
  if (isExecutableFile(DEBIAN_CHROMIUM)) return { path: DEBIAN_CHROMIUM, source: 'debian' };
  const own = playwrightChromiumPath();
  if (own && isExecutableFile(own)) return { path: own, source: 'playwright' };
  return null;
}

/**
 * Find Chromium; when there is none and this is a root Debian machine with apt-get, install Debian's
 * `chromium` package (the only browser reachable without the internet). Otherwise throw a clear
 * TandemError('browser-missing') that says what to install.
 */
export function ensureChromium(log: (line: string) => void = () => {}): BrowserLocation {
  const found = findChromium();
  if (found) return found;
  if (!canAptInstall()) {
    throw new TandemError(
      'browser-missing',
      'No Chromium found. Install one (Debian/Ubuntu: `sudo apt-get install -y chromium`), or set ' +
        'TANDEM_CHROMIUM=/path/to/chromium, or run `npx playwright install chromium` where the internet is reachable.',
    );
  }
  aptInstall(['chromium'], log);
  const after = findChromium();
  if (!after) {
    throw new TandemError(
      'browser-missing',
      `apt-get installed chromium but ${DEBIAN_CHROMIUM} is still missing; set TANDEM_CHROMIUM to the browser binary.`,
    );
  }
  return after;
}

/**
 * Chromium flags for the harness. The network ones stop Chromium from flooding the closed network; the
 * mDNS feature flag makes WebRTC offer plain IP host candidates, which peers in the namespace can reach.
 */
export function chromiumArgs(opts: { webgpu: boolean }): string[] {
  const args = [
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    // Several pages of one session share 2 cores: background tabs must not be throttled.
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
  ];
  if (opts.webgpu) args.push('--enable-unsafe-webgpu');
  // diagnosis: V8 flags for every page, e.g. --trace-wasm-compilation-times (printed with DEBUG=pw:browser)
  if (process.env.TANDEM_JS_FLAGS) args.push(`--js-flags=${process.env.TANDEM_JS_FLAGS}`);
  return args;
}

/** True when we are root on a machine with apt-get (a fresh Debian CI box). */
export function canAptInstall(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
}

/**
 * `apt-get update && apt-get install -y <packages>` under a machine-wide lock directory, so that parallel
 * test files do not race each other (apt's own lock would make the loser fail instead of wait).
 */
export function aptInstall(packages: string[], log: (line: string) => void = () => {}): void {
  const lock = '/tmp/tandem-e2e-apt.lock';
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) {
        throw new TandemError('apt-lock-timeout', `Waited 15 min for ${lock}; remove it if no install is running.`);
      }
      execFileSync('sleep', ['2']);
    }
  }
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    log(`e2e: installing ${packages.join(', ')} with apt-get (one-time, needs root and Debian's mirror)`);
    for (const argv of [['update'], ['install', '-y', '--no-install-recommends', ...packages]]) {
      const r = spawnSync('apt-get', argv, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 14 * 60_000 });
      if (r.status !== 0) {
        // both are null when apt-get could not be started at all
        const tail =
          `${(r.stdout as Buffer | null)?.toString() ?? ''}${(r.stderr as Buffer | null)?.toString() ?? ''}`.slice(
            -2000,
          );
        throw new TandemError(
          'apt-install-failed',
          `apt-get ${argv.join(' ')} failed (exit ${r.status}); install ${packages.join(' ')} by hand.\n${tail}`,
        );
      }
    }
  } finally {
    rmdirSync(lock);
  }
}

function playwrightChromiumPath(): string | null {
  try {
    return chromium.executablePath();
  } catch {
    return null;
  }
}

function isExecutableFile(path: string): boolean {
  try {
    const s = statSync(path);
    return s.isFile() && (s.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}
