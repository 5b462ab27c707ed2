/**
 * `npm run bench:anchor [-- --preset realistic --tokens 256 --new-tokens 32]`: one Tandem page against the
 * baseline a one-laptop user would open instead, transformers.js alone in one tab (client/anchor.html),
 * in the same headless Chromium, on the same weights (`shards export-full` of the package), the same
 * wasm thread count, the same chat-rendered prompt, greedy. Both get a 1-token warm-up
 * request, then a cold request (the model loaded again: Tandem from IndexedDB into a fresh session after a
 * re-plan, transformers.js from the same files over HTTP) that is measured:
 *   load (Tandem: storage read + session create; transformers.js: from_pretrained),
 *   TTFT including load, decode tokens/s = (N - 1) / (t_N - t_1), and whether the tokens are identical.
 * Issue 11's goals: TTFT (including load) <= 0.75x the anchor's, decode >= 1.2x. Saved to
 * bench/results/anchor.json; nothing here is a timed test.
 */
import { createServer, type Server } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium as playwright } from 'playwright-core';
import { build } from 'vite';
import {
  choiceOption,
  cliUsage,
  integerOption,
  parseCliArgs,
  runCliIfEntryPoint,
  type CliOption,
} from '../core/cli.ts';
import { TandemError } from '../core/errors.ts';
import { StaticFiles } from '../signaling/static-files.ts';
import type { AnchorRequest, AnchorResult } from '../client/anchor/transformers-anchor.ts';
import { chromiumArgs } from './browser.ts';
import { outOption, PRESET_OPTION, ratioGoal, writeBenchJson, type Goal } from './bench-output.ts';
import { requireE2e } from './environment.ts';
import { Harness } from './harness.ts';
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';
import { promptOfTokens } from './prompt.ts';
import { ensureExportFull } from './reference.ts';

const RESULTS = resolve('bench/results/anchor.json');
const MODEL_ID = 'export-full';

export interface TandemOnePage {
  loadSec: number;
  storageReadSec: number;
  sessionCreateSec: number;
  ttftSec: number | null;
  decodeTokensPerSec: number | null;
  tokenIds: number[];
}

export interface AnchorBenchResult {
  benchmark: 'anchor';
  started: string;
  finished: string;
  loadAverage: { before: number[]; after: number[] };
  model: { name: string; preset: string; bytes: number };
  promptTokens: number;
  newTokens: number;
  method: string;
  anchor: AnchorResult;
  tandem: TandemOnePage;
  tokensIdentical: boolean;
  goals: Goal[];
}

/**
 * The anchor page, built on its own into a private folder: a second entry in the page's own build
 * changed how Vite splits the page's chunks, so the product build stays single-entry.
 */
async function buildAnchorPage(): Promise<string> {
  const outDir = resolve(`.tandem/e2e/anchor-${process.pid}`);
  await build({
    configFile: resolve('vite.config.ts'),
    logLevel: 'error',
    build: { outDir, emptyOutDir: true, rolldownOptions: { input: resolve('client/anchor.html') } },
  });
  return outDir;
}

