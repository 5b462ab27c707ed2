/** The planner's public API (pure: usable from Node and from the page). */
export type {
  CostOptions,
  DeviceProfile,
  HeldUnits,
  LayerRange,
  MemoryModel,
  ModelConfig,
  PlanProblem,
  PlanStage,
  StageTiming,
  Timeline,
} from './types.ts';
export { TandemError } from '../core/errors.ts';
export { layerCost, embeddingCost, headCost, headDim, type UnitCost } from './cost-model.ts';
export {
  effectiveFlops,
  utilisation,
  wirelessRates,
  dbmToWatts,
  type WirelessCell,
  type WirelessLink,
} from './devices.ts';
export { buildCostTable, checkProblem, type CostTable } from './stage-costs.ts';
export { evaluatePlan, evaluateWithCosts, checkPlanShape } from './timing.ts';
export { solveExactDp, dpStateCount, MAX_DP_STATES, type DpSolution } from './dp.ts';
export { solveOrderDp } from './order-dp.ts';
export { solveScalable, type ScalableOptions, type ScalableResult } from './scalable.ts';
export {
  BASELINES,
  baselinePlan,
  runBaseline,
  idealPlan,
  evenPlan,
  heuristicPlan,
  strongestFirst,
  type BaselineName,
  type BaselineOptions,
  type BaselineResult,
} from './baselines.ts';
export { planOptimal, type PlanMethod, type PlanOptions, type PlanResult } from './plan.ts';
export { planRepair, lostRange, type RepairInput, type RepairMode, type RepairPlan } from './repair.ts';
export {
  parseScenario,
  parseScenarioText,
  scenarioProblem,
  scenarioDevices,
  scenarioBaselineOptions,
  DEFAULT_TOKENS,
  type Scenario,
  type ScenarioInput,
} from './scenario.ts';
export { presetScenario, presetJson, PRESET_NAMES } from './presets.ts';
export {
  buildReport,
  reportJson,
  reportText,
  allocationString,
  METHODS,
  type MethodName,
  type PlanReport,
  type TokenResult,
} from './report.ts';
export { latencyChart, ganttChart } from './svg.ts';
