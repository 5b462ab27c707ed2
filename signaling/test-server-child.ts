/**
 * A loopback test server in a child process, so that a test can watch the server's own memory and see
 * it survive: `forkTestServer(dir, options)` starts `startTestServer` here and talks over IPC
 * ('ready' with the port, 'stats' with process.memoryUsage(), 'stop').
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestServer } from './test-support.ts';

type Options = Parameters<typeof startTestServer>[1];
type ChildMessage =
  { type: 'ready'; port: number; url: string } | { type: 'stats'; rssBytes: number; heapUsedBytes: number };

export interface ForkedServer {
  url: string;
  port: number;
  child: ChildProcess;
  /** The child's memory now. */
  stats(): Promise<{ rssBytes: number; heapUsedBytes: number }>;
  stop(): Promise<number | null>;
}

export async function forkTestServer(dir: string, options: Options): Promise<ForkedServer> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', dir, JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Extract<ChildMessage, { type: 'ready' }>>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the test server exited early (${code})`)));
    child.on('message', (m: ChildMessage) => m.type === 'ready' && resolve(m));
  });
  return {
    url: ready.url,
    port: ready.port,
    child,
    stats: () =>
      new Promise((resolve) => {
        const on = (m: ChildMessage) => {
          if (m.type !== 'stats') return;
          child.off('message', on);
          resolve({ rssBytes: m.rssBytes, heapUsedBytes: m.heapUsedBytes });
        };
        child.on('message', on);
        child.send({ type: 'stats' });
      }),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) {
          resolve(child.exitCode);
          return;
        }
        child.once('exit', (code) => resolve(code));
        child.send({ type: 'stop' });
      }),
  };
}

async function serve(dir: string, options: Options): Promise<void> {
  const { server } = await startTestServer(dir, options);
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stats') {
      const m = process.memoryUsage();
      process.send?.({ type: 'stats', rssBytes: m.rss, heapUsedBytes: m.heapUsed } satisfies ChildMessage);
    }
    if (msg.type === 'stop') void server.close().then(() => process.exit(0));
  });
  process.send?.({ type: 'ready', port: server.port, url: server.url } satisfies ChildMessage);
}

if (process.argv[2] === '--serve') void serve(process.argv[3], JSON.parse(process.argv[4]) as Options);
