/**
 * The decode part of `npm run bench` (issue 11's rows): an even K-stage pipeline against the single-page
 * plan, greedy: after one unreported warm-up round, the two alternate `repeats` times, each time a plan, a
 * cold request (shard load, main-thread long tasks) and a warm one (the decode rate); each is reported by
 * its run of median decode rate.
 *
 * On the device lab (`--decode-lab equal`, the default where the lab can run) the K pages are K equal
 * devices (e2e/profiles.ts `equal`: 1.6/K core each, 100/100 Mbit/s links; storage read NOT capped, so
 * shard load meets the raw storage speed) and the single-page plan runs on one of those same devices. After
 * the runs, two more devices of the same shape measure what the goal rows compare against (e2e/hop-bench.ts):
 * the one-way data-channel hop of a decode frame over the same links, and the raw IndexedDB read of each
 * compared stage's own units under the same CPU quota. With `off` (or where the lab cannot run, loudly) the
 * pages are unemulated pages of one browser, as before the lab, and the caller's hop bench gives both figures.
 */
import { labSupport, type LabDeviceShape } from './lab.ts';
import { labCpuReport, startLabCpuSampler, type LabCpuReport, type LabRunWindow } from './lab-cpu.ts';
import { GREEDY, Harness } from './harness.ts';
import { runHopBench, type HopBenchResult } from './hop-bench.ts';
import type { ModelFixture } from './model-fixture.ts';
import { labPeers } from './profiles.ts';
import { promptOfTokens } from './prompt.ts';
import type { PlanRun } from './run-summary.ts';
import type { PeerSpec } from './tandem-page.ts';
import { longTaskFigures, stageUnitIndices, type LongTaskFigures } from './decode-figures.ts';
import { medianRunIndex } from './median-run.ts';
import type { PlanMethod } from '../core/protocol.ts';
import { stepBreakdown, type StepBreakdown } from '../core/step-breakdown.ts';

export const DECODE_LABS = ['equal', 'off'] as const;
export type DecodeLab = (typeof DECODE_LABS)[number];

/** What the decode runs ran on, as the JSON and the printed text state it. */
export interface DecodeSetup {
  /** e.g. 'equal lab, 4 devices' or 'one browser, unemulated pages' */
  lineup: string;
  /** each device's CPU quota, cores (null: unemulated pages sharing the machine) */
  coresPerDevice: number | null;
  /** each device's links, e.g. '100/100 Mbit/s (tc tbf)' (null: no shaping) */
  links: string | null;
  /** the pages' storage read cap */
  storageCap: string;
}

export interface ShardLoadFigures {
  stage: string;
  plan: string;
  unitBytes: number;
  storageReadSeconds: number;
  loadSeconds: number;
  readMBps: number;
  loadMBps: number;
  /** indices into the manifest's units: what the raw read of the same bytes reads */
  unitIndices: number[];
}

export interface ColdLongTasks {
  plan: string;
  /** over every page from `go` to the cold request's last output (each page's clock read as it came) */
  tasks: LongTaskFigures;
  /** the same per page (device) */
  perPage: ({ page: string } & LongTaskFigures)[];
  /**
   * Over every page after the request, until its timings were in (~1-2 s): the pages draw what the end
   * brought (the last output, the other stages' decode phases, the calibration). Counted in `tasks`
   * before session 26; absent in older results.
   */
  afterRequest?: LongTaskFigures;
}

export interface DecodeResult {
  setup: DecodeSetup;
  coldLongTasks: ColdLongTasks[];
  pipeline: { stages: number; tokensPerSec: number | null; run: PlanRun } | null;
  onePage: { tokensPerSec: number | null; run: PlanRun } | null;
  /** each alternated run's warm figures, in order (pipeline and onePage above are the runs of median rate) */
  repeats: {
    pipelineTokensPerSec: (number | null)[];
    onePageTokensPerSec: (number | null)[];
    pipelinePerTokenMs: (number | null)[];
    /** each pipeline run's tokens on their own account (medians; null without a shared clock) */
    pipelineTokens?: ReturnType<typeof decodeSteps>['tokens'][];
    onePagePerTokenMs?: (number | null)[];
  } | null;
  transformers: { tokensPerSec: number; method: string } | null;
  shardLoad: ShardLoadFigures[];
  /**
   * On the lab: the hop and raw-read figures measured on two devices of the same shape (the budget's hop
   * and the shard-load row's raw read come from here); null off the lab.
   */
  lab: HopBenchResult | null;
  /** On the lab: per run (cold and warm of each plan), each device's CPU used against its quota and its throttled periods. */
  labCpu: LabCpuReport | null;
  /** On the lab: how the devices' browsers were placed on CPUs (lab.ts `confinement`); null off the lab. */
  cpuConfinement: string | null;
}

