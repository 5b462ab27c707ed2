/**
 * Hostile clients against the real server on loopback (issue 9), one `describe` per point: requests that
 * used to end the process, PeerJS registration (duplicate ids, squatting, takeover after a drop, ghosts
 * after leave), connection hygiene, roster rate, the join-code oracle, the field log, symlinks, methods,
 * CORS and forged error reports. Every test also checks that the server still answers afterwards.
 * Different tests use different loopback addresses (127.0.x.y), since limits are per client address.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { FieldLog } from './field-log.ts';
import { startServer, type TandemServer } from './http-server.ts';
import { loadModelPackage } from './model-route.ts';
import type { ServerMessageOf } from '../core/protocol.ts';
import { GREEDY, messageText, sampleProfile, TestClient, writeSyntheticPackage } from './test-support.ts';
import { selfSignedTls } from './tls.ts';

let dir: string;
let server: TandemServer;
let port: number;

const JOIN_BURST = 6;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tandem-security-'));
  const pkgDir = path.join(dir, 'pkg');
  await writeSyntheticPackage(pkgDir, { layers: 4 });
  const page = path.join(dir, 'page');
  await mkdir(page, { recursive: true });
  await writeFile(path.join(page, 'index.html'), '<!doctype html><title>page</title>');
  await writeFile(path.join(dir, 'outside.txt'), 'OUTSIDE THE ROOT');
  await symlink(path.join(dir, 'outside.txt'), path.join(page, 'linked.txt'));
  await symlink(dir, path.join(page, 'linkdir'));
  server = await startServer({
    port: 0,
    host: '127.0.0.1',
    models: [await loadModelPackage(pkgDir)],
    clientDir: page,
    fieldLogPath: path.join(dir, 'field.jsonl'),
    limits: {
      heartbeatTimeoutMs: 2000,
      sessionIdleMs: 300,
      joinRate: { burst: JOIN_BURST, perSecond: 0.2 },
      maxSessionsPerAddress: 3,
    },
    gateway: { tickMs: 50, joinDeadlineMs: 400, pingIntervalMs: 200 },
    maxPeerJsSocketsPerAddress: 3,
    fieldLogMaxDownloads: 2,
  });
  port = server.port;
});

afterAll(async () => {
  await (server as TandemServer | undefined)?.close(); // unset when beforeAll failed
  await rm(dir, { recursive: true, force: true });
});

/** Sends `text` on a raw TCP socket and returns everything the server sent until it closed (or 5 s passed). */
function rawRequest(text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => resolve(Buffer.concat(chunks).toString('latin1'));
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, 5000);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
    socket.write(text);
  });
}

