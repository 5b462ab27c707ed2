/**
 * The page controller as a pure function, the coordinator's own pattern (signaling/coordinator.ts):
 *
 *   reduce(state, event, nowMs) -> { state, effects }
 *
 * `state` is immutable (app-state.ts): every change makes a new object, so the view re-renders when the
 * reference changes. `effects` (app-effects.ts) are what the shell (app.ts) must do: send to the server,
 * profile, download units, build / run / abort the stage. Their results come back as events
 * (app-events.ts). `nowMs` (ms since epoch) is the only clock, for the error banners' times.
 *
 * Flow of a page:
 *   page-opened    parse URL params; profile the device; connect the WebSocket
 *   connected      (?host) create-session, then join it as a peer too; (?join) join
 *   join-replied   send the profile once it exists; load + validate the manifest; report the cache
 *   assignment     a new assignment `seq`: the previous one is aborted (downloads, stage); fetch the
 *                  missing units (verified), report cache-status again, prepare the stage
 *   start          run the stage at once (or once the units are in); report phases and tokens
 *
 * One case per server message type: a new message is one more case in `onServer`. The assignment's
 * part (downloads, the stage, cancels) is in assignment-reducer.ts.
 */
import { mergeClockBound } from '../../core/clock-offset.ts';
import { TandemError } from '../../core/errors.ts';
import { assertNever, type ServerMessage, type ServerMessageOf, type TimingEntry } from '../../core/protocol.ts';
import type { AppEvent, PageOpened, UserEvent } from './app-events.ts';
import type { AppState } from './app-state.ts';
import {
  finishRun,
  isCurrent,
  leaveAssignment,
  onAssignment,
  onDownloadFailed,
  onDownloadFinished,
  onStageFailed,
  onStagePhase,
  onStageLoaded,
  onStart,
  reportCancelled,
  startDownload,
} from './assignment-reducer.ts';
import { Step, withEntry, type Reduction } from './reducer-step.ts';
import {
  dropSpare,
  isSpare,
  onSpare,
  onSpareDownloaded,
  onSpareDownloadFailed,
  onSpareProgress,
  pauseSpare,
  resumeSpare,
  startSpareDownload,
} from './spare-reducer.ts';
import { originalRequestOf } from './failover-view-state.ts';
import { mergeTimings } from './timings.ts';
import { normaliseJoinCode, normaliseName, parsePageParams, type PageParams } from './url-params.ts';

export { asTandemError, type Reduction } from './reducer-step.ts';

const DEFAULT_PARAMS: PageParams = {
  join: null,
  host: false,
  warm: false,
  name: null,
  emulation: null,
  backend: 'auto',
  holdAt: [],
  ring: 'worker',
  parts: 'auto',
};

