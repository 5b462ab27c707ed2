/**
 * `npm run bench [-- --preset realistic|demo|tiny --lab paper --peers 4 --tokens 256 --decode-tokens 32 --skip hop,plans,decode,api,failover]`:
 * the end-to-end measurements, saved to bench/results/e2e.json and reported against the goals:
 *   1. cold-start TTFT of the DP plan vs even, heuristic and single-device plans on a device-lab line-up
 *      (default paper-shaped; one browser with DevTools throttling where the lab cannot run), after one
 *      calibration request (e2e/scenario.ts, as the demo)     goals (issue 12, e2e/calibration-goals.ts):
 *      per plan TTFT and median phase error after calibration <= 15 %, DP fastest and <= 0.8x even,
 *      measured ranking of the plans == predicted ranking
 *   2. decode tokens/s of a K-page pipeline vs one page (unemulated pages) vs transformers.js generate()
 *      on the same weights (export-full, Node)              goals: K-page >= 0.8x one page, one page >= 1.0x transformers.js
 *   3. per-hop activation latency and throughput over a data channel, 4 KB .. 4 MB frames
 *   4. raw IndexedDB read MB/s vs shard load (blob -> session ready)        goal: load >= 0.5x raw read
 *   5. TTFT through the OpenAI-compatible API vs the host's Go on one warm session, and the SSE chunk
 *      latency after the token's report reaches the server (e2e/api-bench.ts)    goal: API - Go <= 50 ms
 *   6. failover: 10 injected failures on lab devices, recovery time (loss detected -> next token) vs the
 *      repair plan's predicted resume time (e2e/failover-bench.ts)                goal: all 10 recover
 * Figures are measured on this machine (the plans on lab devices, the other parts with every page in one
 * headless Chromium); nothing is a timed test.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { TandemError } from '../core/errors.ts';
import type { PlanMethod } from '../core/protocol.ts';
import { requireE2e } from './environment.ts';
import { Harness } from './harness.ts';
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
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';
import { LAB_LINEUPS } from './profiles.ts';
import { promptOfTokens } from './prompt.ts';
import { ensureExportFull } from './reference.ts';
import type { PlanRun } from './run-summary.ts';
import type { DemoReport } from './report-html.ts';
import { ringBudget, stepBreakdown, type RingBudget } from '../core/step-breakdown.ts';
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

/**
 * Where a decode token went in a measured run, from the pages' own step phases (core/step-breakdown.ts):
 * the first stage's median cycle beside each stage's median input → compute, compute and compute → sent;
 * the pages share no clock, so the wire and wake-ups between them are the cycle minus the stages' steps.
 */
function breakdownOf(run: PlanRun) {
  const order = [...run.stages].sort((a, b) => a.stageIndex - b.stageIndex);
  return stepBreakdown(order.map((s) => ({ timings: run.timings[s.peerId] ?? [], offsetMs: null })));
}

/**
 * One hop's latency for a decode step's frame, measured on its own by the hop bench: the one-way time of the
 * smallest size that holds the hidden states (else the largest measured).
 */
function hopOneWayMs(hop: HopBenchResult, frameBytes: number): number | null {
  const sizes = [...hop.sizes].sort((a, b) => a.bytes - b.bytes);
  return (sizes.find((s) => s.bytes >= frameBytes) ?? sizes.at(-1))?.oneWayMs ?? null;
}

function decodeSteps(run: PlanRun): {
  perTokenMs: number | null;
  betweenMs: number | null;
  stages: ({ ingressMs: number; kernelMs: number; egressMs: number } | null)[];
} {
  const b = breakdownOf(run);
  return {
    perTokenMs: b.perTokenMs,
    betweenMs: b.ringWireMs,
    stages: b.stages.map((m) => m && { ingressMs: m.ingressMs, kernelMs: m.kernelMs, egressMs: m.egressMs }),
  };
}

interface LongTaskFigures {
  /** main-thread tasks > 50 ms on any page between "go" and the end of the cold request */
  count: number;
  maxMs: number | null;
}

interface DecodeResult {
  coldLongTasks: { plan: string; tasks: LongTaskFigures }[];
  pipeline: { stages: number; tokensPerSec: number | null; run: PlanRun } | null;
  onePage: { tokensPerSec: number | null; run: PlanRun } | null;
  transformers: { tokensPerSec: number; method: string } | null;
  shardLoad: {
    unitBytes: number;
    storageReadSeconds: number;
    loadSeconds: number;
    readMBps: number;
    loadMBps: number;
    stage: string;
  }[];
}