function get(
  pathText: string,
  options: { method?: string; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: pathText,
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: options.localAddress,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function expectAlive(): Promise<void> {
  expect((await get('/api/health')).status).toBe(200);
}

/** A host with `n` joined pages (heartbeating), all from `address`. */
async function sessionWith(n: number, address: string) {
  const host = await TestClient.open(server.url, address);
  const created = await host.request({ type: 'create-session' });
  if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
  const pages: { client: TestClient; joined: ServerMessageOf<'joined'> }[] = [];
  for (let i = 0; i < n; i++) {
    const client = await TestClient.open(server.url, address);
    const joined = await client.request({ type: 'join', code: created.code, displayName: `page${i}` });
    if (joined.type !== 'joined') throw new Error(JSON.stringify(joined));
    client.heartbeatEvery(200);
    pages.push({ client, joined });
  }
  host.heartbeatEvery(200);
  return {
    host,
    code: created.code,
    hostSecret: created.hostSecret,
    pages,
    close: () => [host, ...pages.map((p) => p.client)].forEach((c) => c.close()),
  };
}

type PeerJsOutcome =
  { kind: 'open'; ws: WebSocket } | { kind: 'refused'; status: number } | { kind: 'message'; type: string };

/** Opens a PeerJS signaling socket with `query` and reports what happened first. */
function peerjs(query: string, address = '127.0.0.1'): Promise<PeerJsOutcome> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/peerjs/peerjs?${query}`, { localAddress: address });
  return new Promise((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve({ kind: 'refused', status: res.statusCode ?? 0 }));
    ws.on('error', () => resolve({ kind: 'refused', status: -1 }));
    ws.on('message', (data) => {
      const type = (JSON.parse(messageText(data)) as { type: string }).type;
      if (type === 'OPEN') resolve({ kind: 'open', ws });
      else resolve({ kind: 'message', type });
    });
  });
}

const q = (id: string, token: string, extra = '') => `key=peerjs&id=${id}&token=${token}${extra}`;
const closeOf = (ws: WebSocket) =>
  new Promise<number>((resolve) =>
    ws.readyState === WebSocket.CLOSED ? resolve(-1) : ws.once('close', (code) => resolve(code)),
  );

describe('1. no request ends the process', () => {
  it('answers 400 to request targets that threw in the upgrade path and in the handler', async () => {
    const targets = ['//', '//x:99999', '//[', '//x/ws', '/\\\\evil', '//%zz', '//peerjs/peerjs?key=peerjs'];
    for (const target of targets) {
      const upgrade = await rawRequest(
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
      expect({ target, line: upgrade.split('\r\n')[0] }).toEqual({ target, line: 'HTTP/1.1 400 Bad Request' });
      const plain = await rawRequest(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect({ target, line: plain.split('\r\n')[0] }).toEqual({ target, line: 'HTTP/1.1 400 Bad Request' });
      expect(plain).not.toMatch(/Invalid URL|TypeError|at .*\.ts/); // no internals
      await expectAlive();
    }
    // Absolute-form and asterisk-form targets, bad methods and header garbage: 4xx, never a crash.
    for (const line of [
      'GET http://x:99999/ HTTP/1.1',
      'OPTIONS * HTTP/1.1',
      'BREW /api/health HTTP/1.1',
      'GET /api/health HTTP/9.9',
    ]) {
      const res = await rawRequest(`${line}\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
      expect({ line, status: typeof Number(res.split(' ')[1]) }).toEqual({ line, status: 'number' });
      const status = Number(res.split(' ')[1]);
      if (res.length > 0) expect({ line, ok: status >= 400 && status < 500 }).toEqual({ line, ok: true });
      await expectAlive();
    }
  });
});

