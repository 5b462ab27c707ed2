/**
 * Every class of bad input gets an `error` with its code, on the offending connection only, while a
 * parallel healthy session keeps planning and starting requests on the same server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TandemServer } from './http-server.ts';
import { MAX_MESSAGE_BYTES, type ClientMessage, type ServerMessage } from '../core/protocol.ts';
import { GREEDY, sampleProfile, startTestServer, TestClient } from './test-support.ts';

let dir: string;
let server: TandemServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tandem-bad-input-'));
  ({ server } = await startTestServer(dir, {
    layers: 8,
    limits: { joinRate: { burst: 8, perSecond: 0.5 }, maxPeersPerSession: 6 },
    gateway: { maxConnectionsPerAddress: 8 },
  }));
});

afterAll(async () => {
  await (server as TandemServer | undefined)?.close(); // unset when beforeAll failed
  await rm(dir, { recursive: true, force: true });
});

/** A healthy session: host + two profiled peers, all from `address` (join limits are per address). */
async function healthySession(address: string) {
  const host = await TestClient.open(server.url, address);
  const created = await host.request({ type: 'create-session', name: 'healthy' });
  if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
  const peers: TestClient[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await TestClient.open(server.url, address);
    expect((await c.request({ type: 'join', code: created.code, displayName: `h${i}` })).type).toBe('joined');
    expect((await c.request({ type: 'profile', profile: sampleProfile(i + 1) })).type).toBe('ack');
    // as a page does: on a loaded machine this test has outlasted the 20 s heartbeat timeout, and a
    // silent peer was dropped from the healthy session's roster
    c.heartbeatEvery(1_000);
    peers.push(c);
  }
  return { host, peers, code: created.code, hostSecret: created.hostSecret };
}

/** The healthy session can still plan and start a request. */
async function expectHealthy(s: {
  host: TestClient;
  peers: TestClient[];
  code: string;
  hostSecret: string;
}): Promise<void> {
  const plan = await s.host.request({ type: 'plan', code: s.code, hostSecret: s.hostSecret, tokens: 32 });
  expect(plan.type).toBe('plan-ready');
  const go = await s.host.request({
    type: 'go',
    code: s.code,
    hostSecret: s.hostSecret,
    prompt: 'ok?',
    maxNewTokens: 1,
    sampling: GREEDY,
  });
  expect(go.type).toBe('start');
  // the last stage finishes the request, so that the next check may start another
  if (go.type === 'start' && plan.type === 'plan-ready') {
    const lastPeerId = plan.stages[plan.stages.length - 1].peerId;
    const last = s.peers.find((p) => p.messages.some((m) => m.type === 'joined' && m.peerId === lastPeerId));
    if (!last) throw new Error('the last stage is not one of the healthy peers');
    const done = await last.request({
      type: 'report-tokens',
      requestId: go.requestId,
      tokenIds: [5],
      text: 'y',
      generated: 1,
      done: true,
    });
    expect(done.type).toBe('ack');
  }
}

function errorOf(reply: ServerMessage): { code: string; inReplyTo: string | null } {
  if (reply.type !== 'error') throw new Error(`expected an error, got ${JSON.stringify(reply)}`);
  return { code: reply.code, inReplyTo: reply.inReplyTo };
}

