/**
 * The reducer's part for this page's assignment (app-reducer.ts calls it): its `seq`, the download of
 * its units, the `start`s that wait for them, the stage's run, its phases, and cancelled requests.
 * Every result of an effect carries the seq it was started for; one for another seq is late and
 * changes nothing. A new assignment or leaving ends the current one (`abort-assignment`).
 */
import { originalRequestOf } from './failover-view-state.ts';
import { TandemError } from '../../core/errors.ts';
import type { ServerMessageOf, TimingEntry } from '../../core/protocol.ts';
import type { AppEvent } from './app-events.ts';
import type { AppState, AssignmentWork, StageView, StartMessage } from './app-state.ts';
import { asTandemError, withEntry, withMember, type Step } from './reducer-step.ts';
import { mergeTimings } from './timings.ts';

export function isCurrent(s: AppState, seq: number): boolean {
  return s.work?.seq === seq;
}

export function onAssignment(step: Step, m: ServerMessageOf<'assignment'>): void {
  leaveAssignment(step);
  const seq = step.state.lastSeq + 1;
  const work: AssignmentWork = { seq, message: m, download: 'waiting', waitingStarts: [] };
  step.set({
    lastSeq: seq,
    work,
    assignment: m,
    excluded: null,
    cache: { ...step.state.cache, assignedUnits: m.units },
  });
  // before the manifest is in (or while the cache is swept), the download starts once it is (cache-swept)
  if (step.state.manifest && step.state.cache.state !== 'checking') startDownload(step);
}

/**
 * Ends the current assignment's work: its AbortController fires (downloads stop, its stage is disposed),
 * its waiting starts are dropped, and its results that still arrive are late and change nothing.
 */
export function leaveAssignment(step: Step): void {
  const work = step.state.work;
  if (!work) return;
  step.emit({ type: 'abort-assignment', seq: work.seq });
  // the parts the stage loaded in were that stage's: the next one says its own when it loads
  step.set({ work: null, stage: withoutParts(step.state.stage) });
  const stage = step.state.stage;
  if (stage.state === 'running' && stage.requestId !== null) {
    step.set({ stage: { ...stage, state: 'done', detail: 'stopped: the plan changed' } });
    step.set({ ranHere: withMember(step.state.ranHere, stage.requestId) });
    reportCancelled(step, stage.requestId);
    step.emit({ type: 'flush-timings' });
  }
  if (step.state.cache.state === 'fetching')
    step.set({ cache: { ...step.state.cache, state: 'idle', progress: null } });
}

export function startDownload(step: Step): void {
  const work = step.state.work;
  if (!work) return;
  step.set({
    work: { ...work, download: 'running' },
    cache: {
      ...step.state.cache,
      state: 'fetching',
      progress: null,
      fetchedUnits: [],
      reusedUnits: [],
      bytesDownloaded: 0,
    },
  });
  step.emit({ type: 'download-units', seq: work.seq, units: work.message.units });
}

export function onDownloadFinished(step: Step, e: Extract<AppEvent, { type: 'download-finished' }>): void {
  const work = step.state.work;
  if (!work || work.seq !== e.seq) return;
  step.set({
    cache: {
      ...step.state.cache,
      state: 'complete',
      fetchedUnits: e.result.fetched,
      reusedUnits: e.result.reused,
      bytesDownloaded: e.result.bytesDownloaded,
    },
    phases: { ...step.state.phases, cacheSeconds: e.seconds },
  });
  step.emit(
    { type: 'report-cache' },
    {
      type: 'prepare-stage',
      seq: work.seq,
      assignment: work.message,
      // warm: the host's warm mode for this plan, or this page's own ?warm=1
      load: work.message.warm === true || (step.state.params?.warm ?? false),
    },
  );
  downloadEnded(step, 'done');
}

/** Warm mode: the stage read its units and created its session at plan time; a request finds it loaded. */
export function onStageLoaded(step: Step, e: Extract<AppEvent, { type: 'stage-loaded' }>): void {
  if (!isCurrent(step.state, e.seq)) return;
  step.set({
    phases: { ...step.state.phases, stageLoadSeconds: e.storageReadSeconds + e.sessionCreateSeconds },
    ...(step.state.stage.state === 'running'
      ? {}
      : { stage: { ...step.state.stage, detail: `loaded at plan time (warm): ${formatLoad(e)}` } }),
  });
}

function formatLoad(e: { storageReadSeconds: number; sessionCreateSeconds: number }): string {
  return `read ${e.storageReadSeconds.toFixed(2)} s, session ${e.sessionCreateSeconds.toFixed(2)} s`;
}

export function onDownloadFailed(step: Step, e: Extract<AppEvent, { type: 'download-failed' }>): void {
  if (!isCurrent(step.state, e.seq)) return;
  step.set({ cache: { ...step.state.cache, state: 'error' } });
  step.report(step.error(e.error, 'cache', 'cache-failed'), null, e.unitId);
  step.emit({ type: 'report-cache' });
  // the waiting starts still run: the stage then says which unit it could not read
  downloadEnded(step, 'failed');
}

function downloadEnded(step: Step, outcome: 'done' | 'failed'): void {
  const work = step.state.work;
  if (!work) return;
  step.set({ work: { ...work, download: outcome, waitingStarts: [] } });
  for (const w of work.waitingStarts) beginRun(step, w.start, w.atMs);
}

