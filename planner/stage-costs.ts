/**
 * Stage costs [19]-[22]: what one contiguous layer range costs on one device (load, compute, memory)
 * and what a hand-over between two devices costs (comm). Built once per problem as a CostTable of
 * per-layer and per-device numbers. These functions sum directly over the layers: they are the
 * reference the timing model uses; the DP keeps its own prefix sums. The paper's terms plus the browser
 * terms [B1]-[B5] of docs/cost-model.md; with those zero it is the paper's model exactly.
 */
import { checkModel, embeddingCost, headCost, layerCost, type UnitCost } from './cost-model.ts';
import { checkDevice, effectiveFlops } from './devices.ts';
import { TandemError } from '../core/errors.ts';
import type { MemoryModel, PlanProblem } from './types.ts';

export interface CostTable {
  L: number; // layers
  K: number; // devices
  tokens: number; // t
  memoryModel: MemoryModel;
  layerFlops: Float64Array; // [L] W_l, FLOP
  layerAct: Float64Array; // [L] A_l, bytes (output activation of layer l)
  layerParams: Float64Array; // [L] P_l, bytes
  embed: UnitCost | null; // extra cost of the first stage, null when embeddingAndHead is off
  head: UnitCost | null; // extra cost of the last stage
  flops: Float64Array; // [K] c_k(t), effective FLOP/s
  memory: Float64Array; // [K] m_k, bytes
  /** [K] bytes of m_k the embedding takes on device k: its stored bytes x extrasMemoryScale (0 when embed is null). */
  embedMemory: Float64Array;
  /** [K] the same for the head. */
  headMemory: Float64Array;
  up: Float64Array; // [K] b^u_k, bit/s
  down: Float64Array; // [K] b^d_k, bit/s
  /** [K * L] seconds to make layer l ready on device k: P_l (1/r_k + 1/s_k), plus P_l / g_k when not held. */
  layerLoad: Float64Array;
  embedLoad: Float64Array; // [K] the same for the embedding without 1/s_k (not created), seconds (0 when embed is null)
  headLoad: Float64Array; // [K] the same for the head, seconds (0 when head is null)
  stageFixed: Float64Array; // [K] w_k + f_k: seconds once per stage (warm-up + fixed session creation)
  hopLatency: Float64Array; // [K * K] one-way latency of the hop from -> to, seconds
  /** A fixed upstream pipeline the first stage receives from (repair): its finish time and the hop to each device. */
  entry: { finish: number; comm: Float64Array } | null;
  /** [K] seconds from the last stage's finish on device k to the answer (repair: the downstream survivors). */
  exit: Float64Array | null;
}

/** Throws TandemError with a code naming what is wrong with the problem. */
export function checkProblem(p: PlanProblem): void {
  checkModel(p.model);
  if (!Array.isArray(p.devices) || p.devices.length === 0) {
    throw new TandemError(
      'devices-empty',
      'the plan needs at least one device; add a device to the session or scenario',
    );
  }
  p.devices.forEach((d, i) => checkDevice(d, i));
  if (!Number.isInteger(p.tokens) || p.tokens <= 0) {
    throw new TandemError(
      'tokens-invalid',
      `tokens must be a positive integer (prefill length), got ${String(p.tokens)}`,
    );
  }
  const memoryModel: unknown = p.memoryModel; // problems also come from JSON and untyped callers
  if (memoryModel !== undefined && memoryModel !== 'max' && memoryModel !== 'sum') {
    throw new TandemError(
      'memory-model-invalid',
      `memoryModel must be 'max' or 'sum', got ${typeof memoryModel === 'string' ? memoryModel : JSON.stringify(memoryModel)}`,
    );
  }
  const K = p.devices.length;
  if (p.hopLatencySec !== undefined) {
    const m = p.hopLatencySec;
    const ok = m.length === K && m.every((row) => row.length === K && row.every((v) => Number.isFinite(v) && v >= 0));
    if (!ok)
      throw new TandemError(
        'latency-invalid',
        `hopLatencySec must be a ${K} x ${K} matrix of non-negative seconds (one row and column per device)`,
      );
  }
  if (p.heldUnits !== undefined) {
    const L = p.model.num_hidden_layers;
    if (p.heldUnits.length !== K)
      throw new TandemError(
        'held-units-invalid',
        `heldUnits has ${p.heldUnits.length} entries for ${K} devices: give one per device (an empty list when it holds nothing)`,
      );
    p.heldUnits.forEach((h, k) => {
      const bad = h.layers.find((l) => !Number.isInteger(l) || l < 0 || l >= L);
      if (bad !== undefined)
        throw new TandemError(
          'held-units-invalid',
          `heldUnits[${k}] lists layer ${bad}; layers are 0-based, 0..${L - 1}`,
        );
    });
  }
}

