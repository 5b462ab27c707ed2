/**
 * Failover seen from outside, against the real server on loopback (WebSocket clients play the pages,
 * as in openai-api.test.ts): a stage's socket closes in the middle of a streamed API completion; the
 * remaining pages get the continuation, and the HTTP client sees one uninterrupted stream with every
 * token once. The host sees one request too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPackageTokenizer, type PromptTokenizer } from '../client/runtime/tokenizer.ts';
import type { TandemServer } from './http-server.ts';
import { sampleProfile, startTestServer, TestClient } from './test-support.ts';

const KEY = 'failover-key-0123456789';

let dir: string;
let server: TandemServer;
let packageName: string;
let tokenizer: PromptTokenizer;

describe('failover through the HTTP API', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tandem-failover-'));
    // Silence is not what this test injects: only the socket close may declare a loss.
    const started = await startTestServer(dir, {
      layers: 4,
      qwen3Tokenizer: true,
      limits: { lossTimeoutMs: 600_000 },
      api: { key: KEY },
    });
    server = started.server;
    packageName = started.manifest.name;
    tokenizer = await loadPackageTokenizer({
      modelRoot: `${path.dirname(started.packageDir)}/`,
      packageName: path.basename(started.packageDir),
    });
  });

  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a stage lost mid-stream: the API stream carries every token once, in order, under one completion', async () => {
    const host = await TestClient.open(server.url);
    const pages = await Promise.all([0, 1, 2].map(() => TestClient.open(server.url)));
    const created = await host.request({ type: 'create-session', name: 'failover' });
    if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
    const auth = { code: created.code, hostSecret: created.hostSecret };
    const peerIds: string[] = [];
    for (const [i, page] of pages.entries()) {
      const joined = await page.request({ type: 'join', code: created.code, displayName: `page${i}` });
      if (joined.type !== 'joined') throw new Error(JSON.stringify(joined));
      peerIds.push(joined.peerId);
      expect((await page.request({ type: 'profile', profile: sampleProfile(i + 1) })).type).toBe('ack');
    }
    const plan = await host.request({ type: 'plan', ...auth });
    if (plan.type !== 'plan-ready') throw new Error(JSON.stringify(plan));
    await host.request({ type: 'serve-api', ...auth, serve: true });
    const pageOf = (peerId: string) => pages[peerIds.indexOf(peerId)];

    const ids = tokenizer.encode('The quick brown fox jumps over the lazy dog').slice(0, 6);
    expect(ids).toHaveLength(6);
    const response = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        model: packageName,
        messages: [{ role: 'user', content: 'tell me' }],
        max_tokens: 6,
        stream: true,
        temperature: 0,
      }),
    });
    const start = await pages[0].next('start', (s) => s.origin === 'api');
    const lastOf = (stages: { peerId: string }[]) => pageOf(stages[stages.length - 1].peerId);
    const report = async (page: TestClient, requestId: number, tokenIds: number[], done: boolean) => {
      const reply = await page.request({
        type: 'report-tokens',
        requestId,
        tokenIds,
        text: tokenizer.decode(tokenIds),
        generated: tokenIds.length,
        done,
        ...(done ? { finishReason: 'max-tokens' as const } : {}),
      });
      expect(reply.type).toBe('ack');
    };
    await report(lastOf(plan.stages), start.requestId, ids.slice(0, 2), false);

    // the first stage's page closes (a tab closed): its socket drops
    const lost = plan.stages[0].peerId;
    pageOf(lost).terminate();
    const stageLost = await host.next('stage-lost');
    expect(stageLost).toMatchObject({ requestId: start.requestId, lostPeerIds: [lost], reason: 'left' });
    const repair = await host.next('repair');
    expect(repair.stages.map((s) => s.peerId)).not.toContain(lost);
    const survivor = pages.find((p, i) => peerIds[i] !== lost)!;
    const cont = await survivor.next('start', (s) => s.resume !== undefined);
    expect(cont.resume).toEqual({ of: start.requestId, firstIndex: 2, attempt: 1 });
    expect(cont.promptTokenIds).toEqual([...start.promptTokenIds!, ...ids.slice(0, 2)]);
    expect(cont.maxNewTokens).toBe(4);

    await report(lastOf(repair.stages), cont.requestId, ids.slice(2, 3), false);
    await report(lastOf(repair.stages), cont.requestId, ids.slice(3), true);

    const res = await response;
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split('\n\n')
      .map((e) => e.replace(/^data: /, '').trim())
      .filter((e) => e !== '' && e !== '[DONE]')
      .map(
        (e) =>
          JSON.parse(e) as { id: string; choices: { delta: { content?: string }; finish_reason: string | null }[] },
      );
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
    const text = events.map((e) => e.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(tokenizer.decode(ids));
    expect(events.at(-1)?.choices[0]?.finish_reason).toBe('length');

    // the host saw one request: outputs under its id, the first after the loss with recoveredInMs
    const outputs = host.messages.flatMap((m) => (m.type === 'output' ? [m] : []));
    expect(outputs.every((o) => o.requestId === start.requestId)).toBe(true);
    expect(outputs.flatMap((o) => o.tokenIds)).toEqual(ids);
    expect(outputs.map((o) => o.recoveredInMs !== undefined)).toEqual([false, true, false]);
    host.close();
    for (const p of pages) p.close();
  });
});