describe('1. over HTTPS too', () => {
  it('answers 400 to the crash requests on a TLS server and keeps serving', async () => {
    const tlsDir = path.join(dir, 'tls');
    const files = await selfSignedTls(tlsDir, ['127.0.0.1']);
    const secure = await startServer({
      port: 0,
      host: '127.0.0.1',
      tls: { cert: files.cert, key: files.key },
      models: [await loadModelPackage(path.join(dir, 'pkg'))],
      clientDir: null,
      fieldLogPath: path.join(tlsDir, 'field.jsonl'),
    });
    const exchange = (text: string) =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({ port: secure.port, host: '127.0.0.1', rejectUnauthorized: false }, () =>
          socket.write(text),
        );
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(got));
      });
    try {
      for (const target of ['//', '//x:99999', '//[']) {
        const res = await exchange(
          `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
        );
        expect({ target, line: res.split('\r\n')[0] }).toEqual({ target, line: 'HTTP/1.1 400 Bad Request' });
      }
      const health = await exchange('GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(health.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    } finally {
      await secure.close();
    }
  });
});

describe('2. PeerJS registration is bound to the coordinator', () => {
  it('refuses duplicate, missing and unknown parameters, and a wrong key', async () => {
    const s = await sessionWith(1, '127.0.1.1');
    const { peerId, peerjs: p } = s.pages[0].joined;
    expect(await peerjs(q(peerId, p.token, `&id=${peerId}`))).toEqual({ kind: 'refused', status: 400 });
    expect(await peerjs(`key=peerjs&id=${peerId}&id=p0000000000000000&token=${p.token}`)).toEqual({
      kind: 'refused',
      status: 400,
    });
    expect(await peerjs(q(peerId, p.token, `&token=${p.token}`))).toEqual({ kind: 'refused', status: 400 });
    expect(await peerjs(q(peerId, p.token, '&key=peerjs'))).toEqual({ kind: 'refused', status: 400 });
    expect(await peerjs(`key=peerjs&id=${peerId}`)).toEqual({ kind: 'refused', status: 400 });
    expect(await peerjs(q(peerId, p.token, '&admin=1'))).toEqual({ kind: 'refused', status: 400 });
    expect(await peerjs(`key=other&id=${peerId}&token=${p.token}`)).toEqual({ kind: 'refused', status: 403 });
    const own = await peerjs(q(peerId, p.token, '&version=1.5.5'));
    expect(own.kind).toBe('open');
    if (own.kind === 'open') own.ws.close();
    s.close();
  });

  it('a member cannot squat a new page id or take over a live one after its socket drops', async () => {
    const s = await sessionWith(2, '127.0.1.2');
    const [victim, member] = s.pages as [(typeof s.pages)[0], (typeof s.pages)[0]];
    const victimId = victim.joined.peerId;
    // The member sees the victim's id in the roster and registers it first: refused (it has no token for it).
    expect(member.joined.roster.some((r) => r.peerId === victimId) || victim.joined.roster.length > 0).toBe(true);
    expect(await peerjs(q(victimId, member.joined.peerjs.token), '127.0.1.3')).toEqual({
      kind: 'refused',
      status: 403,
    });
    expect(await peerjs(q(victimId, 'A'.repeat(43)), '127.0.1.3')).toEqual({ kind: 'refused', status: 403 });
    // The victim registers normally.
    const first = await peerjs(q(victimId, victim.joined.peerjs.token));
    if (first.kind !== 'open') throw new Error(JSON.stringify(first));
    // Its signaling socket drops; the member tries to take the id over in that gap: refused.
    first.ws.terminate();
    await vi.waitFor(() => expect(server.peerSockets.has(victimId)).toBe(false));
    expect(await peerjs(q(victimId, member.joined.peerjs.token), '127.0.1.3')).toEqual({
      kind: 'refused',
      status: 403,
    });
    // The victim comes back with its token; one socket per id: a second registration replaces the first.
    const back = await peerjs(q(victimId, victim.joined.peerjs.token));
    if (back.kind !== 'open') throw new Error(JSON.stringify(back));
    const backClosed = closeOf(back.ws);
    const again = await peerjs(q(victimId, victim.joined.peerjs.token));
    expect(again.kind).toBe('open');
    await backClosed;
    expect(back.ws.readyState).toBe(WebSocket.CLOSED);
    if (again.kind === 'open') again.ws.close();
    s.close();
    await expectAlive();
  });

  it('closes the registration of a page that leaves or times out, and never admits its id again', async () => {
    const s = await sessionWith(2, '127.0.1.4');
    const [leaver, silent] = s.pages as [(typeof s.pages)[0], (typeof s.pages)[0]];
    const leaverWs = await peerjs(q(leaver.joined.peerId, leaver.joined.peerjs.token));
    const silentWs = await peerjs(q(silent.joined.peerId, silent.joined.peerjs.token));
    if (leaverWs.kind !== 'open' || silentWs.kind !== 'open') throw new Error('registration failed');
    const leaverClosed = closeOf(leaverWs.ws);
    const silentClosed = closeOf(silentWs.ws);
    expect((await leaver.client.request({ type: 'leave' })).type).toBe('ack');
    expect(await leaverClosed).toBe(4000);
    // the ghost: the departed id with its own valid token
    expect(await peerjs(q(leaver.joined.peerId, leaver.joined.peerjs.token))).toEqual({ kind: 'refused', status: 403 });
    // a page that stops its heartbeats is dropped, and its PeerJS socket with it
    silent.client.terminate();
    expect(await silentClosed).toBe(4000);
    expect(await peerjs(q(silent.joined.peerId, silent.joined.peerjs.token))).toEqual({ kind: 'refused', status: 403 });
    s.close();
  });

  it('caps PeerJS sockets per address', async () => {
    const s = await sessionWith(4, '127.0.1.5');
    const open: WebSocket[] = [];
    const outcomes: (string | number)[] = [];
    for (const page of s.pages) {
      const r = await peerjs(q(page.joined.peerId, page.joined.peerjs.token), '127.0.1.6');
      outcomes.push(r.kind === 'refused' ? r.status : r.kind);
      if (r.kind === 'open') open.push(r.ws);
    }
    expect(outcomes).toEqual(['open', 'open', 'open', 503]);
    // the same page from another address is fine
    const last = s.pages[3].joined;
    const elsewhere = await peerjs(q(last.peerId, last.peerjs.token), '127.0.1.7');
    expect(elsewhere.kind).toBe('open');
    if (elsewhere.kind === 'open') open.push(elsewhere.ws);
    for (const ws of open) ws.close();
    s.close();
  });
});

describe('5. connection hygiene', () => {
  it('closes sockets that never join (4002) and keeps joined ones', async () => {
    const idle = await TestClient.open(server.url, '127.0.2.1');
    const s = await sessionWith(1, '127.0.2.1');
    expect((await idle.closed).code).toBe(4002);
    // the joined page and the host outlive the deadline
    expect((await s.pages[0].client.request({ type: 'heartbeat' })).type).toBe('heartbeat-ack');
    expect((await s.host.request({ type: 'heartbeat' })).type).toBe('heartbeat-ack');
    s.close();
  });

  it('cuts a socket that stops answering pings', async () => {
    const mute = new WebSocket(`ws://127.0.0.1:${port}/ws`, { autoPong: false, localAddress: '127.0.2.2' });
    await new Promise((resolve) => mute.once('open', resolve));
    mute.send(JSON.stringify({ type: 'create-session' })); // bound, so only the ping check can close it
    let pings = 0;
    mute.on('ping', () => (pings += 1));
    const code = await new Promise<number>((resolve) => mute.once('close', (c) => resolve(c)));
    expect(code).toBe(1006); // terminated, no close frame
    expect(pings).toBeGreaterThanOrEqual(1);
  });

  it('caps sessions per address and expires abandoned empty sessions', async () => {
    const codes: string[] = [];
    const hosts: TestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const host = await TestClient.open(server.url, '127.0.2.3');
      hosts.push(host);
      const r = await host.request({ type: 'create-session' });
      codes.push(r.type === 'error' ? r.code : r.type);
    }
    expect(codes).toEqual(['session-created', 'session-created', 'session-created', 'rate-limited']);
    const before = server.coordinator.sessionCount;
    for (const h of hosts) h.close(); // abandoned: no pages, no host connection
    await vi.waitFor(() => expect(server.coordinator.sessionCount).toBeLessThanOrEqual(before - 3), {
      timeout: 5000,
      interval: 50,
    });
    const host = await TestClient.open(server.url, '127.0.2.3');
    expect((await host.request({ type: 'create-session' })).type).toBe('session-created');
    host.close();
  });
});