export function reduce(state: AppState, event: AppEvent, nowMs: number): Reduction {
  const step = new Step(state, nowMs);
  switch (event.type) {
    case 'page-opened':
      onPageOpened(step, event);
      break;
    case 'server':
      onServer(step, event.message);
      break;

    // ---- profile
    case 'profile-progress':
      step.set({ profileProgress: event.progress });
      break;
    case 'profile-finished': {
      step.set({ profile: event.result, phases: { ...step.state.phases, profileSeconds: event.seconds } });
      for (const issue of event.result.details.issues)
        step.error(new TandemError(issue.code, issue.message), 'profile', issue.code, 'warning');
      sendProfile(step);
      if (step.state.manifest) step.emit({ type: 'warm-up-kernels', params: step.state.params });
      break;
    }
    case 'profile-failed':
      step.error(event.error, 'profile', 'profile-failed');
      break;
    case 'profile-acked':
      step.set({ profileSent: true });
      break;

    // ---- the coordinator connection and replies
    case 'connection-changed':
      onConnectionChanged(step, event.state, event.detail);
      break;
    case 'connected': {
      step.set({ phases: { ...step.state.phases, connectSeconds: event.seconds } });
      const params = step.state.params ?? DEFAULT_PARAMS;
      if (params.host) createSession(step);
      else if (params.join) join(step, params.join);
      break;
    }
    case 'connect-failed':
      step.error(event.error, 'server', 'server-unreachable');
      break;
    case 'session-created': {
      const { created } = event;
      step.set({ hostSecret: created.hostSecret, role: 'host', model: created.model });
      // a reload of the host's tab keeps the host role (the secret stays in this tab's sessionStorage)
      step.emit({ type: 'save-host', code: created.code, hostSecret: created.hostSecret });
      join(step, created.code);
      break;
    }
    case 'join-replied':
      onJoinReplied(step, event.joined, event.seconds);
      break;
    case 'plan-replied':
      step.set({ plan: event.ready });
      break;
    case 'serve-api-replied':
      step.set({ serveApi: event.serve });
      break;
    case 'serve-api-failed':
      step.set({ serveApi: event.before });
      step.error(event.error, 'api');
      break;
    case 'failed': {
      const err = step.error(event.error, event.source, event.fallbackCode);
      if (event.report) step.report(err, null);
      break;
    }

    // ---- manifest and cache
    case 'manifest-loaded':
      step.set({
        manifest: event.manifest,
        phases: { ...step.state.phases, manifestSeconds: event.seconds },
        cache: { ...step.state.cache, packageName: event.manifest.name, state: 'checking' },
      });
      step.emit({ type: 'sweep-cache' });
      if (step.state.profile) step.emit({ type: 'warm-up-kernels', params: step.state.params });
      break;
    case 'manifest-failed':
      step.set({ cache: { ...step.state.cache, state: 'error' } });
      step.report(step.error(event.error, 'cache', 'manifest-invalid'), null);
      break;
    case 'cache-swept':
    case 'cache-cleared':
      step.set({ cache: { ...step.state.cache, state: 'idle' } });
      step.emit({ type: 'report-cache' });
      if (step.state.work) startDownload(step);
      // a cleared cache holds no warm copy any more; a swept one can start the waiting spare
      if (event.type === 'cache-cleared') dropSpare(step);
      else startSpareDownload(step);
      break;
    case 'cache-listed':
      step.set({ cache: { ...step.state.cache, cachedUnits: event.units } });
      break;
    case 'download-progress':
      if (isSpare(step, event.seq)) onSpareProgress(step, event.progress);
      if (!isCurrent(step.state, event.seq)) break;
      step.set({ cache: { ...step.state.cache, progress: event.progress } });
      break;
    case 'download-finished':
      if (isSpare(step, event.seq)) onSpareDownloaded(step, event);
      else onDownloadFinished(step, event);
      break;
    case 'download-failed':
      if (isSpare(step, event.seq)) onSpareDownloadFailed(step, event);
      else onDownloadFailed(step, event);
      break;

    // ---- the stage
    case 'stage-backend':
      if (!isCurrent(step.state, event.seq)) break;
      step.set({
        stage: {
          ...step.state.stage,
          backend: event.backend,
          detail: event.why,
          ...(event.place ? { place: event.place } : {}),
        },
      });
      break;
    case 'stage-loaded':
      onStageLoaded(step, event);
      break;
    case 'stage-prepare-failed':
      if (!isCurrent(step.state, event.seq)) break;
      step.report(step.error(event.error, 'stage', 'stage-prepare-failed'), null);
      break;
    case 'unit-read':
      if (!isCurrent(step.state, event.seq)) break;
      step.set({ cache: { ...step.state.cache, reads: [...step.state.cache.reads, event.read] } });
      break;
    case 'stage-phase':
      onStagePhase(step, event);
      break;
    case 'stage-tokens': {
      if (!isCurrent(step.state, event.seq)) break;
      const r = event.report;
      step.emit({
        type: 'send',
        source: 'stage',
        message: { type: 'report-tokens', requestId: event.requestId, ...r, text: r.text.slice(0, 32 * 1024) },
      });
      break;
    }
    case 'stage-finished':
      if (!isCurrent(step.state, event.seq)) break;
      step.set({ stage: { ...step.state.stage, state: 'done', detail: 'finished' } });
      finishRun(step, event.requestId, event.seconds);
      break;
    case 'stage-failed':
      onStageFailed(step, event);
      break;
    case 'stage-stopped':
      if (!isCurrent(step.state, event.seq)) break;
      step.set({ stage: { ...step.state.stage, state: 'done', detail: event.detail } });
      finishRun(step, event.requestId, event.seconds);
      break;
    case 'failover-changed':
      step.set({ failover: event.view });
      break;

    default:
      onUser(step, event);
  }
  return step.result();
}

