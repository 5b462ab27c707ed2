/**
 * Calibration per session (issue 12, item 4): keeps each session's recent requests as calibration
 * samples (planner/calibration-samples.ts) and refits its devices (planner/calibration.ts) from them.
 * Keyed by peer id, for the session's life. Pure state, no I/O: the coordinator calls it when a page
 * reports timings and when it plans, and sends what it returns.
 */
import type { ModelManifest } from '../shards/manifest.ts';
import type {
  CalibratedParams,
  CalibrationPhase,
  PredictedStage,
  ProfileReport,
  ServerMessageOf,
  TimingEntry,
} from '../core/protocol.ts';
import { calibrateDevices, calibratedDevice } from '../planner/calibration.ts';
import { requestSamples, type HopSample, type StageSample } from '../planner/calibration-samples.ts';
import { COMPARED_PHASES, measuredPhases, predictedPhases } from '../planner/phase-comparison.ts';
import type { DeviceProfile, PlanProblem } from '../planner/index.ts';
import { modelConfigFor, profileDevice } from './planning.ts';

/** Requests kept per session (the fit runs over these). */
export const CALIBRATION_REQUESTS_KEPT = 8;
/** A page's first requests, which count only until a later one is measured (see paramsFor). */
export const WARM_UP_REQUESTS = 2;

/** One measured request: its samples with device = index into `peerIds` (its stages' pages, in order). */
interface RequestEntry {
  requestId: number;
  peerIds: string[];
  stages: StageSample[];
  hops: HopSample[];
}

/** What a request of a plan needs to be calibrated from. */
export interface MeasuredRequest {
  requestId: number;
  planId: string;
  /** Prefill length the plan was made for. */
  tokens: number;
  stages: readonly PredictedStage[];
  timings: ReadonlyMap<string, readonly TimingEntry[]>;
  /** Whether the request has ended (its last reports are in). */
  ended: boolean;
}

export interface CalibrationUpdate {
  message: ServerMessageOf<'calibration'>;
  /** Per stage page: its fitted parameters, for the field log (once per page and request, when its prefill is in). */
  fitted: { peerId: string; params: CalibratedParams }[];
}

export class CalibrationStore {
  private readonly sessions = new Map<string, RequestEntry[]>();
  /** `session:request:peer` already written to the field log (one line per page and request). */
  private readonly logged = new Set<string>();

  constructor(private readonly model: ModelManifest | null) {}

  /**
   * The fitted parameters of `peers` (null where a page has no measured request yet), from the session's
   * kept requests. Peers are fitted together: a hop's latency is shared by its two pages. Used by the next
   * plan and by the calibration message.
   */
  paramsFor(
    sessionCode: string,
    peers: readonly { peerId: string; profile: ProfileReport }[],
    exceptRequest?: number,
  ): (CalibratedParams | null)[] {
    const entries = (this.sessions.get(sessionCode) ?? []).filter((e) => e.requestId !== exceptRequest);
    if (entries.length === 0) return peers.map(() => null);
    const index = new Map(peers.map((p, i) => [p.peerId, i]));
    // A page's first requests pay one-off costs later ones do not (runtime compile and V8's tier-up, the
    // tokenizer load): on the lab its first two computed 2-3x slower per layer, and their hand-overs took
    // up to 1.2 s where later ones took 0.02-0.3 s. They count only while nothing later is measured (then
    // the latest of them alone).
    const seen = new Map<string, number[]>();
    for (const e of entries) for (const id of e.peerIds) seen.set(id, [...(seen.get(id) ?? []), e.requestId]);
    const counts = (id: string, requestId: number) => {
      const ids = [...(seen.get(id) ?? [])].sort((a, b) => a - b);
      const settled = ids.slice(WARM_UP_REQUESTS);
      return settled.length > 0 ? settled.includes(requestId) : requestId === ids[ids.length - 1];
    };
    const stages: StageSample[] = [];
    const hops: HopSample[] = [];
    for (const e of entries) {
      const to = (local: number) => (counts(e.peerIds[local], e.requestId) ? index.get(e.peerIds[local]) : undefined);
      for (const s of e.stages) {
        const device = to(s.device);
        if (device !== undefined) stages.push({ ...s, device });
      }
      for (const h of e.hops) {
        const from = to(h.from);
        const dest = to(h.to);
        if (from !== undefined && dest !== undefined) hops.push({ ...h, from, to: dest });
      }
    }
    return calibrateDevices(
      peers.map((p) => profileDevice(p)),
      stages,
      hops,
      peers.map((p) => p.profile.backend),
    );
  }