describe('6. roster broadcasts', () => {
  it('coalesces a flood of changes to a few rosters per second and ignores unchanged cache-status', async () => {
    const s = await sessionWith(2, '127.0.3.1');
    const flooder = s.pages[0].client;
    await s.host.next('roster', (r) => r.peers.length === 2);
    const rostersBefore = s.host.messages.filter((m) => m.type === 'roster').length;
    const t0 = performance.now();
    const N = 120;
    for (let i = 0; i < N; i++)
      expect(
        (await flooder.request({ type: 'cache-status', units: i % 2 === 0 ? ['embed'] : ['embed', 'head'] })).type,
      ).toBe('ack');
    const elapsedMs = performance.now() - t0;
    // the final state arrives (trailing roster), then count
    const final = await s.host.next('roster', (r) =>
      r.peers.some((p) => p.cachedUnits.length === 2 && p.peerId === s.pages[0].joined.peerId),
    );
    expect(final.type).toBe('roster');
    const afterFlood = s.host.messages.filter((m) => m.type === 'roster').length - rostersBefore;
    expect(afterFlood).toBeLessThanOrEqual(Math.ceil(elapsedMs / 250) + 2);
    expect(afterFlood).toBeLessThan(N / 4);

    // an unchanged status is acknowledged but broadcasts nothing: only the one real change after it does.
    // First a state no flood roster showed, and its roster: after it no trailing roster of the flood is due.
    expect((await flooder.request({ type: 'cache-status', units: ['head', 'embed', 'layer.0'] })).type).toBe('ack');
    await s.host.next('roster', (r) =>
      r.peers.some((p) => p.peerId === s.pages[0].joined.peerId && p.cachedUnits.length === 3),
    );
    const before = s.host.messages.filter((m) => m.type === 'roster').length;
    for (let i = 0; i < 30; i++)
      expect((await flooder.request({ type: 'cache-status', units: ['head', 'embed', 'layer.0'] })).type).toBe('ack');
    expect((await flooder.request({ type: 'cache-status', units: ['head'] })).type).toBe('ack');
    await s.host.next('roster', (r) =>
      r.peers.some((p) => p.peerId === s.pages[0].joined.peerId && p.cachedUnits.join() === 'head'),
    );
    expect(s.host.messages.filter((m) => m.type === 'roster').length - before).toBe(1);
    s.close();
  });
});

