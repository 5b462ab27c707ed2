/**
 * The kernel warm-up runs the package's real layer graph through both paths: a multi-token prefill on an
 * empty cache and single-token decode steps on the growing cache, in the session-resident KV cache.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { removeTestPackages, testPackage } from '../../shards/stage-test-packages.ts';
import { createOrtWebRuntime } from './ort-web.ts';
import type { HostTensor, RunOptions, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { warmUpStageKernels } from './stage-warmup.ts';

afterAll(() => removeTestPackages());

describe('warmUpStageKernels', () => {
  it('runs prefill then decode steps of one layer, per sequence, and releases the session', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const inner = createOrtWebRuntime({ ort: await import('onnxruntime-web') });
    const runs: { seq: number; mask: number; newSequence: boolean; out: number[] }[] = [];
    let released = 0;
    const recording: StageRuntime = {
      async createSession(req) {
        const s = await inner.createSession(req);
        return {
          backend: s.backend,
          inputNames: s.inputNames,
          outputNames: s.outputNames,
          async run(feeds: Record<string, HostTensor>, options?: RunOptions) {
            const out = await s.run(feeds, options);
            runs.push({
              seq: feeds['hidden_states'].dims[1],
              mask: feeds['attention_mask'].dims[1],
              newSequence: options?.newSequence ?? false,
              out: out['hidden_states_out'].dims,
            });
            return out;
          },
          async release() {
            released++;
            await s.release();
          },
        };
      },
    };
    const H = pkg.reader.manifest.config.hidden_size;
    const r = await warmUpStageKernels(recording, pkg.reader.manifest, 'wasm', {
      prefillTokens: 8,
      decodeSteps: 3,
      sequences: 2,
    });
    const one = [
      { seq: 8, mask: 8, newSequence: true, out: [1, 8, H] },
      { seq: 1, mask: 9, newSequence: false, out: [1, 1, H] },
      { seq: 1, mask: 10, newSequence: false, out: [1, 1, H] },
      { seq: 1, mask: 11, newSequence: false, out: [1, 1, H] },
    ];
    expect(runs).toEqual([...one, ...one]);
    expect(r.runs).toBe(8);
    expect(released).toBe(1);
  });
});