/** Precomputes every per-layer and per-device number of a problem. Validates the problem first. */
export function buildCostTable(p: PlanProblem): CostTable {
  checkProblem(p);
  const L = p.model.num_hidden_layers;
  const K = p.devices.length;
  const layer = layerCost(p.model, p.tokens, p.costOptions);
  const withExtras = p.embeddingAndHead === true;
  const embed = withExtras ? embeddingCost(p.model, p.tokens) : null;
  const head = withExtras ? headCost(p.model, p.tokens) : null;
  // Seconds to make `bytes` of a unit ready on device k: read (+ session creation) (+ download if not held).
  // The embedding is a table the runtime gathers rows from: creating the session does not prepare it as
  // it does a layer's or the head's matrices (on the lab: 0.004 CPU-seconds for its 18.5 MiB, against 0.037
  // for a layer's 3.3 MiB), so its bytes are read, not created [B1].
  const unitLoad = (k: number, bytes: number, held: boolean, created = true) => {
    const d = p.devices[k];
    let sec = bytes / d.readBytesPerSec; // the paper's P / r_k, computed exactly so
    if (created && d.sessionCreateBytesPerSec !== undefined) sec += bytes / d.sessionCreateBytesPerSec;
    if (!held) sec += bytes / (d.downloadBytesPerSec ?? d.downlinkBitsPerSec / 8);
    return sec;
  };
  const heldLayers = p.heldUnits?.map((h) => new Set(h.layers));
  const layerLoad = new Float64Array(K * L);
  const embedLoad = new Float64Array(K);
  const headLoad = new Float64Array(K);
  const embedMemory = new Float64Array(K);
  const headMemory = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    const units = p.heldUnits?.[k];
    for (let l = 0; l < L; l++) layerLoad[k * L + l] = unitLoad(k, layer.paramBytes, heldLayers?.[k]!.has(l) ?? true);
    if (embed) embedLoad[k] = unitLoad(k, embed.paramBytes, units === undefined || units.embedding === true, false);
    if (head) headLoad[k] = unitLoad(k, head.paramBytes, units === undefined || units.head === true);
    const scale = p.devices[k].extrasMemoryScale ?? 1;
    if (embed) embedMemory[k] = embed.paramBytes * scale;
    if (head) headMemory[k] = head.paramBytes * scale;
  }
  const hopLatency = new Float64Array(K * K);
  for (let a = 0; a < K; a++) {
    for (let b = 0; b < K; b++) {
      hopLatency[a * K + b] =
        p.hopLatencySec?.[a]![b] ?? (p.devices[a].linkLatencySec ?? 0) + (p.devices[b].linkLatencySec ?? 0);
    }
  }
  return {
    L,
    K,
    tokens: p.tokens,
    memoryModel: p.memoryModel ?? 'max',
    layerFlops: new Float64Array(L).fill(layer.flops),
    layerAct: new Float64Array(L).fill(layer.activationBytes),
    layerParams: new Float64Array(L).fill(layer.paramBytes),
    embed,
    head,
    flops: Float64Array.from(p.devices, (d) => effectiveFlops(d, p.tokens)),
    memory: Float64Array.from(p.devices, (d) => d.memoryBytes),
    embedMemory,
    headMemory,
    up: Float64Array.from(p.devices, (d) => d.uplinkBitsPerSec),
    down: Float64Array.from(p.devices, (d) => d.downlinkBitsPerSec),
    layerLoad,
    embedLoad,
    headLoad,
    stageFixed: Float64Array.from(p.devices, (d) => (d.warmupSec ?? 0) + (d.sessionCreateFixedSec ?? 0)),
    hopLatency,
    entry: null,
    exit: null,
  };
}

/** The units a stage holds: its layers, plus the embedding if first and the head if last. */
function extras(ct: CostTable, start: number, end: number): UnitCost[] {
  const out: UnitCost[] = [];
  if (start === 0 && ct.embed) out.push(ct.embed);
  if (end === ct.L && ct.head) out.push(ct.head);
  return out;
}

/** Parameter bytes of layers start..end-1 (plus embedding/head extras). */
export function stageParamBytes(ct: CostTable, start: number, end: number): number {
  let bytes = 0;
  for (let l = start; l < end; l++) bytes += ct.layerParams[l];
  for (const u of extras(ct, start, end)) bytes += u.paramBytes;
  return bytes;
}

/** Bytes the session creation prepares [B1]: the stage's parameter bytes less the embedding's (a gather table). */
export function stageCreateBytes(ct: CostTable, start: number, end: number): number {
  return stageParamBytes(ct, start, end) - (start === 0 && ct.embed ? ct.embed.paramBytes : 0);
}

/** FLOP of layers start..end-1 (plus extras). */
export function stageFlops(ct: CostTable, start: number, end: number): number {
  let flops = 0;
  for (let l = start; l < end; l++) flops += ct.layerFlops[l];
  for (const u of extras(ct, start, end)) flops += u.flops;
  return flops;
}

