/**
 * Calibration (issue 12, item 4): refits each device's cost parameters from what its pages measured
 * over its recent requests, so the next plan predicts what the pages will do. Pure.
 *
 * Per device, from its stage samples (calibration-samples.ts):
 *   warm-up      w = median of the time before its first storage read
 *   storage read r = median of P / seconds over stages of at least MIN_RATE_BYTES (through the origin: a
 *                disk or a read cap has no fixed part)
 *   session      f + P_c / s (P_c: P less the embedding, which creation does not prepare): a Theil-Sen
 *                line of the creation seconds vs P_c once OWN_EVIDENCE_MIN
 *                stages of different sizes were measured (intercept within [0, shortest time]); before that,
 *                the session's fixed part (sessionCreateFixedWork: every device's creations on one line, each
 *                scaled by its device's speed), else the profile's, at most half the median time, and the rest
 *                per byte; rates from stages of at least MIN_RATE_BYTES only (with none, the profile's rate and
 *                the median time fixed)
 *   compute      c*_k scaled by the median of the faster half of (W / seconds) / (c*_k U_k(t))   [9]: U(t)'s
 *                shape stays; other work on the device only ever lengthens a compute
 *   decode       the median effective FLOP/s of a decode step (sampling included on the last stage)
 * and per link, from the hand-overs that found their receiver waiting:
 *   uplink       per request, the slope of seconds vs bits of the device's hand-overs (prefill vs decode);
 *                the median of the faster half of those factors of the profile's uplink, padded to
 *                OWN_EVIDENCE_MIN samples with the session's factor (one stalled hand-over no longer sets it)
 *   latency      per request whose hops close its ring, the sum of its pairs' median excess over bits / rate
 *                = 2 x the sum of its devices' lambda (the pages' clock offsets cancel around a ring), solved
 *                for every device by least squares (subsetSumLeastSquares), the profile's value where rings
 *                do not separate devices
 * Medians and Theil-Sen ignore a minority of outlier requests (a page stalled by a long task).
 */
import type { CalibratedParams } from '../core/protocol.ts';
import { effectiveFlops } from './devices.ts';
import { median, subsetSumLeastSquares, theilSen, upperHalfMedian } from './robust-fit.ts';
import type { HopSample, StageSample } from './calibration-samples.ts';
import type { DeviceProfile } from './types.ts';

export type { CalibratedParams };

/** Seconds below this are treated as this (a phase timed at 0 ms would give an infinite rate). */
const MIN_SEC = 1e-4;
/** Sizes must differ by this factor before a line (rate + fixed part) is fitted instead of a ratio. */
const LINE_SPREAD = 1.5;
/**
 * Requests a device needs before its own evidence alone sets a fit that one request can throw far off: a
 * line's intercept (with two points, one slow request sets both the slope and the intercept: on the lab a
 * 2.67 s "fixed" creation part and a 63 MB/s read from one slow calibration request) and its uplink.
 */
export const OWN_EVIDENCE_MIN = 3;
/**
 * Stages smaller than this set no per-byte rate (read, creation): their time is mostly what every read or
 * creation costs whatever its size (opening files, messages, graph set-up). On the tiny model's lab demo a
 * 0.13 MB stage read in 93 ms (1.4 MB/s) set its device's read rate, and the next plan predicted 55 s for
 * a 40 MB stage that read in 2.8 s. Without a larger stage the rate stays the prior's.
 */
export const MIN_RATE_BYTES = 2 ** 20;

/**
 * A rate and a fixed part from (bytes, seconds) samples. A line (Theil-Sen) only over at least
 * OWN_EVIDENCE_MIN points whose sizes differ, its intercept kept within [0, the shortest time measured];
 * otherwise the prior fixed part (at most half the median time). The rate is then the median of
 * bytes / (seconds - fixed), so it matches the samples under the fixed part chosen.
 */
function rateAndFixed(
  points: readonly { x: number; y: number }[],
  prior: { rate: number; fixed: number },
): { rate: number; fixed: number } {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  let fixed = Math.min(prior.fixed, 0.5 * median(ys));
  const spread = Math.max(...xs) >= LINE_SPREAD * Math.min(...xs);
  if (spread && points.length >= OWN_EVIDENCE_MIN) {
    const line = theilSen(points, 1 - 1 / LINE_SPREAD);
    if (line && line.slope > 0) fixed = Math.min(Math.max(0, line.intercept), Math.min(...ys));
  }
  // a small stage's time is mostly what every creation costs whatever its size: it sets no rate, and
  // where no stage was larger, its time is the fixed part
  const sized = points.filter((p) => p.x >= MIN_RATE_BYTES);
  if (!sized.length) return { rate: prior.rate, fixed: median(ys) };
  return { rate: median(sized.map((p) => p.x / Math.max(MIN_SEC, p.y - fixed))), fixed };
}

