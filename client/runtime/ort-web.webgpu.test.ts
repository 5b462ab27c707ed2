/**
 * The client's ort-web.ts on onnxruntime-web WebGPU in headless Chromium (SwiftShader here) with the
 * session-resident KV cache: presents stay GPU buffers and are fed back as the next past, for 8-token
 * prefill + 4 decode steps, twice (the cache resets per sequence); the last-position logits must equal
 * the fp64 reference. Slow on the shared machine, so opt-in:
 *   TANDEM_WEBGPU_TESTS=1 npx vitest run client/runtime/ort-web.webgpu.test.ts
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumArgs, findChromium } from '../../e2e/browser.ts';
import { bundleFixture } from '../../e2e/fixture-bundle.ts';
import { ReferenceModel } from '../../shards/reference-forward.ts';
import { buildStageGraph, stageSessionConfig } from '../../shards/stage-graph.ts';
import { headDim } from '../../shards/manifest.ts';
import { removeTestPackages, testPackage } from '../../shards/stage-test-packages.ts';

const TOKENS = [17, 301, 5, 99, 250, 3, 42, 128, 7, 77, 366, 1];
const PREFILL = 8;
const ORT_DIST = join(process.cwd(), 'node_modules/onnxruntime-web/dist');
const enabled = process.env.TANDEM_WEBGPU_TESTS === '1' && findChromium() !== null;

describe.skipIf(!enabled)('ort-web.ts on WebGPU with the KV cache kept as GPU buffers', () => {
  const files = new Map<string, Uint8Array>();
  // undefined when beforeAll failed before setting them
  let server: Server | undefined;
  let browser: Browser | undefined;
  let scripts: string;

  beforeAll(async () => {
    scripts = await bundleFixture('ort-web-kv-page');
    const srv = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/') {
        res.setHeader('content-type', 'text/html');
        res.end('<!doctype html><meta charset="utf-8"><script src="/page.js"></script>');
      } else if (url === '/page.js') {
        res.setHeader('content-type', 'text/javascript');
        res.end(readFileSync(join(scripts, 'ort-web-kv-page.js')));
      } else if (url.startsWith('/ort/') && /^[\w.-]+$/.test(url.slice(5))) {
        res.setHeader('content-type', url.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        res.end(readFileSync(join(ORT_DIST, url.slice(5))));
      } else if (files.has(url)) {
        res.end(files.get(url));
      } else {
        res.statusCode = 404;
        res.end();
      }
    }).listen(0, '127.0.0.1');
    server = srv;
    await new Promise((r) => srv.once('listening', r));
    browser = await chromium.launch({ executablePath: findChromium()!.path, args: chromiumArgs({ webgpu: true }) });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
    removeTestPackages();
  });

  it('one stage, prefill + decode, two sequences == the fp64 reference', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const m = pkg.reader.manifest;
    const L = m.config.num_hidden_layers;
    const spec = { layers: { start: 0, end: L }, embeds: true, hasHead: true };
    const opts = { backend: 'webgpu' as const, maxPositions: 64 };
    const g = buildStageGraph(m, spec, opts);
    files.set('/stage.onnx', g.model);
    for (const e of g.externalData) files.set(`/blob/${e.path}`, pkg.blobs.get(e.path)!);
    const steps = [TOKENS.slice(0, PREFILL), ...TOKENS.slice(PREFILL).map((t) => [t])];
    const job = {
      model: '/stage.onnx',
      external: g.externalData.map((e) => ({ path: e.path, url: `/blob/${e.path}` })),
      config: stageSessionConfig(m, opts),
      layers: Array.from({ length: L }, (_, i) => i),
      heads: m.config.num_key_value_heads,
      headDim: headDim(m.config),
      steps,
      sequences: 2,
    };
    // set by beforeAll (the tests do not run when it failed)
    const page = await browser!.newPage();
    await page.goto(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true);
    const result = await page.evaluate(
      (j) =>
        (
          window as unknown as {
            runResident(j: unknown): Promise<{ rows: number[][]; runMs: number[]; backend: string }>;
          }
        ).runResident(j),
      job,
    );
    expect(result.backend).toBe('webgpu');
    const ref = new ReferenceModel(m, (u) => pkg.unitBytes(u));
    const cache = ref.newCache();
    const want = steps.map((ids) => {
      const l = ref.forward(ids, cache);
      return l.slice(l.length - ref.V);
    });
    expect(result.rows).toHaveLength(2 * steps.length);
    let maxDiff = 0;
    result.rows.forEach((row, r) => {
      const w = want[r % steps.length];
      expect(row).toHaveLength(w.length);
      row.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - w[i]))));
    });
    console.log(
      `webgpu resident KV: max |logits - fp64 reference| = ${maxDiff.toExponential(2)}; run ms ${result.runMs.map((x) => x.toFixed(0)).join(' ')}`,
    );
    expect(maxDiff).toBeLessThan(1e-4);
  }, 300_000);
});
