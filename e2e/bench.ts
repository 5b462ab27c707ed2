/**
 * `npm run bench [-- --preset realistic|demo|tiny --lab paper --decode-lab equal --peers 4 --tokens 256 --decode-tokens 128 --skip hop,plans,decode,api,failover]`:
 * the end-to-end measurements, saved to bench/results/e2e.json and reported against the goals:
 *   1. cold-start TTFT of the DP plan vs even, heuristic and single-device plans on a device-lab line-up
 *      (default paper-shaped; one browser with DevTools throttling where the lab cannot run), after one
 *      calibration request (e2e/scenario.ts, as the demo)     goals (issue 12, e2e/calibration-goals.ts):
 *      per plan TTFT and median phase error after calibration <= 15 %, DP fastest and <= 0.8x even,
 *      measured ranking of the plans == predicted ranking
 *   2. decode tokens/s of a K-page pipeline vs one page (e2e/decode-bench.ts: K equal lab devices, the one
 *      page on one of them; --decode-lab off: unemulated pages of one browser) vs transformers.js generate()
 *      on the same weights (export-full, Node)              goals: K-page >= 0.8x one page, one page >= 1.0x transformers.js;
 *      per token <= the stages' kernels + K one-way hops (over the same links) + 10 %
 *   3. per-hop activation latency and throughput over a data channel, 4 KB .. 4 MB frames (one browser)
 *   4. shard load (blob -> session ready) vs the raw IndexedDB read of the same units on a device of the
 *      same emulation (off the lab: the one-browser raw read of part 3)     goal: load >= 0.5x raw read
 *   5. TTFT through the OpenAI-compatible API vs the host's Go on one warm session, and the SSE chunk
 *      latency after the token's report reaches the server (e2e/api-bench.ts)    goal: API - Go <= 50 ms
 *   6. failover: 10 injected failures on lab devices, recovery time (loss detected -> next token) vs the
 *      repair plan's predicted resume time (e2e/failover-bench.ts)                goal: all 10 recover
 * Figures are measured on this machine (the plans and the decode runs on lab devices, the other parts with
 * every page in one headless Chromium); nothing is a timed test.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { TandemError } from '../core/errors.ts';
import { requireE2e } from './environment.ts';
import { apiTtftGoal, runApiBench, type ApiBenchResult } from './api-bench.ts';
import {
  FAILOVER_DEFAULTS,
  failoverGoal,
  printFailoverSummary,
  runFailoverBench,
  type FailoverBenchResult,
} from './failover-bench.ts';
import { goal, outOption, ratioGoal, writeBenchJson, type Goal } from './bench-output.ts';
import { labSupport } from './lab.ts';
import { formatLabCpu, type LabCpuReport } from './lab-cpu.ts';
import { lineupPeers } from './lineup.ts';
import { calibrationGoals } from './calibration-goals.ts';
import { runHopBench, type HopBenchResult } from './hop-bench.ts';
import { ensureModelFixture } from './model-fixture.ts';
import { LAB_LINEUPS } from './profiles.ts';
import { promptOfTokens } from './prompt.ts';
import { ensureExportFull } from './reference.ts';
import type { PlanRun } from './run-summary.ts';
import type { DemoReport } from './report-html.ts';
import { ringBudget, type RingBudget } from '../core/step-breakdown.ts';
import { breakdownOf, DECODE_LABS, decodeBench, decodeSteps, type DecodeResult } from './decode-bench.ts';
import { hopForFrame, shardLoadRatio } from './decode-figures.ts';
import { formatCalibrationReport, type CalibrationReport } from './calibration-report.ts';
import { runPlanComparison } from './scenario.ts';
import { WARM_UP_REQUESTS } from '../signaling/calibration-store.ts';
import {
  choiceOption,
  cliUsage,
  integerOption,
  parseCliArgs,
  runCliIfEntryPoint,
  usageError,
  type CliOption,
} from '../core/cli.ts';

const RESULTS = resolve('bench/results/e2e.json');

/** A run's stage pages in ring order. */
function stagePages(run: PlanRun): string[] {
  return [...run.stages].sort((a, b) => a.stageIndex - b.stageIndex).map((s) => s.name);
}

