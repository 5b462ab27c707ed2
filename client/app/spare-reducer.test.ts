/**
 * Spares in the page controller (spare-reducer.ts through app-reducer.ts's `reduce`): a page outside the
 * plan told to keep a warm copy of a stage downloads its units by the assignment's verified path
 * (`download-units`), reports cache-status, shows "Spare for layers a–b (downloaded)", builds no stage;
 * an assignment later ends the spare and downloads as usual. Fixtures are wire messages checked against
 * the protocol schema.
 */
import { describe, expect, it } from 'vitest';
import type { EnsureResult } from '../cache/shard-cache.ts';
import type { Effect } from './app-effects.ts';
import type { AppEvent } from './app-events.ts';
import { reduce } from './app-reducer.ts';
import { initialState, snapshotOf } from './app-state.ts';
import { AssignmentSignals } from './assignment-signals.ts';
import { spareLabel } from './spare-reducer.ts';
import { JOINED, ME, MODEL, NOW, play, readyWith, server, stage, tinyManifest, wire } from './reducer-test-support.ts';

/** The other pages. */
const A = 'peerBravo2';
const B = 'peerCharl3';

/** Plan p1 runs on A (layers 1-2 + embedding) and B (layers 3-4 + head); this page is left out. */
const STAGES = [stage(A, 0, 0, 2, true, false), stage(B, 1, 2, 4, false, true)];

const excluded = (planId: string) => wire<'excluded'>({ type: 'excluded', planId, reason: 'faster without it' });

const SPARE_UNITS = ['layer.2', 'layer.3', 'head'];
const spare = (planId = 'p1') =>
  wire<'spare'>({
    type: 'spare',
    planId,
    stageIndex: 1,
    layers: { start: 2, end: 4 },
    units: SPARE_UNITS,
    predictedResumeSec: 1.5,
    withoutSparesSec: 4.25,
  });

function assignment(planId: string) {
  return wire<'assignment'>({
    type: 'assignment',
    planId,
    method: 'dp',
    tokens: 16,
    memoryModel: 'max',
    model: MODEL,
    stageIndex: 1,
    stageCount: 2,
    layers: { start: 2, end: 4 },
    embeds: false,
    hasHead: true,
    units: SPARE_UNITS,
    predecessorPeerId: A,
    successorPeerId: null,
    firstPeerId: A,
    lastPeerId: ME,
    predictedLatency: 0.3,
    stages: [STAGES[0], stage(ME, 1, 2, 4, false, true)],
  });
}

const MANIFEST = tinyManifest(4);
const READY = readyWith(MANIFEST);
/** Left out of p1, then told to keep a copy of stage 2 (seq 1: the page's first download). */
const SPARING: AppEvent[] = [...READY, server(excluded('p1')), server(spare())];
const ENSURED: EnsureResult = {
  plan: { cached: [], toFetch: [], bytesCached: 0, bytesToFetch: 0 },
  fetched: ['layer.2', 'layer.3'],
  reused: ['head'],
  bytesDownloaded: 8000,
  seconds: 0.5,
};
const SPARED: AppEvent[] = [...SPARING, { type: 'download-finished', seq: 1, result: ENSURED, seconds: 0.5 }];

const types = (effects: readonly Effect[]) => effects.map((e) => e.type).filter((t) => t !== 'log');

