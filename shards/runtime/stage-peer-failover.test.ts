/**
 * Failover on StagePeers (issue 13) over the loopback transport, onnxruntime-web wasm in Node: the
 * middle stage of a 3-stage ring vanishes after token 3; its neighbours report the lost link, stop for
 * repair, and the repaired ring (the two kept stages re-linked, a new page for the lost layers) runs
 * the continuation (history = prompt + tokens so far, numbered from firstIndex). The tokens of both
 * attempts together equal the fp64 reference forward pass, greedy and uninterrupted; the kept stages
 * create no new session.
 */
import { describe, expect, it } from 'vitest';
import { ReferenceModel } from '../reference-forward.ts';
import { testPackage, type TestPackage } from '../stage-test-packages.ts';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import type { PipelineTransport } from '../../core/transport/transport.ts';
import { createNodeRuntime } from './ort-node.ts';
import { StagePeer, type PhaseEvent, type StageAssignment, type TokenEvent } from './stage-peer.ts';
import type { PromptTokenizer } from './prompt-tokenizer.ts';

const PROMPT_IDS = [11, 200, 37, 5, 380, 91, 64, 2];
const TOTAL = 8;
const LOSE_AFTER_INDEX = 2; // the middle stage goes away when the token with index 2 is out

const runtime = createNodeRuntime('wasm');

const tokenizer: PromptTokenizer = {
  hasChatTemplate: false,
  encode: () => [...PROMPT_IDS],
  decode: (ids) => ids.map((i) => `<${i}>`).join(''),
};

function ring(ids: [string, string, string], layers: [number, number][]): StageAssignment[] {
  return ids.map((id, i) => ({
    layers: { start: layers[i][0], end: layers[i][1] },
    embeds: i === 0,
    hasHead: i === 2,
    predecessorPeerId: i > 0 ? ids[i - 1] : null,
    successorPeerId: i < 2 ? ids[i + 1] : null,
    firstPeerId: ids[0],
    lastPeerId: ids[2],
  }));
}

interface Page {
  peer: StagePeer;
  transport: PipelineTransport;
  phases: PhaseEvent[];
  linksLost: string[];
}

function page(
  pkg: TestPackage,
  net: LoopbackNetwork,
  id: string,
  a: StageAssignment,
  tokens: TokenEvent[],
  hooks: { onToken?: (e: TokenEvent) => void; onLinkLost?: (peerId: string, requestId: number) => void } = {},
): Page {
  const transport = net.createTransport(id);
  const phases: PhaseEvent[] = [];
  const linksLost: string[] = [];
  const peer = new StagePeer({
    manifest: pkg.reader.manifest,
    assignment: a,
    transport,
    runtime,
    backend: 'wasm',
    readUnit: (unitId) => Promise.resolve(pkg.reader.readUnit(unitId)),
    tokenizer,
    maxPositions: 64,
    frameTimeoutMs: 30_000,
    stopTokens: [],
    onPhase: (e) => phases.push(e),
    onToken: (e) => {
      tokens.push(e);
      hooks.onToken?.(e);
    },
    onLinkLost: (peerId, requestId) => {
      linksLost.push(peerId);
      hooks.onLinkLost?.(peerId, requestId);
    },
  });
  return { peer, transport, phases, linksLost };
}