/**
 * Where a decode token went in a measured run, from the pages' own step phases (core/step-breakdown.ts):
 * the first stage's median cycle beside each stage's median input → compute, compute and compute → sent.
 * Where every page timed the run on the server's clock (PlanRun.clocks), each hop's wire and wake-ups are
 * read across its two pages; otherwise only their sum, the cycle minus the stages' steps.
 */
export function breakdownOf(run: PlanRun): StepBreakdown {
  const order = [...run.stages].sort((a, b) => a.stageIndex - b.stageIndex);
  const shared = order.every((s) => typeof run.clocks?.[s.peerId] === 'number');
  return stepBreakdown(order.map((s) => ({ timings: run.timings[s.peerId] ?? [], offsetMs: shared ? 0 : null })));
}

export function decodeSteps(run: PlanRun): {
  perTokenMs: number | null;
  betweenMs: number | null;
  stages: ({ ingressMs: number; kernelMs: number; egressMs: number } | null)[];
  /** per hop (stage i -> i + 1, the last -> first last), median ms from hand-over to the next input; null without a shared clock */
  hopsMs: (number | null)[];
  /** the largest bound of the pages' clocks on the server's, ms; null without a shared clock */
  clockBoundMs: number | null;
  /**
   * Each token's own account (kernels, the stages' ingress + egress, the hops' wire), medians over tokens;
   * with the cycle's 10th and 90th percentiles. A cycle far above the sum of the parts' medians means the
   * extra time moves around the ring, a different place each token. Null without a shared clock.
   */
  tokens: {
    cycleMs: number;
    computeMs: number;
    overheadMs: number;
    wireMs: number;
    cycleP10Ms: number;
    cycleP90Ms: number;
  } | null;
} {
  const b = breakdownOf(run);
  const shared = b.tokens.length > 0;
  const bounds = run.stages.map((s) => run.clocks?.[s.peerId]);
  return {
    perTokenMs: b.perTokenMs,
    betweenMs: b.ringWireMs,
    stages: b.stages.map((m) => m && { ingressMs: m.ingressMs, kernelMs: m.kernelMs, egressMs: m.egressMs }),
    hopsMs: b.hopWireMs,
    clockBoundMs: shared ? Math.max(...bounds.map((x) => x ?? 0)) : null,
    tokens: b.median
      ? {
          ...b.median,
          cycleP10Ms: quantile(
            b.tokens.map((t) => t.cycleMs),
            0.1,
          ),
          cycleP90Ms: quantile(
            b.tokens.map((t) => t.cycleMs),
            0.9,
          ),
        }
      : null,
  };
}

/** The q-quantile of `xs` (nearest rank). */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** The pages of the decode runs: K equal lab devices (read uncapped), or K plain pages (off / no lab, loudly). */
function decodePeers(
  decodeLab: DecodeLab,
  k: number,
  modelBytes: number,
  log: (line: string) => void,
): { peers: PeerSpec[]; setup: DecodeSetup; shape: LabDeviceShape | null } {
  const plain = (lineup: string) => ({
    peers: Array.from({ length: k }, (_, i): PeerSpec => ({ name: `plain${i + 1}` })),
    setup: { lineup, coresPerDevice: null, links: null, storageCap: 'none' },
    shape: null,
  });
  if (decodeLab === 'off') return plain('one browser, unemulated pages (--decode-lab off)');
  const support = labSupport();
  if (!support.ok) {
    const line = '!'.repeat(100);
    log(
      `${line}\n!!! NO DEVICE LAB for the decode runs: ${support.reason}\n!!! Falling back to unemulated pages of one browser: the pipeline's pages contend for the same cores, the one page does not.\n${line}`,
    );
    return plain('NO LAB: one browser, unemulated pages');
  }
  const peers = labPeers(decodeLab, k, modelBytes, { readCap: false });
  const shape = peers[0].device!;
  return {
    peers,
    setup: {
      lineup: `${decodeLab} lab, ${k} devices`,
      coresPerDevice: shape.cores,
      links: `${shape.uplinkMbps}/${shape.downlinkMbps} Mbit/s (tc tbf)`,
      storageCap: 'none (CPU quota and links only)',
    },
    shape,
  };
}

