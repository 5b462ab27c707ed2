/**
 * The coordinator as a pure state machine, driven directly: races between planning and pages leaving,
 * idle-session clean-up, and disconnect-then-timeout, which are awkward to time over sockets.
 */
import { describe, expect, it } from 'vitest';
import { Coordinator, type Effect } from './coordinator.ts';
import { planInline } from './planner-pool.ts';
import type { ClientMessageOf, ServerMessageOf } from '../core/protocol.ts';
import {
  finalTokens,
  GREEDY,
  hostedSession,
  onlyMessage as only,
  planEffect,
  sampleProfile,
  sentTo as sent,
  testCoordinator,
} from './test-support.ts';
import { testManifest } from '../shards/test-manifest.ts';

const L = 6;
const manifest = testManifest({
  name: 'pure-test',
  dtype: 'fp16',
  config: {
    num_hidden_layers: L,
    hidden_size: 256,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    intermediate_size: 512,
    vocab_size: 1000,
  },
});

const make = (limits = {}): Coordinator => testCoordinator(manifest, limits);

/** A session with a host (conn 1) and `n` profiled pages (conns 2..n+1). */
const session = (c: Coordinator, n: number, now = 0) =>
  hostedSession(
    c,
    Array.from({ length: n }, (_, i) => sampleProfile(i + 1)),
    now,
  );

