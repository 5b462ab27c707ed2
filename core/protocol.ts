/**
 * Coordinator protocol: every message between a page (or a driver script) and the access point.
 *
 * Transport: one WebSocket at `/ws`, JSON text frames, one message per frame. Each direction is one
 * discriminated union on `type`; parse incoming data with `parseClientMessage` / `parseServerMessage`
 * and `switch (msg.type)` ending in `assertNever(msg)`.
 *
 * Pure: imports zod only, so the Node server and the browser page share it.
 *
 * Conventions: layer ranges are 0-based half-open `{ start, end }`; units are SI (seconds, bytes,
 * FLOP/s, bytes/s, bit/s) unless a field name says otherwise (`...Ms` = milliseconds).
 *
 * Flow:
 *   host:  create-session -> session-created {code, hostSecret}
 *   page:  join {code} -> joined {peerId, peerSecret, model, roster}; PeerJS id = peerId
 *   page:  profile, cache-status, heartbeat (every heartbeatIntervalMs)  -> roster to everyone
 *   host:  plan {hostSecret} -> plan-ready to everyone, assignment / excluded to each peer; while no
 *          request runs, spare to the idle pages chosen to keep a warm copy of a stage (docs/failover.md)
 *   host:  go {hostSecret, prompt} -> start to every assigned peer at once (same message)
 *   pages: report-timings -> timings to everyone; last stage: report-tokens -> output to everyone
 *   server: a report that completes a stage's prefill (or ends the request) -> calibration to everyone
 *   host:  serve-api {hostSecret, serve} -> api-serving: the session answers the HTTP API (/v1, openai-api.ts)
 *   server: a request of the HTTP API starts like a go (start with origin 'api'); a go while a request
 *          runs waits in the session's queue; cancel -> every page stops, report-cancelled -> cancelled
 *   host:  end-session -> session-ended to everyone
 *   failover (docs/failover.md): a page lost mid-request -> stage-lost to everyone -> repair, assignments,
 *          start {resume} for the continuation (or output done + request-failed when it cannot recover);
 *          pages report a dead neighbour with report-link-lost
 * Authorisation: host actions carry the session code and host secret (so a driver script that is not
 * a peer can run a session); peer actions are bound to the WebSocket that joined (or `resume`d with
 * the peer secret after a reconnect).
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Limits (the server enforces them; the page can use them to validate before sending)

export const PROTOCOL_VERSION = 1;
/** Largest accepted WebSocket message, in bytes (UTF-8). */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_PEERS_PER_SESSION = 32;
export const MAX_PROMPT_CHARS = 16_000;
export const MAX_NEW_TOKENS = 4096;
export const MAX_TIMINGS_PER_REPORT = 2048;
export const MAX_TOKENS_PER_REPORT = 1024;
export const MAX_UNITS_PER_STATUS = 4096;
/** Largest prompt, in tokens, the server may hand the first stage ready-tokenised. */
export const MAX_PROMPT_TOKENS = 131_072;
export const MAX_SWEEP_POINTS = 64;
/** Largest prompt length (tokens) the host may plan for. */
export const MAX_PLAN_TOKENS = 131_072;

/** Join codes: 8 characters of Crockford base32 (no I, L, O, U): 2^40 codes. */
export const JOIN_CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const JOIN_CODE_LENGTH = 8;
export const joinCodeSchema = z
  .string()
  .regex(/^[0-9A-HJKMNP-TV-Z]{8}$/, 'a join code is 8 characters of 0-9 and A-Z without I, L, O, U');
/** Secrets: base64url of random bytes (the server makes 44 characters, 264 bits). */
export const secretSchema = z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'a secret is 16-128 base64url characters');
/** Peer ids double as PeerJS ids: letters and digits only. */
export const peerIdSchema = z.string().regex(/^[A-Za-z0-9]{4,64}$/, 'a peer id is 4-64 letters or digits');
/** Unit ids of the model package: 'embed', 'layer.N', 'head'. */
export const unitIdSchema = z
  .string()
  .regex(/^(embed|head|layer\.(0|[1-9][0-9]{0,4}))$/, "a unit id is 'embed', 'head' or 'layer.N'");

const u32 = z.int().min(0).max(0xffff_ffff);
const shortText = (max: number) => z.string().max(max);
/** Free-text label from a user (display names, session names): printable, trimmed length 1..max. */
const label = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');
/** Client-chosen correlation number, echoed in the direct reply and in any `error` reply. */
const ref = z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional();