// ------------------------------------------------------------------------------------------------
// start-up and session

function onPageOpened(step: Step, e: PageOpened): void {
  let params = DEFAULT_PARAMS;
  try {
    params = parsePageParams(e.search);
  } catch (err) {
    step.error(err, 'params');
  }
  step.set({ params });
  if (!e.secureContext) {
    step.error(
      new TandemError(
        'insecure-context',
        `This page was opened over plain http from ${e.host}, which browsers do not treat as secure: WebGPU is hidden, so this device measures and runs on wasm (CPU). For WebGPU, start the server with --https and open the https:// address.`,
      ),
      'page',
      'insecure-context',
      'warning',
    );
  }
  const displayName = params.name ?? e.storedName ?? e.fallbackName;
  step.set({ displayName });
  // after a reload of the host's tab: take the host role back for that session
  if (params.join && e.savedHost?.code === params.join) step.set({ hostSecret: e.savedHost.hostSecret, role: 'host' });
  step.emit({ type: 'profile', name: displayName, params }, { type: 'connect' });
}

function onConnectionChanged(step: Step, connection: AppState['connection'], detail: string): void {
  const wasGone = step.state.connection === 'reconnecting';
  step.set({ connection, connectionDetail: detail });
  if (connection === 'reconnecting' && !wasGone)
    step.error(
      new TandemError(
        'server-gone',
        `Lost the connection to the server: ${detail}. The page keeps retrying; your cache is kept.`,
      ),
      'server',
    );
  if (connection === 'open' && wasGone)
    step.set({ errors: step.state.errors.map((e) => (e.code === 'server-gone' ? { ...e, dismissed: true } : e)) });
}

function createSession(step: Step): void {
  step.emit({
    type: 'request-create',
    message: { type: 'create-session', name: `${step.state.displayName}'s session`.slice(0, 64) },
  });
}

function join(step: Step, rawCode: string): void {
  const code = normaliseJoinCode(rawCode);
  if (!code) {
    step.error(
      new TandemError(
        'join-code-invalid',
        `"${rawCode}" is not a join code: it has 8 letters and digits, as shown big on the host's screen.`,
      ),
      'session',
    );
    return;
  }
  step.emit({
    type: 'request-join',
    message: {
      type: 'join',
      code,
      displayName: step.state.displayName,
      emulated: step.state.params?.emulation?.label ?? null,
    },
  });
}

function applyJoined(step: Step, joined: ServerMessageOf<'joined'>): void {
  step.set({
    code: joined.code,
    sessionName: joined.sessionName,
    peerId: joined.peerId,
    model: joined.model,
    roster: joined.roster,
  });
}

function onJoinReplied(step: Step, joined: ServerMessageOf<'joined'>, seconds: number): void {
  step.set({ phases: { ...step.state.phases, joinSeconds: seconds }, role: step.state.role ?? 'peer' });
  applyJoined(step, joined);
  step.emit(
    { type: 'remember-peer', credentials: { code: joined.code, peerId: joined.peerId, peerSecret: joined.peerSecret } },
    { type: 'keep-awake' },
    { type: 'connect-transport', peerId: joined.peerId, peerjs: joined.peerjs },
    { type: 'show-joined-url', code: joined.code },
  );
  sendProfile(step);
  const model = step.state.model;
  if (model && step.state.manifest?.name !== model.name)
    step.emit({ type: 'load-manifest', model, params: step.state.params });
}

function sendProfile(step: Step): void {
  const p = step.state.profile;
  if (!p || !step.state.peerId) return;
  step.emit({
    type: 'request-profile',
    profile: { ...p.report, name: step.state.displayName.slice(0, 80) || p.report.name },
  });
}

/** The host's credentials, or a banner saying only the host can do this. */
function hostAuth(step: Step, source: string): { code: string; hostSecret: string } | null {
  if (step.state.hostSecret && step.state.code) return { code: step.state.code, hostSecret: step.state.hostSecret };
  step.error(new TandemError('not-host', 'Only the page that created the session can plan and start it.'), source);
  return null;
}

