/**
 * The page's state: one immutable value, replaced only by `reduce` (app-reducer.ts), and the read-only
 * snapshot exposed as `window.tandem` for people in the console and for e2e tests:
 *
 *   window.tandem.snapshot() -> TandemSnapshot (a deep copy; JSON-safe)
 *   window.tandem.version    -> 1
 *
 * Tests wait on fields such as `snapshot().profile !== null`, `snapshot().cache.state === 'complete'`,
 * `snapshot().outputs.at(-1)?.done`. Secrets (host secret, peer secret) are never in the snapshot.
 */
import type { ModelRef, PredictedStage, RosterPeer, ServerMessageOf, TimingEntry } from '../../core/protocol.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import type { ProfileProgress, ProfileResult } from '../profiler/profile.ts';
import type { FetchProgress } from '../cache/shard-cache.ts';
import type { ConnectionState } from '../session/coordinator-client.ts';
import type { PageParams } from './url-params.ts';
import { initialFailoverView, type FailoverView } from './failover-view-state.ts';
import type { SpareState } from './spare-reducer.ts';

export interface PageError {
  /** 'warning': the page works on, with less (e.g. wasm instead of WebGPU); 'error': something failed */
  readonly level: 'error' | 'warning';
  readonly code: string;
  readonly message: string;
  /** where it happened: 'profile', 'cache', 'session', 'stage', 'server', 'params', ... */
  readonly source: string;
  /** page clock, ms since epoch */
  readonly atMs: number;
  /** shown until dismissed */
  readonly dismissed: boolean;
}

export interface OutputState {
  readonly requestId: number;
  readonly prompt: string;
  readonly text: string;
  readonly tokenIds: readonly number[];
  readonly done: boolean;
  readonly finishReason: 'eos' | 'max-tokens' | 'error' | 'cancelled' | null;
}

export type CacheState = 'idle' | 'checking' | 'fetching' | 'complete' | 'error';

export interface UnitReadTiming {
  readonly unitId: string;
  readonly readSeconds: number;
  readonly verifySeconds: number;
}

export interface CacheSnapshot {
  readonly state: CacheState;
  readonly packageName: string | null;
  /** unit ids of the package complete in IndexedDB */
  readonly cachedUnits: readonly string[];
  /** unit ids of the current assignment */
  readonly assignedUnits: readonly string[];
  readonly progress: FetchProgress | null;
  /** units downloaded for the current assignment (empty when everything was cached) */
  readonly fetchedUnits: readonly string[];
  readonly reusedUnits: readonly string[];
  readonly bytesDownloaded: number;
  /** storage-read seconds per unit of the last run */
  readonly reads: readonly UnitReadTiming[];
}

export type StageState = 'idle' | 'running' | 'done' | 'error';

export interface StageView {
  readonly state: StageState;
  readonly requestId: number | null;
  readonly backend: string | null;
  /** where the stage and its frame links run: the inference worker, or the main thread (?ring=main, no transfer) */
  readonly place?: 'worker' | 'main';
  readonly detail: string;
  /** how many sessions the stage was last loaded as (shards/runtime/stage-parts.ts); absent before a load */
  readonly loadedInParts?: number;
}

/** Seconds each page-level phase took (null until it happened). */
export interface PhaseTimings {
  readonly profileSeconds: number | null;
  readonly connectSeconds: number | null;
  readonly joinSeconds: number | null;
  readonly manifestSeconds: number | null;
  readonly cacheSeconds: number | null;
  /** warm mode (?warm=1): the stage's load at plan time, storage read + session creation */
  readonly stageLoadSeconds: number | null;
  /** from `start` to the stage's end, last request */
  readonly stageSeconds: number | null;
}

export type Assignment = ServerMessageOf<'assignment'>;
export type PlanReady = ServerMessageOf<'plan-ready'>;
export type StartMessage = ServerMessageOf<'start'>;

/** What this page's stage did for a request the coordinator cancelled (reported once, in `report-cancelled`). */
export interface CancelRecord {
  readonly tokens: number;
  readonly steps: number;
  readonly reported: boolean;
}

/**
 * The assignment this page works on. `seq` names it for the effects it starts (downloads, the stage):
 * their results carry it back, and a result for another `seq` is late and changes nothing.
 */
export interface AssignmentWork {
  readonly seq: number;
  readonly message: Assignment;
  /** the download of its units: a `start` waits while it is 'waiting' (no manifest yet) or 'running' */
  readonly download: 'waiting' | 'running' | 'done' | 'failed';
  /** `start`s that arrived while the units were still downloading: they run once the download ends */
  readonly waitingStarts: readonly { readonly start: StartMessage; readonly atMs: number }[];
}

