/**
 * `npm run bench:api` (also part of `npm run bench`; `--skip api` leaves it out): the OpenAI-compatible API on a warm session
 * of two unemulated wasm pages (tiny model), against the host's Go on the same session:
 *   - TTFT through the API (HTTP POST -> first SSE content chunk, official `openai` client) vs the
 *     host's Go (driver go -> first `output` message over /ws), alternating, after one warm-up of each;
 *                                                                      goal: API - Go <= 50 ms (medians)
 *   - SSE chunk latency after the last stage samples a token: the last stage's token report reaches the
 *     server, which sends it both to the driver (`output` over /ws) and to the API client (an SSE chunk);
 *     the figure is SSE chunk arrival - `output` arrival for the same token, both on this process's clock.
 * Saves bench/results/api.json. Figures, not tests: nothing here asserts a duration.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import OpenAI from 'openai';
import { TandemError } from '../core/errors.ts';
import type { ServerMessageOf } from '../core/protocol.ts';
import {
  choiceOption,
  cliUsage,
  integerOption,
  parseCliArgs,
  runCliIfEntryPoint,
  type CliOption,
} from '../core/cli.ts';
import { requireE2e } from './environment.ts';
import { goal, outOption, writeBenchJson, type Goal } from './bench-output.ts';
import { Harness } from './harness.ts';
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';

const RESULTS = resolve('bench/results/api.json');
const KEY = 'bench-api-key';
const PROMPT = 'Name three colours of the rainbow.';

export interface ApiBenchResult {
  rounds: number;
  newTokens: number;
  goTtftMs: number[];
  apiTtftMs: number[];
  medianGoTtftMs: number | null;
  medianApiTtftMs: number | null;
  /** median(API) - median(Go), ms; goal <= 50 */
  ttftDifferenceMs: number | null;
  /** SSE chunk arrival - /ws output arrival for the same tokens, ms */
  sseAfterOutputMs: { median: number | null; p90: number | null; samples: number };
  loadAverage: number[];
  method: string;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function quantile(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function runApiBench(o: {
  chromium: string;
  model: ModelFixture;
  rounds: number;
  newTokens: number;
  log: (l: string) => void;
}): Promise<ApiBenchResult> {
  const h = await Harness.start({
    chromium: o.chromium,
    model: o.model,
    backend: 'wasm',
    webgpu: false,
    serverArgs: ['--api-key', KEY],
    log: o.log,
  });
  try {
    await h.createSession('bench-api');
    await h.openPeers([{ name: 'alpha' }, { name: 'bravo' }]);
    await h.waitProfiled();
    const plan = await h.plan('even', 16);
    await h.waitCached(plan);
    const { code, hostSecret } = h.session!;
    await h.driver.request({ type: 'serve-api', code, hostSecret, serve: true }, 'api-serving');
    const client = new OpenAI({ baseURL: `${h.server.controlUrl}/v1`, apiKey: KEY, maxRetries: 0, timeout: 300_000 });

    const goOnce = async () => (await h.go(plan, PROMPT, o.newTokens)).driverTtft;
    const apiOnce = async (): Promise<{ ttftMs: number; sseAfterOutputMs: number[] }> => {
      const mark = h.driver.log.length;
      const t0 = performance.now();
      const stream = await client.chat.completions.create({
        model: o.model.manifest.name,
        messages: [{ role: 'user', content: PROMPT }],
        temperature: 0,
        max_completion_tokens: o.newTokens,
        stream: true,
      });
      const arrivals: number[] = [];
      let first: number | null = null;
      for await (const chunk of stream) {
        if (!chunk.choices[0]?.delta.content) continue;
        const now = performance.now();
        first ??= now;
        arrivals.push(now);
      }
      if (first === null) throw new TandemError('bench-invalid', 'The API stream carried no content.');
      const start = h.driver.log
        .slice(mark)
        .find((m): m is ServerMessageOf<'start'> => m.type === 'start' && m.origin === 'api');
      // The driver's output messages of this request with text, in order: one per content chunk.
      const outputs: number[] = [];
      for (let i = mark; i < h.driver.log.length; i++) {
        const m = h.driver.log[i];
        if (m.type === 'output' && m.requestId === start?.requestId && m.text) outputs.push(h.driver.receivedAt[i]);
      }
      const paired = outputs.length === arrivals.length ? arrivals.map((a, i) => a - outputs[i]) : [];
      if (!paired.length)
        o.log(
          `api-bench: ${arrivals.length} chunks vs ${outputs.length} outputs with text: chunk latency not paired this round`,
        );
      return { ttftMs: first - t0, sseAfterOutputMs: paired };
    };

    o.log('api-bench: warm-up (one Go, one API request)');
    await goOnce();
    await apiOnce();
    const goTtftMs: number[] = [];
    const apiTtftMs: number[] = [];
    const sse: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const go = await goOnce();
      if (go !== null) goTtftMs.push(go * 1000);
      const api = await apiOnce();
      apiTtftMs.push(api.ttftMs);
      sse.push(...api.sseAfterOutputMs);
      o.log(
        `api-bench: round ${r + 1}: Go TTFT ${go === null ? '-' : (go * 1000).toFixed(1)} ms, API TTFT ${api.ttftMs.toFixed(1)} ms`,
      );
    }
    const mg = median(goTtftMs);
    const ma = median(apiTtftMs);
    return {
      rounds: o.rounds,
      newTokens: o.newTokens,
      goTtftMs,
      apiTtftMs,
      medianGoTtftMs: mg,
      medianApiTtftMs: ma,
      ttftDifferenceMs: mg !== null && ma !== null ? ma - mg : null,
      sseAfterOutputMs: { median: median(sse), p90: quantile(sse, 0.9), samples: sse.length },
      loadAverage: loadavg(),
      method:
        'Warm 2-stage even plan, 2 unemulated wasm pages in one headless Chromium, tiny model, greedy, same prompt. ' +
        'Go TTFT: driver sends go -> first output over /ws. API TTFT: openai client POST (stream) -> first content chunk. ' +
        'One warm-up of each dropped, then Go and API alternate; medians. SSE latency: chunk arrival - output arrival for the same token.',
    };
  } finally {
    await h.stop();
  }
}