describe('StagePeer failover: stop for repair, relink, resume by replay', () => {
  it('a lost middle stage: neighbours report it, the repaired ring continues to the reference tokens', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, TOTAL);
    const net = new LoopbackNetwork();
    const tokens: TokenEvent[] = [];
    const [aA, aB, aC] = ring(
      ['pageA', 'pageB', 'pageC'],
      [
        [0, 1],
        [1, 3],
        [3, 4],
      ],
    );
    // The coordinator's answer to a link-lost report, as the pages would get it: stop request 7 for repair.
    const stopAll = () => {
      for (const p of [A, C]) p.peer.stopForRepair(7, 'pageB lost (link-lost)');
    };
    const A = page(pkg, net, 'pageA', aA, tokens, { onLinkLost: stopAll });
    const B = page(pkg, net, 'pageB', aB, tokens);
    const C = page(pkg, net, 'pageC', aC, tokens, {
      onToken: (e) => {
        if (e.index === LOSE_AFTER_INDEX) B.transport.close(); // pageB's tab closes
      },
      onLinkLost: stopAll,
    });
    const start = { requestId: 7, prompt: 'p', maxNewTokens: TOTAL, sampling: { temperature: 0 } };
    try {
      const first = await Promise.allSettled([A.peer.run(start), B.peer.run(start), C.peer.run(start)]);
      // The kept stages stop for repair (not an error); both saw the link to pageB go.
      for (const i of [0, 2]) expect(first[i]).toMatchObject({ status: 'rejected', reason: { code: 'stage-lost' } });
      expect(A.linksLost).toEqual(['pageB']);
      expect(C.linksLost).toEqual(['pageB']);
      const shown = tokens.map((t) => t.tokenId);
      expect(shown).toEqual(reference.slice(0, LOSE_AFTER_INDEX + 1));
      await B.peer.dispose();

      // The repair: pageD takes the lost layers; pageA and pageC keep theirs and re-link.
      const [rA, rD, rC] = ring(
        ['pageA', 'pageD', 'pageC'],
        [
          [0, 1],
          [1, 3],
          [3, 4],
        ],
      );
      expect(A.peer.sameStage(rA) && C.peer.sameStage(rC)).toBe(true);
      A.peer.relink(rA);
      C.peer.relink(rC);
      const D = page(pkg, net, 'pageD', rD, tokens);
      const sessionPhasesBefore = [A, C].map((p) => p.phases.filter((e) => e.phase === 'session-create').length);
      const firstIndex = shown.length;
      const resume = {
        requestId: 8,
        prompt: 'p',
        maxNewTokens: TOTAL - firstIndex,
        sampling: { temperature: 0 },
        promptTokenIds: [...PROMPT_IDS, ...shown],
        resume: { of: 7, firstIndex, attempt: 1 },
      };
      const second = await Promise.all([A.peer.run(resume), D.peer.run(resume), C.peer.run(resume)]);
      expect(second[2].tokens).toEqual(reference.slice(firstIndex));
      const all = tokens.map((t) => t.tokenId);
      expect(all).toEqual(reference);
      // Numbered on from the first attempt, no index twice; the text continues without repeating.
      expect(tokens.map((t) => t.index)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
      expect(tokens.map((t) => t.text).join('')).toBe(tokenizer.decode(reference));
      // The re-linked stages made no new session (no storage read, no session create for request 8).
      expect([A, C].map((p) => p.phases.filter((e) => e.phase === 'session-create').length)).toEqual(
        sessionPhasesBefore,
      );
      for (const p of [A, C])
        expect(p.phases.filter((e) => e.requestId === 8 && e.phase === 'storage-read')).toEqual([]);
      await D.peer.dispose();
    } finally {
      await Promise.all([A, C].map((p) => p.peer.dispose()));
      for (const p of [A, C]) p.transport.close();
    }
  }, 120_000);

  it('relink refuses a stage with other layers (that needs a new StagePeer and session)', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const net = new LoopbackNetwork();
    const [aA] = ring(
      ['pageA', 'pageB', 'pageC'],
      [
        [0, 1],
        [1, 3],
        [3, 4],
      ],
    );
    const A = page(pkg, net, 'pageA', aA, []);
    try {
      const other = { ...aA, layers: { start: 0, end: 2 } };
      expect(A.peer.sameStage(other)).toBe(false);
      expect(() => A.peer.relink(other)).toThrow(/new StagePeer/);
    } finally {
      await A.peer.dispose();
      A.transport.close();
    }
  });
});
