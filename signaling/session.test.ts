/**
 * The coordinator against the real server on loopback, with real `ws` clients: the full session life
 * cycle, plans checked against planner/ run directly, heartbeat timeouts and resume.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baselinePlan, planOptimal, type PlanProblem, type Timeline } from '../planner/index.ts';
import type { ModelManifest } from '../shards/manifest.ts';
import type { SessionExport } from './coordinator.ts';
import type { TandemServer } from './http-server.ts';
import { omit } from './omit.ts';
import type { ProfileReport, ServerMessageOf, TimingEntry } from '../core/protocol.ts';
import { sampleProfile, startTestServer, TestClient } from './test-support.ts';

let dir: string;
let server: TandemServer;
/** A server with a short heartbeat timeout, for the timeout test. */
let quickServer: TandemServer;
let manifest: ModelManifest;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tandem-signaling-'));
  ({ server, manifest } = await startTestServer(dir, {
    layers: 12,
    page: true,
    fieldLog: path.join('field', 'profiles.jsonl'),
    // generous: on a loaded machine the test process itself can stall; the heartbeat test has its own server
    limits: { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 30_000 },
    gateway: { tickMs: 50 },
  }));
  await mkdir(path.join(dir, 'quick'));
  ({ server: quickServer } = await startTestServer(path.join(dir, 'quick'), {
    layers: 12,
    limits: { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1500 },
    gateway: { tickMs: 50 },
  }));
});

