/**
 * The session coordinator: a pure state machine. The WebSocket gateway feeds it connection events and
 * validated client messages; it updates its state and returns the effects to carry out (messages to
 * send, connections to close, field-log records). Time and randomness are passed in, so tests drive
 * it directly and the server, the bench and the tests all run the same logic.
 */
import type { ModelManifest } from '../shards/manifest.ts';
import {
  assertNever,
  JOIN_CODE_ALPHABET,
  JOIN_CODE_LENGTH,
  MAX_PEERS_PER_SESSION,
  MAX_PLAN_TOKENS,
  MAX_PROMPT_TOKENS,
  manifestUrl,
  unitsForStage,
  type ClientMessage,
  type ClientMessageOf,
  type ErrorCode,
  type LossReason,
  type MemoryModel,
  type ModelRef,
  type PeerLeftReason,
  type PlanMethod,
  type PredictedStage,
  type ProfileReport,
  type RosterPeer,
  type RosterProfile,
  type Sampling,
  type ServerMessage,
  type ServerMessageOf,
  type TimingEntry,
} from '../core/protocol.ts';

/** How a silence loss was judged (stage-lost.silence). */
type StageLostSilence = NonNullable<ServerMessageOf<'stage-lost'>['silence']>;
import type { FailoverRecord, FieldRecord } from './field-log.ts';
import { lostLayers, planFailover, type RemainingPage } from './failover.ts';
import { CalibrationStore } from './calibration-store.ts';
import type { PlanOutcome, PlanRequest } from './planning.ts';
import { RateLimiter, type RateLimit } from './rate-limit.ts';
import { LivenessWindow } from './liveness.ts';
import { omit } from './omit.ts';
import { RequestQueue, retryAfterSeconds } from './request-queue.ts';
import { predictedStages } from './predicted-stages.ts';
import { HeldTimings, splitRelay } from './timings-relay.ts';

export type ConnId = number;

export type { FieldRecord };

export type Effect =
  | { kind: 'send'; to: ConnId; message: ServerMessage }
  | { kind: 'close'; conn: ConnId; code: number; reason: string }
  | { kind: 'field-log'; record: FieldRecord }
  /** The peer left or timed out: end its PeerJS registration (its id is never admitted again). */
  | { kind: 'peer-gone'; peerId: string }
  /** Run the planner (off the event loop if the gateway can), then call `planFinished(token, ...)`. */
  | { kind: 'plan'; token: number; request: PlanRequest }
  /** Progress of a request of the HTTP API, for openai-api.ts. */
  | { kind: 'api'; event: ApiEvent };

/** What the HTTP API learns about one of its requests (`ticket` from `submitApi`). */
export type ApiEvent =
  | { type: 'started'; ticket: number; sessionCode: string; requestId: number }
  | { type: 'tokens'; ticket: number; tokenIds: number[]; done: boolean; finishReason?: 'eos' | 'max-tokens' | 'error' }
  | { type: 'failed'; ticket: number; code: string; message: string };

/** A request of the HTTP API, already tokenised by the server. */
export interface ApiSubmission {
  sessionCode: string;
  /** Shown on the pages as the request's prompt. */
  displayPrompt: string;
  promptTokenIds: number[];
  maxNewTokens: number;
  sampling: Sampling;
}

export type ApiSubmitOutcome =
  | { ok: true; ticket: number; /** 0 = started now, n = n-th in the queue */ position: number }
  | { ok: false; code: 'queue-full'; retryAfterSeconds: number }
  | { ok: false; code: 'session-not-found' };

/** A session that answers the HTTP API. */
export interface ApiSessionInfo {
  code: string;
  model: string;
  /** Requests waiting in its queue (not counting the running one). */
  waiting: number;
  running: boolean;
  queueDepth: number;
}

/** What the planner produced for a `plan` effect. */
export type PlanCompletion = { ok: true; outcome: PlanOutcome } | { ok: false; code: string; message: string };

export interface CoordinatorLimits {
  maxSessions: number;
  maxPeersPerSession: number;
  /** Pages send a heartbeat this often, ms. */
  heartbeatIntervalMs: number;
  /** A peer silent this long is dropped, ms. */
  heartbeatTimeoutMs: number;
  /** Pages send a heartbeat this often while a request runs, ms (`joined.requestHeartbeatIntervalMs`). */
  requestHeartbeatIntervalMs: number;
  /**
   * A stage of the running request whose device is silent this long is lost for the request (failover),
   * ms. Its socket's pongs count (the browser answers pings off the page's main thread): a page busy
   * loading its stage is slow, not gone, while a device off the network answers nothing.
   */
  lossTimeoutMs: number;
  /**
   * A stage that answers pings but sends no message this long is lost too (a frozen tab: a phone that
   * locked its screen keeps its socket while its page does nothing), ms.
   */
  stallTimeoutMs: number;
  /**
   * A continuation that has not produced its first token this long after the loss fails with
   * 'recovery-timed-out' (or 3x the repair's predicted resume time, if longer), ms.
   */
  recoveryTimeoutMs: number;
  /** Losses one request may recover from. */
  maxRecoveries: number;
  /** A session with no peers and no host connection is removed after this long, ms. */
  sessionIdleMs: number;
  /** Requests (timings, tokens) kept per session. */
  requestsKept: number;
  /** Timing entries kept per peer per request. */
  timingsPerPeer: number;
  /** Characters of generated text kept per request. */
  textPerRequest: number;
  /** Joins, resumes, session creations and failed host credentials per client address. */
  joinRate: RateLimit;
  /** Requests that may wait in a session's queue behind the running one (>= 1). */
  queueDepth: number;
  /** Live sessions one client address may have created. */
  maxSessionsPerAddress: number;
  /** Shortest time between two rosters of one session, ms (changes in between are coalesced). */
  rosterIntervalMs: number;
  /** Profiles per page (each is a field-log line and a roster change). */
  profileRate: RateLimit;
}

export const DEFAULT_LIMITS: CoordinatorLimits = {
  maxSessions: 200,
  maxPeersPerSession: MAX_PEERS_PER_SESSION,
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 20_000,
  requestHeartbeatIntervalMs: 1_000,
  lossTimeoutMs: 3_000,
  stallTimeoutMs: 15_000,
  recoveryTimeoutMs: 60_000,
  maxRecoveries: 8,
  sessionIdleMs: 60_000,
  requestsKept: 8,
  timingsPerPeer: 20_000,
  textPerRequest: 256 * 1024,
  joinRate: { burst: 20, perSecond: 2 },
  queueDepth: 4,
  maxSessionsPerAddress: 4,
  rosterIntervalMs: 250,
  profileRate: { burst: 4, perSecond: 1 / 30 },
};

export interface CoordinatorOptions {
  /** The model package sessions use; null when the server has none (sessions cannot be created). */
  model: ModelManifest | null;
  /** Cryptographically random bytes (crypto.getRandomValues in the page, node:crypto on the server). */
  randomBytes: (count: number) => Uint8Array;
  limits?: Partial<CoordinatorLimits>;
  /** Default prompt length for plans, tokens. */
  defaultTokens?: number;
  peerjs?: { path: string; key: string };
  /** Join code of a session that answers the HTTP API whether or not its host switched it on (--api-session). */
  apiSessionCode?: string | null;
  /** The PeerJS token of a peer id (the server derives it with a key of its own; see peerjs-gate.ts). */
  peerToken?: (peerId: string) => string;
  /**
   * The token ids the first stage would run for a host's prompt, or null while the server has no
   * tokenizer for the package. When known they go out in the host's `start` as `promptTokenIds`, so
   * the first stage runs exactly these ids and a failover replays exactly the same history (the page
   * would tokenise with the same files and library, but sending the ids makes it so by construction).
   */
  promptTokenIds?: (prompt: string) => number[] | null;
  /**
   * Spares (docs/failover.md): each plan also chooses idle pages that keep a warm copy of the stage
   * whose loss would cost most, and tells them (`spare`) while no request runs. Default true; the
   * server's --no-spares turns it off.
   */
  spares?: boolean;
}

interface Peer {
  peerId: string;
  secret: string;
  displayName: string;
  emulated: string | null;
  joinedAtMs: number;
  lastSeenMs: number;
  /** Its messages and its socket's pongs (the device is on the network, whatever its page's main thread does). */
  liveness: LivenessWindow;
  conn: ConnId | null;
  profile: ProfileReport | null;
  cachedUnits: string[];
  /** Random key of this page in the field log (unrelated to its peer id). */
  logKey: string;
}

interface Plan {
  planId: string;
  method: PlanMethod;
  tokens: number;
  memoryModel: MemoryModel;
  latency: number;
  stages: PredictedStage[];
  excludedPeerIds: string[];
  /** Set when a planned peer left: the plan can no longer run. */
  stale: boolean;
  /** The connected, profiled peers the plan was made over (a change makes a go re-plan). */
  candidatePeerIds: string[];
  /** Idle pages that keep a warm copy of a stage (docs/failover.md, "Spares"); told once no request runs. */
  spares: PlanSpare[];
  sparesSent: boolean;
}

/** A `spare` of a plan, before it goes out: the page and the message's fields. */
type PlanSpare = { peerId: string } & Omit<ServerMessageOf<'spare'>, 'type' | 'planId'>;

interface RequestRecord {
  /** The user's request id: outputs always carry it, whatever attempt runs. */
  requestId: number;
  /** Plan of the current attempt. */
  planId: string;
  prompt: string;
  /** The ids the first stage runs (API requests; host requests when the server could tokenise). */
  promptTokenIds: number[] | null;
  maxNewTokens: number;
  sampling: Sampling;
  startedAtMs: number;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  origin: 'host' | 'api';
  /** The HTTP API's ticket, null for the host's go. */
  ticket: number | null;
  /** Stages of the current attempt. */
  peerIds: Set<string>;
  lastPeerId: string;
  stages: PredictedStage[];
  /** Every peer that was a stage of any attempt (their timings and cancel reports are accepted). */
  everPeerIds: Set<string>;
  timings: Map<string, TimingEntry[]>;
  /** Decode phases not yet relayed to the ring's own pages (timings-relay.ts): they go when it ends. */
  heldTimings: HeldTimings;
  tokenIds: number[];
  text: string;
  errors: { peerId: string; code: string; message: string }[];
  // ---- failover (docs/failover.md) ----
  /** Request id on the wire of the current attempt: requestId, then a fresh id per continuation. */
  wireId: number;
  /** 0 = the original run, n = the n-th continuation. */
  attempt: number;
  attemptStartedAtMs: number;
  /** Plan id of each attempt's wire id (timings name the attempt's plan). */
  attemptPlans: Map<number, string>;
  /** Peers lost during this request: never stages of it again. */
  lostPeerIds: Set<string>;
  /** A continuation waiting for its first token; null otherwise. */
  recovery: { detectedAtMs: number; deadlineMs: number; draft: FailoverDraft } | null;
  /** Pages a neighbour reported unreachable while they still look alive: peer id -> report time. */
  suspects: Map<string, number>;
  /** Last token report of the current attempt (server clock). */
  lastProgressMs: number;
  /** A transport-type error of the current attempt, held for a moment: a loss may explain it. */
  heldFailure: { peerId: string; wireId: number; code: string; message: string; detail: string; atMs: number } | null;
}

