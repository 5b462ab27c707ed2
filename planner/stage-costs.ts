/**
 * Stage costs [19]-[22]: what one contiguous layer range costs on one device (load, compute, memory)
 * and what a hand-over between two devices costs (comm). Built once per problem as a CostTable of
 * per-layer and per-device numbers. These functions sum directly over the layers: they are the
 * reference the timing model uses; the DP keeps its own prefix sums.
 */
import { checkModel, embeddingCost, headCost, layerCost, type UnitCost } from './cost-model.ts';
import { checkDevice, effectiveFlops } from './devices.ts';
import { TandemError } from './errors.ts';
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
  read: Float64Array; // [K] r_k, bytes/s
  memory: Float64Array; // [K] m_k, bytes
  up: Float64Array; // [K] b^u_k, bit/s
  down: Float64Array; // [K] b^d_k, bit/s
}

/** Throws TandemError with a code naming what is wrong with the problem. */
export function checkProblem(p: PlanProblem): void {
  checkModel(p.model);
  if (!Array.isArray(p.devices) || p.devices.length === 0) {
    throw new TandemError('devices-empty', 'the plan needs at least one device; add a device to the session or scenario');
  }
  p.devices.forEach((d, i) => checkDevice(d, i));
  if (!Number.isInteger(p.tokens) || p.tokens <= 0) {
    throw new TandemError('tokens-invalid', `tokens must be a positive integer (prefill length), got ${String(p.tokens)}`);
  }
  if (p.memoryModel !== undefined && p.memoryModel !== 'max' && p.memoryModel !== 'sum') {
    throw new TandemError('memory-model-invalid', `memoryModel must be 'max' or 'sum', got ${String(p.memoryModel)}`);
  }
}

/** Precomputes every per-layer and per-device number of a problem. Validates the problem first. */
export function buildCostTable(p: PlanProblem): CostTable {
  checkProblem(p);
  const L = p.model.num_hidden_layers;
  const K = p.devices.length;
  const layer = layerCost(p.model, p.tokens, p.costOptions);
  const withExtras = p.embeddingAndHead === true;
  return {
    L,
    K,
    tokens: p.tokens,
    memoryModel: p.memoryModel ?? 'max',
    layerFlops: new Float64Array(L).fill(layer.flops),
    layerAct: new Float64Array(L).fill(layer.activationBytes),
    layerParams: new Float64Array(L).fill(layer.paramBytes),
    embed: withExtras ? embeddingCost(p.model, p.tokens) : null,
    head: withExtras ? headCost(p.model, p.tokens) : null,
    flops: Float64Array.from(p.devices, (d) => effectiveFlops(d, p.tokens)),
    read: Float64Array.from(p.devices, (d) => d.readBytesPerSec),
    memory: Float64Array.from(p.devices, (d) => d.memoryBytes),
    up: Float64Array.from(p.devices, (d) => d.uplinkBitsPerSec),
    down: Float64Array.from(p.devices, (d) => d.downlinkBitsPerSec),
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
  for (let l = start; l < end; l++) bytes += ct.layerParams[l]!;
  for (const u of extras(ct, start, end)) bytes += u.paramBytes;
  return bytes;
}

/** FLOP of layers start..end-1 (plus extras). */
export function stageFlops(ct: CostTable, start: number, end: number): number {
  let flops = 0;
  for (let l = start; l < end; l++) flops += ct.layerFlops[l]!;
  for (const u of extras(ct, start, end)) flops += u.flops;
  return flops;
}

/** [19] load_n = sum_l P_l / r_k, seconds. */
export function stageLoad(ct: CostTable, device: number, start: number, end: number): number {
  return stageParamBytes(ct, start, end) / ct.read[device]!;
}

/** [21] comp_n = sum_l W_l / c_k, seconds. */
export function stageCompute(ct: CostTable, device: number, start: number, end: number): number {
  return stageFlops(ct, start, end) / ct.flops[device]!;
}

/** [22] memory a stage needs, bytes: 'max' = max_l A_l + sum_l P_l, 'sum' = sum_l (A_l + P_l). */
export function stageMemory(ct: CostTable, start: number, end: number): number {
  let params = 0;
  let actMax = 0;
  let actSum = 0;
  for (let l = start; l < end; l++) {
    params += ct.layerParams[l]!;
    actMax = Math.max(actMax, ct.layerAct[l]!);
    actSum += ct.layerAct[l]!;
  }
  for (const u of extras(ct, start, end)) {
    params += u.paramBytes;
    actMax = Math.max(actMax, u.activationBytes);
    actSum += u.activationBytes;
  }
  return params + (ct.memoryModel === 'max' ? actMax : actSum);
}

/** [20] comm_n = 8 A / min(b^u of the sender, b^d of the receiver), seconds; `boundary` = first layer of the receiver. */
export function commTime(ct: CostTable, from: number, to: number, boundary: number): number {
  return (8 * ct.layerAct[boundary - 1]!) / Math.min(ct.up[from]!, ct.down[to]!);
}
