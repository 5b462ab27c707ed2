/**
 * Failover in the coordinator, driven directly (a pure state machine; time goes through `tick(nowMs)`):
 * detection by socket close, by silence and by a neighbour's link-lost report; the repair equals
 * planner/repair.ts's planRepair on the remaining pages; the continuation replays prompt + tokens so far
 * under a fresh id and its outputs continue the user's request; several losses; the impossible case;
 * the recovery timeout; the elastic go; the field-log record.
 */
import { describe, expect, it } from 'vitest';
import type { ProfileReport, ServerMessage } from '../core/protocol.ts';
import { planRepair } from '../planner/repair.ts';
import { buildCostTable, stageMemory } from '../planner/stage-costs.ts';
import type { Coordinator, CoordinatorLimits, Effect } from './coordinator.ts';
import type { FailoverRecord } from './field-log.ts';
import { planInline } from './planner-pool.ts';
import { deviceProfileFor, modelConfigFor } from './planning.ts';
import {
  charTokenIds as tokenize,
  GREEDY,
  HOST_CONN as HOST,
  hostedSession,
  onlyMessage as only,
  planEffect,
  planSession,
  sampleProfile,
  sentTo as sent,
  testCoordinator,
  wideFp32Manifest,
} from './test-support.ts';

const manifest = wideFp32Manifest('failover-test');
const PROMPT = 'hello';

const make = (limits: Partial<CoordinatorLimits> = {}) =>
  testCoordinator(manifest, limits, { promptTokenIds: tokenize });
const none = (effects: Effect[], type: ServerMessage['type']) =>
  expect(effects.some((e) => e.kind === 'send' && e.message.type === type)).toBe(false);
const failovers = (effects: Effect[]): FailoverRecord[] =>
  effects.flatMap((e) => (e.kind === 'field-log' && 'event' in e.record ? [e.record] : []));

/** A host (conn 1) and one page per profile (conns 2, 3, ...), planned (dp) and running a greedy request. */
async function running(c: Coordinator, profiles: ProfileReport[], maxNewTokens = 10) {
  const { auth, peerIds, connOf } = hostedSession(c, profiles);
  const profileOf = new Map(peerIds.map((id, i) => [id, profiles[i]]));
  const plan = (await planSession(c, auth)).ready;
  const goEffects = c.handle(HOST, { type: 'go', ...auth, prompt: PROMPT, maxNewTokens, sampling: GREEDY }, 0);
  const start = only(goEffects, HOST, 'start');
  const conn = (peerId: string) => connOf.get(peerId)!;
  return { auth, peerIds, connOf, profileOf, conn, plan, start, stages: plan.stages };
}

/** The last stage reports `ids` (one report) for wire request `requestId`. */
function report(c: Coordinator, conn: number, requestId: number, ids: number[], nowMs: number, done = false) {
  return c.handle(
    conn,
    {
      type: 'report-tokens',
      requestId,
      tokenIds: ids,
      text: ids.map((i) => `<${i}>`).join(''),
      generated: ids.length,
      done,
      ...(done ? { finishReason: 'max-tokens' as const } : {}),
    },
    nowMs,
  );
}

/** Three pages of 4 GiB: the dp plan, whatever it is, leaves room to repair on the others. */
const roomy = () => [sampleProfile(1), sampleProfile(2), sampleProfile(3)];

