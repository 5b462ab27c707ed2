/**
 * Whole sessions in real headless Chromium pages inside a private network namespace, on the tiny model:
 * create, join, profile, plan, cache, go, generate. The pages' token ids must equal the shards pipeline
 * runner (`npm run generate`, same split and one stage) and transformers.js generate() on the export-full
 * model, for WebGPU and for wasm. Then, in the wasm session: a second request downloads no blob again, a
 * reloaded page rejoins with its cache, and a peer that closes its tab before "go" is excluded by a
 * re-plan and the request completes. Screenshots go to e2e/artifacts/.
 */
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { prepareE2e, skipBanner } from './environment.ts';
import { Harness } from './harness.ts';
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';
import { emulatedPeer } from './profiles.ts';
import { ensureExportFull, nodeRunnerTokens, transformersTokens, type ReferenceTokens } from './reference.ts';
import type { ServerMessageOf } from '../core/protocol.ts';
import { stepFigures } from '../client/ui/step-figures.ts';
import { PHASE_STYLE } from '../client/ui/timeline.ts';
import type { PeerSpec } from './tandem-page.ts';
import { OPFS_UNITS_DIR, opfsUnitFile } from '../client/cache/opfs-units.ts';
import { stageLoadParts } from '../shards/runtime/stage-parts.ts';
import { unitsForRange } from '../shards/manifest.ts';
import { loadPartsPolicy } from '../client/profiler/parallel-load.ts';

const ready = prepareE2e();
if (!ready.ok) console.warn(skipBanner('browser session tests', ready.reason));

const ARTIFACTS = resolve('e2e/artifacts');
// 15 tokens with the chat template: keep it under 32, since SwiftShader (the webgpu pages' adapter here)
// computes a prefill of 32 tokens or more wrong (docs/architecture.md, 'On a real GPU')
const PROMPT = 'Name three colours of the rainbow.';
const NEW_TOKENS = 8;

/** Three pages: one plain, one with 2x CDP CPU throttling and a read cap, one with a read cap (all labelled). */
// alpha runs its stage on the main thread (as a browser that cannot move data channels to a worker does),
// the others in their inference workers: one ring of both kinds
const PEERS: PeerSpec[] = [
  // alpha loads its stage in up to 4 parts (the tiny model's stages are too small for the default's 8 MiB
  // parts), on the main thread's ring too; bravo in one session; charlie as its profile says
  { name: 'alpha', ringOnMain: true, parts: 4 },
  { ...emulatedPeer('bravo', 2, 300), parts: 'off' },
  emulatedPeer('charlie', 1, 150),
];

/**
 * In the page: whether the timeline's canvas was handed to a worker (its own context is then refused), and
 * how many opaque pixels are within 2 levels of `hex` per channel, read by drawing the canvas (what the
 * worker drew) on another.
 */
function timelineCanvasPixels(hex: string): { drawnInWorker: boolean; matching: number } {
  const canvas = document.querySelector<HTMLCanvasElement>('canvas.timeline-canvas')!;
  let drawnInWorker = false;
  try {
    canvas.getContext('2d');
  } catch {
    drawnInWorker = true;
  }
  const copy = document.createElement('canvas');
  copy.width = canvas.width;
  copy.height = canvas.height;
  const ctx = copy.getContext('2d')!;
  ctx.drawImage(canvas, 0, 0);
  const px = ctx.getImageData(0, 0, copy.width, copy.height).data;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const near = (x: number, y: number) => Math.abs(x - y) <= 2;
  let matching = 0;
  for (let i = 0; i < px.length; i += 4)
    if (px[i + 3] === 255 && near(px[i], r) && near(px[i + 1], g) && near(px[i + 2], b)) matching++;
  return { drawnInWorker, matching };
}

/** Where a page's timeline chart was drawn and whether it shows the measured storage reads, as one line. */
async function timelineChart(page: Page): Promise<string> {
  const chart = await page.evaluate(timelineCanvasPixels, PHASE_STYLE['storage-read'].color);
  return `in a worker: ${chart.drawnInWorker}; storage reads drawn: ${chart.matching > 0}`;
}