describe('7. join-code oracle', () => {
  it('answers "no such session" and "wrong secret" alike, and counts both against the join limit', async () => {
    const s = await sessionWith(0, '127.0.4.1');
    const prober = await TestClient.open(server.url, '127.0.4.2');
    const wrong = 'B'.repeat(44);
    const sampling = GREEDY;
    const answers = [];
    for (const code of [s.code, 'ZZZZZZZZ']) {
      for (const msg of [
        { type: 'plan', code, hostSecret: wrong },
        { type: 'go', code, hostSecret: wrong, prompt: 'x', maxNewTokens: 1, sampling },
        { type: 'end-session', code, hostSecret: wrong },
      ] as const) {
        const r = await prober.request(msg);
        if (r.type !== 'error') throw new Error(JSON.stringify(r));
        answers.push({ code: r.code, message: r.message.replace(code, '<code>') });
      }
    }
    expect(answers.slice(0, 3)).toEqual(answers.slice(3)); // the live code and the unknown one look the same
    expect(answers.every((a) => a.code === 'wrong-secret')).toBe(true);
    // 6 failures used the burst: now even the right secret is refused from this address
    const limited = await prober.request({ type: 'plan', code: s.code, hostSecret: s.hostSecret });
    expect(limited).toMatchObject({ type: 'error', code: 'rate-limited' });
    expect(await prober.request({ type: 'join', code: s.code, displayName: 'x' })).toMatchObject({
      type: 'error',
      code: 'rate-limited',
    });
    expect(
      (await get(`/api/sessions/${s.code}/export?hostSecret=${s.hostSecret}`, { localAddress: '127.0.4.3' })).status,
    ).toBe(200); // another address
    // the HTTP export counts failures too
    let status = 0;
    for (let i = 0; i <= JOIN_BURST && status !== 429; i++)
      status = (await get(`/api/sessions/ZZZZZZZZ/export?hostSecret=${wrong}`, { localAddress: '127.0.4.3' })).status;
    expect(status).toBe(429);
    prober.close();
    s.close();
  });
});

