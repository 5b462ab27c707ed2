/**
 * Failover in real headless Chromium (issue 13): one session of 4 lab devices (each page its own
 * Chromium, network namespace and CPU share; e2e/lab.ts), the tiny model, 16 greedy tokens. During a
 * request a page is taken away once the host has seen 5 tokens:
 *   (a) the tab of a middle stage closes, (b) the first stage's, (c) the last stage's,
 *   (d) two tabs close one after the other (the second during the continuation),
 *   (e) a middle stage's device loses its network (link down: only its silence tells).
 * Each request must end with the 16 token ids of `npm run generate` on one stage (e2e/reference.ts),
 * with a stage-lost naming the page taken away, a repair, a continuation start (resume.of = the request,
 * firstIndex = tokens so far), a `recoveredInMs` on the first output after the recovery, and no error
 * reported by any page. Pages that keep their layers re-link: their continuation makes no new session
 * and they download nothing. After each case the emptied devices get a fresh page (mid-session joins).
 * Assertions are on events and tokens, never durations.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessageOf } from '../core/protocol.ts';
import { prepareE2e, skipBanner } from './environment.ts';
import { FailoverSession, type FailoverRun, type Loss } from './failover-scenario.ts';
import { labSupport } from './lab.ts';
import { ensureModelFixture, type ModelFixture } from './model-fixture.ts';
import { nodeRunnerTokens, type ReferenceTokens } from './reference.ts';

/**
 * Opt-in: every loss now lands mid-request by construction (the pages hold after the loss's token
 * count, ?hold=), but cases (a) and (d) still fail in the lab (a page that never ran a stage is not
 * ready within the recovery timeout; see docs/failover.md, "Status"), and the file takes ~16 min.
 */
const optedIn = process.env.TANDEM_E2E_FAILOVER === '1';
const ready = optedIn ? prepareE2e() : ({ ok: false, reason: 'set TANDEM_E2E_FAILOVER=1 to run them' } as const);
const lab = labSupport();
if (!ready.ok) console.warn(skipBanner('failover e2e tests', ready.reason));
else if (!lab.ok) console.warn(skipBanner('failover e2e tests', lab.reason));

const ARTIFACTS = resolve('e2e/artifacts');
const PROMPT = 'Name three colours of the rainbow.';
const NEW_TOKENS = 16;
const AT = 5;
/**
 * 5 devices, 4 layers: 4 stages and a spare. (a) 5 -> 4 pages, (b) 4 -> 3, (c) 3 -> 2; then the emptied
 * devices get fresh pages (joins mid-session); (d) 5 -> 3, (e) 3 -> 2.
 */
const DEVICES = 5;

let model: ModelFixture;
let reference: ReferenceTokens;
let f: FailoverSession;

/** What every recovered request must show. */
function expectRecovered(run: FailoverRun, plan: ServerMessageOf<'plan-ready'>): void {
  // the losses landed mid-request (a late one would make the case prove nothing)
  expect(run.lossesInFlight, 'every loss was injected before the request ended').toBe(true);
  expect(run.peerErrors, 'no page reported an error').toEqual([]);
  expect(run.failed).toEqual([]);
  expect(run.finishReason).toBe('max-tokens');
  expect(run.tokenIds).toEqual(reference.generated);
  // one stage-lost per page taken away, naming it, for the user's request id
  for (const t of run.taken) {
    const lost = run.lost.find((l) => l.lostPeerIds.includes(t.peerId));
    expect(lost, `a stage-lost for ${t.name}`).toBeDefined();
    expect(lost!.requestId).toBe(run.requestId);
    expect(t.how === 'cut' ? ['heartbeat', 'link-lost'] : ['left', 'link-lost', 'heartbeat']).toContain(lost!.reason);
  }
  // a loss nobody caused (a lab device starved by a loaded host missed its pongs for lossTimeoutMs) is
  // repaired like any other; it must not change the tokens, and it is said
  const caused = new Set(run.taken.map((t) => t.peerId));
  for (const l of run.lost.filter((l) => !l.lostPeerIds.some((id) => caused.has(id))))
    console.warn(`failover: a loss the test did not cause: ${l.lostPeerIds.join(', ')} (${l.reason})`);
  // a repair and a continuation per loss; continuations resume where the tokens stood, never repeat
  expect(run.repairs.length).toBe(run.lost.length);
  expect(run.resumes.length).toBe(run.lost.length);
  run.resumes.forEach((s, i) => {
    expect(s.resume).toMatchObject({ of: run.requestId, attempt: i + 1 });
    expect(s.requestId).not.toBe(run.requestId);
    const firstIndex = s.resume!.firstIndex;
    expect(s.maxNewTokens).toBe(NEW_TOKENS - firstIndex);
    expect(s.promptTokenIds?.slice(-firstIndex)).toEqual(reference.generated.slice(0, firstIndex));
    // no repaired pipeline contains a page lost before it
    const gone = run.lost.slice(0, i + 1).flatMap((l) => l.lostPeerIds);
    for (const st of run.repairs[i].stages) expect(gone).not.toContain(st.peerId);
  });
  // the continuation after a page taken away resumes exactly at the token count its pages held at
  for (const t of run.taken) {
    const i = run.lost.findIndex((l) => l.lostPeerIds.includes(t.peerId));
    expect(run.resumes[i].resume!.firstIndex, `the continuation after ${t.name}`).toBe(t.atGenerated);
  }
  // "recovered in": on the first output after a recovery (two losses before one token share one)
  expect(run.recoveredInMs.length).toBeGreaterThanOrEqual(1);
  expect(run.recoveredInMs.length).toBeLessThanOrEqual(run.lost.length);
  // a page that kept its stage re-linked: no storage read or session create in its continuation
  const last = run.resumes.at(-1);
  const lastRepair = run.repairs.at(-1);
  if (last && lastRepair) {
    const before = run.repairs.length > 1 ? run.repairs[run.repairs.length - 2].stages : plan.stages;
    const kept = lastRepair.stages.filter((st) =>
      before.some(
        (b) =>
          b.peerId === st.peerId &&
          b.layers.start === st.layers.start &&
          b.layers.end === st.layers.end &&
          b.embeds === st.embeds &&
          b.hasHead === st.hasHead,
      ),
    );
    const timings = run.timings.get(last.requestId);
    for (const st of kept) {
      const phases = (timings?.get(st.peerId) ?? []).map((t) => t.phase);
      expect(phases, `${st.displayName} re-linked without a new session`).not.toContain('session-create');
      expect(phases).not.toContain('storage-read');
    }
  }
}

