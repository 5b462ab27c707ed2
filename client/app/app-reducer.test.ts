/**
 * The page controller's reducer, as tables: a sequence of events -> the resulting state and the effects
 * of the last event. The fixtures are wire messages as the coordinator sends them (checked against the
 * protocol schema, so a fixture cannot drift from the wire).
 */
import { describe, expect, it } from 'vitest';
import type { EnsureResult } from '../cache/shard-cache.ts';
import type { Effect } from './app-effects.ts';
import type { AppEvent } from './app-events.ts';
import { reduce } from './app-reducer.ts';
import { initialState, snapshotOf } from './app-state.ts';
import { AssignmentSignals } from './assignment-signals.ts';
import {
  CODE,
  JOINED,
  joined,
  ME,
  MODEL,
  NOW,
  opened,
  play,
  readyWith,
  server,
  stage,
  tinyManifest,
  wire,
} from './reducer-test-support.ts';

const OTHER = 'peerBravo2';
const SECRET = 'hostsecret-0123456789abcdef';

const STAGES = [stage(ME, 0, 0, 1, true, false), stage(OTHER, 1, 1, 2, false, true)];

function planReady(planId: string, excludedPeerIds: string[] = []) {
  return wire<'plan-ready'>({
    type: 'plan-ready',
    planId,
    method: 'dp',
    tokens: 16,
    memoryModel: 'max',
    predictedLatency: 0.3,
    stages: STAGES,
    excludedPeerIds,
  });
}

function assignment(planId: string, units = ['embed', 'layer.0']) {
  return wire<'assignment'>({
    type: 'assignment',
    planId,
    method: 'dp',
    tokens: 16,
    memoryModel: 'max',
    model: MODEL,
    stageIndex: 0,
    stageCount: 2,
    layers: { start: 0, end: 1 },
    embeds: true,
    hasHead: false,
    units,
    predecessorPeerId: null,
    successorPeerId: OTHER,
    firstPeerId: ME,
    lastPeerId: OTHER,
    predictedLatency: 0.3,
    stages: STAGES,
  });
}

function start(requestId: number, planId: string) {
  return wire<'start'>({
    type: 'start',
    requestId,
    planId,
    prompt: 'Hello',
    maxNewTokens: 4,
    sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
    serverTimeMs: NOW,
  });
}

const ENSURED: EnsureResult = {
  plan: { cached: [], toFetch: [], bytesCached: 0, bytesToFetch: 0 },
  fetched: ['layer.0'],
  reused: ['embed'],
  bytesDownloaded: 3000,
  seconds: 0.5,
};

const types = (effects: readonly Effect[]) => effects.map((e) => e.type).filter((t) => t !== 'log');

// Sequences reused below: a joined peer with its manifest in and its cache swept.
const MANIFEST = tinyManifest(2);
const READY = readyWith(MANIFEST);
const ASSIGNED: AppEvent[] = [...READY, server(planReady('p1')), server(assignment('p1'))];
const CACHED: AppEvent[] = [...ASSIGNED, { type: 'download-finished', seq: 1, result: ENSURED, seconds: 0.5 }];
const RUNNING: AppEvent[] = [...CACHED, server(start(7, 'p1'))];
/** the host: created the session, then joined it */
const HOSTING: AppEvent[] = [
  opened('?host=1&name=ann'),
  { type: 'connected', seconds: 0.01 },
  {
    type: 'session-created',
    created: wire<'session-created'>({
      type: 'session-created',
      code: CODE,
      hostSecret: SECRET,
      name: "ann's session",
      model: MODEL,
    }),
  },
  { type: 'join-replied', joined, seconds: 0.02 },
];

/** A table row: events in, then what the state holds and which effects (by type) the last event gave. */
interface Row {
  what: string;
  events: AppEvent[];
  state?: Record<string, unknown>;
  errors?: string[];
  effects: Effect['type'][];
}

