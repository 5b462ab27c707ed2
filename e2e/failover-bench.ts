/**
 * `npm run bench:failover` (also part of `npm run bench`; `--skip failover` leaves it out): N injected
 * failures (default 10) on a session of lab devices (e2e/failover-scenario.ts; tiny model, greedy): each
 * request loses one page at token `--at`, the stage taken in turn the middle, first and last one, every
 * third loss a cut network link instead of a closed tab. Per failure:
 *   recovery time = loss detected -> next token (the server's `recoveredInMs`, one clock)
 *   predicted     = the repair plan's predictedResumeSec (loads of the moved layers + replay prefill)
 * and whether the request ended with the tokens of an uninterrupted run (`npm run generate`, one stage).
 * Goal: all N recover. Saves bench/results/failover.json. Figures, not tests: nothing asserts a duration.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { TandemError } from '../core/errors.ts';
import { cliUsage, integerOption, parseCliArgs, runCliIfEntryPoint, usageError, type CliOption } from '../core/cli.ts';
import { requireE2e } from './environment.ts';
import { goal, outOption, writeBenchJson, type Goal } from './bench-output.ts';
import { FailoverSession, type Loss } from './failover-scenario.ts';
import { labSupport } from './lab.ts';
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';
import { nodeRunnerTokens } from './reference.ts';

const RESULTS = resolve('bench/results/failover.json');
const PROMPT = 'Name three colours of the rainbow.';

export interface FailoverSample {
  index: number;
  how: Loss['how'];
  stage: Loss['stage'];
  /** the loss reason the server gave ('left', 'heartbeat', 'link-lost') */
  reason: string | null;
  mode: 'range' | 'whole' | null;
  replayTokens: number | null;
  predictedResumeSec: number | null;
  /** loss detected -> next token, server clock, s (null when it did not recover) */
  recoverySec: number | null;
  /** recoverySec / predictedResumeSec */
  ratio: number | null;
  recovered: boolean;
  tokensMatch: boolean;
  lossInFlight: boolean;
}

export interface FailoverBenchResult {
  failures: number;
  recovered: number;
  samples: FailoverSample[];
  medianRecoverySec: number | null;
  medianPredictedSec: number | null;
  medianRatio: number | null;
  loadAverage: number[];
  method: string;
}

