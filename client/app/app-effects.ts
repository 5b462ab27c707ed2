/**
 * What the reducer asks the shell (app.ts) to do. Effects are data, so the reducer's tests read them as
 * values; the shell runs each one and turns what comes back into events (app-events.ts).
 *
 * Assignment work carries its `seq`: the shell keeps one AbortController per seq (assignment-signals.ts),
 * hands its signal to the downloads and the stage, and `abort-assignment` fires it.
 */
import type { ClientMessage, ClientMessageOf, ModelRef, ProfileReport, TimingEntry } from '../../core/protocol.ts';
import type { PageParams } from './url-params.ts';
import type { Assignment, StartMessage } from './app-state.ts';

/** A request's message: the protocol client adds the `ref`. */
type WithoutRef<M> = Omit<M, 'ref'>;

export type Effect =
  // ---- the coordinator
  | { type: 'connect' }
  /** fire and forget; a failure becomes `failed` with this source (null: dropped, e.g. a report-error) */
  | { type: 'send'; message: ClientMessage; source: string | null }
  | { type: 'request-create'; message: WithoutRef<ClientMessageOf<'create-session'>> }
  | { type: 'request-join'; message: WithoutRef<ClientMessageOf<'join'>> }
  | { type: 'request-profile'; profile: ProfileReport }
  | { type: 'request-plan'; message: WithoutRef<ClientMessageOf<'plan'>> }
  | { type: 'request-serve-api'; message: WithoutRef<ClientMessageOf<'serve-api'>>; before: boolean }
  /** lists the cached units (-> cache-listed), then tells the server (cache-status) */
  | { type: 'report-cache' }
  /** remember (or forget) the peer credentials so a reconnect resumes the same peer */
  | { type: 'remember-peer'; credentials: { code: string; peerId: string; peerSecret: string } | null }
  // ---- the device
  | { type: 'profile'; name: string; params: PageParams | null }
  | { type: 'load-manifest'; model: ModelRef; params: PageParams | null }
  /**
   * warm the runtime's kernels for the session's model (every path: layers, embedding, head) in the
   * background, once the profile no longer measures: a first request then does not wait for it
   */
  | { type: 'warm-up-kernels'; params: PageParams | null }
  | { type: 'sweep-cache' }
  | { type: 'clear-cache' }
  | { type: 'download-units'; seq: number; units: readonly string[] }
  // ---- the stage
  | { type: 'connect-transport'; peerId: string; peerjs: { path: string; token: string } }
  /** `load`: warm mode (?warm=1), the stage also reads its units and creates its session now */
  | { type: 'prepare-stage'; seq: number; assignment: Assignment; load: boolean }
  | { type: 'run-stage'; seq: number; assignment: Assignment; start: StartMessage; startedAtMs: number }
  | { type: 'cancel-stage'; requestId: number; reason: string }
  /** fires the AbortController of that assignment: its downloads stop and its stage is disposed */
  | { type: 'abort-assignment'; seq: number }
  /** the session ended: drop the stage and the PeerJS transport */
  | { type: 'close-stage' }
  | { type: 'report-timing'; requestId: number; entry: TimingEntry }
  | { type: 'flush-timings' }
  // ---- the browser
  | { type: 'save-name'; name: string }
  | { type: 'save-host'; code: string; hostSecret: string }
  /** the address bar re-joins this session on reload (and no longer creates a new one) */
  | { type: 'show-joined-url'; code: string }
  | { type: 'keep-awake' }
  | { type: 'log'; text: string };