describe('bad input', () => {
  it('answers each bad message with its error code and leaves a parallel session working', async () => {
    const healthy = await healthySession('127.0.0.10');
    await expectHealthy(healthy);
    const bad = await TestClient.open(server.url, '127.0.0.20');

    const cases: [string, string | Buffer, boolean, string][] = [
      ['malformed JSON', '{"type": "join", ', false, 'bad-json'],
      ['not an object', '[1,2,3]', false, 'bad-message'],
      ['no type', '{"code": "ABCDEFGH"}', false, 'bad-message'],
      ['unknown type', '{"type": "launch-missiles"}', false, 'unknown-type'],
      [
        'oversize',
        JSON.stringify({ type: 'heartbeat', pad: 'x'.repeat(MAX_MESSAGE_BYTES) }),
        false,
        'message-too-large',
      ],
      ['binary frame', Buffer.from([1, 2, 3]), true, 'binary-not-supported'],
      ['extra field', '{"type": "leave", "admin": true}', false, 'bad-message'],
      ['bad join code', '{"type": "join", "code": "../../etc", "displayName": "x"}', false, 'bad-message'],
      [
        'control characters in a name',
        '{"type": "join", "code": "ABCDEFGH", "displayName": "a\\u0000b"}',
        false,
        'bad-message',
      ],
      [
        'go without a prompt',
        JSON.stringify({
          type: 'go',
          code: healthy.code,
          hostSecret: healthy.hostSecret,
          prompt: '',
          maxNewTokens: 1,
          sampling: GREEDY,
        }),
        false,
        'bad-message',
      ],
    ];
    for (const [what, data, binary, code] of cases) {
      bad.sendRaw(data, binary);
      const reply = await bad.next('error');
      expect({ what, code: reply.code }).toEqual({ what, code });
    }

    // out of order and unauthorised
    const notJoined: ClientMessage[] = [
      { type: 'profile', profile: sampleProfile(9) },
      { type: 'cache-status', units: ['embed'] },
      { type: 'report-timings', requestId: 1, timings: [{ phase: 'compute', step: 0, startMs: 0, endMs: 1 }] },
      { type: 'report-tokens', requestId: 1, tokenIds: [1], text: 'x', generated: 1, done: true },
      { type: 'report-error', requestId: null, code: 'quota-exceeded', message: 'full' },
      { type: 'leave' },
    ];
    for (const m of notJoined) expect(errorOf(await bad.request(m))).toEqual({ code: 'not-joined', inReplyTo: m.type });

    const wrongSecret = 'B'.repeat(44);
    expect(errorOf(await bad.request({ type: 'plan', code: healthy.code, hostSecret: wrongSecret }))).toEqual({
      code: 'wrong-secret',
      inReplyTo: 'plan',
    });
    expect(
      errorOf(
        await bad.request({
          type: 'go',
          code: healthy.code,
          hostSecret: wrongSecret,
          prompt: 'x',
          maxNewTokens: 1,
          sampling: GREEDY,
        }),
      ).code,
    ).toBe('wrong-secret');
    expect(errorOf(await bad.request({ type: 'end-session', code: healthy.code, hostSecret: wrongSecret })).code).toBe(
      'wrong-secret',
    );
    expect(errorOf(await bad.request({ type: 'join', code: 'ZZZZZZZZ', displayName: 'x' })).code).toBe(
      'session-not-found',
    );

    // its own session: go before plan, plan before any profile, reports out of place
    const own = await bad.request({ type: 'create-session' });
    if (own.type !== 'session-created') throw new Error(JSON.stringify(own));
    const hostAuth = { code: own.code, hostSecret: own.hostSecret };
    expect(
      errorOf(
        await bad.request({
          type: 'go',
          ...hostAuth,
          prompt: 'x',
          maxNewTokens: 1,
          sampling: GREEDY,
        }),
      ).code,
    ).toBe('no-plan');
    expect(errorOf(await bad.request({ type: 'plan', ...hostAuth })).code).toBe('no-profiles');
    expect((await bad.request({ type: 'join', code: own.code, displayName: 'me' })).type).toBe('joined');
    expect(errorOf(await bad.request({ type: 'join', code: own.code, displayName: 'me again' })).code).toBe(
      'already-joined',
    );
    expect(
      errorOf(
        await bad.request({
          type: 'report-timings',
          requestId: 77,
          timings: [{ phase: 'compute', step: 0, startMs: 0, endMs: 1 }],
        }),
      ).code,
    ).toBe('unknown-request');
    expect(errorOf(await bad.request({ type: 'cache-status', units: ['layer.99'] })).code).toBe('bad-message');
    // range-checked profile numbers
    // (the error echoes the ref of a message that fails the schema, so the sender can match it)
    const tooFast = await bad.request({ type: 'profile', profile: { ...sampleProfile(1), peakFlops: 1e30 } });
    expect(tooFast.type === 'error' && tooFast.message).toMatch(/peakFlops/);
    bad.sendRaw(JSON.stringify({ type: 'profile', profile: { ...sampleProfile(1), utilA: -1 } }));
    expect((await bad.next('error')).code).toBe('bad-message');
    // a plan that fits no memory
    expect((await bad.request({ type: 'profile', profile: sampleProfile(1, { memoryBytes: 2 ** 20 }) })).type).toBe(
      'ack',
    );
    expect(errorOf(await bad.request({ type: 'plan', ...hostAuth })).code).toBe('plan-infeasible');

    // the healthy session was not touched and still works (rosters are coalesced, at most one per 250 ms
    // per session: the one naming both pages may still be on its way)
    const names = (m: ServerMessage) => (m.type === 'roster' ? m.peers.map((p) => p.displayName).join() : null);
    await healthy.host.next('roster', (m) => names(m) === 'h0,h1');
    const roster = healthy.host.messages.filter((m) => m.type === 'roster').at(-1);
    expect(roster?.type === 'roster' && roster.peers.map((p) => p.displayName)).toEqual(['h0', 'h1']);
    expect(healthy.host.messages.some((m) => m.type === 'error')).toBe(false);
    await expectHealthy(healthy);

    // a frame far above the limit: ws closes that connection (1009); the server keeps serving
    const huge = await TestClient.open(server.url);
    huge.sendRaw('x'.repeat(8 * MAX_MESSAGE_BYTES));
    expect((await huge.closed).code).toBe(1009);
    await expectHealthy(healthy);
    for (const c of [bad, healthy.host, ...healthy.peers]) c.close();
  });

  it('rate-limits a join flood from one address while other addresses still join', async () => {
    const healthy = await healthySession('127.0.0.11');
    const flood = await TestClient.open(server.url, '127.0.0.2');
    const replies = [];
    for (let i = 0; i < 20; i++)
      replies.push(await flood.request({ type: 'join', code: 'ABCDEFGH', displayName: 'guess' }));
    const codes = replies.map((r) => (r.type === 'error' ? r.code : r.type));
    expect(codes.slice(0, 8)).toEqual(Array(8).fill('session-not-found'));
    expect(codes.slice(8).every((c) => c === 'rate-limited')).toBe(true);
    // a right code is refused too while the address is limited
    expect(errorOf(await flood.request({ type: 'join', code: healthy.code, displayName: 'x' })).code).toBe(
      'rate-limited',
    );
    // another address joins the healthy session normally
    const other = await TestClient.open(server.url, '127.0.0.3');
    expect((await other.request({ type: 'join', code: healthy.code, displayName: 'h2' })).type).toBe('joined');
    expect((await other.request({ type: 'profile', profile: sampleProfile(3) })).type).toBe('ack');
    await expectHealthy({ ...healthy, peers: [...healthy.peers, other] });
    for (const c of [flood, other, healthy.host, ...healthy.peers]) c.close();
  });

  it('enforces the peers-per-session limit', async () => {
    const host = await TestClient.open(server.url, '127.0.0.4');
    const created = await host.request({ type: 'create-session' });
    if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
    const clients: TestClient[] = [];
    const codes: string[] = [];
    for (let i = 0; i < 7; i++) {
      const c = await TestClient.open(server.url, `127.0.1.${i + 1}`);
      clients.push(c);
      const r = await c.request({ type: 'join', code: created.code, displayName: `p${i}` });
      codes.push(r.type === 'error' ? r.code : r.type);
    }
    expect(codes).toEqual([...Array<string>(6).fill('joined'), 'session-full']);
    for (const c of [host, ...clients]) c.close();
  });

  it('refuses WebSockets beyond the per-address limit with 503, and admits one again after a close', async () => {
    const open: TestClient[] = [];
    for (let i = 0; i < 8; i++) open.push(await TestClient.open(server.url, '127.0.0.30'));
    const refused = await TestClient.open(server.url, '127.0.0.30').then(
      () => 'opened',
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    expect(refused).toMatch(/503/);
    const elsewhere = await TestClient.open(server.url, '127.0.0.31');
    expect((await elsewhere.request({ type: 'heartbeat' })).type).toBe('heartbeat-ack');
    open.pop()!.close();
    await new Promise((r) => setTimeout(r, 100));
    const again = await TestClient.open(server.url, '127.0.0.30');
    expect((await again.request({ type: 'heartbeat' })).type).toBe('heartbeat-ack');
    for (const c of [...open, elsewhere, again]) c.close();
  });
});