describe('reduce: start-up and joining', () => {
  it.each<Row>([
    {
      what: '?join opens: profile and connect; the name comes from ?name',
      events: [opened(`?join=${CODE}&name=ann`)],
      state: { displayName: 'ann', role: null, errors: [] },
      effects: ['profile', 'connect'],
    },
    {
      what: 'no ?name: the stored name, else the made-up one',
      events: [opened('', { storedName: 'kept' })],
      state: { displayName: 'kept' },
      effects: ['profile', 'connect'],
    },
    {
      what: 'a bad ?backend: a banner, default params, the page still starts',
      events: [opened('?backend=cuda')],
      state: { params: { join: null, host: false, name: null, emulation: null, backend: 'auto' } },
      errors: ['backend-invalid'],
      effects: ['profile', 'connect'],
    },
    {
      what: 'plain http: a warning, not an error',
      events: [opened('', { secureContext: false })],
      errors: ['insecure-context'],
      effects: ['profile', 'connect'],
    },
    {
      what: "the host's tab reloaded: its saved secret gives the host role back",
      events: [opened(`?join=${CODE}`, { savedHost: { code: CODE, hostSecret: SECRET } })],
      state: { role: 'host', hostSecret: SECRET },
      effects: ['profile', 'connect'],
    },
    {
      what: 'a secret saved for another session is not used',
      events: [opened(`?join=${CODE}`, { savedHost: { code: 'AAAAAAAA', hostSecret: SECRET } })],
      state: { role: null, hostSecret: null },
      effects: ['profile', 'connect'],
    },
    {
      what: 'connected with ?join: join',
      events: JOINED.slice(0, 2),
      state: { phases: expect.objectContaining({ connectSeconds: 0.01 }) as unknown },
      effects: ['request-join'],
    },
    {
      what: 'connected with ?host: create the session',
      events: HOSTING.slice(0, 2),
      effects: ['request-create'],
    },
    {
      what: 'session created: host role, secret saved, then join it',
      events: HOSTING.slice(0, 3),
      state: { role: 'host', hostSecret: SECRET, model: MODEL },
      effects: ['save-host', 'request-join'],
    },
    {
      what: 'joined: the session in state; credentials, transport, URL, manifest',
      events: JOINED,
      state: { code: CODE, peerId: ME, role: 'peer', model: MODEL, sessionName: "ann's session" },
      effects: ['remember-peer', 'keep-awake', 'connect-transport', 'show-joined-url', 'load-manifest'],
    },
    {
      what: 'a typed code that is not one: a banner and nothing sent',
      events: [opened(''), { type: 'join-requested', rawCode: 'nope' }],
      errors: ['join-code-invalid'],
      effects: [],
    },
    {
      what: 'a typed code is normalised (O -> 0, spaces dropped) before it is sent',
      events: [opened(''), { type: 'join-requested', rawCode: 'k7q2 mnOp' }],
      effects: ['request-join'],
    },
    {
      what: 'manifest in: the cache is checked',
      events: [...JOINED, { type: 'manifest-loaded', manifest: MANIFEST, seconds: 0.03 }],
      state: { cache: expect.objectContaining({ state: 'checking', packageName: 'tiny' }) as unknown },
      effects: ['sweep-cache'],
    },
    {
      what: 'cache swept without an assignment: only the cache status is reported',
      events: READY,
      state: { cache: expect.objectContaining({ state: 'idle' }) as unknown },
      effects: ['report-cache'],
    },
    {
      what: 'a manifest that fails: cache error, banner, reported to the server',
      events: [...JOINED, { type: 'manifest-failed', error: new Error('bad json') }],
      state: { cache: expect.objectContaining({ state: 'error' }) as unknown },
      errors: ['manifest-invalid'],
      effects: ['send'],
    },
  ])('$what', ({ events, state, errors, effects }) => {
    const r = play(events);
    if (state) expect(r.state).toMatchObject(state);
    expect(r.state.errors.map((e) => e.code)).toEqual(errors ?? []);
    expect(types(r.last)).toEqual(effects);
  });

  it('warms the kernels once both the profile and the manifest are in, whichever comes last', () => {
    // the profile's own measurements are over first: the warm-up would share the worker with them
    const profiled = {
      type: 'profile-finished',
      result: { report: { name: 'ann' }, details: { issues: [] } },
      seconds: 5,
    } as unknown as AppEvent;
    const manifestIn: AppEvent = { type: 'manifest-loaded', manifest: MANIFEST, seconds: 0.03 };
    const warm = (effects: Effect[]) => effects.filter((e) => e.type === 'warm-up-kernels');
    const profileLast = play([...JOINED, manifestIn, profiled]);
    expect(warm(profileLast.effects[JOINED.length])).toEqual([]); // manifest alone: not yet
    expect(warm(profileLast.last)).toEqual([{ type: 'warm-up-kernels', params: profileLast.state.params }]);
    const manifestLast = play([...JOINED, profiled, manifestIn]);
    expect(warm(manifestLast.effects[JOINED.length])).toEqual([]); // profile alone: not yet
    expect(warm(manifestLast.last)).toHaveLength(1);
  });

  it('the join request carries the normalised code and the display name', () => {
    const r = play([opened('?name=ann'), { type: 'join-requested', rawCode: 'k7q2 mnOp' }]);
    expect(r.last).toContainEqual({
      type: 'request-join',
      message: { type: 'join', code: CODE, displayName: 'ann', emulated: null },
    });
  });

  it('the snapshot leaves the host secret and the controller bookkeeping out', () => {
    const snap = JSON.stringify(snapshotOf(play([...HOSTING, ...READY.slice(3)]).state));
    expect(snap).not.toContain(SECRET);
    expect(snap).not.toContain('"manifest"');
    expect(snap).toContain(CODE);
  });
});