/** A failover record before its outcome is known. */
type FailoverDraft = Omit<FailoverRecord, 'receivedAtMs' | 'outcome' | 'detectedToResumedMs'>;

/**
 * Errors a stage reports when its neighbour vanished (its channel closed, the ring broke, or it gave
 * up waiting): they are held for `lossTimeoutMs + requestHeartbeatIntervalMs` in case the server is
 * about to detect the loss that caused them, and fail the request only if it does not.
 */
const LOSS_CONSEQUENCE_CODES: ReadonlySet<string> = new Set([
  'transport-closed',
  'transport-connect-failed',
  'request-failed-elsewhere',
  'stage-timeout',
]);

interface Session {
  code: string;
  name: string;
  hostSecret: string;
  createdAtMs: number;
  lastActivityMs: number;
  peers: Map<string, Peer>;
  /** Connections that created the session or acted as its host: they get every broadcast. */
  hostConns: Set<ConnId>;
  plan: Plan | null;
  requests: RequestRecord[];
  nextRequestId: number;
  planCount: number;
  /** The plan being computed, if any. */
  planning: PendingPlan | null;
  /** Requests waiting for the running one to end (host go's and API requests, in arrival order). */
  queue: RequestQueue<QueuedRequest>;
  /** The host switched the HTTP API on for this session. */
  serveApi: boolean;
  /** Warm mode (the host's last `plan.warm`): planned pages load their stage on assignment. */
  warm: boolean;
  /** Durations of the last requests, ms (for Retry-After). */
  recentDurationsMs: number[];
  /** Client address that created it (sessions per address are capped). */
  creatorAddress: string;
  /** When the last roster went out, and whether a change waits for the next one. */
  rosterSentMs: number;
  rosterDirty: boolean;
}

/** A request that waits in a session's queue. */
interface QueuedRequest {
  origin: 'host' | 'api';
  prompt: string;
  promptTokenIds: number[] | null;
  maxNewTokens: number;
  sampling: Sampling;
  /** host: the connection that sent go and its ref (the start is its reply). */
  hostConn: ConnId | null;
  ref: number | undefined;
  ticket: number | null;
}

interface PendingPlan {
  token: number;
  /** null: planned for the queue's head (an API request, or a host's go that re-plans), not on a host's `plan`. */
  hostConn: ConnId | null;
  ref: number | undefined;
  method: PlanMethod;
  tokens: number;
  memoryModel: MemoryModel;
  /** Candidate peers in planner device order. */
  peerIds: string[];
}

interface Conn {
  address: string;
  /** Bound peer after join/resume. */
  peer: { code: string; peerId: string } | null;
  hostOf: Set<string>;
}

/** Exported session state for the field log / timeline export. */
export interface SessionExport {
  code: string;
  name: string;
  plan: Omit<Plan, 'stale'> | null;
  requests: {
    requestId: number;
    planId: string;
    state: RequestRecord['state'];
    startedAtMs: number;
    tokenIds: number[];
    text: string;
    timings: Record<string, TimingEntry[]>;
    errors: RequestRecord['errors'];
  }[];
}

/** The server messages that may carry the ref of the client message they answer. */
type ReplyMessage = {
  [T in ServerMessage['type']]: 'ref' extends keyof ServerMessageOf<T> ? ServerMessageOf<T> : never;
}[ServerMessage['type']];

class Outbox {
  readonly effects: Effect[] = [];
  send(to: ConnId, message: ServerMessage): void {
    this.effects.push({ kind: 'send', to, message });
  }
  error(to: ConnId, code: ErrorCode, message: string, inReplyTo: string | null, ref?: number): void {
    this.send(to, { type: 'error', code, message, inReplyTo, ...(ref !== undefined ? { ref } : {}) });
  }
  /** The error answer to client message `msg` (with its ref, when it had one). */
  refuse(to: ConnId, msg: { type: string; ref?: number }, code: ErrorCode, message: string): void {
    this.error(to, code, message, msg.type, msg.ref);
  }
  /** The plain acknowledgement of `msg`, with its ref when it had one. */
  ack(to: ConnId, msg: { type: string; ref?: number }): void {
    this.send(to, { type: 'ack', of: msg.type, ...(msg.ref !== undefined ? { ref: msg.ref } : {}) });
  }
  sendAll(targets: Iterable<ConnId>, message: ServerMessage): void {
    for (const to of targets) this.send(to, message);
  }
  /** `message` to each of `targets`; `asker` gets it with the ref of its request, when that had one. */
  replyAll(targets: Iterable<ConnId>, message: ReplyMessage, asker: ConnId | null, ref: number | undefined): void {
    for (const to of targets) this.send(to, to === asker && ref !== undefined ? { ...message, ref } : message);
  }
}

/** The fields of a request that describe its current attempt: wire id `wireId` on `plan`, from `nowMs`. */
function attemptOn(
  plan: Plan,
  wireId: number,
  nowMs: number,
): Pick<
  RequestRecord,
  'wireId' | 'planId' | 'peerIds' | 'lastPeerId' | 'stages' | 'attemptStartedAtMs' | 'lastProgressMs'
> {
  return {
    wireId,
    planId: plan.planId,
    peerIds: new Set(plan.stages.map((s) => s.peerId)),
    lastPeerId: plan.stages[plan.stages.length - 1].peerId,
    stages: plan.stages,
    attemptStartedAtMs: nowMs,
    lastProgressMs: nowMs,
  };
}

/** Remembers `request`'s current attempt (the first, or a failover's continuation): its stages and plan. */
function recordAttempt(request: RequestRecord): void {
  for (const id of request.peerIds) request.everPeerIds.add(id);
  request.attemptPlans.set(request.wireId, request.planId);
}

/**
 * The `start` of `request`'s current attempt: one message object, sent to every connection in the same
 * turn, so that all stages start loading together. `resume`: a continuation after a failover.
 */
function startMessage(
  request: Pick<RequestRecord, 'wireId' | 'planId' | 'prompt' | 'sampling' | 'origin'>,
  maxNewTokens: number,
  promptTokenIds: number[] | null,
  nowMs: number,
  resume?: ServerMessageOf<'start'>['resume'],
): ServerMessageOf<'start'> {
  return {
    type: 'start',
    requestId: request.wireId,
    planId: request.planId,
    prompt: request.prompt,
    maxNewTokens,
    sampling: request.sampling,
    serverTimeMs: nowMs,
    origin: request.origin,
    ...(promptTokenIds ? { promptTokenIds } : {}),
    ...(resume ? { resume } : {}),
  };
}

/** The last output of a request that ends without new tokens (cancelled, failed, or complete after a loss). */
function closingOutput(
  request: RequestRecord,
  finishReason: 'max-tokens' | 'error' | 'cancelled',
): ServerMessageOf<'output'> {
  return {
    type: 'output',
    requestId: request.requestId,
    tokenIds: [],
    text: '',
    generated: request.tokenIds.length,
    done: true,
    finishReason,
  };
}

/** What the roster shows of a profile: the figures, not the bulky details (sweep, GPU limits, user agent). */
function rosterProfile(p: ProfileReport): RosterProfile {
  return omit(p, 'userAgent', 'sweep', 'gpu');
}

