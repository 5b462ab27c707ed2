/**
 * `npm run bench:decode-trace -- [--pages K] [--plan even|single] [--preset tiny|demo|realistic] [--lab equal] [--cold [--cold-after N]] [--samples on|off] [--tokens N] [--label TEXT] [--out FILE] [--trace FILE]`
 *
 * Where a decode token's time goes in the page (issue 11, item 5), in real headless Chromium: K
 * pages (wasm) run an even K-stage plan (K = 1: one page, the whole model). The pages are unemulated pages
 * of one browser, or with `--lab equal` K equal lab devices (as the bench's decode rows: each its own
 * browser, CPU group and shaped links; every device's browser is traced). A cold request
 * (2 tokens) and a warm-up request (N tokens) come first; during the measured request (N greedy tokens) a
 * Chrome trace of every page's process records each page's main thread and inference worker: top-level
 * tasks, trace events (rendering, timers, message events, GC) and the V8 sampling profiler's functions.
 * Printed and saved with the pages' own step figures (core/step-breakdown.ts on their timing reports):
 * per token, the first stage's cycle beside the stages' kernel, ingress and egress. Per renderer, what its
 * thread pool spent CPU on (wasm tier-up, JS optimisation, raster, GC): on a lab device that CPU comes out
 * of the stage's own quota. With TANDEM_PAGE_MINIFY=0 the page is built unminified: the sampled
 * functions of its main thread keep their names.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TandemError } from '../core/errors.ts';
import type { PlanMethod, TimingEntry } from '../core/protocol.ts';
import { stepBreakdown, type StepBreakdown } from '../core/step-breakdown.ts';
import {
  choiceOption,
  cliUsage,
  integerOption,
  parseCliArgs,
  runCliIfEntryPoint,
  type CliOption,
} from '../core/cli.ts';
import { LABEL_OPTION, outOption, writeBenchJson } from './bench-output.ts';
import { requireE2e } from './environment.ts';
import { Harness } from './harness.ts';
import { labSupport } from './lab.ts';
import { labPeers } from './profiles.ts';
import type { PeerSpec } from './tandem-page.ts';
import { ensureModelFixture } from './model-fixture.ts';
import { promptOfTokens } from './prompt.ts';
import { backgroundCpu, summariseTrace, type ThreadSummary, type TraceEvent } from './trace-summary.ts';

const RESULTS = 'bench/results/decode-trace.json';

/** The V8 sampling profiler's category: its start alone took 26-44 ms of a 0.4-core page's first task. */
const SAMPLER = 'disabled-by-default-v8.cpu_profiler';

function categories(samples: boolean): string {
  return [
    'toplevel',
    'devtools.timeline',
    'disabled-by-default-devtools.timeline',
    'v8.execute',
    'v8',
    'blink.user_timing',
    ...(samples ? [SAMPLER] : []),
    // What the renderer's thread pool does beside a stage's first run (GC, wasm tier-up).
    'v8.wasm',
    'disabled-by-default-v8.gc',
    'disabled-by-default-v8.compile',
  ].join(',');
}