function onUser(step: Step, e: UserEvent): void {
  switch (e.type) {
    case 'name-changed': {
      const name = normaliseName(e.raw);
      if (!name) return;
      step.set({ displayName: name });
      step.emit({ type: 'save-name', name });
      return;
    }
    case 'join-requested':
      join(step, e.rawCode);
      return;
    case 'create-requested':
      createSession(step);
      return;
    case 'reprofile-requested':
      if (step.state.stage.state === 'running') return;
      step.set({ profile: null, profileSent: false });
      step.emit({ type: 'profile', name: step.state.displayName, params: step.state.params });
      return;
    case 'clear-cache-requested':
      if (!step.state.manifest || step.state.stage.state === 'running') return;
      step.emit({ type: 'clear-cache' });
      return;
    case 'plan-requested': {
      const auth = hostAuth(step, 'plan');
      if (auth)
        step.emit({
          type: 'request-plan',
          message: { type: 'plan', ...auth, tokens: e.tokens, method: e.method, ...(e.warm ? { warm: true } : {}) },
        });
      return;
    }
    case 'go-requested': {
      if (!e.prompt.trim()) {
        step.error(new TandemError('prompt-empty', 'Type a prompt first.'), 'go');
        return;
      }
      const auth = hostAuth(step, 'go');
      if (auth)
        step.emit({
          type: 'send',
          source: 'go',
          message: { type: 'go', ...auth, prompt: e.prompt, maxNewTokens: e.maxNewTokens, sampling: e.sampling },
        });
      return;
    }
    case 'stop-requested': {
      const running = [...step.state.outputs].reverse().find((o) => !o.done);
      if (!running) return; // it ended meanwhile
      const auth = hostAuth(step, 'stop');
      if (auth)
        step.emit({
          type: 'send',
          source: 'stop',
          message: { type: 'stop', ...auth, requestId: running.requestId },
        });
      return;
    }
    case 'serve-api-requested': {
      const auth = hostAuth(step, 'api');
      if (!auth) return;
      const before = step.state.serveApi;
      // shown at once (a render before the reply must not flip the checkbox back)
      step.set({ serveApi: e.serve });
      step.emit({ type: 'request-serve-api', message: { type: 'serve-api', ...auth, serve: e.serve }, before });
      return;
    }
    case 'end-requested': {
      const auth = hostAuth(step, 'session');
      if (auth) step.emit({ type: 'send', source: 'session', message: { type: 'end-session', ...auth } });
      return;
    }
    case 'error-dismissed':
      step.set({ errors: step.state.errors.map((err, i) => (i === e.index ? { ...err, dismissed: true } : err)) });
      return;
  }
}

// ------------------------------------------------------------------------------------------------
// server messages: one case per type

