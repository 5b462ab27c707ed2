/**
 * A bounded, seeded fuzz of the access point (issue 9): raw HTTP request lines and headers over TCP,
 * coordinator messages on /ws, and PeerJS upgrade query strings, at least 10,000 cases in all, against
 * a server in a child process. Beside it an honest session keeps planning, starting and finishing
 * requests, with its pages registered on PeerJS. The server must be alive throughout (it never exits,
 * /api/health answers after every batch), never answer 500, and the honest session must complete
 * every round. Server RSS before and after is printed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { mulberry32 } from '../core/random.ts';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CLIENT_MESSAGE_TYPES, type ServerMessageOf } from '../core/protocol.ts';
import { forkTestServer, type ForkedServer } from './test-server-child.ts';
import { GREEDY, messageText, sampleProfile, TestClient } from './test-support.ts';

const SEED = 0x7a3d_e11f;
const HTTP_CASES = 3000;
const WS_CASES = 5000;
const PEERJS_CASES = 2200;

// Seeded, so a failing case can be replayed.
const rand = mulberry32(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const int = (n: number) => Math.floor(rand() * n);
function junk(
  max: number,
  alphabet = 'abcXYZ019/%?#&=.:[]@\\ \t"\'<>{}|^`~!$*()+,;\u00e9\u4e2d\u0000\u007f\r\n',
): string {
  let s = '';
  for (let i = int(max + 1); i > 0; i--) s += alphabet[int(alphabet.length)];
  return s;
}

let dir: string;
let server: ForkedServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tandem-fuzz-'));
  server = await forkTestServer(dir, {
    layers: 4,
    page: true,
    gateway: { messageRate: { burst: 1e6, perSecond: 1e6 } },
    limits: { heartbeatTimeoutMs: 30_000 },
  });
});

afterAll(async () => {
  await (server as ForkedServer | undefined)?.stop(); // unset when beforeAll failed
  await rm(dir, { recursive: true, force: true });
});

/** Writes `text`, half-closes, and returns the first line the server sent ('' if none) once it closed. */
function rawExchange(text: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port: server.port, host: '127.0.0.1', localAddress: `127.0.7.${1 + int(200)}` });
    let first = '';
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (d: Buffer) => {
      if (first === '') first = d.toString('latin1').split('\r\n')[0] ?? '';
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(first);
    });
    socket.end(text);
  });
}

/** Runs `cases` with at most `width` in flight. */
async function pool<T>(cases: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out = new Array<T>(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < cases.length) {
        const i = next++;
        out[i] = await cases[i]();
      }
    }),
  );
  return out;
}

async function health(): Promise<number> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port: server.port, path: '/api/health' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', () => resolve(-1));
  });
}

/** One honest session (host + 2 pages on PeerJS): plan -> assignments -> go -> tokens -> output, again and again. */
async function honestSession() {
  const address = '127.0.9.1';
  const host = await TestClient.open(server.url, address);
  const created = await host.request({ type: 'create-session', name: 'honest' });
  if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
  host.heartbeatEvery(1000);
  const pages: { client: TestClient; joined: ServerMessageOf<'joined'>; peerjs: WebSocket }[] = [];
  for (let i = 0; i < 2; i++) {
    const client = await TestClient.open(server.url, address);
    const joined = await client.request({ type: 'join', code: created.code, displayName: `honest${i}` });
    if (joined.type !== 'joined') throw new Error(JSON.stringify(joined));
    client.heartbeatEvery(1000);
    expect((await client.request({ type: 'profile', profile: sampleProfile(i + 1) })).type).toBe('ack');
    const peerjs = new WebSocket(
      `ws://127.0.0.1:${server.port}/peerjs/peerjs?key=peerjs&id=${joined.peerId}&token=${joined.peerjs.token}`,
      { localAddress: address },
    );
    await new Promise<void>((resolve, reject) => {
      peerjs.once('message', (d) =>
        (JSON.parse(messageText(d)) as { type?: unknown }).type === 'OPEN'
          ? resolve()
          : reject(new Error(messageText(d))),
      );
      peerjs.once('error', reject);
    });
    pages.push({ client, joined, peerjs });
  }
  let rounds = 0;
  const round = async (): Promise<void> => {
    const plan = await host.request(
      { type: 'plan', code: created.code, hostSecret: created.hostSecret, method: 'even', tokens: 16 },
      20_000,
    );
    if (plan.type !== 'plan-ready') throw new Error(JSON.stringify(plan));
    for (const stage of plan.stages) {
      const page = pages.find((p) => p.joined.peerId === stage.peerId)!;
      const a = await page.client.next('assignment', (m) => m.planId === plan.planId, 20_000);
      expect(a.stageIndex).toBe(stage.stageIndex);
    }
    const go = await host.request(
      {
        type: 'go',
        code: created.code,
        hostSecret: created.hostSecret,
        prompt: `round ${rounds}`,
        maxNewTokens: 2,
        sampling: GREEDY,
      },
      20_000,
    );
    if (go.type !== 'start') throw new Error(JSON.stringify(go));
    const last = pages.find((p) => p.joined.peerId === plan.stages.at(-1)!.peerId)!;
    expect(
      (
        await last.client.request(
          {
            type: 'report-tokens',
            requestId: go.requestId,
            tokenIds: [3, 4],
            text: 'ok',
            generated: 2,
            done: true,
            finishReason: 'max-tokens',
          },
          20_000,
        )
      ).type,
    ).toBe('ack');
    const out = await host.next('output', (m) => m.requestId === go.requestId && m.done, 20_000);
    expect(out.text).toBe('ok');
    rounds += 1;
  };
  return {
    round,
    rounds: () => rounds,
    pages,
    close: () => [host, ...pages.map((p) => p.client)].forEach((c) => c.close()),
  };
}