const OPTIONS = {
  pages: {
    type: 'string',
    default: '1',
    arg: 'K',
    help: 'pages, an even K-stage plan (default 1: one page runs the whole model)',
  },
  plan: {
    type: 'string',
    arg: 'M',
    help: "even (default with 2 or more pages) or single: one page runs the model, the others idle,\nas in the bench's single-page rows",
  },
  preset: { type: 'string', default: 'tiny', arg: 'P', help: 'seeded model: tiny (default), demo or realistic' },
  tokens: { type: 'string', default: '32', arg: 'N', help: 'greedy tokens of the measured request (default 32)' },
  lab: {
    type: 'string',
    default: 'off',
    arg: 'L',
    help: "off (default: unemulated pages of one browser) or equal: K equal lab devices, as the bench's\ndecode rows",
  },
  cold: {
    type: 'boolean',
    default: false,
    help: "trace the cold request instead (storage read, verify, session create, first run): where\nthe main thread's long tasks come from",
  },
  'cold-after': {
    type: 'string',
    default: '0',
    arg: 'N',
    help: 'with --cold: N untraced cold requests (each on a fresh plan) before the traced one, as the\nbench runs its measured plans after warm-up and calibration requests',
  },
  samples: {
    type: 'string',
    default: 'on',
    arg: 'on|off',
    help: "sample the JS and wasm functions (V8's profiler; default on); off where a long task's own\nlength is the question (the profiler's start stretches the first tasks)",
  },
  label: LABEL_OPTION,
  out: outOption(RESULTS, 'summary JSON'),
  trace: {
    type: 'string',
    arg: 'FILE',
    help: 'also keep the raw Chrome trace there (open it in chrome://tracing or Perfetto)',
  },
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench:decode-trace -- [options]', OPTIONS);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  const preset = choiceOption(values.preset, '--preset', ['tiny', 'demo', 'realistic'] as const);
  const k = integerOption(values.pages, '--pages', 1, 8);
  const tokens = integerOption(values.tokens, '--tokens', 3, 1024);
  const lab = choiceOption(values.lab, '--lab', ['off', 'equal'] as const);
  const coldAfter = integerOption(values['cold-after'], '--cold-after', 0, 20);
  const traceCategories = categories(choiceOption(values.samples, '--samples', ['on', 'off'] as const) === 'on');
  const method: PlanMethod =
    values.plan === undefined
      ? k === 1
        ? 'single'
        : 'even'
      : choiceOption(values.plan, '--plan', ['even', 'single'] as const);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const chromium = requireE2e('The decode trace', log);
  const model = await ensureModelFixture({ preset });
  const prompt = await promptOfTokens(model.packageDir, 32);
  const started = new Date().toISOString();
  const modelBytes = model.manifest.units.reduce((a, u) => a + u.bytes, 0);
  const peers: PeerSpec[] =
    lab === 'equal'
      ? labPeers('equal', k, modelBytes, { readCap: false })
      : Array.from({ length: k }, (_, i) => ({ name: `plain${i + 1}` }));
  if (lab === 'equal') {
    const support = labSupport();
    if (!support.ok) throw new TandemError('lab-missing', `--lab equal needs the device lab: ${support.reason}`);
  }
  const h = await Harness.start({
    chromium: chromium.path,
    model,
    backend: 'wasm',
    log,
    ...(lab === 'equal' ? { lab: peers } : {}),
  });
  try {
    await h.createSession('decode-trace');
    await h.openPeers(peers);
    await h.waitProfiled();
    for (let i = 0; values.cold && i < coldAfter; i++) {
      const before = await h.plan(method, prompt.tokens);
      await h.waitCached(before);
      await h.go(before, prompt.text, 2); // a fresh plan: every stage loads again
    }
    const plan = await h.plan(method, prompt.tokens);
    const wanted = method === 'single' ? 1 : k;
    if (plan.stages.length !== wanted)
      log(`decode-trace: the ${method} plan has ${plan.stages.length} stages, not ${wanted}`);
    await h.waitCached(plan);
    if (!values.cold) {
      await h.go(plan, prompt.text, 2); // cold: storage read, session create, tokenizer
      await h.go(plan, prompt.text, tokens); // warm-up: tier-up of both paths
    }
    const uptimeBefore = loadavg();
    // a browser's trace records every renderer of it: one trace per browser (one, or one per lab device,
    // each a persistent context: traced through a DevTools session of its page)
    const tracers = await startTraces(
      h.pages.map((p) => p.page),
      traceCategories,
    );
    const run = await h.go(plan, prompt.text, tokens);
    const events: TraceEvent[] = [];
    for (const stop of tracers) for (const e of await stop()) events.push(e); // a spread would overflow the stack
    const uptimeAfter = loadavg();
    // the browsers share one process id space and one monotonic clock: their events merge as they are
    if (values.trace) writeFileSync(values.trace, JSON.stringify({ traceEvents: events }));
    const threads = summariseTrace(events);
    const background = backgroundCpu(events);
    const ordered = [...plan.stages].sort((a, b) => a.stageIndex - b.stageIndex);
    const breakdown: StepBreakdown = stepBreakdown(
      ordered.map((s) => ({ timings: run.timings[s.peerId] ?? ([] as TimingEntry[]), offsetMs: null })),
    );
    const generated = run.generatedTokenIds.length;
    const saved = writeBenchJson(values.out, {
      benchmark: 'decode-trace',
      label: values.label,
      traced: values.cold ? 'cold request' : 'warm request',
      started,
      finished: new Date().toISOString(),
      model: model.manifest.name,
      stages: ordered.map((s) => ({ name: s.displayName, layers: s.layers, embeds: s.embeds, hasHead: s.hasHead })),
      decodeTokensPerSec: run.metrics.decodeTokensPerSec,
      generated,
      tokens: run.generatedTokenIds,
      breakdown: { ...breakdown, tokens: undefined },
      threads,
      background,
      loadAverage: { before: uptimeBefore, after: uptimeAfter },
      method:
        (lab === 'equal'
          ? `${k} equal lab device(s) (${peers[0].device?.cores} core each, each its own headless Chromium; wasm), ${method} plan; `
          : `${k} unemulated page(s) in one headless Chromium (wasm, 1 thread), ${method} plan; `) +
        (values.cold
          ? `the cold request itself traced${coldAfter ? ` after ${coldAfter} untraced cold request(s)` : ''}`
          : `a cold 2-token request and a ${tokens}-token warm-up first`) +
        `; a Chrome trace (${traceCategories}) of the measured ${tokens}-token greedy request; ` +
        'thread figures are ms over the whole request (prefill included), per token = / generated tokens',
    });
    print(run.metrics.decodeTokensPerSec, breakdown, threads, generated);
    console.log('\nthread pools of each renderer, CPU ms over the traced request:');
    for (const b of background)
      console.log(
        `  pid ${b.pid}: ${b.totalMs.toFixed(0)} ms; ${Object.entries(b.byKind)
          .map(([k, ms]) => `${k} ${ms.toFixed(0)}`)
          .join(', ')}`,
      );
    console.log(
      `load average before ${uptimeBefore.map((x) => x.toFixed(2)).join(' ')}, after ${uptimeAfter.map((x) => x.toFixed(2)).join(' ')}\nsaved ${saved}`,
    );
    return 0;
  } finally {
    await h.stop();
  }
}