describe('coordinator', () => {
  it('refuses a plan that finishes after a planned page left, and drops one for an ended session', async () => {
    const c = make();
    const s = session(c, 3);
    const planned = planEffect(c.handle(1, { type: 'plan', code: s.code, hostSecret: s.hostSecret, ref: 5 }, 1));
    expect(planned.request.candidates.map((x) => x.peerId)).toEqual(s.peerIds);
    // a second plan or a go while it runs is refused
    expect(only(c.handle(1, { type: 'plan', code: s.code, hostSecret: s.hostSecret }, 2), 1, 'error').code).toBe(
      'plan-pending',
    );
    // a planned page leaves before the planner answers
    c.handle(3, { type: 'leave' }, 3);
    const done = c.planFinished(planned.token, await planInline(planned.request), 4);
    expect(only(done, 1, 'error')).toMatchObject({ code: 'stale-plan', ref: 5 });
    expect(sent(done, 2)).toEqual([]);

    // plan again, then end the session before the planner answers: nothing is sent
    const again = planEffect(c.handle(1, { type: 'plan', code: s.code, hostSecret: s.hostSecret }, 5));
    c.handle(1, { type: 'end-session', code: s.code, hostSecret: s.hostSecret }, 6);
    expect(c.planFinished(again.token, await planInline(again.request), 7)).toEqual([]);
    expect(c.sessionCount).toBe(0);
  });

  it('keeps a disconnected page until its heartbeat times out, then tells the rest', () => {
    const c = make({ heartbeatTimeoutMs: 1000 });
    const s = session(c, 2, 0);
    const roster = only(c.disconnect(2, 100), 1, 'roster');
    expect(roster.peers.map((p) => p.connected)).toEqual([false, true]);
    c.handle(3, { type: 'heartbeat' }, 900);
    expect(c.tick(1000)).toEqual([]); // 1000 ms silent is not yet over the limit
    const dropped = c.tick(1001);
    expect(only(dropped, 1, 'peer-left')).toEqual({ type: 'peer-left', peerId: s.peerIds[0], reason: 'timed-out' });
    expect(only(dropped, 3, 'peer-left').peerId).toBe(s.peerIds[0]);
    expect(c.hasPeer(s.peerIds[0])).toBe(false);
    expect(c.hasPeer(s.peerIds[1])).toBe(true);
  });

  it('removes a session once it has no pages, no host connection and sat idle', () => {
    const c = make({ sessionIdleMs: 5000, heartbeatTimeoutMs: 1000 });
    const s = session(c, 1, 0);
    c.disconnect(1, 10); // the host's socket closes
    c.handle(2, { type: 'leave' }, 20);
    c.disconnect(2, 20);
    c.tick(5000);
    expect(c.sessionCount).toBe(1);
    c.tick(5021);
    expect(c.sessionCount).toBe(0);
    c.connect(9, 'late');
    expect(only(c.handle(9, { type: 'join', code: s.code, displayName: 'late' }, 5022), 9, 'error').code).toBe(
      'session-not-found',
    );
  });

  it('coalesces rosters: at once, then at most one per interval with the latest state; unchanged cache-status sends none', () => {
    const c = make({ rosterIntervalMs: 250 });
    const s = session(c, 2, 0);
    const rosters = (effects: Effect[]) =>
      sent(effects, 1).filter((m): m is ServerMessageOf<'roster'> => m.type === 'roster');
    // the setup at t=0 already sent one roster, so changes until t=250 wait
    let immediate = 0;
    for (let t = 1; t < 250; t++)
      immediate += rosters(
        c.handle(2, { type: 'cache-status', units: t % 2 ? ['embed'] : ['embed', 'head'] }, t),
      ).length;
    expect(immediate).toBe(0);
    expect(rosters(c.tick(249))).toEqual([]);
    const due = rosters(c.tick(250));
    expect(due).toHaveLength(1);
    expect(due[0].peers.find((p) => p.peerId === s.peerIds[0])!.cachedUnits).toEqual(['embed']); // t=249 was odd
    expect(rosters(c.tick(600))).toEqual([]); // nothing changed since
    // an unchanged status is acknowledged and broadcasts nothing, now or later
    expect(only(c.handle(2, { type: 'cache-status', units: ['embed'] }, 700), 2, 'ack')).toBeTruthy();
    expect(rosters(c.tick(1000))).toEqual([]);
    // a change after a quiet interval goes out at once, without the bulky profile details
    const now = rosters(c.handle(2, { type: 'cache-status', units: ['head'] }, 1100));
    expect(now).toHaveLength(1);
    expect(Object.keys(now[0].peers[0].profile!)).not.toContain('sweep');
    expect(Object.keys(now[0].peers[0].profile!)).not.toContain('userAgent');
  });

  it('ends PeerJS registrations (peer-gone) on leave, timeout and end-session, and logs no code or peer id', () => {
    const c = make({ heartbeatTimeoutMs: 1000 });
    const s = session(c, 3, 0);
    const gone = (effects: Effect[]) => effects.flatMap((e) => (e.kind === 'peer-gone' ? [e.peerId] : []));
    expect(gone(c.handle(2, { type: 'leave' }, 10))).toEqual([s.peerIds[0]]);
    c.handle(4, { type: 'heartbeat' }, 900);
    expect(gone(c.tick(1001))).toEqual([s.peerIds[1]]); // silent since 0
    expect(gone(c.handle(1, { type: 'end-session', code: s.code, hostSecret: s.hostSecret }, 1002))).toEqual([
      s.peerIds[2],
    ]);
    for (const id of s.peerIds) expect(c.hasPeer(id)).toBe(false);
    c.connect(9, 'z');
    const joined = only(
      c.handle(
        9,
        {
          type: 'join',
          code: only(c.handle(9, { type: 'create-session' }, 1003), 9, 'session-created').code,
          displayName: 'q',
        },
        1003,
      ),
      9,
      'joined',
    );
    const logged = c
      .handle(9, { type: 'profile', profile: sampleProfile(1) }, 1004)
      .flatMap((e) => (e.kind === 'field-log' ? [e.record] : []));
    expect(logged).toHaveLength(1);
    expect(JSON.stringify(logged)).not.toContain(joined.peerId);
    expect(JSON.stringify(logged)).not.toContain(joined.code);
    expect(logged[0]).toMatchObject({ pageKey: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown });
  });

  it('accepts only units of its package in cache-status, and only the head reports tokens', async () => {
    const c = make();
    const s = session(c, 2);
    expect(only(c.handle(2, { type: 'cache-status', units: ['embed', 'layer.5', 'head'] }, 1), 2, 'ack')).toBeTruthy();
    expect(only(c.handle(2, { type: 'cache-status', units: ['layer.6'] }, 1), 2, 'error').code).toBe('bad-message');
    const p = planEffect(c.handle(1, { type: 'plan', code: s.code, hostSecret: s.hostSecret, method: 'single' }, 2));
    const ready = only(c.planFinished(p.token, await planInline(p.request), 3), 1, 'plan-ready');
    expect(ready.stages).toHaveLength(1);
    const start = only(
      c.handle(
        1,
        {
          type: 'go',
          code: s.code,
          hostSecret: s.hostSecret,
          prompt: 'x',
          maxNewTokens: 2,
          sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
        },
        4,
      ),
      1,
      'start',
    );
    const headConn = s.peerIds.indexOf(ready.stages[0].peerId) + 2;
    const otherConn = headConn === 2 ? 3 : 2;
    const report: ClientMessageOf<'report-tokens'> = {
      type: 'report-tokens',
      requestId: start.requestId,
      tokenIds: [1],
      text: 'a',
      generated: 1,
      done: false,
    };
    expect(only(c.handle(otherConn, report, 5), otherConn, 'error').code).toBe('not-last-stage');
    expect(only(c.handle(headConn, report, 5), headConn, 'ack')).toBeTruthy();
    // more tokens than maxNewTokens are refused
    expect(only(c.handle(headConn, { ...report, tokenIds: [2, 3] }, 6), headConn, 'error').code).toBe('bad-message');
  });
});

