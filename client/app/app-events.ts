/**
 * Everything that can happen to the page, as data: the reducer (app-reducer.ts) turns each event into a
 * new state and a list of effects (app-effects.ts); the shell (app.ts) runs the effects and feeds what
 * they produce back in as events.
 *
 *   server    every coordinator message, as it arrives           { type: 'server', message }
 *   user      what the view's controls ask for                     'join-requested', 'plan-requested', ...
 *   runtime   results of effects (profile, replies, manifest, downloads, the stage), tagged with the
 *             assignment `seq` where they belong to one, so a late result of an old assignment is dropped
 *
 * Errors travel as `unknown` (whatever was thrown): the reducer names them with a fallback code.
 */
import type { FailoverView } from './failover-view-state.ts';
import type { ServerMessage, ServerMessageOf, PlanMethod, Sampling, TimingPhase } from '../../core/protocol.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import type { EnsureResult, FetchProgress } from '../cache/shard-cache.ts';
import type { ProfileProgress, ProfileResult } from '../profiler/profile.ts';
import type { ConnectionState } from '../session/coordinator-client.ts';
import type { UnitReadTiming } from './app-state.ts';
import type { TokenReport } from './stage-runner.ts';

export interface PlanRequest {
  tokens: number;
  method: PlanMethod;
  /** warm mode: the planned pages load their stage now, not at the request's start */
  warm?: boolean;
}

export interface GoRequest {
  prompt: string;
  maxNewTokens: number;
  sampling: Sampling;
}

/** What the page knows about itself when it opens (read by the shell from the browser). */
export interface PageOpened {
  type: 'page-opened';
  search: string;
  secureContext: boolean;
  /** location.host, for the insecure-context warning */
  host: string;
  /** the name this browser used last time (localStorage), if any */
  storedName: string | null;
  /** a made-up name for a first visit ('Android 412') */
  fallbackName: string;
  /** host credentials this tab saved for a session (sessionStorage), if any */
  savedHost: { code: string; hostSecret: string } | null;
}

/** The view's controls. */
export type UserEvent =
  | { type: 'name-changed'; raw: string }
  | { type: 'join-requested'; rawCode: string }
  | { type: 'create-requested' }
  | { type: 'reprofile-requested' }
  | { type: 'clear-cache-requested' }
  | ({ type: 'plan-requested' } & PlanRequest)
  | ({ type: 'go-requested' } & GoRequest)
  /** the host stops the request that runs (the newest output that has not ended) */
  | { type: 'stop-requested' }
  | { type: 'serve-api-requested'; serve: boolean }
  | { type: 'end-requested' }
  | { type: 'error-dismissed'; index: number };

/** Results of the shell's effects. */
export type RuntimeEvent =
  | { type: 'profile-progress'; progress: ProfileProgress }
  | { type: 'profile-finished'; result: ProfileResult; seconds: number }
  | { type: 'profile-failed'; error: unknown }
  | { type: 'profile-acked' }
  | { type: 'connection-changed'; state: ConnectionState; detail: string }
  | { type: 'connected'; seconds: number }
  | { type: 'connect-failed'; error: unknown }
  | { type: 'session-created'; created: ServerMessageOf<'session-created'> }
  | { type: 'join-replied'; joined: ServerMessageOf<'joined'>; seconds: number }
  | { type: 'plan-replied'; ready: ServerMessageOf<'plan-ready'> }
  | { type: 'serve-api-replied'; serve: boolean }
  | { type: 'serve-api-failed'; before: boolean; error: unknown }
  /** a request or send failed; `source` and `fallbackCode` say where, `report` also tells the server */
  | { type: 'failed'; source: string; fallbackCode: string; error: unknown; report?: boolean }
  | { type: 'manifest-loaded'; manifest: ModelManifest; seconds: number }
  | { type: 'manifest-failed'; error: unknown }
  | { type: 'cache-swept' }
  | { type: 'cache-listed'; units: string[] }
  | { type: 'cache-cleared' }
  | { type: 'download-progress'; seq: number; progress: FetchProgress }
  | { type: 'download-finished'; seq: number; result: EnsureResult; seconds: number }
  | { type: 'download-failed'; seq: number; error: unknown; unitId: string | null }
  | { type: 'stage-backend'; seq: number; backend: 'webgpu' | 'wasm'; why: string; place?: 'worker' | 'main' }
  | { type: 'stage-prepare-failed'; seq: number; error: unknown }
  /** warm mode: the stage was loaded at plan time (seconds of its storage read and session creation) */
  | { type: 'stage-loaded'; seq: number; storageReadSeconds: number; sessionCreateSeconds: number }
  | { type: 'unit-read'; seq: number; read: UnitReadTiming }
  | {
      type: 'stage-phase';
      seq: number;
      requestId: number;
      phase: TimingPhase;
      step: number;
      startMs: number;
      endMs: number;
      /** the step ran before the request's cancel reached the stage (reported after it): not counted as after */
      beforeCancel?: boolean;
      /** 'session-create': how many sessions the stage was opened as */
      parts?: number;
    }
  | { type: 'stage-tokens'; seq: number; requestId: number; report: TokenReport }
  | { type: 'stage-finished'; seq: number; requestId: number; seconds: number }
  | { type: 'stage-failed'; seq: number; requestId: number; error: unknown; seconds: number }
  /** failover: the run stopped because a stage was lost (or a neighbour vanished): not an error here */
  | { type: 'stage-stopped'; seq: number; requestId: number; detail: string; seconds: number }
  /** failover: the recovery view changed (failover-client.ts) */
  | { type: 'failover-changed'; view: FailoverView };

export type AppEvent = PageOpened | { type: 'server'; message: ServerMessage } | UserEvent | RuntimeEvent;