export function onStart(step: Step, m: StartMessage): void {
  const s = step.state;
  const a = s.assignment;
  const stages = s.plan?.planId === m.planId ? s.plan.stages : a?.planId === m.planId ? a.stages : s.plan?.stages;
  if (stages) step.set({ requestStages: withEntry(s.requestStages, m.requestId, stages) });
  // a continuation (failover) shows as the user's request
  const shownId = originalRequestOf(s.failover, m.requestId);
  const existing = s.outputs.some((o) => o.requestId === shownId);
  step.set({
    outputs: existing
      ? s.outputs.map((o) => (o.requestId === shownId ? { ...o, prompt: m.prompt } : o))
      : [
          ...s.outputs,
          { requestId: shownId, prompt: m.prompt, text: '', tokenIds: [], done: false, finishReason: null },
        ],
  });
  const work = s.work;
  if (!a || !work || a.planId !== m.planId) return; // not part of this plan: watch only
  if (!s.manifest || !s.peerId) {
    const err = step.error(
      new TandemError(
        'stage-not-ready',
        'A request started before this page had its model manifest; reload the page and re-join.',
      ),
      'stage',
    );
    step.report(err, m.requestId);
    return;
  }
  // a "go" pressed while this page still downloads its units: the stage starts once they are in
  if (work.download === 'waiting' || work.download === 'running') {
    step.set({ work: { ...work, waitingStarts: [...work.waitingStarts, { start: m, atMs: step.nowMs }] } });
    return;
  }
  beginRun(step, m, step.nowMs);
}

function beginRun(step: Step, start: StartMessage, startedAtMs: number): void {
  const work = step.state.work;
  if (!work) return;
  if (step.state.cancelled.has(start.requestId)) {
    step.set({ ranHere: withMember(step.state.ranHere, start.requestId) });
    reportCancelled(step, start.requestId);
    return;
  }
  step.set({
    stage: { ...step.state.stage, state: 'running', requestId: start.requestId, detail: 'cold start' },
    cache: { ...step.state.cache, reads: [] },
  });
  step.emit({ type: 'run-stage', seq: work.seq, assignment: work.message, start, startedAtMs });
}

export function onStagePhase(step: Step, e: Extract<AppEvent, { type: 'stage-phase' }>): void {
  const s = step.state;
  if (!isCurrent(s, e.seq)) return;
  const c = s.cancelled.get(e.requestId);
  if (c && !e.beforeCancel && (e.phase === 'sample' || e.phase === 'compute')) {
    const counted = e.phase === 'sample' ? { ...c, tokens: c.tokens + 1 } : { ...c, steps: c.steps + 1 };
    step.set({ cancelled: withEntry(s.cancelled, e.requestId, counted) });
  }
  if (e.phase === 'session-create' && e.parts !== undefined)
    step.set({ stage: { ...step.state.stage, loadedInParts: e.parts } });
  const peerId = step.state.peerId;
  if (!peerId) return;
  const entry: TimingEntry = {
    phase: e.phase,
    step: e.step,
    startMs: Math.max(0, e.startMs),
    endMs: Math.max(0, e.startMs, e.endMs),
  };
  const byPeer = s.timings.get(e.requestId) ?? new Map<string, readonly TimingEntry[]>();
  const merged = withEntry(byPeer, peerId, mergeTimings(byPeer.get(peerId) ?? [], [entry]));
  step.set({ timings: withEntry(s.timings, e.requestId, merged) });
  step.emit({ type: 'report-timing', requestId: e.requestId, entry });
}

export function onStageFailed(step: Step, e: Extract<AppEvent, { type: 'stage-failed' }>): void {
  if (!isCurrent(step.state, e.seq)) return;
  const err = asTandemError(e.error, 'stage-failed');
  if (step.state.cancelled.has(e.requestId)) {
    // not a failure: the server stopped the request (its API client went away, or a stop sequence matched)
    step.set({ stage: { ...step.state.stage, state: 'done', detail: 'cancelled' } });
  } else {
    step.set({ stage: { ...step.state.stage, state: 'error', detail: err.code } });
    // StagePeer already told the other stages; tell the people and the server
    step.report(step.error(err, 'stage'), e.requestId);
  }
  finishRun(step, e.requestId, e.seconds);
}

export function finishRun(step: Step, requestId: number, seconds: number): void {
  step.set({
    ranHere: withMember(step.state.ranHere, requestId),
    phases: { ...step.state.phases, stageSeconds: seconds },
  });
  reportCancelled(step, requestId);
  step.emit({ type: 'flush-timings' });
}

/** Once per cancelled request: what this page's stage did after the cancel arrived. */
export function reportCancelled(step: Step, requestId: number): void {
  const c = step.state.cancelled.get(requestId);
  if (!c || c.reported) return;
  step.set({ cancelled: withEntry(step.state.cancelled, requestId, { ...c, reported: true }) });
  step.emit({
    type: 'send',
    source: 'stage',
    message: { type: 'report-cancelled', requestId, tokensAfterCancel: c.tokens, stepsAfterCancel: c.steps },
  });
}

const withoutParts = ({ loadedInParts: _, ...stage }: StageView): StageView => stage;