/** The parameters of one device from its stage samples; null without a usable sample. */
export function fitDeviceStages(
  prior: DeviceProfile,
  stages: readonly StageSample[],
): Omit<CalibratedParams, 'linkLatencySec' | 'uplinkBitsPerSec'> | null {
  const loads = stages.filter((s) => s.load !== null && s.paramBytes > 0);
  const computes = stages.filter((s) => s.computeSec !== null && s.flops > 0);
  if (loads.length === 0 && computes.length === 0) return null;
  const profileLoadRate = prior.readBytesPerSec; // the profile folds read and creation into one rate
  let readBytesPerSec = profileLoadRate;
  let sessionCreateBytesPerSec = prior.sessionCreateBytesPerSec ?? Number.POSITIVE_INFINITY;
  let sessionCreateFixedSec = prior.sessionCreateFixedSec ?? 0;
  let warmupSec = prior.warmupSec ?? 0;
  if (loads.length > 0) {
    // The read through the origin (P / r, what a disk or a read cap does): a line's intercept had to go to
    // the creation's fixed part (the model has no fixed read part), so the two phases were each mispredicted.
    const sized = loads.filter((s) => s.paramBytes >= MIN_RATE_BYTES);
    if (sized.length) readBytesPerSec = median(sized.map((s) => s.paramBytes / Math.max(MIN_SEC, s.load!.readSec)));
    const create = rateAndFixed(
      loads.map((s) => ({ x: s.createBytes, y: s.load!.createSec })),
      { rate: sessionCreateBytesPerSec, fixed: prior.sessionCreateFixedSec ?? 0 },
    );
    sessionCreateBytesPerSec = create.rate;
    sessionCreateFixedSec = create.fixed;
    warmupSec = median(loads.map((s) => s.load!.warmSec));
  }
  // The faster half of the device's computes: on the lab the renderer's thread pools (V8's garbage
  // collection and compilation) took 0-0.45 CPU-seconds of a stage's quota while it computed, most often
  // right after its load; that work only ever lengthens a compute, and a median over 2-4 requests kept it.
  // Replayed on the session-7 lab runs (e2e/calibration-replay.ts) the TTFT errors after calibration fell
  // from 20/28/36/17% and 37/41/47/22% to 20/11/22/2% and 37/41/34/16% (dp/even/heuristic/single).
  const computeScale =
    computes.length > 0
      ? upperHalfMedian(
          computes.map((s) => s.flops / Math.max(MIN_SEC, s.computeSec!) / effectiveFlops(prior, s.tokens)),
        )
      : 1;
  const decodes = stages.filter((s) => s.decode !== null && s.decode.flops > 0);
  const decodeFlopsPerSec = decodes.length
    ? median(decodes.map((s) => s.decode!.flops / Math.max(MIN_SEC, s.decode!.computeSec)))
    : null;
  return {
    samples: Math.max(loads.length, computes.length),
    computeScale,
    readBytesPerSec,
    // an unbounded rate (creation took no time per byte) is kept finite for the wire and JSON
    sessionCreateBytesPerSec: Number.isFinite(sessionCreateBytesPerSec) ? sessionCreateBytesPerSec : 1e12,
    sessionCreateFixedSec,
    warmupSec,
    decodeFlopsPerSec,
  };
}

/**
 * The fixed part of a session creation in FLOP (seconds x the device's calibrated peak FLOP/s), from every
 * device's creations together; null where they do not fit a line (fewer than OWN_EVIDENCE_MIN, sizes within
 * LINE_SPREAD of each other, no rising slope).
 * Why pooled: the bench calibrates from one request, so each device has one creation, and one point sets a
 * rate but no fixed part. With the rate alone, a creation's time was P_c / s: on the paper lab, after an even
 * calibration request (four layers per device) a dp stage of one layer and the embedding was predicted at
 * 0.03 s and created in 0.14 s, one of ten layers at 0.41 s and created in 0.27 s. Creation is CPU work, so
 * scaled by each device's speed the session's creations of different sizes (the head's stage prepares the
 * head too) lie on one line: there, 0.045 core-seconds + P_c / (330 MB/s per core) within 15% for 1 to 10
 * layers, on devices of 0.24 to 0.55 core.
 */
