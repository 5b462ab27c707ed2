/**
 * What the page shows of failover (issue 13), as a pure reducer over the coordinator's messages:
 * per original request, the loss, the repair plan, the replay (continuation start), the recovery
 * ("recovered in X s", from `output.recoveredInMs`) or why recovery was impossible.
 *
 *   let s = initialFailoverView();
 *   s = applyFailoverMessage(s, msg, Date.now());   // every server message; unrelated ones return s
 *   originalRequestOf(s, continuationId)             // a continuation's fresh id -> the user's request id
 *
 * Times are the page's clock (ms since epoch) when the message arrived, so the view can lay the events
 * out relative to the loss without comparing clocks of different machines.
 */
import type { LayerRangeWire, ServerMessage } from '../../core/protocol.ts';

export type RecoveryEvent =
  | {
      kind: 'loss';
      atMs: number;
      lostPeerIds: string[];
      /** display names at the time of the loss (the roster may forget them) */
      lostNames: string[];
      layers: LayerRangeWire[];
      reason: 'left' | 'heartbeat' | 'link-lost';
    }
  | {
      kind: 'repair';
      atMs: number;
      planId: string;
      mode: 'range' | 'whole';
      replayTokens: number;
      predictedResumeSec: number;
      /** display names of the repaired pipeline's stages, in order */
      stageNames: string[];
    }
  | { kind: 'replay'; atMs: number; continuationId: number; firstIndex: number; attempt: number }
  | { kind: 'recovered'; atMs: number; recoveredInMs: number }
  | { kind: 'failed'; atMs: number; code: string; message: string };

export interface RequestRecovery {
  /** the user's original request id */
  requestId: number;
  events: RecoveryEvent[];
  /** fresh request ids of the continuations, oldest first */
  continuationIds: number[];
  /** the latest recovery's time, loss detected -> next token (server clock), ms */
  recoveredInMs: number | null;
  /** set when the request ended without recovering */
  failure: { code: string; message: string } | null;
  /** a loss whose recovery has not produced a token yet */
  recovering: boolean;
}

export interface FailoverView {
  requests: RequestRecovery[];
}

/** Requests kept in the view (older ones are dropped). */
const KEPT = 8;

export function initialFailoverView(): FailoverView {
  return { requests: [] };
}

/** The user's request id behind `requestId` (itself when it is no continuation). */
export function originalRequestOf(view: FailoverView, requestId: number): number {
  return view.requests.find((r) => r.continuationIds.includes(requestId))?.requestId ?? requestId;
}

export function recoveryOf(view: FailoverView, requestId: number): RequestRecovery | null {
  const original = originalRequestOf(view, requestId);
  return view.requests.find((r) => r.requestId === original) ?? null;
}

function withRequest(
  view: FailoverView,
  requestId: number,
  change: (r: RequestRecovery) => RequestRecovery,
): FailoverView {
  const existing = view.requests.find((r) => r.requestId === requestId);
  const base: RequestRecovery = existing ?? {
    requestId,
    events: [],
    continuationIds: [],
    recoveredInMs: null,
    failure: null,
    recovering: false,
  };
  const next = change(base);
  const others = view.requests.filter((r) => r !== existing);
  return { requests: [...others, next].slice(-KEPT) };
}

/** The view after message `m` arrived at page time `nowMs`; `nameOf` turns a peer id into a display name. */
export function applyFailoverMessage(
  view: FailoverView,
  m: ServerMessage,
  nowMs: number,
  nameOf: (peerId: string) => string = (id) => id,
): FailoverView {
  switch (m.type) {
    case 'stage-lost':
      return withRequest(view, m.requestId, (r) => ({
        ...r,
        recovering: true,
        events: [
          ...r.events,
          {
            kind: 'loss',
            atMs: nowMs,
            lostPeerIds: m.lostPeerIds,
            lostNames: m.lostPeerIds.map(nameOf),
            layers: m.layers,
            reason: m.reason,
          },
        ],
      }));
    case 'repair':
      return withRequest(view, m.requestId, (r) => ({
        ...r,
        events: [
          ...r.events,
          {
            kind: 'repair',
            atMs: nowMs,
            planId: m.planId,
            mode: m.mode,
            replayTokens: m.replayTokens,
            predictedResumeSec: m.predictedResumeSec,
            stageNames: m.stages.map((s) => s.displayName),
          },
        ],
      }));
    case 'start': {
      const resume = m.resume;
      if (!resume) return view;
      return withRequest(view, resume.of, (r) => ({
        ...r,
        continuationIds: r.continuationIds.includes(m.requestId)
          ? r.continuationIds
          : [...r.continuationIds, m.requestId],
        events: [
          ...r.events,
          {
            kind: 'replay',
            atMs: nowMs,
            continuationId: m.requestId,
            firstIndex: resume.firstIndex,
            attempt: resume.attempt,
          },
        ],
      }));
    }
    case 'output': {
      if (m.recoveredInMs === undefined) return view;
      const recoveredInMs = m.recoveredInMs;
      return withRequest(view, originalRequestOf(view, m.requestId), (r) => ({
        ...r,
        recovering: false,
        recoveredInMs,
        events: [...r.events, { kind: 'recovered', atMs: nowMs, recoveredInMs }],
      }));
    }
    case 'request-failed':
      return withRequest(view, originalRequestOf(view, m.requestId), (r) => ({
        ...r,
        recovering: false,
        failure: { code: m.code, message: m.message },
        events: [...r.events, { kind: 'failed', atMs: nowMs, code: m.code, message: m.message }],
      }));
    default:
      return view;
  }
}
