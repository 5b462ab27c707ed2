/**
 * Each step's time on each stage of a real ring, cut in 'ingress', 'kernel' and 'egress' (issue 11,
 * item 5): three stages on the loopback transport (one clock), the middle one's runtime behind the page's
 * inference-worker protocol over a MessageChannel, the others in-process (onnxruntime-web wasm). The parts
 * must be there once per step, contiguous, the kernel inside the stage's own compute span, the egress
 * ending when the step's frame was handed to the link and the ingress starting when its input arrived;
 * and each decode token's cycle must be its stages' compute + overhead + the wire of its hops, none
 * negative. The ring still gives the fp64 reference's greedy tokens, and the token texts join up.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { stepBreakdown } from '../../core/step-breakdown.ts';
import type { Frame } from '../../core/frame-codec.ts';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import type { PipelineTransport } from '../../core/transport/transport.ts';
import { serveInference } from '../../client/runtime/inference-worker-host.ts';
import { createOrtWebRuntime } from '../../client/runtime/ort-web.ts';
import { createWorkerRuntime } from '../../client/runtime/worker-runtime.ts';
import { ReferenceModel } from '../reference-forward.ts';
import { testPackage } from '../stage-test-packages.ts';
import { createNodeRuntime } from './ort-node.ts';
import { parseSplit } from './pipeline-runner.ts';
import { ringAssignments, StagePeer, type PhaseEvent, type StagePeerOptions, type TokenEvent } from './stage-peer.ts';

const PROMPT_IDS = [11, 200, 37, 5, 380, 91, 64, 2];
const NEW_TOKENS = 6;

const channel = new MessageChannel();
const ort = await import('onnxruntime-web');
serveInference(channel.port2, ({ numThreads }) => createOrtWebRuntime({ ort, numThreads }));
const workerRuntime = createWorkerRuntime(channel.port1, { wasmUrl: null, numThreads: 1 });
channel.port1.start();
channel.port2.start();
afterAll(() => channel.port1.close());

const one = (phases: PhaseEvent[], phase: PhaseEvent['phase'], step: number): PhaseEvent => {
  const found = phases.filter((p) => p.phase === phase && p.step === step);
  expect(found, `${phase} of step ${step}`).toHaveLength(1);
  return found[0];
};

type TestPackage = Awaited<ReturnType<typeof testPackage>>;

/**
 * The StagePeers of a ring over `split` (one per id) on `net`, each on Node's onnxruntime-web wasm, with
 * `per(i)`'s options on top (another transport or runtime, listeners).
 */
function ringPeers(
  pkg: TestPackage,
  split: string,
  ids: string[],
  net: LoopbackNetwork,
  per: (i: number) => Partial<StagePeerOptions> = () => ({}),
): StagePeer[] {
  const manifest = pkg.reader.manifest;
  const runtime = createNodeRuntime('wasm');
  return ringAssignments(parseSplit(split, manifest.config.num_hidden_layers), ids).map((assignment, i) => {
    const own = per(i);
    return new StagePeer({
      manifest,
      assignment,
      runtime,
      backend: 'wasm',
      readUnit: async (unitId) => (await pkg.reader.readUnit(unitId)).slice(),
      tokenizer: { hasChatTemplate: false, encode: () => [...PROMPT_IDS], decode: (t) => t.join(' ') },
      maxPositions: 64,
      stopTokens: [],
      ...own,
      // one transport per id on the network: the stage's own where `per` gives one
      transport: own.transport ?? net.createTransport(ids[i]),
    });
  });
}

describe('a step in three parts on every stage of a ring', () => {
  it('ingress, kernel, egress: present, contiguous, placed where the step begins and ends; tokens accounted exactly', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const manifest = pkg.reader.manifest;
    const reference = new ReferenceModel(manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, NEW_TOKENS);
    const ids = ['A', 'B', 'C'];
    const net = new LoopbackNetwork();
    const tokens: TokenEvent[] = [];
    const peers = ringPeers(pkg, '1,2-3,4', ids, net, (i) => ({
      ...(i === 1 ? { runtime: workerRuntime } : {}),
      tokenizer: {
        hasChatTemplate: false,
        encode: () => [...PROMPT_IDS],
        decode: (t) => t.map((x) => `<${x}>`).join(''),
      },
      onToken: (e) => tokens.push(e),
    }));
    try {
      const results = await Promise.all(
        peers.map((p) => p.run({ requestId: 1, prompt: 'p', maxNewTokens: NEW_TOKENS, sampling: { temperature: 0 } })),
      );
      expect(results[2].tokens).toEqual(reference);
      expect(tokens.map((t) => t.index)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(tokens.map((t) => t.text).join('')).toBe(reference.map((x) => `<${x}>`).join(''));

      results.forEach((r, stage) => {
        const steps = r.phases.filter((p) => p.phase === 'compute').map((p) => p.step);
        expect(steps).toEqual([0, 1, 2, 3, 4, 5]);
        for (const step of steps) {
          const [ingress, kernel, egress] = (['ingress', 'kernel', 'egress'] as const).map((ph) =>
            one(r.phases, ph, step),
          );
          const compute = one(r.phases, 'compute', step);
          expect(ingress.endMs).toBe(kernel.startMs);
          expect(kernel.endMs).toBe(egress.startMs);
          for (const part of [ingress, kernel, egress]) expect(part.endMs).toBeGreaterThanOrEqual(part.startMs);
          expect(kernel.startMs).toBeGreaterThanOrEqual(compute.startMs);
          expect(kernel.endMs).toBeLessThanOrEqual(compute.endMs);
          // the worker's compute began after the run was posted and ended before its reply arrived
          if (stage === 1) expect(kernel.startMs).toBeGreaterThan(compute.startMs);
          // the step ends when its frame went to the link: hidden states, the token, or the end
          expect(egress.endMs).toBe(one(r.phases, 'send', step).endMs);
          // it begins when its input arrived (all but the first stage's prompt come as frames)
          if (stage > 0 || step > 0) expect(ingress.startMs).toBe(one(r.phases, 'receive', step).endMs);
        }
      });

      const b = stepBreakdown(results.map((r) => ({ timings: r.phases, offsetMs: r.originMs })));
      expect(b.tokens.map((t) => t.step)).toEqual([1, 2, 3, 4]); // a token's cycle ends at the next input
      for (const t of b.tokens) {
        expect(t.computeMs + t.overheadMs + t.wireMs).toBeCloseTo(t.cycleMs, 6);
        expect(t.hopWireMs).toHaveLength(3);
        for (const w of t.hopWireMs) expect(w).toBeGreaterThanOrEqual(0); // received after sent, on one clock
        expect(t.computeMs).toBeGreaterThan(0);
      }
    } finally {
      await Promise.all(peers.map((p) => p.dispose()));
    }
  });
});

