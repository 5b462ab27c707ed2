/**
 * The frame gate: the acceptance rules as a table against every frame kind and sender of a 4-stage ring,
 * and a real 3-stage StagePeer ring on the loopback transport that a non-member and misbehaving members
 * try to disturb (channels, forged hidden states, end and error frames, stale frames): the request
 * still gives the fp64 reference's tokens, and every intrusion is counted.
 */
import { describe, expect, it, vi } from 'vitest';
import { endFrame, errorFrame, hiddenFrame, type FrameKind } from '../../core/frame-codec.ts';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import { ReferenceModel } from '../reference-forward.ts';
import { testPackage } from '../stage-test-packages.ts';
import { FrameGate, maxFrameBytesFor, type GateAssignment } from './frame-gate.ts';
import { createNodeRuntime } from './ort-node.ts';
import { parseSplit } from './pipeline-runner.ts';
import { StagePeer, type StageAssignment } from './stage-peer.ts';

const RING = ['A', 'B', 'C', 'D'];

function assignmentOf(i: number, ids: string[] = RING): GateAssignment {
  return {
    embeds: i === 0,
    hasHead: i === ids.length - 1,
    predecessorPeerId: i > 0 ? ids[i - 1] : null,
    successorPeerId: i < ids.length - 1 ? ids[i + 1] : null,
    firstPeerId: ids[0],
    lastPeerId: ids[ids.length - 1],
  };
}

describe('FrameGate rules', () => {
  it('admits each kind only from the stage it comes from, and channels only from ring neighbours', () => {
    // Independent statement of the ring: who sends what to whom.
    const expected = (i: number, kind: FrameKind, from: string): boolean => {
      const n = RING.length;
      const ringPrev = RING[(i - 1 + n) % n];
      if (kind === 'hidden') return i > 0 && from === RING[i - 1];
      if (kind === 'token') return i === 0 && from === RING[n - 1];
      return from === ringPrev; // end, error
    };
    for (let i = 0; i < RING.length; i++) {
      const gate = new FrameGate(assignmentOf(i), RING[i]);
      let refused = 0;
      for (const from of [...RING, 'M']) {
        for (const kind of ['hidden', 'token', 'end', 'error'] as const) {
          const want = from !== RING[i] && expected(i, kind, from);
          expect({ stage: i, kind, from, ok: gate.admitFrame(kind, 1, from) }).toEqual({
            stage: i,
            kind,
            from,
            ok: want,
          });
          if (!want) refused += 1;
        }
        const n = RING.length;
        const neighbour =
          from === RING[i - 1] ||
          from === RING[i + 1] ||
          (i === 0 && from === RING[n - 1]) ||
          (i === n - 1 && from === RING[0]);
        expect({ stage: i, from, channel: gate.admitChannel(from) }).toEqual({
          stage: i,
          from,
          channel: neighbour && from !== RING[i],
        });
      }
      expect(gate.dropped['wrong-sender']).toBe(refused);
    }
  });

  it('admits the request in flight and newer ones (early frames), not finished or older ones', () => {
    const gate = new FrameGate(assignmentOf(1), 'B');
    expect(gate.admitFrame('hidden', 3, 'A')).toBe(true); // nothing started yet: an early frame
    gate.begin(3);
    expect(gate.admitFrame('hidden', 3, 'A')).toBe(true);
    expect(gate.admitFrame('hidden', 4, 'A')).toBe(true); // the next request, early
    expect(gate.admitFrame('hidden', 2, 'A')).toBe(false);
    gate.end(3);
    expect(gate.admitFrame('hidden', 3, 'A')).toBe(false); // finished: stale
    expect(gate.admitFrame('end', 3, 'A')).toBe(false);
    expect(gate.admitFrame('hidden', 4, 'A')).toBe(true);
    expect(gate.dropped).toEqual({ 'channel-not-neighbour': 0, 'wrong-sender': 0, 'stale-request': 3 });
  });

  it('a single stage holding everything admits no frame and no channel', () => {
    const gate = new FrameGate(assignmentOf(0, ['S']), 'S');
    for (const kind of ['hidden', 'token', 'end', 'error'] as const) expect(gate.admitFrame(kind, 1, 'S')).toBe(false);
    expect(gate.admitChannel('X')).toBe(false);
  });

  it('bounds frames by the hidden states the model can send', () => {
    expect(maxFrameBytesFor(1024, 4096)).toBe(16 * 2 ** 20);
    expect(maxFrameBytesFor(64, 64)).toBe(64 * 1024); // the floor for token, end and error frames
  });
});