/** K unemulated pages: an even K-stage pipeline and a single-page plan, greedy, `newTokens` each. */
async function decodeBench(
  chromium: string,
  model: ModelFixture,
  k: number,
  newTokens: number,
  log: (l: string) => void,
): Promise<DecodeResult> {
  const prompt = await promptOfTokens(model.packageDir, 32);
  const h = await Harness.start({ chromium, model, backend: 'wasm', log });
  try {
    await h.createSession('bench-decode');
    await h.openPeers(Array.from({ length: k }, (_, i) => ({ name: `plain${i + 1}` })));
    await h.waitProfiled();
    // The first request of a plan is the cold one (units read from IndexedDB, sessions created): it gives
    // the shard-load figures. The second reuses what the pages kept and gives the decode rate, free of
    // one-off work (tokenizer load, first wasm compile).
    const coldLongTasks: DecodeResult['coldLongTasks'] = [];
    const runOf = async (method: PlanMethod) => {
      const plan = await h.plan(method, prompt.tokens);
      await h.waitCached(plan);
      const since = await Promise.all(h.pages.map((p) => p.pageNow()));
      const cold = await h.go(plan, prompt.text, 2);
      const tasks = (await Promise.all(h.pages.map((p, i) => p.longTasks(since[i])))).flat();
      coldLongTasks.push({
        plan: method,
        tasks: { count: tasks.length, maxMs: tasks.length ? Math.max(...tasks.map((t) => t.durationMs)) : null },
      });
      return { cold, warm: await h.go(plan, prompt.text, newTokens) };
    };
    // Warm-up through every page (one-time wasm compile, tokenizer load), not reported.
    await runOf('even');
    const pipeline = await runOf('even');
    const one = await runOf('single');
    const pipelineRun = pipeline.warm;
    const oneRun = one.warm;
    const shardLoad = [...pipeline.cold.stages, ...one.cold.stages].flatMap((s) => {
      if (!s.measured || !(s.measured.storageRead > 0)) return [];
      const units = model.manifest.units.filter(
        (u) =>
          (u.kind === 'embed' && s.embeds) ||
          (u.kind === 'head' && s.hasHead) ||
          (u.kind === 'layer' && u.layer !== undefined && u.layer >= s.range.start && u.layer < s.range.end),
      );
      const bytes = units.reduce((a, u) => a + u.bytes, 0);
      const loadSeconds = s.measured.storageRead + s.measured.sessionCreate;
      return [
        {
          stage: `${s.name} layers ${s.layers}`,
          unitBytes: bytes,
          storageReadSeconds: s.measured.storageRead,
          loadSeconds,
          readMBps: bytes / s.measured.storageRead / 1e6,
          loadMBps: bytes / loadSeconds / 1e6,
        },
      ];
    });
    return {
      coldLongTasks: coldLongTasks.slice(1), // the first is the warm-up's
      pipeline: {
        stages: pipelineRun.stages.length,
        tokensPerSec: pipelineRun.metrics.decodeTokensPerSec,
        run: pipelineRun,
      },
      onePage: { tokensPerSec: oneRun.metrics.decodeTokensPerSec, run: oneRun },
      transformers: null,
      shardLoad,
    };
  } finally {
    await h.stop();
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
  tokens: { type: 'string', default: '256', arg: 'N', help: 'prompt length in tokens (default 256)' },
  'new-tokens': {
    type: 'string',
    default: '8',
    arg: 'N',
    help: 'tokens generated per plan-comparison request (default 8)',
  },
  'decode-tokens': {
    type: 'string',
    default: '32',
    arg: 'N',
    help: 'tokens generated for the decode-rate runs (default 32)',
  },
  repeats: {
    type: 'string',
    default: '3',
    arg: 'R',
    help: 'cold requests per plan method, each on a fresh plan; the median is reported (default 3)',
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
    labCpu = report.labCpu ?? null;
    profiles = report.profiles ?? null;
  }

  let decode: DecodeResult | null = null;
  if (!skip.has('decode')) {
    log(`bench: decode, ${peers}-page pipeline vs one page vs transformers.js`);
    decode = await decodeBench(chromium.path, model, peers, decodeTokens, log);
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

  // Stages whose units are big enough to time (the tiny model's 0.15 MB layers read in ~1 ms).
  const loadRatios = decode?.shardLoad.filter((s) => s.unitBytes >= 8 << 20).map((s) => s.loadMBps) ?? [];
  const medianLoad = loadRatios.length
    ? [...loadRatios].sort((a, b) => a - b)[Math.floor(loadRatios.length / 2)]
    : null;
  const longestColdTask = decode?.coldLongTasks.map((c) => c.tasks.maxMs ?? 0) ?? [];
  const hopMs = hop ? hopOneWayMs(hop, model.manifest.config.hidden_size * 4) : null;
  const budget: RingBudget | null =
    decode?.pipeline && hopMs !== null ? ringBudget(breakdownOf(decode.pipeline.run), hopMs) : null;
  const goals: Goal[] = [
    ...calibrationGoals(calibration, lineup),
    ratioGoal(
      `${peers}-page decode / one-page decode`,
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
    goal(`${peers}-page per-token time / (sum of stage kernels + ${peers} one-way hops)`, budget?.ratio, '<=', 1.1),
    ratioGoal('shard load MB/s (median stage >= 8 MiB) / raw IDB read', medianLoad, hop?.idb.readMBps, '>=', 0.5),
    apiTtftGoal(api),
    failoverGoal(failover, FAILOVER_DEFAULTS.failures),
    goal(
      'longest main-thread task during a cold request (ms; 0 = none > 50 ms)',
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
    lineup,
    coldStart: plans.map((r) => ({
      method: r.method,
      stages: r.stages.length,
      predictedT: r.predictedLatency,
      ttft: r.metrics.ttft,
      driverTtft: r.driverTtft,
      decodeTokensPerSec: r.metrics.decodeTokensPerSec,
      perStage: r.stages,
      // the pages' raw phase reports (ms from each page's arrival of start), for a look at what the fit saw
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
    labCpu,
    profiles,
    decode: decode && {
      pipeline: decode.pipeline && {
        stages: decode.pipeline.stages,
        tokensPerSec: decode.pipeline.tokensPerSec,
        steps: decodeSteps(decode.pipeline.run),
        ringBudget: budget,
      },
      onePage: decode.onePage && { tokensPerSec: decode.onePage.tokensPerSec, steps: decodeSteps(decode.onePage.run) },
      coldLongTasks: decode.coldLongTasks,
      transformers: decode.transformers,
      tokens: decodeTokens,
    },
    hops: hop,
    api,
    failover,
    shardLoad: decode?.shardLoad ?? [],
    notes: [
      lineup.endsWith(' lab')
        ? `Plan comparison on the ${lineup}: each page its own headless Chromium in its own CPU control group (quota = its share of a core) and network namespace (links shaped by tc tbf), plus its ?emulate= storage read cap. Hops, decode and API: pages in one headless Chromium.`
        : 'All pages share one headless Chromium on this machine; emulated heterogeneity = CDP CPU throttling + ?emulate= storage read caps (labelled in the pages).',
      `Plans: ${WARM_UP_REQUESTS} unreported warm-up requests, then one calibration request (even plan, cold); every plan after it is made and predicted with the refitted parameters. Each plan method runs ${repeats} time(s) from cold, each on a fresh plan; the plan rows and goal rows are the run of median measured TTFT (every run is under "repeats"). Goal rows after calibration come from the calibration report (e2e/calibration-report.ts).`,
      "TTFT = the last stage's first sampled token, from its arrival of the server's start message (page clock); driverTtft = Node driver go -> first output message.",
      "Decode tokens/s = (tokens after the first) / (time from the first to the last sampled token), last stage's clock; the pipeline is an even plan over unemulated pages.",
      'Shard load = unit bytes / (IndexedDB storage read + onnxruntime-web session create) per stage, i.e. blob -> session ready.',
    ],
  };
  const saved = writeBenchJson(values.out, result);

  const f = (x: number | null | undefined, d = 3) => (x == null ? '-' : x.toFixed(d));
  console.log(`${'goal'.padEnd(72)}   value  target  met`);
  for (const g of goals)
    console.log(
      `${g.name.padEnd(72)} ${f(g.value).padStart(7)}  ${g.target.padEnd(7)} ${g.met === null ? 'n/a' : g.met ? 'yes' : 'NO'}`,
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
      `\ndecode tok/s: ${decode.pipeline?.stages}-page ${f(decode.pipeline?.tokensPerSec, 1)}, one page ${f(decode.onePage?.tokensPerSec, 1)}, transformers.js ${f(decode.transformers?.tokensPerSec, 1)}`,
    );
    for (const [what, r] of [
      ['pipeline', decode.pipeline?.run],
      ['one page', decode.onePage?.run],
    ] as const) {
      if (!r) continue;
      const d = decodeSteps(r);
      console.log(
        `${what} per token ${f(d.perTokenMs, 2)} ms: stages (input → compute / compute / compute → sent ms) ${d.stages
          .map((m) => (m ? `${f(m.ingressMs, 2)}/${f(m.kernelMs, 2)}/${f(m.egressMs, 2)}` : '-'))
          .join('  ')}; between stages ${f(d.betweenMs, 2)} ms`,
      );
    }
    if (budget)
      console.log(
        `pipeline per token ${f(budget.perTokenMs, 2)} ms against its kernels ${f(budget.kernelMs, 2)} + hops ${f(budget.hopsMs, 2)} ms (x ${f(budget.ratio, 2)})`,
      );
    for (const c of decode.coldLongTasks)
      console.log(`cold ${c.plan}: ${c.tasks.count} main-thread tasks > 50 ms, longest ${f(c.tasks.maxMs, 0)} ms`);
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
