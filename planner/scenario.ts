/**
 * Scenario files: a model, candidate devices (direct link rates or the wireless model), and planning
 * options, in the paper's units (TFLOPS, MB/s with MB = MiB, GB = 1024 MB, Mbit/s = 10^6 bit/s, dBm,
 * metres). parseScenario validates any JSON value and names the bad field; scenarioProblem converts to
 * the planner's SI PlanProblem. Pure (zod only): the CLI reads the file, this module checks it.
 */
import { z } from 'zod';
import type { BaselineOptions } from './baselines.ts';
import { wirelessRates } from './devices.ts';
import { TandemError } from '../core/errors.ts';
import type { DeviceProfile, PlanProblem } from './types.ts';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

const posInt = z.int().positive();
// zod 4: z.number() already rejects Infinity and NaN, so no `.finite()` is needed on any number below.
const pos = z.number().positive();

const modelSchema = z.strictObject({
  num_hidden_layers: posInt.max(4096),
  hidden_size: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt,
  head_dim: posInt.optional(),
  intermediate_size: posInt,
  vocab_size: posInt,
  bytesPerParam: pos,
  bytesPerActivation: pos.optional(),
  // a q4 package: embedding and head stored in float32 (4)
  extrasBytesPerParam: pos.optional(),
});

const wirelessSchema = z.strictObject({
  mu: z.number().gt(0).max(1),
  bandwidthMHz: pos,
  downlinkPowerDbm: z.number(),
  noiseDbmPerHz: z.number(),
  refDistanceM: pos.default(1),
  pathLossExponent: pos,
  beta0Db: z.number(),
});

const deviceSchema = z.strictObject({
  name: z.string().trim().min(1).max(64),
  peakTflops: pos,
  utilA: z.number().gt(0).max(1),
  utilB: pos,
  readMBps: pos,
  memoryGB: z.number().nonnegative(),
  uplinkMbps: pos.optional(),
  downlinkMbps: pos.optional(),
  uplinkPowerDbm: z.number().optional(),
  distanceM: pos.optional(),
  // Browser terms (docs/cost-model.md [B1]-[B3]); absent = 0, the paper's model.
  sessionCreateMBps: pos.optional(),
  sessionCreateFixedSec: z.number().nonnegative().optional(),
  warmupSec: z.number().nonnegative().optional(),
  linkLatencyMs: z.number().nonnegative().optional(),
  // memory per stored byte of the embedding and head, in layer bytes (1 / 6.4 for q4 on wasm)
  extrasMemoryScale: pos.optional(),
});

export const scenarioSchema = z
  .strictObject({
    name: z.string().max(200).optional(),
    description: z.string().max(2000).optional(),
    model: modelSchema,
    devices: z.array(deviceSchema).min(1).max(1024),
    wireless: wirelessSchema.optional(),
    memoryModel: z.enum(['max', 'sum']).default('max'),
    embeddingAndHead: z.boolean().default(false),
    tokens: z.array(posInt.max(10_000_000)).min(1).max(256).optional(),
    costModel: z.strictObject({ kvProjections: z.enum(['k-and-v', 'once']).default('k-and-v') }).optional(),
    baselines: z.strictObject({ ideal: z.strictObject({ readMBps: pos }).optional() }).optional(),
  })
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.devices.forEach((d, i) => {
      if (names.has(d.name))
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'name'], message: `duplicate device name "${d.name}"` });
      names.add(d.name);
      const direct = d.uplinkMbps !== undefined || d.downlinkMbps !== undefined;
      const radio = d.uplinkPowerDbm !== undefined || d.distanceM !== undefined;
      if (direct && radio) {
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i],
          message: 'give either uplinkMbps + downlinkMbps or uplinkPowerDbm + distanceM, not both',
        });
      } else if (direct) {
        for (const key of ['uplinkMbps', 'downlinkMbps'] as const) {
          if (d[key] === undefined)
            ctx.addIssue({
              code: 'custom',
              path: ['devices', i, key],
              message: `required with ${key === 'uplinkMbps' ? 'downlinkMbps' : 'uplinkMbps'}`,
            });
        }
      } else if (radio) {
        for (const key of ['uplinkPowerDbm', 'distanceM'] as const) {
          if (d[key] === undefined)
            ctx.addIssue({
              code: 'custom',
              path: ['devices', i, key],
              message: 'required for the wireless link model',
            });
        }
        if (!s.wireless)
          ctx.addIssue({
            code: 'custom',
            path: ['wireless'],
            message: `required: devices[${i}] uses the wireless link model`,
          });
      } else {
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i],
          message:
            'needs link rates: uplinkMbps + downlinkMbps, or uplinkPowerDbm + distanceM with a "wireless" section',
        });
      }
    });
    if (s.model.num_attention_heads % s.model.num_key_value_heads !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'num_key_value_heads'],
        message: 'must divide num_attention_heads',
      });
    }
  });

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;

