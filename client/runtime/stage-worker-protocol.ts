/**
 * Messages between the page's main thread and the stage that runs in its inference worker
 * (stage-worker-host.ts), beside the session calls of worker-protocol.ts on the same worker. The worker
 * owns the stage (its StagePeer, session and KV cache) and its links: frame channels that the main
 * thread's PeerJS carrier creates and transfers at once. So a decode step goes data channel -> worker ->
 * data channel, and the main thread only hears of it (phases, tokens) afterwards. The main thread keeps
 * signaling, the cache, the tokenizer and the token text.
 *
 * `seq` numbers a call of the side that sends it (main: stage calls; worker: dials, unit reads, holds);
 * each call gets exactly one answer with the same seq.
 */
import type { Emulation } from '../profiler/emulation.ts';
import type { UnitStoreLocation } from '../cache/committed-unit.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import type { PhaseEvent, StageAssignment, StartRequest, TokenEvent } from '../../shards/runtime/stage-peer.ts';
import type { LoadPartsPolicy } from '../../shards/runtime/stage-parts.ts';
import type { StageBackend } from '../../shards/runtime/stage-runtime.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';

/**
 * A start as it crosses to the worker, its origin already on the worker's performance.now(): the two
 * threads' clocks tick together but start apart, and their `performance.timeOrigin`s were seen tens of ms
 * off each other, so the main thread measures the difference itself (clock-ping, WorkerStages).
 */
export type WorkerStart = StartRequest;

/** main thread -> worker */
export type StageRequest =
  /** the page's peer id: the worker's link hub (one per registration) */
  | { type: 'links-open'; localId: string }
  | { type: 'links-close' }
  /** a frame channel on an open PeerJS connection; `dialSeq` answers the worker's dial, null: incoming */
  | {
      type: 'link-channel';
      key: number;
      peerId: string;
      direction: 'incoming' | 'outgoing';
      channel: RTCDataChannel;
      dialSeq: number | null;
    }
  | { type: 'link-dial-failed'; dialSeq: number; code: string; message: string }
  /** the PeerJS connection under channel `key` closed */
  | { type: 'link-gone'; key: number; reason: string }
  /** a signaling-level problem, for the stage's transport events */
  | { type: 'link-error'; code: string; message: string }
  | {
      type: 'stage-create';
      stageId: number;
      seq: number;
      manifest: ModelManifest;
      assignment: StageAssignment;
      backend: StageBackend;
      emulation: Emulation | null;
      /** the page holds the ring at fault-injection points (?hold=): ask before every step */
      holds: boolean;
      /** where the worker may look committed units up itself; null: it asks the main thread for each */
      unitStore: UnitStoreLocation | null;
      /** load the stage in parts (the page's profile found a second core for the reads); null: one session */
      loadParts: LoadPartsPolicy | null;
    }
  | { type: 'stage-load'; stageId: number; seq: number }
  /** the stage's units are in the cache: keep their files open for the cold start's read (StagePeer.prepareLoad) */
  | { type: 'stage-prepare-load'; stageId: number; seq: number }
  | { type: 'stage-run'; stageId: number; seq: number; start: WorkerStart }
  | { type: 'stage-cancel'; stageId: number; requestId: number; reason: string }
  | { type: 'stage-stop-for-repair'; stageId: number; requestId: number; reason: string }
  | { type: 'stage-abort'; stageId: number; reason: string }
  | { type: 'stage-relink'; stageId: number; seq: number; assignment: StageAssignment }
  | { type: 'stage-dispose'; stageId: number; seq: number }
  | { type: 'unit-data'; seq: number; data: UnitData }
  | { type: 'unit-failed'; seq: number; code: string; message: string }
  | { type: 'hold-done'; seq: number }
  /** answered at once with clock-pong: the worker's performance.now() */
  | { type: 'clock-ping'; seq: number };

/** worker -> main thread */
export type StageReply =
  | { type: 'link-dial'; dialSeq: number; peerId: string; timeoutMs: number }
  | { type: 'clock-pong'; seq: number; workerNowMs: number }
  /** the worker closed the link on channel `key`: close its PeerJS connection */
  | { type: 'link-close'; key: number }
  /** the stage's phases (ms since the request's origin) and tokens since the last batch (stage-report-queue.ts) */
  | { type: 'stage-reports'; stageId: number; phases: PhaseEvent[]; tokens: TokenEvent[] }
  | { type: 'stage-link-lost'; stageId: number; peerId: string; requestId: number }
  /** the stage has the cancel (or stop) of `requestId`: every report of a step before it went before this */
  | { type: 'stage-cancel-seen'; stageId: number; requestId: number }
  | { type: 'stage-dropped'; stageId: number; kind: string; requestId: number; from: string }
  | { type: 'unit-read'; seq: number; stageId: number; unitId: string }
  | { type: 'hold'; seq: number; stageId: number; generated: number }
  | {
      type: 'stage-done';
      seq: number;
      loaded?: { storageReadMs: number; sessionCreateMs: number };
      /** stage-prepare-load: how many unit files the worker keeps open */
      keptFiles?: number;
    }
  | { type: 'stage-failed'; seq: number; code: string; message: string };

const REQUEST_TYPES: ReadonlySet<string> = new Set<StageRequest['type']>([
  'links-open',
  'links-close',
  'link-channel',
  'link-dial-failed',
  'link-gone',
  'link-error',
  'stage-create',
  'stage-load',
  'stage-prepare-load',
  'stage-run',
  'stage-cancel',
  'stage-stop-for-repair',
  'stage-abort',
  'stage-relink',
  'stage-dispose',
  'unit-data',
  'unit-failed',
  'hold-done',
  'clock-ping',
]);

const REPLY_TYPES: ReadonlySet<string> = new Set<StageReply['type']>([
  'link-dial',
  'clock-pong',
  'link-close',
  'stage-reports',
  'stage-link-lost',
  'stage-cancel-seen',
  'stage-dropped',
  'unit-read',
  'hold',
  'stage-done',
  'stage-failed',
]);

/** Whether a message on the worker is for the stage host (the session calls share the worker's port). */
export function isStageRequest(msg: { type: string }): msg is StageRequest {
  return REQUEST_TYPES.has(msg.type);
}

/** Whether a message from the worker is the stage's (the session calls' replies share the port). */
export function isStageReply(msg: { type: string }): msg is StageReply {
  return REPLY_TYPES.has(msg.type);
}
