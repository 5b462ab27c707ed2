/**
 * `npm run bench:load-parts [-- --preset realistic --repeats 3 --cores 0.4]`: what loading a stage in parts
 * (shards/runtime/stage-parts.ts) does to a cold start. One page runs the whole model (a single-page plan)
 * and loads it cold from its cache, again and again: `?parts=off` (one session, created once every unit is
 * read) against `?parts=on` (each part's session created while the next part's units are read on the
 * inference worker's reader thread), alternated. Twice: on a plain page of this host's headless Chromium
 * (every core of the host), and on one lab device of `--cores` cores (its own Chromium in a CPU control
 * group), where the reads and the creations can only take turns. Each setting also reports the page's own
 * parallel-load figure (profiler/parallel-load.ts), which decides `?parts=auto`.
 * Figures per cold request: storage read (the read's span), the creation after it, their sum (the load) and
 * TTFT; medians over the repeats. Saved to bench/results/load-parts.json; nothing here is a timed test.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import {
  choiceOption,
  cliUsage,
  integerOption,
  numberOption,
  parseCliArgs,
  runCliIfEntryPoint,
  type CliOption,
} from '../core/cli.ts';
import { median } from '../core/step-breakdown.ts';
import type { ParallelLoad } from '../client/profiler/parallel-load.ts';
import { outOption, PRESET_OPTION, writeBenchJson } from './bench-output.ts';
import { requireE2e } from './environment.ts';
import { Harness } from './harness.ts';
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';
import { promptOfTokens } from './prompt.ts';

const RESULTS = resolve('bench/results/load-parts.json');

interface ColdLoad {
  storageReadSec: number;
  sessionCreateSec: number;
  loadSec: number;
  ttftSec: number | null;
  /** the request's decode rate: a stage in parts runs one more session per part and step */
  decodeTokensPerSec: number | null;
}

interface ModeFigures {
  parts: 'on' | 'off';
  parallel: ParallelLoad | null;
  runs: ColdLoad[];
  median: ColdLoad;
  loadMBps: number;
}

interface SettingFigures {
  setting: string;
  off: ModeFigures;
  on: ModeFigures;
  /** median load with parts / without: < 1 is faster */
  loadRatio: number;
}

const med = (runs: ColdLoad[], key: keyof ColdLoad): number =>
  median(runs.map((r) => r[key]).filter((x): x is number => x !== null));

/** One harness: one page (a lab device when `cores` is given), `repeats` cold single-page requests. */
async function coldLoads(
  chromium: string,
  model: ModelFixture,
  prompt: { text: string; tokens: number },
  parts: 'on' | 'off',
  cores: number | null,
  repeats: number,
  newTokens: number,
  log: (l: string) => void,
): Promise<Omit<ModeFigures, 'median' | 'loadMBps'>> {
  const previous = process.env.TANDEM_PAGE_PARAMS;
  process.env.TANDEM_PAGE_PARAMS = `parts=${parts}`;
  const spec =
    cores === null ? { name: 'laptop' } : { name: 'device', device: { cores, uplinkMbps: 100, downlinkMbps: 100 } };
  const h = await Harness.start({ chromium, model, backend: 'wasm', log, ...(cores === null ? {} : { lab: [spec] }) });
  try {
    await h.createSession('bench-load-parts');
    await h.openPeers([spec]);
    await h.waitProfiled();
    const state = await h.pages[0].state<{ profile?: { details?: { load?: { parallel?: ParallelLoad | null } } } }>();
    const parallel = state?.profile?.details?.load?.parallel ?? null;
    // warm-up: the runtime's one-time costs, not reported
    const warm = await h.plan('single', prompt.tokens);
    await h.waitCached(warm);
    await h.go(warm, prompt.text, 1);
    const runs: ColdLoad[] = [];
    for (let r = 0; r < repeats; r++) {
      const plan = await h.plan('single', prompt.tokens); // a new plan: the stage is built and loaded again
      await h.waitCached(plan);
      await h.waitPrepared(plan);
      const run = await h.go(plan, prompt.text, newTokens);
      const m = run.stages[0]?.measured;
      if (!m || !(m.storageRead > 0)) throw new Error('the measured request did not load its stage (it was not cold)');
      runs.push({
        storageReadSec: m.storageRead,
        sessionCreateSec: m.sessionCreate,
        loadSec: m.storageRead + m.sessionCreate,
        ttftSec: run.metrics.ttft,
        decodeTokensPerSec: run.metrics.decodeTokensPerSec,
      });
      log(`  parts=${parts} #${r + 1}: read ${m.storageRead.toFixed(3)} s + create ${m.sessionCreate.toFixed(3)} s`);
    }
    return { parts, parallel, runs };
  } finally {
    await h.stop();
    if (previous === undefined) delete process.env.TANDEM_PAGE_PARAMS;
    else process.env.TANDEM_PAGE_PARAMS = previous;
  }
}

