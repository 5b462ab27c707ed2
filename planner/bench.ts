/**
 * `npm run bench:planner`: exact DP time vs K (2..12) x L (24, 40, 80), the scalable planner's
 * time and gap (to the exact optimum where exact is feasible, to the best baseline up to K = 64), and
 * the repair planner's time and predicted resume time after a page loss.
 * Prints tables and saves bench/results/planner.json. Timings: one warm-up run dropped, then the
 * median of up to 7 runs (fewer when a run is slow); the machine's load average is recorded with them.
 * Flags: --quick (fewer sizes, for a smoke run), --out <file>.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { BASELINES, runBaseline, strongestFirst } from './baselines.ts';
import { solveExactDp } from './dp.ts';
import { planOptimal } from './plan.ts';
import { mulberry32 } from '../core/random.ts';
import { randomProblem, randomProblems } from './random-problems.ts';
import { solveScalable } from './scalable.ts';
import { buildCostTable } from './stage-costs.ts';
import { exitWithCliError, parseCliArgs } from '../core/cli.ts';
import { layerCost } from './cost-model.ts';
import { presetScenario } from './presets.ts';
import { scenarioProblem } from './scenario.ts';
import { planRepair, type RepairInput, type RepairPlan } from './repair.ts';
import type { DeviceProfile, PlanProblem } from './types.ts';

const USAGE = `usage: npm run bench:planner -- [--quick] [--out FILE]
  --quick     fewer sizes, for a smoke run
  --out FILE  where the JSON goes (default bench/results/planner.json)
  --help      this text`;

function benchArgs(): { quick: boolean; outPath: string } {
  try {
    const { values } = parseCliArgs({
      args: process.argv.slice(2),
      options: {
        quick: { type: 'boolean', default: false },
        out: { type: 'string', default: 'bench/results/planner.json' },
      },
    });
    return { quick: values.quick, outPath: values.out };
  } catch (e) {
    return exitWithCliError('bench:planner', USAGE, e);
  }
}
const { quick, outPath } = benchArgs();
const ROW_LIMIT_S = 10;

/**
 * Median wall and CPU seconds of fn over up to `reps` runs after one warm-up; fewer runs when one is
 * slow. CPU time (process.cpuUsage, user + system) is the fairer figure on a shared, loaded machine.
 */