afterAll(async () => {
  // each is unset when beforeAll failed before it
  await (server as TandemServer | undefined)?.close();
  await (quickServer as TandemServer | undefined)?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The planner problem written out independently of signaling/planning.ts. */
function problemFor(profiles: ProfileReport[], tokens: number, memoryModel: 'max' | 'sum'): PlanProblem {
  const c = manifest.config;
  return {
    model: {
      num_hidden_layers: c.num_hidden_layers,
      hidden_size: c.hidden_size,
      num_attention_heads: c.num_attention_heads,
      num_key_value_heads: c.num_key_value_heads,
      head_dim: c.head_dim,
      intermediate_size: c.intermediate_size,
      vocab_size: c.vocab_size,
      bytesPerParam: 4, // fp32 package
      bytesPerActivation: 4, // float32 frames
    },
    devices: profiles.map((p, i) => ({
      name: `d${i}`,
      peakFlops: p.peakFlops,
      utilA: p.utilA,
      utilB: p.utilB,
      readBytesPerSec: p.readBytesPerSec,
      memoryBytes: p.memoryBytes,
      uplinkBitsPerSec: p.uplinkBitsPerSec,
      downlinkBitsPerSec: p.downlinkBitsPerSec,
    })),
    tokens,
    memoryModel,
    embeddingAndHead: true,
  };
}

function expectPlanMatches(plan: ServerMessageOf<'plan-ready'>, expected: Timeline, peerIds: string[]): void {
  expect(plan.predictedLatency).toBeCloseTo(expected.latency, 12);
  expect(plan.stages.map((s) => s.peerId)).toEqual(expected.stages.map((s) => peerIds[s.device]));
  expect(plan.stages.map((s) => s.layers)).toEqual(expected.stages.map((s) => s.layers));
  plan.stages.forEach((s, i) => {
    const e = expected.stages[i];
    for (const key of ['load', 'wait', 'comm', 'compute', 'startTime', 'finishTime'] as const)
      expect(s[key]).toBeCloseTo(e[key], 12);
  });
}

async function joinPeer(
  name: string,
  code: string,
  heartbeat = true,
  on: TandemServer = server,
): Promise<{ client: TestClient; joined: ServerMessageOf<'joined'> }> {
  const client = await TestClient.open(on.url);
  const joined = await client.request({ type: 'join', code, displayName: name });
  if (joined.type !== 'joined') throw new Error(`join failed: ${JSON.stringify(joined)}`);
  if (heartbeat) client.heartbeatEvery(100);
  return { client, joined };
}

describe('session life cycle', () => {
  it('creates, joins, profiles, plans (= planner/), starts, collects timings and tokens, leaves, ends', async () => {
    const host = await TestClient.open(server.url);
    const created = await host.request({ type: 'create-session', name: 'life cycle' });
    if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
    expect(created.code).toMatch(/^[0-9A-HJKMNP-TV-Z]{8}$/);
    expect(created.model).toEqual({ name: 'synthetic-test', manifestUrl: '/models/synthetic-test/manifest.json' });
    const { code, hostSecret } = created;

    const peers: Awaited<ReturnType<typeof joinPeer>>[] = [];
    for (const name of ['alpha', 'beta', 'gamma']) peers.push(await joinPeer(name, code));
    const ids = peers.map((p) => p.joined.peerId);
    expect(new Set(ids).size).toBe(3);
    expect(peers[2].joined.roster.map((r) => r.displayName)).toEqual(['alpha', 'beta', 'gamma']);
    const { token, ...peerjs } = peers[0].joined.peerjs;
    expect(peerjs).toEqual({ path: '/peerjs', key: 'peerjs' });
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // a fourth page joins but never profiles: the plan must leave it out and say so
    const idle = await joinPeer('idle', code);

    const profiles = [
      sampleProfile(1, { peakFlops: 4e11, readBytesPerSec: 3e8 }),
      sampleProfile(2, { peakFlops: 1.2e12, readBytesPerSec: 9e7, memoryBytes: 3 * 2 ** 30 }),
      sampleProfile(3, { peakFlops: 8e11, readBytesPerSec: 6e8, uplinkBitsPerSec: 5e7 }),
    ];
    for (let i = 0; i < 3; i++)
      expect((await peers[i].client.request({ type: 'profile', profile: profiles[i] })).type).toBe('ack');
    expect((await peers[0].client.request({ type: 'cache-status', units: ['embed', 'layer.0'] })).type).toBe('ack');
    const roster = await host.next('roster', (r) => r.peers.some((p) => p.cachedUnits.length === 2));
    // the roster carries the figures, not the bulky details (sweep, GPU limits, user agent)
    const figures = omit(profiles[0], 'userAgent', 'sweep', 'gpu');
    expect(roster.peers.find((p) => p.peerId === ids[0])?.profile).toEqual(figures);

    // plan with the exact DP
    const plan = await host.request({ type: 'plan', code, hostSecret, tokens: 128 });
    if (plan.type !== 'plan-ready') throw new Error(JSON.stringify(plan));
    expect(plan.method).toBe('dp');
    const expected = planOptimal(problemFor(profiles, 128, 'max'));
    expectPlanMatches(plan, expected, ids);
    expect(plan.excludedPeerIds).toContain(idle.joined.peerId);
    expect(plan.stages.length).toBeGreaterThan(1); // the profiles are chosen so that a pipeline wins
    expect(plan.stages[0].layers.start).toBe(0);
    expect(plan.stages[plan.stages.length - 1].layers.end).toBe(12);

    // every planned peer gets its assignment with neighbours; the idle page is excluded
    const assignments = new Map<string, ServerMessageOf<'assignment'>>();
    for (let i = 0; i < 3; i++) {
      if (!plan.stages.some((s) => s.peerId === ids[i])) {
        const excluded = await peers[i].client.next('excluded');
        expect(excluded.planId).toBe(plan.planId);
        continue;
      }
      assignments.set(ids[i], await peers[i].client.next('assignment', (a) => a.planId === plan.planId));
    }
    expect((await idle.client.next('excluded')).reason).toMatch(/no profile/);
    const n = plan.stages.length;
    plan.stages.forEach((stage, k) => {
      const a = assignments.get(stage.peerId)!;
      expect(a.stageIndex).toBe(k);
      expect(a.stageCount).toBe(n);
      expect(a.layers).toEqual(stage.layers);
      expect(a.embeds).toBe(k === 0);
      expect(a.hasHead).toBe(k === n - 1);
      expect(a.predecessorPeerId).toBe(k > 0 ? plan.stages[k - 1].peerId : null);
      expect(a.successorPeerId).toBe(k < n - 1 ? plan.stages[k + 1].peerId : null);
      expect(a.firstPeerId).toBe(plan.stages[0].peerId);
      expect(a.lastPeerId).toBe(plan.stages[n - 1].peerId);
      const layerUnits = Array.from(
        { length: stage.layers.end - stage.layers.start },
        (_, j) => `layer.${stage.layers.start + j}`,
      );
      expect(a.units).toEqual([...(k === 0 ? ['embed'] : []), ...layerUnits, ...(k === n - 1 ? ['head'] : [])]);
      expect(a.stages).toEqual(plan.stages);
    });

    // baselines go through planner/'s baselines
    const even = await host.request({
      type: 'plan',
      code,
      hostSecret,
      tokens: 256,
      method: 'even',
      memoryModel: 'sum',
    });
    if (even.type !== 'plan-ready') throw new Error(JSON.stringify(even));
    expectPlanMatches(even, baselinePlan(problemFor(profiles, 256, 'sum'), 'even'), ids);
    const dp = await host.request({ type: 'plan', code, hostSecret, tokens: 256, memoryModel: 'sum' });
    if (dp.type !== 'plan-ready') throw new Error(JSON.stringify(dp));
    expect(dp.predictedLatency).toBeLessThanOrEqual(even.predictedLatency + 1e-12);

    // go: every page gets the same start message
    const go = {
      type: 'go',
      code,
      hostSecret,
      prompt: 'Hello there',
      maxNewTokens: 4,
      sampling: { temperature: 0, topK: 0, topP: 1, seed: 7 },
    } as const;
    host.send(go);
    const starts = await Promise.all([...peers, idle].map((p) => p.client.next('start')));
    expect(new Set(starts.map((s) => JSON.stringify(s))).size).toBe(1);
    const start = starts[0];
    expect(start).toMatchObject({ prompt: 'Hello there', maxNewTokens: 4, planId: dp.planId });
    // one request at a time: a second go waits in the session's queue; its start (the reply) comes when the first ends
    const queued = host.request(go, 15_000);

    // timings from every stage reach everyone
    const stagePeers = dp.stages.map((s) => peers[ids.indexOf(s.peerId)]);
    for (const [k, p] of stagePeers.entries()) {
      const reply = await p.client.request({
        type: 'report-timings',
        requestId: start.requestId,
        timings: [
          { phase: 'storage-read', step: 0, startMs: 0, endMs: 10 + k },
          { phase: 'compute', step: 0, startMs: 20, endMs: 30 + k },
        ],
      });
      expect(reply.type).toBe('ack');
    }
    const hostTimings = [];
    for (let k = 0; k < stagePeers.length; k++) hostTimings.push(await host.next('timings'));
    expect(hostTimings.map((t) => t.peerId).sort()).toEqual(dp.stages.map((s) => s.peerId).sort());

    // a decode phase (step 1 on) of the running request reaches the connections outside its ring at once,
    // and the ring's own pages when the request ends (signaling/timings-relay.ts)
    const decodePhase: TimingEntry = { phase: 'compute', step: 1, startMs: 40, endMs: 41 };
    const isDecode = (t: ServerMessageOf<'timings'>) => t.timings.some((e) => e.step === 1);
    expect(
      await stagePeers[0].client.request({
        type: 'report-timings',
        requestId: start.requestId,
        timings: [decodePhase],
      }),
    ).toMatchObject({ type: 'ack' });
    for (const c of [host, idle.client])
      expect(await c.next('timings', isDecode)).toMatchObject({ peerId: dp.stages[0].peerId, timings: [decodePhase] });

    // only the last stage reports tokens; everyone sees the output
    const last = stagePeers[stagePeers.length - 1];
    if (stagePeers.length > 1) {
      const wrong = await stagePeers[0].client.request({
        type: 'report-tokens',
        requestId: start.requestId,
        tokenIds: [1],
        text: 'x',
        generated: 1,
        done: false,
      });
      expect(wrong).toMatchObject({ type: 'error', code: 'not-last-stage' });
    }
    await last.client.request({
      type: 'report-tokens',
      requestId: start.requestId,
      tokenIds: [11, 12],
      text: 'Hi',
      generated: 2,
      done: false,
    });
    await last.client.request({
      type: 'report-tokens',
      requestId: start.requestId,
      tokenIds: [13],
      text: '!',
      generated: 3,
      done: true,
      finishReason: 'eos',
    });
    const outputs = [await idle.client.next('output'), await idle.client.next('output')];
    expect(outputs.map((o) => o.text).join('')).toBe('Hi!');
    expect(outputs[1].done).toBe(true);
    for (const p of stagePeers) {
      // one socket keeps the server's order: up to the request's first output, no decode phase came
      await p.client.next('output', (o) => !o.done);
      const log = p.client.messages;
      const firstOutput = log.findIndex((m) => m.type === 'output');
      expect(log.slice(0, firstOutput).some((m) => m.type === 'timings' && isDecode(m))).toBe(false);
      // with the request's end it comes, its own included
      expect(await p.client.next('timings', isDecode)).toMatchObject({
        peerId: dp.stages[0].peerId,
        timings: [decodePhase],
      });
    }
    expect(await queued).toMatchObject({ type: 'start', requestId: start.requestId + 1, origin: 'host' });

    // the session export holds the plan, the timings and the text; it needs the host secret
    const exported = (await (
      await fetch(`${server.url}/api/sessions/${code}/export?hostSecret=${hostSecret}`)
    ).json()) as SessionExport;
    expect(exported.plan?.planId).toBe(dp.planId);
    expect(exported.requests[0].text).toBe('Hi!');
    expect(exported.requests[0].tokenIds).toEqual([11, 12, 13]);
    expect(exported.requests[0].state).toBe('done');
    expect(Object.keys(exported.requests[0].timings).sort()).toEqual(dp.stages.map((s) => s.peerId).sort());
    expect(
      (
        await fetch(
          `${server.url}/api/sessions/${code}/export?hostSecret=${hostSecret.startsWith('x') ? 'y' : 'x'}${hostSecret.slice(1)}`,
        )
      ).status,
    ).toBe(403);

    // the field log has the three profiles (without their device names), as JSON and CSV, and
    // nothing that reaches the session: no display names, peer ids, join code or secrets
    const logText = await (await fetch(`${server.url}/api/field-log.json`)).text();
    const log = JSON.parse(logText) as {
      pageKey: string;
      profile: Omit<ProfileReport, 'name'>;
      calibration?: object;
    }[];
    const profileLines = log.filter((r) => r.calibration === undefined);
    expect(profileLines.map((r) => r.profile)).toEqual(profiles.map(({ name: _name, ...rest }) => rest));
    expect(new Set(profileLines.map((r) => r.pageKey)).size).toBe(3);
    // the stages' refits from the request's timings (issue 12) are logged beside the profile they refine
    const refits = log.filter((r) => r.calibration !== undefined);
    expect(new Set(refits.map((r) => r.pageKey)).size).toBe(dp.stages.length);
    const csv = await (await fetch(`${server.url}/api/field-log.csv`)).text();
    const lines = csv.trim().split('\n');
    expect(lines[0].split(',')).toContain('peakFlops');
    expect(lines).toHaveLength(1 + log.length);
    for (const text of [logText, csv]) {
      for (const secret of ['alpha', code, hostSecret, ...ids, ...peers.map((p) => p.joined.peerSecret)])
        expect(text).not.toContain(secret);
    }

    // a planned peer leaves while the queued request runs: everyone is told which stage is gone. This
    // server has no tokenizer for its synthetic package, so it cannot replay the prompt: the request
    // ends saying so (failover.test.ts covers the recoveries)
    const leaver = stagePeers[0];
    expect((await leaver.client.request({ type: 'leave' })).type).toBe('ack');
    const left = await host.next('peer-left');
    expect(left).toMatchObject({ peerId: ids[peers.indexOf(leaver)], reason: 'left' });
    expect(await host.next('stage-lost')).toMatchObject({
      requestId: start.requestId + 1,
      lostPeerIds: [left.peerId],
      reason: 'left',
    });
    const failed = await host.next('request-failed');
    expect(failed).toMatchObject({ requestId: start.requestId + 1, code: 'recovery-impossible' });
    expect(failed.message).toMatch(/tokenizer/);
    // the roster changed since the plan: the next go re-plans the same way (dp, 256 tokens, 'sum') without
    // the page that left, then starts on the new plan (the start is the go's reply)
    const restarted = await host.request(go);
    const replanned = await host.next('plan-ready');
    expect(replanned).toMatchObject({ method: 'dp', tokens: 256, memoryModel: 'sum' });
    expect(replanned.stages.map((s) => s.peerId)).not.toContain(left.peerId);
    expect(restarted).toMatchObject({ type: 'start', planId: replanned.planId });

    // the host ends the session: everyone is told, and the code stops working
    host.send({ type: 'end-session', code, hostSecret });
    await Promise.all(
      [host, ...peers.filter((p) => p !== leaver).map((p) => p.client), idle.client].map((c) =>
        c.next('session-ended'),
      ),
    );
    const late = await TestClient.open(server.url);
    expect(await late.request({ type: 'join', code, displayName: 'late' })).toMatchObject({
      type: 'error',
      code: 'session-not-found',
    });
    for (const c of [host, late, idle.client, ...peers.map((p) => p.client)]) c.close();
  });
});

describe('heartbeats', () => {
  it('drops a silent peer after the timeout and tells the others', async () => {
    const host = await TestClient.open(quickServer.url);
    const created = await host.request({ type: 'create-session' });
    if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
    const alive = await joinPeer('alive', created.code, true, quickServer);
    const silent = await joinPeer('silent', created.code, false, quickServer);
    try {
      const left = await alive.client.next('peer-left', () => true, 5000);
      expect(left).toEqual({ type: 'peer-left', peerId: silent.joined.peerId, reason: 'timed-out' });
      expect((await silent.client.closed).code).toBe(4000);
      expect(await host.next('peer-left')).toEqual(left);
      // the live peer is still in, the silent one is gone
      const roster = await alive.client.next('roster', (r) => r.peers.length === 1);
      expect(roster.peers[0].peerId).toBe(alive.joined.peerId);
      const ack = await alive.client.request({ type: 'heartbeat', clientTimeMs: 123 });
      expect(ack).toMatchObject({ type: 'heartbeat-ack', clientTimeMs: 123 });
    } finally {
      host.close();
      alive.client.close();
    }
  });

  it('lets a page resume with its peer secret after a reconnect, and refuses a wrong secret', async () => {
    const host = await TestClient.open(server.url);
    const created = await host.request({ type: 'create-session' });
    if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
    const page = await joinPeer('phone', created.code);
    page.client.terminate();
    await host.next('roster', (r) => r.peers.length === 1 && !r.peers[0].connected);

    const thief = await TestClient.open(server.url);
    const stolen = await thief.request({
      type: 'resume',
      code: created.code,
      peerId: page.joined.peerId,
      peerSecret: 'A'.repeat(44),
    });
    expect(stolen).toMatchObject({ type: 'error', code: 'wrong-secret' });

    const again = await TestClient.open(server.url);
    const resumed = await again.request({
      type: 'resume',
      code: created.code,
      peerId: page.joined.peerId,
      peerSecret: page.joined.peerSecret,
    });
    expect(resumed).toMatchObject({ type: 'joined', peerId: page.joined.peerId });
    again.heartbeatEvery(100);
    await host.next('roster', (r) => r.peers.length === 1 && r.peers[0].connected);
    expect((await again.request({ type: 'profile', profile: sampleProfile(4) })).type).toBe('ack');
    for (const c of [host, thief, again]) c.close();
  });
});