export const layerRangeSchema = z
  .strictObject({ start: z.int().min(0), end: z.int().min(1) })
  .refine((r) => r.end > r.start, 'a layer range needs end > start (0-based, half-open)');
export type LayerRangeWire = z.infer<typeof layerRangeSchema>;

// ---------------------------------------------------------------------------------------------
// Device profile reported by a page

export const backendSchema = z.enum(['webgpu', 'wasm']);
export type Backend = z.infer<typeof backendSchema>;

/** One point of the matmul workload sweep: the size it ran at and the achieved FLOP/s. */
export const sweepPointSchema = z
  .strictObject({
    /** Rows of the activation (sequence length in tokens) of the benchmarked matmul. */
    tokens: z
      .int()
      .min(1)
      .max(1 << 20)
      .optional(),
    /** Square matmul size N (N x N @ N x N) when the sweep varies size instead of tokens. */
    size: z
      .int()
      .min(1)
      .max(1 << 16)
      .optional(),
    /** Achieved throughput, FLOP/s. */
    flops: z.number().min(0).max(1e17),
  })
  .refine((p) => p.tokens !== undefined || p.size !== undefined, 'a sweep point needs tokens or size');
export type SweepPoint = z.infer<typeof sweepPointSchema>;

export const gpuInfoSchema = z.strictObject({
  vendor: shortText(128),
  architecture: shortText(128),
  device: shortText(128),
  description: shortText(256),
  isFallbackAdapter: z.boolean(),
  /** GPUSupportedLimits as plain numbers (maxBufferSize, maxStorageBufferBindingSize, ...). */
  limits: z
    .record(z.string().max(64), z.number().min(0))
    .refine((r) => Object.keys(r).length <= 64, 'at most 64 limits'),
  features: z.array(z.string().max(64)).max(64),
});
export type GpuInfo = z.infer<typeof gpuInfoSchema>;

export const profileReportSchema = z.strictObject({
  /** Device name shown in the UI (e.g. 'Pixel 8' or the display name). */
  name: label(80),
  userAgent: shortText(512),
  /** The backend the stage will run on. */
  backend: backendSchema,
  /** Label of an emulated device class (throttled test page), or null for a real measurement. */
  emulated: label(64).nullable(),
  /** Peak compute c*, FLOP/s (1 MFLOP/s .. 10 PFLOP/s). */
  peakFlops: z.number().min(1e6).max(1e16),
  /** Utilisation curve U(t) = utilA (1 - exp(-utilB t)), t in tokens; utilA in (0, 1]. */
  utilA: z.number().gt(0).max(1),
  /** Rate of the utilisation curve, 1/tokens. */
  utilB: z.number().gt(0).max(10),
  /** RMS error of the U(t) fit, relative (0 = exact). */
  fitRmsError: z.number().min(0).max(100),
  sweep: z.array(sweepPointSchema).max(MAX_SWEEP_POINTS),
  /** Storage read speed, bytes/s (1 KB/s .. 1 TB/s). */
  readBytesPerSec: z.number().min(1e3).max(1e12),
  /** Link to the AP, bit/s (1 kbit/s .. 1 Tbit/s). */
  uplinkBitsPerSec: z.number().min(1e3).max(1e12),
  downlinkBitsPerSec: z.number().min(1e3).max(1e12),
  /** Memory the page may use for its stage, bytes (1 MiB .. 4 TiB). */
  memoryBytes: z
    .number()
    .min(2 ** 20)
    .max(2 ** 42),
  /** WebGPU adapter details, null when WebGPU is unavailable. */
  gpu: gpuInfoSchema.nullable(),
  // Browser terms of the cost model (docs/cost-model.md [B1]-[B3]), seconds; absent = 0.
  /** Fixed session-creation time per stage (the per-byte part is in readBytesPerSec). */
  sessionCreateFixedSec: z.number().min(0).max(600).optional(),
  /** Runtime warm-up the stage will still pay (0 when the page's runtime is already warm). */
  warmupSec: z.number().min(0).max(600).optional(),
  /** One-way latency of the page's link, seconds; a hop between two pages costs both. */
  linkLatencySec: z.number().min(0).max(60).optional(),
});
export type ProfileReport = z.infer<typeof profileReportSchema>;

// ---------------------------------------------------------------------------------------------
// Shared pieces

export const planMethodSchema = z.enum(['dp', 'even', 'heuristic', 'single']);
export type PlanMethod = z.infer<typeof planMethodSchema>;
export const memoryModelSchema = z.enum(['max', 'sum']);
export type MemoryModel = z.infer<typeof memoryModelSchema>;

