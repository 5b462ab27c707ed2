/**
 * The OpenAI-compatible API against the real server on loopback, without browsers: a WebSocket client
 * plays the session's one page (a single stage holding the head), receives the `start` of each API
 * request and reports tokens as a page's last stage does. The official `openai` package is the HTTP
 * client where it can be; raw fetch where the test needs the raw response (headers, bad JSON).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackageTokenizer, type PromptTokenizer } from '../client/runtime/tokenizer.ts';
import type { TandemServer } from './http-server.ts';
import type { ServerMessageOf } from '../core/protocol.ts';
import { GREEDY, sampleProfile, startTestServer, TestClient } from './test-support.ts';

const KEY = 'test-key-0123456789';
const ORIGIN = 'http://chat.example';

let dir: string;
let server: TandemServer;
let packageName: string;
let host: TestClient;
let page: TestClient;
let pageId: string;
let code: string;
let hostSecret: string;
let tokenizer: PromptTokenizer;
let client: OpenAI;

const url = (p: string) => `${server.url}${p}`;
const auth = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };

async function post(body: unknown, headers: Record<string, string> = auth): Promise<Response> {
  return fetch(url('/v1/chat/completions'), {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The page's last stage reports `text` as tokens, one report per token, the last with done. */
async function reportTokens(
  start: ServerMessageOf<'start'>,
  ids: number[],
  finishReason: 'eos' | 'max-tokens' | null,
): Promise<void> {
  for (const [i, id] of ids.entries()) {
    const done = finishReason !== null && i === ids.length - 1;
    const reply = await page.request({
      type: 'report-tokens',
      requestId: start.requestId,
      tokenIds: [id],
      text: tokenizer.decode([id]),
      generated: i + 1,
      done,
      ...(done ? { finishReason } : {}),
    });
    expect(reply.type).toBe('ack');
  }
}