describe('reduce: assignment and downloads', () => {
  it.each<Row & { download: string; cache: Record<string, unknown> }>([
    {
      what: 'an assignment before the manifest waits for it',
      events: [...JOINED, server(assignment('p1'))],
      download: 'waiting',
      cache: { state: 'idle', assignedUnits: ['embed', 'layer.0'] },
      effects: [],
    },
    {
      what: '... and downloads once the cache is swept',
      events: [
        ...JOINED,
        server(assignment('p1')),
        { type: 'manifest-loaded', manifest: MANIFEST, seconds: 0.03 },
        { type: 'cache-swept' },
      ],
      download: 'running',
      cache: { state: 'fetching' },
      effects: ['report-cache', 'download-units'],
    },
    {
      what: 'an assignment with the manifest in downloads at once',
      events: ASSIGNED,
      download: 'running',
      cache: { state: 'fetching', assignedUnits: ['embed', 'layer.0'] },
      effects: ['download-units'],
    },
    {
      what: 'progress is shown',
      events: [
        ...ASSIGNED,
        {
          type: 'download-progress',
          seq: 1,
          progress: { unitId: 'embed', bytesDone: 10, bytesTotal: 20, unitsDone: 0, unitsTotal: 2 },
        },
      ],
      download: 'running',
      cache: { progress: { unitId: 'embed', bytesDone: 10, bytesTotal: 20, unitsDone: 0, unitsTotal: 2 } },
      effects: [],
    },
    {
      what: 'downloaded: complete, reported, the stage is prepared',
      events: CACHED,
      download: 'done',
      cache: { state: 'complete', fetchedUnits: ['layer.0'], reusedUnits: ['embed'], bytesDownloaded: 3000 },
      effects: ['report-cache', 'prepare-stage'],
    },
    {
      what: 'a download that fails: error state, banner, report-error naming the unit, cache reported',
      events: [...ASSIGNED, { type: 'download-failed', seq: 1, error: new Error('HTTP 500'), unitId: 'layer.0' }],
      download: 'failed',
      cache: { state: 'error' },
      errors: ['cache-failed'],
      effects: ['send', 'report-cache'],
    },
  ])('$what', ({ events, download, cache, errors, effects }) => {
    const r = play(events);
    expect(r.state.work?.download).toBe(download);
    expect(r.state.cache).toMatchObject(cache);
    expect(r.state.errors.map((e) => e.code)).toEqual(errors ?? []);
    expect(types(r.last)).toEqual(effects);
  });

  it('the download and the stage carry the assignment seq; the report-error names the failed unit', () => {
    const r = play(ASSIGNED);
    expect(r.last).toEqual([{ type: 'download-units', seq: 1, units: ['embed', 'layer.0'] }]);
    const failed = play(
      [{ type: 'download-failed', seq: 1, error: new Error('HTTP 500'), unitId: 'layer.0' }],
      r.state,
    );
    expect(failed.last).toContainEqual({
      type: 'send',
      source: null,
      message: { type: 'report-error', requestId: null, code: 'cache-failed', message: 'HTTP 500', unitId: 'layer.0' },
    });
    const done = play(CACHED);
    expect(done.last).toContainEqual({ type: 'prepare-stage', seq: 1, assignment: assignment('p1'), load: false });
  });
});