describe("a step's phase records and its hand-over", () => {
  it('reach the listener only after the step output is on the link (a listener never delays the hand-over)', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const ids = ['A', 'B'];
    const net = new LoopbackNetwork();
    // one log for both stages, in the order things happened: frames handed to the link, and phase records
    const log: string[] = [];
    const logged = (id: string, transport: PipelineTransport): PipelineTransport => ({
      localId: transport.localId,
      connect: (peerId, timeoutMs) => transport.connect(peerId, timeoutMs),
      send: async (peerId: string, frame: Frame) => {
        await transport.send(peerId, frame);
        log.push(`${id} sent ${frame.step}`);
      },
      onFrame: (handler) => transport.onFrame(handler),
      onEvent: (handler) => transport.onEvent(handler),
      setPolicy: (policy) => transport.setPolicy(policy),
      close: () => transport.close(),
    });
    const peers = ringPeers(pkg, '1-2,3-4', ids, net, (i) => ({
      transport: logged(ids[i], net.createTransport(ids[i])),
      onPhase: (e) => log.push(`${ids[i]} ${e.phase} ${e.step}`),
    }));
    try {
      await Promise.all(
        peers.map((p) => p.run({ requestId: 1, prompt: 'p', maxNewTokens: 4, sampling: { temperature: 0 } })),
      );
      const at = (line: string) => {
        const i = log.indexOf(line);
        expect(i, line).toBeGreaterThanOrEqual(0);
        return i;
      };
      // A sends the hidden states of step n as frame n; B the token it sampled at step n (or, at the end,
      // the end frame) as frame n + 1, the first stage's next input
      for (const [id, steps] of [
        ['A', [0, 1, 2, 3]],
        ['B', [0, 1, 2, 3]],
      ] as const)
        for (const step of steps) {
          const sent = at(`${id} sent ${id === 'B' ? step + 1 : step}`);
          for (const phase of ['compute', 'send', 'ingress', 'kernel', 'egress'])
            expect(at(`${id} ${phase} ${step}`), `${id}'s ${phase} of step ${step}`).toBeGreaterThan(sent);
        }
    } finally {
      await Promise.all(peers.map((p) => p.dispose()));
    }
  });

  it("time their phases from the start's origin when it is given (one origin for every stage), else from run()", async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const ids = ['A', 'B'];
    const net = new LoopbackNetwork();
    const peers = ringPeers(pkg, '1-2,3-4', ids, net);
    try {
      // the server sent start 300 ms ago; B runs ~50 ms after A (it got start later)
      const originMs = performance.now() - 300;
      const request = { requestId: 1, prompt: 'p', maxNewTokens: 3, sampling: { temperature: 0 }, originMs };
      const runA = peers[0].run(request);
      await new Promise((r) => setTimeout(r, 50));
      const bStartMs = performance.now() - originMs; // B's run() began here, on the shared origin
      const [a, b] = await Promise.all([runA, peers[1].run(request)]);
      expect(a.originMs).toBe(originMs);
      expect(b.originMs).toBe(originMs);
      for (const r of [a, b]) expect(Math.min(...r.phases.map((p) => p.startMs))).toBeGreaterThanOrEqual(300);
      // on the shared origin a hand-over reads across the stages: A sent the hidden states before B had them
      expect(one(a.phases, 'send', 0).startMs).toBeLessThanOrEqual(one(b.phases, 'receive', 0).endMs);
      expect(one(b.phases, 'storage-read', 0).startMs).toBeGreaterThanOrEqual(bStartMs);

      // an origin in the future (a clock gone wrong) is not used: the phases start at run()
      const later = { ...request, requestId: 2, originMs: performance.now() + 60_000 };
      const [a2] = await Promise.all(peers.map((p) => p.run(later)));
      expect(a2.originMs).toBeLessThanOrEqual(performance.now());
      expect(Math.min(...a2.phases.map((p) => p.startMs))).toBeLessThan(300);
    } finally {
      await Promise.all(peers.map((p) => p.dispose()));
    }
  });
});