export function sessionCreateFixedWork(stages: readonly StageSample[], speeds: readonly number[]): number | null {
  const points = stages
    .filter((s) => s.load !== null && s.createBytes > 0 && speeds[s.device] > 0)
    .map((s) => ({ x: s.createBytes, y: s.load!.createSec * speeds[s.device] }));
  if (points.length < OWN_EVIDENCE_MIN) return null;
  const xs = points.map((p) => p.x);
  if (Math.max(...xs) < LINE_SPREAD * Math.min(...xs)) return null;
  const line = theilSen(points, 1 - 1 / LINE_SPREAD);
  if (!line || !(line.slope > 0)) return null;
  return Math.min(Math.max(0, line.intercept), Math.min(...points.map((p) => p.y)));
}

/** Per device: its fitted uplink (null: keep the profile's) and link latency. */
export function fitLinks(
  devices: readonly DeviceProfile[],
  hops: readonly HopSample[],
): { uplinkBitsPerSec: (number | null)[]; linkLatencySec: number[] } {
  const K = devices.length;
  // Per ordered pair and request, the slope of seconds vs bits where its hand-overs differ in size (prefill
  // and decode): Theil-Sen over point pairs OF ONE REQUEST only, since each request's hops carry that
  // request's clock offset between the two pages (see the latency below); slopes across requests took the
  // offsets for transfer time (on the lab: a 67 kbit/s uplink, 3.96 s predicted for a 32 KB hand-over
  // measured at 0.04 s). A request has one prefill hand-over per pair, so its slope is one sample of the
  // sender's uplink, kept as a factor of the profile's uplink.
  const byPairRequest = new Map<string, HopSample[]>();
  for (const h of hops) {
    const key = `${h.from}>${h.to}@${h.requestId}`;
    byPairRequest.set(key, [...(byPairRequest.get(key) ?? []), h]);
  }
  const own: number[][] = devices.map(() => []);
  for (const list of byPairRequest.values()) {
    const slopes: number[] = [];
    for (let i = 0; i < list.length; i++)
      for (let j = i + 1; j < list.length; j++) {
        const [small, large] = list[i].bytes <= list[j].bytes ? [list[i], list[j]] : [list[j], list[i]];
        if (large.bytes < 4 * small.bytes) continue; // sizes must differ
        slopes.push((large.seconds - small.seconds) / (8 * (large.bytes - small.bytes)));
      }
    if (slopes.length < 2) continue;
    const slope = median(slopes);
    const from = list[0].from;
    if (slope > 0) own[from].push(1 / slope / devices[from].uplinkBitsPerSec);
  }
  // One request is one sample: a hand-over that met a stalled page (seen: 4 s for 32 KB where 0.04-0.4 s
  // is usual) set the sender's uplink for every later plan. Until a device has OWN_EVIDENCE_MIN samples
  // of its own, the session's median factor (over every device's samples) fills the missing ones, so the
  // median needs a majority of its own samples to move away from it; a device without samples of its
  // own (a last stage sends only 4-byte tokens) takes the session's factor.
  // The faster half, as for compute: a stalled page only ever lengthens a hand-over.
  const pooled = upperHalfMedian(own.flat());
  const hopped = new Set(hops.flatMap((h) => [h.from, h.to]));
  const uplink = devices.map((d, k): number | null => {
    if (!Number.isFinite(pooled) || (own[k].length === 0 && !hopped.has(k))) return null;
    const padded = [...own[k], ...new Array<number>(Math.max(0, OWN_EVIDENCE_MIN - own[k].length)).fill(pooled)];
    return d.uplinkBitsPerSec * upperHalfMedian(padded);
  });
  const rate = (k: number, dir: 'up' | 'down') =>
    dir === 'up' ? (uplink[k] ?? devices[k].uplinkBitsPerSec) : devices[k].downlinkBitsPerSec;
  // A page times its phases from the server's send of the request's start, read through its heartbeat clock
  // offset (off by up to half a heartbeat's round trip), or without one from its own arrival of start; so a
  // hop a -> b (receiver's clock minus sender's) may carry the pages' clock offset o_a - o_b as well as
  // lambda_a + lambda_b: under CPU quotas one page received start up to seconds after another, and per-pair
  // fits took that for latency. The offsets are constant within a request and cancel around its ring (every stage's
  // hand-over and the token's way back): per request whose hops close the ring, the sum of the pairs'
  // median excess over bits / rate is 2 x the sum of its devices' lambda (each device sends once and
  // receives once). Least squares over those sums separates devices wherever requests' rings differ.
  const byRequest = new Map<number, Map<string, { a: number; b: number; excess: number[] }>>();
  for (const h of hops) {
    const pairs = byRequest.get(h.requestId) ?? new Map<string, { a: number; b: number; excess: number[] }>();
    const key = `${h.from}>${h.to}`;
    const entry = pairs.get(key) ?? { a: h.from, b: h.to, excess: [] };
    entry.excess.push(h.seconds - (8 * h.bytes) / Math.min(rate(h.from, 'up'), rate(h.to, 'down')));
    pairs.set(key, entry);
    byRequest.set(h.requestId, pairs);
  }
  const rings = [...byRequest.values()].flatMap((pairs) => {
    const list = [...pairs.values()];
    const senders = new Set(list.map((p) => p.a));
    const receivers = new Set(list.map((p) => p.b));
    const closed =
      list.length >= 2 &&
      senders.size === list.length &&
      receivers.size === list.length &&
      [...senders].every((k) => receivers.has(k));
    if (!closed) return [];
    return [{ members: [...senders], value: list.reduce((sum, p) => sum + median(p.excess), 0) / 2 }];
  });
  const prior = devices.map((d) => d.linkLatencySec ?? 0);
  const latency = rings.length ? subsetSumLeastSquares(K, rings, prior) : prior;
  return { uplinkBitsPerSec: uplink, linkLatencySec: latency.map((l) => Math.max(0, l)) };
}