export const samplingSchema = z.strictObject({
  /** 0 = greedy. */
  temperature: z.number().min(0).max(10),
  /** 0 = no top-k cut. */
  topK: z.int().min(0).max(1_000_000),
  /** 1 = no nucleus cut. */
  topP: z.number().gt(0).max(1),
  seed: u32,
});
export type Sampling = z.infer<typeof samplingSchema>;

export const timingPhaseSchema = z.enum([
  'storage-read',
  'session-create',
  'wait',
  'receive',
  'compute',
  'send',
  'sample',
  // a step's time on a stage, cut in three contiguous parts (docs/protocol.md, core/step-breakdown.ts)
  'ingress',
  'kernel',
  'egress',
]);
export type TimingPhase = z.infer<typeof timingPhaseSchema>;

/** One measured phase; times in ms relative to the request's `start` arrival at that page. */
export const timingEntrySchema = z
  .strictObject({
    phase: timingPhaseSchema,
    /** 0 = prefill, n = n-th decode step. */
    step: z.int().min(0).max(1_000_000),
    startMs: z.number().min(0).max(1e8),
    endMs: z.number().min(0).max(1e8),
  })
  .refine((t) => t.endMs >= t.startMs, 'a timing needs endMs >= startMs');
export type TimingEntry = z.infer<typeof timingEntrySchema>;

export const errorCodeSchema = z
  .string()
  .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'an error code is kebab-case')
  .max(64);

export const modelRefSchema = z.strictObject({
  /** Package name. */
  name: z.string().max(128),
  /** `/models/<name>/manifest.json`, relative to the server origin. */
  manifestUrl: z.string().max(512),
});
export type ModelRef = z.infer<typeof modelRefSchema>;

/** Predicted timeline of one stage (seconds from the request's start, CSGO model). */
export const predictedStageSchema = z.strictObject({
  stageIndex: z.int().min(0),
  peerId: peerIdSchema,
  displayName: z.string(),
  layers: layerRangeSchema,
  embeds: z.boolean(),
  hasHead: z.boolean(),
  load: z.number(),
  wait: z.number(),
  comm: z.number(),
  compute: z.number(),
  startTime: z.number(),
  finishTime: z.number(),
});
export type PredictedStage = z.infer<typeof predictedStageSchema>;

/** A profile as the roster shows it: the figures, without the sweep, GPU details and user agent. */
export const rosterProfileSchema = profileReportSchema.omit({ userAgent: true, sweep: true, gpu: true });
export type RosterProfile = z.infer<typeof rosterProfileSchema>;

export const rosterPeerSchema = z.strictObject({
  peerId: peerIdSchema,
  displayName: z.string(),
  emulated: z.string().nullable(),
  /** Server time (ms since epoch) of the join. */
  joinedAtMs: z.number(),
  connected: z.boolean(),
  profile: rosterProfileSchema.nullable(),
  /** Unit ids the page reported holding (verified) in its cache. */
  cachedUnits: z.array(z.string()),
  /** The peer's stage in the current plan, null when unassigned / excluded / no plan. */
  assignment: z.strictObject({ stageIndex: z.int(), layers: layerRangeSchema }).nullable(),
  /** Outside the plan: the stage of the current plan it was told to keep a warm copy of (`spare`). */
  spare: z.strictObject({ stageIndex: z.int(), layers: layerRangeSchema }).optional(),
});
export type RosterPeer = z.infer<typeof rosterPeerSchema>;

/**
 * A device's cost parameters refitted from what its page measured over its recent requests (planner/
 * calibration.ts; SI units). The next plan uses them in place of the profile's figures.
 */
export const calibratedParamsSchema = z.strictObject({
  /** Prefill stage samples (requests) the fit used. */
  samples: z.int().min(0),
  /** Measured effective compute / the profile's c*(t) U(t): multiplies the peak compute. */
  computeScale: z.number().gt(0),
  readBytesPerSec: z.number().gt(0),
  sessionCreateBytesPerSec: z.number().gt(0),
  sessionCreateFixedSec: z.number().min(0),
  /** Seconds from the request's arrival to the first storage read (runtime warm-up, tokenizer). */
  warmupSec: z.number().min(0),
  /** One-way latency of the page's link; a hop costs the sender's plus the receiver's. */
  linkLatencySec: z.number().min(0),
  /** Fitted when the page sent hand-overs of different sizes; null keeps the profile's. */
  uplinkBitsPerSec: z.number().gt(0).nullable(),
  /** Effective FLOP/s of one decode step (head and sampling included); null before any decode step. */
  decodeFlopsPerSec: z.number().gt(0).nullable(),
});
export type CalibratedParams = z.infer<typeof calibratedParamsSchema>;