/**
 * [19] extended: load_n = w_k + f_k + sum over the stage's units of P (1/r_k + 1/s_k [+ 1/g_k if not held]),
 * seconds, without 1/s_k for the embedding (a gather table, not created). With the browser terms absent
 * this is the paper's sum_l P_l / r_k.
 */
export function stageLoad(ct: CostTable, device: number, start: number, end: number): number {
  let load = ct.stageFixed[device];
  for (let l = start; l < end; l++) load += ct.layerLoad[device * ct.L + l];
  if (start === 0) load += ct.embedLoad[device];
  if (end === ct.L) load += ct.headLoad[device];
  return load;
}

/** [21] comp_n = sum_l W_l / c_k, seconds. */
export function stageCompute(ct: CostTable, device: number, start: number, end: number): number {
  return stageFlops(ct, start, end) / ct.flops[device];
}

/**
 * [22] memory a stage needs on `device`, bytes: 'max' = max_l A_l + sum_l P_l, 'sum' = sum_l (A_l + P_l),
 * with the embedding's and the head's bytes at the device's scale for them (extrasMemoryScale). With a
 * null device they count as stored (scale 1): a figure for messages, not a check against one device.
 */
export function stageMemory(ct: CostTable, start: number, end: number, device: number | null): number {
  let params = 0;
  let actMax = 0;
  let actSum = 0;
  for (let l = start; l < end; l++) {
    params += ct.layerParams[l];
    actMax = Math.max(actMax, ct.layerAct[l]);
    actSum += ct.layerAct[l];
  }
  for (const u of extras(ct, start, end)) {
    actMax = Math.max(actMax, u.activationBytes);
    actSum += u.activationBytes;
  }
  return params + extrasMemory(ct, start, end, device) + (ct.memoryModel === 'max' ? actMax : actSum);
}

/** The embedding's and the head's bytes of a stage start..end-1 on `device` (stored bytes when null). */
function extrasMemory(ct: CostTable, start: number, end: number, device: number | null): number {
  let bytes = 0;
  if (start === 0 && ct.embed) bytes += device === null ? ct.embed.paramBytes : ct.embedMemory[device];
  if (end === ct.L && ct.head) bytes += device === null ? ct.head.paramBytes : ct.headMemory[device];
  return bytes;
}

/**
 * [20] extended: comm_n = lambda(from, to) + 8 A / min(b^u of the sender, b^d of the receiver), seconds;
 * `boundary` = first layer of the receiver. The latency lambda is 0 in the paper's model.
 */
export function commTime(ct: CostTable, from: number, to: number, boundary: number): number {
  return ct.hopLatency[from * ct.K + to] + (8 * ct.layerAct[boundary - 1]) / Math.min(ct.up[from], ct.down[to]);
}

/** Seconds added after the last stage finishes on `device` (0 unless a fixed downstream follows). */
export function exitTime(ct: CostTable, device: number): number {
  return ct.exit === null ? 0 : ct.exit[device];
}

/**
 * The cost table of layers start..end-1 on a subset of devices (in the given order), for planning
 * a range after a fixed upstream (`entry`) and before a fixed downstream (`exit`, per device of the
 * subset). The embedding stays only if start = 0 and the head only if end = L.
 */
export function sliceCostTable(
  ct: CostTable,
  devices: readonly number[],
  start: number,
  end: number,
  entry: { finish: number; comm: Float64Array } | null,
  exit: Float64Array | null,
): CostTable {
  const K = devices.length,
    L = end - start;
  const layerLoad = new Float64Array(K * L);
  devices.forEach((d, k) => layerLoad.set(ct.layerLoad.subarray(d * ct.L + start, d * ct.L + end), k * L));
  const hopLatency = new Float64Array(K * K);
  devices.forEach((a, i) => devices.forEach((b, j) => (hopLatency[i * K + j] = ct.hopLatency[a * ct.K + b]!)));
  const pick = (xs: Float64Array) => Float64Array.from(devices, (d) => xs[d]);
  const embed = start === 0 ? ct.embed : null;
  const head = end === ct.L ? ct.head : null;
  return {
    L,
    K,
    tokens: ct.tokens,
    memoryModel: ct.memoryModel,
    layerFlops: ct.layerFlops.slice(start, end),
    layerAct: ct.layerAct.slice(start, end),
    layerParams: ct.layerParams.slice(start, end),
    embed,
    head,
    flops: pick(ct.flops),
    memory: pick(ct.memory),
    embedMemory: embed ? pick(ct.embedMemory) : new Float64Array(K),
    headMemory: head ? pick(ct.headMemory) : new Float64Array(K),
    up: pick(ct.up),
    down: pick(ct.down),
    layerLoad,
    embedLoad: embed ? pick(ct.embedLoad) : new Float64Array(K),
    headLoad: head ? pick(ct.headLoad) : new Float64Array(K),
    stageFixed: pick(ct.stageFixed),
    hopLatency,
    entry,
    exit,
  };
}
