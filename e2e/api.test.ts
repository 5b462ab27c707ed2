/**
 * The OpenAI-compatible API end to end: the official `openai` package against the real server and real
 * headless pages (tiny model, wasm, two stages), sharing one browser session for all cases. Greedy
 * completions must give the reference generator's token ids (`npm run generate`, same split), read from
 * the session export, and its text; a client that aborts mid-stream stops every stage within a token;
 * queue full -> 429, bad key -> 401, bad fields -> 400, and the server keeps serving throughout.
 */
import { dirname, basename } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackageTokenizer, type PromptTokenizer } from '../client/runtime/tokenizer.ts';
import type { ServerMessageOf } from '../core/protocol.ts';
import type { SessionExport } from '../signaling/coordinator.ts';
import { prepareE2e, skipBanner } from './environment.ts';
import { Harness } from './harness.ts';
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';
import { nodeRunnerTokens, type ReferenceTokens } from './reference.ts';
import { TandemPage } from './tandem-page.ts';

const ready = prepareE2e();
if (!ready.ok) console.warn(skipBanner('API e2e tests', ready.reason));

const KEY = 'e2e-api-key-42';
const PROMPT = 'Name three colours of the rainbow.';
const NEW_TOKENS = 8;

let model: ModelFixture;
let h: Harness;
let plan: ServerMessageOf<'plan-ready'>;
let reference: ReferenceTokens;
let tokenizer: PromptTokenizer;
let client: OpenAI;

function splitOf(p: ServerMessageOf<'plan-ready'>): string {
  return p.stages.map((s) => `${s.layers.start + 1}-${s.layers.end}`).join(',');
}

async function exported(): Promise<SessionExport> {
  const { code, hostSecret } = h.session!;
  const res = await fetch(`${h.server.controlUrl}/api/sessions/${code}/export?hostSecret=${hostSecret}`);
  return (await res.json()) as SessionExport;
}

/** The `start` of the next API request the driver (the host) sees after `mark`. */
function nextApiStart(mark: number): Promise<ServerMessageOf<'start'>> {
  return h.driver.next('start', (s) => s.origin === 'api', 120_000, mark);
}