/** One plan method's prediction on the current roster (the host's what-if panel). */
export const whatIfEntrySchema = z.strictObject({
  method: planMethodSchema,
  /** Predicted time to the first token T, seconds; null when the method has no plan here. */
  predictedLatency: z.number().nullable(),
  /** Predicted decode tokens/s after the first token; null without a plan. */
  tokensPerSec: z.number().nullable(),
  stageCount: z.int().min(0),
  /** Why there is no plan (e.g. memory), when there is none. */
  reason: z.string().optional(),
});
export type WhatIfEntry = z.infer<typeof whatIfEntrySchema>;

/** One phase of one stage: what the plan predicted, what the page measured, what the refitted model says. */
export const calibrationPhaseSchema = z.strictObject({
  phase: z.enum(['warm-up', 'storage-read', 'session-create', 'comm', 'compute', 'finish']),
  /** Seconds; null when the plan has no such prediction. */
  predicted: z.number().nullable(),
  measured: z.number(),
  /** The same phase under the refitted parameters (after this request). */
  calibrated: z.number(),
});
export type CalibrationPhase = z.infer<typeof calibrationPhaseSchema>;

// ---------------------------------------------------------------------------------------------
// Client -> server

const hostAuth = { code: joinCodeSchema, hostSecret: secretSchema };

export const clientMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('create-session'),
    ref,
    name: label(64).optional(),
  }),
  z.strictObject({
    type: z.literal('join'),
    ref,
    code: joinCodeSchema,
    displayName: label(64),
    /** Label of an emulated device class, null/absent for a real device. */
    emulated: label(64).nullable().optional(),
  }),
  /** Rebind a new WebSocket to an existing peer after a reconnect. */
  z.strictObject({
    type: z.literal('resume'),
    ref,
    code: joinCodeSchema,
    peerId: peerIdSchema,
    peerSecret: secretSchema,
  }),
  z.strictObject({ type: z.literal('leave'), ref }),
  z.strictObject({
    type: z.literal('heartbeat'),
    ref,
    /** page clock, ms since epoch */ clientTimeMs: z.number().optional(),
  }),
  z.strictObject({ type: z.literal('profile'), ref, profile: profileReportSchema }),
  z.strictObject({
    type: z.literal('plan'),
    ref,
    ...hostAuth,
    /** Prompt length in tokens the plan is optimised for (default: the server's, 256). */
    tokens: z.int().min(1).max(MAX_PLAN_TOKENS).optional(),
    method: planMethodSchema.optional(),
    memoryModel: memoryModelSchema.optional(),
    /**
     * Warm mode (default off): every planned page loads its stage (storage read, session) on assignment,
     * so that a request finds it loaded. The session keeps it for later plans until a `plan` says otherwise.
     * The planner still optimises the cold start (the default, the CSGO case).
     */
    warm: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('go'),
    ref,
    ...hostAuth,
    prompt: z.string().min(1).max(MAX_PROMPT_CHARS),
    maxNewTokens: z.int().min(1).max(MAX_NEW_TOKENS),
    sampling: samplingSchema,
  }),
  /**
   * The host stops a running request of its session (`requestId` as its outputs carry it): every page
   * stops, the output ends 'cancelled', an API client gets `request-stopped`, the next queued request starts.
   */
  z.strictObject({ type: z.literal('stop'), ref, ...hostAuth, requestId: u32 }),
  z.strictObject({
    type: z.literal('cache-status'),
    ref,
    /** Every unit id of the session's package the page holds, verified. */
    units: z.array(unitIdSchema).max(MAX_UNITS_PER_STATUS),
  }),
  z.strictObject({
    type: z.literal('report-timings'),
    ref,
    requestId: u32,
    timings: z.array(timingEntrySchema).min(1).max(MAX_TIMINGS_PER_REPORT),
    /**
     * Present when the timings count from the server's send of `start` on the page's clock read through its
     * heartbeat offset (core/clock-offset.ts): the offset's bound, ms. Absent: from the page's own arrival.
     */
    clockUncertaintyMs: z.number().min(0).max(60_000).optional(),
  }),
  z.strictObject({
    type: z.literal('report-tokens'),
    ref,
    requestId: u32,
    /** Token ids generated since the previous report (in order). */
    tokenIds: z
      .array(
        z
          .int()
          .min(0)
          .max(1 << 24),
      )
      .max(MAX_TOKENS_PER_REPORT),
    /** Decoded text of those tokens. */
    text: z.string().max((64 * 1024) / 2),
    /** Total tokens generated so far for this request. */
    generated: z.int().min(0).max(MAX_NEW_TOKENS),
    done: z.boolean(),
    finishReason: z.enum(['eos', 'max-tokens', 'error']).optional(),
  }),
  z.strictObject({
    type: z.literal('report-error'),
    ref,
    /** The request it happened in, null outside a request (e.g. while caching). */
    requestId: u32.nullable(),
    /** Stable code, e.g. 'quota-exceeded', 'shard-hash-mismatch', 'webgpu-unavailable'. */
    code: errorCodeSchema,
    message: z.string().max(2000),
    unitId: unitIdSchema.optional(),
  }),
  z.strictObject({ type: z.literal('end-session'), ref, ...hostAuth }),
  /** Host: whether this session answers the OpenAI-compatible HTTP API (off by default). */
  z.strictObject({ type: z.literal('serve-api'), ref, ...hostAuth, serve: z.boolean() }),
  /** A page stopped a request after the server's `cancel`: how far it got after the cancel arrived. */
  z.strictObject({
    type: z.literal('report-cancelled'),
    ref,
    requestId: u32,
    /** Tokens this page sampled after the cancel arrived (only the last stage samples). */
    tokensAfterCancel: z.int().min(0).max(MAX_NEW_TOKENS),
    /** Compute steps this page started after the cancel arrived. */
    stepsAfterCancel: z.int().min(0).max(MAX_NEW_TOKENS),
  }),
  /**
   * A page's data channel to a ring neighbour closed (or its transport reported the neighbour gone) while
   * request `requestId` ran. The server checks the accused page before declaring it lost (docs/failover.md).
   */
  z.strictObject({
    type: z.literal('report-link-lost'),
    ref,
    /** The request id the page is running (a continuation's fresh id, or the original's). */
    requestId: u32,
    lostPeerId: peerIdSchema,
  }),
]);
export type ClientMessage = z.infer<typeof clientMessageSchema>;
export type ClientMessageType = ClientMessage['type'];
export type ClientMessageOf<T extends ClientMessageType> = Extract<ClientMessage, { type: T }>;
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = clientMessageSchema.options.map(
  (o) => o.shape.type.value,
);

