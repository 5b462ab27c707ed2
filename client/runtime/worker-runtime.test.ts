/**
 * The inference-worker protocol end to end in Node: worker-runtime.ts (main-thread side) and
 * inference-worker-host.ts (worker side) over a real MessageChannel (structured clone + transfer, as
 * between a page and its Worker), serving onnxruntime-web's wasm backend. StagePeers on that runtime
 * must give the fp64 reference's greedy tokens, with the KV cache kept in the worker across steps and
 * reset between requests.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import { ReferenceModel } from '../../shards/reference-forward.ts';
import { removeTestPackages, testPackage } from '../../shards/stage-test-packages.ts';
import { buildMatmulChainModel } from '../profiler/session-bench.ts';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import { serveInference } from './inference-worker-host.ts';
import { createOrtWebRuntime } from './ort-web.ts';
import type { PromptTokenizer } from '../../shards/runtime/prompt-tokenizer.ts';
import { StagePeer } from '../../shards/runtime/stage-peer.ts';
import { createWorkerRuntime, workerSpan } from './worker-runtime.ts';

const PROMPT_IDS = [11, 200, 37, 5, 380, 91, 64, 2];
const tokenizer: PromptTokenizer = {
  hasChatTemplate: false,
  encode: () => [...PROMPT_IDS],
  decode: (ids) => ids.join(' '),
};

const channel = new MessageChannel();
const ort = await import('onnxruntime-web');
serveInference(channel.port2, ({ numThreads }) => createOrtWebRuntime({ ort, numThreads }));
const runtime = createWorkerRuntime(channel.port1, { wasmUrl: null, numThreads: 1 });
channel.port1.start();
channel.port2.start();

afterAll(() => {
  channel.port1.close();
  removeTestPackages();
});

describe('StageRuntime in an inference worker (MessageChannel)', () => {
  it('a 2-stage ring on the worker runtime == the fp64 reference, twice (the KV cache resets per request)', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const manifest = pkg.reader.manifest;
    const reference = new ReferenceModel(manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, 5);
    const net = new LoopbackNetwork();
    const ids = ['A', 'B'];
    const peers = [
      { start: 0, end: 2 },
      { start: 2, end: 4 },
    ].map(
      (layers, i) =>
        new StagePeer({
          manifest,
          assignment: {
            layers,
            embeds: i === 0,
            hasHead: i === 1,
            predecessorPeerId: i === 1 ? 'A' : null,
            successorPeerId: i === 0 ? 'B' : null,
            firstPeerId: 'A',
            lastPeerId: 'B',
          },
          transport: net.createTransport(ids[i]),
          runtime,
          backend: 'wasm',
          // fresh copies: the stage hands them over to the worker, which detaches them
          readUnit: async (unitId) => (await pkg.reader.readUnit(unitId)).slice(),
          tokenizer,
          maxPositions: 64,
          stopTokens: [],
        }),
    );
    try {
      for (const requestId of [1, 2]) {
        const results = await Promise.all(
          peers.map((p) => p.run({ requestId, prompt: 'p', maxNewTokens: 5, sampling: { temperature: 0 } })),
        );
        expect(results[1].tokens).toEqual(reference);
      }
    } finally {
      await Promise.all(peers.map((p) => p.dispose()));
    }
  });

  it('moves handed-over weight buffers to the worker and copies the others; errors keep their codes', async () => {
    const m = buildMatmulChainModel(16, 2);
    const kept = m.externalData[0].data;
    const copied = await runtime.createSession({
      model: m.model,
      externalData: m.externalData,
      config: {},
      backend: 'wasm',
    });
    expect(kept.byteLength).toBe(m.weightBytes); // still usable here
    const moved = buildMatmulChainModel(16, 2);
    const handed = await runtime.createSession({
      model: moved.model,
      externalData: moved.externalData,
      config: {},
      backend: 'wasm',
      handOver: true,
    });
    expect(moved.externalData[0].data.byteLength).toBe(0); // detached: it went to the worker without a copy
    const x = { dtype: 'float32' as const, dims: [1, 16], data: new Float32Array(16).fill(1) };
    const [a, b] = [await copied.run({ x }), await handed.run({ x })];
    expect(Array.from(b['y'].data as Float32Array)).toEqual(Array.from(a['y'].data as Float32Array));
    await handed.release();
    const err = await handed.run({ x }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TandemError);
    expect((err as TandemError).code).toBe('session-released');
    await copied.release();
  });
});

describe('workerSpan', () => {
  it("puts the worker's epoch times on this thread's clock, inside the span the run was posted and answered in", () => {
    const o = performance.timeOrigin;
    expect(workerSpan({ startEpochMs: o + 12, endEpochMs: o + 30 }, 10, 40)).toEqual({ startMs: 12, endMs: 30 });
    // origins read from clocks a little apart: never before the post, never after the reply
    expect(workerSpan({ startEpochMs: o + 8, endEpochMs: o + 43 }, 10, 40)).toEqual({ startMs: 10, endMs: 40 });
    expect(workerSpan({ startEpochMs: o + 45, endEpochMs: o + 50 }, 10, 40)).toEqual({ startMs: 40, endMs: 40 });
  });
});
