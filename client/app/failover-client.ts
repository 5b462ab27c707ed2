/**
 * The page's side of failover (issue 13, docs/failover.md), kept apart from the controller (app.ts) so
 * that it can be wired into whatever shape the controller has:
 *
 *   - request heartbeats (session/request-heartbeat.ts) from a request's start on this page until the
 *     user's request ends, at the interval `joined` gives;
 *   - `report-link-lost` when a ring neighbour's data channel closes during a request;
 *   - on `stage-lost`: the stage's run stops at once (StageController.stopForRepair; its session stays);
 *   - a run that failed because a neighbour vanished (transport closed, a frame that never came, an error
 *     frame from a stage that lost its link) is reported only if no `stage-lost` follows within
 *     DEFER_MS: the coordinator, which sees every page, decides whether the request is repaired;
 *   - the view state (failover-view-state.ts): loss, repair plan, replay, "recovered in X s".
 */
import { epochNowMs } from '../../core/clock-offset.ts';
import type { TandemError } from '../../core/errors.ts';
import type { ClientMessage, ServerMessage, ServerMessageOf } from '../../core/protocol.ts';
import { RequestHeartbeat } from '../session/request-heartbeat.ts';
import {
  applyFailoverMessage,
  initialFailoverView,
  originalRequestOf,
  type FailoverView,
} from './failover-view-state.ts';

/** Errors that a lost neighbour causes on the stages that remain: reported only when no repair comes. */
export const LINK_FAILURE_CODES: ReadonlySet<string> = new Set([
  'transport-closed',
  'transport-connect-failed',
  'transport-connect-timeout',
  'stage-timeout',
  'request-failed-elsewhere',
]);

/** How long a link failure waits for the coordinator's `stage-lost` before it is reported as an error. */
export const DEFER_MS = 10_000;

export interface FailoverHooks {
  /** Send to the coordinator (throws when the socket is down). */
  send: (m: ClientMessage) => void;
  /** Stop this page's run of `requestId` for repair (StageController.stopForRepair). */
  stopRun: (requestId: number, reason: string) => void;
  /** A display name for a peer id (the roster's). */
  nameOf: (peerId: string) => string;
  /** The view changed. */
  changed: () => void;
  /** Page clock, ms since epoch (tests pass their own). */
  now?: () => number;
}

export type RunFailureOutcome = 'repair' | 'deferred' | 'report';

export class FailoverClient {
  view: FailoverView = initialFailoverView();
  readonly heartbeat: RequestHeartbeat;
  /** Request ids (originals and continuations) stopped by a `stage-lost`: their link failures are not errors. */
  private readonly lost = new Set<number>();
  /** Link failures waiting for a `stage-lost`, by the failed run's request id. */
  private readonly deferred = new Map<number, ReturnType<typeof setTimeout>>();
  /** Links already reported, per running request (one report per neighbour and request). */
  private readonly reportedLinks = new Set<string>();

  constructor(private readonly hooks: FailoverHooks) {
    this.heartbeat = new RequestHeartbeat(() => hooks.send({ type: 'heartbeat', clientTimeMs: this.now() }));
  }

  private now(): number {
    return this.hooks.now?.() ?? epochNowMs(); // the clock the heartbeat acks are read on (core/clock-offset.ts)
  }

  /** The user's request id behind a (continuation) request id. */
  originalOf(requestId: number): number {
    return originalRequestOf(this.view, requestId);
  }

  /** Every server message passes here (after the controller's own handling of it). */
  onServerMessage(m: ServerMessage): void {
    if (m.type === 'joined') {
      this.heartbeat.setInterval(m.requestHeartbeatIntervalMs);
      return;
    }
    const before = this.view;
    this.view = applyFailoverMessage(this.view, m, this.now(), this.hooks.nameOf);
    switch (m.type) {
      case 'stage-lost':
        this.onStageLost(m);
        break;
      case 'output':
        if (m.done) this.requestEnded(this.originalOf(m.requestId));
        break;
      case 'request-failed':
        this.requestEnded(this.originalOf(m.requestId));
        break;
      case 'cancel':
        this.requestEnded(this.originalOf(m.requestId));
        break;
      case 'session-ended':
        this.heartbeat.stopAll();
        break;
      default:
        break;
    }
    if (this.view !== before) this.hooks.changed();
  }

  private onStageLost(m: ServerMessageOf<'stage-lost'>): void {
    const reason = `${m.lostPeerIds.map(this.hooks.nameOf).join(', ')} lost (${m.reason})`;
    const attempts = [
      m.requestId,
      ...(this.view.requests.find((r) => r.requestId === m.requestId)?.continuationIds ?? []),
    ];
    for (const id of attempts) {
      this.lost.add(id);
      this.hooks.stopRun(id, reason);
      const t = this.deferred.get(id);
      if (t !== undefined) clearTimeout(t);
      this.deferred.delete(id);
    }
  }

  private requestEnded(original: number): void {
    this.heartbeat.end(original);
  }

  /** This page's stage starts running `requestId` (an original request or a continuation). */
  onRunStarted(requestId: number): void {
    this.heartbeat.begin(this.originalOf(requestId));
  }

  /** The run ended normally here (the user's request may still be finishing on other stages). */
  onRunFinished(requestId: number): void {
    this.heartbeat.end(this.originalOf(requestId));
  }

  /**
   * The run of `requestId` failed with `err`. 'repair': stopped for repair, not an error; 'deferred':
   * `report` runs after DEFER_MS unless a `stage-lost` for the request arrives first; 'report': report now.
   */
  onRunFailed(requestId: number, err: TandemError, report: () => void): RunFailureOutcome {
    const original = this.originalOf(requestId);
    if (err.code === 'stage-lost' || this.lost.has(requestId)) return 'repair';
    if (!LINK_FAILURE_CODES.has(err.code)) {
      this.heartbeat.end(original);
      return 'report';
    }
    this.deferred.set(
      requestId,
      setTimeout(() => {
        this.deferred.delete(requestId);
        if (this.lost.has(requestId)) return;
        this.heartbeat.end(original);
        report();
      }, DEFER_MS),
    );
    return 'deferred';
  }

  /** A ring neighbour's data channel closed while `requestId` ran here: tell the coordinator (once). */
  onLinkLost(peerId: string, requestId: number): void {
    const key = `${requestId}:${peerId}`;
    if (this.reportedLinks.has(key) || this.lost.has(requestId)) return;
    this.reportedLinks.add(key);
    try {
      this.hooks.send({ type: 'report-link-lost', requestId, lostPeerId: peerId });
    } catch {
      // not connected: the coordinator sees the loss by itself (socket or heartbeat)
    }
  }

  dispose(): void {
    this.heartbeat.stopAll();
    for (const t of this.deferred.values()) clearTimeout(t);
    this.deferred.clear();
  }
}