describe.skipIf(!ready.ok || !lab.ok)('failover in headless Chromium lab devices (tiny model)', () => {
  beforeAll(async () => {
    if (!ready.ok) return;
    model = await ensureModelFixture({ preset: 'tiny' });
    reference = await nodeRunnerTokens({ packageDir: model.packageDir, prompt: PROMPT, maxNewTokens: NEW_TOKENS });
    const t0 = Date.now();
    const log = (line: string) => console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s ${line}`);
    f = await FailoverSession.start({ chromium: ready.chromium.path, model, devices: DEVICES, log });
  }, 900_000);

  afterAll(async () => {
    await (f as FailoverSession | undefined)?.stop(); // unset when beforeAll failed
  });

  const cases: [string, Loss[]][] = [
    ['(a) the tab of a middle stage closes at token 5', [{ atGenerated: AT, stage: 'middle', how: 'close' }]],
    ['(b) the tab of the first stage closes at token 5', [{ atGenerated: AT, stage: 'first', how: 'close' }]],
    ['(c) the tab of the last stage closes at token 5', [{ atGenerated: AT, stage: 'last', how: 'close' }]],
    [
      '(d) two tabs close one after the other (the second during the continuation)',
      [
        { atGenerated: AT, stage: 'middle', how: 'close' },
        { atGenerated: AT + 4, stage: 'first', how: 'close' },
      ],
    ],
    ["(e) a middle stage's device loses its network at token 5", [{ atGenerated: AT, stage: 'middle', how: 'cut' }]],
  ];

  for (const [name, losses] of cases) {
    it(`${name}: the request completes with the one-stage reference tokens`, async () => {
      if (f.livePages().length < 3) await f.refill();
      const plan = await f.planAll();
      const marks = new Map(f.livePages().map(({ name: n, page }) => [n, { page, at: page.now() }]));
      const run = await f.run(plan, PROMPT, NEW_TOKENS, losses);
      expectRecovered(run, plan);
      // pages that held their units before did not fetch them again
      const lastStages = run.repairs.at(-1)?.stages ?? [];
      for (const st of lastStages) {
        const m = marks.get(st.displayName);
        const before = plan.stages.find((p) => p.peerId === st.peerId);
        if (!m || !before) continue;
        const had = new Set(
          [
            before.embeds ? 'embed' : null,
            ...Array.from(
              { length: before.layers.end - before.layers.start },
              (_, i) => `layer.${before.layers.start + i}`,
            ),
            before.hasHead ? 'head' : null,
          ].filter((u): u is string => u !== null),
        );
        const files = new Set(model.manifest.units.filter((u) => had.has(u.id)).map((u) => u.file));
        expect(
          m.page.downloadsSince(m.at).filter((d) => files.has(d.file)),
          `${st.displayName} fetched none of its cached units again`,
        ).toEqual([]);
      }
      if (name.startsWith('(a)')) {
        const host = f.livePages()[0];
        await host.page.page.waitForTimeout(300);
        await f.h.screenshot(host.page, ARTIFACTS, 'failover-recovered.png');
        const shown = await host.page.state<{ failover: { requests: { recoveredInMs: number | null }[] } }>();
        expect(shown?.failover.requests.some((r) => r.recoveredInMs !== null)).toBe(true);
        expect(await host.page.page.locator('#recovery-summary').textContent()).toMatch(/^Recovered in \d+\.\d s/);
      }
      await f.closeCut();
    }, 600_000);
  }
});