describe.skipIf(!ready.ok)('OpenAI-compatible API on a live session (tiny model, 2 wasm pages)', () => {
  beforeAll(async () => {
    if (!ready.ok) return;
    model = await ensureModelFixture({ preset: 'tiny' });
    h = await Harness.start({
      chromium: ready.chromium.path,
      model,
      backend: 'wasm',
      webgpu: false,
      serverArgs: ['--api-key', KEY, '--api-queue-depth', '1'],
    });
    await h.createSession('e2e-api');
    await h.openPeers([{ name: 'alpha' }, { name: 'bravo' }]);
    await h.waitProfiled();
    plan = await h.plan('even', 16);
    expect(plan.stages).toHaveLength(2);
    await h.waitCached(plan);
    const { code, hostSecret } = h.session!;
    expect(await h.driver.request({ type: 'serve-api', code, hostSecret, serve: true }, 'api-serving')).toMatchObject({
      serve: true,
    });
    reference = await nodeRunnerTokens({
      packageDir: model.packageDir,
      prompt: PROMPT,
      maxNewTokens: NEW_TOKENS,
      split: splitOf(plan),
    });
    tokenizer = await loadPackageTokenizer({
      modelRoot: `${dirname(model.packageDir)}/`,
      packageName: basename(model.packageDir),
    });
    client = new OpenAI({ baseURL: `${h.server.controlUrl}/v1`, apiKey: KEY, maxRetries: 0, timeout: 300_000 });
  }, 600_000);

  afterAll(async () => {
    await (h as Harness | undefined)?.stop(); // unset when beforeAll failed
  });

  it('non-streaming greedy completion: the reference token ids, their text, usage; every page shows it', async () => {
    const mark = h.driver.log.length;
    const result = await client.chat.completions.create({
      model: model.manifest.name,
      messages: [{ role: 'user', content: PROMPT }],
      temperature: 0,
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- the API must still accept the older field
      max_tokens: NEW_TOKENS,
    });
    const start = await nextApiStart(mark);
    expect(start.promptTokenIds).toEqual(reference.promptTokens);
    const request = (await exported()).requests.find((r) => r.requestId === start.requestId)!;
    expect(request.tokenIds).toEqual(reference.generated);
    expect(result.choices[0]).toMatchObject({
      finish_reason: 'length',
      message: { role: 'assistant', content: tokenizer.decode(reference.generated) },
    });
    expect(result.usage).toMatchObject({
      prompt_tokens: reference.promptTokens.length,
      completion_tokens: NEW_TOKENS,
      total_tokens: reference.promptTokens.length + NEW_TOKENS,
    });
    // The text streamed into every page, as for a typed prompt, and both stages reported timings for the timeline.
    for (const page of h.pages) {
      const s = await page.waitForState<{
        outputs: { requestId: number; prompt: string; text: string; done: boolean }[];
        timings: Record<string, Record<string, unknown[]>>;
      }>(
        (x) => x.outputs.some((o) => o.requestId === start.requestId && o.done),
        `${page.spec.name} to show API request ${start.requestId}`,
      );
      const out = s.outputs.find((o) => o.requestId === start.requestId)!;
      expect(out.prompt).toContain(PROMPT);
      expect(out.text).toBe(result.choices[0].message.content);
    }
    await h.driver.next(
      'timings',
      (t) => t.requestId === start.requestId && t.peerId === plan.stages[0].peerId,
      60_000,
      mark,
    );
    await h.driver.next(
      'timings',
      (t) => t.requestId === start.requestId && t.peerId === plan.stages[1].peerId,
      60_000,
      mark,
    );
  }, 300_000);

  it('streaming greedy completion: chunks of the reference text, [DONE], usage; the same token ids', async () => {
    const mark = h.driver.log.length;
    const stream = await client.chat.completions.create({
      model: model.manifest.name,
      messages: [{ role: 'user', content: PROMPT }],
      temperature: 0,
      max_completion_tokens: NEW_TOKENS,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const start = await nextApiStart(mark);
    const request = (await exported()).requests.find((r) => r.requestId === start.requestId)!;
    expect(request.tokenIds).toEqual(reference.generated);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(tokenizer.decode(reference.generated));
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)?.usage).toMatchObject({
      prompt_tokens: reference.promptTokens.length,
      completion_tokens: NEW_TOKENS,
    });
  }, 300_000);

  it('a client that aborts mid-stream stops every stage within one token', async () => {
    const mark = h.driver.log.length;
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      {
        model: model.manifest.name,
        messages: [{ role: 'user', content: PROMPT }],
        temperature: 0,
        max_completion_tokens: 200,
        stream: true,
      },
      { signal: controller.signal },
    );
    let contentChunks = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) contentChunks++;
        if (contentChunks === 2) {
          controller.abort();
          break;
        }
      }
    } catch {
      // the aborted request may end the iteration with an abort error
    }
    expect(contentChunks).toBe(2);
    const start = await nextApiStart(mark);
    // Every stage reports how far it went after the cancel reached it.
    for (const stage of plan.stages) {
      const c = await h.driver.next(
        'cancelled',
        (m) => m.requestId === start.requestId && m.peerId === stage.peerId,
        120_000,
        mark,
      );
      expect(c.tokensAfterCancel, stage.displayName).toBeLessThanOrEqual(1);
      expect(c.stepsAfterCancel, stage.displayName).toBeLessThanOrEqual(1);
      console.log(
        `abort: ${stage.displayName} (stage ${stage.stageIndex}) stopped: ${c.tokensAfterCancel} token(s), ${c.stepsAfterCancel} step(s) after the cancel arrived`,
      );
    }
    const request = (await exported()).requests.find((r) => r.requestId === start.requestId)!;
    expect(request.state).toBe('cancelled');
    expect(request.tokenIds.length).toBeLessThan(200);
    // No page reported a failure for it.
    expect(h.driver.log.slice(mark).filter((m) => m.type === 'peer-error' && m.requestId === start.requestId)).toEqual(
      [],
    );
  }, 300_000);

  it('queue full -> 429, bad key -> 401, bad fields -> 400; the server and the session keep serving', async () => {
    const name = model.manifest.name;
    const mark = h.driver.log.length;
    const running = new AbortController();
    const waiting = new AbortController();
    const first = client.chat.completions.create(
      { model: name, messages: [{ role: 'user', content: 'one' }], max_completion_tokens: 200, stream: true },
      { signal: running.signal },
    );
    await nextApiStart(mark);
    const second = client.chat.completions.create(
      { model: name, messages: [{ role: 'user', content: 'two' }], max_completion_tokens: 4 },
      { signal: waiting.signal },
    );
    second.catch(() => undefined);
    await expect
      .poll(async () => (await client.models.list()).data[0], { timeout: 30_000 })
      .toMatchObject({ sessions: [{ waiting: 1 }] });
    await expect(
      client.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'three' }] }),
    ).rejects.toMatchObject({ status: 429, code: 'queue_full' });
    const raw = await fetch(`${h.server.controlUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: name, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const badKey = new OpenAI({ baseURL: `${h.server.controlUrl}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(
      badKey.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    await expect(
      client.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'x' }], n: 3 }),
    ).rejects.toMatchObject({ status: 400, param: 'n' });
    await expect(
      client.chat.completions.create({
        model: name,
        messages: [{ role: 'user', content: 'x' }],
        tools: [{ type: 'function', function: { name: 'f' } }],
      }),
    ).rejects.toMatchObject({ status: 400, param: 'tools' });
    waiting.abort();
    running.abort();
    (await first.catch(() => null))?.controller.abort();
    // Both are gone from the session; a new request runs to the end.
    await expect
      .poll(async () => (await client.models.list()).data[0], { timeout: 60_000 })
      .toMatchObject({ sessions: [{ waiting: 0, running: false }] });
    const after = await client.chat.completions.create({
      model: name,
      messages: [{ role: 'user', content: PROMPT }],
      temperature: 0,
      max_completion_tokens: NEW_TOKENS,
    });
    expect(after.choices[0].message.content).toBe(tokenizer.decode(reference.generated));
    expect((await fetch(`${h.server.controlUrl}/api/health`)).status).toBe(200);
  }, 300_000);

  it("the host page's 'Serve the API' toggle (off by default) makes its session answer the API", async () => {
    const hostPage = await TandemPage.open(
      h.browser,
      { name: 'host-page' },
      { baseUrl: h.server.pageUrl, host: true, backend: 'wasm', modelName: model.manifest.name, unitFiles: [] },
    );
    try {
      const s = await hostPage.waitForState<{ role: string | null; code: string | null; serveApi: boolean }>(
        (x) => x.role === 'host' && x.code !== null,
        'the host page to create its session',
      );
      // Tandem's model entries list the sessions serving them (an extension of OpenAI's Model; counts
      // only, never join codes)
      type ServedModel = OpenAI.Models.Model & { sessions: unknown[] };
      const served = async () => ((await client.models.list()).data[0] as ServedModel).sessions.length;
      expect(s.serveApi).toBe(false);
      const before = await served();
      await hostPage.page.check('#serve-api');
      await expect.poll(served, { timeout: 30_000 }).toBe(before + 1);
      await hostPage.waitForState<{ serveApi: boolean }>((x) => x.serveApi, 'the page to show the API as served');
      await hostPage.page.uncheck('#serve-api');
      await expect.poll(served, { timeout: 30_000 }).toBe(before);
    } finally {
      await hostPage.close();
    }
  }, 300_000);
});