describe('the request queue and cancel (HTTP API requests)', () => {
  it('an API request waits behind a go, starts with its token ids when the go ends, and a cancel stops it on every page', async () => {
    const c = make({ queueDepth: 2 });
    const HOST = 1;
    const PAGE = 2;
    c.connect(HOST, '10.0.0.1');
    c.connect(PAGE, '10.0.0.2');
    const created = only(c.handle(HOST, { type: 'create-session' }, 0), HOST, 'session-created');
    const { code, hostSecret } = created;
    const joined = only(c.handle(PAGE, { type: 'join', code, displayName: 'p' }, 1), PAGE, 'joined');
    c.handle(PAGE, { type: 'profile', profile: sampleProfile(1) }, 2);
    const planned = planEffect(c.handle(HOST, { type: 'plan', code, hostSecret, method: 'single' }, 3));
    c.planFinished(planned.token, await planInline(planned.request), 4);
    c.handle(HOST, { type: 'serve-api', code, hostSecret, serve: true }, 5);
    expect(c.apiSessions()).toEqual([{ code, model: 'pure-test', waiting: 0, running: false, queueDepth: 2 }]);

    const go = only(
      c.handle(
        HOST,
        {
          type: 'go',
          code,
          hostSecret,
          prompt: 'typed',
          maxNewTokens: 2,
          sampling: GREEDY,
        },
        6,
      ),
      PAGE,
      'start',
    );
    const submission = {
      sessionCode: code,
      displayPrompt: '[API] hi',
      promptTokenIds: [5, 6, 7],
      maxNewTokens: 4,
      sampling: { temperature: 0, topK: 0, topP: 1, seed: 2 },
    };
    const first = c.submitApi(submission, 7);
    expect(first.outcome).toMatchObject({ ok: true, position: 1 });
    expect(c.submitApi(submission, 8).outcome).toMatchObject({ ok: true, position: 2 });
    expect(c.submitApi(submission, 9).outcome).toMatchObject({ ok: false, code: 'queue-full' });
    if (!first.outcome.ok) throw new Error('refused');

    // the go ends: the first API request starts, with the server's token ids
    const ended = c.handle(PAGE, finalTokens(go.requestId, [1, 2], 'ab'), 10);
    const apiStart = only(ended, PAGE, 'start');
    expect(apiStart).toMatchObject({ origin: 'api', promptTokenIds: [5, 6, 7], prompt: '[API] hi', maxNewTokens: 4 });
    expect(ended).toContainEqual({
      kind: 'api',
      event: { type: 'started', ticket: first.outcome.ticket, sessionCode: code, requestId: apiStart.requestId },
    });
    const tokens = c.handle(
      PAGE,
      { type: 'report-tokens', requestId: apiStart.requestId, tokenIds: [9], text: 'x', generated: 1, done: false },
      11,
    );
    expect(tokens).toContainEqual({
      kind: 'api',
      event: { type: 'tokens', ticket: first.outcome.ticket, tokenIds: [9], done: false },
    });

    // the client goes away: every page is told, the view ends the output, the next request starts
    const cancelled = c.cancelApi(first.outcome.ticket, 'the API client disconnected', 12);
    expect(only(cancelled, PAGE, 'cancel')).toEqual({
      type: 'cancel',
      requestId: apiStart.requestId,
      reason: 'the API client disconnected',
    });
    expect(sent(cancelled, HOST)).toContainEqual(
      expect.objectContaining({ type: 'output', requestId: apiStart.requestId, done: true, finishReason: 'cancelled' }),
    );
    const next = sent(cancelled, PAGE).filter((m) => m.type === 'start');
    expect(next).toHaveLength(1);
    // a token sampled before the cancel arrived is acknowledged and dropped; the page reports how far it went
    const late = c.handle(
      PAGE,
      {
        type: 'report-tokens',
        requestId: apiStart.requestId,
        tokenIds: [3],
        text: 'y',
        generated: 2,
        done: false,
        ref: 1,
      },
      13,
    );
    expect(sent(late, PAGE)).toEqual([{ type: 'ack', of: 'report-tokens', ref: 1 }]);
    const report = c.handle(
      PAGE,
      { type: 'report-cancelled', requestId: apiStart.requestId, tokensAfterCancel: 1, stepsAfterCancel: 1 },
      14,
    );
    expect(only(report, HOST, 'cancelled')).toMatchObject({ peerId: joined.peerId, tokensAfterCancel: 1 });
    expect(c.exportSession(code)!.requests.find((r) => r.requestId === apiStart.requestId)).toMatchObject({
      state: 'cancelled',
      tokenIds: [9],
    });
  });
});