function median(xs: readonly number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const STAGES: Loss['stage'][] = ['middle', 'first', 'last'];

export async function runFailoverBench(o: {
  chromium: string;
  model: ModelFixture;
  failures: number;
  devices: number;
  newTokens: number;
  at: number;
  log: (line: string) => void;
}): Promise<FailoverBenchResult> {
  const reference = await nodeRunnerTokens({
    packageDir: o.model.packageDir,
    prompt: PROMPT,
    maxNewTokens: o.newTokens,
  });
  const f = await FailoverSession.start({ chromium: o.chromium, model: o.model, devices: o.devices, log: o.log });
  const samples: FailoverSample[] = [];
  try {
    for (let i = 0; i < o.failures; i++) {
      // a middle stage needs 3 pages; refill the emptied devices before that (fresh pages, mid-session)
      if (f.livePages().length < 3) await f.refill();
      const plan = await f.planAll();
      const loss: Loss = { atGenerated: o.at, stage: STAGES[i % STAGES.length], how: i % 3 === 2 ? 'cut' : 'close' };
      const run = await f.run(plan, PROMPT, o.newTokens, [loss]);
      await f.closeCut();
      const repair = run.repairs.at(0) ?? null;
      const recoveredMs = run.recoveredInMs.at(0) ?? null;
      const tokensMatch = JSON.stringify(run.tokenIds) === JSON.stringify(reference.generated);
      const sample: FailoverSample = {
        index: i + 1,
        how: loss.how,
        stage: loss.stage,
        reason: run.lost.at(0)?.reason ?? null,
        mode: repair?.mode ?? null,
        replayTokens: repair?.replayTokens ?? null,
        predictedResumeSec: repair?.predictedResumeSec ?? null,
        recoverySec: recoveredMs === null ? null : recoveredMs / 1000,
        ratio:
          recoveredMs !== null && repair && repair.predictedResumeSec > 0
            ? recoveredMs / 1000 / repair.predictedResumeSec
            : null,
        recovered: run.finishReason === 'max-tokens' && run.failed.length === 0 && run.lost.length > 0 && tokensMatch,
        tokensMatch,
        lossInFlight: run.lossesInFlight,
      };
      samples.push(sample);
      o.log(
        `failover-bench: ${i + 1}/${o.failures}: ${loss.how} ${loss.stage} -> ${sample.reason ?? 'no loss seen'}, ${sample.mode ?? '-'}; recovered ${sample.recovered} in ${sample.recoverySec?.toFixed(2) ?? '-'} s (predicted ${sample.predictedResumeSec?.toFixed(2) ?? '-'} s)`,
      );
    }
  } finally {
    await f.stop();
  }
  const ok = samples.filter((s) => s.recovered);
  return {
    failures: o.failures,
    recovered: ok.length,
    samples,
    medianRecoverySec: median(ok.flatMap((s) => (s.recoverySec === null ? [] : [s.recoverySec]))),
    medianPredictedSec: median(ok.flatMap((s) => (s.predictedResumeSec === null ? [] : [s.predictedResumeSec]))),
    medianRatio: median(ok.flatMap((s) => (s.ratio === null ? [] : [s.ratio]))),
    loadAverage: loadavg(),
    method:
      `${o.devices} lab devices (own Chromium, namespace and CPU share each), tiny model, wasm, ` +
      `greedy, ${o.newTokens} tokens, an even plan over the live pages; one page taken away per request once the host saw ${o.at} tokens ` +
      '(tab closed, or every third time its link cut) while every page holds after that token (?hold=, so the loss lands mid-request). Recovery = server clock from the loss detection to the first new token ' +
      "(output.recoveredInMs); predicted = the repair's predictedResumeSec. Recovered = the request ended with the one-stage reference tokens.",
  };
}

/** The run `npm run bench:failover` makes without options (and `npm run bench`'s failover part). */
export const FAILOVER_DEFAULTS = { failures: 10, devices: 5, newTokens: 16, at: 5 };
const D = FAILOVER_DEFAULTS;

/** The failover goal: every one of `failures` injected failures recovers (not measured without a run). */
export function failoverGoal(result: FailoverBenchResult | null, failures: number): Goal {
  return goal(`requests that recover from ${failures} injected failures`, result?.recovered, '=', failures);
}

const OPTIONS = {
  failures: {
    type: 'string',
    default: String(D.failures),
    arg: 'N',
    help: `injected failures, one per request (default ${D.failures})`,
  },
  devices: {
    type: 'string',
    default: String(D.devices),
    arg: 'N',
    help: `lab devices, one page each (default ${D.devices}; 4 layers of the tiny model, a spare)`,
  },
  'new-tokens': {
    type: 'string',
    default: String(D.newTokens),
    arg: 'N',
    help: `tokens per request (default ${D.newTokens})`,
  },
  at: {
    type: 'string',
    default: String(D.at),
    arg: 'N',
    help: `take the page away once the host saw N tokens (default ${D.at})`,
  },
  out: outOption(RESULTS),
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench:failover -- [options]', OPTIONS);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  const failures = integerOption(values.failures, '--failures', 1, 100);
  const devices = integerOption(values.devices, '--devices', 3, 6);
  const newTokens = integerOption(values['new-tokens'], '--new-tokens', 2, 256);
  const at = integerOption(values.at, '--at', 1, 255);
  if (at >= newTokens) throw usageError(`--at (${at}) must be below --new-tokens (${newTokens})`);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const chromium = requireE2e('The failover bench', log);
  const lab = labSupport();
  if (!lab.ok) throw new TandemError('lab-unavailable', `The failover bench needs the device lab: ${lab.reason}`);
  const model = await ensureModelFixture({ preset: 'tiny' });
  const started = new Date().toISOString();
  const result = await runFailoverBench({
    chromium: chromium.path,
    model,
    failures,
    devices,
    newTokens,
    at,
    log,
  });
  const out = {
    benchmark: 'failover',
    started,
    finished: new Date().toISOString(),
    model: model.manifest.name,
    goal: failoverGoal(result, failures),
    ...result,
  };
  const saved = writeBenchJson(values.out, out);
  printFailoverSummary(result);
  console.log(`saved ${saved}`);
  return result.recovered === failures ? 0 : 1;
}

export function printFailoverSummary(r: FailoverBenchResult): void {
  const f = (x: number | null, d = 2) => (x === null ? '-' : x.toFixed(d));
  console.log('#   loss            reason     mode    replay  predicted (s)  recovery (s)  ratio  recovered');
  for (const s of r.samples)
    console.log(
      `${String(s.index).padStart(2)}  ${`${s.how} ${String(s.stage)}`.padEnd(14)}  ${(s.reason ?? '-').padEnd(9)}  ${(s.mode ?? '-').padEnd(6)}  ${String(s.replayTokens ?? '-').padStart(6)}  ${f(s.predictedResumeSec).padStart(13)}  ${f(s.recoverySec).padStart(12)}  ${f(s.ratio).padStart(5)}  ${s.recovered ? 'yes' : 'NO'}`,
    );
  console.log(
    `recovered ${r.recovered}/${r.failures}; median recovery ${f(r.medianRecoverySec)} s vs predicted ${f(r.medianPredictedSec)} s (ratio ${f(r.medianRatio)}); load average ${r.loadAverage.map((x) => x.toFixed(2)).join(' ')}`,
  );
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:failover', usage: USAGE, main });