describe('reduce: warm mode (?warm=1)', () => {
  const WARM: AppEvent[] = [opened(`?join=${CODE}&name=ann&warm=1`), ...CACHED.slice(1)];
  const loaded = (seq: number): AppEvent => ({
    type: 'stage-loaded',
    seq,
    storageReadSeconds: 0.25,
    sessionCreateSeconds: 0.5,
  });

  it('a warm page loads its stage on assignment, once its units are in; a cold page (the default) only prepares it', () => {
    const warm = play(WARM);
    expect(warm.last).toContainEqual({ type: 'prepare-stage', seq: 1, assignment: assignment('p1'), load: true });
    expect(play(CACHED).last).toContainEqual({
      type: 'prepare-stage',
      seq: 1,
      assignment: assignment('p1'),
      load: false,
    });
  });

  it('shows the load done at plan time; a load of an ended assignment changes nothing', () => {
    const r = play([...WARM, loaded(1)]);
    expect(r.state.phases.stageLoadSeconds).toBe(0.75);
    expect(r.state.stage.detail).toMatch(/^loaded at plan time \(warm\)/);
    // a new plan's assignment (seq 2): the old load's report is late
    const next = play([server(planReady('p2')), server(assignment('p2')), loaded(1)], play(WARM).state);
    expect(next.state.phases.stageLoadSeconds).toBeNull();
    expect(next.state.stage.detail).toBe('');
  });

  it("the host's warm mode (assignment.warm) loads the stage on assignment without ?warm=1", () => {
    const warmAssignment = wire<'assignment'>({ ...assignment('p1'), warm: true });
    const r = play([...READY, server(planReady('p1')), server(warmAssignment), ...CACHED.slice(ASSIGNED.length)]);
    expect(r.last).toContainEqual({ type: 'prepare-stage', seq: 1, assignment: warmAssignment, load: true });
  });

  it('a start after the warm load runs the stage at once, as a cold one does', () => {
    const r = play([...WARM, loaded(1), server(start(7, 'p1'))]);
    expect(types(r.last)).toContain('run-stage');
    expect(r.state.stage.state).toBe('running');
  });
});

