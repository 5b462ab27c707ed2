/**
 * The worker side of stage-worker-protocol.ts: the page's stage (a StagePeer) and its links (a LinkHub
 * over negotiated frame channels) live in the inference worker, beside the sessions they run. A decode
 * step then goes data channel -> worker -> data channel without waking the main thread, which on a slow
 * device shares one CPU quota with the worker and took ~2 ms per hop in and out of it.
 *
 * The main thread answers what only it has: the PeerJS carrier dials and hands over frame channels, the
 * cache settles the units the worker cannot look up itself (StageHostOptions.unitLookup), the page holds
 * the ring at fault-injection points. Phases and tokens go back in
 * batches (stage-report-queue.ts); a last stage's token text is decoded there.
 */
import { TandemError } from '../../core/errors.ts';
import { SCTP_MAX_MESSAGE_BYTES } from '../../core/frame-codec.ts';
import { LinkHub, type ByteChannel } from '../../core/transport/frame-link.ts';
import { StagePeer } from '../../shards/runtime/stage-peer.ts';
import type { StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import type { UnitEntry } from '../../shards/manifest.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';
import type { UnitStoreLocation } from '../cache/committed-unit.ts';
import { FRAME_CHANNEL_HANDSHAKE_MS, NegotiatedChannel } from '../transport/negotiated-channel.ts';
import { emulatedRuntime } from './emulated-runtime.ts';
import { StageReportQueue } from './stage-report-queue.ts';
import { assertNever, type MessagePort } from './worker-protocol.ts';
import { isStageRequest, type StageReply, type StageRequest } from './stage-worker-protocol.ts';

const trace = (line: string) => console.info(`[tandem] worker links: ${line}`);

type Settle<T> = { resolve: (v: T) => void; reject: (e: TandemError) => void };

function asTandemError(err: unknown): TandemError {
  return err instanceof TandemError
    ? err
    : new TandemError(
        'stage-failed',
        `The stage failed in the inference worker: ${err instanceof Error ? err.message : String(err)}`,
      );
}

/** What the worker's side may do without the main thread. */
export interface StageHostOptions {
  /**
   * Looks up a committed unit in the page's shard cache from here (client/cache/committed-unit.ts);
   * null where the main thread must answer (missing, damaged or older units: its cache settles those).
   */
  unitLookup?: (where: UnitStoreLocation, packageName: string) => (unit: UnitEntry) => Promise<UnitData | null>;
}

export function serveStages(
  port: MessagePort<StageReply, StageRequest>,
  runtimeOf: () => StageRuntime | null,
  opts: StageHostOptions = {},
): void {
  let hub: LinkHub | null = null;
  let nextSeq = 1;
  const dials = new Map<number, Settle<ByteChannel>>();
  const channels = new Map<number, RTCDataChannel>();
  const unitReads = new Map<number, Settle<UnitData>>();
  const holds = new Map<number, () => void>();
  const stages = new Map<number, StagePeer>();
  const reports = new Map<number, StageReportQueue>();

  const post = (m: StageReply, transfer: Transferable[] = []) => port.postMessage(m, transfer);
  const ask = <T>(calls: Map<number, Settle<T>>, make: (seq: number) => StageReply): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const seq = nextSeq++;
      calls.set(seq, { resolve, reject });
      post(make(seq));
    });
  const answer = <T>(calls: Map<number, Settle<T>>, seq: number, outcome: { ok: T } | { err: TandemError }) => {
    const s = calls.get(seq);
    calls.delete(seq);
    if (!s) return;
    if ('ok' in outcome) s.resolve(outcome.ok);
    else s.reject(outcome.err);
  };

  /** The stage's report queue; null once it is disposed (a step that ends after that reports nothing). */
  const reportsOf = (stageId: number): StageReportQueue | null => {
    if (!stages.has(stageId)) return null;
    let q = reports.get(stageId);
    if (!q) {
      q = new StageReportQueue({ send: (batch) => post({ type: 'stage-reports', stageId, ...batch }) });
      reports.set(stageId, q);
    }
    return q;
  };

  /** A frame channel from the carrier: handed to the hub once both ends have it (the handshake). */
  const adopt = (m: Extract<StageRequest, { type: 'link-channel' }>) => {
    const t0 = performance.now();
    const name = `frame channel ${m.key} (${m.direction}, ${m.peerId})`;
    channels.set(m.key, m.channel);
    m.channel.addEventListener('close', () => {
      trace(`${name} closed`);
      if (channels.delete(m.key)) post({ type: 'link-close', key: m.key });
    });
    const channel = new NegotiatedChannel(m.channel, m.peerId, FRAME_CHANNEL_HANDSHAKE_MS);
    channel.ready().then(
      () => {
        trace(`${name} answered in ${(performance.now() - t0).toFixed(0)} ms`);
        if (m.dialSeq !== null) answer(dials, m.dialSeq, { ok: channel });
        else if (hub) hub.acceptIncoming(m.peerId, channel);
        else channel.close();
      },
      (err: unknown) => {
        trace(`${name} failed: ${asTandemError(err).message}`);
        if (m.dialSeq !== null) answer(dials, m.dialSeq, { err: asTandemError(err) });
        if (channels.delete(m.key)) post({ type: 'link-close', key: m.key });
      },
    );
  };

  /** Per cache location and package, its lookup (one IndexedDB connection, not one per stage). */
  const lookups = new Map<string, (unit: UnitEntry) => Promise<UnitData | null>>();
  /** A unit of a stage: looked up here where the page's cache allows it, else the main thread's answer. */
  const readUnit = async (
    create: Extract<StageRequest, { type: 'stage-create' }>,
    stageId: number,
    unitId: string,
  ): Promise<UnitData> => {
    // a failed lookup (storage trouble) is the main thread's to report, as is a unit not found
    const found = await locateUnit(create, unitId).catch(() => null);
    if (found) return found;
    return ask(unitReads, (s) => ({ type: 'unit-read', seq: s, stageId, unitId }));
  };
  /** A committed unit's place in the cache, looked up here; null where only the main thread can tell. */
  const locateUnit = async (
    create: Extract<StageRequest, { type: 'stage-create' }>,
    unitId: string,
  ): Promise<UnitData | null> => {
    const where = create.unitStore;
    const unit = create.manifest.units.find((u) => u.id === unitId);
    if (!where || !opts.unitLookup || !unit) return null;
    const key = JSON.stringify([where.db, where.store, create.manifest.name]);
    let lookup = lookups.get(key);
    if (!lookup) lookups.set(key, (lookup = opts.unitLookup(where, create.manifest.name)));
    return lookup(unit);
  };

  const stageOf = (stageId: number): StagePeer => {
    const s = stages.get(stageId);
    if (!s)
      throw new TandemError('stage-disposed', `Stage ${stageId} is gone from the inference worker; prepare it again.`);
    return s;
  };

  /** Runs a stage call and answers it with stage-done or stage-failed. */
  const serve = (
    seq: number,
    call: () => Promise<Omit<Extract<StageReply, { type: 'stage-done' }>, 'type' | 'seq'>>,
    stageId: number,
  ) => {
    let done: Promise<Omit<Extract<StageReply, { type: 'stage-done' }>, 'type' | 'seq'>>;
    try {
      done = call();
    } catch (err) {
      done = Promise.reject(asTandemError(err));
    }
    done.then(
      (r) => {
        reports.get(stageId)?.flush();
        post({ type: 'stage-done', seq, ...r });
      },
      (err: unknown) => {
        reports.get(stageId)?.flush();
        const e = asTandemError(err);
        post({ type: 'stage-failed', seq, code: e.code, message: e.message });
      },
    );
  };

  const handle = (msg: StageRequest): void => {
    switch (msg.type) {
      case 'links-open': {
        if (hub?.localId === msg.localId) return;
        hub?.close();
        hub = new LinkHub(
          msg.localId,
          (peerId, timeoutMs) => ask(dials, (dialSeq) => ({ type: 'link-dial', dialSeq, peerId, timeoutMs })),
          { maxFrameBytes: SCTP_MAX_MESSAGE_BYTES, trace },
        );
        return;
      }
      case 'links-close':
        hub?.close();
        hub = null;
        return;
      case 'link-channel':
        adopt(msg);
        return;
      case 'link-dial-failed':
        answer(dials, msg.dialSeq, { err: new TandemError(msg.code, msg.message) });
        return;
      case 'link-gone':
        if (channels.has(msg.key)) trace(`the connection under frame channel ${msg.key} closed: ${msg.reason}`);
        channels.get(msg.key)?.close();
        return;
      case 'link-error':
        hub?.reportError(null, new TandemError(msg.code, msg.message));
        return;
      case 'stage-create': {
        const { stageId, seq } = msg;
        serve(
          seq,
          () => {
            const runtime = runtimeOf();
            if (!hub || !runtime)
              throw new TandemError(
                'transport-missing',
                'The inference worker has no links or no runtime yet; re-join the session.',
              );
            stages.set(
              stageId,
              new StagePeer({
                manifest: msg.manifest,
                assignment: msg.assignment,
                transport: hub,
                runtime: emulatedRuntime(runtime, msg.emulation),
                backend: msg.backend,
                ...(msg.loadParts ? { loadParts: msg.loadParts } : {}),
                readUnit: (unitId) => readUnit(msg, stageId, unitId),
                locateUnit: (unitId) => locateUnit(msg, unitId),
                onPhase: (e) => reportsOf(stageId)?.phase(e),
                onToken: (e) => reportsOf(stageId)?.token(e),
                onLinkLost: (peerId, requestId) => post({ type: 'stage-link-lost', stageId, peerId, requestId }),
                onDropped: (kind, requestId, from) => post({ type: 'stage-dropped', stageId, kind, requestId, from }),
                ...(msg.holds
                  ? {
                      beforeStep: (generated: number) =>
                        new Promise<void>((resolve) => {
                          const s = nextSeq++;
                          holds.set(s, resolve);
                          post({ type: 'hold', seq: s, stageId, generated });
                        }),
                    }
                  : {}),
              }),
            );
            return Promise.resolve({});
          },
          stageId,
        );
        return;
      }
      case 'stage-load':
        serve(msg.seq, async () => ({ loaded: await stageOf(msg.stageId).load() }), msg.stageId);
        return;
      case 'stage-prepare-load':
        serve(msg.seq, async () => ({ keptFiles: await stageOf(msg.stageId).prepareLoad() }), msg.stageId);
        return;
      case 'stage-run': {
        const start = msg.start;
        serve(
          msg.seq,
          async () => {
            await stageOf(msg.stageId).run(start);
            return {};
          },
          msg.stageId,
        );
        return;
      }
      case 'stage-cancel':
      case 'stage-stop-for-repair':
        // the held reports first: the main thread counts what a stage did after a cancel reached it
        reports.get(msg.stageId)?.flush();
        if (msg.type === 'stage-cancel') stages.get(msg.stageId)?.cancel(msg.requestId, msg.reason);
        else stages.get(msg.stageId)?.stopForRepair(msg.requestId, msg.reason);
        post({ type: 'stage-cancel-seen', stageId: msg.stageId, requestId: msg.requestId });
        return;
      case 'stage-abort':
        stages.get(msg.stageId)?.abort(msg.reason);
        return;
      case 'stage-relink':
        serve(
          msg.seq,
          () => {
            stageOf(msg.stageId).relink(msg.assignment);
            return Promise.resolve({});
          },
          msg.stageId,
        );
        return;
      case 'stage-dispose':
        serve(
          msg.seq,
          async () => {
            const s = stages.get(msg.stageId);
            stages.delete(msg.stageId);
            await s?.dispose();
            reports.get(msg.stageId)?.flush();
            reports.delete(msg.stageId);
            return {};
          },
          msg.stageId,
        );
        return;
      case 'unit-data':
        answer(unitReads, msg.seq, { ok: msg.data });
        return;
      case 'unit-failed':
        answer(unitReads, msg.seq, { err: new TandemError(msg.code, msg.message) });
        return;
      case 'clock-ping':
        post({ type: 'clock-pong', seq: msg.seq, workerNowMs: performance.now() });
        return;
      case 'hold-done': {
        const release = holds.get(msg.seq);
        holds.delete(msg.seq);
        release?.();
        return;
      }
      default:
        assertNever(msg);
    }
  };

  port.addEventListener('message', (e) => {
    const msg = e.data as StageRequest | { type: string };
    if (isStageRequest(msg)) handle(msg);
  });
}
