/**
 * The kernel warm-up runs the package's real layer graph through both paths: a multi-token prefill on an
 * empty cache and single-token decode steps on the growing cache, in the session-resident KV cache.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { removeTestPackages, testPackage } from '../../shards/stage-test-packages.ts';
import { createOrtWebRuntime } from './ort-web.ts';
import type { HostTensor, RunOptions, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { SAMPLED_TOKEN_OUTPUT } from '../../shards/runtime/head-sampling.ts';
import {
  rehearseStageCreation,
  WARM_UP_CREATIONS,
  WARM_UP_LAYER_BYTES,
  warmUpLayerCount,
  warmUpStageKernels,
} from './stage-warmup.ts';
import { unitsForRange } from '../../shards/manifest.ts';

afterAll(() => removeTestPackages());

describe('warmUpLayerCount', () => {
  it("takes as many layers as the byte budget holds, at least one, at most four and the model's own", () => {
    expect(warmUpLayerCount(3_465_600, 16)).toBe(4); // the realistic demo preset's layers
    expect(warmUpLayerCount(WARM_UP_LAYER_BYTES / 3, 16)).toBe(3);
    expect(warmUpLayerCount(60_000_000, 28)).toBe(1); // a Qwen3-0.6B fp32 layer is over the budget alone
    expect(warmUpLayerCount(1000, 2)).toBe(2);
  });
});

describe('warmUpStageKernels', () => {
  it('runs prefill then decode steps of its layers, per sequence, and releases the session', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const inner = createOrtWebRuntime({ ort: await import('onnxruntime-web') });
    const runs: { seq: number; mask: number; newSequence: boolean; out: number[] }[] = [];
    let released = 0;
    const layerRanges: unknown[] = [];
    const events: string[] = [];
    const recording: StageRuntime = {
      async createSession(req) {
        if (!(req.model instanceof Uint8Array)) layerRanges.push(req.model.spec.layers);
        events.push('create');
        const s = await inner.createSession(req);
        return {
          backend: s.backend,
          inputNames: s.inputNames,
          outputNames: s.outputNames,
          async run(feeds: Record<string, HostTensor>, options?: RunOptions) {
            const out = await s.run(feeds, options);
            if (events.at(-1) !== 'run') events.push('run');
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
            events.push('release');
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
    // creation is repeated (its tier-up), and only the last session runs
    expect(WARM_UP_CREATIONS).toBeGreaterThan(1);
    expect(events).toEqual([
      ...Array.from({ length: WARM_UP_CREATIONS - 1 }, () => ['create', 'release']).flat(),
      'create',
      'run',
      'release',
    ]);
    expect(released).toBe(WARM_UP_CREATIONS);
    const manifest = pkg.reader.manifest;
    const layerBytes = manifest.units.find((u) => u.id === 'layer.0')!.bytes;
    const layers = warmUpLayerCount(layerBytes, manifest.config.num_hidden_layers);
    expect(layers).toBeGreaterThan(1); // the test package's layers are small: the budget holds several
    expect(layerRanges).toEqual(Array(WARM_UP_CREATIONS).fill({ start: 0, end: layers }));
  });

  it('with the embedding and head: token ids in, a sampled token out, on a narrowed vocabulary', async () => {
    const pkg = await testPackage('qwen3', false, 'fp32');
    const manifest = pkg.reader.manifest;
    const inner = createOrtWebRuntime({ ort: await import('onnxruntime-web') });
    const seen: { feed: string; dims: number[]; maxId: number; out: string[]; vocab: number }[] = [];
    const recording: StageRuntime = {
      async createSession(req) {
        const s = await inner.createSession(req);
        const vocab = req.model instanceof Uint8Array ? -1 : req.model.manifest.config.vocab_size;
        return {
          ...s,
          async run(feeds: Record<string, HostTensor>, options?: RunOptions) {
            const out = await s.run(feeds, options);
            const ids = feeds['input_ids'];
            seen.push({
              feed: Object.keys(feeds).filter((k) => k === 'input_ids' || k === 'hidden_states')[0],
              dims: ids.dims,
              maxId: ids.dtype === 'int64' ? Math.max(...Array.from(ids.data, Number)) : -1,
              out: Object.keys(out).sort(),
              vocab,
            });
            return out;
          },
          release: () => s.release(),
        };
      },
    };
    const vocab = 100;
    expect(vocab).toBeLessThan(manifest.config.vocab_size);
    await warmUpStageKernels(recording, manifest, 'wasm', {
      prefillTokens: 6,
      decodeSteps: 2,
      sequences: 1,
      embeds: true,
      hasHead: true,
      vocabRows: vocab,
    });
    expect(seen.map((r) => [r.feed, r.dims])).toEqual([
      ['input_ids', [1, 6]],
      ['input_ids', [1, 1]],
      ['input_ids', [1, 1]],
    ]);
    for (const r of seen) {
      expect(r.maxId).toBeLessThan(vocab);
      expect(r.vocab).toBe(vocab);
      expect(r.out).toContain(SAMPLED_TOKEN_OUTPUT);
    }
  });
});

describe('rehearseStageCreation', () => {
  it("creates the stage's own graph from zero weights of its units' sizes, with its KV cache, and releases it", async () => {
    const pkg = await testPackage('qwen3', false, 'fp32');
    const manifest = pkg.reader.manifest;
    const inner = createOrtWebRuntime({ ort: await import('onnxruntime-web') });
    const L = manifest.config.num_hidden_layers;
    const spec = { layers: { start: 1, end: L }, embeds: false, hasHead: true };
    const seen: { spec: unknown; data: [string, number, boolean][]; kv: number[] | undefined }[] = [];
    let released = 0;
    const recording: StageRuntime = {
      async createSession(req) {
        seen.push({
          spec: req.model instanceof Uint8Array ? null : req.model.spec,
          data: req.externalData.map((e) => {
            const d = e.data as Uint8Array;
            return [e.path, d.byteLength, d.every((b) => b === 0)];
          }),
          kv: req.kvCache?.layers,
        });
        const s = await inner.createSession(req);
        return { ...s, release: async () => (released++, s.release()) };
      },
    };
    const seconds = await rehearseStageCreation(recording, manifest, 'wasm', spec);
    expect(seconds).toBeGreaterThan(0);
    const units = unitsForRange(manifest, spec.layers, false, true);
    expect(seen).toEqual([
      {
        spec,
        data: units.map((u) => [u.file, u.bytes, true]),
        kv: Array.from({ length: L - 1 }, (_, i) => i + 1),
      },
    ]);
    expect(released).toBe(1);
  });
});
