/**
 * The page's failover glue (failover-client.ts) and its view reducer (failover-view-state.ts), on a
 * scripted message sequence: stage-lost -> repair -> continuation start -> outputs, with fake timers
 * for the request heartbeat and the deferred link-failure report.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import type { ClientMessage, ServerMessage, ServerMessageOf } from '../../core/protocol.ts';
import { DEFER_MS, FailoverClient } from './failover-client.ts';
import { applyFailoverMessage, initialFailoverView, originalRequestOf, recoveryOf } from './failover-view-state.ts';

const SAMPLING = { temperature: 0, topK: 0, topP: 1, seed: 1 };

function start(
  requestId: number,
  resume?: { of: number; firstIndex: number; attempt: number },
): ServerMessageOf<'start'> {
  return {
    type: 'start',
    requestId,
    planId: resume ? 'p2' : 'p1',
    prompt: 'hi',
    maxNewTokens: 16 - (resume?.firstIndex ?? 0),
    sampling: SAMPLING,
    serverTimeMs: 0,
    ...(resume ? { resume, promptTokenIds: [1, 2, 3] } : {}),
  };
}

const LOST: ServerMessageOf<'stage-lost'> = {
  type: 'stage-lost',
  requestId: 3,
  lostPeerIds: ['bravo1'],
  layers: [{ start: 1, end: 3 }],
  reason: 'left',
  detectedAtMs: 1000,
};
const REPAIR: ServerMessageOf<'repair'> = {
  type: 'repair',
  requestId: 3,
  planId: 'p2',
  mode: 'range',
  replayTokens: 40,
  predictedResumeSec: 1.5,
  stages: [],
};
const output = (requestId: number, done: boolean, recoveredInMs?: number): ServerMessage => ({
  type: 'output',
  requestId,
  tokenIds: [5],
  text: 'x',
  generated: 6,
  done,
  ...(recoveredInMs !== undefined ? { recoveredInMs } : {}),
});

describe('failover view state', () => {
  it('records loss, repair, replay and recovery under the original request; maps continuations back', () => {
    let v = initialFailoverView();
    const names: Record<string, string> = { bravo1: 'bravo' };
    const steps: [ServerMessage, number][] = [
      [start(3), 0],
      [LOST, 100],
      [REPAIR, 150],
      [start(4, { of: 3, firstIndex: 5, attempt: 1 }), 160],
      [output(3, false, 1234), 1400],
    ];
    for (const [m, at] of steps) v = applyFailoverMessage(v, m, at, (id) => names[id] ?? id);
    expect(originalRequestOf(v, 4)).toBe(3);
    expect(originalRequestOf(v, 9)).toBe(9);
    const r = recoveryOf(v, 4)!;
    expect(r.events.map((e) => e.kind)).toEqual(['loss', 'repair', 'replay', 'recovered']);
    expect(r.events[0]).toMatchObject({ lostNames: ['bravo'], reason: 'left', atMs: 100 });
    expect(r.events[2]).toMatchObject({ continuationId: 4, firstIndex: 5, attempt: 1 });
    expect(r.recoveredInMs).toBe(1234);
    expect(r.recovering).toBe(false);
  });

  it('keeps the reason when recovery is impossible', () => {
    let v = applyFailoverMessage(initialFailoverView(), LOST, 1);
    v = applyFailoverMessage(
      v,
      { type: 'request-failed', requestId: 3, code: 'recovery-impossible', message: 'add a device with 1.2 GB free' },
      2,
    );
    expect(recoveryOf(v, 3)).toMatchObject({
      recovering: false,
      failure: { code: 'recovery-impossible', message: 'add a device with 1.2 GB free' },
    });
  });
});

describe('FailoverClient', () => {
  let sent: ClientMessage[];
  let stopped: number[];
  let fc: FailoverClient;

  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    stopped = [];
    fc = new FailoverClient({
      send: (m) => sent.push(m),
      stopRun: (id) => stopped.push(id),
      nameOf: (id) => id,
      changed: () => undefined,
    });
    fc.onServerMessage({
      type: 'joined',
      code: '0123456789'.slice(0, 8),
      sessionName: 's',
      peerId: 'alpha1',
      peerSecret: 'x'.repeat(20),
      model: { name: 'm', manifestUrl: '/m' },
      peerjs: { path: '/peerjs', key: 'k', token: 't' },
      heartbeatIntervalMs: 5000,
      heartbeatTimeoutMs: 20000,
      requestHeartbeatIntervalMs: 1000,
      serverTimeMs: 0,
      roster: [],
    });
  });
  afterEach(() => {
    fc.dispose();
    vi.useRealTimers();
  });

  const heartbeats = () => sent.filter((m) => m.type === 'heartbeat').length;

  it('beats every requestHeartbeatIntervalMs from the run start until the request is done, across a repair', () => {
    fc.onServerMessage(start(3));
    fc.onRunStarted(3);
    expect(heartbeats()).toBe(1);
    vi.advanceTimersByTime(3000);
    expect(heartbeats()).toBe(4);
    fc.onServerMessage(LOST);
    expect(stopped).toEqual([3]);
    // stopped for repair: not an error, and the heartbeats go on (the page is still part of the request)
    expect(fc.onRunFailed(3, new TandemError('stage-lost', 'x'), () => expect.fail('no report'))).toBe('repair');
    vi.advanceTimersByTime(1000);
    expect(heartbeats()).toBe(5);
    fc.onServerMessage(REPAIR);
    fc.onServerMessage(start(4, { of: 3, firstIndex: 5, attempt: 1 }));
    fc.onRunStarted(4);
    fc.onServerMessage(output(3, true));
    const n = heartbeats();
    vi.advanceTimersByTime(5000);
    expect(heartbeats()).toBe(n);
    // a second loss stops the continuation's run too
    fc.onServerMessage({ ...LOST, lostPeerIds: ['charlie1'] });
    expect(stopped).toEqual([3, 3, 4]);
  });

  it('reports a link to a neighbour once per request', () => {
    fc.onLinkLost('bravo1', 3);
    fc.onLinkLost('bravo1', 3);
    fc.onLinkLost('bravo1', 4);
    expect(sent.filter((m) => m.type === 'report-link-lost')).toEqual([
      { type: 'report-link-lost', requestId: 3, lostPeerId: 'bravo1' },
      { type: 'report-link-lost', requestId: 4, lostPeerId: 'bravo1' },
    ]);
  });

  it('holds a link failure back: dropped when stage-lost follows, reported when nothing does', () => {
    let reports = 0;
    const report = () => reports++;
    expect(fc.onRunFailed(3, new TandemError('transport-closed', 'x'), report)).toBe('deferred');
    vi.advanceTimersByTime(DEFER_MS / 2);
    fc.onServerMessage(LOST);
    vi.advanceTimersByTime(DEFER_MS);
    expect(reports).toBe(0);
    expect(fc.onRunFailed(7, new TandemError('stage-timeout', 'x'), report)).toBe('deferred');
    vi.advanceTimersByTime(DEFER_MS);
    expect(reports).toBe(1);
    // anything else is reported at once
    expect(fc.onRunFailed(8, new TandemError('session-create-failed', 'x'), report)).toBe('report');
  });
});
