/**
 * The profile's stage check (stage-check.ts) on onnxruntime-web's wasm kernels (the page's inference-worker
 * path): right kernels pass at a prompt's size; kernels wrong from 32 rows on, as SwiftShader's WebGPU is
 * here (client/profiler/runtime-sweep.browser.test.ts shows the real one), fail it, though they pass a
 * 3-row check; a backend that cannot create the session fails it too.
 */
import { describe, expect, it } from 'vitest';
import type { StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { HIDDEN_OUTPUT } from '../../shards/stage-graph.ts';
import { checkStagePrefill, STAGE_CHECK_ROWS } from './stage-check.ts';
import { wasmWorkerRuntime } from './wasm-worker-runtime-fixture.ts';

const runtime = await wasmWorkerRuntime();

/** The real runtime, with 0.01 cos(i) added to every output element once a run has >= 32 rows. */
function wrongFrom32Rows(inner: StageRuntime): StageRuntime {
  return {
    async createSession(req) {
      const session = await inner.createSession(req);
      return {
        backend: session.backend,
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        run: async (feeds, options) => {
          const out = await session.run(feeds, options);
          const y = out[HIDDEN_OUTPUT];
          if (y.dims[1] >= 32 && y.dtype === 'float32') {
            const data = Float32Array.from(y.data, (v, i) => v + 0.01 * Math.cos(i));
            return { ...out, [HIDDEN_OUTPUT]: { ...y, data } };
          }
          return out;
        },
        release: () => session.release(),
      };
    },
  };
}

describe('checkStagePrefill', () => {
  it('passes right kernels at a prompt-sized prefill of real stage layers', async () => {
    expect(STAGE_CHECK_ROWS).toBeGreaterThanOrEqual(32);
    expect(await checkStagePrefill(runtime, 'wasm')).toBeNull();
  });

  it('fails kernels that go wrong from 32 rows on, which a 3-row check passes', async () => {
    const broken = wrongFrom32Rows(runtime);
    expect(await checkStagePrefill(broken, 'wasm', 3)).toBeNull();
    const wrong = await checkStagePrefill(broken, 'wasm');
    expect(wrong).toMatch(
      /computed a 64-row prefill of real stage layers wrong \(relative error [\d.]+e-\d against the fp64 reference\)/,
    );
  });

  it('fails a backend that cannot create the session, saying why', async () => {
    const failing: StageRuntime = { createSession: () => Promise.reject(new Error('device lost')) };
    expect(await checkStagePrefill(failing, 'webgpu')).toBe('WebGPU could not run real stage layers (device lost).');
  });
});
