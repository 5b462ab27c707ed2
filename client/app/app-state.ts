/**
 * The page's state (one object, changed only by the controller in app.ts) and the read-only snapshot
 * exposed as `window.tandem` for people in the console and for e2e tests:
 *
 *   window.tandem.snapshot() -> TandemSnapshot (a deep copy; JSON-safe)
 *   window.tandem.version    -> 1
 *
 * Tests wait on fields such as `snapshot().profile !== null`, `snapshot().cache.state === 'complete'`,
 * `snapshot().outputs.at(-1)?.done`. Secrets (host secret, peer secret) are never in the snapshot.
 */
import type { ModelRef, PredictedStage, RosterPeer, ServerMessageOf, TimingEntry } from '../../core/protocol.ts';
import type { ProfileProgress, ProfileResult } from '../profiler/profile.ts';
import type { FetchProgress } from '../cache/shard-cache.ts';
import type { ConnectionState } from '../session/coordinator-client.ts';
import type { PageParams } from './url-params.ts';
import { initialFailoverView, type FailoverView } from './failover-view-state.ts';

export interface PageError {
  /** 'warning': the page works on, with less (e.g. wasm instead of WebGPU); 'error': something failed */
  level: 'error' | 'warning';
  code: string;
  message: string;
  /** where it happened: 'profile', 'cache', 'session', 'stage', 'server', 'params', ... */
  source: string;
  /** page clock, ms since epoch */
  atMs: number;
  /** shown until dismissed */
  dismissed: boolean;
}

export interface OutputState {
  requestId: number;
  prompt: string;
  text: string;
  tokenIds: number[];
  done: boolean;
  finishReason: 'eos' | 'max-tokens' | 'error' | 'cancelled' | null;
}

export type CacheState = 'idle' | 'checking' | 'fetching' | 'complete' | 'error';

export interface CacheSnapshot {
  state: CacheState;
  packageName: string | null;
  /** unit ids of the package complete in IndexedDB */
  cachedUnits: string[];
  /** unit ids of the current assignment */
  assignedUnits: string[];
  progress: FetchProgress | null;
  /** units downloaded for the current assignment (empty when everything was cached) */
  fetchedUnits: string[];
  reusedUnits: string[];
  bytesDownloaded: number;
  /** storage-read seconds per unit of the last run */
  reads: { unitId: string; readSeconds: number; verifySeconds: number }[];
}

export type StageState = 'idle' | 'running' | 'done' | 'error';

/** Seconds each page-level phase took (null until it happened). */
export interface PhaseTimings {
  profileSeconds: number | null;
  connectSeconds: number | null;
  joinSeconds: number | null;
  manifestSeconds: number | null;
  cacheSeconds: number | null;
  /** from `start` to the stage's end, last request */
  stageSeconds: number | null;
}

export type Assignment = ServerMessageOf<'assignment'>;
export type PlanReady = ServerMessageOf<'plan-ready'>;

export interface AppState {
  params: PageParams | null;
  displayName: string;
  connection: ConnectionState;
  connectionDetail: string;
  role: 'host' | 'peer' | null;
  code: string | null;
  sessionName: string | null;
  peerId: string | null;
  model: ModelRef | null;
  profileProgress: ProfileProgress | null;
  profile: ProfileResult | null;
  profileSent: boolean;
  roster: RosterPeer[];
  planId: string | null;
  plan: PlanReady | null;
  assignment: Assignment | null;
  excluded: { planId: string; reason: string } | null;
  cache: CacheSnapshot;
  stage: { state: StageState; requestId: number | null; backend: string | null; detail: string };
  outputs: OutputState[];
  /** requestId -> peerId -> measured phases */
  timings: Map<number, Map<string, TimingEntry[]>>;
  /** stages of the plan that ran each request (to draw the timeline after a re-plan) */
  requestStages: Map<number, PredictedStage[]>;
  /** host: this session answers the server's OpenAI-compatible API */
  serveApi: boolean;
  errors: PageError[];
  phases: PhaseTimings;
  /** failover (issue 13): losses, repairs, replays and recoveries of recent requests */
  failover: FailoverView;
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
    requestStages: new Map(),
    serveApi: false,
    errors: [],
    phases: {
      profileSeconds: null,
      connectSeconds: null,
      joinSeconds: null,
      manifestSeconds: null,
      cacheSeconds: null,
      stageSeconds: null,
    },
    failover: initialFailoverView(),
  };
}

export interface TandemSnapshot {
  version: 1;
  peerId: string | null;
  role: 'host' | 'peer' | null;
  code: string | null;
  displayName: string;
  emulated: string | null;
  backendParam: string;
  connection: ConnectionState;
  model: ModelRef | null;
  profile: ProfileResult | null;
  profileSent: boolean;
  roster: RosterPeer[];
  plan: PlanReady | null;
  assignment: Assignment | null;
  excluded: { planId: string; reason: string } | null;
  cache: CacheSnapshot;
  stage: AppState['stage'];
  outputs: OutputState[];
  /** requestId -> peerId -> measured phases */
  timings: Record<string, Record<string, TimingEntry[]>>;
  serveApi: boolean;
  errors: PageError[];
  phases: PhaseTimings;
  failover: FailoverView;
}

export function snapshotOf(s: AppState): TandemSnapshot {
  const timings: Record<string, Record<string, TimingEntry[]>> = {};
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
