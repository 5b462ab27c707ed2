/**
 * A private network namespace for WebRTC between headless pages on one machine.
 *
 * Chromium gathers no ICE candidates on loopback, so pages need a real interface. Inside namespace
 * `tandem-<pid>-<k>`:
 *   lo (up)                     pages open the server at http://127.0.0.1:PORT (a secure context, so
 *                               WebGPU and crypto.subtle are exposed)
 *   v0 10.77.N.1 <-> v1 10.77.N.2   a veth pair entirely inside the namespace; the default route points
 *                               at it, so anything not local dies in the namespace
 *   c1 10.78.N.2 <-> tdm<N>h 10.78.N.1 (host side)   a control link only: the harness on the host reaches
 *                               the server at 10.78.N.2; the namespace has no route beyond that /30
 * Nothing leaves the machine: the namespace's only way out is to the host's 10.78.N.1 address.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TandemError } from '../core/errors.ts';
import { aptInstall, canAptInstall } from './browser.ts';

export interface PrivateNetwork {
  /** Namespace name, `tandem-<pid>-<k>`. */
  readonly name: string;
  /** The namespace's address on the control link: the host reaches servers in the namespace here. */
  readonly controlIp: string;
  /** N of its 10.77.N.0/24 and 10.78.N.0/30 subnets (unique among live namespaces on this machine). */
  readonly subnet: number;
  /** Non-loopback addresses inside the namespace (WebRTC host candidates come from these). */
  readonly innerIps: string[];
  /** An executable that runs Chromium inside the namespace, for Playwright's `executablePath`. */
  readonly chromiumWrapper: string;
  /** Spawn `command args` inside the namespace, in its own process group (kill with `killTree`). */
  spawn(command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Kill everything still in the namespace and delete it (idempotent). */
  destroy(): void;
}

let counter = 0;
const live = new Set<PrivateNetwork>();

/** Whether this process can make namespaces, and if not, why (for a loud skip message). */
export function namespaceSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) {
    return {
      ok: false,
      reason: 'making a network namespace needs root (run the tests as root, e.g. in the CI container)',
    };
  }
  if (!ipBinary()) {
    if (!canAptInstall())
      return { ok: false, reason: 'the `ip` command (iproute2) is missing: apt-get install iproute2' };
  }
  return { ok: true };
}

/** Install iproute2 when `ip` is missing (root Debian only). */
export function ensureIproute2(log: (line: string) => void = () => {}): string {
  const found = ipBinary();
  if (found) return found;
  if (!canAptInstall()) {
    throw new TandemError(
      'iproute2-missing',
      'The `ip` command is missing: install iproute2 (apt-get install -y iproute2).',
    );
  }
  aptInstall(['iproute2'], log);
  const after = ipBinary();
  if (!after) throw new TandemError('iproute2-missing', 'apt-get installed iproute2 but `ip` is still not found.');
  return after;
}

/** Make the namespace (see the file comment). `chromium` is the browser binary the wrapper runs. */
export function createPrivateNetwork(chromium: string): PrivateNetwork {
  const ip = ensureIproute2();
  removeStaleNamespaces(ip);
  const name = `tandem-${process.pid}-${counter++}`;
  const n = freeSubnetIndex(ip);
  const hostIf = `tdm${n}h`;
  const run = (...args: string[]) => execFileSync(ip, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const inNs = (...args: string[]) => run('netns', 'exec', name, ip, ...args);
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  let created = false;
  try {
    run('netns', 'add', name);
    created = true;
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    inNs('addr', 'add', `10.77.${n}.1/24`, 'dev', 'v0');
    inNs('addr', 'add', `10.77.${n}.2/24`, 'dev', 'v1');
    inNs('link', 'set', 'v0', 'up');
    inNs('link', 'set', 'v1', 'up');
    inNs('route', 'add', 'default', 'via', `10.77.${n}.2`, 'dev', 'v0');
    run('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'c1', 'netns', name);
    run('addr', 'add', `10.78.${n}.1/30`, 'dev', hostIf);
    run('link', 'set', hostIf, 'up');
    inNs('addr', 'add', `10.78.${n}.2/30`, 'dev', 'c1');
    inNs('link', 'set', 'c1', 'up');
  } catch (err) {
    if (created) deleteNamespace(ip, name);
    rmSync(dir, { recursive: true, force: true });
    throw new TandemError('netns-failed', `Could not set up network namespace ${name}: ${describe(err)}`, {
      cause: err,
    });
  }

  const chromiumWrapper = join(dir, 'chromium-in-netns');
  // exec keeps Playwright's --remote-debugging-pipe file descriptors (3 and 4) attached to the browser.
  writeFileSync(chromiumWrapper, `#!/bin/sh\nexec ${ip} netns exec ${name} ${shellQuote(chromium)} "$@"\n`, {
    mode: 0o755,
  });

  let destroyed = false;
  const net: PrivateNetwork = {
    name,
    controlIp: `10.78.${n}.2`,
    subnet: n,
    innerIps: [`10.77.${n}.1`, `10.77.${n}.2`],
    chromiumWrapper,
    spawn(command, args, options = {}) {
      return spawn(ip, ['netns', 'exec', name, command, ...args], { ...options, detached: true });
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(net);
      deleteNamespace(ip, name);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(net);
  hookExit();
  return net;
}

/** SIGTERM a process group started by `PrivateNetwork.spawn`, then SIGKILL it after `graceMs`. */
export async function killTree(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child.pid, 'SIGTERM');
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([exited, timer])) === 'timeout') {
    signalGroup(child.pid, 'SIGKILL');
    await exited;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Kill the processes left in our namespace (they are ours: we made it) and delete it. */
/** Kill every process in namespace `name` and delete it (no error when it is already gone). */
export function deleteNamespace(ip: string, name: string): void {
  try {
    const pids = execFileSync(ip, ['netns', 'pids', name], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  } catch {
    // namespace already gone
  }
  try {
    execFileSync(ip, ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** Namespaces named tandem-<pid>-<k> whose creating process is dead are leftovers of a killed run. */
function removeStaleNamespaces(ip: string): void {
  for (const ns of listNamespaces(ip)) {
    const m = /^tandem-(\d+)-\d+(-d\d+)?$/.exec(ns); // -d<i>: a lab device's namespace (lab.ts)
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !processAlive(pid)) deleteNamespace(ip, ns);
  }
}

function listNamespaces(ip: string): string[] {
  const out = execFileSync(ip, ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** A subnet index N in 1..250 with no host interface tdm<N>h yet (parallel runs pick different ones). */
function freeSubnetIndex(ip: string): number {
  const links = execFileSync(ip, ['-o', 'link'], { encoding: 'utf8' });
  const used = new Set([...links.matchAll(/tdm(\d+)h/g)].map((m) => Number(m[1])));
  const start = (process.pid * 7 + counter * 13) % 250;
  for (let i = 0; i < 250; i++) {
    const n = ((start + i) % 250) + 1;
    if (!used.has(n)) return n;
  }
  throw new TandemError('netns-failed', 'All 250 tandem subnets are in use: remove stale tdm*h interfaces.');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ipBinary(): string | null {
  for (const p of ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) if (existsSync(p)) return p;
  return null;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return stderr ? `${err.message}: ${stderr}` : err.message;
  }
  return String(err);
}

/** A crash or Ctrl-C must not leave namespaces behind: hooked once, on the first namespace made. */
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const destroyAll = () => {
    for (const net of [...live]) net.destroy();
  };
  process.once('exit', destroyAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      destroyAll();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}
