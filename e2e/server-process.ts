/**
 * A server process (the Tandem access point, or the bare PeerJS server) running inside the private
 * network, with its output kept for error messages and a readiness wait over the control link.
 */
import type { ChildProcess } from 'node:child_process';
import { TandemError } from '../core/errors.ts';
import { killTree, type PrivateNetwork } from './netns.ts';

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Base URL as the harness (on the host) sees it, e.g. http://10.78.5.2:8080 */
  readonly controlUrl: string;
  /** Base URL as pages (inside the namespace) see it: loopback, so a secure context. */
  readonly pageUrl: string;
  /** The last ~64 KB of stdout+stderr. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  net: PrivateNetwork;
  command: string;
  args: string[];
  port: number;
  /** Path polled with GET until it answers (any HTTP status < 500). */
  readyPath: string;
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Echo the server's output to this function as it comes (the demo's --verbose). */
  echo?: (text: string) => void;
  /** Called with the server's pid as soon as it is spawned (e.g. to put it in a control group). */
  onSpawn?: (pid: number) => void;
}

export async function startServerInNetwork(o: StartServerOptions): Promise<ServerProcess> {
  const child = o.net.spawn(o.command, o.args, {
    cwd: o.cwd ?? process.cwd(),
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) o.onSpawn?.(child.pid);
  let log = '';
  const keep = (chunk: Buffer) => {
    const text = chunk.toString();
    log = (log + text).slice(-65536);
    o.echo?.(text);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const controlUrl = `http://${o.net.controlIp}:${o.port}`;
  const server: ServerProcess = {
    child,
    controlUrl,
    pageUrl: `http://127.0.0.1:${o.port}`,
    output: () => log,
    stop: () => killTree(child),
  };
  try {
    await waitForHttp(`${controlUrl}${o.readyPath}`, o.readyTimeoutMs ?? 60_000, child, () => log);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** Poll `url` until it answers, failing early (with the server's output) if `child` exits. */
export async function waitForHttp(
  url: string,
  timeoutMs: number,
  child: ChildProcess,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new TandemError(
        'server-exited',
        `The server exited (${child.exitCode ?? child.signalCode}) before ${url} answered. Its output:\n${output()}`,
      );
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status < 500) return;
      lastError = `HTTP ${res.status}`;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new TandemError(
    'server-timeout',
    `${url} did not answer within ${timeoutMs / 1000} s (last: ${lastError}). Server output:\n${output()}`,
  );
}
