/**
 * Replays a saved lab run (`npm run bench` JSON with `calibrationRuns`, `coldStart` and `profiles`)
 * through the server's calibration (signaling/calibration-store.ts) and predicts every plan run as the
 * server does: with the parameters refitted from the requests before it. A change to the cost model or
 * the fits can be judged on real lab measurements without a browser:
 *
 *   npm run calibration-replay -- bench/results/e2e-lab-s7-run3.json [more.json]
 *
 * With the code that ran the bench, the predictions equal its `predictedT` where the file has every cold
 * run (`coldRuns`, since session 11); older files hold only each method's reported run, so the store
 * misses the repeats in between and the replay drifts from the bench. Pure apart from the CLI.
 */
import { readFileSync } from 'node:fs';
import type { ModelManifest } from '../shards/manifest.ts';
import type { ProfileReport, TimingEntry } from '../core/protocol.ts';
import { TandemError } from '../core/errors.ts';
import { parseCliArgs, runCliIfEntryPoint, usageError } from '../core/cli.ts';
import { calibratedDevice } from '../planner/calibration.ts';
import { COMPARED_PHASES, measuredPhases, predictedPhases, relativeError } from '../planner/phase-comparison.ts';
import { median } from '../planner/robust-fit.ts';
import { evaluatePlan } from '../planner/timing.ts';
import { CalibrationStore } from '../signaling/calibration-store.ts';
import { modelConfigFor, profileDevice } from '../signaling/planning.ts';
import { PHASE_FLOOR_SEC } from './calibration-report.ts';

/** One saved request: its stages (pipeline order) and each page's phase report. */
export interface SavedRun {
  method: string;
  /** The plan's id and the TTFT the bench's server predicted for it (cold plan runs only). */
  planId?: string;
  predictedT?: number;
  ttft: number | null;
  perStage: {
    peerId: string;
    name: string;
    range: { start: number; end: number };
    embeds: boolean;
    hasHead: boolean;
  }[];
  timings: Record<string, TimingEntry[]>;
}

/** What the replay needs of a bench JSON. */
export interface SavedBench {
  /** Warm-up and calibration requests, in order (not predicted, only learnt from). */
  calibrationRuns: SavedRun[];
  /** The reported plans (one per method), in the order they ran. */
  coldStart: SavedRun[];
  /**
   * Every cold plan run, repeats included, in the order it ran (bench runs since session 11). The server
   * learnt from each; a replay of `coldStart` alone misses the repeats between them and drifts from it.
   */
  coldRuns?: SavedRun[];
  /** Page display name -> its profile. */
  profiles: Record<string, ProfileReport | null>;
}

export interface ReplayedPlan {
  method: string;
  planId: string | null;
  /** What the bench's server predicted for this run (null where the file does not say). */
  benchPredictedTtft: number | null;
  measuredTtft: number | null;
  predictedTtft: number;
  ttftError: number | null;
  /** Median relative error over the phases of at least PHASE_FLOOR_SEC (finish left out). */
  medianPhaseError: number | null;
  /** Every stage's compared phases, measured and predicted (s), finish left out. */
  phases: { stage: number; name: string; phase: string; measured: number; predicted: number }[];
}

const NO_TIMES = { load: 0, wait: 0, comm: 0, compute: 0, startTime: 0, finishTime: 0 };