function time(fn: () => unknown, reps = 7): { median: number; cpu: number; runs: number; warmup: number } {
  let t0 = performance.now();
  fn();
  const warmup = (performance.now() - t0) / 1000;
  const wall: number[] = [];
  const cpu: number[] = [];
  const n = warmup > 2 ? 1 : warmup > 0.3 ? 3 : reps;
  for (let r = 0; r < n; r++) {
    const c0 = process.cpuUsage();
    t0 = performance.now();
    fn();
    wall.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { median: med(wall), cpu: med(cpu), runs: n, warmup };
}

const cpuSince = (c0: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};
const ms = (s: number) => (s * 1000 < 10 ? (s * 1000).toFixed(2) : (s * 1000).toFixed(0));

/** A bench instance: the paper's Qwen3-14B with K devices drawn around the paper's four (seeded). */
function paperLikeProblem(K: number, L: number, seed: number): PlanProblem {
  const base = scenarioProblem(presetScenario('csgo-paper'), 1024);
  const rand = mulberry32(seed);
  // Memory like Table 1, but at least 1.5x an even share of the model so that small K stays feasible.
  const layer = layerCost(base.model, base.tokens, base.costOptions);
  const share = (1.5 * L * (layer.paramBytes + layer.activationBytes)) / K;
  const jitter = () => 0.7 + 0.6 * rand();
  const devices: DeviceProfile[] = Array.from({ length: K }, (_, k) => {
    const d = base.devices[k % base.devices.length];
    return {
      ...d,
      name: `P${k + 1}`,
      peakFlops: d.peakFlops * jitter(),
      readBytesPerSec: d.readBytesPerSec * jitter(),
      uplinkBitsPerSec: d.uplinkBitsPerSec * jitter(),
      memoryBytes: Math.max(share, d.memoryBytes * jitter()),
    };
  });
  return { ...base, model: { ...base.model, num_hidden_layers: L }, devices };
}

function bestBaseline(p: PlanProblem): number {
  let best = Infinity;
  for (const b of BASELINES) {
    const tl = runBaseline(p, b).timeline;
    if (tl.memoryOk) best = Math.min(best, tl.latency);
  }
  return best;
}

// 1. Exact DP time vs K x L ------------------------------------------------------------------------
const Ls = quick ? [24, 40] : [24, 40, 80];
const Ks = quick ? [2, 4, 6, 8] : [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
interface DpRow {
  K: number;
  L: number;
  states: number;
  note?: string;
  dpSeconds: number | null;
  dpCpuSeconds: number | null;
  planOptimalSeconds: number | null;
  planOptimalCpuSeconds: number | null;
}
const dpRows: DpRow[] = [];
console.log(
  `Exact DP, paper-like devices (Qwen3-14B layers, K devices around Table 1), t = 1024. Load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}, ${cpus().length} CPUs.`,
);
console.log(
  '  dp = solveExactDp alone (no upper bound); planOptimal = seed orders for an upper bound + pruned exact DP.',
);
console.log('  Each cell: median wall ms / median CPU ms.');
console.log(`${'K'.padStart(4)}${Ls.map((L) => `${`L=${L} dp`.padStart(18)}${'planOptimal'.padStart(18)}`).join('')}`);
const stopped = new Set<number>();
for (const K of Ks) {
  const cells: string[] = [];
  for (const L of Ls) {
    const states = 2 ** K * K * (L + 1);
    if (stopped.has(L)) {
      dpRows.push({
        K,
        L,
        states,
        dpSeconds: null,
        dpCpuSeconds: null,
        planOptimalSeconds: null,
        planOptimalCpuSeconds: null,
        note: `skipped: a smaller K took > ${ROW_LIMIT_S} s`,
      });
      cells.push('skipped'.padStart(18), ''.padStart(18));
      continue;
    }
    const p = paperLikeProblem(K, L, 1000 + K * 100 + L);
    const ct = buildCostTable(p);
    const dp = time(() => solveExactDp(ct));
    const po = time(() => planOptimal(p, { method: 'exact' }));
    dpRows.push({
      K,
      L,
      states,
      dpSeconds: dp.median,
      dpCpuSeconds: dp.cpu,
      planOptimalSeconds: po.median,
      planOptimalCpuSeconds: po.cpu,
    });
    cells.push(`${ms(dp.median)}/${ms(dp.cpu)}`.padStart(18), `${ms(po.median)}/${ms(po.cpu)}`.padStart(18));
    if (dp.warmup > ROW_LIMIT_S || dp.median > ROW_LIMIT_S) stopped.add(L); // stop the row: K + 1 takes > 2x longer
  }
  console.log(`${String(K).padStart(4)}${cells.join('')}`);
}
const target = (K: number, L: number) => dpRows.find((r) => r.K === K && r.L === L);
for (const [K, L, limit] of [
  [4, 40, 0.002],
  [10, 80, 1],
] as const) {
  const r = target(K, L);
  if (r?.dpSeconds != null) {
    const met = (s: number) => (s <= limit ? 'met' : 'NOT met');
    console.log(
      `target K=${K}, L=${L} <= ${limit * 1000} ms: planOptimal wall ${ms(r.planOptimalSeconds!)} ms (${met(r.planOptimalSeconds!)}), ` +
        `CPU ${ms(r.planOptimalCpuSeconds!)} ms (${met(r.planOptimalCpuSeconds!)}); DP alone wall ${ms(r.dpSeconds)} ms, CPU ${ms(r.dpCpuSeconds!)} ms`,
    );
  }
}

// 2. Scalable planner: gap to exact where exact is feasible ------------------------------------------
interface GapRow {
  K: number;
  L: number;
  instances: number;
  meanGapPercent: number;
  maxGapPercent: number;
  exactShare: number;
  kind: string;
  scalableSeconds: number;
  exactSeconds: number;
  scalableCpuSeconds: number;
  exactCpuSeconds: number;
}
const gapRows: GapRow[] = [];
console.log(
  '\nScalable planner vs exact DP (gap = T_scalable / T_exact - 1), median wall/CPU ms per instance (exact = solveExactDp alone)',
);
console.log(
  `${'kind'.padStart(12)}${'K'.padStart(4)}${'L'.padStart(4)}${'n'.padStart(4)}${'mean gap'.padStart(10)}${'max gap'.padStart(10)}${'optimal'.padStart(9)}${'scal ms'.padStart(14)}${'exact ms'.padStart(14)}`,
);
const gapKs = quick ? [4, 8] : [4, 6, 8, 10, 12];
for (const kind of ['paper-like', 'random', 'random-tight'] as const) {
  for (const K of gapKs) {
    const L = 40;
    const n = quick ? 4 : K >= 12 ? 4 : 10; // instances drawn; infeasible ones are skipped
    const problems = Array.from({ length: n }, (_, k) =>
      kind === 'paper-like'
        ? paperLikeProblem(K, L, 5000 + K * 10 + k)
        : randomProblem(mulberry32(7000 + K * 10 + k), { K, L, memory: kind === 'random-tight' ? 'tight' : 'loose' }),
    );
    const gaps: number[] = [];
    const ts: number[] = [],
      te: number[] = [],
      cs: number[] = [],
      ce: number[] = []; // wall and CPU seconds
    for (const p of problems) {
      const ct = buildCostTable(p);
      let c0 = process.cpuUsage();
      let t0 = performance.now();
      const ex = solveExactDp(ct);
      if (!ex) continue; // nothing fits (tight memory): no gap to measure
      te.push((performance.now() - t0) / 1000);
      ce.push(cpuSince(c0));
      c0 = process.cpuUsage();
      t0 = performance.now();
      const sc = solveScalable(ct, strongestFirst(p))!;
      ts.push((performance.now() - t0) / 1000);
      cs.push(cpuSince(c0));
      gaps.push(100 * Math.max(0, sc.latency / ex.latency - 1)); // clamp float noise below 0
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const row: GapRow = {
      kind,
      K,
      L,
      instances: gaps.length,
      meanGapPercent: gaps.reduce((a, b) => a + b, 0) / gaps.length,
      maxGapPercent: Math.max(...gaps),
      exactShare: gaps.filter((g) => g < 1e-7).length / gaps.length,
      scalableSeconds: med(ts),
      exactSeconds: med(te),
      scalableCpuSeconds: med(cs),
      exactCpuSeconds: med(ce),
    };
    gapRows.push(row);
    console.log(
      `${kind.padStart(12)}${String(K).padStart(4)}${String(L).padStart(4)}${String(row.instances).padStart(4)}${`${row.meanGapPercent.toFixed(3)}%`.padStart(10)}${`${row.maxGapPercent.toFixed(3)}%`.padStart(10)}${`${(100 * row.exactShare).toFixed(0)}%`.padStart(9)}${`${ms(row.scalableSeconds)}/${ms(row.scalableCpuSeconds)}`.padStart(14)}${`${ms(row.exactSeconds)}/${ms(row.exactCpuSeconds)}`.padStart(14)}`,
    );
  }
}

// 3. Scalable planner up to K = 64: time and reduction vs the best memory-feasible baseline -----------
interface BigRow {
  kind: string;
  K: number;
  L: number;
  scalableSeconds: number;
  scalableCpuSeconds: number;
  stages: number;
  evaluations: number;
  latency: number;
  bestBaseline: number;
  reductionVsBestBaselinePercent: number;
}
const bigRows: BigRow[] = [];
console.log('\nScalable planner for many devices (vs the best baseline that fits in memory)');
console.log(
  `${'kind'.padStart(12)}${'K'.padStart(4)}${'L'.padStart(4)}${'wall/CPU ms'.padStart(14)}${'stages'.padStart(8)}${'evals'.padStart(7)}${'T [s]'.padStart(9)}${'best base'.padStart(11)}${'reduction'.padStart(11)}`,
);
for (const kind of ['paper-like', 'random'] as const) {
  for (const K of quick ? [16, 32] : [16, 24, 32, 48, 64]) {
    for (const L of quick ? [40] : [40, 80]) {
      const p =
        kind === 'paper-like'
          ? paperLikeProblem(K, L, 9000 + K + L)
          : randomProblems(9100 + K + L, 1, { K: [K, K], L: [L, L] })[0];
      const ct = buildCostTable(p);
      let sc: ReturnType<typeof solveScalable> = null;
      const t = time(() => (sc = solveScalable(ct, strongestFirst(p))), 3);
      const base = bestBaseline(p);
      const row: BigRow = {
        kind,
        K,
        L,
        scalableSeconds: t.median,
        scalableCpuSeconds: t.cpu,
        stages: sc!.stages.length,
        evaluations: sc!.evaluations,
        latency: sc!.latency,
        bestBaseline: base,
        reductionVsBestBaselinePercent: 100 * (1 - sc!.latency / base),
      };
      bigRows.push(row);
      console.log(
        `${kind.padStart(12)}${String(K).padStart(4)}${String(L).padStart(4)}${`${ms(t.median)}/${ms(t.cpu)}`.padStart(14)}${String(row.stages).padStart(8)}${String(row.evaluations).padStart(7)}${row.latency.toFixed(3).padStart(9)}${(base === Infinity ? 'none fits' : base.toFixed(3)).padStart(11)}${(base === Infinity ? '-' : `${row.reductionVsBestBaselinePercent.toFixed(1)}%`).padStart(11)}`,
      );
    }
  }
}

// 4. Repair planner: a page of a running pipeline leaves; re-plan over the rest ------------------------
interface RepairRow {
  K: number;
  L: number;
  lostLayers: number;
  replayTokens: number;
  repairSeconds: number;
  repairCpuSeconds: number;
  mode: string;
  resumeSec: number;
  rangeSec: number | null;
  wholeSec: number | null;
  coldStartSec: number;
}
const repairRows: RepairRow[] = [];
console.log(
  '\nRepair planner (planRepair, auto): paper-like devices with browser terms, K - 2 in the pipeline and 2 idle (holding',
);
console.log(
  '  ~30% of the layers as spares), the longest stage lost, replay of t + 16 tokens; missing units download at downlink / 8',
);
console.log(
  `${'K'.padStart(4)}${'L'.padStart(4)}${'lost'.padStart(6)}${'wall/CPU ms'.padStart(14)}${'mode'.padStart(7)}${'resume s'.padStart(10)}${'range s'.padStart(10)}${'whole s'.padStart(10)}${'cold s'.padStart(9)}`,
);
for (const K of quick ? [4, 8] : [4, 6, 8, 10, 12]) {
  const L = 40;
  const rand = mulberry32(11000 + K);
  const pipelinePart = paperLikeProblem(K - 2, L, 11000 + K); // memory sized so that K - 2 pages hold the model
  const idlePart = paperLikeProblem(2, L, 11500 + K);
  const base: PlanProblem = {
    ...pipelinePart,
    devices: [...pipelinePart.devices, ...idlePart.devices.map((d, i) => ({ ...d, name: `idle${i + 1}` }))],
  };
  // Browser terms of the order the lab measures: warm-up 1-2 s, fixed creation 0.1-0.3 s, 1-5 ms links.
  const devices = base.devices.map((d) => ({
    ...d,
    warmupSec: 1 + rand(),
    sessionCreateFixedSec: 0.1 + 0.2 * rand(),
    linkLatencySec: 0.001 + 0.004 * rand(),
  }));
  const problem: PlanProblem = { ...base, devices };
  const running = planOptimal({ ...problem, devices: devices.slice(0, K - 2) }); // the last two pages are idle
  const lostStage = running.stages.reduce((a, b) =>
    b.layers.end - b.layers.start > a.layers.end - a.layers.start ? b : a,
  );
  const remaining = devices.map((_, k) => k).filter((k) => k !== lostStage.device);
  const index = new Map(remaining.map((k, i) => [k, i]));
  // Each page holds its own stage's layers; idle pages hold a random 30% of the layers as spares.
  const held = remaining.map((k) => {
    const own = running.stages.find((s) => s.device === k);
    return {
      layers: [...Array(L).keys()].filter((l) => (own ? l >= own.layers.start && l < own.layers.end : rand() < 0.3)),
    };
  });
  const input: RepairInput = {
    model: problem.model,
    costOptions: problem.costOptions,
    memoryModel: problem.memoryModel,
    devices: remaining.map((k) => devices[k]),
    held,
    replayTokens: problem.tokens + 16,
    survivors: running.stages
      .filter((s) => s.device !== lostStage.device)
      .map((s) => ({ device: index.get(s.device)!, layers: s.layers })),
  };
  let plan: RepairPlan | null = null;
  const t = time(() => (plan = planRepair(input)), 3);
  const r = plan!;
  const row: RepairRow = {
    K,
    L,
    lostLayers: lostStage.layers.end - lostStage.layers.start,
    replayTokens: input.replayTokens,
    repairSeconds: t.median,
    repairCpuSeconds: t.cpu,
    mode: r.mode,
    resumeSec: r.resumeSec,
    rangeSec: r.candidates.range,
    wholeSec: r.candidates.whole,
    coldStartSec: running.latency,
  };
  repairRows.push(row);
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(3));
  console.log(
    `${String(K).padStart(4)}${String(L).padStart(4)}${String(row.lostLayers).padStart(6)}${`${ms(t.median)}/${ms(t.cpu)}`.padStart(14)}${r.mode.padStart(7)}${f(r.resumeSec).padStart(10)}${f(row.rangeSec).padStart(10)}${f(row.wholeSec).padStart(10)}${running.latency.toFixed(3).padStart(9)}`,
  );
}

mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(
  outPath,
  `${JSON.stringify(
    {
      benchmark: 'planner',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, loadavg: loadavg(), node: process.version },
      method:
        'one warm-up run dropped, median of up to 7 runs (1-3 when slow); seconds; *Seconds = wall, *CpuSeconds = process CPU (user + system)',
      quick,
      exactDp: dpRows,
      scalableGap: gapRows,
      scalableLarge: bigRows,
      repair: repairRows,
    },
    null,
    2,
  )}\n`,
);
console.log(`\nsaved ${outPath}`);
