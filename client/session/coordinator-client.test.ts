/**
 * The page's coordinator client against the real server (signaling/http-server.ts) on loopback, with
 * the `ws` package standing in for the browser's WebSocket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CoordinatorClient } from './coordinator-client.ts';
import type { TandemServer } from '../../signaling/http-server.ts';
import { sampleProfile, startTestServer } from '../../signaling/test-support.ts';
import { rejectionCode } from '../../core/rejection-code.ts';
import type { ServerMessage } from '../../core/protocol.ts';

let dir: string;
// undefined when beforeAll failed before starting it
let server: TandemServer | undefined;
let url: string;

beforeAll(async () => {
  (globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
  dir = await mkdtemp(path.join(tmpdir(), 'tandem-client-ws-'));
  ({ server } = await startTestServer(dir, {
    layers: 4,
    page: true,
    limits: { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1500 },
    gateway: { tickMs: 50 },
  }));
  url = `${server.url.replace('http', 'ws')}/ws`;
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function waitFor(client: CoordinatorClient, pred: (m: ServerMessage) => boolean, ms = 5000): Promise<ServerMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), ms);
    const off = client.onMessage((m) => {
      if (pred(m)) {
        clearTimeout(timer);
        off();
        resolve(m);
      }
    });
  });
}

describe('CoordinatorClient', () => {
  it('derives the /ws URL from the page location', () => {
    expect(CoordinatorClient.urlFor({ protocol: 'https:', host: '10.0.0.2:8443' })).toBe('wss://10.0.0.2:8443/ws');
    expect(CoordinatorClient.urlFor({ protocol: 'http:', host: 'localhost:8080' })).toBe('ws://localhost:8080/ws');
  });

  it('creates, joins, reports a profile, and stays alive on heartbeats past the server timeout', async () => {
    const c = new CoordinatorClient(url);
    await c.connect();
    const created = await c.request({ type: 'create-session', name: 'client test' }, 'session-created');
    const joined = await c.request({ type: 'join', code: created.code, displayName: 'page' }, 'joined');
    expect(joined.peerId).toMatch(/^[A-Za-z0-9]+$/);
    await c.request({ type: 'profile', profile: sampleProfile(1) }, 'ack');
    await new Promise((r) => setTimeout(r, 3200)); // two heartbeat timeouts
    // still a joined peer: a peer-only message is accepted (a dropped peer gets 'not-joined')
    expect((await c.request({ type: 'cache-status', units: ['layer.0'] }, 'ack')).of).toBe('cache-status');
    c.close();
  });

  it('rejects with the server error code and refuses invalid messages locally', async () => {
    const c = new CoordinatorClient(url);
    await c.connect();
    expect(await rejectionCode(c.request({ type: 'join', code: '00000000', displayName: 'x' }, 'joined'))).toBe(
      'session-not-found',
    );
    expect(await rejectionCode(c.request({ type: 'join', code: 'lower', displayName: 'x' }, 'joined'))).toBe(
      'bad-message-local',
    );
    c.close();
    expect(await rejectionCode(Promise.resolve().then(() => c.send({ type: 'heartbeat' })))).toBe('server-gone');
  });

  it('reconnects after the socket drops and resumes the same peer', async () => {
    const c = new CoordinatorClient(url);
    const states: string[] = [];
    c.onState((s) => states.push(s));
    await c.connect();
    const created = await c.request({ type: 'create-session' }, 'session-created');
    const joined = await c.request({ type: 'join', code: created.code, displayName: 'roamer' }, 'joined');
    c.rememberPeer({ code: joined.code, peerId: joined.peerId, peerSecret: joined.peerSecret });
    const resumed = waitFor(c, (m) => m.type === 'joined', 8000);
    // drop the socket as a network change would
    (c as unknown as { ws: { close(): void } }).ws.close();
    const again = await resumed;
    expect(again.type === 'joined' && again.peerId).toBe(joined.peerId);
    expect(states).toContain('reconnecting');
    expect(states.at(-1)).toBe('open');
    c.close();
  });

  it('goes idle quietly when the server closes a socket that never joined, and reopens on the next request', async () => {
    const idleDir = await mkdtemp(path.join(tmpdir(), 'tandem-client-idle-'));
    const { server: strict } = await startTestServer(idleDir, { layers: 4, gateway: { joinDeadlineMs: 200 } });
    try {
      const c = new CoordinatorClient(`${strict.url.replace('http', 'ws')}/ws`);
      const states: string[] = [];
      const idle = new Promise<void>((resolve) =>
        c.onState((s) => {
          states.push(s);
          if (s === 'idle') resolve();
        }),
      );
      await c.connect();
      await idle; // the server closed the unjoined socket (4002)
      expect(states).not.toContain('reconnecting'); // no "server gone" for the page
      const created = await c.request({ type: 'create-session' }, 'session-created');
      expect(created.code).toMatch(/^[0-9A-Z]{8}$/);
      expect(states.at(-1)).toBe('open');
      c.close();

      // A request that crosses the server's close (here: its frame is lost, as if sent while the close
      // was in flight) is sent again on the new socket and answered.
      const d = new CoordinatorClient(`${strict.url.replace('http', 'ws')}/ws`);
      const dStates: string[] = [];
      d.onState((s) => dStates.push(s));
      await d.connect();
      const ws = (d as unknown as { ws: { send: (t: string) => void } }).ws;
      ws.send = () => undefined; // the first frame never reaches the server
      const late = await d.request({ type: 'create-session' }, 'session-created');
      expect(late.code).toMatch(/^[0-9A-Z]{8}$/);
      expect(dStates).toContain('idle');
      expect(dStates).not.toContain('reconnecting');
      d.close();

      // A page the server no longer knows (it left; or timed out) fails to resume once, then goes idle
      // instead of reconnecting and failing again every 10 s.
      const e = new CoordinatorClient(`${strict.url.replace('http', 'ws')}/ws`);
      await e.connect();
      const own = await e.request({ type: 'create-session' }, 'session-created');
      const joined = await e.request({ type: 'join', code: own.code, displayName: 'gone' }, 'joined');
      e.rememberPeer({ code: joined.code, peerId: joined.peerId, peerSecret: joined.peerSecret });
      await e.request({ type: 'leave' }, 'ack');
      const eStates: string[] = [];
      const eIdle = new Promise<void>((resolve) =>
        e.onState((s) => {
          eStates.push(s);
          if (s === 'idle') resolve();
        }),
      );
      const resumeFailed = waitFor(e, (m) => m.type === 'error' && m.inReplyTo === 'resume');
      (e as unknown as { ws: { close(): void } }).ws.close();
      await resumeFailed;
      await eIdle;
      expect(eStates).toEqual(['reconnecting', 'reconnecting', 'open', 'idle']); // one reconnect, one failed resume, then quiet
      e.close();
    } finally {
      await strict.close();
      await rm(idleDir, { recursive: true, force: true });
    }
  });

  it('fails to connect with server-unreachable when nothing listens', async () => {
    const c = new CoordinatorClient('ws://127.0.0.1:9/ws');
    expect(await rejectionCode(c.connect())).toBe('server-unreachable');
  });
});
