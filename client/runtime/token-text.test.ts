/**
 * The last stage's token text: the table fetched from a package folder (as the worker does) decodes like
 * the package's transformers.js tokenizer; a missing tokenizer.json is a clear error; a tokenizer that is
 * not byte-level asks for the full tokenizer; the worker is always terminated.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEST_SHAPE, testPackage } from '../../shards/stage-test-packages.ts';
import { fetchTokenTextTable, type TokenTextReply, type TokenTextRequest } from './token-text-table.ts';
import { loadTokenText } from './token-text.ts';
import { loadPackageTokenizer } from './tokenizer.ts';

/** fetch over the file system, with files the test may replace. */
function fileFetch(replace: Record<string, string> = {}) {
  return async (url: string) => {
    const name = basename(url);
    try {
      const text = replace[name] ?? (await readFile(url, 'utf8'));
      return { ok: true, status: 200, json: () => Promise.resolve(JSON.parse(text) as unknown) };
    } catch {
      return { ok: false, status: 404, json: () => Promise.reject(new Error('no body')) };
    }
  };
}

/** A stand-in for the worker: answers in this thread, as the real one would. */
function inThreadWorker(fetchUrl: ReturnType<typeof fileFetch>) {
  const worker = {
    terminated: false,
    onmessage: null as ((e: MessageEvent<TokenTextReply>) => void) | null,
    onerror: null as ((e: ErrorEvent) => void) | null,
    postMessage(req: TokenTextRequest) {
      void fetchTokenTextTable(req, fetchUrl).then((reply) =>
        worker.onmessage?.({ data: reply } as MessageEvent<TokenTextReply>),
      );
    },
    terminate() {
      worker.terminated = true;
    },
  };
  return worker;
}

describe('token text of a package', () => {
  it('decodes like the package tokenizer, from a table built off the main thread', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32', { ...TEST_SHAPE, vocab_size: 151936 });
    const req = { modelRoot: dirname(pkg.dir) + '/', packageName: basename(pkg.dir) };
    const worker = inThreadWorker(fileFetch());
    const text = await loadTokenText(req, () => worker);
    const tokenizer = await loadPackageTokenizer(req);
    expect(text).not.toBeNull();
    const ids = tokenizer.encode('Tandem 🙂 runs on phones. Ça marche? 日本語も。');
    expect(text?.decode(ids)).toBe(tokenizer.decode(ids));
    expect(text?.decode([151644, ...ids, 151645])).toBe(tokenizer.decode(ids)); // special tokens are skipped
    expect(worker.terminated).toBe(true);
  });

  it('builds the table without tokenizer_config.json', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32', { ...TEST_SHAPE, vocab_size: 151936 });
    const fetchUrl = fileFetch();
    const reply = await fetchTokenTextTable({ modelRoot: dirname(pkg.dir), packageName: basename(pkg.dir) }, (url) =>
      url.endsWith('tokenizer_config.json') ? fetchUrl(join(pkg.dir, 'missing.json')) : fetchUrl(url),
    );
    expect('table' in reply).toBe(true);
  });

  it('fails clearly when tokenizer.json is missing, and stops the worker', async () => {
    const worker = inThreadWorker(fileFetch());
    await expect(
      loadTokenText({ modelRoot: '/nonexistent/', packageName: 'nope' }, () => worker),
    ).rejects.toMatchObject({
      code: 'tokenizer-load-failed',
      message: expect.stringContaining('/nonexistent/nope/tokenizer.json: HTTP 404') as string,
    });
    expect(worker.terminated).toBe(true);
  });

  it('asks for the full tokenizer when the tokenizer is not byte-level', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32', { ...TEST_SHAPE, vocab_size: 151936 });
    const json = JSON.parse(await readFile(join(pkg.dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const worker = inThreadWorker(
      fileFetch({ 'tokenizer.json': JSON.stringify({ ...json, decoder: { type: 'Metaspace' } }) }),
    );
    const req = { modelRoot: dirname(pkg.dir) + '/', packageName: basename(pkg.dir) };
    await expect(loadTokenText(req, () => worker)).resolves.toBeNull();
    expect(worker.terminated).toBe(true);
  });
});
