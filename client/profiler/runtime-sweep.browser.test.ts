/**
 * The profiler's compute sweep (runtime-sweep.ts) on onnxruntime-web in headless Chromium, with both
 * probes (stage layers, MatMul blocks) on WebGPU (SwiftShader here) and on wasm: the output passes the
 * check against its reference, a point comes out for every size up to where the sweep stops, and U(t)
 * is fitted. Prints c*, the fit and how long the sweep took. Slow on the shared machine, so opt-in:
 *   TANDEM_WEBGPU_TESTS=1 npx vitest run client/profiler/runtime-sweep.browser.test.ts
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumArgs, findChromium } from '../../e2e/browser.ts';
import { bundleFixture } from '../../e2e/fixture-bundle.ts';
import type { RuntimeSweepResult } from './runtime-sweep.ts';
import { PROFILE_LAYER_PROBE } from './layer-probe.ts';
import { PROFILE_PROBE } from './stage-probe.ts';
import { STAGE_CHECK_ROWS } from './stage-check.ts';

const ORT_DIST = join(process.cwd(), 'node_modules/onnxruntime-web/dist');
const enabled = process.env.TANDEM_WEBGPU_TESTS === '1' && findChromium() !== null;

describe.skipIf(!enabled)('the runtime compute sweep in headless Chromium', () => {
  // undefined when beforeAll failed before setting them
  let server: Server | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    const scripts = await bundleFixture('runtime-sweep-page');
    const srv = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/') {
        res.setHeader('content-type', 'text/html');
        res.end('<!doctype html><meta charset="utf-8"><script src="/page.js"></script>');
      } else if (url === '/page.js') {
        res.setHeader('content-type', 'text/javascript');
        res.end(readFileSync(join(scripts, 'runtime-sweep-page.js')));
      } else if (url.startsWith('/ort/') && /^[\w.-]+$/.test(url.slice(5))) {
        res.setHeader('content-type', url.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        res.end(readFileSync(join(ORT_DIST, url.slice(5))));
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
  });

  for (const [backend, probe] of [
    ['webgpu', 'layers'],
    ['webgpu', 'matmul'],
    ['wasm', 'layers'],
    ['wasm', 'matmul'],
  ] as const) {
    it(`${probe} on ${backend}: checked output, a point per size until the sweep stops, the fit`, async () => {
      // set by beforeAll (the tests do not run when it failed)
      const page = await browser!.newPage();
      try {
        // the shared machine may be loaded: the bundle's first parse can take a while
        await page.goto(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/`, { timeout: 120_000 });
        await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true, null, {
          timeout: 120_000,
        });
        const load = loadavg()[0];
        const out = await page.evaluate(
          ([b, p]) =>
            (
              window as unknown as {
                runSweep(
                  b: string,
                  p: string,
                ): Promise<{ backend: string; seconds: number; result: RuntimeSweepResult }>;
              }
            ).runSweep(b, p),
          [backend, probe] as const,
        );
        expect(out.backend).toBe(backend);
        const r = out.result;
        expect(r.checkError).toBeLessThan(1e-3);
        const measured = r.points.map((p) => p.tokens);
        expect([...measured, ...r.skippedTokens]).toEqual(
          probe === 'layers' ? PROFILE_LAYER_PROBE.sweep : PROFILE_PROBE.sweep,
        );
        expect(measured.length).toBeGreaterThanOrEqual(2);
        for (const p of r.points) expect(p.flops).toBeGreaterThan(0);
        expect(r.fit.samples).toBe(measured.length);
        console.log(
          `${probe} on ${backend}: c* ${(r.peakFlops / 1e9).toFixed(2)} GFLOP/s, U(t) a ${r.fit.a.toFixed(3)} b ${r.fit.b.toExponential(2)}, ` +
            `FLOP/s per t ${r.points.map((p) => `${p.tokens}:${(p.flops / 1e9).toFixed(2)}G`).join(' ')}; ` +
            `check error ${r.checkError.toExponential(1)}; sweep ${out.seconds.toFixed(1)} s; load ${load.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`,
        );
      } finally {
        await page.close();
      }
    }, 300_000);
  }

  it("the profile's stage check: SwiftShader's WebGPU computes real stage layers wrong from 32 rows on, wasm right", async () => {
    const page = await browser!.newPage();
    try {
      await page.goto(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/`, { timeout: 120_000 });
      await page.waitForFunction(() => (window as unknown as { pageReady?: boolean }).pageReady === true, null, {
        timeout: 120_000,
      });
      const check = (backend: 'webgpu' | 'wasm', rows: number) =>
        page.evaluate(
          ([b, r]) =>
            (window as unknown as { runStageCheck(b: string, r: number): Promise<string | null> }).runStageCheck(b, r),
          [backend, rows] as const,
        );
      expect(await check('webgpu', 31)).toBeNull();
      const wrong = await check('webgpu', STAGE_CHECK_ROWS);
      expect(wrong).toMatch(/^WebGPU computed a \d+-row prefill of real stage layers wrong/);
      expect(await check('wasm', STAGE_CHECK_ROWS)).toBeNull();
      console.log(`stage check on SwiftShader: ${wrong}`);
    } finally {
      await page.close();
    }
  }, 300_000);
});
