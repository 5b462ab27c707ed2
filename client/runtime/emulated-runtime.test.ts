import { describe, expect, it } from 'vitest';
import { emulatedRuntime } from './emulated-runtime.ts';
import type { HostTensor, StageRuntime } from '../../shards/runtime/stage-runtime.ts';

/** A runtime whose sessions take ~20 ms per run and echo their input. */
const slowEcho: StageRuntime = {
  createSession(req) {
    return Promise.resolve({
      backend: req.backend,
      inputNames: ['x'],
      outputNames: ['y'],
      run(feeds: Record<string, HostTensor>) {
        const t0 = performance.now();
        while (performance.now() - t0 < 20) {
          // busy: a real kernel
        }
        return Promise.resolve({ y: feeds.x });
      },
      async release() {},
    });
  },
};

const REQ = { model: new Uint8Array(0), externalData: [], config: {}, backend: 'wasm' as const };
const FEEDS = { x: { dtype: 'float32' as const, dims: [1], data: new Float32Array([3]) } };

describe('emulatedRuntime', () => {
  it('is the runtime itself without a slow-down', () => {
    expect(emulatedRuntime(slowEcho, null)).toBe(slowEcho);
    expect(emulatedRuntime(slowEcho, { label: 'x', computeSlowdown: 1 })).toBe(slowEcho);
  });

  it("hands the emulated read cap to the runtime with each session request (it reads the units' Blobs)", async () => {
    const seen: (number | undefined)[] = [];
    const recording: StageRuntime = {
      createSession(req) {
        seen.push(req.readCapBytesPerSec);
        return slowEcho.createSession(req);
      },
    };
    await emulatedRuntime(recording, { label: 'disk', computeSlowdown: 1, readBytesPerSecCap: 5e6 }).createSession(REQ);
    await emulatedRuntime(recording, { label: 'both', computeSlowdown: 3, readBytesPerSecCap: 7e6 }).createSession(REQ);
    await emulatedRuntime(recording, { label: 'cpu', computeSlowdown: 3 }).createSession(REQ);
    expect(seen).toEqual([5e6, 7e6, undefined]);
  });

  it('stretches every run by the factor and passes outputs through', async () => {
    const s = await emulatedRuntime(slowEcho, { label: 'slow', computeSlowdown: 4 }).createSession(REQ);
    expect(s.backend).toBe('wasm');
    expect(s.outputNames).toEqual(['y']);
    const t0 = performance.now();
    const out = await s.run(FEEDS);
    const ms = performance.now() - t0;
    expect(out.y.data).toEqual(new Float32Array([3]));
    expect(ms).toBeGreaterThanOrEqual(4 * 20 - 2);
  });
});
