/**
 * Spares in the coordinator, driven directly: a plan chooses the idle page that keeps a warm copy of the
 * stage whose loss would cost most (checked against failover.ts's own repair of each loss), tells it
 * with `spare` while no request runs, and once that page reports the units a loss of that stage is
 * repaired onto it faster than the same scenario with spares off (--no-spares).
 */
import { describe, expect, it } from 'vitest';
import { unitsForStage, type PredictedStage, type ProfileReport, type ServerMessageOf } from '../core/protocol.ts';
import type { Effect } from './coordinator.ts';
import { planFailover, type RemainingPage } from './failover.ts';
import { planInline } from './planner-pool.ts';
import { MAX_SPARE_SESSION_PAGES, SPARE_REPAIR_BUDGET, spareRepairBudget, sparesFor } from './spares.ts';
import {
  charTokenIds as tokenize,
  finalTokens,
  GREEDY,
  HOST_CONN as HOST,
  hostedSession,
  onlyMessage as only,
  planEffect,
  sampleProfile,
  sentTo as sent,
  testCoordinator,
  wideFp32Manifest,
} from './test-support.ts';

/** ~50 MB a layer, ~130 MB embedding and head: downloads dominate a repair. */
const manifest = wideFp32Manifest('spares-test');
const PROMPT = 'hello';
/** Tokens generated before the loss below; plans are made for the history length at that point. */
const BEFORE_LOSS = 3;
const TOKENS = PROMPT.length + BEFORE_LOSS;
/** Three pages the dp plan uses, and a slower one (a third to a tenth of their compute) it leaves idle. */
const PROFILES: ProfileReport[] = [
  sampleProfile(1),
  sampleProfile(2),
  sampleProfile(3),
  sampleProfile(4, { peakFlops: 8e10 }),
];

const spares = (effects: Effect[]) =>
  effects.flatMap((e) => (e.kind === 'send' && e.message.type === 'spare' ? [{ to: e.to, message: e.message }] : []));

/** A hosted session of PROFILES, planned (dp, TOKENS); the planner's effects are returned as they came. */
async function planned(withSpares: boolean) {
  const c = testCoordinator(manifest, {}, { promptTokenIds: tokenize, spares: withSpares });
  const s = hostedSession(c, PROFILES);
  const effect = planEffect(c.handle(HOST, { type: 'plan', ...s.auth, tokens: TOKENS }, 0));
  const effects = c.planFinished(effect.token, await planInline(effect.request), 0);
  const ready = only(effects, HOST, 'plan-ready');
  const conn = (peerId: string) => s.connOf.get(peerId)!;
  return { c, ...s, conn, request: effect.request, effects, ready };
}

/** The pages as the failover sees them once every stage holds its units and `extra` holds more. */
function pagesAfterLoading(
  peerIds: readonly string[],
  stages: readonly PredictedStage[],
  extra: ReadonlyMap<string, readonly string[]> = new Map(),
): RemainingPage[] {
  return peerIds.map((peerId, i) => {
    const st = stages.find((x) => x.peerId === peerId);
    return {
      peerId,
      displayName: `p${i}`,
      profile: PROFILES[i],
      cachedUnits: [...(st ? unitsForStage(st.layers, st.embeds, st.hasHead) : []), ...(extra.get(peerId) ?? [])],
    };
  });
}

/** The failover's predicted resume after losing `lost` at TOKENS tokens of history. */
function repairAfterLosing(lost: PredictedStage, pages: RemainingPage[], stages: readonly PredictedStage[]): number {
  const plan = planFailover({
    manifest,
    memoryModel: 'max',
    pages: pages.filter((p) => p.peerId !== lost.peerId),
    stages,
    lostPeerIds: new Set([lost.peerId]),
    replayTokens: TOKENS,
  });
  if (!plan.ok) throw new Error(plan.message);
  return plan.resumeSec;
}