/** The API's goal: its first token at most 50 ms after a Go's (medians on a warm session; not measured without a run). */
export function apiTtftGoal(result: ApiBenchResult | null): Goal {
  return goal('median API TTFT - median Go TTFT (ms)', result?.ttftDifferenceMs, '<=', 50);
}

const OPTIONS = {
  preset: { type: 'string', default: 'tiny', arg: 'P', help: 'seeded model: tiny (default) or demo' },
  rounds: {
    type: 'string',
    default: '5',
    arg: 'N',
    help: 'measured rounds of API and Go each, after one warm-up (default 5)',
  },
  'new-tokens': { type: 'string', default: '8', arg: 'N', help: 'tokens per request (default 8)' },
  out: outOption(RESULTS),
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench:api -- [options]', OPTIONS);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  const preset = choiceOption(values.preset, '--preset', ['tiny', 'demo'] as const);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const chromium = requireE2e('The API bench', log);
  const model = await ensureModelFixture({ preset });
  const started = new Date().toISOString();
  const result = await runApiBench({
    chromium: chromium.path,
    model,
    rounds: integerOption(values.rounds, '--rounds', 1, 100),
    newTokens: integerOption(values['new-tokens'], '--new-tokens', 1, 1024),
    log,
  });
  const out = {
    benchmark: 'api',
    started,
    finished: new Date().toISOString(),
    model: model.manifest.name,
    goal: apiTtftGoal(result),
    ...result,
  };
  const saved = writeBenchJson(values.out, out);
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(1));
  console.log(
    `TTFT median: Go ${f(result.medianGoTtftMs)} ms, API ${f(result.medianApiTtftMs)} ms, difference ${f(result.ttftDifferenceMs)} ms (goal <= 50)`,
  );
  console.log(
    `SSE chunk after the /ws output of the same token: median ${f(result.sseAfterOutputMs.median)} ms, p90 ${f(result.sseAfterOutputMs.p90)} ms (${result.sseAfterOutputMs.samples} tokens)`,
  );
  console.log(`load average ${result.loadAverage.map((x) => x.toFixed(2)).join(' ')}\nsaved ${saved}`);
  return 0;
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:api', usage: USAGE, main });