/** Constant-time string comparison (both are short ASCII secrets). */
function secretsEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export class Coordinator {
  private readonly sessions = new Map<string, Session>();
  private readonly conns = new Map<ConnId, Conn>();
  /** Every live peer id (PeerJS ids are global across sessions). */
  private readonly peerIndex = new Map<string, string>();
  private readonly limits: CoordinatorLimits;
  private readonly joinLimiter: RateLimiter;
  private readonly profileLimiter: RateLimiter;
  private readonly defaultTokens: number;
  /** When tick() last ran (null before the first): a long gap means the server itself was stalled. */
  private lastTickMs: number | null = null;
  private readonly peerjs: { path: string; key: string };
  private nextPlanToken = 1;
  /** Plan token -> session code, while the planner runs. */
  private readonly pendingPlans = new Map<number, string>();
  private nextTicket = 1;
  /** API ticket -> session code, while its request waits or runs. */
  private readonly apiTickets = new Map<number, string>();
  /** Devices refitted from their measured requests, per session (issue 12). */
  private readonly calibration: CalibrationStore;

  constructor(private readonly options: CoordinatorOptions) {
    this.calibration = new CalibrationStore(options.model);
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.joinLimiter = new RateLimiter(this.limits.joinRate);
    this.profileLimiter = new RateLimiter(this.limits.profileRate);
    this.defaultTokens = options.defaultTokens ?? 256;
    this.peerjs = options.peerjs ?? { path: '/peerjs', key: 'peerjs' };
  }

  // ---- connection events ------------------------------------------------------------------

  connect(conn: ConnId, address: string): void {
    this.conns.set(conn, { address, peer: null, hostOf: new Set() });
  }

  /** The socket closed. A bound peer stays (it may `resume`) until its heartbeat times out. */
  disconnect(conn: ConnId, nowMs: number): Effect[] {
    const out = new Outbox();
    const state = this.conns.get(conn);
    this.conns.delete(conn);
    if (!state) return out.effects;
    for (const code of state.hostOf) this.sessions.get(code)?.hostConns.delete(conn);
    if (state.peer) {
      const session = this.sessions.get(state.peer.code);
      const peer = session?.peers.get(state.peer.peerId);
      if (session && peer && peer.conn === conn) {
        peer.conn = null;
        session.lastActivityMs = nowMs;
        this.broadcastRoster(session, out, nowMs);
        // A stage's socket closing during a request: lost for the request at once (it may still resume later).
        const request = this.runningRequest(session);
        if (request?.peerIds.has(peer.peerId)) this.loseStages(session, request, [peer.peerId], 'left', nowMs, out);
      }
    }
    return out.effects;
  }

  /** A frame that failed validation: answer on that connection only. */
  reject(conn: ConnId, code: ErrorCode, message: string, inReplyTo: string | null, ref?: number): Effect[] {
    const out = new Outbox();
    out.error(conn, code, message, inReplyTo, ref);
    return out.effects;
  }

  /** Drop silent peers and idle sessions. Call every second or so. */
  tick(nowMs: number): Effect[] {
    const out = new Outbox();
    // A tick long after the previous one means this server was stalled (a busy or throttled machine): the
    // messages and pongs that came meanwhile wait behind this timer, so silence is not judged until they are in.
    const stalled = this.lastTickMs !== null && nowMs - this.lastTickMs > this.limits.lossTimeoutMs / 2;
    this.lastTickMs = nowMs;
    for (const session of [...this.sessions.values()]) {
      for (const peer of [...session.peers.values()]) {
        if (nowMs - peer.lastSeenMs > this.limits.heartbeatTimeoutMs) {
          const conn = peer.conn;
          this.removePeer(session, peer, 'timed-out', nowMs, out);
          if (conn !== null) {
            out.error(
              conn,
              'not-joined',
              `no heartbeat for ${this.limits.heartbeatTimeoutMs} ms: you were dropped from the session; join again`,
              null,
            );
            out.effects.push({ kind: 'close', conn, code: 4000, reason: 'heartbeat timeout' });
          }
        }
      }
      this.watchRequest(session, nowMs, out, stalled);
      if (
        session.peers.size === 0 &&
        session.hostConns.size === 0 &&
        nowMs - session.lastActivityMs > this.limits.sessionIdleMs
      )
        this.deleteSession(session, out);
      else if (session.rosterDirty) this.broadcastRoster(session, out, nowMs);
    }
    this.joinLimiter.sweep(nowMs);
    this.profileLimiter.sweep(nowMs);
    return out.effects;
  }

  /** The socket answered a ping: its device is reachable (failover liveness; see `lossTimeoutMs`). */
  pong(conn: ConnId, nowMs: number): void {
    const bound = this.conns.get(conn)?.peer;
    const peer = bound ? this.sessions.get(bound.code)?.peers.get(bound.peerId) : undefined;
    peer?.liveness.signal(nowMs);
  }

  /**
   * Sockets of every page in a session: the gateway pings these every request heartbeat, so each device's
   * gaps between signs of life are known before it runs a stage (liveness.ts).
   */
  peerConns(): ConnId[] {
    const conns: ConnId[] = [];
    for (const session of this.sessions.values())
      for (const peer of session.peers.values()) if (peer.conn !== null) conns.push(peer.conn);
    return conns;
  }

  // ---- messages ---------------------------------------------------------------------------

  handle(conn: ConnId, msg: ClientMessage, nowMs: number): Effect[] {
    const out = new Outbox();
    const state = this.conns.get(conn);
    if (!state) return out.effects;
    if (state.peer) {
      const peer = this.sessions.get(state.peer.code)?.peers.get(state.peer.peerId);
      if (peer) {
        peer.lastSeenMs = nowMs;
        peer.liveness.signal(nowMs);
      }
    }
    try {
      this.dispatch(conn, state, msg, nowMs, out);
    } catch (error) {
      // A bug must not take the server down or leave other sessions hanging: report it on this connection.
      const detail = error instanceof Error ? error.message : String(error);
      out.refuse(conn, msg, 'internal', `the coordinator failed on '${msg.type}': ${detail}`);
    }
    return out.effects;
  }

  private dispatch(conn: ConnId, state: Conn, msg: ClientMessage, nowMs: number, out: Outbox): void {
    switch (msg.type) {
      case 'create-session': {
        this.onCreateSession(conn, state, msg, nowMs, out);
        return;
      }
      case 'join': {
        this.onJoin(conn, state, msg, nowMs, out);
        return;
      }
      case 'resume': {
        this.onResume(conn, state, msg, nowMs, out);
        return;
      }
      case 'leave': {
        this.onLeave(conn, state, msg, nowMs, out);
        return;
      }
      case 'heartbeat':
        out.send(conn, {
          type: 'heartbeat-ack',
          serverTimeMs: nowMs,
          ...(msg.ref !== undefined ? { ref: msg.ref } : {}),
          ...(msg.clientTimeMs !== undefined ? { clientTimeMs: msg.clientTimeMs } : {}),
        });
        return;
      case 'profile': {
        this.onProfile(conn, state, msg, nowMs, out);
        return;
      }
      case 'plan': {
        this.onPlan(conn, state, msg, nowMs, out);
        return;
      }
      case 'go': {
        this.onGo(conn, state, msg, nowMs, out);
        return;
      }
      case 'stop': {
        this.onStop(conn, state, msg, nowMs, out);
        return;
      }
      case 'cache-status': {
        this.onCacheStatus(conn, state, msg, nowMs, out);
        return;
      }
      case 'report-timings': {
        this.onReportTimings(conn, state, msg, nowMs, out);
        return;
      }
      case 'report-tokens': {
        this.onReportTokens(conn, state, msg, nowMs, out);
        return;
      }
      case 'report-error': {
        this.onReportError(conn, state, msg, nowMs, out);
        return;
      }
      case 'end-session': {
        this.onEndSession(conn, state, msg, nowMs, out);
        return;
      }
      case 'serve-api': {
        this.onServeApi(conn, state, msg, nowMs, out);
        return;
      }
      case 'report-cancelled': {
        this.onReportCancelled(conn, state, msg, out);
        return;
      }
      case 'report-link-lost': {
        this.onReportLinkLost(conn, state, msg, nowMs, out);
        return;
      }
      default:
        return assertNever(msg);
    }
  }

  private onCreateSession(
    conn: ConnId,
    state: Conn,
    msg: ClientMessageOf<'create-session'>,
    nowMs: number,
    out: Outbox,
  ): void {
    if (!this.admitJoin(conn, state, msg, 'too many joins or sessions from your address', nowMs, out)) return;
    const model = this.options.model;
    if (!model) {
      out.refuse(
        conn,
        msg,
        'model-unavailable',
        'the server has no model package: start it with --model <package dir>',
      );
      return;
    }
    if (this.sessions.size >= this.limits.maxSessions) {
      out.refuse(
        conn,
        msg,
        'server-full',
        `the server holds its maximum of ${this.limits.maxSessions} sessions: end an unused session or retry later`,
      );
      return;
    }
    let mine = 0;
    for (const s of this.sessions.values()) if (s.creatorAddress === state.address) mine += 1;
    if (mine >= this.limits.maxSessionsPerAddress) {
      out.refuse(
        conn,
        msg,
        'rate-limited',
        `your address already has ${mine} live sessions (at most ${this.limits.maxSessionsPerAddress}): end one (or let an empty one expire) first`,
      );
      return;
    }
    let code = this.randomCode();
    while (this.sessions.has(code)) code = this.randomCode();
    const session: Session = {
      code,
      name: msg.name ?? `Session ${code}`,
      hostSecret: this.randomSecret(),
      createdAtMs: nowMs,
      lastActivityMs: nowMs,
      peers: new Map(),
      hostConns: new Set([conn]),
      plan: null,
      requests: [],
      nextRequestId: 1,
      planCount: 0,
      planning: null,
      queue: new RequestQueue(this.limits.queueDepth),
      serveApi: false,
      warm: false,
      recentDurationsMs: [],
      creatorAddress: state.address,
      rosterSentMs: -Infinity,
      rosterDirty: false,
    };
    this.sessions.set(code, session);
    state.hostOf.add(code);
    out.send(conn, {
      type: 'session-created',
      code,
      hostSecret: session.hostSecret,
      name: session.name,
      model: this.modelRef(),
      ...(msg.ref !== undefined ? { ref: msg.ref } : {}),
    });
  }

  private onJoin(conn: ConnId, state: Conn, msg: ClientMessageOf<'join'>, nowMs: number, out: Outbox): void {
    if (!this.admitJoin(conn, state, msg, 'too many joins from your address', nowMs, out)) return;
    if (state.peer) {
      out.refuse(
        conn,
        msg,
        'already-joined',
        `this connection is already peer ${state.peer.peerId}: send 'leave' first or open a new connection`,
      );
      return;
    }
    const session = this.sessions.get(msg.code);
    if (!session) {
      out.refuse(conn, msg, 'session-not-found', `no session with code ${msg.code}: check the code with the host`);
      return;
    }
    if (session.peers.size >= this.limits.maxPeersPerSession) {
      out.refuse(conn, msg, 'session-full', `session ${msg.code} already has ${this.limits.maxPeersPerSession} peers`);
      return;
    }
    let peerId = this.randomPeerId();
    while (this.peerIndex.has(peerId)) peerId = this.randomPeerId();
    const peer: Peer = {
      peerId,
      secret: this.randomSecret(),
      displayName: msg.displayName,
      emulated: msg.emulated ?? null,
      joinedAtMs: nowMs,
      lastSeenMs: nowMs,
      liveness: new LivenessWindow(nowMs),
      conn,
      profile: null,
      cachedUnits: [],
      logKey: [...this.options.randomBytes(8)].map((b) => b.toString(16).padStart(2, '0')).join(''),
    };
    session.peers.set(peerId, peer);
    this.peerIndex.set(peerId, session.code);
    this.bindPeer(conn, state, session, peer, nowMs, msg.ref, out);
  }

  private onResume(conn: ConnId, state: Conn, msg: ClientMessageOf<'resume'>, nowMs: number, out: Outbox): void {
    if (!this.admitJoin(conn, state, msg, 'too many joins from your address', nowMs, out)) return;
    if (state.peer) {
      out.refuse(conn, msg, 'already-joined', `this connection is already peer ${state.peer.peerId}`);
      return;
    }
    const session = this.sessions.get(msg.code);
    if (!session) {
      out.refuse(conn, msg, 'session-not-found', `no session with code ${msg.code}: it ended or the code is wrong`);
      return;
    }
    const peer = session.peers.get(msg.peerId);
    if (!peer) {
      out.refuse(
        conn,
        msg,
        'not-joined',
        `peer ${msg.peerId} is not in session ${msg.code} (it left or timed out): join again`,
      );
      return;
    }
    if (!secretsEqual(peer.secret, msg.peerSecret)) {
      out.refuse(conn, msg, 'wrong-secret', 'the peer secret does not match: join again as a new peer');
      return;
    }
    if (peer.conn !== null && peer.conn !== conn) {
      const old = this.conns.get(peer.conn);
      if (old) old.peer = null;
      out.error(peer.conn, 'not-joined', 'this peer resumed on another connection', null);
      out.effects.push({ kind: 'close', conn: peer.conn, code: 4001, reason: 'replaced' });
    }
    peer.conn = conn;
    peer.lastSeenMs = nowMs;
    peer.liveness.signal(nowMs);
    this.bindPeer(conn, state, session, peer, nowMs, msg.ref, out);
  }

  private onLeave(conn: ConnId, state: Conn, msg: ClientMessageOf<'leave'>, nowMs: number, out: Outbox): void {
    const found = this.boundPeer(conn, state, msg.type, msg.ref, out);
    if (!found) return;
    this.removePeer(found.session, found.peer, 'left', nowMs, out);
    out.ack(conn, msg);
  }

  private onProfile(conn: ConnId, state: Conn, msg: ClientMessageOf<'profile'>, nowMs: number, out: Outbox): void {
    const found = this.boundPeer(conn, state, msg.type, msg.ref, out);
    if (!found) return;
    const { session, peer } = found;
    if (!this.profileLimiter.take(peer.peerId, nowMs)) {
      out.refuse(
        conn,
        msg,
        'rate-limited',
        `too many profiles from this page: at most ${this.limits.profileRate.burst} at once, then one per ${Math.round(1 / this.limits.profileRate.perSecond)} s`,
      );
      return;
    }
    peer.profile = msg.profile;
    const logged = omit(msg.profile, 'name');
    out.effects.push({ kind: 'field-log', record: { receivedAtMs: nowMs, pageKey: peer.logKey, profile: logged } });
    out.ack(conn, msg);
    this.broadcastRoster(session, out, nowMs);
  }

  private onPlan(conn: ConnId, state: Conn, msg: ClientMessageOf<'plan'>, nowMs: number, out: Outbox): void {
    const session = this.hostSession(conn, state, msg, nowMs, out);
    if (!session) return;
    const model = this.options.model;
    if (!model) {
      out.refuse(conn, msg, 'model-unavailable', 'the server has no model package');
      return;
    }
    if (this.runningRequest(session)) {
      out.refuse(conn, msg, 'request-active', 'a request is running: wait for it to finish before planning again');
      return;
    }
    if (msg.warm !== undefined) session.warm = msg.warm;
    const refused = this.startPlan(
      session,
      conn,
      msg.ref,
      msg.method ?? 'dp',
      msg.tokens ?? this.defaultTokens,
      msg.memoryModel ?? 'max',
      nowMs,
      out,
    );
    if (refused) out.refuse(conn, msg, refused.code, refused.message);
  }

  /** Asks for a plan (the `plan` effect); returns why not when it cannot. `conn` null: for a queued API request. */
  private startPlan(
    session: Session,
    conn: ConnId | null,
    ref: number | undefined,
    method: PlanMethod,
    tokens: number,
    memoryModel: MemoryModel,
    nowMs: number,
    out: Outbox,
  ): { code: ErrorCode; message: string } | null {
    const model = this.options.model;
    if (!model) return { code: 'model-unavailable', message: 'the server has no model package' };
    const candidates = [...session.peers.values()].filter((p) => p.conn !== null && p.profile !== null);
    if (candidates.length === 0)
      return {
        code: 'no-profiles',
        message: 'no connected peer has reported a profile yet: wait for the pages to finish profiling',
      };
    if (session.planning)
      return { code: 'plan-pending', message: 'a plan is being computed for this session: wait for its plan-ready' };
    const token = this.nextPlanToken++;
    this.pendingPlans.set(token, session.code);
    session.planning = {
      token,
      hostConn: conn,
      ref,
      method,
      tokens,
      memoryModel,
      peerIds: candidates.map((p) => p.peerId),
    };
    session.lastActivityMs = nowMs;
    const profiled = candidates.map((p) => ({ peerId: p.peerId, profile: p.profile as ProfileReport }));
    const calibration = this.calibration.paramsFor(session.code, profiled);
    out.effects.push({
      kind: 'plan',
      token,
      request: {
        manifest: model,
        candidates: candidates.map((p, i) => ({
          peerId: p.peerId,
          displayName: p.displayName,
          profile: p.profile as ProfileReport,
          calibration: calibration[i],
          cachedUnits: [...p.cachedUnits],
        })),
        tokens,
        method,
        memoryModel,
        spares: this.options.spares ?? true,
      },
    });
    return null;
  }

  /** The planner finished the `plan` effect with this token: publish the plan (or the error). */
  planFinished(token: number, completion: PlanCompletion, nowMs: number): Effect[] {
    const out = new Outbox();
    const code = this.pendingPlans.get(token);
    this.pendingPlans.delete(token);
    const session = code !== undefined ? this.sessions.get(code) : undefined;
    if (!session || session.planning?.token !== token) return out.effects; // the session ended meanwhile
    const pending = session.planning;
    session.planning = null;
    const { hostConn: conn, ref, method, tokens, memoryModel } = pending;
    const refuse = (code: ErrorCode, message: string): Effect[] => {
      if (conn !== null) out.error(conn, code, message, 'plan', ref);
      else this.failQueuedHead(session, code, message, nowMs, out);
      return out.effects;
    };
    if (!completion.ok) {
      if (completion.code === 'plan-infeasible') return refuse('plan-infeasible', completion.message);
      return refuse('internal', `the planner failed (${completion.code}): ${completion.message}`);
    }
    const candidates = pending.peerIds.map((id) => session.peers.get(id));
    if (candidates.some((p) => !p || p.conn === null))
      return refuse('stale-plan', 'a page left or disconnected while the plan was computed: plan again');
    const result = completion.outcome;
    const stages = predictedStages(
      result.stages.map((s) => ({ page: candidates[s.candidate] as Peer, layers: s.layers, times: s })),
    );
    const plan = this.adoptPlan(session, {
      method,
      tokens,
      memoryModel,
      latency: result.latency,
      stages,
      candidatePeerIds: pending.peerIds,
      spares: (result.spares ?? []).map((s) => {
        const peerId = pending.peerIds[s.candidate];
        const stage = stages[s.stageIndex];
        return {
          peerId,
          stageIndex: s.stageIndex,
          layers: stage.layers,
          units: unitsForStage(stage.layers, stage.embeds, stage.hasHead),
          predictedResumeSec: s.predictedResumeSec,
          withoutSparesSec: s.withoutSparesSec,
        };
      }),
    });
    const { planId, excludedPeerIds } = plan;
    session.lastActivityMs = nowMs;
    const planReady: ServerMessage = {
      type: 'plan-ready',
      planId,
      method,
      tokens,
      memoryModel,
      predictedLatency: result.latency,
      stages,
      excludedPeerIds,
      ...(result.whatIf ? { whatIf: result.whatIf } : {}),
      ...(result.calibrated
        ? {
            calibrated: result.calibrated.flatMap((c) =>
              c.params ? [{ peerId: candidates[c.candidate]!.peerId, params: c.params }] : [],
            ),
          }
        : {}),
    };
    out.replyAll(this.sessionConns(session), planReady, conn, ref);
    this.sendAssignments(
      session,
      plan,
      (peer) =>
        peer.profile === null
          ? 'no profile reported before planning'
          : `the ${method} plan is faster without this device`,
      out,
    );
    this.broadcastRoster(session, out, nowMs);
    this.pump(session, nowMs, out);
    this.offerSpares(session, nowMs, out);
    return out.effects;
  }

  /**
   * `spare` to each idle page the session's plan chose to keep a warm copy of a stage, once, while no
   * request runs or waits for a plan (their downloads would compete with the stages' own).
   */
  private offerSpares(session: Session, nowMs: number, out: Outbox): void {
    const plan = session.plan;
    if (!plan || plan.sparesSent || plan.spares.length === 0) return;
    if (this.runningRequest(session) || session.planning || this.isStale(session, plan)) return;
    plan.sparesSent = true;
    for (const { peerId, ...spare } of plan.spares) {
      const conn = session.peers.get(peerId)?.conn;
      if (conn != null) out.send(conn, { type: 'spare', planId: plan.planId, ...spare });
    }
    this.broadcastRoster(session, out, nowMs); // the roster marks the spares
  }

  /** Makes `plan` the session's plan under its next plan id; the session's pages outside it are excluded. */
  private adoptPlan(
    session: Session,
    plan: Omit<Plan, 'planId' | 'excludedPeerIds' | 'stale' | 'spares' | 'sparesSent'> & { spares?: PlanSpare[] },
  ): Plan {
    session.planCount += 1;
    const inPlan = new Set(plan.stages.map((s) => s.peerId));
    const adopted: Plan = {
      planId: `${session.code}-${session.planCount}`,
      method: plan.method,
      tokens: plan.tokens,
      memoryModel: plan.memoryModel,
      latency: plan.latency,
      stages: plan.stages,
      excludedPeerIds: [...session.peers.keys()].filter((id) => !inPlan.has(id)),
      stale: false,
      candidatePeerIds: plan.candidatePeerIds,
      spares: plan.spares ?? [],
      sparesSent: false,
    };
    session.plan = adopted;
    return adopted;
  }

  /** `assignment` to every stage's page of `plan`, `excluded` (with the reason) to the session's other pages. */
  private sendAssignments(session: Session, plan: Plan, excludedReason: (peer: Peer) => string, out: Outbox): void {
    const modelRef = this.modelRef();
    const { stages } = plan;
    const last = stages.length - 1;
    for (const stage of stages) {
      const peer = session.peers.get(stage.peerId);
      if (!peer || peer.conn === null) continue;
      out.send(peer.conn, {
        type: 'assignment',
        planId: plan.planId,
        method: plan.method,
        tokens: plan.tokens,
        memoryModel: plan.memoryModel,
        model: modelRef,
        stageIndex: stage.stageIndex,
        stageCount: stages.length,
        layers: stage.layers,
        embeds: stage.embeds,
        hasHead: stage.hasHead,
        units: unitsForStage(stage.layers, stage.embeds, stage.hasHead),
        predecessorPeerId: stage.stageIndex > 0 ? stages[stage.stageIndex - 1].peerId : null,
        successorPeerId: stage.stageIndex < last ? stages[stage.stageIndex + 1].peerId : null,
        firstPeerId: stages[0].peerId,
        lastPeerId: stages[last].peerId,
        predictedLatency: plan.latency,
        stages,
        ...(session.warm ? { warm: true } : {}),
      });
    }
    for (const peerId of plan.excludedPeerIds) {
      const peer = session.peers.get(peerId);
      if (!peer || peer.conn === null) continue;
      out.send(peer.conn, { type: 'excluded', planId: plan.planId, reason: excludedReason(peer) });
    }
  }

  private onGo(conn: ConnId, state: Conn, msg: ClientMessageOf<'go'>, nowMs: number, out: Outbox): void {
    const session = this.hostSession(conn, state, msg, nowMs, out);
    if (!session) return;
    const entry: QueuedRequest = {
      origin: 'host',
      prompt: msg.prompt,
      promptTokenIds: this.hostPromptIds(msg.prompt),
      maxNewTokens: msg.maxNewTokens,
      sampling: msg.sampling,
      hostConn: conn,
      ref: msg.ref,
      ticket: null,
    };
    // Behind a running or waiting request: wait in line (the start is the reply).
    if (this.runningRequest(session) || session.queue.length > 0) {
      if (session.queue.push(entry) === null) {
        out.refuse(
          conn,
          msg,
          'queue-full',
          `${session.queue.length} requests already wait in this session's queue: wait for one to finish`,
        );
        return;
      }
      return;
    }
    const plan = session.plan;
    if (session.planning) {
      out.refuse(conn, msg, 'plan-pending', 'a plan is being computed: wait for its plan-ready, then go');
      return;
    }
    if (!plan) {
      out.refuse(conn, msg, 'no-plan', "no plan yet: send 'plan' first");
      return;
    }
    if (this.isStale(session, plan)) {
      // Elastic session: the roster changed since the plan; re-plan the same way, then start (the start is the reply).
      session.queue.push(entry);
      const refused = this.replanForGo(session, plan, nowMs, out);
      if (refused) {
        session.queue.shift();
        out.refuse(conn, msg, refused.code, refused.message);
      }
      return;
    }
    this.startRequest(session, plan, entry, nowMs, out);
  }

  /** The host stops a running request: its own or an API client's (which is told `request-stopped`). */
  private onStop(conn: ConnId, state: Conn, msg: ClientMessageOf<'stop'>, nowMs: number, out: Outbox): void {
    const session = this.hostSession(conn, state, msg, nowMs, out);
    if (!session) return;
    const request = session.requests.find((r) => r.requestId === msg.requestId && r.state === 'running');
    if (!request) {
      out.refuse(
        conn,
        msg,
        'unknown-request',
        `request ${msg.requestId} is not running in session ${session.code}: it has ended already, or never started`,
      );
      return;
    }
    out.ack(conn, msg);
    this.cancelRequest(session, request, 'stopped by the host', nowMs, out, {
      code: 'request-stopped',
      message: "the session's host stopped this request",
    });
  }

  /** Ids for a host's prompt (see CoordinatorOptions.promptTokenIds); null when the server cannot tokenise. */
  private hostPromptIds(prompt: string): number[] | null {
    const ids = this.options.promptTokenIds?.(prompt) ?? null;
    return ids && ids.length > 0 && ids.length <= MAX_PROMPT_TOKENS ? ids : null;
  }

  /**
   * Whether `plan` no longer matches the session: a planned page left or disconnected, or the connected,
   * profiled pages are not the ones it was made over (a page joined, left or finished profiling).
   */
  private isStale(session: Session, plan: Plan): boolean {
    if (plan.stale) return true;
    if (plan.stages.some((s) => session.peers.get(s.peerId)?.conn == null)) return true;
    const now = [...session.peers.values()].filter((p) => p.conn !== null && p.profile !== null).map((p) => p.peerId);
    const was = new Set(plan.candidatePeerIds);
    return now.length !== was.size || now.some((id) => !was.has(id));
  }

  /** Re-plans with the last plan's method, length and memory model for the go at the queue's head. */
  private replanForGo(
    session: Session,
    plan: Plan,
    nowMs: number,
    out: Outbox,
  ): { code: ErrorCode; message: string } | null {
    return this.startPlan(session, null, undefined, plan.method, plan.tokens, plan.memoryModel, nowMs, out);
  }

  /** Sends `start` for `entry` on `plan` to every connection of the session. */
  private startRequest(session: Session, plan: Plan, entry: QueuedRequest, nowMs: number, out: Outbox): void {
    const requestId = session.nextRequestId++;
    const record: RequestRecord = {
      requestId,
      prompt: entry.prompt,
      promptTokenIds: entry.promptTokenIds,
      maxNewTokens: entry.maxNewTokens,
      sampling: entry.sampling,
      startedAtMs: nowMs,
      state: 'running',
      origin: entry.origin,
      ticket: entry.ticket,
      ...attemptOn(plan, requestId, nowMs),
      everPeerIds: new Set(),
      timings: new Map(),
      heldTimings: new HeldTimings(),
      tokenIds: [],
      text: '',
      errors: [],
      attempt: 0,
      attemptPlans: new Map(),
      lostPeerIds: new Set(),
      recovery: null,
      suspects: new Map(),
      heldFailure: null,
    };
    recordAttempt(record);
    session.requests.push(record);
    while (session.requests.length > this.limits.requestsKept) session.requests.shift();
    session.lastActivityMs = nowMs;
    const start = startMessage(record, entry.maxNewTokens, entry.promptTokenIds, nowMs);
    out.replyAll(this.sessionConns(session), start, entry.hostConn, entry.ref);
    if (entry.ticket !== null)
      out.effects.push({
        kind: 'api',
        event: { type: 'started', ticket: entry.ticket, sessionCode: session.code, requestId },
      });
  }

  /**
   * Starts the next waiting request when the pipeline is free: on the current plan when it can run,
   * else (API requests) after planning for the request's prompt length; a host go without a usable
   * plan gets the error it would have got at once.
   */
  private pump(session: Session, nowMs: number, out: Outbox): void {
    while (!this.runningRequest(session) && !session.planning) {
      const next = session.queue.peek();
      if (!next) return;
      const plan = session.plan;
      if (plan && !this.isStale(session, plan)) {
        session.queue.shift();
        this.startRequest(session, plan, next, nowMs, out);
        return;
      }
      if (next.origin === 'host' && !plan) {
        session.queue.shift();
        if (next.hostConn !== null)
          out.error(next.hostConn, 'no-plan', "no plan yet: send 'plan' first", 'go', next.ref);
        continue;
      }
      // A host's go re-plans as its last plan was made; an API request plans for its prompt's length.
      const refused =
        next.origin === 'host' && plan
          ? this.replanForGo(session, plan, nowMs, out)
          : this.startPlan(
              session,
              null,
              undefined,
              'dp',
              Math.min(MAX_PLAN_TOKENS, Math.max(1, next.promptTokenIds?.length ?? this.defaultTokens)),
              'max',
              nowMs,
              out,
            );
      if (!refused) return;
      this.failQueuedHead(session, refused.code, refused.message, nowMs, out);
    }
  }

  /** The queue's head (waiting for a plan) cannot run: tell its host or the API, try the next. */
  private failQueuedHead(session: Session, code: ErrorCode, message: string, nowMs: number, out: Outbox): void {
    const head = session.queue.shift();
    if (head?.ticket != null) {
      this.apiTickets.delete(head.ticket);
      out.effects.push({ kind: 'api', event: { type: 'failed', ticket: head.ticket, code, message } });
    } else if (head?.hostConn != null) out.error(head.hostConn, code, message, 'go', head.ref);
    this.pump(session, nowMs, out);
  }

  /** A request left the running state: remember its duration, tell the API, start the next one. */
  private requestEnded(
    session: Session,
    request: RequestRecord,
    nowMs: number,
    out: Outbox,
    failure?: { code: string; message: string },
  ): void {
    // the decode phases the ring's pages did not get while it ran (the other connections had them)
    const ring = this.stageConns(session, request.everPeerIds);
    for (const held of request.heldTimings.drain()) out.sendAll(ring, held);
    session.recentDurationsMs.push(nowMs - request.startedAtMs);
    if (session.recentDurationsMs.length > 8) session.recentDurationsMs.shift();
    if (request.ticket !== null) {
      this.apiTickets.delete(request.ticket);
      if (failure) out.effects.push({ kind: 'api', event: { type: 'failed', ticket: request.ticket, ...failure } });
    }
    this.pump(session, nowMs, out);
    this.offerSpares(session, nowMs, out);
  }

  /**
   * Stops a running request on every page: `cancel` to all, an ended output for the views; `failure` is
   * what an API client is told (none when the client itself went away).
   */
  private cancelRequest(
    session: Session,
    request: RequestRecord,
    reason: string,
    nowMs: number,
    out: Outbox,
    failure?: { code: string; message: string },
  ): void {
    request.state = 'cancelled';
    if (request.recovery) this.logFailover(request, 'cancelled', null, nowMs, out);
    // The pages run the current attempt under its wire id.
    const cancel: ServerMessage = { type: 'cancel', requestId: request.wireId, reason };
    const ended = closingOutput(request, 'cancelled');
    for (const to of this.sessionConns(session)) {
      out.send(to, cancel);
      out.send(to, ended);
    }
    this.requestEnded(session, request, nowMs, out, failure);
  }

  private onCacheStatus(
    conn: ConnId,
    state: Conn,
    msg: ClientMessageOf<'cache-status'>,
    nowMs: number,
    out: Outbox,
  ): void {
    const found = this.boundPeer(conn, state, msg.type, msg.ref, out);
    if (!found) return;
    const known = new Set(this.options.model?.units.map((u) => u.id) ?? []);
    const unknown = msg.units.filter((u) => !known.has(u));
    if (unknown.length > 0) {
      out.refuse(
        conn,
        msg,
        'bad-message',
        `units not in package ${this.options.model?.name}: ${unknown.slice(0, 5).join(', ')}`,
      );
      return;
    }
    const units = [...new Set(msg.units)];
    const before = found.peer.cachedUnits;
    const changed = units.length !== before.length || units.some((u, i) => u !== before[i]);
    found.peer.cachedUnits = units;
    out.ack(conn, msg);
    if (changed) this.broadcastRoster(found.session, out, nowMs); // an unchanged status is not news
  }

  private onReportTimings(
    conn: ConnId,
    state: Conn,
    msg: ClientMessageOf<'report-timings'>,
    nowMs: number,
    out: Outbox,
  ): void {
    const found = this.reportingStage(conn, state, msg, out);
    if (!found) return;
    const { peer, session, request } = found;
    // A continuation's timings are relative to its own start: kept apart, under the attempt's id.
    const key = msg.requestId === request.requestId ? peer.peerId : `${peer.peerId}@${msg.requestId}`;
    const kept = request.timings.get(key) ?? [];
    if (kept.length + msg.timings.length > this.limits.timingsPerPeer) {
      out.refuse(
        conn,
        msg,
        'bad-message',
        `at most ${this.limits.timingsPerPeer} timings are kept per peer and request`,
      );
      return;
    }
    kept.push(...msg.timings);
    request.timings.set(key, kept);
    out.ack(conn, msg);
    const timings: ServerMessage = {
      type: 'timings',
      requestId: msg.requestId,
      planId: request.attemptPlans.get(msg.requestId) ?? request.planId,
      peerId: peer.peerId,
      timings: msg.timings,
      ...(msg.clockUncertaintyMs !== undefined ? { clockUncertaintyMs: msg.clockUncertaintyMs } : {}),
    };
    const split = splitRelay(timings, request.state === 'running');
    const ring = this.stageConns(session, request.peerIds);
    for (const to of this.sessionConns(session)) {
      const message = ring.has(to) ? split.ring : split.others;
      if (message) out.send(to, message);
    }
    if (split.held) request.heldTimings.add(split.held);
    this.calibrate(session, request, msg.timings, nowMs, out);
  }

  /** Refits the request's devices from its timings (calibration-store.ts) and tells the session. */
  private calibrate(
    session: Session,
    request: RequestRecord,
    reported: readonly TimingEntry[],
    nowMs: number,
    out: Outbox,
  ): void {
    const plan = session.plan;
    // an interrupted request teaches nothing (loseStages forgot what it had taught)
    if (!plan || plan.planId !== request.planId || request.lostPeerIds.size > 0) return;
    const profiles = new Map<string, ProfileReport>();
    for (const p of session.peers.values()) if (p.profile) profiles.set(p.peerId, p.profile);
    let update;
    try {
      update = this.calibration.onTimings(
        session.code,
        { ...request, tokens: plan.tokens, stages: plan.stages, ended: request.state !== 'running' },
        profiles,
        reported.some((t) => t.step === 0),
      );
    } catch (error: unknown) {
      // a refit that fails costs the session its calibration, never the report it came with
      console.warn(`calibration of request ${request.requestId} failed: ${(error as Error).message}`);
      return;
    }
    if (!update) return;
    out.sendAll(this.sessionConns(session), update.message);
    for (const { peerId, params } of update.fitted) {
      const peer = session.peers.get(peerId);
      if (!peer?.profile) continue;
      const profile = omit(peer.profile, 'name');
      out.effects.push({
        kind: 'field-log',
        record: { receivedAtMs: nowMs, pageKey: peer.logKey, profile, calibration: params },
      });
    }
  }

  private onReportTokens(
    conn: ConnId,
    state: Conn,
    msg: ClientMessageOf<'report-tokens'>,
    nowMs: number,
    out: Outbox,
  ): void {
    const found = this.boundPeer(conn, state, msg.type, msg.ref, out);
    if (!found) return;
    const request = this.requestFor(found.session, msg.requestId, conn, msg.type, msg.ref, out);
    if (!request) return;
    // Tokens of an attempt that was lost (sent before its stage-lost arrived): the continuation redoes them.
    if (msg.requestId !== request.wireId) {
      out.ack(conn, msg);
      return;
    }
    if (found.peer.peerId !== request.lastPeerId) {
      out.refuse(conn, msg, 'not-last-stage', 'only the stage holding the head reports tokens');
      return;
    }
    // A token sampled while the cancel was on its way: expected, not an error; nobody wants it any more.
    if (request.state === 'cancelled') {
      out.ack(conn, msg);
      return;
    }
    if (request.state !== 'running') {
      out.refuse(conn, msg, 'unknown-request', `request ${msg.requestId} already ended (${request.state})`);
      return;
    }
    if (request.tokenIds.length + msg.tokenIds.length > request.maxNewTokens) {
      out.refuse(
        conn,
        msg,
        'bad-message',
        `request ${msg.requestId} allows at most ${request.maxNewTokens} new tokens`,
      );
      return;
    }
    if (request.text.length + msg.text.length > this.limits.textPerRequest) {
      out.refuse(
        conn,
        msg,
        'bad-message',
        `at most ${this.limits.textPerRequest} characters of text are kept per request`,
      );
      return;
    }
    request.tokenIds.push(...msg.tokenIds);
    request.text += msg.text;
    if (msg.done) request.state = msg.finishReason === 'error' ? 'failed' : 'done';
    out.ack(conn, msg);
    let recoveredInMs: number | undefined;
    if (msg.tokenIds.length > 0) {
      request.lastProgressMs = nowMs;
      request.suspects.clear(); // tokens flow: every link of the ring works
      if (request.recovery) {
        recoveredInMs = nowMs - request.recovery.detectedAtMs;
        this.logFailover(request, 'recovered', recoveredInMs, nowMs, out);
      }
    }
    if (msg.done && request.recovery) this.logFailover(request, 'ended', null, nowMs, out);
    // Always the user's request id, and the count over every attempt: one uninterrupted stream.
    const output: ServerMessage = {
      type: 'output',
      requestId: request.requestId,
      tokenIds: msg.tokenIds,
      text: msg.text,
      generated: request.tokenIds.length,
      done: msg.done,
      ...(msg.finishReason !== undefined ? { finishReason: msg.finishReason } : {}),
      ...(recoveredInMs !== undefined ? { recoveredInMs } : {}),
    };
    out.sendAll(this.sessionConns(found.session), output);
    if (request.ticket !== null)
      out.effects.push({
        kind: 'api',
        event: {
          type: 'tokens',
          ticket: request.ticket,
          tokenIds: msg.tokenIds,
          done: msg.done,
          ...(msg.finishReason ? { finishReason: msg.finishReason } : {}),
        },
      });
    if (msg.done) this.requestEnded(found.session, request, nowMs, out);
  }

  private onReportError(
    conn: ConnId,
    state: Conn,
    msg: ClientMessageOf<'report-error'>,
    nowMs: number,
    out: Outbox,
  ): void {
    const found = this.boundPeer(conn, state, msg.type, msg.ref, out);
    if (!found) return;
    // A report is about the reporter's own stage: its request, its units. Nobody can fail another's request.
    let request: RequestRecord | null = null;
    if (msg.requestId !== null) {
      request = this.requestFor(found.session, msg.requestId, conn, msg.type, msg.ref, out);
      if (!request) return;
      // An error of a lost attempt (its pages saw the ring break): the failover already handles it.
      if (msg.requestId !== request.wireId) {
        out.ack(conn, msg);
        return;
      }
      if (!request.peerIds.has(found.peer.peerId)) {
        out.refuse(
          conn,
          msg,
          'not-assigned',
          `you are not a stage of request ${msg.requestId}: report errors of your own stage only`,
        );
        return;
      }
    }
    if (msg.unitId !== undefined) {
      const stage = found.session.plan?.stages.find((s) => s.peerId === found.peer.peerId);
      if (!stage || !unitsForStage(stage.layers, stage.embeds, stage.hasHead).includes(msg.unitId)) {
        out.refuse(
          conn,
          msg,
          'not-assigned',
          `unit ${msg.unitId} is not a unit of your stage: report errors of your own stage only`,
        );
        return;
      }
    }
    if (request) {
      if (request.errors.length < 64)
        request.errors.push({ peerId: found.peer.peerId, code: msg.code, message: msg.message });
      if (request.state === 'running' && LOSS_CONSEQUENCE_CODES.has(msg.code)) {
        // Maybe the echo of a loss the server is about to see: watchRequest fails the request if none comes.
        request.heldFailure ??= {
          peerId: found.peer.peerId,
          wireId: request.wireId,
          code: msg.code,
          message: msg.message,
          detail: `${found.peer.displayName}: ${msg.message}`,
          atMs: nowMs,
        };
        out.ack(conn, msg);
        return;
      }
      if (request.state === 'running') {
        request.state = 'failed';
        this.requestEnded(found.session, request, nowMs, out, {
          code: msg.code,
          message: `${found.peer.displayName}: ${msg.message}`,
        });
      }
    }
    out.ack(conn, msg);
    const report: ServerMessage = {
      type: 'peer-error',
      requestId: msg.requestId,
      peerId: found.peer.peerId,
      code: msg.code,
      message: msg.message,
      ...(msg.unitId !== undefined ? { unitId: msg.unitId } : {}),
    };
    out.sendAll(this.sessionConns(found.session), report);
  }

  private onEndSession(
    conn: ConnId,
    state: Conn,
    msg: ClientMessageOf<'end-session'>,
    nowMs: number,
    out: Outbox,
  ): void {
    const session = this.hostSession(conn, state, msg, nowMs, out);
    if (!session) return;
    const ended: ServerMessage = { type: 'session-ended', reason: 'host-ended' };
    const targets = this.sessionConns(session);
    targets.add(conn);
    for (const to of targets) out.send(to, ended);
    this.deleteSession(session, out);
  }

  private onServeApi(conn: ConnId, state: Conn, msg: ClientMessageOf<'serve-api'>, nowMs: number, out: Outbox): void {
    const session = this.hostSession(conn, state, msg, nowMs, out);
    if (!session) return;
    session.serveApi = msg.serve;
    const serving: ServerMessage = { type: 'api-serving', code: session.code, serve: msg.serve };
    out.replyAll(session.hostConns, serving, conn, msg.ref);
  }

  /**
   * A stage says its channel to `lostPeerId` broke. An accused page whose socket is gone, or that has been
   * silent for over 1.5 request heartbeats, is lost at once. One that still looks alive is suspected: if
   * no token arrives within lossTimeoutMs of the report it is lost (the ring is broken even if both
   * pages still reach the server); a token in that time clears the suspicion.
   */
  private onReportLinkLost(
    conn: ConnId,
    state: Conn,
    msg: ClientMessageOf<'report-link-lost'>,
    nowMs: number,
    out: Outbox,
  ): void {
    const found = this.reportingStage(conn, state, msg, out);
    if (!found) return;
    const { session, peer, request } = found;
    out.ack(conn, msg);
    // About an attempt that is already over, or a page that is not (or no longer) a stage: nothing to do.
    if (request.state !== 'running' || msg.requestId !== request.wireId) return;
    const accusedId = msg.lostPeerId;
    if (!request.peerIds.has(accusedId) || request.lostPeerIds.has(accusedId) || accusedId === peer.peerId) return;
    const accused = session.peers.get(accusedId);
    const silentMs = accused ? nowMs - accused.liveness.lastSignalMs : Infinity;
    if (!accused || accused.conn === null || silentMs > 1.5 * this.limits.requestHeartbeatIntervalMs)
      this.loseStages(session, request, [accusedId], 'link-lost', nowMs, out);
    else if (!request.suspects.has(accusedId)) request.suspects.set(accusedId, nowMs);
  }

  private onReportCancelled(conn: ConnId, state: Conn, msg: ClientMessageOf<'report-cancelled'>, out: Outbox): void {
    const found = this.reportingStage(conn, state, msg, out);
    if (!found) return;
    out.ack(conn, msg);
    const cancelled: ServerMessage = {
      type: 'cancelled',
      requestId: msg.requestId,
      peerId: found.peer.peerId,
      tokensAfterCancel: msg.tokensAfterCancel,
      stepsAfterCancel: msg.stepsAfterCancel,
    };
    out.sendAll(this.sessionConns(found.session), cancelled);
  }

  // ---- failover (docs/failover.md; the planning is in failover.ts) ---------------------------

  /** Called every tick: stages of the running request that went silent, confirmed suspicions, timeouts. */
  private watchRequest(session: Session, nowMs: number, out: Outbox, stalled = false): void {
    const request = this.runningRequest(session);
    if (!request) return;
    const { lossTimeoutMs, stallTimeoutMs, requestHeartbeatIntervalMs } = this.limits;
    const gone: string[] = [];
    const silent: string[] = [];
    let silence: StageLostSilence | undefined;
    for (const id of request.peerIds) {
      if (request.lostPeerIds.has(id)) continue;
      const peer = session.peers.get(id);
      if (!peer || peer.conn === null) {
        gone.push(id);
        continue;
      }
      // Silence counts from the attempt's start: an idle page heartbeats less often before it.
      const since = (ms: number) => nowMs - Math.max(ms, request.attemptStartedAtMs);
      if (stalled) continue;
      // a device seen to answer slowly gets proportionally longer (liveness.ts)
      const silenceLimitMs = peer.liveness.limitMs(lossTimeoutMs, stallTimeoutMs);
      // judged by whichever rule it broke: no sign of life at all, or pongs but no message (a stall)
      const judged =
        since(peer.liveness.lastSignalMs) > silenceLimitMs
          ? { silentMs: since(peer.liveness.lastSignalMs), limitMs: silenceLimitMs, of: 'any' as const }
          : since(peer.lastSeenMs) > stallTimeoutMs
            ? { silentMs: since(peer.lastSeenMs), limitMs: stallTimeoutMs, of: 'messages' as const }
            : null;
      if (judged) {
        silent.push(id);
        if (!silence || judged.silentMs > silence.silentMs) silence = judged;
      }
    }
    if (gone.length > 0) {
      this.loseStages(session, request, gone, 'left', nowMs, out);
      return;
    }
    if (silent.length > 0) {
      this.loseStages(session, request, silent, 'heartbeat', nowMs, out, new Map(), silence);
      return;
    }
    const confirmed = [...request.suspects]
      .filter(([, atMs]) => nowMs - atMs > lossTimeoutMs && request.lastProgressMs < atMs)
      .map(([id]) => id);
    if (confirmed.length > 0) {
      this.loseStages(session, request, confirmed, 'link-lost', nowMs, out);
      return;
    }
    const held = request.heldFailure;
    if (held && nowMs - held.atMs > lossTimeoutMs + requestHeartbeatIntervalMs) {
      // No loss explains the stage's error: it fails the request as any other error does.
      request.state = 'failed';
      const report: ServerMessage = {
        type: 'peer-error',
        requestId: held.wireId,
        peerId: held.peerId,
        code: held.code,
        message: held.message,
      };
      out.sendAll(this.sessionConns(session), report);
      this.requestEnded(session, request, nowMs, out, { code: held.code, message: held.detail });
      return;
    }
    const recovery = request.recovery;
    if (recovery && nowMs > recovery.deadlineMs) {
      const seconds = Math.round((recovery.deadlineMs - recovery.detectedAtMs) / 1000);
      this.failRecovery(
        session,
        request,
        'recovery-timed-out',
        `the repaired pipeline produced no token within ${seconds} s of the loss; the text so far is kept. Check the pages of the repaired plan (a page may be stuck loading) and send the prompt again`,
        recovery.draft,
        'timed-out',
        nowMs,
        out,
      );
    }
  }

  /** Pages that may take over: connected, profiled, not lost during this request (idle roster pages too). */
  private remainingPages(session: Session, request: RequestRecord): RemainingPage[] {
    return [...session.peers.values()]
      .filter((p) => p.conn !== null && p.profile !== null && !request.lostPeerIds.has(p.peerId))
      .map((p) => ({
        peerId: p.peerId,
        displayName: p.displayName,
        profile: p.profile as ProfileReport,
        cachedUnits: p.cachedUnits,
      }));
  }

  /**
   * Stages `lost` of the running request are gone (socket closed, silent, or unreachable from a
   * neighbour): `stage-lost` to everyone, then the repair (`repair`, assignments, the continuation's
   * `start`), or the end of the request saying what would make it recoverable. `logKeys`: field-log
   * keys of lost pages already removed from the session.
   */
  private loseStages(
    session: Session,
    request: RequestRecord,
    lost: string[],
    reason: LossReason,
    nowMs: number,
    out: Outbox,
    logKeys: ReadonlyMap<string, string> = new Map(),
    silence?: StageLostSilence,
  ): void {
    const fresh = lost.filter((id) => request.peerIds.has(id) && !request.lostPeerIds.has(id));
    if (request.state !== 'running' || fresh.length === 0) return;
    for (const id of fresh) request.lostPeerIds.add(id);
    this.calibration.dropRequest(session.code, request.requestId);
    if (request.recovery) this.logFailover(request, 'lost-again', null, nowMs, out);
    request.heldFailure = null;
    request.suspects.clear();
    const stageLost: ServerMessage = {
      type: 'stage-lost',
      requestId: request.requestId,
      lostPeerIds: fresh,
      layers: lostLayers(request.stages, new Set(fresh)),
      reason,
      detectedAtMs: nowMs,
      ...(silence ? { silence } : {}),
    };
    out.sendAll(this.sessionConns(session), stageLost);
    if (session.plan) session.plan.stale = true;

    const n = request.tokenIds.length;
    const promptIds = request.promptTokenIds ?? this.hostPromptIds(request.prompt);
    const history = promptIds ? [...promptIds, ...request.tokenIds] : null;
    const keyOf = (id: string) => session.peers.get(id)?.logKey ?? logKeys.get(id) ?? null;
    const draft: FailoverDraft = {
      event: 'failover',
      attempt: request.attempt + 1,
      reason,
      lostPageKeys: fresh.map(keyOf).filter((k) => k !== null),
      repairPageKeys: [],
      mode: null,
      replayTokens: history?.length ?? n,
      tokensBefore: n,
      predictedResumeSec: null,
    };
    const impossible = (why: string) =>
      this.failRecovery(
        session,
        request,
        'recovery-impossible',
        `a stage was lost after ${n} of ${request.maxNewTokens} tokens and the request cannot continue: ${why}`,
        draft,
        'impossible',
        nowMs,
        out,
      );
    if (n >= request.maxNewTokens) {
      // Every token came (the done flag was all that was missing): nothing to replay, the request is complete.
      request.state = 'done';
      this.writeFailoverRecord(draft, 'ended', null, nowMs, out);
      out.sendAll(this.sessionConns(session), closingOutput(request, 'max-tokens'));
      if (request.ticket !== null)
        out.effects.push({
          kind: 'api',
          event: { type: 'tokens', ticket: request.ticket, tokenIds: [], done: true, finishReason: 'max-tokens' },
        });
      this.requestEnded(session, request, nowMs, out);
      return;
    }
    const model = this.options.model;
    if (!model) {
      impossible('the server has no model package');
      return;
    }
    if (history === null) {
      impossible(
        'the server has no tokenizer for this package, so it cannot replay the prompt; add tokenizer.json (and tokenizer_config.json) to the package and restart the server',
      );
      return;
    }
    if (request.attempt >= this.limits.maxRecoveries) {
      impossible(`it already recovered ${request.attempt} times; send the prompt again on a steadier set of devices`);
      return;
    }
    if (history.length > MAX_PROMPT_TOKENS) {
      impossible(`the history (${history.length} tokens) is longer than a start may carry (${MAX_PROMPT_TOKENS})`);
      return;
    }
    const memoryModel = session.plan?.memoryModel ?? 'max';
    const pages = this.remainingPages(session, request);
    const repaired = planFailover({
      manifest: model,
      memoryModel,
      pages,
      stages: request.stages,
      lostPeerIds: request.lostPeerIds,
      replayTokens: history.length,
    });
    if (!repaired.ok) {
      impossible(repaired.message);
      return;
    }

    // The repaired plan becomes the session's plan (the next go runs on it unless the roster changes).
    const plan = this.adoptPlan(session, {
      method: session.plan?.method ?? 'dp',
      tokens: history.length,
      memoryModel,
      latency: repaired.resumeSec,
      stages: repaired.stages,
      candidatePeerIds: pages.map((p) => p.peerId),
    });
    const { planId } = plan;
    const repair: ServerMessage = {
      type: 'repair',
      requestId: request.requestId,
      planId,
      mode: repaired.mode,
      replayTokens: history.length,
      predictedResumeSec: repaired.resumeSec,
      stages: repaired.stages,
    };
    out.sendAll(this.sessionConns(session), repair);
    this.sendAssignments(
      session,
      plan,
      (peer) =>
        request.lostPeerIds.has(peer.peerId)
          ? `lost during request ${request.requestId}`
          : 'the repaired plan is faster without this device',
      out,
    );

    // The continuation: a fresh wire id, so frames of the lost attempt can never be taken for it.
    request.attempt += 1;
    Object.assign(request, attemptOn(plan, session.nextRequestId++, nowMs));
    recordAttempt(request);
    request.recovery = {
      detectedAtMs: nowMs,
      deadlineMs: nowMs + Math.max(this.limits.recoveryTimeoutMs, 3000 * repaired.resumeSec),
      draft: {
        ...draft,
        mode: repaired.mode,
        repairPageKeys: [...request.peerIds].map(keyOf).filter((k) => k !== null),
        predictedResumeSec: repaired.resumeSec,
      },
    };
    const start = startMessage(request, request.maxNewTokens - n, history, nowMs, {
      of: request.requestId,
      firstIndex: n,
      attempt: request.attempt,
    });
    out.sendAll(this.sessionConns(session), start);
    this.broadcastRoster(session, out, nowMs);
  }

  /** The request cannot go on after a loss: its last output (the text so far stays), then why. */
  private failRecovery(
    session: Session,
    request: RequestRecord,
    code: 'recovery-impossible' | 'recovery-timed-out',
    message: string,
    draft: FailoverDraft,
    outcome: FailoverRecord['outcome'],
    nowMs: number,
    out: Outbox,
  ): void {
    request.state = 'failed';
    request.recovery = null;
    this.writeFailoverRecord(draft, outcome, null, nowMs, out);
    if (request.errors.length < 64) request.errors.push({ peerId: '', code, message });
    const targets = this.sessionConns(session);
    // A continuation that timed out may still be running somewhere: stop it.
    if (code === 'recovery-timed-out')
      for (const to of targets) out.send(to, { type: 'cancel', requestId: request.wireId, reason: message });
    const last = closingOutput(request, 'error');
    const failed: ServerMessage = { type: 'request-failed', requestId: request.requestId, code, message };
    for (const to of targets) {
      out.send(to, last);
      out.send(to, failed);
    }
    this.requestEnded(session, request, nowMs, out, { code, message });
  }

  /** The continuation's wait for its first token ended (`outcome`): one field-log record. */
  private logFailover(
    request: RequestRecord,
    outcome: FailoverRecord['outcome'],
    detectedToResumedMs: number | null,
    nowMs: number,
    out: Outbox,
  ): void {
    if (!request.recovery) return;
    this.writeFailoverRecord(request.recovery.draft, outcome, detectedToResumedMs, nowMs, out);
    request.recovery = null;
  }

  private writeFailoverRecord(
    draft: FailoverDraft,
    outcome: FailoverRecord['outcome'],
    detectedToResumedMs: number | null,
    nowMs: number,
    out: Outbox,
  ): void {
    out.effects.push({ kind: 'field-log', record: { receivedAtMs: nowMs, ...draft, detectedToResumedMs, outcome } });
  }

  // ---- the HTTP API (openai-api.ts) -------------------------------------------------------

  /** Sessions that answer the HTTP API: switched on by their host, or named by --api-session. */
  apiSessions(): ApiSessionInfo[] {
    const model = this.options.model?.name ?? '';
    return [...this.sessions.values()]
      .filter((s) => s.serveApi || s.code === this.options.apiSessionCode)
      .map((s) => ({
        code: s.code,
        model,
        waiting: s.queue.length,
        running: this.runningRequest(s) !== undefined,
        queueDepth: s.queue.depth,
      }));
  }

  /** Queues (or starts) an API request; its progress comes back as `api` effects with the ticket. */
  submitApi(req: ApiSubmission, nowMs: number): { outcome: ApiSubmitOutcome; effects: Effect[] } {
    const out = new Outbox();
    const session = this.sessions.get(req.sessionCode);
    if (!session) return { outcome: { ok: false, code: 'session-not-found' }, effects: out.effects };
    const busy = this.runningRequest(session) !== undefined || session.planning !== null || session.queue.length > 0;
    if (busy && session.queue.full)
      return {
        outcome: {
          ok: false,
          code: 'queue-full',
          retryAfterSeconds: retryAfterSeconds(session.queue.length, session.recentDurationsMs),
        },
        effects: out.effects,
      };
    const ticket = this.nextTicket++;
    this.apiTickets.set(ticket, session.code);
    const entry: QueuedRequest = {
      origin: 'api',
      prompt: req.displayPrompt,
      promptTokenIds: req.promptTokenIds,
      maxNewTokens: req.maxNewTokens,
      sampling: req.sampling,
      hostConn: null,
      ref: undefined,
      ticket,
    };
    // The queue holds the request even when the pipeline is free: pump starts it (or plans for it) at once.
    if (session.queue.push(entry) === null)
      return {
        outcome: {
          ok: false,
          code: 'queue-full',
          retryAfterSeconds: retryAfterSeconds(session.queue.length, session.recentDurationsMs),
        },
        effects: out.effects,
      };
    const position = session.queue.length;
    session.lastActivityMs = nowMs;
    this.pump(session, nowMs, out);
    const started = this.runningRequest(session)?.ticket === ticket;
    return { outcome: { ok: true, ticket, position: started ? 0 : position }, effects: out.effects };
  }

  /** The API client went away (or a stop sequence matched): drop the request from the queue or stop it. */
  cancelApi(ticket: number, reason: string, nowMs: number): Effect[] {
    const out = new Outbox();
    const code = this.apiTickets.get(ticket);
    const session = code !== undefined ? this.sessions.get(code) : undefined;
    this.apiTickets.delete(ticket);
    if (!session) return out.effects;
    if (session.queue.remove((q) => q.ticket === ticket)) {
      this.pump(session, nowMs, out);
      return out.effects;
    }
    const request = session.requests.find((r) => r.ticket === ticket && r.state === 'running');
    if (request) this.cancelRequest(session, request, reason, nowMs, out);
    return out.effects;
  }

  /** Tell every connection of every session that the server stops. */
  shutdown(): Effect[] {
    const out = new Outbox();
    for (const session of this.sessions.values())
      out.sendAll(this.sessionConns(session), { type: 'session-ended', reason: 'server-shutdown' });
    return out.effects;
  }

  // ---- queries (tests, export, PeerJS id check) --------------------------------------------

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Whether a peer id belongs to a live peer (the PeerJS mount only admits these ids). */
  hasPeer(peerId: string): boolean {
    return this.peerIndex.has(peerId);
  }

  /** Whether the connection has joined (or resumed) as a peer or acted as a host. */
  isBound(conn: ConnId): boolean {
    const state = this.conns.get(conn);
    return state !== undefined && (state.peer !== null || state.hostOf.size > 0);
  }

  exportSession(code: string): SessionExport | null {
    const session = this.sessions.get(code);
    if (!session) return null;
    const plan = session.plan ? omit(session.plan, 'stale') : null;
    return {
      code: session.code,
      name: session.name,
      plan,
      requests: session.requests.map((r) => ({
        requestId: r.requestId,
        planId: r.planId,
        state: r.state,
        startedAtMs: r.startedAtMs,
        tokenIds: [...r.tokenIds],
        text: r.text,
        timings: Object.fromEntries(r.timings),
        errors: [...r.errors],
      })),
    };
  }

  /**
   * Whether `hostSecret` is the host secret of session `code` (for HTTP exports). A failure costs the
   * address a join token, as every host credential check does; 'rate-limited' once it has none.
   */
  checkHost(code: string, hostSecret: string, address: string, nowMs: number): 'ok' | 'denied' | 'rate-limited' {
    if (!this.joinLimiter.has(address, nowMs)) return 'rate-limited';
    const session = this.sessions.get(code);
    if (session !== undefined && secretsEqual(session.hostSecret, hostSecret)) return 'ok';
    this.joinLimiter.take(address, nowMs);
    return 'denied';
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** A join or resume costs a token of the address; false (after answering `rate-limited`) when it has none. */
  private admitJoin(
    conn: ConnId,
    state: Conn,
    msg: { type: string; ref?: number },
    tooMany: string,
    nowMs: number,
    out: Outbox,
  ): boolean {
    if (this.joinLimiter.take(state.address, nowMs)) return true;
    out.refuse(conn, msg, 'rate-limited', `${tooMany}: wait a few seconds and retry`);
    return false;
  }

  /** `conn` is now `peer` of `session` (joined or resumed): `joined` to it, the roster to the others. */
  private bindPeer(
    conn: ConnId,
    state: Conn,
    session: Session,
    peer: Peer,
    nowMs: number,
    ref: number | undefined,
    out: Outbox,
  ): void {
    session.lastActivityMs = nowMs;
    state.peer = { code: session.code, peerId: peer.peerId };
    out.send(conn, {
      type: 'joined',
      code: session.code,
      sessionName: session.name,
      peerId: peer.peerId,
      peerSecret: peer.secret,
      model: this.modelRef(),
      peerjs: { ...this.peerjs, token: this.options.peerToken?.(peer.peerId) ?? '' },
      heartbeatIntervalMs: this.limits.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.limits.heartbeatTimeoutMs,
      requestHeartbeatIntervalMs: this.limits.requestHeartbeatIntervalMs,
      serverTimeMs: nowMs,
      roster: this.roster(session),
      ...(ref !== undefined ? { ref } : {}),
    });
    this.broadcastRoster(session, out, nowMs, conn);
  }

  private boundPeer(
    conn: ConnId,
    state: Conn,
    type: string,
    ref: number | undefined,
    out: Outbox,
  ): { session: Session; peer: Peer } | null {
    const bound = state.peer;
    const session = bound ? this.sessions.get(bound.code) : undefined;
    const peer = bound ? session?.peers.get(bound.peerId) : undefined;
    if (!session || !peer) {
      out.error(conn, 'not-joined', `'${type}' needs a joined peer: send 'join' (or 'resume') first`, type, ref);
      return null;
    }
    return { session, peer };
  }

  /**
   * The session a host action is for, or null after answering. "No such session" and "wrong secret"
   * get the same answer (no oracle for live codes), and each failure costs a join token of the address.
   */
  private hostSession(
    conn: ConnId,
    state: Conn,
    msg: { type: string; code: string; hostSecret: string; ref?: number },
    nowMs: number,
    out: Outbox,
  ): Session | null {
    if (!this.joinLimiter.has(state.address, nowMs)) {
      out.refuse(
        conn,
        msg,
        'rate-limited',
        'too many failed host credentials or joins from your address: wait a few seconds and retry',
      );
      return null;
    }
    const session = this.sessions.get(msg.code);
    if (!session || !secretsEqual(session.hostSecret, msg.hostSecret)) {
      this.joinLimiter.take(state.address, nowMs);
      out.refuse(
        conn,
        msg,
        'wrong-secret',
        `no session ${msg.code} with this host secret: only the page that created a session may '${msg.type}'`,
      );
      return null;
    }
    if (!state.hostOf.has(session.code)) {
      state.hostOf.add(session.code);
      session.hostConns.add(conn);
    }
    return session;
  }

  /**
   * A stage's report about request `msg.requestId`: the reporting peer, its session and the request, or
   * null after answering. The peer must have been a stage of one of the request's attempts.
   */
  private reportingStage(
    conn: ConnId,
    state: Conn,
    msg: { type: string; ref?: number; requestId: number },
    out: Outbox,
  ): { session: Session; peer: Peer; request: RequestRecord } | null {
    const found = this.boundPeer(conn, state, msg.type, msg.ref, out);
    if (!found) return null;
    const request = this.requestFor(found.session, msg.requestId, conn, msg.type, msg.ref, out);
    if (!request) return null;
    if (!request.everPeerIds.has(found.peer.peerId)) {
      out.refuse(conn, msg, 'not-assigned', `you are not a stage of request ${msg.requestId}`);
      return null;
    }
    return { ...found, request };
  }

  private requestFor(
    session: Session,
    requestId: number,
    conn: ConnId,
    type: string,
    ref: number | undefined,
    out: Outbox,
  ): RequestRecord | null {
    // The user's id, or the wire id of one of its attempts (each continuation has a fresh one).
    const request = session.requests.find((r) => r.requestId === requestId || r.attemptPlans.has(requestId));
    if (!request)
      out.error(conn, 'unknown-request', `request ${requestId} is not a request of this session`, type, ref);
    return request ?? null;
  }

  private runningRequest(session: Session): RequestRecord | undefined {
    return session.requests.find((r) => r.state === 'running');
  }

  private removePeer(session: Session, peer: Peer, reason: PeerLeftReason, nowMs: number, out: Outbox): void {
    session.peers.delete(peer.peerId);
    this.peerIndex.delete(peer.peerId);
    out.effects.push({ kind: 'peer-gone', peerId: peer.peerId });
    session.lastActivityMs = nowMs;
    if (peer.conn !== null) {
      const state = this.conns.get(peer.conn);
      if (state) state.peer = null;
    }
    if (session.plan?.stages.some((s) => s.peerId === peer.peerId)) session.plan.stale = true;
    out.sendAll(this.sessionConns(session), { type: 'peer-left', peerId: peer.peerId, reason });
    this.broadcastRoster(session, out, nowMs);
    // A stage of the running request left: fail over (docs/failover.md) instead of failing the request.
    const request = this.runningRequest(session);
    if (request?.peerIds.has(peer.peerId))
      this.loseStages(
        session,
        request,
        [peer.peerId],
        reason === 'timed-out' ? 'heartbeat' : 'left',
        nowMs,
        out,
        new Map([[peer.peerId, peer.logKey]]),
      );
  }

  /** Removes the session; API requests still waiting or running are told, and its pages' PeerJS ids retired. */
  private deleteSession(session: Session, out: Outbox): void {
    const tickets = [
      ...session.queue.drain().map((q) => q.ticket),
      ...session.requests.filter((r) => r.state === 'running').map((r) => r.ticket),
    ];
    for (const ticket of tickets) {
      if (ticket === null) continue;
      this.apiTickets.delete(ticket);
      out.effects.push({
        kind: 'api',
        event: { type: 'failed', ticket, code: 'session-ended', message: `session ${session.code} ended` },
      });
    }
    if (session.planning) this.pendingPlans.delete(session.planning.token);
    for (const peer of session.peers.values()) {
      this.peerIndex.delete(peer.peerId);
      out.effects.push({ kind: 'peer-gone', peerId: peer.peerId });
      const state = peer.conn !== null ? this.conns.get(peer.conn) : undefined;
      if (state) state.peer = null;
    }
    for (const conn of session.hostConns) this.conns.get(conn)?.hostOf.delete(session.code);
    this.calibration.dropSession(session.code);
    this.sessions.delete(session.code);
  }

  /** The connections of those of `peerIds` that are connected. */
  private stageConns(session: Session, peerIds: Iterable<string>): Set<ConnId> {
    const conns = new Set<ConnId>();
    for (const id of peerIds) {
      const conn = session.peers.get(id)?.conn;
      if (conn != null) conns.add(conn);
    }
    return conns;
  }

  /** Connections of the session's connected peers and hosts, without duplicates. */
  private sessionConns(session: Session): Set<ConnId> {
    const targets = new Set<ConnId>(session.hostConns);
    for (const peer of session.peers.values()) if (peer.conn !== null) targets.add(peer.conn);
    return targets;
  }

  private roster(session: Session): RosterPeer[] {
    const assigned = new Map(session.plan?.stages.map((s) => [s.peerId, s]) ?? []);
    const spares = new Map(session.plan?.sparesSent ? session.plan.spares.map((s) => [s.peerId, s]) : []);
    return [...session.peers.values()].map((p) => {
      const stage = assigned.get(p.peerId);
      const spare = spares.get(p.peerId);
      return {
        peerId: p.peerId,
        displayName: p.displayName,
        emulated: p.emulated,
        joinedAtMs: p.joinedAtMs,
        connected: p.conn !== null,
        profile: p.profile ? rosterProfile(p.profile) : null,
        cachedUnits: p.cachedUnits,
        assignment: stage ? { stageIndex: stage.stageIndex, layers: stage.layers } : null,
        ...(spare ? { spare: { stageIndex: spare.stageIndex, layers: spare.layers } } : {}),
      };
    });
  }

  /**
   * Sends the roster now if the last one is at least rosterIntervalMs old; otherwise marks it due and
   * `tick` sends the latest state once the interval is over (a few rosters per second at most, however
   * often members change things). `except` (who just got the roster in `joined`) applies to an immediate send.
   */
  private broadcastRoster(session: Session, out: Outbox, nowMs: number, except?: ConnId): void {
    if (nowMs - session.rosterSentMs < this.limits.rosterIntervalMs) {
      session.rosterDirty = true;
      return;
    }
    session.rosterSentMs = nowMs;
    session.rosterDirty = false;
    const message: ServerMessage = {
      type: 'roster',
      code: session.code,
      planId: session.plan?.planId ?? null,
      peers: this.roster(session),
    };
    for (const to of this.sessionConns(session)) if (to !== except) out.send(to, message);
  }

  private modelRef(): ModelRef {
    const name = this.options.model?.name ?? '';
    return { name, manifestUrl: manifestUrl(name) };
  }

  private randomCode(): string {
    const bytes = this.options.randomBytes(JOIN_CODE_LENGTH);
    let code = '';
    for (const b of bytes) code += JOIN_CODE_ALPHABET[b & 31]; // 32 symbols: unbiased
    return code;
  }

  /** 33 random bytes (264 bits), base64url: 44 characters. */
  private randomSecret(): string {
    const bytes = this.options.randomBytes(33);
    let text = '';
    for (let i = 0; i < 33; i += 3) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      text += BASE64URL[(n >> 18) & 63] + BASE64URL[(n >> 12) & 63] + BASE64URL[(n >> 6) & 63] + BASE64URL[n & 63];
    }
    return text;
  }

  /** 'p' + 16 hex digits (64 random bits); letters and digits only, as PeerJS ids require. */
  private randomPeerId(): string {
    const bytes = this.options.randomBytes(8);
    return 'p' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
}
