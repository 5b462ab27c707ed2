/**
 * The planning report of a scenario: for each token length, the DP plan and the three baselines, their
 * timelines, and the DP's % latency reduction vs each baseline and vs the best one; plus the means.
 * Also its two renderings: a JSON document (1-based inclusive layers) and a human-readable table.
 * Pure: no I/O.
 */
import { BASELINES, runBaseline, type BaselineName } from './baselines.ts';
import { planOptimal, type PlanMethod } from './plan.ts';
import { scenarioBaselineOptions, scenarioProblem, type Scenario } from './scenario.ts';
import type { StageTiming, Timeline } from './types.ts';

export type MethodName = 'dp' | BaselineName;
export const METHODS: readonly MethodName[] = ['dp', ...BASELINES];

export interface MethodResult {
  method: MethodName;
  timeline: Timeline;
  /** For 'dp': whether the exact DP or the scalable planner produced it. */
  solver?: PlanMethod;
}

export interface TokenResult {
  tokens: number;
  results: Record<MethodName, MethodResult>;
  bestBaseline: BaselineName; // least latency among the baselines
  /** 100 * (1 - T_dp / T_baseline), per baseline and vs the best baseline. */
  reduction: Record<BaselineName | 'best', number>;
}

export interface PlanReport {
  scenario: Scenario;
  deviceNames: string[];
  perTokens: TokenResult[];
  meanReduction: Record<BaselineName | 'best', number>;
}

/** Plans every token length of a scenario with the DP and the baselines. */
export function buildReport(scenario: Scenario, tokens: readonly number[]): PlanReport {
  const baselineOptions = scenarioBaselineOptions(scenario);
  const perTokens: TokenResult[] = tokens.map((t) => {
    const problem = scenarioProblem(scenario, t);
    const dp = planOptimal(problem);
    const baseline = (name: BaselineName): MethodResult => ({
      method: name,
      timeline: runBaseline(problem, name, baselineOptions).timeline,
    });
    const results: Record<MethodName, MethodResult> = {
      dp: { method: 'dp', timeline: dp, solver: dp.method },
      ideal: baseline('ideal'),
      even: baseline('even'),
      heuristic: baseline('heuristic'),
    };
    const bestBaseline = [...BASELINES].sort((a, b) => results[a].timeline.latency - results[b].timeline.latency)[0];
    const red = (name: BaselineName) => 100 * (1 - dp.latency / results[name].timeline.latency);
    const reduction = { ideal: red('ideal'), even: red('even'), heuristic: red('heuristic'), best: red(bestBaseline) };
    return { tokens: t, results, bestBaseline, reduction };
  });
  const mean = (key: BaselineName | 'best') => perTokens.reduce((a, r) => a + r.reduction[key], 0) / perTokens.length;
  return {
    scenario,
    deviceNames: scenario.devices.map((d) => d.name),
    perTokens,
    meanReduction: { ideal: mean('ideal'), even: mean('even'), heuristic: mean('heuristic'), best: mean('best') },
  };
}

/** A plan in pipeline order as `D3:7 -> D4:5 -> D2:11 -> D1:17` (device name : layer count). */
export function allocationString(stages: readonly StageTiming[], names: readonly string[]): string {
  return stages.map((s) => `${names[s.device]}:${s.layers.end - s.layers.start}`).join(' -> ');
}

/** The --json document: every token length and method, stages with 1-based inclusive layers, seconds. */
export function reportJson(r: PlanReport) {
  return {
    scenario: r.scenario.name ?? null,
    units: { time: 's', memory: 'bytes', layers: '1-based inclusive' },
    memoryModel: r.scenario.memoryModel,
    embeddingAndHead: r.scenario.embeddingAndHead,
    devices: r.deviceNames,
    tokens: r.perTokens.map((t) => ({
      tokens: t.tokens,
      bestBaseline: t.bestBaseline,
      reductionPercent: t.reduction,
      methods: Object.fromEntries(
        METHODS.map((m) => {
          const res = t.results[m];
          return [
            m,
            {
              latency: res.timeline.latency,
              ...(res.solver ? { solver: res.solver } : {}),
              memoryOk: res.timeline.memoryOk ?? true,
              allocation: allocationString(res.timeline.stages, r.deviceNames),
              stages: res.timeline.stages.map((s) => ({
                device: r.deviceNames[s.device],
                firstLayer: s.layers.start + 1,
                lastLayer: s.layers.end,
                load: s.load,
                wait: s.wait,
                comm: s.comm,
                compute: s.compute,
                start: s.startTime,
                finish: s.finishTime,
                memoryBytes: s.memoryBytes,
                memoryOk: s.memoryOk,
              })),
            },
          ];
        }),
      ),
    })),
    meanReductionPercent: r.meanReduction,
  };
}

/** The human-readable table. */
export function reportText(r: PlanReport): string {
  const s = r.scenario;
  const pct = (x: number) => `${x.toFixed(1)}%`.padStart(9);
  const sec = (tl: Timeline) => `${tl.latency.toFixed(3)}${tl.memoryOk === false ? '*' : ' '}`.padStart(10);
  const lines: string[] = [];
  lines.push(
    `Scenario ${s.name ?? '(file)'}: ${s.model.num_hidden_layers} layers, ${s.devices.length} devices (${r.deviceNames.join(', ')}), ` +
      `memory model ${s.memoryModel}, embedding+head ${s.embeddingAndHead ? 'counted' : 'ignored'}`,
  );
  lines.push('Cold-start latency T in seconds; reduction = 1 - T_DP / T_baseline.');
  lines.push('');
  lines.push(
    `${'tokens'.padStart(7)}${'DP'.padStart(10)}${'ideal'.padStart(10)}${'even'.padStart(10)}${'heuristic'.padStart(10)}` +
      `${'vs ideal'.padStart(9)}${'vs even'.padStart(9)}${'vs heur'.padStart(9)}${'vs best'.padStart(9)}   DP plan (pipeline order, device:layers)`,
  );
  let anyOverMemory = false;
  for (const t of r.perTokens) {
    const res = t.results;
    anyOverMemory ||= METHODS.some((m) => res[m].timeline.memoryOk === false);
    lines.push(
      `${String(t.tokens).padStart(7)}${sec(res.dp.timeline)}${sec(res.ideal.timeline)}${sec(res.even.timeline)}${sec(res.heuristic.timeline)}` +
        `${pct(t.reduction.ideal)}${pct(t.reduction.even)}${pct(t.reduction.heuristic)}${pct(t.reduction.best)}   ` +
        `${allocationString(res.dp.timeline.stages, r.deviceNames)}${res.dp.solver === 'scalable' ? ' (scalable planner)' : ''}`,
    );
  }
  const m = r.meanReduction;
  lines.push(`${'mean'.padStart(7)}${' '.repeat(40)}${pct(m.ideal)}${pct(m.even)}${pct(m.heuristic)}${pct(m.best)}`);
  if (anyOverMemory)
    lines.push(
      "* exceeds a device's memory: the ideal baseline ignores memory by definition; even and heuristic do not check it",
    );
  const all = r.perTokens.flatMap((t) => BASELINES.map((b) => t.reduction[b]));
  lines.push('');
  lines.push(
    `DP vs baselines: ${Math.min(...all).toFixed(1)}% to ${Math.max(...all).toFixed(1)}% lower latency; ` +
      `mean vs the best baseline at each length: ${m.best.toFixed(2)}%`,
  );
  return lines.join('\n');
}