function splitOf(plan: ServerMessageOf<'plan-ready'>): string {
  return plan.stages
    .map((s) =>
      s.layers.end - s.layers.start === 1 ? `${s.layers.start + 1}` : `${s.layers.start + 1}-${s.layers.end}`,
    )
    .join(',');
}

let model: ModelFixture;
let transformersRef: ReferenceTokens;
let oneStageRef: ReferenceTokens;

describe.skipIf(!ready.ok)('Tandem sessions in headless Chromium (tiny model)', () => {
  beforeAll(async () => {
    model = await ensureModelFixture({ preset: 'tiny' });
    const exportDir = await ensureExportFull(model.packageDir, join(dirname(model.packageDir), 'export-full'));
    transformersRef = await transformersTokens({ exportDir, prompt: PROMPT, maxNewTokens: NEW_TOKENS });
    oneStageRef = await nodeRunnerTokens({ packageDir: model.packageDir, prompt: PROMPT, maxNewTokens: NEW_TOKENS });
    expect(oneStageRef.generated).toEqual(transformersRef.generated);
  }, 300_000);

  for (const backend of ['webgpu', 'wasm'] as const) {
    describe(`${backend} pages`, () => {
      let h: Harness;
      let firstPlan: ServerMessageOf<'plan-ready'> | undefined;

      beforeAll(async () => {
        if (!ready.ok) return;
        // WebGPU is on in both browsers; the wasm run is the page's own ?backend=wasm.
        // --no-spares: these cases check that each page downloads exactly its stage's units; an idle page
        // made a spare would download another stage's (spares: signaling/spares.test.ts, failover e2e)
        h = await Harness.start({
          chromium: ready.chromium.path,
          model,
          backend,
          heartbeatTimeoutMs: 30_000,
          serverArgs: ['--no-spares'],
        });
        await h.createSession(`e2e-${backend}`);
        await h.openPeers(PEERS);
        await h.waitProfiled();
      }, 400_000);

      afterAll(async () => {
        await (h as Harness | undefined)?.stop(); // unset when beforeAll failed
      });

      it('3 pages profile, plan, cache and generate the reference token ids', async () => {
        // Every page reported a measured profile, labelled when emulated.
        for (const p of h.roster()) {
          expect(p.profile, p.displayName).not.toBeNull();
          const spec = PEERS.find((s) => s.name === p.displayName)!;
          expect(p.profile!.emulated !== null).toBe(spec.emulate !== undefined);
        }
        // Compute was measured on the page's own runtime and backend (stand-in matmuls only when that fails).
        for (const page of h.pages) {
          const shown = await page.page.locator('#profile-body').innerText();
          expect(shown, page.spec.name).toContain('ONNX Runtime (the runtime a stage runs)');
          expect(shown, page.spec.name).toContain(`onnxruntime-web ${backend}`);
          const prof = h.roster().find((p) => p.displayName === page.spec.name)?.profile;
          console.log(
            `${backend} ${page.spec.name}: c* ${((prof?.peakFlops ?? NaN) / 1e9).toFixed(2)} GFLOP/s, U(t) a ${prof?.utilA.toFixed(3)} b ${prof?.utilB.toExponential(2)}`,
          );
        }
        // The DP may rightly keep the tiny model on one page (two CI runs of session 15): then there is no
        // ring to check, and an even plan over the three pages makes one.
        const dp = await h.plan('dp', 16);
        const plan = dp.stages.length > 1 ? dp : await h.plan('even', 16);
        firstPlan = plan;
        expect(plan.stages.length).toBeGreaterThan(1);
        await h.waitCached(plan);
        const run = await h.go(plan, PROMPT, NEW_TOKENS);
        // the plan's pages ran it to the end (a failover would move stages: the checks below would not hold)
        expect(run.failover, 'failover messages').toEqual([]);
        const splitRef = await nodeRunnerTokens({
          packageDir: model.packageDir,
          prompt: PROMPT,
          maxNewTokens: NEW_TOKENS,
          split: splitOf(plan),
        });
        expect(run.generatedTokenIds).toEqual(splitRef.generated);
        expect(run.generatedTokenIds).toEqual(oneStageRef.generated);
        expect(run.generatedTokenIds).toEqual(transformersRef.generated);
        // the streamed text (the last stage's byte-level table, built in a worker) is transformers.js' text
        expect(run.text).toBe(transformersRef.text);
        // The stages ran in the pages' inference workers, their frames on links the workers own (the
        // carrier on the main thread only dials), except alpha's, on its main thread: what the pages' link
        // hubs logged says so, and the tokens above say that the two kinds share a ring
        for (const s of plan.stages) {
          const page = h.pages.find((p) => p.spec.name === s.displayName)!;
          const log = page.consoleText();
          // ... and the page says so to the person in front of it
          // (a CI run once found no stage line here: the failure says what the card showed instead)
          const stageLine = await page.page
            .locator('p.stage-state')
            .innerText()
            .catch(async (e: unknown) => {
              const card = await page.page
                .locator('#stage')
                .innerText({ timeout: 5_000 })
                .catch((why: unknown) => `(unreadable: ${String(why).split('\n')[0]})`);
              throw new Error(`${page.spec.name} shows no stage line; its stage card reads: ${card}`, { cause: e });
            });
          expect(stageLine, page.spec.name).toContain(
            page.spec.ringOnMain ? 'on the main thread' : 'in the inference worker',
          );
          // ... in as many parts as ?parts= asks: a part's session made while the next part's units were read
          const policy = page.spec.parts === undefined ? undefined : loadPartsPolicy(page.spec.parts, null);
          const parts =
            policy === undefined
              ? null
              : policy === null
                ? 1
                : stageLoadParts(model.manifest, { layers: s.layers, embeds: s.embeds, hasHead: s.hasHead }, policy)
                    .length;
          if (parts !== null) {
            const snap = await page.state<{ stage: { loadedInParts?: number } }>();
            expect(snap?.stage.loadedInParts, `${page.spec.name}: sessions its stage loaded as`).toBe(parts);
            if (parts > 1) expect(stageLine, page.spec.name).toContain(`loaded in ${parts} parts`);
          }
          if (page.spec.ringOnMain) {
            expect(log, page.spec.name).toContain('stage: runs on the main thread (?ring=main)');
            expect(log, page.spec.name).toMatch(/\[tandem\] links: (incoming|outgoing) link with \S+ open/);
          } else {
            expect(log, page.spec.name).toContain('stage: runs in the inference worker');
            expect(log, page.spec.name).toMatch(/worker links: (incoming|outgoing) link with \S+ open/);
            // its stored units' files were open before the request: the cold start read them with no round trips
            const units = unitsForRange(model.manifest, s.layers, s.embeds, s.hasHead).length;
            expect(log, page.spec.name).toContain(`stage: ${units} unit files kept open for the cold start`);
          }
        }
        // Each page (with an empty cache before this request) downloaded exactly the units of its own
        // stage, and a page without a stage downloaded nothing (after a re-plan a page may also hold units of
        // its stage in the DP plan, so only for the first plan).
        for (const page of plan === dp ? h.pages : []) {
          const s = plan.stages.find((stage) => stage.displayName === page.spec.name);
          const wanted = new Set(
            s
              ? [
                  ...(s.embeds ? ['embed'] : []),
                  ...Array.from({ length: s.layers.end - s.layers.start }, (_, i) => `layer.${s.layers.start + i}`),
                  ...(s.hasHead ? ['head'] : []),
                ]
              : [],
          );
          const own = model.manifest.units.filter((u) => wanted.has(u.id));
          expect(
            new Set(page.downloads.map((d) => d.file)),
            `${page.spec.name} fetched exactly its stage's units`,
          ).toEqual(new Set(own.map((u) => u.file)));
          // ... through its download worker (fetch, SHA-256 and file write off the main thread)
          if (own.length)
            expect(
              page.page.workers().some((w) => w.url().includes('unit-fetch-worker')),
              `${page.spec.name} has its download worker`,
            ).toBe(true);
          // ... and kept them as files of its origin private file system, named by hash, where its inference
          // worker reads them
          const stored = await page.page.evaluate(async (dir) => {
            const root = await navigator.storage.getDirectory();
            const units = (await root.getDirectoryHandle(dir, { create: true })) as unknown as {
              keys(): AsyncIterable<string>;
            };
            const names: string[] = [];
            for await (const name of units.keys()) names.push(name);
            return names;
          }, OPFS_UNITS_DIR);
          expect(new Set(stored), `${page.spec.name} stored its units as OPFS files`).toEqual(
            new Set(own.map((u) => opfsUnitFile(model.manifest.name, u.sha256))),
          );
          // ... and a stage in its inference worker looked every unit up itself (committed-unit.ts): the main
          // thread's cache read none (a stage on the main thread reads them there)
          const snap = await page.state<{ cache: { reads: { unitId: string }[] } }>();
          const mainReads = snap?.cache.reads.map((r) => r.unitId) ?? [];
          if (page.spec.ringOnMain) expect(new Set(mainReads)).toEqual(new Set(own.map((u) => u.id)));
          else expect(mainReads, `${page.spec.name}: units the main thread had to read`).toEqual([]);
          // its profile measured the storage read the same way: a unit file read by the inference worker
          expect(await page.page.locator('#device').textContent(), `${page.spec.name}'s profile`).toContain(
            'an OPFS file read in the inference worker',
          );
        }
        expect(run.metrics.ttft).not.toBeNull();
        // Once the request is done, every page's view shows the whole answer, and the last stage's page its
        // measured decode rate (the view re-fills only the parts whose state changed, and lays the timeline
        // out at most every 500 ms while tokens come: its last render must still come)
        for (const page of h.pages)
          await expect.poll(() => page.page.locator('#output-text').textContent(), { timeout: 10_000 }).toBe(run.text);
        const lastPage = h.page(plan.stages[plan.stages.length - 1].displayName);
        await expect
          .poll(() => lastPage.page.locator('#timeline-body').textContent(), { timeout: 10_000 })
          .toMatch(/\d+\.\d\d tok\/s/);
        // every page timed the request on the server's clock (its heartbeats' offset), so the ring's hops
        // read across pages: on the harness's copy of the timings and in the page's decode figures
        for (const s of plan.stages) expect(run.clocks?.[s.peerId], `${s.displayName}'s clock`).toBeLessThan(50);
        expect(plan.stages.length).toBeGreaterThan(1);
        await expect
          .poll(() => lastPage.page.locator('[data-figure="decode-hops"]').textContent(), { timeout: 10_000 })
          // a hop shorter than the clocks' bound may read below zero: the figure shows it as measured
          .toMatch(new RegExp(`${plan.stages[0].displayName} → ${plan.stages[1].displayName} -?\\d+\\.\\d`));
        // the chart is drawn in the page's timeline worker (its canvas handed over) and shows the measured
        // storage reads (solid bars; the predicted load is hatched): read back through the canvas on the page
        // (the worker draws after the figures change, and the page shows its frame after that: polled)
        expect(lastPage.page.workers().some((w) => w.url().includes('timeline-worker'))).toBe(true);
        await expect
          .poll(() => timelineChart(lastPage.page), { timeout: 10_000 })
          .toBe('in a worker: true; storage reads drawn: true');
        const first = h.page(plan.stages[0].displayName);
        await first.page.waitForTimeout(500);
        await h.screenshot(first, ARTIFACTS, `session-${backend}.png`);
        console.log(
          `${backend}: ${plan.stages.length} stages ${splitOf(plan)}; TTFT ${run.metrics.ttft?.toFixed(3)} s (predicted T ${plan.predictedLatency.toFixed(3)} s); tokens ${run.generatedTokenIds.join(' ')}`,
        );
      }, 300_000);

      if (backend === 'wasm') {
        it('a second request in the same session downloads no blob again', async () => {
          // Go again on the same plan (a new 'plan' would use the devices' calibrated parameters, and may
          // rightly move layers to a page that has not downloaded them).
          const plan = firstPlan!;
          const marks = h.pages.map((p) => p.now());
          const run = await h.go(plan, PROMPT, NEW_TOKENS);
          expect(run.generatedTokenIds).toEqual(transformersRef.generated);
          h.pages.forEach((p, i) => expect(p.downloadsSince(marks[i]), p.spec.name).toEqual([]));
          // every stage reported its decode steps in three parts (ingress, kernel, egress)
          const steps = stepFigures(plan.stages, new Map(Object.entries(run.timings)));
          expect(steps, 'decode step figures of every stage').not.toBeNull();
          const ms = (x: number) => x.toFixed(1);
          console.log(
            `wasm decode step (warm, medians): per token ${ms(steps!.perTokenMs)} ms = compute ${ms(steps!.computeMs)} + overhead ${ms(steps!.overheadMs)} + between stages ${ms(steps!.betweenMs)}; ` +
              steps!.rows
                .map((r) => `${r.label} in ${ms(r.ingressMs)} / kernel ${ms(r.kernelMs)} / out ${ms(r.egressMs)}`)
                .join('; '),
          );
        }, 300_000);

        it('a page reloaded mid-session rejoins with its cache (and draws its chart itself when its timeline worker cannot load)', async () => {
          // A page that holds units (the last plan's first stage).
          const holder = h.roster().find((p) => p.connected && p.cachedUnits.length > 0)!;
          expect(holder, 'a page with cached units').toBeDefined();
          const name = holder.displayName;
          const page = h.page(name);
          const before = holder.cachedUnits;
          const mark = page.now();
          // the reloaded page cannot load the timeline worker's script: its chart falls back to the main thread
          await page.page.route('**/timeline-worker*', (r) => r.abort());
          await page.reload();
          // Back in the roster, connected, profiled and reporting the units it already held.
          await h.waitRoster(
            (peers) =>
              peers.some(
                (p) =>
                  p.displayName === name &&
                  p.peerId !== holder.peerId &&
                  p.connected &&
                  p.profile !== null &&
                  before.every((u) => p.cachedUnits.includes(u)),
              ),
            `${name} to rejoin with its cache`,
          );
          const plan = await h.plan('dp', 16);
          await h.waitCached(plan);
          const run = await h.go(plan, PROMPT, NEW_TOKENS);
          expect(run.generatedTokenIds).toEqual(transformersRef.generated);
          const refetched = page
            .downloadsSince(mark)
            .filter((d) => model.manifest.units.some((u) => u.file === d.file && before.includes(u.id)));
          expect(refetched).toEqual([]);
          expect(page.consoleText()).toContain('The timeline worker failed');
          await expect
            .poll(() => timelineChart(page.page), { timeout: 10_000 })
            .toBe('in a worker: false; storage reads drawn: true');
        }, 300_000);

        it('a peer closing its tab before go: the host is told, go re-plans without it, the request completes', async () => {
          const [delta] = await h.openPeers([{ name: 'delta' }]);
          await h.waitProfiled(['delta']);
          const deltaId = h.peerId('delta');
          h.log(`tab-close: delta is ${deltaId}`);
          // The even plan gives every one of the 4 devices a layer, so delta is in it.
          const before = await h.plan('even', 16);
          expect(before.stages.map((s) => s.peerId)).toContain(deltaId);
          const mark = h.driver.log.length;
          await delta.close();
          h.log('tab-close: delta closed');
          // Closing the tab closes its WebSocket; the server drops it at once or after the heartbeat timeout (30 s here).
          const left = await h.driver.next('peer-left', (m) => m.peerId === deltaId, 120_000, mark);
          expect(['left', 'timed-out']).toContain(left.reason);
          h.log(`tab-close: peer-left (${left.reason})`);
          // Go on the plan delta was in re-plans by itself (same method) without delta, then runs.
          const replanMark = h.driver.log.length;
          const replannedRun = await h.go(before, PROMPT, NEW_TOKENS);
          const replanned = await h.driver.next('plan-ready', () => true, 1_000, replanMark);
          expect(replanned.planId).not.toBe(before.planId);
          expect(replanned.stages.map((s) => s.peerId)).not.toContain(deltaId);
          expect(replannedRun.generatedTokenIds).toEqual(transformersRef.generated);
          h.log('tab-close: the re-planned request finished');
          const plan = await h.plan('dp', 16);
          expect(plan.stages.map((s) => s.peerId)).not.toContain(deltaId);
          await h.waitCached(plan);
          const run = await h.go(plan, PROMPT, NEW_TOKENS);
          expect(run.generatedTokenIds).toEqual(transformersRef.generated);
          await h.screenshot(h.page(plan.stages[0].displayName), ARTIFACTS, 'session-after-replan.png');
        }, 300_000);
      }
    });
  }
});