function httpCase(): string {
  const method =
    rand() < 0.6 ? 'GET' : pick(['POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'BREW', 'G ET', '', junk(8)]);
  const target = pick([
    '//',
    '//x:99999',
    '//[',
    '//x/ws',
    '/ws',
    '/ws?x=1',
    '/',
    '/index.html',
    '/%',
    '/%zz',
    '/%00',
    '/a%2f..%2f..%2fetc/passwd',
    '/models/synthetic-test/manifest.json',
    '/models/synthetic-test/..%2f..%2fpackage.json',
    '/models/%2e%2e/x',
    '/api/health',
    '/api/field-log.json',
    '/api/field-log.csv',
    '/api/models',
    '/api/sessions/ZZZZZZZZ/export?hostSecret=' + junk(50),
    '/api/nope',
    '/probe/down?bytes=' + junk(6, '0123456789-e.'),
    '/probe/up',
    '/peerjs',
    '/peerjs/peerjs/id',
    '/peerjs/peerjs?key=peerjs&id=' + junk(20),
    '*',
    'http://x:1/',
    'http://[/',
    '/' + junk(40),
    '/' + 'a'.repeat(9000),
  ]);
  const version = rand() < 0.8 ? 'HTTP/1.1' : pick(['HTTP/1.0', 'HTTP/2', 'HTTP/1.1x', '', 'http/1.1']);
  const headers: string[] = [rand() < 0.8 ? 'Host: x' : pick(['', 'Host: ' + junk(30), 'Host: a\r\nHost: b'])];
  const extra = [
    'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Connection: Upgrade\r\nUpgrade: websocket',
    'Connection: Upgrade',
    'Upgrade: h2c',
    'Connection: close',
    'Connection: keep-alive',
    'Content-Length: ' + pick(['0', '5', '-1', '99999999999999999999', 'abc', '10, 20']),
    'Transfer-Encoding: ' + pick(['chunked', 'gzip', 'chunked, chunked']),
    'Range: ' + pick(['bytes=0-0', 'bytes=-0', 'bytes=9-1', 'bytes=' + junk(10)]),
    'If-None-Match: ' + junk(20),
    'Origin: http://evil.example',
    junk(10, 'abcXYZ-') + ': ' + junk(10),
    'X-Long: ' + 'y'.repeat(int(20_000)),
    ': empty-name',
    'Bad Header Name: x',
    'Cookie: ' + junk(100),
  ];
  for (let i = int(5); i > 0; i--) headers.push(pick(extra));
  const body = pick(['', '', '0\r\n\r\n', 'zz\r\n', junk(200), '{"type":"join"}']);
  return `${method} ${target} ${version}\r\n${headers.filter((h) => h !== '').join('\r\n')}\r\n\r\n${body}`;
}

function wsCase(): string | Buffer {
  const kind = int(10);
  if (kind === 0) return Buffer.from(junk(64));
  if (kind === 1) return junk(200);
  if (kind === 2)
    return JSON.stringify(
      pick([null, 1, 'x', [], [1, { type: 'join' }], true, { type: null }, { type: {} }, { type: 'x'.repeat(5000) }]),
    );
  const type = pick([...CLIENT_MESSAGE_TYPES, 'admin', '__proto__', 'constructor', '']);
  const values = [
    null,
    -1,
    0,
    1.5,
    2 ** 53,
    -(2 ** 60),
    1e308,
    'x',
    '',
    'ZZZZZZZZ',
    'A'.repeat(44),
    junk(30),
    [],
    [1, 2],
    {},
    { a: { b: { c: [] } } },
    true,
    'layer.99999',
    'embed',
  ];
  const fields = [
    'ref',
    'code',
    'hostSecret',
    'displayName',
    'emulated',
    'name',
    'peerId',
    'peerSecret',
    'profile',
    'tokens',
    'method',
    'memoryModel',
    'prompt',
    'maxNewTokens',
    'sampling',
    'units',
    'requestId',
    'timings',
    'tokenIds',
    'text',
    'generated',
    'done',
    'finishReason',
    'unitId',
    'message',
    '__proto__',
    'constructor',
  ];
  const msg: Record<string, unknown> = { type };
  for (let i = int(6); i > 0; i--) msg[pick(fields)] = pick(values);
  if (kind === 3)
    msg['profile'] = {
      ...sampleProfile(int(100)),
      [pick(['peakFlops', 'utilA', 'sweep', 'gpu', 'memoryBytes', 'extra'])]: pick(values),
    };
  if (kind === 4)
    msg['units'] = Array.from({ length: int(50) }, () => pick(['embed', 'head', `layer.${int(10)}`, junk(8)]));
  const text = JSON.stringify(msg);
  return kind === 5 ? text.slice(0, int(text.length)) : text;
}

function peerjsCase(honest: { id: string; token: string }[]): string {
  const h = pick(honest);
  const id = pick([
    h.id,
    h.id,
    'p' + '0'.repeat(16),
    junk(20, 'abcdef0123456789'),
    '',
    junk(70),
    h.id + 'x',
    h.id.toUpperCase(),
  ]);
  // never the exact honest pair: that would be the page itself re-registering
  const token = pick([
    h.token.slice(1),
    h.token + 'A',
    'A'.repeat(43),
    '',
    junk(43, 'abcXYZ019-_'),
    pick(honest.filter((o) => o.id !== h.id)).token,
    '%' + junk(10),
  ]);
  const parts = [`key=${pick(['peerjs', 'peerjs', 'other', '', junk(6)])}`, `id=${id}`, `token=${token}`];
  for (let i = int(4); i > 0; i--)
    parts.push(
      pick([
        `id=${pick([h.id, junk(8)])}`,
        `token=${h.token}`,
        'key=peerjs',
        'version=1.5.5',
        junk(12),
        '&&',
        '=',
        'id',
        '%',
        `${junk(5)}=${junk(5)}`,
      ]),
    );
  for (let i = parts.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [parts[i], parts[j]] = [parts[j], parts[i]];
  }
  const path = pick(['/peerjs/peerjs', '/peerjs/peerjs', '/peerjs/peerjs/', '/peerjs', '//peerjs/peerjs']);
  return `GET ${path}?${parts.join('&')} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
}

describe('fuzz', () => {
  it(`survives ${HTTP_CASES + WS_CASES + PEERJS_CASES} hostile cases while an honest session completes its requests`, async () => {
    const before = await server.stats();
    const honest = await honestSession();
    await honest.round();
    let exited = false;
    server.child.once('exit', () => (exited = true));
    const statuses = new Map<string, number>();
    const count = (line: string) => {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1] ?? (line === '' ? 'no answer' : 'other');
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    };

    // The honest session keeps running rounds while the fuzz runs.
    // (A named function, not an IIFE: TypeScript checks an IIFE's body as if it ran to completion at once,
    // so it would read `fuzzing` as always true there.)
    let fuzzing = true;
    const honestRounds = async () => {
      while (fuzzing) {
        await honest.round();
        await new Promise((r) => setTimeout(r, 200)); // a session's pace, not a flood of its own
      }
    };
    const honestLoop = honestRounds();

    // 1. raw HTTP
    for (let batch = 0; batch < HTTP_CASES; batch += 500) {
      const lines = await pool(
        Array.from({ length: 500 }, () => {
          const text = httpCase();
          return () => rawExchange(text);
        }),
        24,
      );
      lines.forEach(count);
      expect(await health()).toBe(200);
    }

    // 2. /ws messages, on a few sockets; a socket the server closes (oversize, never joined) is replaced
    const sockets: WebSocket[] = [];
    const openWs = () =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { localAddress: `127.0.8.${1 + sockets.length}` });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
        ws.on('error', () => undefined);
      });
    for (let i = 0; i < 8; i++) sockets.push(await openWs());
    let wsReplies = 0;
    let wsErrors = 0;
    const listen = (ws: WebSocket) =>
      ws.on('message', (d) => {
        wsReplies += 1;
        const m = JSON.parse(messageText(d)) as { type: string; code?: string };
        if (m.type === 'error' && m.code === 'internal') wsErrors += 1;
      });
    sockets.forEach(listen);
    for (let i = 0; i < WS_CASES; i++) {
      const slot = i % sockets.length;
      if (sockets[slot].readyState !== WebSocket.OPEN) {
        sockets[slot] = await openWs();
        listen(sockets[slot]);
      }
      const data = wsCase();
      sockets[slot].send(data, { binary: Buffer.isBuffer(data) });
      if (i % 500 === 499) {
        // wait until every socket has processed what it was sent (one round trip each)
        await Promise.all(
          sockets.map((ws, k) =>
            ws.readyState !== WebSocket.OPEN
              ? Promise.resolve()
              : new Promise<void>((resolve) => {
                  const ref = 1e9 + i * 10 + k;
                  const on = (d: WebSocket.RawData) => {
                    if ((JSON.parse(messageText(d)) as { ref?: number }).ref === ref) {
                      ws.off('message', on);
                      resolve();
                    }
                  };
                  ws.on('message', on);
                  ws.once('close', () => resolve());
                  ws.send(JSON.stringify({ type: 'heartbeat', ref }));
                }),
          ),
        );
        expect(await health()).toBe(200);
      }
    }
    for (const ws of sockets) ws.close();

    // 3. PeerJS upgrade query strings
    const honestIds = honest.pages.map((p) => ({ id: p.joined.peerId, token: p.joined.peerjs.token }));
    const peerStatuses = new Map<string, number>();
    for (let batch = 0; batch < PEERJS_CASES; batch += 550) {
      const lines = await pool(
        Array.from({ length: 550 }, () => {
          const text = peerjsCase(honestIds);
          return () => rawExchange(text);
        }),
        24,
      );
      for (const line of lines) {
        const status = /^HTTP\/1\.1 (\d{3})/.exec(line)?.[1] ?? (line === '' ? 'no answer' : 'other');
        peerStatuses.set(status, (peerStatuses.get(status) ?? 0) + 1);
      }
      expect(await health()).toBe(200);
    }

    fuzzing = false;
    await honestLoop;
    await honest.round(); // and once more after the fuzz
    const after = await server.stats();
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    console.log(
      `fuzz seed ${SEED.toString(16)}: ${HTTP_CASES} HTTP, ${WS_CASES} /ws, ${PEERJS_CASES} PeerJS cases; honest rounds ${honest.rounds()}`,
    );
    console.log(`  HTTP answers: ${JSON.stringify(Object.fromEntries(statuses))}`);
    console.log(
      `  PeerJS upgrade answers: ${JSON.stringify(Object.fromEntries(peerStatuses))}; /ws replies ${wsReplies}`,
    );
    console.log(
      `  server RSS before ${mib(before.rssBytes)} MiB, after ${mib(after.rssBytes)} MiB (heap ${mib(before.heapUsedBytes)} -> ${mib(after.heapUsedBytes)} MiB)`,
    );

    expect(exited).toBe(false);
    expect(statuses.get('500') ?? 0).toBe(0);
    expect(wsErrors).toBe(0);
    expect(wsReplies).toBeGreaterThanOrEqual(WS_CASES * 0.9); // nearly every message is answered (oversize frames close instead)
    // no fuzzed query registered anything: only refusals (and no 5xx but the per-address cap)
    expect([...peerStatuses.keys()].filter((s) => s === '101' || s === '500')).toEqual([]);
    expect(honest.rounds()).toBeGreaterThanOrEqual(2);
    // the honest pages' PeerJS registrations were never displaced
    for (const p of honest.pages) expect(p.peerjs.readyState).toBe(WebSocket.OPEN);
    expect(after.rssBytes).toBeLessThan(before.rssBytes + 512 * 2 ** 20);
    honest.close();
  }, 240_000);
});