describe('reduce: go, start, tokens', () => {
  it.each([
    {
      what: 'go as the host sends go with its credentials',
      events: [
        ...HOSTING,
        {
          type: 'go-requested',
          prompt: 'Hi',
          maxNewTokens: 4,
          sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
        },
      ],
      errors: [],
      effects: [
        {
          type: 'send',
          source: 'go',
          message: {
            type: 'go',
            code: CODE,
            hostSecret: SECRET,
            prompt: 'Hi',
            maxNewTokens: 4,
            sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
          },
        },
      ],
    },
    {
      what: 'go with an empty prompt',
      events: [
        ...HOSTING,
        {
          type: 'go-requested',
          prompt: '  ',
          maxNewTokens: 4,
          sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
        },
      ],
      errors: ['prompt-empty'],
      effects: [],
    },
    {
      what: 'go from a page that is not the host',
      events: [
        ...JOINED,
        {
          type: 'go-requested',
          prompt: 'Hi',
          maxNewTokens: 4,
          sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
        },
      ],
      errors: ['not-host'],
      effects: [],
    },
    {
      what: 'plan as the host',
      events: [...HOSTING, { type: 'plan-requested', tokens: 16, method: 'even' }],
      errors: [],
      effects: [
        { type: 'request-plan', message: { type: 'plan', code: CODE, hostSecret: SECRET, tokens: 16, method: 'even' } },
      ],
    },
    {
      what: 'stop as the host stops the request that runs',
      events: [...HOSTING, server(start(7, 'p0')), { type: 'stop-requested' }],
      errors: [],
      effects: [
        { type: 'send', source: 'stop', message: { type: 'stop', code: CODE, hostSecret: SECRET, requestId: 7 } },
      ],
    },
    {
      what: 'stop when nothing runs',
      events: [...HOSTING, { type: 'stop-requested' }],
      errors: [],
      effects: [],
    },
    {
      what: 'stop from a page that is not the host',
      events: [...JOINED, server(start(7, 'p0')), { type: 'stop-requested' }],
      errors: ['not-host'],
      effects: [],
    },
    {
      what: 'plan in warm mode as the host',
      events: [...HOSTING, { type: 'plan-requested', tokens: 16, method: 'dp', warm: true }],
      errors: [],
      effects: [
        {
          type: 'request-plan',
          message: { type: 'plan', code: CODE, hostSecret: SECRET, tokens: 16, method: 'dp', warm: true },
        },
      ],
    },
    {
      what: 'end the session as the host',
      events: [...HOSTING, { type: 'end-requested' }],
      errors: [],
      effects: [{ type: 'send', source: 'session', message: { type: 'end-session', code: CODE, hostSecret: SECRET } }],
    },
  ] satisfies { what: string; events: AppEvent[]; errors: string[]; effects: Effect[] }[])(
    '$what',
    ({ events, errors, effects }) => {
      const r = play(events);
      expect(r.state.errors.map((e) => e.code)).toEqual(errors);
      expect(r.last.filter((e) => e.type !== 'log')).toEqual(effects);
    },
  );

  it("start for this page's plan runs the stage at once when its units are in", () => {
    const r = play(RUNNING);
    expect(r.state.stage).toEqual({ state: 'running', requestId: 7, backend: null, detail: 'cold start' });
    expect(r.last).toEqual([
      { type: 'run-stage', seq: 1, assignment: assignment('p1'), start: start(7, 'p1'), startedAtMs: NOW },
    ]);
    expect(r.state.outputs).toEqual([
      { requestId: 7, prompt: 'Hello', text: '', tokenIds: [], done: false, finishReason: null },
    ]);
    expect(r.state.requestStages.get(7)).toEqual(STAGES);
  });

  it('a start while the units still download waits for them, then runs', () => {
    const waiting = play([...ASSIGNED, server(start(7, 'p1'))]);
    expect(types(waiting.last)).toEqual([]);
    expect(waiting.state.stage.state).toBe('idle');
    const r = play([{ type: 'download-finished', seq: 1, result: ENSURED, seconds: 0.5 }], waiting.state);
    expect(types(r.last)).toEqual(['report-cache', 'prepare-stage', 'run-stage']);
    expect(r.state.stage.state).toBe('running');
    expect(r.state.work?.waitingStarts).toEqual([]);
  });

  it('a start of another plan is only watched', () => {
    const r = play([...CACHED, server(start(8, 'p0'))]);
    expect(types(r.last)).toEqual([]);
    expect(r.state.stage.state).toBe('idle');
    expect(r.state.outputs.map((o) => o.requestId)).toEqual([8]);
  });

  it('a start before the manifest: stage-not-ready, reported with the request id', () => {
    const r = play([...JOINED, server(assignment('p1')), server(start(9, 'p1'))]);
    expect(r.state.errors.map((e) => e.code)).toEqual(['stage-not-ready']);
    expect(r.last).toContainEqual(
      expect.objectContaining({
        type: 'send',
        message: expect.objectContaining({ type: 'report-error', requestId: 9, code: 'stage-not-ready' }) as unknown,
      }),
    );
  });

  it("a session-create phase says how many parts the stage loaded in; the timing sent on is the phase's alone", () => {
    const r = play([
      ...RUNNING,
      { type: 'stage-phase', seq: 1, requestId: 7, phase: 'session-create', step: 0, startMs: 2, endMs: 9, parts: 3 },
    ]);
    expect(r.state.stage.loadedInParts).toBe(3);
    expect(r.last).toEqual([
      { type: 'report-timing', requestId: 7, entry: { phase: 'session-create', step: 0, startMs: 2, endMs: 9 } },
    ]);
    const stale = play([
      ...RUNNING,
      { type: 'stage-phase', seq: 0, requestId: 7, phase: 'session-create', step: 0, startMs: 2, endMs: 9, parts: 3 },
    ]);
    expect(stale.state.stage.loadedInParts).toBeUndefined();
    // a new plan's assignment: the stage that loaded in parts is gone
    const replanned = play([
      ...RUNNING,
      { type: 'stage-phase', seq: 1, requestId: 7, phase: 'session-create', step: 0, startMs: 2, endMs: 9, parts: 3 },
      server(assignment('p2')),
    ]);
    expect(replanned.state.stage.loadedInParts).toBeUndefined();
  });

  it('phases go into the timeline and to the server; tokens to the server; the end flushes the timings', () => {
    const r = play([
      ...RUNNING,
      { type: 'stage-phase', seq: 1, requestId: 7, phase: 'compute', step: 0, startMs: -1, endMs: 5 },
      {
        type: 'stage-tokens',
        seq: 1,
        requestId: 7,
        report: { tokenIds: [3], text: 'x'.repeat(40_000), generated: 1, done: false },
      },
    ]);
    expect(r.state.timings.get(7)?.get(ME)).toEqual([{ phase: 'compute', step: 0, startMs: 0, endMs: 5 }]);
    expect(r.effects.at(-2)).toEqual([
      { type: 'report-timing', requestId: 7, entry: { phase: 'compute', step: 0, startMs: 0, endMs: 5 } },
    ]);
    expect(r.last).toEqual([
      {
        type: 'send',
        source: 'stage',
        message: {
          type: 'report-tokens',
          requestId: 7,
          tokenIds: [3],
          text: 'x'.repeat(32 * 1024),
          generated: 1,
          done: false,
        },
      },
    ]);
    const done = play([{ type: 'stage-finished', seq: 1, requestId: 7, seconds: 1.5 }], r.state);
    expect(done.state.stage).toMatchObject({ state: 'done', detail: 'finished' });
    expect(done.state.phases.stageSeconds).toBe(1.5);
    expect(done.last).toEqual([{ type: 'flush-timings' }]);
  });

  it("the session's timings keep, per page, whether they are on the server's clock", () => {
    const entry = (step: number) => ({ phase: 'compute' as const, step, startMs: step, endMs: step + 1 });
    const timings = (peerId: string, step: number, clockUncertaintyMs?: number) =>
      server({
        type: 'timings',
        requestId: 7,
        planId: 'p1',
        peerId,
        timings: [entry(step)],
        ...(clockUncertaintyMs !== undefined ? { clockUncertaintyMs } : {}),
      });
    const r = play([...RUNNING, timings(ME, 0, 0.5), timings(ME, 1, 1.5), timings(OTHER, 0, 2), timings(OTHER, 1)]);
    expect(r.state.timings.get(7)?.get(OTHER)).toHaveLength(2);
    // the largest bound of a page's reports; one report on the page's own start makes them all unaligned
    expect(r.state.clocks.get(7)).toEqual(
      new Map([
        [ME, 1.5],
        [OTHER, null],
      ]),
    );
    expect(
      play([timings(OTHER, 2, 0.1)], r.state)
        .state.clocks.get(7)
        ?.get(OTHER),
    ).toBeNull();
  });

  it('a stage that fails: error state, banner, reported with the request id', () => {
    const r = play([...RUNNING, { type: 'stage-failed', seq: 1, requestId: 7, error: new Error('boom'), seconds: 1 }]);
    expect(r.state.stage).toMatchObject({ state: 'error', detail: 'stage-failed' });
    expect(r.state.errors.map((e) => e.code)).toEqual(['stage-failed']);
    expect(types(r.last)).toEqual(['send', 'flush-timings']);
    expect(r.last).toContainEqual(
      expect.objectContaining({ message: expect.objectContaining({ type: 'report-error', requestId: 7 }) as unknown }),
    );
  });

  it("output messages stream into the request's output", () => {
    const out = (text: string, tokenIds: number[], done: boolean) =>
      server(
        wire<'output'>({
          type: 'output',
          requestId: 7,
          tokenIds,
          text,
          generated: tokenIds.length,
          done,
          ...(done ? { finishReason: 'max-tokens' as const } : {}),
        }),
      );
    const r = play([...RUNNING, out('Par', [1], false), out('is', [2], true)]);
    expect(r.state.outputs).toEqual([
      { requestId: 7, prompt: 'Hello', text: 'Paris', tokenIds: [1, 2], done: true, finishReason: 'max-tokens' },
    ]);
  });
});