describe('reduce: a spare', () => {
  it.each<{ what: string; events: AppEvent[]; download: string; label: string; effects: Effect['type'][] }>([
    {
      what: 'a spare with the manifest in downloads its units at once',
      events: SPARING,
      download: 'running',
      label: 'Spare for layers 3–4 (downloading, 0%)',
      effects: ['download-units'],
    },
    {
      what: 'progress is shown in the label',
      events: [
        ...SPARING,
        {
          type: 'download-progress',
          seq: 1,
          progress: { unitId: 'layer.2', bytesDone: 30, bytesTotal: 120, unitsDone: 0, unitsTotal: 3 },
        },
      ],
      download: 'running',
      label: 'Spare for layers 3–4 (downloading, 25%)',
      effects: [],
    },
    {
      what: 'downloaded: reported to the server (cache-status), no stage prepared',
      events: SPARED,
      download: 'done',
      label: 'Spare for layers 3–4 (downloaded)',
      effects: ['report-cache'],
    },
    {
      what: 'a spare before the manifest waits for it ...',
      events: [...JOINED, server(excluded('p1')), server(spare())],
      download: 'waiting',
      label: 'Spare for layers 3–4 (waiting for the model)',
      effects: [],
    },
    {
      what: '... and downloads once the cache is swept',
      events: [
        ...JOINED,
        server(excluded('p1')),
        server(spare()),
        { type: 'manifest-loaded', manifest: MANIFEST, seconds: 0.03 },
        { type: 'cache-swept' },
      ],
      download: 'running',
      label: 'Spare for layers 3–4 (downloading, 0%)',
      effects: ['report-cache', 'download-units'],
    },
    {
      what: 'a failed download: a warning, the cache reported, no error report to the server',
      events: [...SPARING, { type: 'download-failed', seq: 1, error: new Error('HTTP 500'), unitId: 'layer.2' }],
      download: 'failed',
      label: 'Spare for layers 3–4 (download failed)',
      effects: ['report-cache'],
    },
  ])('$what', ({ events, download, label, effects }) => {
    const r = play(events);
    expect(r.state.spare?.download).toBe(download);
    expect(r.state.spare?.label).toBe(label);
    expect(snapshotOf(r.state).spare?.label).toBe(label);
    expect(types(r.last)).toEqual(effects);
    // a spare is no assignment: no stage, no assigned units, the cache view of an assignment untouched
    expect(r.state.work).toBeNull();
    expect(r.state.assignment).toBeNull();
    expect(r.state.cache.assignedUnits).toEqual([]);
    expect(r.state.stage.state).toBe('idle');
  });

  it("the spare's download is the assignment's verified path: download-units with the spare's units and its own seq", () => {
    const r = play(SPARING);
    expect(r.last).toEqual([{ type: 'download-units', seq: 1, units: SPARE_UNITS }]);
    expect(r.state.spare).toMatchObject({ seq: 1, message: spare() });
    expect(r.state.lastSeq).toBe(1);
    const done = play(SPARED);
    expect(done.state.spare).toMatchObject({ fetchedUnits: ['layer.2', 'layer.3'], reusedUnits: ['head'] });
    const failed = play(
      [{ type: 'download-failed', seq: 1, error: new Error('HTTP 500'), unitId: 'layer.2' }],
      r.state,
    );
    expect(failed.state.errors).toMatchObject([{ level: 'warning', code: 'cache-failed', source: 'spare' }]);
    expect(failed.last.some((e) => e.type === 'send')).toBe(false);
  });

  it('becoming a stage later: the spare ends (its download aborted), the assignment downloads as usual with a new seq', () => {
    const r = play([...SPARING, server(assignment('p2'))]);
    expect(r.state.spare).toBeNull();
    expect(r.last).toEqual([
      { type: 'abort-assignment', seq: 1 },
      { type: 'download-units', seq: 2, units: SPARE_UNITS },
    ]);
    expect(r.state.work).toMatchObject({ seq: 2, download: 'running' });
    // late results of the spare's download change nothing
    for (const late of [
      { type: 'download-finished', seq: 1, result: ENSURED, seconds: 0.5 },
      { type: 'download-failed', seq: 1, error: new Error('aborted'), unitId: 'layer.2' },
    ] as const) {
      const next = reduce(r.state, late, NOW);
      expect(next.state).toBe(r.state);
      expect(next.effects).toEqual([]);
    }
    // after a finished spare there is nothing to abort; the units are in the cache for the stage
    const after = play([...SPARED, server(assignment('p2'))]);
    expect(types(after.last)).toEqual(['download-units']);
    expect(after.state.spare).toBeNull();
  });

  it('a request in the session pauses a running spare download until its last output; the units in stay, a new seq fetches the rest', () => {
    const start = (requestId: number) =>
      server(
        wire<'start'>({
          type: 'start',
          requestId,
          planId: 'p1',
          prompt: 'Hello',
          maxNewTokens: 4,
          sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
          serverTimeMs: NOW,
        }),
      );
    const output = (requestId: number, done: boolean) =>
      server(
        wire<'output'>({
          type: 'output',
          requestId,
          tokenIds: [1],
          text: 'a',
          generated: 1,
          done,
          ...(done ? { finishReason: 'max-tokens' as const } : {}),
        }),
      );
    const progress: AppEvent = {
      type: 'download-progress',
      seq: 1,
      progress: { unitId: 'layer.3', bytesDone: 60, bytesTotal: 120, unitsDone: 1, unitsTotal: 3 },
    };
    const paused = play([...SPARING, progress, start(7)]);
    expect(paused.last).toEqual([{ type: 'abort-assignment', seq: 1 }, { type: 'report-cache' }]);
    expect(paused.state.spare).toMatchObject({ seq: 2, download: 'paused', pausedBy: 7 });
    expect(paused.state.spare?.label).toBe('Spare for layers 3–4 (download paused at 50% while a request runs)');
    // the aborted download's late failure is no spare failure: no banner
    const late = play(
      [{ type: 'download-failed', seq: 1, error: new Error('aborted'), unitId: 'layer.3' }],
      paused.state,
    );
    expect(late.state.errors).toEqual([]);
    expect(late.state.spare?.download).toBe('paused');
    // tokens of the request change nothing; its last output starts the download again (seq 2)
    expect(types(play([output(7, false)], late.state).last)).toEqual([]);
    const resumed = play([output(7, false), output(7, true)], late.state);
    expect(resumed.last).toEqual([{ type: 'download-units', seq: 2, units: SPARE_UNITS }]);
    expect(resumed.state.spare).toMatchObject({ seq: 2, download: 'running', pausedBy: null });
    expect(resumed.state.lastSeq).toBe(2);
    // another request's end does not resume it; a finished spare is not paused
    expect(play([output(8, true)], paused.state).state.spare?.download).toBe('paused');
    const done = play([start(9)], play(SPARED).state);
    expect(done.state.spare?.download).toBe('done');
    expect(types(done.last)).toEqual([]);
  });

  it("the shell's signals: an assignment after a spare aborts only the spare's download", () => {
    const signals = new AssignmentSignals();
    const handedOut = new Map<number, AbortSignal>();
    let state = initialState();
    for (const e of [...SPARING, server(assignment('p2'))]) {
      const r = reduce(state, e, NOW);
      state = r.state;
      for (const effect of r.effects) {
        if (effect.type === 'download-units') handedOut.set(effect.seq, signals.signalFor(effect.seq));
        if (effect.type === 'abort-assignment') signals.abort(effect.seq);
      }
    }
    expect(handedOut.get(1)?.aborted).toBe(true);
    expect(handedOut.get(2)?.aborted).toBe(false);
  });

  it('an excluded of another plan or the end of the session ends the spare; an excluded of its own plan keeps it', () => {
    expect(play([...SPARED, server(excluded('p1'))]).state.spare).toMatchObject({ download: 'done' });
    const replanned = play([...SPARING, server(excluded('p2'))]);
    expect(replanned.state.spare).toBeNull();
    expect(types(replanned.last)).toEqual(['abort-assignment']);
    const ended = play([...SPARED, server(wire<'session-ended'>({ type: 'session-ended', reason: 'host-ended' }))]);
    expect(ended.state.spare).toBeNull();
    // a cleared cache holds no copy any more
    expect(play([...SPARED, { type: 'cache-cleared' }]).state.spare).toBeNull();
  });

  it('a spare for a page that has a stage is ignored (a late message of an older plan)', () => {
    const assigned = play([...READY, server(assignment('p2'))]);
    const r = play([server(spare('p1'))], assigned.state);
    expect(r.state.spare).toBeNull();
    expect(r.last).toEqual([]);
    expect(r.state.work?.seq).toBe(1);
  });

  it('the label reads as people count layers (1-based, inclusive)', () => {
    expect(spareLabel({ start: 0, end: 1 }, 'done')).toBe('Spare for layer 1 (downloaded)');
    expect(spareLabel({ start: 4, end: 12 }, 'done')).toBe('Spare for layers 5–12 (downloaded)');
  });
});