describe('4. field log', () => {
  it('rate-limits profiles per page and keeps codes, ids, secrets and names out of the log', async () => {
    const s = await sessionWith(1, '127.0.5.1');
    const page = s.pages[0];
    const replies = [];
    for (let i = 0; i < 6; i++) {
      const r = await page.client.request({
        type: 'profile',
        profile: sampleProfile(i, { name: 'Alice the secret name' }),
      });
      replies.push(r.type === 'error' ? r.code : r.type);
    }
    expect(replies).toEqual(['ack', 'ack', 'ack', 'ack', 'rate-limited', 'rate-limited']);
    await server.fieldLog.flush();
    for (const url of ['/api/field-log.json', '/api/field-log.csv']) {
      const body = (await get(url)).body;
      for (const secret of [
        s.code,
        s.hostSecret,
        page.joined.peerId,
        page.joined.peerSecret,
        page.joined.peerjs.token,
        'Alice',
      ])
        expect({ url, leaks: body.includes(secret) }).toEqual({ url, leaks: false });
    }
    s.close();
  });

  it('streams downloads, refuses a third concurrent one, and rotates at its size cap', async () => {
    // A log of ~6 MB (written directly: one member can no longer fill it), read by two stalled readers.
    const lines = 6000;
    for (let i = 0; i < lines; i++)
      void server.fieldLog.append({
        receivedAtMs: i,
        pageKey: '0123456789abcdef',
        profile: { ...sampleProfile(i), userAgent: 'x'.repeat(500) },
      });
    await server.fieldLog.flush();
    const stalled: http.ClientRequest[] = [];
    const started: Promise<number>[] = [];
    for (let i = 0; i < 2; i++) {
      started.push(
        new Promise((resolve) => {
          const req = http.get({ host: '127.0.0.1', port, path: '/api/field-log.json' }, (res) => {
            res.pause(); // read nothing: the server must wait on back-pressure, not buffer the file
            resolve(res.statusCode ?? 0);
          });
          stalled.push(req);
        }),
      );
    }
    expect(await Promise.all(started)).toEqual([200, 200]);
    const third = await get('/api/field-log.csv');
    expect(third.status).toBe(503);
    for (const req of stalled) req.destroy();
    await vi.waitFor(
      async () =>
        expect((await get('/api/health')).status === 200 && (await get('/api/field-log.json')).status).toBe(200),
      { timeout: 10_000, interval: 100 },
    );
    const all = JSON.parse((await get('/api/field-log.json')).body) as unknown[];
    expect(all.length).toBeGreaterThanOrEqual(lines);

    // rotation, in a log of its own
    const file = path.join(dir, 'rotating.jsonl');
    const small = new FieldLog(file, 4096);
    for (let i = 0; i < 40; i++)
      void small.append({ receivedAtMs: i, pageKey: 'fedcba9876543210', profile: sampleProfile(i) });
    await small.flush();
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(file));
    expect(size).toBeLessThanOrEqual(4096);
    const kept = await small.readAll();
    expect(kept.at(-1)?.receivedAtMs).toBe(39);
    expect(kept.map((r) => r.receivedAtMs)).toEqual([...kept.map((r) => r.receivedAtMs)].sort((a, b) => a - b));
    expect(kept.length).toBeLessThan(40);
    // a line written by an older server (with a session code and a peer id) is published without them
    const legacyFile = path.join(dir, 'legacy.jsonl');
    await writeFile(
      legacyFile,
      JSON.stringify({
        receivedAtMs: 1,
        sessionCode: 'ABCDEFGH',
        peerId: 'p0123456789abcdef',
        profile: sampleProfile(1),
      }) + '\n',
    );
    const legacy = await new FieldLog(legacyFile).readAll();
    expect(legacy).toHaveLength(1);
    expect(JSON.stringify(legacy)).not.toMatch(/ABCDEFGH|p0123456789abcdef|device 1/);
  });
});