describe('reduce: cancel', () => {
  const cancel = (requestId: number) => server(wire<'cancel'>({ type: 'cancel', requestId, reason: 'client gone' }));

  it('a running request: the stage is told; what it did after the cancel is reported once, no banner', () => {
    const r = play([
      ...RUNNING,
      cancel(7),
      { type: 'stage-phase', seq: 1, requestId: 7, phase: 'compute', step: 1, startMs: 1, endMs: 2 },
      { type: 'stage-phase', seq: 1, requestId: 7, phase: 'sample', step: 1, startMs: 2, endMs: 3 },
      { type: 'stage-failed', seq: 1, requestId: 7, error: new Error('request-cancelled'), seconds: 1 },
    ]);
    expect(r.effects[RUNNING.length]).toEqual([{ type: 'cancel-stage', requestId: 7, reason: 'client gone' }]);
    expect(r.state.stage).toMatchObject({ state: 'done', detail: 'cancelled' });
    expect(r.state.errors).toEqual([]);
    expect(r.last).toEqual([
      {
        type: 'send',
        source: 'stage',
        message: { type: 'report-cancelled', requestId: 7, tokensAfterCancel: 1, stepsAfterCancel: 1 },
      },
      { type: 'flush-timings' },
    ]);
    // a repeated cancel reports nothing again
    expect(types(play([cancel(7)], r.state).last)).toEqual(['cancel-stage']);
  });

  it('steps a worker stage ran before the cancel reached it, reported after it, do not count as after', () => {
    const r = play([
      ...RUNNING,
      cancel(7),
      {
        type: 'stage-phase',
        seq: 1,
        requestId: 7,
        phase: 'compute',
        step: 1,
        startMs: 1,
        endMs: 2,
        beforeCancel: true,
      },
      { type: 'stage-phase', seq: 1, requestId: 7, phase: 'sample', step: 1, startMs: 2, endMs: 3, beforeCancel: true },
      { type: 'stage-phase', seq: 1, requestId: 7, phase: 'compute', step: 2, startMs: 3, endMs: 4 },
      { type: 'stage-failed', seq: 1, requestId: 7, error: new Error('request-cancelled'), seconds: 1 },
    ]);
    expect(r.last[0]).toEqual({
      type: 'send',
      source: 'stage',
      message: { type: 'report-cancelled', requestId: 7, tokensAfterCancel: 0, stepsAfterCancel: 1 },
    });
    // its timings are kept all the same
    expect([...r.state.timings.get(7)!.values()][0].filter((t) => t.phase === 'compute')).toHaveLength(2);
  });

  it('a request that already ended here is reported at once', () => {
    const r = play([...RUNNING, { type: 'stage-finished', seq: 1, requestId: 7, seconds: 1 }, cancel(7)]);
    expect(r.last).toEqual([
      { type: 'cancel-stage', requestId: 7, reason: 'client gone' },
      {
        type: 'send',
        source: 'stage',
        message: { type: 'report-cancelled', requestId: 7, tokensAfterCancel: 0, stepsAfterCancel: 0 },
      },
    ]);
  });

  it('a request cancelled while its units download never runs', () => {
    const r = play([
      ...ASSIGNED,
      server(start(7, 'p1')),
      cancel(7),
      { type: 'download-finished', seq: 1, result: ENSURED, seconds: 0.5 },
    ]);
    expect(types(r.last)).toEqual(['report-cache', 'prepare-stage', 'send']);
    expect(r.state.stage.state).toBe('idle');
    expect(r.state.ranHere.has(7)).toBe(true);
  });
});