/** K pages: an even K-stage pipeline and a single-page plan, greedy, `newTokens` each. */
export async function decodeBench(opts: {
  chromium: string;
  model: ModelFixture;
  k: number;
  newTokens: number;
  /** alternated runs of the pipeline and of the one page (each reported by its run of median decode rate) */
  repeats: number;
  decodeLab: DecodeLab;
  log: (l: string) => void;
}): Promise<DecodeResult> {
  const { chromium, model, k, newTokens, repeats, log } = opts;
  const units = model.manifest.units;
  const { peers, setup, shape } = decodePeers(
    opts.decodeLab,
    k,
    units.reduce((a, u) => a + u.bytes, 0),
    log,
  );
  log(`bench: decode on ${setup.lineup}`);
  const prompt = await promptOfTokens(model.packageDir, 32);
  const h = await Harness.start({ chromium, model, backend: 'wasm', log, ...(shape ? { lab: peers } : {}) });
  let result: Omit<DecodeResult, 'lab'>;
  try {
    await h.createSession('bench-decode');
    await h.openPeers(peers);
    await h.waitProfiled();
    // Did each device get its quota while it decoded, and how often did it run out of it (throttled periods)?
    const sampler = h.lab ? startLabCpuSampler(h.lab.devices) : null;
    const windows: LabRunWindow[] = [];
    let runNo = 0;
    const timed = async (
      label: string,
      plan: Awaited<ReturnType<Harness['plan']>>,
      tokens: number,
      onDone?: () => Promise<void>,
    ) => {
      const startMs = Date.now();
      const run = await h.go(plan, prompt.text, tokens, GREEDY, undefined, onDone);
      windows.push({ label, startMs, endMs: Date.now(), run });
      return run;
    };
    // The first request of a plan is the cold one (units read from IndexedDB, sessions created): it gives
    // the shard-load figures. The second reuses what the pages kept and gives the decode rate, free of
    // one-off work (tokenizer load, first wasm compile).
    const coldLongTasks: ColdLongTasks[] = [];
    const runOf = async (method: PlanMethod, repeat = 0) => {
      const plan = await h.plan(method, prompt.tokens);
      await h.waitCached(plan);
      await h.waitPrepared(plan); // the stages' warm-ups (a first creation rehearsed) are over: the request measures itself
      const since = await Promise.all(h.pages.map((p) => p.pageNow()));
      const round = ++runNo === 1 ? 'warm-up ' : '';
      const nth = repeat > 0 ? ` #${repeat}` : '';
      let until: number[] = h.pages.map(() => Infinity);
      const cold = await timed(`${round}${method}${nth} cold`, plan, 2, async () => {
        until = await Promise.all(h.pages.map((p) => p.pageNow()));
      });
      const perPage = await Promise.all(
        h.pages.map(async (p, i) => {
          const all = await p.longTasks(since[i]);
          return {
            page: p.spec.name,
            tasks: all.filter((t) => t.startMs < until[i]),
            after: all.filter((t) => t.startMs >= until[i]),
          };
        }),
      );
      coldLongTasks.push({
        plan: method,
        tasks: longTaskFigures(perPage.flatMap((p) => p.tasks)),
        perPage: perPage.map((p) => ({ page: p.page, ...longTaskFigures(p.tasks) })),
        afterRequest: longTaskFigures(perPage.flatMap((p) => p.after)),
      });
      return { cold, warm: await timed(`${round}${method}${nth} warm`, plan, newTokens) };
    };
    // Warm-up through every page (one-time wasm compile, tokenizer load), not reported.
    await runOf('even');
    // The pipeline and the one page alternate, `repeats` times each, and each is reported by its run of
    // median decode rate: on this shared machine one run's kernels alone moved 2x with the host's load,
    // and alternating puts both plans under the same drift.
    const pipelines: Awaited<ReturnType<typeof runOf>>[] = [];
    const ones: Awaited<ReturnType<typeof runOf>>[] = [];
    for (let r = 1; r <= repeats; r++) {
      pipelines.push(await runOf('even', r));
      ones.push(await runOf('single', r));
    }
    // the median by seconds per token (medianRunIndex's key): a run without a rate sorts last, as a failed one
    const byRate = (runs: typeof pipelines) =>
      runs[
        medianRunIndex(
          runs.map((x) => {
            const rate = x.warm.metrics.decodeTokensPerSec;
            return { measuredTtft: rate !== null && rate > 0 ? 1 / rate : null };
          }),
        )
      ];
    const pipeline = byRate(pipelines);
    const one = byRate(ones);
    const shardLoad = [pipeline.cold, one.cold].flatMap((run) =>
      run.stages.flatMap((s): ShardLoadFigures[] => {
        if (!s.measured || !(s.measured.storageRead > 0)) return [];
        const unitIndices = stageUnitIndices(units, s);
        const bytes = unitIndices.reduce((a, i) => a + units[i].bytes, 0);
        const loadSeconds = s.measured.storageRead + s.measured.sessionCreate;
        return [
          {
            stage: `${s.name} layers ${s.layers}`,
            plan: run.method,
            unitBytes: bytes,
            storageReadSeconds: s.measured.storageRead,
            loadSeconds,
            readMBps: bytes / s.measured.storageRead / 1e6,
            loadMBps: bytes / loadSeconds / 1e6,
            unitIndices,
          },
        ];
      }),
    );
    const trace = sampler?.stop() ?? null;
    result = {
      cpuConfinement: h.lab?.confinement ?? null,
      labCpu: trace
        ? labCpuReport(
            trace,
            windows.filter((w) => !w.label.startsWith('warm-up')),
            peers.map((p) => p.name),
          )
        : null,
      setup,
      coldLongTasks: coldLongTasks.slice(1), // the first is the warm-up's
      pipeline: {
        stages: pipeline.warm.stages.length,
        tokensPerSec: pipeline.warm.metrics.decodeTokensPerSec,
        run: pipeline.warm,
      },
      onePage: { tokensPerSec: one.warm.metrics.decodeTokensPerSec, run: one.warm },
      repeats: {
        pipelineTokensPerSec: pipelines.map((x) => x.warm.metrics.decodeTokensPerSec),
        onePageTokensPerSec: ones.map((x) => x.warm.metrics.decodeTokensPerSec),
        pipelinePerTokenMs: pipelines.map((x) => decodeSteps(x.warm).perTokenMs),
        pipelineTokens: pipelines.map((x) => decodeSteps(x.warm).tokens),
        onePagePerTokenMs: ones.map((x) => decodeSteps(x.warm).perTokenMs),
      },
      transformers: null,
      shardLoad,
    };
  } finally {
    await h.stop();
  }
  if (!shape) return { ...result, lab: null };
  // The comparison figures, on two fresh devices of the same shape (the decode lab is gone: nothing else runs).
  log(`bench: hop and raw IndexedDB read on two lab devices of ${shape.cores} core`);
  const lab = await runHopBench({
    chromium,
    lab: shape,
    // the decode frame: one position's hidden state, float32 (the codec adds its framing)
    sizes: [model.manifest.config.hidden_size * 4],
    reps: 30,
    streamFrames: 4,
    warmUpRounds: 100,
    idbBytes: 16 << 20,
    unitReads: {
      sizes: units.map((u) => u.bytes),
      sets: result.shardLoad.map((s) => ({ label: `${s.plan}: ${s.stage}`, keys: s.unitIndices })),
      runs: 3,
    },
  });
  return { ...result, lab };
}