/** transformers.js generate() decode rate on the export-full model (Node, onnxruntime-node CPU). */
async function transformersDecodeRate(
  exportDir: string,
  prompt: string,
  newTokens: number,
): Promise<{ tokensPerSec: number; method: string }> {
  const { AutoModelForCausalLM, AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(resolve(exportDir))}/`;
  const id = exportDir.split('/').filter(Boolean).at(-1)!;
  const tok = await AutoTokenizer.from_pretrained(id);
  const text = tok.apply_chat_template<false>([{ role: 'user', content: prompt }], {
    tokenize: false,
    add_generation_prompt: true,
  });
  const inputs = tok(text, { add_special_tokens: false });
  const model = await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp32', device: 'cpu' });
  try {
    const promptLength = inputs.input_ids.dims.at(-1)!;
    const time = async (n: number) => {
      const t0 = performance.now();
      const out = (await model.generate({ ...inputs, max_new_tokens: n, min_new_tokens: n, do_sample: false })) as {
        dims: number[];
      };
      const seconds = (performance.now() - t0) / 1000;
      const generated = out.dims.at(-1)! - promptLength;
      if (generated !== n)
        throw new TandemError(
          'bench-invalid',
          `transformers.js generated ${generated} tokens, not ${n} (an early stop): no decode rate.`,
        );
      return seconds;
    };
    await time(2); // warm-up (session and kernels), dropped
    const one = Math.min(await time(1), await time(1));
    const many = Math.min(await time(newTokens), await time(newTokens));
    if (!(many > one))
      throw new TandemError(
        'bench-invalid',
        `transformers.js took ${many.toFixed(3)} s for ${newTokens} tokens and ${one.toFixed(3)} s for 1: too noisy for a decode rate.`,
      );
    return {
      tokensPerSec: (newTokens - 1) / (many - one),
      method: `transformers.js generate() in Node (onnxruntime-node CPU, 1 process) on export-full; (N-1)/(t(N)-t(1)), best of 2, N=${newTokens}`,
    };
  } finally {
    await model.dispose();
  }
}

const OPTIONS = {
  preset: {
    type: 'string',
    default: 'realistic',
    arg: 'P',
    help: 'seeded model: realistic (split like Qwen3-0.6B), demo or tiny (default realistic)',
  },
  peers: {
    type: 'string',
    default: '4',
    arg: 'K',
    help: 'emulated pages for the plan comparison and the pipeline decode (default 4)',
  },
  lab: {
    type: 'string',
    default: 'paper',
    arg: 'L',
    help:
      'device-lab line-up of the plan comparison: paper, equal, laptop-phones, memory-bound\n' +
      'or off (default paper: each page its own browser, CPU group and shaped links; off =\n' +
      'one browser with DevTools CPU throttling, also the fallback where the lab cannot run)',
  },
  'decode-lab': {
    type: 'string',
    default: 'equal',
    arg: 'L',
    help:
      'where the decode runs go: equal (K lab devices of 1.6/K core each, 100/100 Mbit/s, storage\n' +
      'read uncapped; the one-page run on one of them) or off (unemulated pages of one browser,\n' +
      'also the fallback where the lab cannot run) (default equal)',
  },
  tokens: { type: 'string', default: '256', arg: 'N', help: 'prompt length in tokens (default 256)' },
  'new-tokens': {
    type: 'string',
    default: '8',
    arg: 'N',
    help: 'tokens generated per plan-comparison request (default 8)',
  },
  'decode-tokens': {
    type: 'string',
    // 128, not 32: on the lab a few tokens each run wait out a device's CPU quota (p90 cycle 2x the
    // median), so 32 tokens put the 4-page / one-page ratio anywhere from 0.72 to 1.04 across runs of
    // one session (session 26), and 256 tokens at 0.96-1.05
    default: '128',
    arg: 'N',
    help: 'tokens generated for the decode-rate runs (default 128)',
  },
  repeats: {
    type: 'string',
    default: '3',
    arg: 'R',
    help:
      'runs per plan method, the median reported: in the plan comparison cold requests on fresh plans,\n' +
      'in the decode part the pipeline and the one page alternated (default 3)',
  },
  skip: {
    type: 'string',
    default: '',
    arg: 'LIST',
    help: 'parts to skip: hop, plans, decode, api, failover (comma-separated)',
  },
  out: outOption(RESULTS),
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench -- [options]', OPTIONS);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  const preset = choiceOption(values.preset, '--preset', ['realistic', 'demo', 'tiny'] as const);
  const lab = values.lab;
  if (lab !== 'off' && !(LAB_LINEUPS as readonly string[]).includes(lab))
    throw usageError(`--lab must be one of ${LAB_LINEUPS.join(', ')} or off, not '${lab}'.`);
  const decodeLab = choiceOption(values['decode-lab'], '--decode-lab', DECODE_LABS);
  const skip = new Set(
    values.skip
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const peers = integerOption(values.peers, '--peers', 1, 8);
  const tokens = integerOption(values.tokens, '--tokens', 8, 4096);
  const newTokens = integerOption(values['new-tokens'], '--new-tokens', 1, 1024);
  const repeats = integerOption(values.repeats, '--repeats', 1, 9);
  const decodeTokens = integerOption(values['decode-tokens'], '--decode-tokens', 1, 1024);
  const unknownParts = [...skip].filter((part) => !['hop', 'plans', 'decode', 'api', 'failover'].includes(part));
  if (unknownParts.length > 0)
    throw usageError(`--skip: '${unknownParts.join(',')}' is not one of hop, plans, decode, api, failover`);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const chromium = requireE2e('The bench', log);
  const model = await ensureModelFixture({ preset });
  const started = new Date().toISOString();
  const loadAtStart = loadavg();

  let hop: HopBenchResult | null = null;
  if (!skip.has('hop')) {
    log('bench: data-channel hops and raw IndexedDB read');
    hop = await runHopBench({ chromium: chromium.path });
  }

  let plans: PlanRun[] = [];
  let calibration: CalibrationReport | null = null;
  let calibrationRuns: PlanRun[] = [];
  let coldRuns: PlanRun[] = [];
  let labCpu: LabCpuReport | null = null;
  let profiles: DemoReport['profiles'] | null = null;
  let repeated: DemoReport['repeats'] | null = null;
  // What the plans ran on, as the goal rows and the JSON name it ('paper lab', or the one-browser fallback).
  let lineup = lab === 'off' ? 'one browser, DevTools throttling' : `${lab} lab`;
  if (!skip.has('plans')) {
    const peerSpecs = lineupPeers(
      lab,
      peers,
      model.manifest.units.reduce((a, u) => a + u.bytes, 0),
      log,
    );
    if (lab !== 'off' && !peerSpecs.some((p) => p.device)) lineup = 'NO LAB: one browser, DevTools throttling';
    log(`bench: cold start, DP vs even vs heuristic vs single after one calibration request (${lineup})`);
    const report = await runPlanComparison({
      chromium: chromium.path,
      model,
      peers: peerSpecs,
      methods: ['dp', 'even', 'heuristic', 'single'],
      tokens,
      newTokens,
      backend: 'wasm',
      screenshotDir: null,
      log,
      repeats,
    });
    plans = report.runs;
    repeated = report.repeats ?? null;
    calibration = report.calibration ?? null;
    calibrationRuns = report.calibrationRuns ?? [];
    coldRuns = report.coldRuns ?? [];
    labCpu = report.labCpu ?? null;
    profiles = report.profiles ?? null;
  }

  let decode: DecodeResult | null = null;
  if (!skip.has('decode')) {
    log(`bench: decode, ${peers}-page pipeline vs one page vs transformers.js`);
    decode = await decodeBench({
      chromium: chromium.path,
      model,
      k: peers,
      newTokens: decodeTokens,
      repeats,
      decodeLab,
      log,
    });
    const exportDir = await ensureExportFull(model.packageDir, join(dirname(model.packageDir), 'export-full'));
    const prompt = await promptOfTokens(model.packageDir, 32);
    try {
      decode.transformers = await transformersDecodeRate(exportDir, prompt.text, decodeTokens);
    } catch (err) {
      if (!(err instanceof TandemError)) throw err;
      log(`bench: no transformers.js figure: ${err.message}`);
    }
  }

  let api: ApiBenchResult | null = null;
  if (!skip.has('api')) {
    log('bench: OpenAI-compatible API vs Go on a warm session');
    api = await runApiBench({
      chromium: chromium.path,
      model,
      rounds: 5,
      newTokens: Number(values['new-tokens']),
      log,
    });
  }

  let failover: FailoverBenchResult | null = null;
  if (!skip.has('failover')) {
    const lab = labSupport();
    if (!lab.ok) log(`bench: no failover row: ${lab.reason}`);
    else {
      log(`bench: failover, ${FAILOVER_DEFAULTS.failures} injected failures on lab devices (tiny model)`);
      const tiny = await ensureModelFixture({ preset: 'tiny' });
      failover = await runFailoverBench({ chromium: chromium.path, model: tiny, ...FAILOVER_DEFAULTS, log });
    }
  }

  // What the decode rows compare with: on the lab, figures of devices of the same shape; off it, part 3's.
  const decodeFrameBytes = model.manifest.config.hidden_size * 4;
  const shardLoad = (decode?.shardLoad ?? []).map((s, i) => {
    const raw = decode?.lab ? (decode.lab.unitReads[i] ?? null) : null;
    const rawReadMBps = decode?.lab ? (raw?.readMBps ?? null) : (hop?.idb.readMBps ?? null);
    return { ...s, rawReadMBps, rawReadBytes: decode?.lab ? (raw?.bytes ?? null) : (hop?.idb.bytes ?? null) };
  });
  // Stages whose units are big enough to time (the tiny model's 0.15 MB layers read in ~1 ms).
  const loadRatio = shardLoadRatio(shardLoad, 8 << 20);
  const longestColdTask = decode?.coldLongTasks.map((c) => c.tasks.maxMs ?? 0) ?? [];
  const hopFigures = decode?.lab ?? hop;
  const budgetHop = hopFigures ? hopForFrame(hopFigures.sizes, decodeFrameBytes) : null;
  const hopSource = budgetHop
    ? `${decode?.lab ? 'measured after the decode runs, on fresh devices of their shape' : 'hop bench (part 3)'}: ${hopFigures!.setup}; one-way of a ${budgetHop.bytes}-byte hidden frame (the decode frame is ${decodeFrameBytes} bytes) = median send -> tiny ack minus half the tiny round trip, ${budgetHop.oneWayMs.toFixed(2)} ms`
    : null;
  const rawReadSource = decode?.lab
    ? `${decode.lab.setup}: the same units as each stage, Blob values read at once (get + arrayBuffer), median of 3`
    : hop
      ? `hop bench (part 3), ${hop.setup}: ${hop.idb.method}`
      : null;
  const decodeSetup = decode
    ? decode.setup.coresPerDevice !== null
      ? `${decode.setup.lineup}, ${decode.setup.coresPerDevice} core each`
      : decode.setup.lineup
    : null;
  const on = decodeSetup ? ` (${decodeSetup})` : '';
  // on the lab each stage's device has a share of a core: the goal row sets the kernels at that speed
  const deviceCores = decode?.setup.coresPerDevice ?? null;
  const budget: RingBudget | null =
    decode?.pipeline && budgetHop
      ? ringBudget(
          breakdownOf(decode.pipeline.run),
          budgetHop.oneWayMs,
          deviceCores === null ? null : decode.pipeline.run.stages.map(() => deviceCores),
        )
      : null;
  const goals: Goal[] = [
    ...calibrationGoals(calibration, lineup),
    ratioGoal(
      `${peers}-page decode / one-page decode${on}`,
      decode?.pipeline?.tokensPerSec,
      decode?.onePage?.tokensPerSec,
      '>=',
      0.8,
    ),
    ratioGoal(
      'one-page decode / transformers.js (Node, native CPU) decode',
      decode?.onePage?.tokensPerSec,
      decode?.transformers?.tokensPerSec,
      '>=',
      1.0,
    ),
    budget?.device
      ? goal(
          `${peers}-page per-token time / (sum of stage kernels at the devices' ${deviceCores}-core speed + ${peers} one-way hops)${on}`,
          budget.device.ratio,
          '<=',
          1.1,
        )
      : goal(
          `${peers}-page per-token time / (sum of stage kernels + ${peers} one-way hops)${on}`,
          budget?.ratio,
          '<=',
          1.1,
        ),
    goal(`shard load MB/s / raw IDB read of the same units (median stage >= 8 MiB)${on}`, loadRatio, '>=', 0.5),
    apiTtftGoal(api),
    failoverGoal(failover, FAILOVER_DEFAULTS.failures),
    goal(
      `longest main-thread task during a cold request, go to its last output (ms, wall; 0 = none > 50 ms)${on}`,
      longestColdTask.length ? Math.max(...longestColdTask) : null,
      '<=',
      50,
    ),
  ];

  const chromiumVersion = (() => {
    try {
      return execFileSync(chromium.path, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      return chromium.path;
    }
  })();
  const result = {
    benchmark: 'e2e',
    started,
    finished: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '?',
      memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
      node: process.version,
      chromium: chromiumVersion,
      loadavgAtStart: loadAtStart,
      loadavg: loadavg(),
    },
    model: {
      name: model.manifest.name,
      preset,
      layers: model.manifest.config.num_hidden_layers,
      dtype: model.manifest.dtype,
      bytes: model.manifest.units.reduce((a, u) => a + u.bytes, 0),
    },
    goals,
    // what the plans ran on (absent when they were skipped)
    ...(skip.has('plans') ? {} : { lineup }),
    coldStart: plans.map((r) => ({
      method: r.method,
      stages: r.stages.length,
      predictedT: r.predictedLatency,
      ttft: r.metrics.ttft,
      driverTtft: r.driverTtft,
      decodeTokensPerSec: r.metrics.decodeTokensPerSec,
      perStage: r.stages,
      // the pages' raw phase reports (ms from the server's send of start), for a look at what the fit saw
      timings: r.timings,
    })),
    calibration,
    // every cold run of each plan method; `plans` above holds the one of median TTFT
    repeats: repeated,
    // the warm-up and calibration requests as measured: what the first refit (the DP plan's) was made from
    calibrationRuns: calibrationRuns.map((r, i) => ({
      label: i === calibrationRuns.length - 1 ? 'calibration' : `warm-up ${i + 1}`,
      method: r.method,
      ttft: r.metrics.ttft,
      perStage: r.stages,
      timings: r.timings,
    })),
    // every cold plan run (repeats included) in the order it ran: a replay of the calibration learns from
    // each, as the server did (e2e/calibration-replay.ts)
    coldRuns: coldRuns.map((r) => ({
      method: r.method,
      planId: r.planId,
      predictedT: r.predictedLatency,
      ttft: r.metrics.ttft,
      perStage: r.stages,
      timings: r.timings,
    })),
    labCpu,
    profiles,
    decode: decode && {
      // what the decode runs ran on, and where the budget's hop and the shard-load row's raw read come from
      setup: { ...decode.setup, hopSource, rawReadSource },
      pipeline: decode.pipeline && {
        stages: decode.pipeline.stages,
        pages: stagePages(decode.pipeline.run),
        tokensPerSec: decode.pipeline.tokensPerSec,
        steps: decodeSteps(decode.pipeline.run),
        ringBudget: budget,
        budgetHop,
      },
      onePage: decode.onePage && {
        pages: stagePages(decode.onePage.run),
        tokensPerSec: decode.onePage.tokensPerSec,
        steps: decodeSteps(decode.onePage.run),
      },
      coldLongTasks: decode.coldLongTasks,
      repeats: decode.repeats,
      transformers: decode.transformers,
      tokens: decodeTokens,
      // the lab's hop and raw-read figures (two devices of the decode devices' shape), null off the lab
      labFigures: decode.lab,
      // per decode run, each lab device's CPU used against its quota and its throttled periods
      labCpu: decode.labCpu,
      // how the lab placed the devices' browsers on CPUs (one each, or free and why)
      cpuConfinement: decode.cpuConfinement,
    },
    hops: hop,
    api,
    failover,
    shardLoad: shardLoad.map(({ unitIndices: _, ...s }) => s),
    notes: [
      ...(skip.has('plans')
        ? []
        : [
            lineup.endsWith(' lab')
              ? `Plan comparison on the ${lineup}: each page its own headless Chromium in its own CPU control group (quota = its share of a core) and network namespace (links shaped by tc tbf), plus its ?emulate= storage read cap.`
              : 'Plans: all pages share one headless Chromium on this machine; emulated heterogeneity = CDP CPU throttling + ?emulate= storage read caps (labelled in the pages).',
          ]),
      'Hops (part 3) and API: pages of one headless Chromium, unemulated.',
      ...(decode
        ? [
            decode.lab
              ? `Decode runs on the ${decode.setup.lineup}: each device its own headless Chromium in its own CPU group (${decode.setup.coresPerDevice} core) and namespace (links ${decode.setup.links}), storage read uncapped; the even pipeline over all of them, the single-page plan on one of them. Hop and raw read measured afterwards on two fresh devices of the same shape. Every device's browser has its own profile folder (storage on disk, as on a phone), the raw read's devices as the decode devices.`
              : `Decode runs: ${decode.setup.lineup}; the pipeline's pages share the machine's cores.`,
          ]
        : []),
      `Plans: ${WARM_UP_REQUESTS} unreported warm-up requests, then one calibration request (even plan, cold); every plan after it is made and predicted with the refitted parameters. Each plan method runs ${repeats} time(s) from cold, each on a fresh plan; the plan rows and goal rows are the run of median measured TTFT (every run is under "repeats"). Goal rows after calibration come from the calibration report (e2e/calibration-report.ts).`,
      "TTFT = the last stage's first sampled token, from the server's send of the start message (the last page's clock through its heartbeat clock offset; runs before session 10: from its arrival of start); driverTtft = Node driver go -> first output message.",
      `Decode tokens/s = (tokens after the first) / (time from the first to the last sampled token), last stage's clock; warm request after a warm-up and a cold request of the same plan. The pipeline and the one page run alternately ${repeats} time(s) each (plan, cold request, warm request); each is reported by its run of median decode rate (every run's rate under decode.repeats).`,
      'Shard load = unit bytes / (storage read + onnxruntime-web session create) per stage, i.e. stored unit (an OPFS file, else an IndexedDB Blob) -> session ready.',
    ],
  };
  const saved = writeBenchJson(values.out, result);

  const f = (x: number | null | undefined, d = 3) => (x == null ? '-' : x.toFixed(d));
  const width = Math.max(72, ...goals.map((g) => g.name.length));
  console.log(`${'goal'.padEnd(width)}   value  target  met`);
  for (const g of goals)
    console.log(
      `${g.name.padEnd(width)} ${f(g.value).padStart(7)}  ${g.target.padEnd(7)} ${g.met === null ? 'n/a' : g.met ? 'yes' : 'NO'}`,
    );
  if (plans.length) {
    console.log(`\ncold start (${lineup})\nplan        stages  predicted T (s)  TTFT (s)`);
    for (const r of plans)
      console.log(
        `${r.method.padEnd(11)} ${String(r.stages.length).padStart(6)}  ${f(r.predictedLatency).padStart(15)}  ${f(r.metrics.ttft).padStart(8)}`,
      );
  }
  if (calibration) console.log(`\n${formatCalibrationReport(calibration)}`);
  for (const r of repeated ?? [])
    console.log(
      `${r.method.padEnd(9)} cold runs, measured (predicted) TTFT: ${r.runs.map((x) => `${x.measuredTtft?.toFixed(2) ?? '-'} (${x.predicted.toFixed(2)}) s${x.planId === r.chosen ? ' <- reported' : ''}`).join(', ')}`,
    );
  if (labCpu) console.log(`\n${formatLabCpu(labCpu)}`);
  if (decode) {
    console.log(
      `\ndecode on ${decode.setup.lineup}${decode.setup.coresPerDevice !== null ? `: ${decode.setup.coresPerDevice} core per device, links ${decode.setup.links}` : ''}, storage read cap ${decode.setup.storageCap}`,
    );
    console.log(`hop in the budget: ${hopSource ?? 'not measured'}`);
    console.log(`raw read in the shard-load row: ${rawReadSource ?? 'not measured'}`);
    console.log(
      `decode tok/s: ${decode.pipeline?.stages}-page ${f(decode.pipeline?.tokensPerSec, 1)}, one page ${f(decode.onePage?.tokensPerSec, 1)}, transformers.js ${f(decode.transformers?.tokensPerSec, 1)}`,
    );
    if (decode.repeats)
      console.log(
        `  alternated runs (the medians above): ${decode.pipeline?.stages}-page ${decode.repeats.pipelineTokensPerSec.map((x) => f(x, 1)).join(' / ')}, one page ${decode.repeats.onePageTokensPerSec.map((x) => f(x, 1)).join(' / ')} tok/s`,
      );
    for (const [i, t] of (decode.repeats?.pipelineTokens ?? []).entries())
      if (t)
        console.log(
          `  pipeline run ${i + 1}, tokens on their own account (medians): cycle ${f(t.cycleMs, 2)} ms (p10 ${f(t.cycleP10Ms, 2)}, p90 ${f(t.cycleP90Ms, 2)}) = kernels ${f(t.computeMs, 2)} + stage overhead ${f(t.overheadMs, 2)} + hops ${f(t.wireMs, 2)} ms; one page ${f(decode.repeats?.onePagePerTokenMs?.[i], 2)} ms per token`,
        );
    for (const [what, r] of [
      ['pipeline', decode.pipeline?.run],
      ['one page', decode.onePage?.run],
    ] as const) {
      if (!r) continue;
      const d = decodeSteps(r);
      console.log(
        `${what} (${stagePages(r).join(' -> ')}) per token ${f(d.perTokenMs, 2)} ms: stages (input → compute / compute / compute → sent ms) ${d.stages
          .map((m) => (m ? `${f(m.ingressMs, 2)}/${f(m.kernelMs, 2)}/${f(m.egressMs, 2)}` : '-'))
          .join('  ')}; between stages ${f(d.betweenMs, 2)} ms${
          d.clockBoundMs !== null
            ? ` (per hop ${d.hopsMs.map((x) => f(x, 2)).join(' / ')} ms, pages on the server's clock to ${f(d.clockBoundMs, 1)} ms)`
            : ''
        }`,
      );
    }
    if (budget) {
      const between = decode.pipeline ? decodeSteps(decode.pipeline.run).betweenMs : null;
      console.log(
        `pipeline per token ${f(budget.perTokenMs, 2)} ms against its kernels ${f(budget.kernelMs, 2)} + hops ${f(budget.hopsMs, 2)} ms (x ${f(budget.ratio, 2)}); between stages ${f(between, 2)} ms = ${f(between === null ? null : between / (decode.pipeline?.stages ?? 1), 2)} ms per hop in the ring, against ${f(budgetHop?.oneWayMs, 2)} ms measured alone`,
      );
      if (budget.device) {
        const onePageKernel = decode.onePage ? (decodeSteps(decode.onePage.run).stages[0]?.kernelMs ?? null) : null;
        console.log(
          `at the devices' speed (${budget.device.cores.join(' / ')} core): kernels ${f(budget.device.kernelMs, 2)} + hops ${f(budget.hopsMs, 2)} ms (x ${f(budget.device.ratio, 2)}); cross-check: one page of the same shape computes the whole model in ${f(onePageKernel, 2)} ms per token (kernel as timed, the quota paid inside it)`,
        );
      }
      const t = decode.pipeline ? decodeSteps(decode.pipeline.run).tokens : null;
      if (t)
        console.log(
          `pipeline tokens, each on its own account (medians): cycle ${f(t.cycleMs, 2)} ms (p10 ${f(t.cycleP10Ms, 2)}, p90 ${f(t.cycleP90Ms, 2)}) = kernels ${f(t.computeMs, 2)} + stage overhead ${f(t.overheadMs, 2)} + hops ${f(t.wireMs, 2)} ms`,
        );
    }
    for (const c of decode.coldLongTasks) {
      console.log(
        `cold ${c.plan}: ${c.tasks.count} main-thread tasks > 50 ms, longest ${f(c.tasks.maxMs, 0)} ms (wall); per page ${c.perPage
          .map((p) => `${p.page} ${p.count}/${f(p.maxMs, 0)}`)
          .join(', ')} (count/longest ms)${
          c.afterRequest
            ? `; after the request, until its timings were in: ${c.afterRequest.count}, longest ${f(c.afterRequest.maxMs, 0)} ms${c.afterRequest.longestWhat ? ` (${c.afterRequest.longestWhat})` : ''}`
            : ''
        }`,
      );
      if (c.tasks.longestWhat) console.log(`  the longest ran: ${c.tasks.longestWhat}`);
    }
    console.log('shard load (stage: unit MB, load MB/s = read + create s, raw read MB/s of the same units, ratio)');
    for (const s of shardLoad)
      console.log(
        `  ${s.plan} ${s.stage}: ${f(s.unitBytes / 1e6, 1)} MB, load ${f(s.loadMBps, 1)} = ${f(s.storageReadSeconds, 3)} + ${f(s.loadSeconds - s.storageReadSeconds, 3)} s, raw ${f(s.rawReadMBps, 1)}, x ${f(s.rawReadMBps ? s.loadMBps / s.rawReadMBps : null, 2)}`,
      );
    if (decode.labCpu) console.log(`decode runs' ${formatLabCpu(decode.labCpu)}`);
    if (decode.lab) {
      const l = decode.lab;
      console.log(
        `lab hop (${l.setup}): tiny round trip ${f(l.tinyRoundTripMs, 2)} ms; ${l.sizes.map((x) => `${x.bytes} B: median ${f(x.hopMedianMs, 2)}, p90 ${f(x.hopP90Ms, 2)}, one-way ${f(x.oneWayMs, 2)} ms`).join('; ')}`,
      );
    }
  }
  if (hop) {
    console.log(
      `\ndata channel: tiny round trip ${f(hop.tinyRoundTripMs, 2)} ms\nframe bytes   hop median (ms)   one-way est (ms)   stream MB/s`,
    );
    for (const s of hop.sizes)
      console.log(
        `${String(s.bytes).padStart(11)}   ${f(s.hopMedianMs, 2).padStart(15)}   ${f(s.oneWayMs, 2).padStart(16)}   ${f(s.streamMBps, 1).padStart(11)}`,
      );
    console.log(`IndexedDB raw read ${f(hop.idb.readMBps, 0)} MB/s (${hop.idb.method})`);
  }
  if (failover) {
    console.log("\nfailover (loss detected -> next token vs the repair plan's predicted resume)");
    printFailoverSummary(failover);
  }
  console.log(`\nsaved ${saved}`);
  return 0;
}

runCliIfEntryPoint(import.meta.url, { program: 'bench', usage: USAGE, main });