describe('reduce: a new plan or leaving ends the old assignment', () => {
  /** Everything the old assignment (seq 1) could still deliver after it ended. */
  const LATE: AppEvent[] = [
    {
      type: 'download-progress',
      seq: 1,
      progress: { unitId: 'embed', bytesDone: 1, bytesTotal: 2, unitsDone: 0, unitsTotal: 1 },
    },
    { type: 'download-finished', seq: 1, result: ENSURED, seconds: 0.5 },
    { type: 'download-failed', seq: 1, error: new Error('aborted'), unitId: 'embed' },
    { type: 'stage-backend', seq: 1, backend: 'wasm', why: 'old' },
    { type: 'stage-prepare-failed', seq: 1, error: new Error('aborted') },
    { type: 'unit-read', seq: 1, read: { unitId: 'embed', readSeconds: 1, verifySeconds: 1 } },
    { type: 'stage-phase', seq: 1, requestId: 7, phase: 'compute', step: 0, startMs: 0, endMs: 1 },
    { type: 'stage-tokens', seq: 1, requestId: 7, report: { tokenIds: [1], text: 'a', generated: 1, done: false } },
    { type: 'stage-finished', seq: 1, requestId: 7, seconds: 1 },
    { type: 'stage-failed', seq: 1, requestId: 7, error: new Error('stage-aborted'), seconds: 1 },
  ];

  it.each([
    {
      what: 'a new assignment while downloading',
      before: ASSIGNED,
      end: server(assignment('p2', ['layer.1'])),
      after: ['abort-assignment', 'download-units'],
    },
    {
      what: 'a new assignment after the download',
      before: CACHED,
      end: server(assignment('p2', ['layer.1'])),
      after: ['abort-assignment', 'download-units'],
    },
    {
      what: 'a new assignment while the stage runs',
      before: RUNNING,
      end: server(assignment('p2', ['layer.1'])),
      after: ['abort-assignment', 'flush-timings', 'download-units'],
    },
    {
      what: 'excluded from the new plan',
      before: CACHED,
      end: server(wire<'excluded'>({ type: 'excluded', planId: 'p2', reason: 'too slow' })),
      after: ['abort-assignment'],
    },
    {
      what: 'a plan-ready that leaves this page out',
      before: CACHED,
      end: server(planReady('p2', [ME])),
      after: ['abort-assignment'],
    },
    {
      what: 'the session ended',
      before: RUNNING,
      end: server(wire<'session-ended'>({ type: 'session-ended', reason: 'host-ended' })),
      after: ['abort-assignment', 'flush-timings', 'close-stage', 'remember-peer'],
    },
  ])('$what: the old seq is aborted, and none of its late results changes anything', ({ before, end, after }) => {
    const r = play([...before, end]);
    expect(types(r.last)).toEqual(after);
    expect(r.last).toContainEqual({ type: 'abort-assignment', seq: 1 });
    expect(r.state.work?.seq ?? null).not.toBe(1);
    expect(r.state.stage.state).not.toBe('running');
    for (const late of LATE) {
      const next = reduce(r.state, late, NOW);
      expect(next.state, late.type).toBe(r.state);
      expect(next.effects, late.type).toEqual([]);
    }
  });

  it('a stage stopped by a new plan is shown as stopped, not failed', () => {
    const r = play([...RUNNING, server(assignment('p2', ['layer.1']))]);
    expect(r.state.stage).toMatchObject({ state: 'done', requestId: 7, detail: 'stopped: the plan changed' });
    expect(r.state.errors).toEqual([]);
    expect(r.state.work).toMatchObject({ seq: 2, download: 'running', waitingStarts: [] });
    expect(r.state.cache.assignedUnits).toEqual(['layer.1']);
  });

  it("the abort fires the old AbortSignal: the shell's signals, driven by the effects", () => {
    // what the shell does with these effects, without the browser: a signal per download, abort on abort
    const signals = new AssignmentSignals();
    const handedOut = new Map<number, AbortSignal>();
    const shell = (effects: readonly Effect[]) => {
      for (const e of effects) {
        if (e.type === 'download-units') handedOut.set(e.seq, signals.signalFor(e.seq));
        if (e.type === 'abort-assignment') signals.abort(e.seq);
      }
    };
    let state = initialState();
    for (const e of [...ASSIGNED, server(assignment('p2', ['layer.1']))]) {
      const r = reduce(state, e, NOW);
      state = r.state;
      shell(r.effects);
    }
    expect([...handedOut.keys()]).toEqual([1, 2]);
    expect(handedOut.get(1)?.aborted).toBe(true);
    expect(handedOut.get(1)?.reason).toMatchObject({ code: 'assignment-aborted' });
    expect(handedOut.get(2)?.aborted).toBe(false);
    // an effect of the old assignment that asks for its signal only now gets an aborted one
    expect(signals.signalFor(1).aborted).toBe(true);
    // leaving the session aborts the new one too
    const ended = reduce(
      state,
      server(wire<'session-ended'>({ type: 'session-ended', reason: 'server-shutdown' })),
      NOW,
    );
    shell(ended.effects);
    expect(handedOut.get(2)?.aborted).toBe(true);
    expect(ended.state.peerId).toBeNull();
    expect(ended.state.assignment).toBeNull();
  });
});

