/**
 * Stage graphs on onnxruntime-web's WebGPU backend in headless Chromium (SwiftShader here: no shader-f16),
 * chained over two stages, against the fp64 reference, for fp32, fp16 and q4 packages.
 * Slow on the shared 2-core machine (~1-2 min), so it runs only with TANDEM_WEBGPU_TESTS=1:
 *   TANDEM_WEBGPU_TESTS=1 npx vitest run shards/stage-graph.webgpu.test.ts
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumArgs, findChromium } from '../e2e/browser.ts';
import type { PackageDType } from './manifest.ts';
import { ReferenceModel } from './reference-forward.ts';
import { buildStageGraph, HIDDEN_INPUT, HIDDEN_OUTPUT } from './stage-graph.ts';
import { removeTestPackages, testPackage, type TestPackage } from './stage-test-packages.ts';

const TOKENS = [17, 301, 5, 99, 250, 3, 42, 128, 7, 77, 366, 1]; // 8 prefill + 4 decode
const PREFILL = 8;
const ORT_DIST = join(process.cwd(), 'node_modules/onnxruntime-web/dist');

/** The page: loads each stage with externalData fetched from the server, runs prefill + decode steps, returns the logits rows. */
const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import * as ort from '/ort/ort.webgpu.bundle.min.mjs';
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = '/ort/';
window.runStages = async (job) => {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter');
  const stages = [];
  for (const s of job.stages) {
    const model = new Uint8Array(await (await fetch(s.model)).arrayBuffer());
    const externalData = await Promise.all(s.external.map(async (p) => ({ path: p, data: new Uint8Array(await (await fetch(job.blobBase + p)).arrayBuffer()) })));
    const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], externalData });
    const cache = {};
    for (let l = s.start; l < s.end; l++) for (const kv of ['key', 'value']) cache['past_key_values.' + l + '.' + kv] = new ort.Tensor('float32', new Float32Array(0), [1, job.nkv, 0, job.hd]);
    stages.push({ s, session, cache });
  }
  const rows = [];
  let past = 0;
  for (const ids of job.steps) {
    const S = ids.length;
    let x = new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, S]);
    for (const st of stages) {
      const feeds = { [st.s.embeds ? 'input_ids' : '${HIDDEN_INPUT}']: x,
        attention_mask: new ort.Tensor('int64', new BigInt64Array(past + S).fill(1n), [1, past + S]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, j) => BigInt(past + j)), [1, S]), ...st.cache };
      const out = await st.session.run(feeds);
      for (const k of Object.keys(st.cache)) st.cache[k] = out[k.replace('past_key_values.', 'present.')];
      x = out[st.s.hasHead ? 'logits' : '${HIDDEN_OUTPUT}'];
    }
    const data = await x.getData();
    const V = x.dims[2];
    // (1, 1, V): the stage graph's head computes the last position of each step only
    for (let s = 0; s < x.dims[1]; s++) rows.push(Array.from(data.slice(s * V, (s + 1) * V)));
    past += S;
  }
  for (const st of stages) await st.session.release();
  return { fallback: adapter.isFallbackAdapter ?? null, shaderF16: adapter.features.has('shader-f16'), rows };
};
window.pageReady = true;
</script>`;

const enabled = process.env.TANDEM_WEBGPU_TESTS === '1' && findChromium() !== null;

describe.skipIf(!enabled)('stage graphs on onnxruntime-web WebGPU in Chromium == fp64 reference', () => {
  const files = new Map<string, Uint8Array>(); // URL path -> bytes
  let server: Server;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/') {
        res.setHeader('content-type', 'text/html');
        res.end(PAGE);
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
    await new Promise((r) => server.once('listening', r));
    browser = await chromium.launch({ executablePath: findChromium()!.path, args: chromiumArgs({ webgpu: true }) });
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true);
  }, 120_000);

  afterAll(async () => {
    // Unset when beforeAll failed part-way.
    await (browser as Browser | undefined)?.close();
    (server as Server | undefined)?.close();
    removeTestPackages();
  });

  function referenceRows(pkg: TestPackage): Float64Array[] {
    const ref = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u));
    const cache = ref.newCache();
    const rows: Float64Array[] = [];
    // the last position of each step, as the stage graph's head computes it
    const push = (l: Float64Array) => rows.push(l.slice(l.length - ref.V));
    push(ref.forward(TOKENS.slice(0, PREFILL), cache));
    for (const t of TOKENS.slice(PREFILL)) push(ref.forward([t], cache));
    return rows;
  }

  for (const dtype of ['fp32', 'fp16', 'q4'] as PackageDType[]) {
    it(`qwen3 ${dtype}, stages 1-2 | 3-4`, async () => {
      const pkg = await testPackage('qwen3', true, dtype);
      const m = pkg.reader.manifest;
      const split = [
        { start: 0, end: 2 },
        { start: 2, end: 4 },
      ];
      const stages = split.map((layers, i) => {
        const spec = { layers, embeds: i === 0, hasHead: i === split.length - 1 };
        const g = buildStageGraph(m, spec, { backend: 'webgpu', maxPositions: 64 });
        files.set(`/${dtype}/stage${i}.onnx`, g.model);
        for (const e of g.externalData) files.set(`/${dtype}/blob/${e.path}`, pkg.blobs.get(e.path)!);
        return {
          model: `/${dtype}/stage${i}.onnx`,
          external: g.externalData.map((e) => e.path),
          start: layers.start,
          end: layers.end,
          embeds: spec.embeds,
          hasHead: spec.hasHead,
        };
      });
      const job = {
        stages,
        blobBase: `/${dtype}/blob/`,
        nkv: m.config.num_key_value_heads,
        hd: m.config.head_dim ?? m.config.hidden_size / m.config.num_attention_heads,
        steps: [TOKENS.slice(0, PREFILL), ...TOKENS.slice(PREFILL).map((t) => [t])],
      };
      const result = await page.evaluate(
        (j) =>
          (window as unknown as { runStages(j: unknown): Promise<{ rows: number[][]; shaderF16: boolean }> }).runStages(
            j,
          ),
        job,
      );
      const ref = referenceRows(pkg);
      expect(result.rows).toHaveLength(ref.length);
      let maxDiff = 0;
      result.rows.forEach((row, r) => row.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - ref[r][i])))));
      console.log(
        `webgpu qwen3 ${dtype} (shader-f16: ${result.shaderF16}): max |logits - fp64 reference| = ${maxDiff.toExponential(2)}`,
      );
      expect(maxDiff).toBeLessThan(1e-4);
    }, 300_000);
  }
});