/**
 * Every device's parameters from the samples of its recent requests (device indices into `devices`);
 * null for a device without samples (the planner keeps its profile). `kinds` (e.g. each device's backend)
 * keeps the session's creation line to devices of one kind: a WebGPU creation uploads the weights to the
 * GPU, a wasm one prepares them on the CPU, and their seconds scaled by peak FLOP/s are not one line.
 */
export function calibrateDevices(
  devices: readonly DeviceProfile[],
  stages: readonly StageSample[],
  hops: readonly HopSample[],
  kinds: readonly string[] = devices.map(() => ''),
): (CalibratedParams | null)[] {
  const links = fitLinks(devices, hops);
  const ownStages = devices.map((_, k) => stages.filter((s) => s.device === k));
  const first = devices.map((d, k) => fitDeviceStages(d, ownStages[k]));
  // each device's speed as calibrated, then per kind the session's creation line in FLOP
  const speeds = devices.map((d, k) => d.peakFlops * (first[k]?.computeScale ?? 1));
  const fixedWorkOf = new Map(
    [...new Set(kinds)].map((kind) => [
      kind,
      sessionCreateFixedWork(
        stages.filter((s) => kinds[s.device] === kind),
        speeds,
      ),
    ]),
  );
  return devices.map((device, k) => {
    const fixedWork = fixedWorkOf.get(kinds[k]) ?? null;
    const d = fixedWork === null ? device : { ...device, sessionCreateFixedSec: fixedWork / speeds[k] };
    const own = fixedWork === null ? first[k] : fitDeviceStages(d, ownStages[k]);
    const hopped = hops.some((h) => h.from === k || h.to === k);
    if (!own && !hopped) return null;
    return {
      samples: own?.samples ?? 0,
      computeScale: own?.computeScale ?? 1,
      readBytesPerSec: own?.readBytesPerSec ?? d.readBytesPerSec,
      sessionCreateBytesPerSec: own?.sessionCreateBytesPerSec ?? d.sessionCreateBytesPerSec ?? 1e12,
      sessionCreateFixedSec: own?.sessionCreateFixedSec ?? d.sessionCreateFixedSec ?? 0,
      warmupSec: own?.warmupSec ?? d.warmupSec ?? 0,
      linkLatencySec: links.linkLatencySec[k],
      uplinkBitsPerSec: links.uplinkBitsPerSec[k],
      decodeFlopsPerSec: own?.decodeFlopsPerSec ?? null,
    };
  });
}

/** The device as the planner sees it once calibrated (the profile where `params` is null). */
export function calibratedDevice(device: DeviceProfile, params: CalibratedParams | null): DeviceProfile {
  if (!params) return device;
  return {
    ...device,
    peakFlops: device.peakFlops * params.computeScale,
    readBytesPerSec: params.readBytesPerSec,
    sessionCreateBytesPerSec: params.sessionCreateBytesPerSec,
    sessionCreateFixedSec: params.sessionCreateFixedSec,
    warmupSec: params.warmupSec,
    linkLatencySec: params.linkLatencySec,
    ...(params.uplinkBitsPerSec !== null ? { uplinkBitsPerSec: params.uplinkBitsPerSec } : {}),
  };
}