  /**
   * A page reported timings of `request`: refit when the report completes a prefill or the request has
   * ended (decode-only batches while it runs wait for the end). Returns what to tell the session, or null.
   */
  onTimings(
    sessionCode: string,
    request: MeasuredRequest,
    profiles: ReadonlyMap<string, ProfileReport>,
    reportHasPrefill: boolean,
  ): CalibrationUpdate | null {
    if (!this.model || (!reportHasPrefill && !request.ended)) return null;
    const stages = [...request.stages].sort((a, b) => a.stageIndex - b.stageIndex);
    const peers = stages.map((s) => ({ peerId: s.peerId, profile: profiles.get(s.peerId) }));
    if (peers.some((p) => p.profile === undefined)) return null; // a page left: its profile is gone
    const known = peers as { peerId: string; profile: ProfileReport }[];
    const timings = stages.map((s) => request.timings.get(s.peerId) ?? []);
    const problem = (devices: DeviceProfile[]): PlanProblem => ({
      model: modelConfigFor(this.model!),
      devices,
      tokens: request.tokens,
      embeddingAndHead: true,
    });
    const planStages = stages.map((s, n) => ({ device: n, layers: { start: s.layers.start, end: s.layers.end } }));
    const samples = requestSamples(problem(known.map((p) => profileDevice(p))), planStages, timings, request.requestId);
    const before = this.paramsFor(sessionCode, known, request.requestId);
    const list = (this.sessions.get(sessionCode) ?? []).filter((e) => e.requestId !== request.requestId);
    list.push({ requestId: request.requestId, peerIds: known.map((p) => p.peerId), ...samples });
    while (list.length > CALIBRATION_REQUESTS_KEPT) {
      const dropped = list.shift()!;
      for (const id of dropped.peerIds) this.logged.delete(`${sessionCode}:${dropped.requestId}:${id}`);
    }
    this.sessions.set(sessionCode, list);
    const after = this.paramsFor(sessionCode, known);

    const devicesWith = (params: (CalibratedParams | null)[]) =>
      known.map((p, k) => calibratedDevice(profileDevice(p), params[k]));
    const predicted = predictedPhases(problem(devicesWith(before)), planStages);
    const calibrated = predictedPhases(problem(devicesWith(after)), planStages);
    const measured = measuredPhases(timings);
    const message: ServerMessageOf<'calibration'> = {
      type: 'calibration',
      requestId: request.requestId,
      planId: request.planId,
      stages: stages.map((s, n) => {
        const m = measured[n];
        const phases: CalibrationPhase[] = m
          ? COMPARED_PHASES.map((phase) => ({
              phase,
              predicted: predicted[n][phase],
              measured: m[phase],
              calibrated: calibrated[n][phase],
            }))
          : [];
        return { peerId: s.peerId, displayName: s.displayName, phases, params: after[n] };
      }),
    };
    const fitted = known.flatMap((p, k) => {
      const key = `${sessionCode}:${request.requestId}:${p.peerId}`;
      if (!measured[k] || !after[k] || this.logged.has(key)) return []; // once its prefill is in
      this.logged.add(key);
      return [{ peerId: p.peerId, params: after[k] }];
    });
    return { message, fitted };
  }

  /**
   * Forget what request `requestId` taught (a stage was lost during it: its phases mix holds, repairs and
   * first runs of fresh pages, not the plan's cost). Returns whether it had taught anything.
   */
  dropRequest(sessionCode: string, requestId: number): boolean {
    const list = this.sessions.get(sessionCode);
    const i = list?.findIndex((e) => e.requestId === requestId) ?? -1;
    if (!list || i < 0) return false;
    list.splice(i, 1);
    return true;
  }

  dropSession(sessionCode: string): void {
    this.sessions.delete(sessionCode);
    for (const key of this.logged) if (key.startsWith(`${sessionCode}:`)) this.logged.delete(key);
  }
}