describe("the host's warm mode", () => {
  it('plan.warm marks every assignment warm, later plans keep it until a plan turns it off', async () => {
    const c = make();
    const s = session(c, 2);
    const auth = { code: s.code, hostSecret: s.hostSecret };
    const assignmentsOf = async (msg: Partial<ClientMessageOf<'plan'>>, now: number) => {
      const planned = planEffect(c.handle(1, { type: 'plan', ...auth, method: 'even', ...msg }, now));
      const done = c.planFinished(planned.token, await planInline(planned.request), now + 1);
      return [2, 3].map((conn) => only(done, conn, 'assignment'));
    };
    expect((await assignmentsOf({}, 1)).map((a) => a.warm)).toEqual([undefined, undefined]);
    expect((await assignmentsOf({ warm: true }, 3)).map((a) => a.warm)).toEqual([true, true]);
    expect((await assignmentsOf({}, 5)).map((a) => a.warm)).toEqual([true, true]);
    expect((await assignmentsOf({ warm: false }, 7)).map((a) => a.warm)).toEqual([undefined, undefined]);
  });
});

describe("the host's stop", () => {
  it('stops the running request on every page, starts the next, and tells a stopped API client why', async () => {
    const c = make({ queueDepth: 2 });
    const HOST = 1;
    const PAGE = 2;
    c.connect(HOST, '10.0.0.1');
    c.connect(PAGE, '10.0.0.2');
    const { code, hostSecret } = only(c.handle(HOST, { type: 'create-session' }, 0), HOST, 'session-created');
    c.handle(PAGE, { type: 'join', code, displayName: 'p' }, 1);
    c.handle(PAGE, { type: 'profile', profile: sampleProfile(1) }, 2);
    const planned = planEffect(c.handle(HOST, { type: 'plan', code, hostSecret, method: 'single' }, 3));
    c.planFinished(planned.token, await planInline(planned.request), 4);
    c.handle(HOST, { type: 'serve-api', code, hostSecret, serve: true }, 5);
    const goMsg = { type: 'go', code, hostSecret, prompt: 'typed', maxNewTokens: 8, sampling: GREEDY } as const;
    const go = only(c.handle(HOST, goMsg, 6), PAGE, 'start');
    const api = c.submitApi(
      { sessionCode: code, displayPrompt: '[API] hi', promptTokenIds: [5, 6], maxNewTokens: 4, sampling: GREEDY },
      7,
    );
    if (!api.outcome.ok) throw new Error('refused');

    // only the host may stop, and only a request that runs
    const stranger = 3;
    c.connect(stranger, '10.0.0.3');
    const forged = c.handle(stranger, { type: 'stop', code, hostSecret: 'x'.repeat(32), requestId: go.requestId }, 8);
    expect(only(forged, stranger, 'error').code).toBe('wrong-secret');
    expect(sent(forged, PAGE)).toEqual([]);
    const wrongId = c.handle(HOST, { type: 'stop', code, hostSecret, requestId: go.requestId + 100, ref: 4 }, 8);
    expect(only(wrongId, HOST, 'error')).toMatchObject({ code: 'unknown-request', ref: 4 });

    // the host's own request: every page stops, the output ends cancelled, the API request starts
    const stopped = c.handle(HOST, { type: 'stop', code, hostSecret, requestId: go.requestId, ref: 5 }, 9);
    expect(only(stopped, HOST, 'ack')).toEqual({ type: 'ack', of: 'stop', ref: 5 });
    expect(only(stopped, PAGE, 'cancel')).toEqual({
      type: 'cancel',
      requestId: go.requestId,
      reason: 'stopped by the host',
    });
    expect(sent(stopped, HOST)).toContainEqual(
      expect.objectContaining({ type: 'output', requestId: go.requestId, done: true, finishReason: 'cancelled' }),
    );
    const apiStart = only(stopped, PAGE, 'start');
    expect(apiStart).toMatchObject({ origin: 'api', promptTokenIds: [5, 6] });
    // a second stop of the ended request is refused
    expect(
      only(c.handle(HOST, { type: 'stop', code, hostSecret, requestId: go.requestId }, 10), HOST, 'error').code,
    ).toBe('unknown-request');

    // an API client's request: its client is told the host stopped it
    const apiStopped = c.handle(HOST, { type: 'stop', code, hostSecret, requestId: apiStart.requestId }, 11);
    expect(only(apiStopped, PAGE, 'cancel').requestId).toBe(apiStart.requestId);
    expect(apiStopped).toContainEqual({
      kind: 'api',
      event: {
        type: 'failed',
        ticket: api.outcome.ticket,
        code: 'request-stopped',
        message: "the session's host stopped this request",
      },
    });
    expect(c.exportSession(code)!.requests.map((r) => r.state)).toEqual(['cancelled', 'cancelled']);
  });
});