function print(rate: number | null, b: StepBreakdown, threads: ThreadSummary[], generated: number): void {
  const f = (x: number | null | undefined, d = 2) => (x == null ? '-' : x.toFixed(d));
  console.log(`decode ${f(rate, 1)} tok/s; first stage's cycle ${f(b.perTokenMs)} ms per token (median)`);
  b.stages.forEach((s, i) =>
    console.log(
      `  stage ${i}: ingress ${f(s?.ingressMs)}  kernel ${f(s?.kernelMs)}  egress ${f(s?.egressMs)} ms (medians)`,
    ),
  );
  console.log(`  between stages (cycle - sum of step medians): ${f(b.ringWireMs)} ms`);
  for (const t of threads.filter((x) => x.busyMs > 1)) {
    console.log(
      `\n${t.thread} pid ${t.pid}: busy ${f(t.busyMs, 0)} ms in ${t.tasks} tasks (${f(t.busyMs / generated)} ms per token), ${t.longTasks} > 50 ms`,
    );
    console.log('  trace events, self ms (per token):');
    for (const e of t.byEvent.slice(0, 12))
      console.log(`    ${f(e.ms, 1).padStart(8)} (${f(e.ms / generated).padStart(6)})  x${e.count}  ${e.name}`);
    for (const l of t.longTaskList.slice(0, 8))
      console.log(
        `  long task at ${f(l.startMs, 0)} ms: ${f(l.durationMs, 0)} ms (CPU ${f(l.cpuMs, 0)} ms): ${l.byEvent.map((e) => `${e.name} ${f(e.ms, 0)}`).join(', ')}`,
      );
    console.log('  JS functions (sampled), self ms (per token):');
    for (const e of t.byFunction.slice(0, 12))
      console.log(`    ${f(e.ms, 1).padStart(8)} (${f(e.ms / generated).padStart(6)})  ${e.name}`);
  }
}

/** Re-summarise a kept raw trace: `tsx e2e/decode-trace.ts --summarise FILE` is not a flag; use this from a REPL. */
export function summariseFile(path: string): ThreadSummary[] {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { traceEvents?: TraceEvent[] } | TraceEvent[];
  return summariseTrace(Array.isArray(parsed) ? parsed : (parsed.traceEvents ?? []));
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:decode-trace', usage: USAGE, main });

/**
 * Starts a Chrome trace (`categories`) in every distinct browser of `pages`; each returned function stops
 * its trace and gives its events. A lab device's browser is a persistent context, which Playwright's
 * browser.startTracing cannot reach: its trace goes through a DevTools session of its page.
 */
async function startTraces(pages: readonly Page[], categories: string): Promise<(() => Promise<TraceEvent[]>)[]> {
  const parse = (text: string): TraceEvent[] => {
    const parsed = JSON.parse(text) as { traceEvents?: TraceEvent[] } | TraceEvent[];
    return Array.isArray(parsed) ? parsed : (parsed.traceEvents ?? []);
  };
  const browsers = new Map<Browser, Page>();
  const contexts = new Set<BrowserContext>();
  const stops: (() => Promise<TraceEvent[]>)[] = [];
  for (const page of pages) {
    const browser = page.context().browser();
    if (browser) {
      if (!browsers.has(browser)) browsers.set(browser, page);
      continue;
    }
    if (contexts.has(page.context())) continue; // one trace per browser
    contexts.add(page.context());
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Tracing.start', { categories, transferMode: 'ReturnAsStream' });
    stops.push(async () => {
      const done = new Promise<string>((resolve) =>
        cdp.once('Tracing.tracingComplete', (e: { stream?: string }) => resolve(e.stream ?? '')),
      );
      await cdp.send('Tracing.end');
      const stream = await done;
      // the chunks are joined as bytes before decoding: a chunk may end inside a UTF-8 character
      const chunks: Buffer[] = [];
      for (;;) {
        const chunk = await cdp.send('IO.read', { handle: stream });
        chunks.push(Buffer.from(chunk.data, chunk.base64Encoded ? 'base64' : 'utf8'));
        if (chunk.eof) break;
      }
      await cdp.send('IO.close', { handle: stream });
      await cdp.detach().catch(() => {});
      return parse(Buffer.concat(chunks).toString('utf8'));
    });
  }
  for (const [b, page] of browsers) {
    await b.startTracing(page, { categories: categories.split(','), screenshots: false });
    stops.push(async () => parse((await b.stopTracing()).toString('utf8')));
  }
  return stops;
}