const OPTIONS = {
  preset: PRESET_OPTION,
  dtype: {
    type: 'string',
    default: 'fp32',
    arg: 'D',
    help: 'package dtype: fp32, fp16 or q4 (default fp32; q4 layers are dequantised at session creation on wasm)',
  },
  'new-tokens': {
    type: 'string',
    default: '16',
    arg: 'N',
    help: 'greedy tokens of each cold request, for its decode rate (default 16)',
  },
  repeats: { type: 'string', default: '3', arg: 'R', help: 'cold requests per setting and mode (default 3)' },
  rounds: {
    type: 'string',
    default: '2',
    arg: 'N',
    help: 'off/on pairs per setting, each a fresh page, alternated (default 2)',
  },
  cores: {
    type: 'string',
    default: '0.4',
    arg: 'C',
    help: 'the lab device of the second setting, in cores (default 0.4; 0 skips the lab setting)',
  },
  out: outOption(RESULTS),
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench:load-parts -- [options]', OPTIONS);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  const preset = choiceOption(values.preset, '--preset', ['realistic', 'demo', 'tiny'] as const);
  const repeats = integerOption(values.repeats, '--repeats', 1, 20);
  const newTokens = integerOption(values['new-tokens'], '--new-tokens', 2, 256);
  const rounds = integerOption(values.rounds, '--rounds', 1, 10);
  const cores = numberOption(values.cores, '--cores', 0, 2);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const chromium = requireE2e('The load-parts bench', log).path;
  const dtype = choiceOption(values.dtype, '--dtype', ['fp32', 'fp16', 'q4'] as const);
  const model = await ensureModelFixture({ preset, dtype });
  const prompt = await promptOfTokens(model.packageDir, 32);
  const started = new Date().toISOString();
  const before = loadavg();
  const settings: SettingFigures[] = [];
  for (const c of cores > 0 ? [null, cores] : [null]) {
    const setting = c === null ? 'a plain page (all of the host)' : `a lab device of ${c} core`;
    const got: Record<'on' | 'off', Omit<ModeFigures, 'median' | 'loadMBps'>[]> = { on: [], off: [] };
    for (let r = 0; r < rounds; r++)
      for (const mode of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        log(`load-parts bench: ${setting}, parts=${mode}, round ${r + 1}`);
        got[mode].push(await coldLoads(chromium, model, prompt, mode, c, repeats, newTokens, log));
      }
    const bytes = model.manifest.units.reduce((a, u) => a + u.bytes, 0);
    const figures = (mode: 'on' | 'off'): ModeFigures => {
      const runs = got[mode].flatMap((g) => g.runs);
      const m: ColdLoad = {
        storageReadSec: med(runs, 'storageReadSec'),
        sessionCreateSec: med(runs, 'sessionCreateSec'),
        loadSec: med(runs, 'loadSec'),
        ttftSec: med(runs, 'ttftSec'),
        decodeTokensPerSec: med(runs, 'decodeTokensPerSec'),
      };
      return { parts: mode, parallel: got[mode][0].parallel, runs, median: m, loadMBps: bytes / m.loadSec / 1e6 };
    };
    const off = figures('off');
    const on = figures('on');
    settings.push({ setting, off, on, loadRatio: on.median.loadSec / off.median.loadSec });
  }
  const result = {
    benchmark: 'load-parts',
    started,
    finished: new Date().toISOString(),
    loadAverage: { before, after: loadavg() },
    model: { name: model.manifest.name, preset, dtype, bytes: model.manifest.units.reduce((a, u) => a + u.bytes, 0) },
    method: `One page, single-page plan (the whole model: ${model.manifest.config.num_hidden_layers} layers, embedding and head), wasm, a 1-token warm-up request, then ${repeats} cold requests of ${newTokens} greedy tokens (a new plan each: the stage is read from the page's cache and its sessions created again) per page; ${rounds} page(s) per mode, ?parts=off and ?parts=on alternated. Load = the storage-read phase (from the stage's start to the last unit read) + the session-create phase after it; medians over all cold requests of a mode.`,
    settings,
  };
  writeBenchJson(values.out, result);
  const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined ? '-' : x.toFixed(d));
  for (const s of settings) {
    console.log(`${s.setting}: ${(result.model.bytes / 1e6).toFixed(1)} MB`);
    for (const m of [s.off, s.on])
      console.log(
        `  parts ${m.parts.padEnd(3)}  read ${f(m.median.storageReadSec)} s + create ${f(m.median.sessionCreateSec)} s = load ${f(m.median.loadSec)} s (${f(m.loadMBps, 1)} MB/s), TTFT ${f(m.median.ttftSec)} s, decode ${f(m.median.decodeTokensPerSec, 1)} tok/s`,
      );
    const p = s.off.parallel;
    console.log(
      `  load with parts / without: ${f(s.loadRatio)}; the page's parallel-load figure ${p ? `${p.parallelism.toFixed(2)} (auto: ${p.inParts ? 'in parts' : 'one part'})` : 'not measured'}`,
    );
  }
  console.log(
    `load average ${before.map((x) => x.toFixed(2)).join(' ')} -> ${result.loadAverage.after.map((x) => x.toFixed(2)).join(' ')}`,
  );
  console.log(`saved ${values.out}`);
  return 0;
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:load-parts', usage: USAGE, main });