describe('OpenAI-compatible API on the access point', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tandem-api-'));
    const started = await startTestServer(dir, {
      layers: 4,
      qwen3Tokenizer: true,
      limits: { queueDepth: 1 },
      api: { key: KEY, corsOrigins: [ORIGIN] },
    });
    server = started.server;
    packageName = started.manifest.name;
    tokenizer = await loadPackageTokenizer({
      modelRoot: `${path.dirname(started.packageDir)}/`,
      packageName: path.basename(started.packageDir),
    });
    client = new OpenAI({ baseURL: url('/v1'), apiKey: KEY, maxRetries: 0 });
    host = await TestClient.open(server.url);
    const created = await host.request({ type: 'create-session', name: 'api' });
    if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
    ({ code, hostSecret } = created);
    page = await TestClient.open(server.url);
    const joined = await page.request({ type: 'join', code, displayName: 'page' });
    if (joined.type !== 'joined') throw new Error(JSON.stringify(joined));
    pageId = joined.peerId;
    expect((await page.request({ type: 'profile', profile: sampleProfile(1) })).type).toBe('ack');
    const plan = await host.request({ type: 'plan', code, hostSecret, method: 'single' }, 20_000);
    expect(plan).toMatchObject({ type: 'plan-ready', stages: [{ peerId: pageId, hasHead: true }] });
  }, 60_000);

  afterAll(async () => {
    // each is unset when beforeAll failed before it
    (host as TestClient | undefined)?.close();
    (page as TestClient | undefined)?.close();
    await (server as TandemServer | undefined)?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a missing or wrong key with 401 in the OpenAI error format', async () => {
    const none = await post(
      { model: packageName, messages: [{ role: 'user', content: 'hi' }] },
      { 'Content-Type': 'application/json' },
    );
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({
      error: { type: 'invalid_request_error', code: 'invalid_api_key', param: null },
    });
    const wrong = new OpenAI({ baseURL: url('/v1'), apiKey: 'not-the-key', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('answers 503 while no session serves the API, then lists the session once the host switches it on', async () => {
    await expect(
      client.chat.completions.create({ model: packageName, messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 503, code: 'no_session' });
    const before = await client.models.list();
    expect(before.data).toEqual([expect.objectContaining({ id: packageName, object: 'model', sessions: [] })]);
    expect(await host.request({ type: 'serve-api', code, hostSecret, serve: true })).toMatchObject({
      type: 'api-serving',
      serve: true,
    });
    const after = await client.models.list();
    expect(after.data[0]).toMatchObject({ id: packageName, sessions: [{ running: false, waiting: 0 }] });
    expect(JSON.stringify(after)).not.toContain(code); // the listing never shows a join code
  });

  it('refuses unsupported and malformed fields with 400 naming the parameter', async () => {
    const base = { model: packageName, messages: [{ role: 'user', content: 'hi' }] };
    const cases: [unknown, string | null][] = [
      [{ ...base, n: 2 }, 'n'],
      [{ ...base, tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
      [{ ...base, logprobs: true }, 'logprobs'],
      [
        { ...base, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:,' } }] }] },
        'messages[0].content',
      ],
      [{ ...base, temperature: 3 }, 'temperature'],
      [{ ...base, max_tokens: 0 }, 'max_tokens'],
      [{ ...base, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ ...base, frobnicate: 1 }, 'frobnicate'],
      [{ ...base, messages: [] }, 'messages'],
      [{ ...base, max_tokens: 5000 }, 'max_tokens'],
      ['{not json', null],
    ];
    for (const [body, param] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const json = (await res.json()) as { error: { type: string; param: string | null; message: string } };
      expect(json.error.type).toBe('invalid_request_error');
      if (param === null) expect(json.error.param).toBeNull();
      else expect(json.error.param, JSON.stringify(body)).toMatch(new RegExp(`^${param.replace(/[[\]]/g, '\\$&')}`));
    }
    await expect(
      client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('a completion runs on the session like a go: prompt ids as the page would encode them, text, usage, finish_reason', async () => {
    const answer = tokenizer.encode('Paris is the capital.');
    const completion = client.chat.completions.create({
      model: packageName,
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
      temperature: 0,
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- the server accepts max_tokens, which most clients still send; this covers that path
      max_tokens: 50,
    });
    const start = await page.next('start', (s) => s.origin === 'api', 10_000);
    // The server applied the chat template exactly as the first stage does for a typed prompt.
    expect(start.promptTokenIds).toEqual(tokenizer.encode('What is the capital of France?', { chatTemplate: true }));
    expect(start).toMatchObject({ maxNewTokens: 50, sampling: { temperature: 0, topK: 0, topP: 1 } });
    expect(start.prompt).toContain('What is the capital of France?');
    await reportTokens(start, [...answer, 151645], 'eos');
    const result = await completion;
    expect(result.choices).toMatchObject([
      { index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Paris is the capital.' } },
    ]);
    expect(result.usage).toEqual({
      prompt_tokens: start.promptTokenIds!.length,
      completion_tokens: answer.length + 1,
      total_tokens: start.promptTokenIds!.length + answer.length + 1,
    });
  });

  it('streams chunks ending in [DONE], with finish_reason length and usage', async () => {
    const ids = tokenizer.encode(' one two three');
    const stream = await client.chat.completions.create({
      model: packageName,
      messages: [
        { role: 'system', content: 'Count.' },
        { role: 'user', content: 'Go' },
      ],
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- the server maps max_tokens and seed (no replacement exists for seed) onto the request; this covers them
      max_tokens: ids.length,
      stream: true,
      stream_options: { include_usage: true },
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- the server maps max_tokens and seed (no replacement exists for seed) onto the request; this covers them
      seed: 5,
    });
    const start = await page.next('start', (s) => s.origin === 'api', 10_000);
    expect(start.sampling).toMatchObject({ temperature: 1, topP: 1, seed: 5 });
    const reporting = reportTokens(start, ids, 'max-tokens');
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    await reporting;
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(' one two three');
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThanOrEqual(2);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: start.promptTokenIds!.length, completion_tokens: ids.length },
    });
  });

  it('a stop sequence ends the text before it and cancels the request on the pages', async () => {
    const ids = tokenizer.encode('alpha beta END gamma');
    const completion = client.chat.completions.create({
      model: packageName,
      messages: [{ role: 'user', content: 'say it' }],
      stop: 'END',
    });
    const start = await page.next('start', (s) => s.origin === 'api', 10_000);
    await reportTokens(start, ids, null);
    const result = await completion;
    expect(result.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: 'alpha beta ' } });
    await page.next('cancel', (c) => c.requestId === start.requestId);
  });

  it('a client that disconnects mid-stream cancels the request on every page; the host sees it end', async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: packageName, messages: [{ role: 'user', content: 'long story' }], stream: true },
      { signal: controller.signal },
    );
    const start = await page.next('start', (s) => s.origin === 'api', 10_000);
    await reportTokens(start, tokenizer.encode('Once upon'), null);
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    controller.abort();
    const cancel = await page.next('cancel', (c) => c.requestId === start.requestId);
    expect(cancel.reason).toMatch(/disconnected/);
    const ended = await host.next('output', (o) => o.requestId === start.requestId && o.done);
    expect(ended.finishReason).toBe('cancelled');
    // A token the last stage sampled before the cancel reached it is acknowledged, not an error.
    expect(
      await page.request({
        type: 'report-tokens',
        requestId: start.requestId,
        tokenIds: [11],
        text: 'x',
        generated: 3,
        done: false,
      }),
    ).toMatchObject({ type: 'ack' });
    expect(
      await page.request({
        type: 'report-cancelled',
        requestId: start.requestId,
        tokensAfterCancel: 1,
        stepsAfterCancel: 1,
      }),
    ).toMatchObject({ type: 'ack' });
    expect(await host.next('cancelled', (c) => c.requestId === start.requestId)).toMatchObject({
      peerId: pageId,
      tokensAfterCancel: 1,
    });
  });

  it('one request at a time: the next waits, beyond the queue depth 429 with Retry-After; the host go shares the queue', async () => {
    const first = client.chat.completions.create({
      model: packageName,
      messages: [{ role: 'user', content: 'first' }],
    });
    const start1 = await page.next('start', (s) => s.origin === 'api', 10_000);
    const second = client.chat.completions.create({
      model: packageName,
      messages: [{ role: 'user', content: 'second' }],
    });
    // depth 1: the second waits; a third is turned away
    await expect
      .poll(async () => (await client.models.list()).data[0])
      .toMatchObject({ sessions: [{ waiting: 1, running: true }] });
    const third = await post({ model: packageName, messages: [{ role: 'user', content: 'third' }] });
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await third.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'queue_full' } });
    const go = {
      type: 'go',
      code,
      hostSecret,
      prompt: 'typed',
      maxNewTokens: 2,
      sampling: GREEDY,
    } as const;
    expect(await host.request(go)).toMatchObject({ type: 'error', code: 'queue-full' });
    await reportTokens(start1, tokenizer.encode('one'), 'eos');
    expect((await first).choices[0].message.content).toBe('one');
    const start2 = await page.next('start', (s) => s.origin === 'api', 10_000);
    expect(start2.prompt).toContain('second');
    // now the host's go waits behind the second request; its start (the reply) comes when that ends
    const hostStart = host.request(go, 10_000);
    await reportTokens(start2, tokenizer.encode('two'), 'eos');
    expect((await second).choices[0].message.content).toBe('two');
    expect(await hostStart).toMatchObject({ type: 'start', origin: 'host', prompt: 'typed' });
    const start3 = await page.next('start', (s) => s.origin === 'host', 10_000);
    await reportTokens(start3, tokenizer.encode('ok'), 'eos');
    // the server stayed up throughout
    expect((await fetch(url('/api/health'))).status).toBe(200);
  });

  it('CORS: an allowed origin gets the preflight and the headers, another origin does not', async () => {
    const pre = await fetch(url('/v1/chat/completions'), {
      method: 'OPTIONS',
      headers: {
        Origin: ORIGIN,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    const allowed = await fetch(url('/v1/models'), { headers: { ...auth, Origin: ORIGIN } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(allowed.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    const other = await fetch(url('/v1/models'), { headers: { ...auth, Origin: 'http://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('cross-origin-resource-policy')).toBe('same-origin');
  });

  it('the host switching the API off makes it answer 503 again', async () => {
    expect(await host.request({ type: 'serve-api', code, hostSecret, serve: false })).toMatchObject({
      type: 'api-serving',
      serve: false,
    });
    const res = await post({ model: packageName, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/Serve the API/);
  });

  it('a session without a plan is planned for the prompt length; its only stage leaving fails the request saying what would help', async () => {
    const host2 = await TestClient.open(server.url);
    const page2 = await TestClient.open(server.url);
    try {
      const created = await host2.request({ type: 'create-session', name: 'unplanned' });
      if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
      const joined = await page2.request({ type: 'join', code: created.code, displayName: 'page2' });
      expect(joined.type).toBe('joined');
      expect((await page2.request({ type: 'profile', profile: sampleProfile(2) })).type).toBe('ack');
      await host2.request({ type: 'serve-api', code: created.code, hostSecret: created.hostSecret, serve: true });
      const completion = client.chat.completions.create({
        model: packageName,
        messages: [{ role: 'user', content: 'plan for me' }],
      });
      completion.catch(() => undefined);
      const planned = await host2.next('plan-ready', () => true, 20_000);
      const start = await page2.next('start', (s) => s.origin === 'api', 10_000);
      expect(planned.tokens).toBe(start.promptTokenIds!.length);
      expect(start.planId).toBe(planned.planId);
      expect((await page2.request({ type: 'leave' })).type).toBe('ack');
      // no page remains to take over: the request cannot be recovered, and the error says what would help
      await expect(completion).rejects.toMatchObject({
        status: 502,
        code: 'recovery_impossible',
        message: expect.stringMatching(/no page remains.*add a device with [0-9.]+ GB free/) as unknown,
      });
      expect((await fetch(url('/api/health'))).status).toBe(200);
    } finally {
      host2.close();
      page2.close();
    }
  });
});