/** "devices[2].readMBps" from a zod path. */
function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(top level)';
}

/** Validates a parsed JSON value; throws TandemError('scenario-invalid') naming every bad field. */
export function parseScenario(value: unknown, source = 'scenario'): Scenario {
  const result = scenarioSchema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.slice(0, 10).map((iss) => `  ${fieldName(iss.path)}: ${iss.message}`);
  throw new TandemError(
    'scenario-invalid',
    `${source} is not a valid scenario:\n${lines.join('\n')}\n(see docs/architecture.md, "Scenario files", for the format)`,
  );
}

/** Parses scenario JSON text; a syntax error becomes TandemError('scenario-invalid'). */
export function parseScenarioText(text: string, source = 'scenario'): Scenario {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TandemError('scenario-invalid', `${source} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseScenario(value, source);
}

/** The scenario's devices as SI DeviceProfiles (link rates from the wireless model where given). */
export function scenarioDevices(s: Scenario): DeviceProfile[] {
  return s.devices.map((d) => {
    let up: number, down: number;
    if (d.uplinkMbps !== undefined && d.downlinkMbps !== undefined) {
      up = d.uplinkMbps * 1e6;
      down = d.downlinkMbps * 1e6;
    } else {
      const w = s.wireless!;
      const rates = wirelessRates(
        { ...w, bandwidthHz: w.bandwidthMHz * 1e6 },
        { uplinkPowerDbm: d.uplinkPowerDbm!, distanceM: d.distanceM! },
      );
      up = rates.uplinkBitsPerSec;
      down = rates.downlinkBitsPerSec;
    }
    return {
      name: d.name,
      peakFlops: d.peakTflops * 1e12,
      utilA: d.utilA,
      utilB: d.utilB,
      readBytesPerSec: d.readMBps * MIB,
      memoryBytes: d.memoryGB * GIB,
      uplinkBitsPerSec: up,
      downlinkBitsPerSec: down,
      ...(d.sessionCreateMBps !== undefined ? { sessionCreateBytesPerSec: d.sessionCreateMBps * MIB } : {}),
      ...(d.sessionCreateFixedSec !== undefined ? { sessionCreateFixedSec: d.sessionCreateFixedSec } : {}),
      ...(d.warmupSec !== undefined ? { warmupSec: d.warmupSec } : {}),
      ...(d.linkLatencyMs !== undefined ? { linkLatencySec: d.linkLatencyMs / 1000 } : {}),
      ...(d.extrasMemoryScale !== undefined ? { extrasMemoryScale: d.extrasMemoryScale } : {}),
    };
  });
}

/** The PlanProblem of a scenario at prefill length `tokens`. */
export function scenarioProblem(s: Scenario, tokens: number): PlanProblem {
  return {
    model: { ...s.model },
    devices: scenarioDevices(s),
    tokens,
    memoryModel: s.memoryModel,
    embeddingAndHead: s.embeddingAndHead,
    costOptions: { kvProjections: s.costModel?.kvProjections ?? 'k-and-v' },
  };
}

/** Baseline options of a scenario (the ideal baseline's own read speed, if any). */
export function scenarioBaselineOptions(s: Scenario): BaselineOptions {
  const r = s.baselines?.ideal?.readMBps;
  return r === undefined ? {} : { idealReadBytesPerSec: r * MIB };
}

/** Token lengths to plan for when neither the scenario nor the user gives any. */
export const DEFAULT_TOKENS = [256, 512, 1024, 2048, 4096, 8192];
