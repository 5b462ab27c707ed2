/**
 * Warm mode (issue 11, item 7): a stage loaded before its request (StagePeer.load(), what a ?warm=1 page
 * does on assignment) runs the request without reading units or creating a session; a request that
 * arrives while the load is still under way waits for that one session (created once) and records the
 * wait as its 'session-create'. Tokens stay the fp64 reference's either way.
 */
import { describe, expect, it } from 'vitest';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import { ReferenceModel } from '../reference-forward.ts';
import { testPackage } from '../stage-test-packages.ts';
import { createNodeRuntime } from './ort-node.ts';
import { ringAssignments, StagePeer } from './stage-peer.ts';
import { greedyStart, TEST_PROMPT_IDS } from './stage-test-start.ts';
import type { StageRuntime } from './stage-runtime.ts';

const START = greedyStart(4);
const PROMPT_IDS = TEST_PROMPT_IDS;

describe('a stage loaded before its request (warm mode)', () => {
  it('runs warm after load(); a request during the load waits for the one session it creates', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const manifest = pkg.reader.manifest;
    const reference = new ReferenceModel(manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, START.maxNewTokens);
    const inner = createNodeRuntime('wasm');
    let created = 0;
    const runtime: StageRuntime = {
      createSession: (req) => {
        created += 1;
        return inner.createSession(req);
      },
    };
    const net = new LoopbackNetwork();
    const single = (id: string) =>
      new StagePeer({
        manifest,
        assignment: ringAssignments([{ start: 0, end: manifest.config.num_hidden_layers }], [id])[0],
        transport: net.createTransport(id),
        runtime,
        backend: 'wasm',
        readUnit: async (unitId) => (await pkg.reader.readUnit(unitId)).slice(),
        maxPositions: 64,
        stopTokens: [],
      });
    const loads = (phases: { phase: string }[]) =>
      phases.filter((p) => p.phase === 'storage-read' || p.phase === 'session-create').map((p) => p.phase);

    const warm = single('warm');
    const beforeRequest = await warm.load();
    expect(beforeRequest.sessionCreateMs).toBeGreaterThan(0);
    const r = await warm.run(START);
    expect(r.tokens).toEqual(reference);
    expect(loads(r.phases)).toEqual([]); // nothing loaded during the request
    expect(created).toBe(1);

    const racing = single('racing');
    const loading = racing.load();
    const r2 = await racing.run({ ...START, requestId: 2 });
    await loading;
    expect(r2.tokens).toEqual(reference);
    expect(loads(r2.phases)).toEqual(['session-create']); // the wait for the load under way, no read of its own
    expect(created).toBe(2); // one session for the load and the request
    await Promise.all([warm.dispose(), racing.dispose()]);
  });
});
