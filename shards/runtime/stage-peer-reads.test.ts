/**
 * A prepared stage keeps its stored units' files open and has its graph built (StagePeer.prepareLoad): its
 * cold start then reads the bytes without one round trip to the browser process, gives the fp64
 * reference's tokens, and lets the files go when it is disposed. Run on onnxruntime-web's wasm build in
 * Node, over an in-memory OPFS that behaves as a dedicated worker's (sync access handles, locks).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import { ReferenceModel } from '../reference-forward.ts';
import { testPackage } from '../stage-test-packages.ts';
import { fakeOpfs } from './fake-opfs.ts';
import type { OpfsUnit } from './opfs-file.ts';
import { createNodeRuntime } from './ort-node.ts';
import { ringAssignments, StagePeer } from './stage-peer.ts';
import { greedyStart, TEST_PROMPT_IDS } from './stage-test-start.ts';
import type { StageRuntime } from './stage-runtime.ts';

const START = greedyStart(4);
const PROMPT_IDS = TEST_PROMPT_IDS;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('a prepared stage keeps its unit files open', () => {
  it('reads them at the cold start with no round trip, gives the reference tokens, and lets go on dispose', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const manifest = pkg.reader.manifest;
    const reference = new ReferenceModel(manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, START.maxNewTokens);
    const fs = fakeOpfs({ workerScope: true });
    const stored = new Map<string, OpfsUnit>();
    for (const u of manifest.units) {
      fs.files.set(`units/${u.file}`, (await pkg.reader.readUnit(u.id)).slice());
      stored.set(u.id, { kind: 'opfs-file', dir: 'units', file: u.file, bytes: u.bytes });
    }
    vi.stubGlobal('navigator', { storage: { getDirectory: () => fs.root() } });
    const located: string[] = [];
    const asked: string[] = [];
    const inner = createNodeRuntime('wasm');
    const prepared: unknown[] = [];
    const runtime: StageRuntime = {
      createSession: (req) => inner.createSession(req),
      prepareSession: (req) => {
        prepared.push(req.model);
        inner.prepareSession?.(req);
      },
    };
    const peer = new StagePeer({
      manifest,
      assignment: ringAssignments([{ start: 0, end: manifest.config.num_hidden_layers }], ['solo'])[0],
      transport: new LoopbackNetwork().createTransport('solo'),
      runtime,
      backend: 'wasm',
      readUnit: (unitId) => {
        asked.push(unitId);
        return Promise.resolve(stored.get(unitId)!);
      },
      locateUnit: (unitId) => {
        located.push(unitId);
        return Promise.resolve(stored.get(unitId) ?? null);
      },
      maxPositions: 64,
      stopTokens: [],
    });

    const kept = await peer.prepareLoad();
    expect(kept).toBe(manifest.units.length); // one stage holds the whole model here
    expect(await peer.prepareLoad()).toBe(kept); // once: asking again opens nothing more
    expect(located).toHaveLength(manifest.units.length);
    expect(fs.openHandles.size).toBe(manifest.units.length);
    // and the runtime was asked to build the stage's graph ahead, once
    expect(prepared).toEqual([
      expect.objectContaining({
        kind: 'stage-graph',
        spec: { layers: { start: 0, end: manifest.config.num_hidden_layers }, embeds: true, hasHead: true },
      }),
    ]);

    const before = fs.roundTrips();
    const r = await peer.run(START);
    expect(r.tokens).toEqual(reference);
    expect(r.phases.some((p) => p.phase === 'storage-read')).toBe(true); // a cold start, read and created
    expect(fs.roundTrips()).toBe(before); // every unit read through its kept handle
    expect(asked).toEqual([]); // and none looked up again: prepareLoad had found them

    await peer.dispose();
    await Promise.resolve();
    expect(fs.openHandles.size).toBe(0);
  });

  it('opens nothing without a way to locate units, or where this thread has no OPFS', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const manifest = pkg.reader.manifest;
    const peer = (locate: boolean) =>
      new StagePeer({
        manifest,
        assignment: ringAssignments([{ start: 0, end: manifest.config.num_hidden_layers }], ['solo'])[0],
        transport: new LoopbackNetwork().createTransport('solo'),
        runtime: createNodeRuntime('wasm'),
        backend: 'wasm',
        readUnit: async (unitId) => (await pkg.reader.readUnit(unitId)).slice(),
        ...(locate ? { locateUnit: () => Promise.resolve(null) } : {}),
        maxPositions: 64,
        stopTokens: [],
      });
    expect(await peer(false).prepareLoad()).toBe(0);
    expect(await peer(true).prepareLoad()).toBe(0); // Node: no navigator.storage
  });
});