/** The built anchor page and the export under /anchor-model/, cross-origin isolated like the server's. */
async function serveAnchor(clientDir: string, exportDir: string): Promise<{ server: Server; origin: string }> {
  const page = new StaticFiles(clientDir);
  const weights = new StaticFiles(dirname(exportDir));
  const server = createServer((req, res) => {
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    const raw = (req.url ?? '/').split('?')[0];
    const prefix = '/anchor-model/';
    void (raw.startsWith(prefix) ? weights.serve(req, res, `/${raw.slice(prefix.length)}`) : page.serve(req, res, raw));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

async function runAnchor(
  chromium: string,
  clientDir: string,
  exportDir: string,
  req: AnchorRequest,
): Promise<AnchorResult> {
  const { server, origin } = await serveAnchor(clientDir, exportDir);
  const browser = await playwright.launch({
    executablePath: chromium,
    headless: true,
    args: chromiumArgs({ webgpu: false }),
  });
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => process.stderr.write(`anchor page: ${e.message}\n`));
    await page.goto(`${origin}/anchor.html`);
    await page.waitForFunction(() => 'tandemAnchor' in globalThis);
    return await page.evaluate(
      (r) =>
        (globalThis as unknown as { tandemAnchor: { run(r: AnchorRequest): Promise<AnchorResult> } }).tandemAnchor.run(
          r,
        ),
      req,
    );
  } finally {
    await browser.close();
    server.close();
  }
}

/** One plain Tandem page: a single-page plan, a 1-token warm-up request, a re-plan (the stage is disposed), the cold request. */
async function runTandem(
  chromium: string,
  model: ModelFixture,
  prompt: string,
  promptTokens: number,
  newTokens: number,
  log: (l: string) => void,
): Promise<TandemOnePage> {
  const h = await Harness.start({ chromium, model, backend: 'wasm', log });
  try {
    await h.createSession('bench-anchor');
    await h.openPeers([{ name: 'laptop' }]);
    await h.waitProfiled();
    const warmPlan = await h.plan('single', promptTokens);
    await h.waitCached(warmPlan);
    await h.go(warmPlan, prompt, 1);
    const plan = await h.plan('single', promptTokens);
    await h.waitCached(plan);
    const run = await h.go(plan, prompt, newTokens);
    const measured = run.stages[0]?.measured;
    if (!measured || !(measured.storageRead > 0))
      throw new TandemError('bench-failed', 'The measured Tandem request did not load its stage (it was not cold).');
    return {
      loadSec: measured.storageRead + measured.sessionCreate,
      storageReadSec: measured.storageRead,
      sessionCreateSec: measured.sessionCreate,
      ttftSec: run.metrics.ttft,
      decodeTokensPerSec: run.metrics.decodeTokensPerSec,
      tokenIds: run.generatedTokenIds,
    };
  } finally {
    await h.stop();
  }
}

/** Issue 11's goals against the anchor. */
export function anchorGoals(tandem: TandemOnePage, anchor: AnchorResult['cold']): Goal[] {
  return [
    ratioGoal('TTFT incl. load, Tandem one page / transformers.js', tandem.ttftSec, anchor.ttftSec, '<=', 0.75),
    ratioGoal(
      'decode tok/s, Tandem one page / transformers.js',
      tandem.decodeTokensPerSec,
      anchor.decodeTokensPerSec,
      '>=',
      1.2,
    ),
  ];
}

const OPTIONS = {
  preset: PRESET_OPTION,
  tokens: { type: 'string', default: '256', arg: 'N', help: 'prompt length in tokens (default 256)' },
  'new-tokens': { type: 'string', default: '32', arg: 'N', help: 'greedy tokens of the measured request (default 32)' },
  out: outOption(RESULTS),
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench:anchor -- [options]', OPTIONS);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  const preset = choiceOption(values.preset, '--preset', ['realistic', 'demo', 'tiny'] as const);
  const tokens = integerOption(values.tokens, '--tokens', 8, 4096);
  const newTokens = integerOption(values['new-tokens'], '--new-tokens', 2, 1024);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const chromium = requireE2e('The anchor bench', log).path;

  const model = await ensureModelFixture({ preset });
  const exportDir = await ensureExportFull(model.packageDir, join(dirname(model.packageDir), MODEL_ID));
  const prompt = await promptOfTokens(model.packageDir, tokens);
  const started = new Date().toISOString();
  const before = loadavg();
  log(`anchor bench: transformers.js alone in a tab (${preset}, ${prompt.tokens}-token prompt, ${newTokens} tokens)`);
  const anchor = await runAnchor(chromium, await buildAnchorPage(), exportDir, {
    modelId: MODEL_ID,
    prompt: prompt.text,
    newTokens,
  });
  log('anchor bench: one Tandem page');
  const tandem = await runTandem(chromium, model, prompt.text, prompt.tokens, newTokens, log);
  const result: AnchorBenchResult = {
    benchmark: 'anchor',
    started,
    finished: new Date().toISOString(),
    loadAverage: { before, after: loadavg() },
    model: { name: model.manifest.name, preset, bytes: model.manifest.units.reduce((a, u) => a + u.bytes, 0) },
    promptTokens: anchor.cold.promptTokens,
    newTokens,
    method:
      'Same headless Chromium, wasm, same thread count (transformers.js on the asyncify ORT build its entry needs, Tandem stages on the CPU-only build), same weights (export-full), chat-rendered prompt, greedy. Each side: a 1-token warm-up request, then the measured cold request (model loaded again). Tandem: one plain page, single-page plan, re-planned before the measured request so its stage loads from IndexedDB; TTFT = start -> first sampled token (page clock). transformers.js: from_pretrained + generate() with a TextStreamer in the page; TTFT = from_pretrained start -> first token.',
    anchor,
    tandem,
    tokensIdentical: JSON.stringify(anchor.cold.tokenIds) === JSON.stringify(tandem.tokenIds),
    goals: anchorGoals(tandem, anchor.cold),
  };
  writeBenchJson(values.out, result);
  const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined ? '-' : x.toFixed(d));
  console.log(`                   load (s)  TTFT incl. load (s)  decode tok/s`);
  console.log(
    `transformers.js    ${f(anchor.cold.loadSec).padStart(8)}  ${f(anchor.cold.ttftSec).padStart(19)}  ${f(anchor.cold.decodeTokensPerSec, 1).padStart(12)}`,
  );
  console.log(
    `Tandem, one page   ${f(tandem.loadSec).padStart(8)}  ${f(tandem.ttftSec).padStart(19)}  ${f(tandem.decodeTokensPerSec, 1).padStart(12)}`,
  );
  for (const g of result.goals)
    console.log(`${g.name}: ${f(g.value, 3)} (goal ${g.target}) ${g.met ? 'met' : 'not met'}`);
  console.log(
    `tokens identical: ${result.tokensIdentical ? 'yes' : 'NO'}; load average ${before.map((x) => x.toFixed(2)).join(' ')} -> ${result.loadAverage.after.map((x) => x.toFixed(2)).join(' ')}`,
  );
  console.log(`saved ${values.out}`);
  return result.tokensIdentical ? 0 : 1;
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:anchor', usage: USAGE, main });