describe('8. smaller points', () => {
  it('serves no file that resolves outside its root through a symlink', async () => {
    expect((await get('/index.html')).status).toBe(200);
    for (const attempt of ['/linked.txt', '/linkdir/outside.txt']) {
      const res = await get(attempt);
      expect({ attempt, status: res.status }).toEqual({ attempt, status: 404 });
      expect(res.body).not.toContain('OUTSIDE');
    }
  });

  it('answers 405 to API methods other than GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const p of ['/api/health', '/api/field-log.json', '/api/models']) {
        const res = await get(p, { method });
        expect({ method, p, status: res.status, allow: res.headers.allow }).toEqual({
          method,
          p,
          status: 405,
          allow: 'GET, HEAD',
        });
      }
    }
    expect((await get('/api/health', { method: 'HEAD' })).status).toBe(200);
  });

  it('sends no CORS grant to other origins on the PeerJS routes', async () => {
    for (const method of ['GET', 'OPTIONS']) {
      const res = await get('/peerjs/peerjs/id', {
        method,
        headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'GET' },
      });
      expect({ method, acao: res.headers['access-control-allow-origin'] }).toEqual({ method, acao: undefined });
    }
  });

  it('lets a page report errors of its own stage only', async () => {
    const s = await sessionWith(3, '127.0.6.1');
    for (const [i, p] of s.pages.entries())
      expect(
        (await p.client.request({ type: 'profile', profile: sampleProfile(i + 1, { memoryBytes: 2 ** 30 }) })).type,
      ).toBe('ack');
    // two stages on two of the pages, so that one page is outside the request
    const plan = await s.host.request({ type: 'plan', code: s.code, hostSecret: s.hostSecret, method: 'even' });
    if (plan.type !== 'plan-ready') throw new Error(JSON.stringify(plan));
    const stageIds = new Set(plan.stages.map((st) => st.peerId));
    const go = await s.host.request({
      type: 'go',
      code: s.code,
      hostSecret: s.hostSecret,
      prompt: 'hi',
      maxNewTokens: 1,
      sampling: GREEDY,
    });
    if (go.type !== 'start') throw new Error(JSON.stringify(go));
    const outsider = s.pages.find((p) => !stageIds.has(p.joined.peerId));
    const stage = s.pages.find((p) => stageIds.has(p.joined.peerId))!;
    if (outsider) {
      const forged = await outsider.client.request({
        type: 'report-error',
        requestId: go.requestId,
        code: 'forged',
        message: 'stop it',
      });
      expect(forged).toMatchObject({ type: 'error', code: 'not-assigned' });
    }
    const myStage = plan.stages.find((st) => st.peerId === stage.joined.peerId)!;
    const foreignUnit = myStage.layers.start > 0 ? 'layer.0' : `layer.${myStage.layers.end}`;
    expect(
      await stage.client.request({
        type: 'report-error',
        requestId: null,
        code: 'shard-hash-mismatch',
        message: 'x',
        unitId: foreignUnit,
      }),
    ).toMatchObject({ type: 'error', code: 'not-assigned' });
    expect(s.host.messages.some((m) => m.type === 'peer-error')).toBe(false);
    // the request was not failed by the forgery: the last stage still finishes it
    const last = s.pages.find((p) => p.joined.peerId === plan.stages.at(-1)!.peerId)!;
    expect(
      (
        await last.client.request({
          type: 'report-tokens',
          requestId: go.requestId,
          tokenIds: [1],
          text: 'a',
          generated: 1,
          done: true,
        })
      ).type,
    ).toBe('ack');
    const exported = JSON.parse(
      (await get(`/api/sessions/${s.code}/export?hostSecret=${s.hostSecret}`, { localAddress: '127.0.6.1' })).body,
    ) as { requests: { state: string; errors: unknown[] }[] };
    expect(exported.requests[0]).toMatchObject({ state: 'done', errors: [] });
    s.close();
  });
});