describe('spares', () => {
  it('a plan tells the idle page to keep a warm copy of the stage whose loss would cost most', async () => {
    const s = await planned(true);
    expect(s.request.spares).toBe(true);
    expect(s.request.candidates.map((c) => c.cachedUnits)).toEqual(PROFILES.map(() => []));
    const stages = s.ready.stages;
    expect(s.ready.excludedPeerIds).toEqual([s.peerIds[3]]);
    const idle = s.peerIds[3];

    // Each loss as the failover would repair it, without any spare, and with the idle page holding a copy
    // of stage c: the best copy lowers the worst loss most (then the next worst), and here that is the
    // copy of the costliest stage.
    const losses = (copy: PredictedStage | null) => {
      const units = copy ? unitsForStage(copy.layers, copy.embeds, copy.hasHead) : [];
      const pages = pagesAfterLoading(s.peerIds, stages, new Map([[idle, units]]));
      return stages.map((st) => repairAfterLosing(st, pages, stages)).sort((a, b) => b - a);
    };
    const leximaxLess = (a: number[], b: number[]) => {
      const i = a.findIndex((x, j) => Math.abs(x - b[j]) > 1e-9 * b[j]);
      return i >= 0 && a[i] < b[i];
    };
    const without = stages.map((st) => repairAfterLosing(st, pagesAfterLoading(s.peerIds, stages), stages));
    const costliest = without.indexOf(Math.max(...without));
    let best: number | null = null;
    for (let c = 0; c < stages.length; c++)
      if (leximaxLess(losses(stages[c]), best === null ? losses(null) : losses(stages[best]))) best = c;
    expect(best).toBe(costliest);

    const [spare, ...more] = spares(s.effects);
    expect(more).toEqual([]);
    expect(spare.to).toBe(s.conn(idle));
    const st = stages[costliest];
    expect(spare.message).toMatchObject({
      type: 'spare',
      planId: s.ready.planId,
      stageIndex: costliest,
      layers: st.layers,
      units: unitsForStage(st.layers, st.embeds, st.hasHead),
    });
    expect(spare.message.withoutSparesSec).toBeCloseTo(without[costliest], 9);
    // with the copy, that loss is what the failover predicts when the idle page holds those units
    const withCopy = pagesAfterLoading(s.peerIds, stages, new Map([[idle, spare.message.units]]));
    expect(spare.message.predictedResumeSec).toBeCloseTo(repairAfterLosing(st, withCopy, stages), 9);
    expect(spare.message.predictedResumeSec).toBeLessThan(spare.message.withoutSparesSec);
    // after the page's excluded for the same plan; then the roster marks the spare for everyone
    expect(sent(s.effects, s.conn(idle)).map((m) => m.type)).toEqual([
      'plan-ready',
      'excluded',
      'roster',
      'spare',
      'roster',
    ]);
    const roster = sent(s.effects, HOST).filter((m) => m.type === 'roster');
    expect(roster[0].peers.find((p) => p.peerId === idle)?.spare).toBeUndefined();
    expect(roster.at(-1)!.peers.find((p) => p.peerId === idle)?.spare).toEqual({
      stageIndex: costliest,
      layers: st.layers,
    });
    expect(roster.at(-1)!.peers.filter((p) => p.spare !== undefined)).toHaveLength(1);
  });

  it('with spares off (--no-spares) no page is told anything new', async () => {
    const s = await planned(false);
    expect(s.request.spares).toBe(false);
    expect(spares(s.effects)).toEqual([]);
    expect(only(s.effects, s.conn(s.peerIds[3]), 'excluded').planId).toBe(s.ready.planId);
  });

  it('after the spare reports its units, losing that stage is repaired onto it, faster than with spares off', async () => {
    const resume = new Map<boolean, ServerMessageOf<'repair'>>();
    let spare: ServerMessageOf<'spare'> | null = null;
    for (const withSpares of [true, false]) {
      const s = await planned(withSpares);
      // every stage loads its units; the spare (when there is one) downloads its copy
      for (const st of s.ready.stages)
        s.c.handle(
          s.conn(st.peerId),
          { type: 'cache-status', units: unitsForStage(st.layers, st.embeds, st.hasHead) },
          1,
        );
      const offered = spares(s.effects)[0]?.message ?? null;
      if (withSpares) {
        spare = offered;
        expect(spare).not.toBeNull();
        s.c.handle(s.conn(s.peerIds[3]), { type: 'cache-status', units: spare.units }, 1);
      } else expect(offered).toBeNull();
      const go = s.c.handle(HOST, { type: 'go', ...s.auth, prompt: PROMPT, maxNewTokens: 10, sampling: GREEDY }, 2);
      const start = only(go, HOST, 'start');
      const stages = s.ready.stages;
      const last = stages[stages.length - 1];
      s.c.handle(
        s.conn(last.peerId),
        {
          type: 'report-tokens',
          requestId: start.requestId,
          tokenIds: [101, 102, 103],
          text: 'abc',
          generated: BEFORE_LOSS,
          done: false,
        },
        10,
      );
      // the stage the spare covers is lost (the same stage index in both runs: the same pages, the same plan)
      const lost = stages[spare!.stageIndex];
      const effects = s.c.disconnect(s.conn(lost.peerId), 100);
      const repair = only(effects, HOST, 'repair');
      expect(repair.replayTokens).toBe(TOKENS);
      if (withSpares) expect(repair.stages.map((x) => x.peerId)).toContain(s.peerIds[3]);
      resume.set(withSpares, repair);
    }
    const on = resume.get(true)!.predictedResumeSec;
    const off = resume.get(false)!.predictedResumeSec;
    // what the spare message predicted, both ways (the same history length, the same pages)
    expect(on).toBeCloseTo(spare!.predictedResumeSec, 9);
    expect(off).toBeCloseTo(spare!.withoutSparesSec, 9);
    expect(on).toBeLessThan(off);
  });

  it('spares go out only while no request runs: a plan made for a waiting go offers them when that request ends', async () => {
    const c = testCoordinator(manifest, {}, { promptTokenIds: tokenize });
    const s = hostedSession(c, PROFILES.slice(0, 3));
    const first = planEffect(c.handle(HOST, { type: 'plan', ...s.auth, tokens: TOKENS }, 0));
    const firstDone = c.planFinished(first.token, await planInline(first.request), 0);
    expect(only(firstDone, HOST, 'plan-ready').excludedPeerIds).toEqual([]); // every page has a stage: no spare
    expect(spares(firstDone)).toEqual([]);
    // the slow page joins: the go re-plans, and the plan starts the request at once
    c.connect(9, 'slow');
    c.handle(9, { type: 'join', code: s.auth.code, displayName: 'slow' }, 10);
    c.handle(9, { type: 'profile', profile: PROFILES[3] }, 10);
    const go = c.handle(HOST, { type: 'go', ...s.auth, prompt: PROMPT, maxNewTokens: 2, sampling: GREEDY }, 20);
    const replan = planEffect(go);
    const done = c.planFinished(replan.token, await planInline(replan.request), 30);
    const ready = only(done, HOST, 'plan-ready');
    expect(ready.excludedPeerIds).toHaveLength(1);
    const start = only(done, HOST, 'start');
    expect(spares(done)).toEqual([]);
    // the request ends: now the idle page is told
    const last = ready.stages[ready.stages.length - 1];
    const lastConn = last.peerId === ready.excludedPeerIds[0] ? 9 : s.connOf.get(last.peerId)!;
    const ended = c.handle(lastConn, finalTokens(start.requestId, [1, 2], 'ab'), 40);
    const offered = spares(ended);
    expect(offered).toHaveLength(1);
    expect(offered[0].message.planId).toBe(ready.planId);
    const idleConn = s.connOf.get(ready.excludedPeerIds[0]) ?? 9;
    expect(offered[0].to).toBe(idleConn);
    // once: the next request's end offers nothing again
    const again = c.handle(HOST, { type: 'go', ...s.auth, prompt: PROMPT, maxNewTokens: 1, sampling: GREEDY }, 50);
    const second = only(again, HOST, 'start');
    const end2 = c.handle(lastConn, finalTokens(second.requestId, [3], 'c'), 60);
    expect(spares(end2)).toEqual([]);
  });

  it('large sessions: fewer repair evaluations as the repair DP grows, none beyond the page limit', () => {
    const budgets = [4, 6, 8, 10, 12].map((k) => spareRepairBudget(k, 24));
    expect(budgets[0]).toBe(SPARE_REPAIR_BUDGET);
    for (let i = 1; i < budgets.length; i++) expect(budgets[i]).toBeLessThanOrEqual(budgets[i - 1]);
    expect(budgets.at(-1)).toBeLessThan(SPARE_REPAIR_BUDGET);
    const pages = MAX_SPARE_SESSION_PAGES + 1;
    const candidates = Array.from({ length: pages }, (_, i) => ({
      peerId: `p${i}`,
      displayName: `p${i}`,
      profile: sampleProfile(i + 1),
    }));
    const stage = { candidate: 0, layers: { start: 0, end: 8 }, ...{ load: 0, wait: 0, comm: 0, compute: 0 } };
    const request = { manifest, candidates, tokens: TOKENS, method: 'dp' as const, memoryModel: 'max' as const };
    expect(sparesFor(request, [{ ...stage, startTime: 0, finishTime: 1 }])).toEqual([]);
  });
});