// ---------------------------------------------------------------------------------------------
// Server -> client

/** Why a stage was declared lost during a request. */
export const lossReasonSchema = z.enum(['left', 'heartbeat', 'link-lost']);
export type LossReason = z.infer<typeof lossReasonSchema>;

export const peerLeftReasonSchema = z.enum(['left', 'timed-out', 'replaced']);
export type PeerLeftReason = z.infer<typeof peerLeftReasonSchema>;

/** Stable error codes of the coordinator. */
export const ERROR_CODES = [
  'bad-json', // not JSON text
  'bad-message', // JSON that fails the schema (message lists the fields)
  'unknown-type', // `type` is not a client message type
  'message-too-large', // over MAX_MESSAGE_BYTES
  'binary-not-supported', // binary WebSocket frame
  'rate-limited', // too many joins / sessions from one address
  'server-full', // session limit reached
  'session-full', // peer limit of the session reached
  'session-not-found', // no session with this code
  'wrong-secret', // host or peer secret does not match
  'not-joined', // a peer action on a connection that has not joined
  'already-joined', // join on a connection already bound to a peer
  'no-profiles', // plan with no profiled connected peer
  'plan-infeasible', // the planner found no plan (memory)
  'no-plan', // go before plan
  'plan-pending', // plan or go while a plan is being computed
  'request-active', // plan while a request runs
  'queue-full', // go while the session's request queue is full
  'stale-plan', // peers changed after planning: plan again
  'unknown-request', // report for a request that is not the current one, or a stop for one that does not run
  'request-stopped', // the session's host stopped the request (what an API client gets)
  'not-assigned', // report from a peer outside the plan
  'not-last-stage', // report-tokens from a peer without the head
  'model-unavailable', // the server has no model package
  'recovery-impossible', // a stage was lost mid-request and the remaining pages cannot take over (request-failed)
  'recovery-timed-out', // a continuation after a loss made no progress in time (request-failed)
  'internal', // a server bug: reported, the session stays usable
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const serverMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('session-created'),
    ref,
    code: joinCodeSchema,
    hostSecret: secretSchema,
    name: z.string(),
    model: modelRefSchema,
  }),
  z.strictObject({
    type: z.literal('joined'),
    ref,
    code: joinCodeSchema,
    sessionName: z.string(),
    /** Also this page's PeerJS id. */
    peerId: peerIdSchema,
    peerSecret: secretSchema,
    model: modelRefSchema,
    /**
     * PeerJS server mount on this origin: `new Peer(peerId, {host, port, path, key, token})`. The token
     * is this page's alone: the server admits no PeerJS registration of this id without it.
     */
    peerjs: z.strictObject({ path: z.string(), key: z.string(), token: z.string().max(128) }),
    heartbeatIntervalMs: z.number(),
    heartbeatTimeoutMs: z.number(),
    /**
     * Heartbeat interval while a request runs on this session, ms: a page silent for the server's loss
     * timeout during a request is declared lost for it (docs/failover.md).
     */
    requestHeartbeatIntervalMs: z.number(),
    serverTimeMs: z.number(),
    roster: z.array(rosterPeerSchema),
  }),
  z.strictObject({
    type: z.literal('heartbeat-ack'),
    ref,
    serverTimeMs: z.number(),
    clientTimeMs: z.number().optional(),
  }),
  z.strictObject({ type: z.literal('ack'), ref, of: z.string() }),
  z.strictObject({
    type: z.literal('roster'),
    code: joinCodeSchema,
    planId: z.string().nullable(),
    peers: z.array(rosterPeerSchema),
  }),
  z.strictObject({ type: z.literal('peer-left'), peerId: peerIdSchema, reason: peerLeftReasonSchema }),
  z.strictObject({
    type: z.literal('plan-ready'),
    ref,
    planId: z.string(),
    method: planMethodSchema,
    tokens: z.int(),
    memoryModel: memoryModelSchema,
    predictedLatency: z.number(),
    stages: z.array(predictedStageSchema),
    excludedPeerIds: z.array(peerIdSchema),
    /** Every method's predicted TTFT and tokens/s on the same (calibrated) profiles. */
    whatIf: z.array(whatIfEntrySchema).optional(),
    /** The refitted parameters the plan used, per page measured so far (the others: their profiles). */
    calibrated: z.array(z.strictObject({ peerId: peerIdSchema, params: calibratedParamsSchema })).optional(),
  }),
  z.strictObject({
    type: z.literal('assignment'),
    planId: z.string(),
    method: planMethodSchema,
    tokens: z.int(),
    memoryModel: memoryModelSchema,
    model: modelRefSchema,
    stageIndex: z.int(),
    stageCount: z.int(),
    layers: layerRangeSchema,
    embeds: z.boolean(),
    hasHead: z.boolean(),
    /** Unit ids this stage needs ('embed' if embeds, 'layer.i' for its layers, 'head' if hasHead). */
    units: z.array(unitIdSchema),
    predecessorPeerId: peerIdSchema.nullable(),
    successorPeerId: peerIdSchema.nullable(),
    firstPeerId: peerIdSchema,
    lastPeerId: peerIdSchema,
    /** Predicted latency T, seconds. */
    predictedLatency: z.number(),
    stages: z.array(predictedStageSchema),
    /** Warm mode (the host's `plan.warm`): load the stage now, not at the request's start. */
    warm: z.boolean().optional(),
  }),
  z.strictObject({ type: z.literal('excluded'), planId: z.string(), reason: z.string() }),
  /**
   * Spares (docs/failover.md): this page, outside plan `planId`, keeps a warm copy of stage `stageIndex`'s
   * units in its cache (downloaded and verified like an assignment's, no session), so that a repair after
   * that stage's loss can put it here without a download. Sent while no request runs, after `excluded`;
   * the page answers with `cache-status` once the units are in.
   */
  z.strictObject({
    type: z.literal('spare'),
    planId: z.string(),
    stageIndex: z.int().min(0),
    layers: layerRangeSchema,
    /** Unit ids to download ('embed' if the stage embeds, 'layer.i' for its layers, 'head' if it has the head). */
    units: z.array(unitIdSchema).min(1).max(MAX_UNITS_PER_STATUS),
    /** Predicted seconds from that stage's loss to the next token with this copy, and without any spare. */
    predictedResumeSec: z.number().min(0),
    withoutSparesSec: z.number().min(0),
  }),
  z.strictObject({
    type: z.literal('start'),
    /** Only on the copy sent to the host connection that sent `go`. */
    ref,
    requestId: u32,
    planId: z.string(),
    prompt: z.string(),
    maxNewTokens: z.int(),
    sampling: samplingSchema,
    /** Server clock when the start was sent, ms since epoch. */
    serverTimeMs: z.number(),
    /** Who asked: the host's go or a client of the HTTP API (absent = host). */
    origin: z.enum(['host', 'api']).optional(),
    /**
     * The prompt already rendered through the chat template and tokenised by the server (API requests):
     * the first stage runs these ids as they are; `prompt` is then only for display.
     */
    promptTokenIds: z
      .array(
        z
          .int()
          .min(0)
          .max(1 << 24),
      )
      .min(1)
      .max(MAX_PROMPT_TOKENS)
      .optional(),
    /**
     * Present on a continuation after a loss (docs/failover.md): `promptTokenIds` is then the history
     * (prompt ids + the `firstIndex` tokens generated so far), `maxNewTokens` the remainder, and the last
     * stage numbers its tokens from `firstIndex` (sampling index = firstIndex + i). `requestId` is fresh;
     * the server maps its reports back to request `of`.
     */
    resume: z
      .strictObject({
        /** The user's original request id. */
        of: u32,
        /** Tokens generated before the loss (0-based index of the first token this attempt samples). */
        firstIndex: z.int().min(0).max(MAX_NEW_TOKENS),
        /** 1 for the first continuation of `of`, 2 after a second loss, ... */
        attempt: z.int().min(1).max(1000),
      })
      .optional(),
  }),
  /** Stop request `requestId` on every stage now (its HTTP client went away, or a stop sequence matched). */
  z.strictObject({ type: z.literal('cancel'), requestId: u32, reason: z.string() }),
  /** A page reported that it stopped a cancelled request. */
  z.strictObject({
    type: z.literal('cancelled'),
    requestId: u32,
    peerId: peerIdSchema,
    tokensAfterCancel: z.int(),
    stepsAfterCancel: z.int(),
  }),
  /** Reply to the host's serve-api (and sent to the session's hosts when it changes). */
  z.strictObject({ type: z.literal('api-serving'), ref, code: joinCodeSchema, serve: z.boolean() }),
  z.strictObject({
    type: z.literal('output'),
    requestId: u32,
    tokenIds: z.array(z.int()),
    text: z.string(),
    generated: z.int(),
    done: z.boolean(),
    finishReason: z.enum(['eos', 'max-tokens', 'error', 'cancelled']).optional(),
    /** On the first output after a recovery: ms from the loss's detection to this token (server clock). */
    recoveredInMs: z.number().min(0).optional(),
  }),
  /**
   * A stage of request `requestId` (the user's original id) was lost; sent to every connection of the
   * session. Pages running the request abort their run at once without reporting an error and keep their
   * sessions warm; a `repair` (or a `request-failed`) follows.
   */
  z.strictObject({
    type: z.literal('stage-lost'),
    requestId: u32,
    lostPeerIds: z.array(peerIdSchema).min(1),
    /** The lost stages' layer ranges. */
    layers: z.array(layerRangeSchema),
    /** 'left': socket closed; 'heartbeat': silent for the loss timeout; 'link-lost': a neighbour's report. */
    reason: lossReasonSchema,
    /** Server clock, ms since epoch. */
    detectedAtMs: z.number(),
    /**
     * For 'heartbeat': which silence lost the device ('any': no message and no pong, judged by its own
     * limit, see signaling/liveness.ts; 'messages': pongs but no message, judged by the stall timeout), how
     * long it lasted and the limit, ms; absent for other reasons.
     */
    silence: z
      .strictObject({ of: z.enum(['any', 'messages']), silentMs: z.number().min(0), limitMs: z.number().min(0) })
      .optional(),
  }),
  /**
   * The repaired plan for request `requestId` (original id); `assignment`s for plan `planId` and the
   * continuation's `start` (with `resume`) follow, in that order.
   */
  z.strictObject({
    type: z.literal('repair'),
    requestId: u32,
    planId: z.string(),
    /** 'range': only the lost layers moved; 'whole': the request was re-planned over all remaining pages. */
    mode: z.enum(['range', 'whole']),
    /** Tokens the new pipeline prefills (prompt + generated so far). */
    replayTokens: z.int().min(0),
    /** Predicted seconds from the repair to the next token (loads + prefill of the history). */
    predictedResumeSec: z.number().min(0),
    stages: z.array(predictedStageSchema),
  }),
  /** Request `requestId` (original id) ended in failure; its final `output` (finishReason 'error') came first. */
  z.strictObject({
    type: z.literal('request-failed'),
    requestId: u32,
    code: z.enum(ERROR_CODES),
    /** What happened and what would make it work (e.g. 'add a device with 1.2 GB free'). */
    message: z.string(),
  }),
  z.strictObject({
    type: z.literal('timings'),
    requestId: u32,
    planId: z.string(),
    peerId: peerIdSchema,
    timings: z.array(timingEntrySchema),
    /** The page's `clockUncertaintyMs` (report-timings): its timings are on the server's clock to within it. */
    clockUncertaintyMs: z.number().optional(),
  }),
  /** The server refitted the stages' devices from a request's timings (planner/calibration.ts). */
  z.strictObject({
    type: z.literal('calibration'),
    requestId: u32,
    planId: z.string(),
    stages: z.array(
      z.strictObject({
        peerId: peerIdSchema,
        displayName: z.string(),
        phases: z.array(calibrationPhaseSchema),
        params: calibratedParamsSchema.nullable(),
      }),
    ),
  }),
  z.strictObject({
    type: z.literal('peer-error'),
    requestId: u32.nullable(),
    peerId: peerIdSchema,
    code: z.string(),
    message: z.string(),
    unitId: z.string().optional(),
  }),
  z.strictObject({ type: z.literal('session-ended'), reason: z.enum(['host-ended', 'server-shutdown']) }),
  z.strictObject({
    type: z.literal('error'),
    ref,
    code: z.enum(ERROR_CODES),
    message: z.string(),
    /** The `type` of the offending message when it could be read, else null. */
    inReplyTo: z.string().nullable(),
  }),
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type ServerMessageType = ServerMessage['type'];
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;