describe('a StagePeer ring under intrusion (loopback, onnxruntime-web wasm in Node)', () => {
  it('ignores channels and frames from anyone but the ring neighbours that send them', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const manifest = pkg.reader.manifest;
    const prompt = [11, 200, 37, 5];
    const reference = new ReferenceModel(manifest, (u) => pkg.unitBytes(u)).greedy(prompt, 4);
    const runtime = createNodeRuntime('wasm');
    const ids = ['stageA', 'stageB', 'stageC'];
    const net = new LoopbackNetwork();
    const transports = ids.map((id) => net.createTransport(id));
    const mallory = net.createTransport('mallory');
    const ranges = parseSplit('1,2-3,4', manifest.config.num_hidden_layers);
    const peers = ranges.map((layers, i) => {
      const assignment: StageAssignment = { layers, ...assignmentOf(i, ids) };
      return new StagePeer({
        manifest,
        assignment,
        transport: transports[i],
        runtime,
        backend: 'wasm',
        readUnit: (u) => pkg.reader.readUnit(u),
        tokenizer: { hasChatTemplate: false, encode: () => [...prompt], decode: (t) => t.join(' ') },
        maxPositions: 64,
        frameTimeoutMs: 30_000,
        stopTokens: [],
      });
    });
    try {
      // A stranger's data channel is held, never read into a stage (a plan might yet make it a neighbour),
      // and closed once it keeps sending.
      for (const target of ids) await mallory.send(target, hiddenFrame(1, 0, new Float32Array(64), [1, 1, 64]));
      expect(peers.map((p) => p.gate.dropped['channel-not-neighbour'])).toEqual([1, 1, 1]);
      const closedOnMallory: string[] = [];
      mallory.onEvent((e) => e.type === 'close' && closedOnMallory.push(e.peerId));
      for (let step = 1; step <= 8; step++)
        await mallory.send('stageA', hiddenFrame(1, step, new Float32Array(64), [1, 1, 64]));
      await vi.waitFor(() => expect(closedOnMallory).toEqual(['stageA']));

      // Members in the wrong role, before the request starts (all for request 1):
      const [a, , c] = transports;
      await c.send('stageB', endFrame(1, 0, 'eos')); // the last stage may not stop the middle one (its ring predecessor is A)
      await c.send('stageB', errorFrame(1, 0, 'forged', 'stop', 'stageC'));
      await a.send('stageC', hiddenFrame(1, 0, new Float32Array(4 * 64), [1, 4, 64])); // hidden states for C come from B only
      await c.send('stageA', hiddenFrame(1, 0, new Float32Array(4 * 64), [1, 4, 64])); // the first stage takes tokens, not hidden states
      await vi.waitFor(() => expect(peers.map((p) => p.gate.dropped['wrong-sender'])).toEqual([1, 2, 1]));

      const start = { requestId: 1, prompt: 'p', maxNewTokens: 4, sampling: { temperature: 0 } };
      const results = await Promise.all(peers.map((p) => p.run(start)));
      expect(results[2].tokens).toEqual(reference);

      // A late frame of the finished request, from the right sender, is stale.
      await a.send('stageB', hiddenFrame(1, 0, new Float32Array(64), [1, 1, 64]));
      await vi.waitFor(() => expect(peers[1].gate.dropped['stale-request']).toBe(1));
      // and the next request still runs
      const again = await Promise.all(peers.map((p) => p.run({ ...start, requestId: 2 })));
      expect(again[2].tokens).toEqual(reference);
    } finally {
      await Promise.all(peers.map((p) => p.dispose()));
      for (const t of [...transports, mallory]) t.close();
    }
  });
});