function onServer(step: Step, m: ServerMessage): void {
  const s = step.state;
  switch (m.type) {
    case 'session-created':
    case 'ack':
    case 'heartbeat-ack':
    case 'cancelled':
      return;
    case 'joined':
      // also arrives after a reconnect (`resume`)
      applyJoined(step, m);
      if (!s.profileSent) sendProfile(step);
      return;
    case 'roster':
      step.set({ roster: m.peers, planId: m.planId });
      return;
    case 'peer-left': {
      const gone = s.roster.find((p) => p.peerId === m.peerId);
      step.set({ roster: s.roster.filter((p) => p.peerId !== m.peerId) });
      const planned = s.plan?.stages.some((st) => st.peerId === m.peerId);
      if (gone && planned) {
        const why =
          m.reason === 'timed-out'
            ? 'stopped answering (timed out)'
            : m.reason === 'replaced'
              ? 'reconnected elsewhere'
              : 'left';
        step.error(
          new TandemError(
            'peer-left',
            `${gone.displayName} ${why}; it held a stage of the current plan.${s.role === 'host' ? ' Press Plan again to continue without it.' : ''}`,
          ),
          'session',
          'peer-left',
          'warning',
        );
      }
      return;
    }
    case 'plan-ready':
      step.set({ plan: m, planId: m.planId });
      // a plan without this page: its assignment ends here
      if (m.excludedPeerIds.includes(s.peerId ?? '')) {
        leaveAssignment(step);
        step.set({ assignment: null });
      }
      return;
    case 'assignment':
      // a spare that becomes a stage: its cached units are used as any cached units are
      dropSpare(step);
      onAssignment(step, m);
      return;
    case 'excluded':
      if (s.spare && s.spare.message.planId !== m.planId) dropSpare(step);
      leaveAssignment(step);
      step.set({
        assignment: null,
        excluded: { planId: m.planId, reason: m.reason },
        cache: { ...step.state.cache, assignedUnits: [] },
      });
      return;
    case 'spare':
      onSpare(step, m);
      return;
    case 'start':
      // outputs name the user's request; a failover's continuation starts under a new id
      pauseSpare(step, originalRequestOf(s.failover, m.requestId));
      onStart(step, m);
      return;
    case 'output':
      onOutput(step, m);
      if (m.done) resumeSpare(step, m.requestId);
      return;
    case 'cancel':
      // a repeated cancel keeps the first one's record (and reports nothing twice)
      if (!s.cancelled.has(m.requestId))
        step.set({ cancelled: withEntry(s.cancelled, m.requestId, { tokens: 0, steps: 0, reported: false }) });
      step.emit({ type: 'cancel-stage', requestId: m.requestId, reason: m.reason });
      // a stage that already ended says so at once
      if (s.ranHere.has(m.requestId)) reportCancelled(step, m.requestId);
      return;
    case 'api-serving':
      step.set({ serveApi: m.serve });
      return;
    case 'calibration':
      step.set({ calibration: m });
      return;
    case 'stage-lost':
    case 'repair':
    case 'request-failed':
      return; // failover-client.ts stops the run; its view arrives as 'failover-changed'
    case 'timings': {
      const byPeer = s.timings.get(m.requestId) ?? new Map<string, readonly TimingEntry[]>();
      const merged = withEntry(byPeer, m.peerId, mergeTimings(byPeer.get(m.peerId) ?? [], m.timings));
      const clocks = s.clocks.get(m.requestId) ?? new Map<string, number | null>();
      const bound = mergeClockBound(clocks.get(m.peerId), m.clockUncertaintyMs);
      step.set({
        timings: withEntry(s.timings, m.requestId, merged),
        clocks: withEntry(s.clocks, m.requestId, withEntry(clocks, m.peerId, bound)),
      });
      return;
    }
    case 'peer-error': {
      const who = s.roster.find((p) => p.peerId === m.peerId)?.displayName ?? m.peerId;
      if (m.peerId !== s.peerId) step.error(new TandemError(m.code, `${who}: ${m.message}`), 'peer');
      return;
    }
    case 'session-ended':
      step.error(
        new TandemError(
          'session-ended',
          m.reason === 'server-shutdown'
            ? 'The server shut down; start it again and re-join (your cache is kept).'
            : 'The host ended the session. Join a new one with its code; your cache is kept.',
        ),
        'session',
      );
      leaveAssignment(step);
      dropSpare(step);
      step.emit({ type: 'close-stage' }, { type: 'remember-peer', credentials: null });
      step.set({ peerId: null, assignment: null });
      return;
    case 'error':
      step.error(new TandemError(m.code, m.message), m.inReplyTo ? `server (${m.inReplyTo})` : 'server');
      return;
    default:
      // a new server message type needs its case above
      assertNever(m);
  }
}

function onOutput(step: Step, m: ServerMessageOf<'output'>): void {
  const outputs = step.state.outputs;
  const i = outputs.findIndex((o) => o.requestId === m.requestId);
  const out =
    i >= 0
      ? outputs[i]
      : { requestId: m.requestId, prompt: '', text: '', tokenIds: [], done: false, finishReason: null };
  const next = {
    ...out,
    text: out.text + m.text,
    tokenIds: [...out.tokenIds, ...m.tokenIds],
    done: m.done,
    finishReason: m.finishReason ?? out.finishReason,
  };
  step.set({ outputs: i >= 0 ? outputs.map((o, j) => (j === i ? next : o)) : [...outputs, next] });
}