// ---------------------------------------------------------------------------------------------
// Parsing helpers

export type ParseResult<T> =
  | { ok: true; message: T }
  /** `ref` is the offending message's ref when it could be read, so the sender can match the error. */
  | { ok: false; code: ErrorCode; message: string; inReplyTo: string | null; ref?: number };

/** Byte length of a string in UTF-8 (without TextEncoder allocation for ASCII-heavy text). */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`)
    .join('; ');
}

function parseWith<S extends z.ZodType>(
  schema: S,
  knownTypes: readonly string[] | null,
  text: string,
): ParseResult<z.infer<S>> {
  if (utf8Length(text) > MAX_MESSAGE_BYTES)
    return {
      ok: false,
      code: 'message-too-large',
      message: `messages are limited to ${MAX_MESSAGE_BYTES} bytes`,
      inReplyTo: null,
    };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad-json', message: 'send one JSON object per WebSocket text frame', inReplyTo: null };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    return {
      ok: false,
      code: 'bad-message',
      message: 'a message is a JSON object with a string `type`',
      inReplyTo: null,
    };
  const type = (data as { type?: unknown }).type;
  if (typeof type !== 'string')
    return { ok: false, code: 'bad-message', message: 'a message needs a string `type`', inReplyTo: null };
  const inReplyTo = type.slice(0, 64);
  const rawRef = (data as { ref?: unknown }).ref;
  const ref = Number.isSafeInteger(rawRef) && (rawRef as number) >= 0 ? { ref: rawRef as number } : {};
  if (knownTypes && !knownTypes.includes(type))
    return {
      ok: false,
      code: 'unknown-type',
      message: `unknown message type '${inReplyTo}'; known: ${knownTypes.join(', ')}`,
      inReplyTo,
      ...ref,
    };
  const result = schema.safeParse(data);
  if (!result.success)
    return {
      ok: false,
      code: 'bad-message',
      message: `invalid '${inReplyTo}': ${describeIssues(result.error)}`,
      inReplyTo,
      ...ref,
    };
  return { ok: true, message: result.data };
}

/** Parse and validate one client -> server frame. */
export function parseClientMessage(text: string): ParseResult<ClientMessage> {
  return parseWith(clientMessageSchema, CLIENT_MESSAGE_TYPES, text);
}

/** Parse and validate one server -> client frame (the page uses this). */
export function parseServerMessage(text: string): ParseResult<ServerMessage> {
  return parseWith(serverMessageSchema, null, text);
}

/** Exhaustiveness check for `switch (msg.type)`. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}

/** Unit ids a stage needs, in package order. */
export function unitsForStage(layers: LayerRangeWire, embeds: boolean, hasHead: boolean): string[] {
  const units: string[] = [];
  if (embeds) units.push('embed');
  for (let l = layers.start; l < layers.end; l++) units.push(`layer.${l}`);
  if (hasHead) units.push('head');
  return units;
}

export function manifestUrl(packageName: string): string {
  return `/models/${encodeURIComponent(packageName)}/manifest.json`;
}