export interface AppState {
  readonly params: PageParams | null;
  readonly displayName: string;
  readonly connection: ConnectionState;
  readonly connectionDetail: string;
  readonly role: 'host' | 'peer' | null;
  readonly code: string | null;
  readonly sessionName: string | null;
  readonly peerId: string | null;
  readonly model: ModelRef | null;
  readonly profileProgress: ProfileProgress | null;
  readonly profile: ProfileResult | null;
  readonly profileSent: boolean;
  readonly roster: readonly RosterPeer[];
  readonly planId: string | null;
  readonly plan: PlanReady | null;
  readonly assignment: Assignment | null;
  readonly excluded: { readonly planId: string; readonly reason: string } | null;
  /** outside the plan: the stage this page keeps a warm copy of (spare-reducer.ts), null when none */
  readonly spare: SpareState | null;
  readonly cache: CacheSnapshot;
  readonly stage: StageView;
  readonly outputs: readonly OutputState[];
  /** requestId -> peerId -> measured phases */
  readonly timings: ReadonlyMap<number, ReadonlyMap<string, readonly TimingEntry[]>>;
  /**
   * requestId -> peerId -> the bound (ms) to which that page's timings are on the server's clock, null
   * where they count from the page's own start (core/clock-offset.ts)
   */
  readonly clocks: ReadonlyMap<number, ReadonlyMap<string, number | null>>;
  /** stages of the plan that ran each request (to draw the timeline after a re-plan) */
  readonly requestStages: ReadonlyMap<number, readonly PredictedStage[]>;
  /** host: this session answers the server's OpenAI-compatible API */
  readonly serveApi: boolean;
  /** the server's refit after the last measured request: per phase predicted vs measured */
  readonly calibration: ServerMessageOf<'calibration'> | null;
  readonly errors: readonly PageError[];
  readonly phases: PhaseTimings;
  /** failover (issue 13): losses, repairs, replays and recoveries of recent requests */
  readonly failover: FailoverView;

  // ---- the controller's own bookkeeping (not in the snapshot)
  /** host credentials of this tab's session (kept out of the snapshot) */
  readonly hostSecret: string | null;
  /** the validated manifest of the session's model package, once fetched */
  readonly manifest: ModelManifest | null;
  /** the current assignment's work, null when this page has none */
  readonly work: AssignmentWork | null;
  /** the last assignment seq handed out (each new assignment takes the next) */
  readonly lastSeq: number;
  /** requests the coordinator cancelled, with what this page's stage did after the cancel arrived */
  readonly cancelled: ReadonlyMap<number, CancelRecord>;
  /** requests this page's stage ran to an end (done, failed, cancelled or stopped with its assignment) */
  readonly ranHere: ReadonlySet<number>;
}

export function initialState(): AppState {
  return {
    params: null,
    displayName: '',
    connection: 'closed',
    connectionDetail: '',
    role: null,
    code: null,
    sessionName: null,
    peerId: null,
    model: null,
    profileProgress: null,
    profile: null,
    profileSent: false,
    roster: [],
    planId: null,
    plan: null,
    assignment: null,
    excluded: null,
    spare: null,
    cache: {
      state: 'idle',
      packageName: null,
      cachedUnits: [],
      assignedUnits: [],
      progress: null,
      fetchedUnits: [],
      reusedUnits: [],
      bytesDownloaded: 0,
      reads: [],
    },
    stage: { state: 'idle', requestId: null, backend: null, detail: '' },
    outputs: [],
    timings: new Map(),
    clocks: new Map(),
    requestStages: new Map(),
    serveApi: false,
    calibration: null,
    errors: [],
    phases: {
      profileSeconds: null,
      connectSeconds: null,
      joinSeconds: null,
      manifestSeconds: null,
      cacheSeconds: null,
      stageLoadSeconds: null,
      stageSeconds: null,
    },
    hostSecret: null,
    manifest: null,
    work: null,
    lastSeq: 0,
    cancelled: new Map(),
    ranHere: new Set(),
    failover: initialFailoverView(),
  };
}

export interface TandemSnapshot {
  readonly version: 1;
  readonly peerId: string | null;
  readonly role: 'host' | 'peer' | null;
  readonly code: string | null;
  readonly displayName: string;
  readonly emulated: string | null;
  readonly backendParam: string;
  readonly connection: ConnectionState;
  readonly model: ModelRef | null;
  readonly profile: ProfileResult | null;
  readonly profileSent: boolean;
  readonly roster: readonly RosterPeer[];
  readonly plan: PlanReady | null;
  readonly assignment: Assignment | null;
  readonly excluded: AppState['excluded'];
  readonly spare: AppState['spare'];
  readonly cache: CacheSnapshot;
  readonly stage: StageView;
  readonly outputs: readonly OutputState[];
  /** requestId -> peerId -> measured phases */
  readonly timings: Record<string, Record<string, readonly TimingEntry[]>>;
  readonly serveApi: boolean;
  readonly errors: readonly PageError[];
  readonly phases: PhaseTimings;
  readonly failover: FailoverView;
}

export function snapshotOf(s: AppState): TandemSnapshot {
  const timings: Record<string, Record<string, readonly TimingEntry[]>> = {};
  for (const [req, byPeer] of s.timings) timings[String(req)] = Object.fromEntries(byPeer);
  const snap: TandemSnapshot = {
    version: 1,
    peerId: s.peerId,
    role: s.role,
    code: s.code,
    displayName: s.displayName,
    emulated: s.params?.emulation?.label ?? null,
    backendParam: s.params?.backend ?? 'auto',
    connection: s.connection,
    model: s.model,
    profile: s.profile,
    profileSent: s.profileSent,
    roster: s.roster,
    plan: s.plan,
    assignment: s.assignment,
    excluded: s.excluded,
    spare: s.spare,
    cache: s.cache,
    stage: s.stage,
    outputs: s.outputs,
    timings,
    serveApi: s.serveApi,
    errors: s.errors,
    phases: s.phases,
    failover: s.failover,
  };
  return structuredClone(snap);
}