describe('which sessions serve the HTTP API', () => {
  it('none by default; the host toggle or --api-session (apiSessionCode) makes one serve', () => {
    // all-zero "random" bytes: the first session's join code is 00000000
    const c = new Coordinator({ model: manifest, randomBytes: (n) => new Uint8Array(n), apiSessionCode: '00000000' });
    const plain = make();
    for (const co of [c, plain]) co.connect(1, '10.0.0.1');
    const named = only(c.handle(1, { type: 'create-session' }, 0), 1, 'session-created');
    expect(named.code).toBe('00000000');
    expect(c.apiSessions().map((s) => s.code)).toEqual(['00000000']);
    const other = only(plain.handle(1, { type: 'create-session' }, 0), 1, 'session-created');
    expect(plain.apiSessions()).toEqual([]);
    expect(
      only(
        plain.handle(1, { type: 'serve-api', code: other.code, hostSecret: other.hostSecret, serve: true, ref: 3 }, 1),
        1,
        'api-serving',
      ),
    ).toEqual({ type: 'api-serving', code: other.code, serve: true, ref: 3 });
    expect(plain.apiSessions().map((s) => s.code)).toEqual([other.code]);
    expect(
      only(
        plain.handle(1, { type: 'serve-api', code: other.code, hostSecret: 'x'.repeat(44), serve: false }, 2),
        1,
        'error',
      ).code,
    ).toBe('wrong-secret');
    expect(plain.apiSessions()).toHaveLength(1);
  });
});