describe('failover', () => {
  it('a stage whose socket closes mid-request is lost at once: everyone is told, the repair is planRepair, the continuation replays the history', async () => {
    const c = make();
    const s = await running(c, roomy());
    expect(s.start.promptTokenIds).toEqual(tokenize(PROMPT)); // the server tokenised the host's prompt
    const last = s.stages[s.stages.length - 1];
    report(c, s.conn(last.peerId), s.start.requestId, [101, 102, 103], 10);
    // an idle page joins during the request, holding the units of layers 2-3: it is a candidate for the repair
    c.connect(9, 'idle');
    const idle = only(c.handle(9, { type: 'join', code: s.auth.code, displayName: 'idle' }, 20), 9, 'joined').peerId;
    c.handle(9, { type: 'profile', profile: sampleProfile(4) }, 20);
    c.handle(9, { type: 'cache-status', units: ['layer.2', 'layer.3'] }, 20);

    const lost = s.stages[0];
    const effects = c.disconnect(s.conn(lost.peerId), 100);
    const stageLost = only(effects, HOST, 'stage-lost');
    expect(stageLost).toEqual({
      type: 'stage-lost',
      requestId: s.start.requestId,
      lostPeerIds: [lost.peerId],
      layers: [lost.layers],
      reason: 'left',
      detectedAtMs: 100,
    });
    for (const id of [...s.peerIds.filter((p) => p !== lost.peerId), idle])
      expect(only(effects, id === idle ? 9 : s.conn(id), 'stage-lost')).toEqual(stageLost);

    // the repair is what planRepair gives for the remaining pages (roster order, idle page included)
    const remaining = [...s.peerIds.filter((p) => p !== lost.peerId), idle];
    const history = [...tokenize(PROMPT), 101, 102, 103];
    const expected = planRepair({
      model: modelConfigFor(manifest),
      devices: remaining.map((id) =>
        deviceProfileFor({
          peerId: id,
          displayName: id,
          profile: id === idle ? sampleProfile(4) : s.profileOf.get(id)!,
        }),
      ),
      held: remaining.map((id) => (id === idle ? { layers: [2, 3], embedding: false, head: false } : { layers: [] })),
      survivors: s.stages
        .filter((st) => st.peerId !== lost.peerId)
        .map((st) => ({ device: remaining.indexOf(st.peerId), layers: st.layers })),
      replayTokens: history.length,
      memoryModel: 'max',
      embeddingAndHead: true,
      mode: 'auto',
    });
    const repair = only(effects, HOST, 'repair');
    expect(repair).toMatchObject({ requestId: s.start.requestId, mode: expected.mode, replayTokens: history.length });
    expect(repair.predictedResumeSec).toBeCloseTo(expected.resumeSec, 9);
    expect(repair.stages.map((st) => [st.peerId, st.layers])).toEqual(
      expected.stages.map((st) => [remaining[st.device], st.layers]),
    );
    expect(repair.planId).not.toBe(s.plan.planId);

    // assignments of the repaired plan to its pages; then the continuation's start to everyone
    for (const st of repair.stages) {
      const a = only(effects, st.peerId === idle ? 9 : s.conn(st.peerId), 'assignment');
      expect(a).toMatchObject({ planId: repair.planId, layers: st.layers, stageIndex: st.stageIndex });
    }
    const cont = only(effects, HOST, 'start');
    expect(cont).toMatchObject({
      planId: repair.planId,
      promptTokenIds: history,
      maxNewTokens: 10 - 3,
      resume: { of: s.start.requestId, firstIndex: 3, attempt: 1 },
      sampling: GREEDY,
    });
    expect(cont.requestId).not.toBe(s.start.requestId);
    // order on every connection: stage-lost, repair, (assignment,) start
    const order = sent(effects, HOST)
      .map((m) => m.type)
      .filter((t) => ['stage-lost', 'repair', 'start'].includes(t));
    expect(order).toEqual(['stage-lost', 'repair', 'start']);
  });

  it('outputs of the continuation continue the user request without repetition; late tokens of the lost attempt are dropped', async () => {
    const c = make();
    const s = await running(c, roomy(), 6);
    const last = s.stages[s.stages.length - 1];
    const first = report(c, s.conn(last.peerId), s.start.requestId, [11, 12], 10);
    expect(only(first, HOST, 'output')).toMatchObject({
      requestId: s.start.requestId,
      tokenIds: [11, 12],
      generated: 2,
    });
    const lost = s.stages.length > 1 ? s.stages[0] : last;
    const effects = c.disconnect(s.conn(lost.peerId), 500);
    const cont = only(effects, HOST, 'start');
    const repair = only(effects, HOST, 'repair');
    const newLast = repair.stages[repair.stages.length - 1].peerId;
    // a token the old last stage sampled before it heard of the loss: acknowledged, never shown
    if (last.peerId !== lost.peerId) {
      const late = report(c, s.conn(last.peerId), s.start.requestId, [13], 510);
      expect(only(late, s.conn(last.peerId), 'ack')).toBeTruthy();
      none(late, 'output');
    }
    const resumed = report(c, s.conn(newLast), cont.requestId, [13], 1700);
    expect(only(resumed, HOST, 'output')).toEqual({
      type: 'output',
      requestId: s.start.requestId,
      tokenIds: [13],
      text: '<13>',
      generated: 3,
      done: false,
      recoveredInMs: 1200,
    });
    const [record] = failovers(resumed);
    expect(record).toMatchObject({ outcome: 'recovered', detectedToResumedMs: 1200, attempt: 1, reason: 'left' });
    expect(record.replayTokens).toBe(PROMPT.length + 2);
    const rest = report(c, s.conn(newLast), cont.requestId, [14, 15, 16], 1800, true);
    const out = only(rest, HOST, 'output');
    expect(out).toMatchObject({ requestId: s.start.requestId, tokenIds: [14, 15, 16], generated: 6, done: true });
    expect(out.recoveredInMs).toBeUndefined();
    // the export holds one request with every token once
    const exported = c.exportSession(s.auth.code)!;
    expect(exported.requests).toHaveLength(1);
    expect(exported.requests[0]).toMatchObject({ requestId: s.start.requestId, state: 'done' });
    expect(exported.requests[0].tokenIds).toEqual([11, 12, 13, 14, 15, 16]);
  });

  it('two losses in a row: the second continuation replays everything so far (attempt 2)', async () => {
    const c = make();
    const s = await running(c, [...roomy(), sampleProfile(4)], 8);
    const last0 = s.stages[s.stages.length - 1].peerId;
    report(c, s.conn(last0), s.start.requestId, [1, 2], 10);
    const first = c.disconnect(s.conn(s.stages[0].peerId), 100);
    const cont1 = only(first, HOST, 'start');
    const repair1 = only(first, HOST, 'repair');
    const last1 = repair1.stages[repair1.stages.length - 1].peerId;
    report(c, s.conn(last1), cont1.requestId, [3], 200);
    // the second loss: a stage of the repaired pipeline
    const second = c.disconnect(s.conn(repair1.stages[0].peerId), 300);
    expect(only(second, HOST, 'stage-lost')).toMatchObject({ requestId: s.start.requestId, reason: 'left' });
    const cont2 = only(second, HOST, 'start');
    expect(cont2).toMatchObject({
      promptTokenIds: [...tokenize(PROMPT), 1, 2, 3],
      maxNewTokens: 5,
      resume: { of: s.start.requestId, firstIndex: 3, attempt: 2 },
    });
    expect(new Set([s.start.requestId, cont1.requestId, cont2.requestId]).size).toBe(3);
    const repair2 = only(second, HOST, 'repair');
    expect(repair2.stages.map((st) => st.peerId)).not.toContain(s.stages[0].peerId);
    expect(repair2.stages.map((st) => st.peerId)).not.toContain(repair1.stages[0].peerId);
    // the first continuation's id is dead now; the second's carries on under the user's id
    none(report(c, s.conn(last1), cont1.requestId, [99], 310), 'output');
    const last2 = repair2.stages[repair2.stages.length - 1].peerId;
    const out = only(report(c, s.conn(last2), cont2.requestId, [4, 5, 6, 7, 8], 400, true), HOST, 'output');
    expect(out).toMatchObject({ requestId: s.start.requestId, generated: 8, done: true, recoveredInMs: 100 });
    expect(c.exportSession(s.auth.code)!.requests[0].tokenIds).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('a stage silent for lossTimeoutMs during a request is lost (tick, no sleeps); the limit itself is not over it', async () => {
    const c = make({ lossTimeoutMs: 3000 });
    const s = await running(c, roomy());
    const alive = s.stages.slice(1).map((st) => st.peerId);
    const beat = (now: number) => {
      for (const id of alive) c.handle(s.conn(id), { type: 'heartbeat' }, now);
    };
    beat(1000);
    beat(2000);
    beat(3000);
    expect(c.tick(3000).some((e) => e.kind === 'send' && e.message.type === 'stage-lost')).toBe(false);
    beat(3001);
    const effects = c.tick(3001);
    expect(only(effects, HOST, 'stage-lost')).toMatchObject({
      lostPeerIds: [s.stages[0].peerId],
      reason: 'heartbeat',
      silence: { of: 'any', silentMs: 3001, limitMs: 3000 },
    });
    // the silent page is still in the session (until the heartbeat timeout) and is told too
    expect(c.hasPeer(s.stages[0].peerId)).toBe(true);
    expect(only(effects, s.conn(s.stages[0].peerId), 'stage-lost').reason).toBe('heartbeat');
    expect(only(effects, HOST, 'start').resume).toMatchObject({ attempt: 1, firstIndex: 0 });
  });

  it('a stage whose socket answers pings is busy, not lost, until stallTimeoutMs without a message; one that answers nothing is lost after lossTimeoutMs', async () => {
    const c = make({ lossTimeoutMs: 3000, stallTimeoutMs: 20_000, heartbeatTimeoutMs: 10_000_000 });
    const s = await running(c, roomy());
    const [busy, cut, ...rest] = s.stages.map((st) => st.peerId);
    // the gateway pings every page of the session (the stages among them)
    for (const st of s.stages) expect(c.peerConns()).toContain(s.conn(st.peerId));
    const lostAt = (
      from: number,
      to: number,
      step: number,
      alive: (now: number) => void,
    ): [number, string[]] | null => {
      for (let now = from; now <= to; now += step) {
        alive(now);
        const lost = c
          .tick(now)
          .flatMap((e) =>
            e.kind === 'send' && e.message.type === 'stage-lost' && e.to === HOST ? e.message.lostPeerIds : [],
          );
        if (lost.length) return [now, lost];
      }
      return null;
    };
    // `busy` only pongs (its main thread loads its stage), `cut` neither pongs nor beats, the rest beat
    const everySecond = (now: number) => {
      c.pong(s.conn(busy), now);
      for (const id of rest) c.handle(s.conn(id), { type: 'heartbeat' }, now);
    };
    expect(lostAt(1000, 10_000, 1000, everySecond)).toEqual([4000, [cut]]);
    // the continuation starts at 4000; `busy` still only pongs: lost once 20 s pass without a message from it
    const stalled = lostAt(5000, 40_000, 1000, (now) => {
      c.pong(s.conn(busy), now);
      for (const id of rest) c.handle(s.conn(id), { type: 'heartbeat' }, now);
    });
    expect(stalled?.[1]).toEqual([busy]);
    expect(stalled![0]).toBe(4000 + 20_000 + 1000);
  });

  it('a device seen to answer slowly gets twice its longest recent gap before it is lost; a prompt one keeps lossTimeoutMs', async () => {
    const c = make({ lossTimeoutMs: 3000, stallTimeoutMs: 15_000, heartbeatTimeoutMs: 10_000_000 });
    const s = await running(c, roomy());
    const [slow, prompt, ...rest] = s.stages.map((st) => st.peerId);
    const lost: [number, string[]][] = [];
    for (let now = 500; now <= 22_000; now += 500) {
      // `slow` beats every 2.5 s until 10 s, `prompt` every second until 17 s; then each falls silent
      if (now <= 10_000 && now % 2500 === 0) c.handle(s.conn(slow), { type: 'heartbeat' }, now);
      if (now <= 17_000 && now % 1000 === 0) c.handle(s.conn(prompt), { type: 'heartbeat' }, now);
      if (now % 1000 === 0) for (const id of rest) c.handle(s.conn(id), { type: 'heartbeat' }, now);
      for (const e of c.tick(now))
        if (e.kind === 'send' && e.message.type === 'stage-lost' && e.to === HOST)
          lost.push([now, e.message.lostPeerIds]);
    }
    // `slow` once over 2 x 2.5 s of silence, `prompt` once over 3 s
    expect(lost).toEqual([
      [15_500, [slow]],
      [20_500, [prompt]],
    ]);
  });

  it('right after the server itself stalled, silence is not judged until what came meanwhile is processed', async () => {
    const c = make({ lossTimeoutMs: 3000, heartbeatTimeoutMs: 10_000_000 });
    const s = await running(c, roomy());
    const [quiet, ...rest] = s.stages.map((st) => st.peerId);
    const stageLost = (effects: Effect[]) =>
      effects.flatMap((e) =>
        e.kind === 'send' && e.message.type === 'stage-lost' && e.to === HOST ? e.message.lostPeerIds : [],
      );
    for (const id of s.stages.map((st) => st.peerId)) c.handle(s.conn(id), { type: 'heartbeat' }, 1000);
    expect(stageLost(c.tick(1000))).toEqual([]);
    // the server's event loop was blocked from 1000 to 6000: its next tick comes before the queued heartbeats
    expect(stageLost(c.tick(6000))).toEqual([]);
    for (const id of rest) c.handle(s.conn(id), { type: 'heartbeat' }, 6000);
    // the next ordinary tick judges again: only the page that really sent nothing is lost
    expect(stageLost(c.tick(6100))).toEqual([quiet]);
  });

  it('link-lost: an accused page gone silent is lost at once; a live one only if no token comes within lossTimeoutMs', async () => {
    const c = make({ lossTimeoutMs: 3000, requestHeartbeatIntervalMs: 1000 });
    const s = await running(c, roomy());
    if (s.stages.length < 2) throw new Error('the test needs a two-stage plan');
    const [a, b] = s.stages;
    const last = s.stages[s.stages.length - 1].peerId;
    const everyoneBeats = (now: number) => {
      for (const id of s.peerIds) c.handle(s.conn(id), { type: 'heartbeat' }, now);
    };
    // b is alive (heard 500 ms ago): suspected only; a token then clears the suspicion
    everyoneBeats(1000);
    const suspected = c.handle(
      s.conn(a.peerId),
      { type: 'report-link-lost', requestId: s.start.requestId, lostPeerId: b.peerId },
      1500,
    );
    none(suspected, 'stage-lost');
    report(c, s.conn(last), s.start.requestId, [7], 2000);
    everyoneBeats(4000);
    none(c.tick(4600), 'stage-lost');
    // suspected again, and no token follows: lost once lossTimeoutMs has passed
    c.handle(s.conn(a.peerId), { type: 'report-link-lost', requestId: s.start.requestId, lostPeerId: b.peerId }, 5000);
    everyoneBeats(6000);
    everyoneBeats(7000);
    everyoneBeats(8000);
    none(c.tick(8000), 'stage-lost');
    const confirmed = c.tick(8001);
    expect(only(confirmed, HOST, 'stage-lost')).toMatchObject({ lostPeerIds: [b.peerId], reason: 'link-lost' });

    // a fresh request: an accused page silent for over 1.5 heartbeats is lost at the report
    const c2 = make({ lossTimeoutMs: 3000, requestHeartbeatIntervalMs: 1000 });
    const s2 = await running(c2, roomy());
    const [a2, b2] = s2.stages;
    c2.handle(s2.conn(a2.peerId), { type: 'heartbeat' }, 1600);
    const atOnce = c2.handle(
      s2.conn(a2.peerId),
      { type: 'report-link-lost', requestId: s2.start.requestId, lostPeerId: b2.peerId },
      1600,
    );
    expect(only(atOnce, HOST, 'stage-lost')).toMatchObject({ lostPeerIds: [b2.peerId], reason: 'link-lost' });
  });

  it('a transport error from a stage is held: a loss explains it; without one it fails the request after the grace', async () => {
    const c = make({ lossTimeoutMs: 3000, requestHeartbeatIntervalMs: 1000 });
    const s = await running(c, roomy());
    const [a, b] = s.stages;
    const held = c.handle(
      s.conn(b.peerId),
      { type: 'report-error', requestId: s.start.requestId, code: 'transport-closed', message: 'channel closed' },
      100,
    );
    none(held, 'peer-error');
    const effects = c.disconnect(s.conn(a.peerId), 200);
    expect(only(effects, HOST, 'start').resume?.attempt).toBe(1);

    const c2 = make({ lossTimeoutMs: 3000, requestHeartbeatIntervalMs: 1000 });
    const s2 = await running(c2, roomy());
    const b2 = s2.stages[1];
    c2.handle(
      s2.conn(b2.peerId),
      { type: 'report-error', requestId: s2.start.requestId, code: 'transport-closed', message: 'channel closed' },
      100,
    );
    const beat = (now: number) => {
      for (const id of s2.peerIds) c2.handle(s2.conn(id), { type: 'heartbeat' }, now);
    };
    for (const t of [1000, 2000, 3000, 4000]) beat(t);
    none(c2.tick(4100), 'peer-error');
    const failed = c2.tick(4101);
    expect(only(failed, HOST, 'peer-error')).toMatchObject({ code: 'transport-closed', peerId: b2.peerId });
    expect(c2.exportSession(s2.auth.code)!.requests[0].state).toBe('failed');
  });

  it('recovery impossible: the text so far stays, request-failed says which device would make it recoverable', async () => {
    const c = make();
    // three pages of 300 MB each: the model (~0.7 GB at fp32) needs all three
    const small = [1, 2, 3].map((i) => sampleProfile(i, { memoryBytes: 300e6 }));
    const s = await running(c, small);
    expect(s.stages).toHaveLength(3);
    const last = s.stages[2].peerId;
    report(c, s.conn(last), s.start.requestId, [1, 2], 10);
    const lost = s.stages[1];
    const effects = c.disconnect(s.conn(lost.peerId), 100);
    none(effects, 'repair');
    none(effects, 'start');
    const out = only(effects, HOST, 'output');
    expect(out).toMatchObject({
      requestId: s.start.requestId,
      tokenIds: [],
      done: true,
      finishReason: 'error',
      generated: 2,
    });
    const failed = only(effects, HOST, 'request-failed');
    expect(failed).toMatchObject({ requestId: s.start.requestId, code: 'recovery-impossible' });
    // the figure: the lost layers' memory at the replay length, by the planner's memory model
    const ct = buildCostTable({
      model: modelConfigFor(manifest),
      devices: [deviceProfileFor({ peerId: 'x', displayName: 'x', profile: small[0] })],
      tokens: PROMPT.length + 2,
      memoryModel: 'max',
      embeddingAndHead: true,
    });
    const need = (stageMemory(ct, lost.layers.start, lost.layers.end, null) / 2 ** 30).toFixed(2);
    expect(failed.message).toContain(`add a device with ${need} GiB free`);
    expect(failed.message).toMatch(/after 2 of 10 tokens/);
    expect(failovers(effects)).toEqual([
      expect.objectContaining({ outcome: 'impossible', mode: null, tokensBefore: 2, detectedToResumedMs: null }),
    ]);
    const exported = c.exportSession(s.auth.code)!.requests[0];
    expect(exported.state).toBe('failed');
    expect(exported.tokenIds).toEqual([1, 2]);
  });

  it('a continuation that never produces a token fails cleanly after recoveryTimeoutMs and is cancelled on the pages', async () => {
    const c = make({
      recoveryTimeoutMs: 20_000,
      lossTimeoutMs: 1_000_000,
      stallTimeoutMs: 1_000_000,
      heartbeatTimeoutMs: 10_000_000,
    });
    const s = await running(c, roomy());
    const effects = c.disconnect(s.conn(s.stages[0].peerId), 100);
    const cont = only(effects, HOST, 'start');
    const predictedMs = 3000 * only(effects, HOST, 'repair').predictedResumeSec;
    const deadline = 100 + Math.max(20_000, predictedMs);
    none(c.tick(deadline), 'request-failed');
    const late = c.tick(deadline + 1);
    expect(only(late, HOST, 'cancel')).toMatchObject({ requestId: cont.requestId });
    expect(only(late, HOST, 'output')).toMatchObject({
      requestId: s.start.requestId,
      done: true,
      finishReason: 'error',
    });
    expect(only(late, HOST, 'request-failed')).toMatchObject({
      requestId: s.start.requestId,
      code: 'recovery-timed-out',
    });
    expect(failovers(late)).toEqual([expect.objectContaining({ outcome: 'timed-out' })]);
  });

  it('a loss after the last token but before its done flag completes the request instead of replaying', async () => {
    const c = make();
    const s = await running(c, roomy(), 2);
    report(c, s.conn(s.stages[s.stages.length - 1].peerId), s.start.requestId, [1, 2], 10);
    const effects = c.disconnect(s.conn(s.stages[0].peerId), 100);
    none(effects, 'start');
    expect(only(effects, HOST, 'output')).toMatchObject({ done: true, finishReason: 'max-tokens', generated: 2 });
    expect(c.exportSession(s.auth.code)!.requests[0].state).toBe('done');
    expect(failovers(effects)).toEqual([expect.objectContaining({ outcome: 'ended' })]);
  });

  it('a host prompt the server cannot tokenise cannot be replayed: the request fails saying why', async () => {
    const c = testCoordinator(manifest);
    const s = await running(c, roomy());
    expect(s.start.promptTokenIds).toBeUndefined();
    const effects = c.disconnect(s.conn(s.stages[0].peerId), 100);
    expect(only(effects, HOST, 'request-failed').message).toMatch(/no tokenizer/);
  });

  it('the field-log record names pages by their keys only', async () => {
    const c = make();
    const s = await running(c, roomy());
    const effects = c.disconnect(s.conn(s.stages[0].peerId), 100);
    const cont = only(effects, HOST, 'start');
    const repair = only(effects, HOST, 'repair');
    const done = report(c, s.conn(repair.stages[repair.stages.length - 1].peerId), cont.requestId, [5], 900);
    const [record] = failovers(done);
    expect(record).toMatchObject({
      event: 'failover',
      outcome: 'recovered',
      mode: repair.mode,
      detectedToResumedMs: 800,
    });
    expect(record.lostPageKeys).toHaveLength(1);
    expect(record.repairPageKeys).toHaveLength(repair.stages.length);
    for (const k of [...record.lostPageKeys, ...record.repairPageKeys]) expect(k).toMatch(/^[0-9a-f]{16}$/);
    const text = JSON.stringify(record);
    for (const secret of [s.auth.code, ...s.peerIds, 'p0', 'p1', 'p2']) expect(text).not.toContain(secret);
  });

  it('elastic session: a go after the roster changed re-plans the same way and then starts (no stale-plan)', async () => {
    const c = make();
    const s = await running(c, roomy(), 2);
    const last = s.stages[s.stages.length - 1].peerId;
    report(c, s.conn(last), s.start.requestId, [1, 2], 10, true);
    // a page joins and profiles between requests
    c.connect(9, 'new');
    c.handle(9, { type: 'join', code: s.auth.code, displayName: 'new' }, 20);
    c.handle(9, { type: 'profile', profile: sampleProfile(5) }, 20);
    const go = { type: 'go', ...s.auth, prompt: 'again', maxNewTokens: 3, sampling: GREEDY, ref: 77 } as const;
    const effects = c.handle(HOST, go, 30);
    none(effects, 'error');
    const replan = planEffect(effects);
    expect(replan.request).toMatchObject({ method: s.plan.method, tokens: s.plan.tokens, memoryModel: 'max' });
    expect(replan.request.candidates).toHaveLength(4);
    const done = c.planFinished(replan.token, await planInline(replan.request), 40);
    const ready = only(done, HOST, 'plan-ready');
    expect(ready.ref).toBeUndefined(); // the go's reply is its start
    expect(only(done, HOST, 'start')).toMatchObject({ ref: 77, planId: ready.planId, prompt: 'again' });
    // nothing changed since: the next go starts at once on that plan
    const next = c.handle(HOST, { ...go, ref: 78 }, 50);
    expect(next.some((e) => e.kind === 'plan')).toBe(false);
  });
});
