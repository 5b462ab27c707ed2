/**
 * The cold-start comparison the demo and the bench both run: one session of K emulated pages; for each
 * plan method (DP, even, heuristic, single device) plan, let the pages cache their units, then run one
 * request from cold (every `go` loads the stage from the page's storage into a fresh onnxruntime-web
 * session) and record predicted vs measured; with `repeats`, several, each on a fresh plan, reported by
 * the median. Shared by e2e/demo.ts and e2e/bench.ts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PlanMethod, RosterPeer, ServerMessageOf } from '../core/protocol.ts';
import { TandemError } from '../core/errors.ts';
import { Harness } from './harness.ts';
import type { ModelFixture } from './model-fixture.ts';
import { promptOfTokens } from './prompt.ts';
import type { DemoReport, ReportPeer } from './report-html.ts';
import type { PlanRun } from './run-summary.ts';
import { calibrationReport, type MeasuredPlan } from './calibration-report.ts';
import { medianRunIndex, type RepeatedRun } from './median-run.ts';
import type { PeerSpec } from './tandem-page.ts';
import { labCpuReport, startLabCpuSampler, type LabRunWindow } from './lab-cpu.ts';
import { WARM_UP_REQUESTS } from '../signaling/calibration-store.ts';

export interface ComparisonOptions {
  chromium: string;
  model: ModelFixture;
  peers: PeerSpec[];
  methods: PlanMethod[];
  /** Prompt length in tokens; the plans are optimised for it. */
  tokens: number;
  newTokens: number;
  backend: 'auto' | 'wasm' | 'webgpu';
  /** Where screenshots go (null: none). */
  screenshotDir: string | null;
  log: (line: string) => void;
  verboseServer?: boolean;
  /**
   * Cold requests per plan method (default 1), each on a plan made afresh (a second go on the same plan
   * would find its stages loaded). The report keeps the run of median TTFT (median-run.ts): a lab device's
   * session creation alone varied 0.2-2.4 s between identical requests, so one run per plan ranks noise.
   */
  repeats?: number;
}

export function reportPeer(p: RosterPeer): ReportPeer {
  const prof = p.profile;
  return {
    name: p.displayName,
    emulated: p.emulated ?? prof?.emulated ?? null,
    peakFlops: prof?.peakFlops ?? NaN,
    readBytesPerSec: prof?.readBytesPerSec ?? NaN,
    uplinkBitsPerSec: prof?.uplinkBitsPerSec ?? NaN,
    downlinkBitsPerSec: prof?.downlinkBitsPerSec ?? NaN,
    memoryBytes: prof?.memoryBytes ?? NaN,
    backend: prof?.backend ?? '?',
  };
}