export function replayCalibration(manifest: ModelManifest, bench: SavedBench, tokens: number): ReplayedPlan[] {
  const store = new CalibrationStore(manifest);
  const runs = [...bench.calibrationRuns, ...(bench.coldRuns ?? bench.coldStart)];
  const profileOf = (name: string): ProfileReport => {
    const p = bench.profiles[name];
    if (!p) throw new TandemError('replay-invalid', `No profile of page '${name}' in the run; re-run the bench.`);
    return p;
  };
  const out: ReplayedPlan[] = [];
  runs.forEach((run, i) => {
    const stages = run.perStage.map((s, n) => ({
      stageIndex: n,
      peerId: s.peerId,
      displayName: s.name,
      layers: s.range,
      embeds: s.embeds,
      hasHead: s.hasHead,
      ...NO_TIMES,
    }));
    const peers = run.perStage.map((s) => ({ peerId: s.peerId, profile: profileOf(s.name) }));
    const timings = run.perStage.map((s) => run.timings[s.peerId] ?? []);
    if (i >= bench.calibrationRuns.length) {
      const params = store.paramsFor('replay', peers);
      const problem = {
        model: modelConfigFor(manifest),
        devices: peers.map((p, k) => calibratedDevice(profileDevice(p), params[k])),
        tokens,
        embeddingAndHead: true,
      };
      const plan = run.perStage.map((s, n) => ({ device: n, layers: s.range }));
      const predicted = predictedPhases(problem, plan);
      const phases = measuredPhases(timings).flatMap((m, n) =>
        m
          ? COMPARED_PHASES.filter((ph) => ph !== 'finish').map((phase) => ({
              stage: n,
              name: run.perStage[n].name,
              phase,
              measured: m[phase],
              predicted: predicted[n][phase],
            }))
          : [],
      );
      const errors = phases
        .filter((p) => p.measured >= PHASE_FLOOR_SEC)
        .map((p) => relativeError(p.predicted, p.measured)!);
      const T = evaluatePlan(problem, plan).latency;
      out.push({
        method: run.method,
        planId: run.planId ?? null,
        benchPredictedTtft: run.predictedT ?? null,
        measuredTtft: run.ttft,
        predictedTtft: T,
        ttftError: run.ttft ? relativeError(T, run.ttft) : null,
        medianPhaseError: errors.length ? median(errors) : null,
        phases,
      });
    }
    // then it teaches the store, as the pages' reports did
    store.onTimings(
      'replay',
      {
        requestId: i + 1,
        planId: `replay-${i + 1}`,
        tokens,
        stages,
        timings: new Map(stages.map((s, n) => [s.peerId, timings[n]])),
        ended: true,
      },
      new Map(peers.map((p) => [p.peerId, p.profile])),
      true,
    );
  });
  return out;
}

const USAGE = `usage: npm run calibration-replay -- [--tokens N] [--phases] BENCH.json [more.json]
  Replays saved lab runs through the server's calibration and prints, per plan, the TTFT the current
  code predicts after calibration against the measured one (and the median per-phase error).
  --tokens N   prompt length the plans were made for (default 256, the bench's)
  --phases     also print every stage's phases, measured / predicted (s), and the error
  --help       this text`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { tokens: { type: 'string', default: '256' }, phases: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  if (positionals.length === 0) throw usageError('give at least one bench JSON');
  const tokens = Number(values.tokens);
  if (!Number.isInteger(tokens) || tokens < 1)
    throw usageError(`--tokens must be a positive integer, not '${values.tokens}'`);
  const { ensureModelFixture } = await import('./model-fixture.ts');
  const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(0)}%`);
  for (const file of positionals) {
    const json = JSON.parse(readFileSync(file, 'utf8')) as SavedBench & {
      model: { preset: 'realistic' | 'demo' | 'tiny' };
    };
    if (!Array.isArray(json.calibrationRuns) || typeof json.profiles !== 'object')
      throw new TandemError(
        'replay-invalid',
        `${file} has no calibrationRuns or profiles: runs before session 7 did not save them.`,
      );
    const { manifest } = await ensureModelFixture({ preset: json.model.preset });
    const plans = replayCalibration(manifest, json, tokens);
    const order = (key: (p: ReplayedPlan) => number | null) =>
      plans
        .filter((p) => key(p) !== null)
        .sort((a, b) => key(a)! - key(b)!)
        .map((p) => p.method)
        .join(' < ');
    console.log(
      `${file}: ranking measured ${order((p) => p.measuredTtft)}; predicted ${order((p) => p.predictedTtft)}`,
    );
    if (!json.coldRuns)
      console.log('  (no coldRuns in this file: only the reported runs are replayed, so predictions drift)');
    for (const p of plans) {
      console.log(
        `  ${p.method.padEnd(10)} measured ${p.measuredTtft?.toFixed(3) ?? '-'} s, predicted ${p.predictedTtft.toFixed(3)} s (the bench's code: ${p.benchPredictedTtft?.toFixed(3) ?? '-'}), error ${pct(p.ttftError)}, median phase error ${pct(p.medianPhaseError)}`,
      );
      if (values.phases)
        for (const ph of p.phases.filter((x) => x.measured > 0 || x.predicted > 0))
          console.log(
            `      ${ph.stage} ${ph.name.padEnd(12)} ${ph.phase.padEnd(15)} ${ph.measured.toFixed(3)} / ${ph.predicted.toFixed(3)} s${ph.measured >= PHASE_FLOOR_SEC ? `  ${pct(relativeError(ph.predicted, ph.measured))}` : '  (under the floor)'}`,
          );
    }
  }
}

runCliIfEntryPoint(import.meta.url, { program: 'calibration-replay', usage: USAGE, main });