describe('reduce: errors and the connection', () => {
  it('a server error names the message it answers; the same banner is not stacked', () => {
    const err = server(
      wire<'error'>({ type: 'error', code: 'stale-plan', message: 'plan p1 is old', inReplyTo: 'go' }),
    );
    const r = play([...JOINED, err, err]);
    expect(r.state.errors).toEqual([
      {
        level: 'error',
        code: 'stale-plan',
        message: 'plan p1 is old',
        source: 'server (go)',
        atMs: NOW,
        dismissed: false,
      },
    ]);
    expect(r.last).toEqual([{ type: 'log', text: '[tandem] server (go): stale-plan: plan p1 is old' }]);
    const dismissed = play([{ type: 'error-dismissed', index: 0 }, err], r.state);
    expect(dismissed.state.errors.map((e) => e.dismissed)).toEqual([true, false]);
  });

  it('losing the server shows one banner; getting it back dismisses it', () => {
    const r = play([
      ...JOINED,
      { type: 'connection-changed', state: 'reconnecting', detail: 'closed 1006' },
      { type: 'connection-changed', state: 'reconnecting', detail: 'closed 1006' },
    ]);
    expect(r.state.errors.map((e) => [e.code, e.dismissed])).toEqual([['server-gone', false]]);
    const back = play([{ type: 'connection-changed', state: 'open', detail: '' }], r.state);
    expect(back.state.connection).toBe('open');
    expect(back.state.errors.map((e) => [e.code, e.dismissed])).toEqual([['server-gone', true]]);
  });

  it('another peer leaving that held a stage warns; the host is told to re-plan', () => {
    const roster = [
      {
        peerId: OTHER,
        displayName: 'bob',
        emulated: null,
        joinedAtMs: NOW,
        connected: true,
        profile: null,
        cachedUnits: [],
        assignment: null,
      },
    ];
    const r = play([
      ...HOSTING,
      server(wire<'roster'>({ type: 'roster', code: CODE, planId: 'p1', peers: roster })),
      server(planReady('p1')),
      server(wire<'peer-left'>({ type: 'peer-left', peerId: OTHER, reason: 'timed-out' })),
    ]);
    expect(r.state.roster).toEqual([]);
    expect(r.state.errors.at(-1)).toMatchObject({
      level: 'warning',
      code: 'peer-left',
      message:
        'bob stopped answering (timed out); it held a stage of the current plan. Press Plan again to continue without it.',
    });
  });

  it('serve-api shows the choice at once and takes it back when the request fails', () => {
    const r = play([...HOSTING, { type: 'serve-api-requested', serve: true }]);
    expect(r.state.serveApi).toBe(true);
    expect(r.last).toEqual([
      {
        type: 'request-serve-api',
        message: { type: 'serve-api', code: CODE, hostSecret: SECRET, serve: true },
        before: false,
      },
    ]);
    const failed = play([{ type: 'serve-api-failed', before: false, error: new Error('timeout') }], r.state);
    expect(failed.state.serveApi).toBe(false);
    expect(failed.state.errors.map((e) => e.source)).toEqual(['api']);
  });
});