export async function runPlanComparison(o: ComparisonOptions): Promise<DemoReport> {
  const prompt = await promptOfTokens(o.model.packageDir, o.tokens);
  o.log(`prompt: ${prompt.tokens} tokens (asked ${o.tokens})`);
  const labPeers = o.peers.filter((p) => p.device);
  const h = await Harness.start({
    chromium: o.chromium,
    model: o.model,
    backend: o.backend,
    log: o.log,
    verboseServer: o.verboseServer,
    ...(labPeers.length > 0 ? { lab: labPeers } : {}),
  });
  // Units cached and every stage built before `go`: a start that finds a page busy building its stage (a
  // last stage's tokenizer load is seconds of main thread on a lab device) starts its clock late, and its
  // phases and the TTFT read short (seen: 7.5 s on the last page's clock, 13.8 s at the driver).
  const ready = async (plan: ServerMessageOf<'plan-ready'>) => {
    await h.waitCached(plan);
    try {
      await h.waitPrepared(plan);
    } catch (err) {
      if (!(err instanceof TandemError)) throw err;
      o.log(`!!! ${plan.method}: not every stage was built before go; its timings may read short: ${err.message}`);
    }
  };
  try {
    await h.createSession('demo');
    o.log(`opening ${o.peers.length} pages one by one (each profiles itself alone)`);
    await h.openPeers(o.peers, { oneByOne: true });
    await h.waitProfiled();
    const peers = h.roster().map(reportPeer);
    for (const p of peers) {
      o.log(
        `  ${p.name.padEnd(14)} ${p.emulated ?? 'real'}: ${(p.peakFlops / 1e9).toFixed(2)} GFLOP/s, read ${(p.readBytesPerSec / 2 ** 20).toFixed(0)} MiB/s, ${p.backend}`,
      );
    }
    // The lab's CPU while the requests run: did each device get its quota, and was the machine busy?
    const sampler = h.lab ? startLabCpuSampler(h.lab.devices) : null;
    const windows: LabRunWindow[] = [];
    const timed = async (label: string, plan: ServerMessageOf<'plan-ready'>, prompt: string, tokens: number) => {
      const startMs = Date.now();
      const run = await h.go(plan, prompt, tokens);
      windows.push({ label, startMs, endMs: Date.now(), run });
      return run;
    };
    // Warm-up, not reported: short requests through every page, so each page's one-time costs (the
    // onnxruntime-web wasm compile, V8's tier-up, the tokenizer load) are not charged to whichever plan runs
    // first: on the lab a page's first two requests computed 2-3x slower per layer than later ones, so there
    // are as many as the server's calibration treats as warm-up (WARM_UP_REQUESTS).
    // Every measured request is still a cold start: units read from the browser's storage into fresh sessions.
    for (let i = 1; i <= WARM_UP_REQUESTS; i++) {
      const warm = await h.plan('even', prompt.tokens);
      await ready(warm);
      await timed(`warm-up ${i}`, warm, prompt.text, 1);
      o.log(`warm-up request ${i} done`);
    }
    // The calibration request (issue 12): a fresh even plan from cold, a few tokens; the server refits every
    // page from its timings (a page's warm-up requests count no more once it has this one).
    const calibrationPlan = await h.plan('even', prompt.tokens);
    await ready(calibrationPlan);
    await timed('calibration', calibrationPlan, prompt.text, Math.min(o.newTokens, 8));
    o.log('calibration request done');
    const runs: PlanRun[] = [];
    const measured: MeasuredPlan[] = [];
    const refused: string[] = [];
    const repeats = o.repeats ?? 1;
    const repeated: { method: PlanMethod; chosen: string; runs: RepeatedRun[] }[] = [];
    for (const method of o.methods) {
      const tries: { plan: ServerMessageOf<'plan-ready'>; run: PlanRun }[] = [];
      for (let r = 1; r <= repeats; r++) {
        const label = repeats > 1 ? `${method} #${r}` : method;
        let plan;
        try {
          plan = await h.plan(method, prompt.tokens);
        } catch (err) {
          // A plan the server cannot make (e.g. no single device holds the model) is a result, not a crash.
          if (!(err instanceof TandemError)) throw err;
          o.log(`${method}: no plan: ${err.message}`);
          refused.push(`${method}: no plan (${err.message.split('\n')[0]})`);
          break;
        }
        o.log(`${label}: caching units`);
        await ready(plan);
        const run = await timed(label, plan, prompt.text, o.newTokens);
        o.log(
          `${label}: predicted T ${plan.predictedLatency.toFixed(3)} s, measured TTFT ${run.metrics.ttft?.toFixed(3) ?? '-'} s, decode ${run.metrics.decodeTokensPerSec?.toFixed(1) ?? '-'} tok/s`,
        );
        if (o.screenshotDir) {
          mkdirSync(o.screenshotDir, { recursive: true });
          const host = h.page(plan.stages[0].displayName);
          await host.page.waitForTimeout(300);
          const file = `host-${method}${repeats > 1 ? `-${r}` : ''}.png`;
          await host.screenshot(join(o.screenshotDir, file));
          run.screenshot = file;
        }
        tries.push({ plan, run });
      }
      if (tries.length === 0) continue;
      const chosen = tries[medianRunIndex(tries.map((t) => ({ measuredTtft: t.run.metrics.ttft })))];
      if (repeats > 1) {
        repeated.push({
          method,
          chosen: chosen.plan.planId,
          runs: tries.map(({ plan, run }) => ({
            planId: plan.planId,
            predicted: plan.predictedLatency,
            measuredTtft: run.metrics.ttft,
            stages: plan.stages.map((s) => `${s.displayName}:${s.layers.end - s.layers.start}`).join(' -> '),
          })),
        });
        o.log(
          `${method}: ${tries.length} cold runs, TTFT ${tries.map((t) => t.run.metrics.ttft?.toFixed(2) ?? '-').join(' / ')} s; reported: the median`,
        );
      }
      runs.push(chosen.run);
      measured.push({ plan: chosen.plan, measuredTtft: chosen.run.metrics.ttft, timings: chosen.run.timings });
    }
    const manifest = o.model.manifest;
    const trace = sampler?.stop() ?? null;
    const labNames = labPeers.map((p) => p.name);
    return {
      // the profiles the planner started from, per page (what a replay of the calibration needs)
      profiles: Object.fromEntries(h.roster().map((p) => [p.displayName, p.profile ?? null])),
      calibrationRuns: windows
        .filter((w) => w.label.startsWith('warm-up') || w.label === 'calibration')
        .map((w) => w.run),
      // every plan run in the order it ran, each a lesson for the server's calibration (a replay needs all)
      coldRuns: windows.filter((w) => !w.label.startsWith('warm-up') && w.label !== 'calibration').map((w) => w.run),
      ...(trace ? { labCpu: labCpuReport(trace, windows, labNames) } : {}),
      title: `Tandem cold start: ${o.peers.length} emulated pages`,
      createdAt: new Date().toISOString(),
      model: {
        name: manifest.name,
        layers: manifest.config.num_hidden_layers,
        dtype: manifest.dtype,
        bytes: manifest.units.reduce((s, u) => s + u.bytes, 0),
      },
      prompt: prompt.text,
      maxNewTokens: o.newTokens,
      backend: o.backend,
      peers,
      runs,
      calibration: calibrationReport(manifest, h.roster(), measured),
      ...(repeats > 1 ? { repeats: repeated } : {}),
      notes: [
        `Prompt ${prompt.tokens} tokens (chat template included); plans optimised for ${prompt.tokens} tokens.`,
        labPeers.length > 0
          ? 'Each page is a lab device: its own headless Chromium in its own network namespace (links shaped by tc tbf) and CPU control group (quota = its share of a core), plus its ?emulate= storage read cap; the planner used the profiles the pages measured there.'
          : "All pages run in ONE headless Chromium on this machine; heterogeneity is emulated (Chromium CPU throttling through the DevTools protocol, and each page's ?emulate= storage read cap), and the planner used the profiles the pages measured under that emulation.",
        ...refused,
        "Every request is a cold start: each stage reads its units from the browser's storage (origin private file system files where the browser has them, IndexedDB otherwise) and creates a fresh onnxruntime-web session on \"go\". Timings are per page, from the server's send of the start message (each page's clock through its heartbeat clock offset).",
        `${WARM_UP_REQUESTS} unreported warm-up requests (even plan, 1 token) run first, so that per-page one-time costs (wasm compile, V8 tier-up, tokenizer load) do not land on the calibration or the first plan measured.`,
        'Then one calibration request (a fresh even plan, from cold): the server refits every page from its timings, and each plan after it is made, and predicted, with the refitted parameters (each run refits again). "before" is the same plan predicted from the pages\' profiles alone.',
        ...(repeats > 1
          ? [
              `Each plan method ran ${repeats} times from cold, each time on a plan made afresh (predicted with the parameters refitted so far); per method the report shows the run of median measured TTFT, with its own prediction and phases, and lists every run under "repeats".`,
            ]
          : []),
      ],
    };
  } catch (err) {
    o.log(h.diagnostics());
    throw err;
  } finally {
    await h.stop();
  }
}
