/**
 * Built-in scenarios: the CSGO paper's setting (Table 1: one AP, four devices, Qwen3-14B) as printed,
 * and the paper-calibrated variant that reproduces its figures (see shared/docs/csgo-model.md).
 */
import { TandemError } from '../core/errors.ts';
import { parseScenario, type Scenario, type ScenarioInput } from './scenario.ts';
import type { ModelConfig } from './types.ts';

/** Qwen3-14B, bf16 (config.json fields). */
export const QWEN3_14B: ModelConfig = {
  num_hidden_layers: 40,
  hidden_size: 5120,
  num_attention_heads: 40,
  num_key_value_heads: 8,
  head_dim: 128,
  intermediate_size: 17408,
  vocab_size: 151936,
  bytesPerParam: 2,
};

/** Table 1, shared radio parameters. */
const TABLE1_CELL = {
  mu: 0.5,
  bandwidthMHz: 160,
  downlinkPowerDbm: 25,
  noiseDbmPerHz: -174,
  refDistanceM: 1,
  pathLossExponent: 3,
  beta0Db: -47.2,
};

const PAPER_TOKENS = [256, 512, 1024, 2048, 4096, 8192];

const csgoTable1: ScenarioInput = {
  name: 'csgo-table1',
  description: 'CSGO paper Table 1 as printed: Qwen3-14B on four devices behind one wireless AP',
  model: QWEN3_14B,
  wireless: TABLE1_CELL,
  devices: [
    {
      name: 'D1',
      peakTflops: 165,
      utilA: 0.4,
      utilB: 5.1e-4,
      readMBps: 5000,
      memoryGB: 20,
      uplinkPowerDbm: 20,
      distanceM: 1,
    },
    {
      name: 'D2',
      peakTflops: 70,
      utilA: 0.7,
      utilB: 8.7e-4,
      readMBps: 4000,
      memoryGB: 10,
      uplinkPowerDbm: 18,
      distanceM: 3,
    },
    {
      name: 'D3',
      peakTflops: 30,
      utilA: 0.8,
      utilB: 1.1e-3,
      readMBps: 3000,
      memoryGB: 8,
      uplinkPowerDbm: 15,
      distanceM: 5,
    },
    {
      name: 'D4',
      peakTflops: 20,
      utilA: 0.8,
      utilB: 1.8e-3,
      readMBps: 2000,
      memoryGB: 8,
      uplinkPowerDbm: 15,
      distanceM: 7,
    },
  ],
  memoryModel: 'max',
  embeddingAndHead: false,
  tokens: PAPER_TOKENS,
};

/** The calibration that reproduces the paper's figures, device by device: refitted utilisation, D4 at 10 m. */
const PAPER_REFIT = [
  { utilA: 0.406, utilB: 5.133e-4 },
  { utilA: 0.5, utilB: 8.71e-4 },
  { utilA: 0.8, utilB: 1.1238e-3 },
  { utilA: 0.8, utilB: 1.836e-3, distanceM: 10 },
];

const csgoPaper: ScenarioInput = {
  ...csgoTable1,
  name: 'csgo-paper',
  description:
    'CSGO paper, calibrated to reproduce its figures: K/V projection FLOPs counted once, refitted utilisation, ' +
    "D4 at 10 m, memory as sum(A + P), and 6000 MB/s for the ideal baseline's device",
  devices: csgoTable1.devices.map((d, i) => ({ ...d, ...PAPER_REFIT[i] })),
  memoryModel: 'sum',
  costModel: { kvProjections: 'once' },
  baselines: { ideal: { readMBps: 6000 } },
};

const PRESETS: Record<string, ScenarioInput> = { 'csgo-table1': csgoTable1, 'csgo-paper': csgoPaper };

export const PRESET_NAMES = Object.keys(PRESETS);

/** The preset's input, or undefined for a name that is not one (own keys only: `toString` is no preset). */
function presetInput(name: string): ScenarioInput | undefined {
  return Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
}

/** A built-in scenario by name; throws TandemError('scenario-unknown') listing the names. */
export function presetScenario(name: string): Scenario {
  const input = presetInput(name);
  if (!input)
    throw new TandemError(
      'scenario-unknown',
      `no preset named "${name}"; presets: ${PRESET_NAMES.join(', ')} (or give a path to a .json file)`,
    );
  return parseScenario(structuredClone(input), `preset ${name}`);
}

/** The raw JSON of a preset (what a scenario file with the same content would hold). */
export function presetJson(name: string): ScenarioInput | undefined {
  const input = presetInput(name);
  return input ? structuredClone(input) : undefined;
}
