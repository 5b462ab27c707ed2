/**
 * Real stage layers as the compute probe: the stage graph built from the probe's in-memory package runs
 * on onnxruntime-node and on onnxruntime-web's wasm kernels (behind the inference-worker protocol) to
 * the fp64 reference, its FLOP count is the planner's, and the sweep produces a point per t and the fit.
 */
import { describe, expect, it } from 'vitest';
import { layerCost } from '../../planner/cost-model.ts';
import { ReferenceModel } from '../../shards/reference-forward.ts';
import { createNodeRuntime } from '../../shards/runtime/ort-node.ts';
import { HIDDEN_OUTPUT } from '../../shards/stage-graph.ts';
import { layerProbePackage, layerSweepProbe, type LayerProbeShape } from './layer-probe.ts';
import { benchmarkRuntimeCompute } from './runtime-sweep.ts';
import { wasmWorkerRuntime } from './wasm-worker-runtime-fixture.ts';

const shape: LayerProbeShape = {
  hidden_size: 32,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  intermediate_size: 48,
  layers: 2,
};

const workerRuntime = await wasmWorkerRuntime();

describe('layerSweepProbe', () => {
  it('on onnxruntime-node: a prefill of t rows == the fp64 reference, every run from an empty cache', async () => {
    const probe = layerSweepProbe(shape, 'node', 64);
    const session = await createNodeRuntime('node').createSession({ ...probe.session, backend: 'node' });
    try {
      const { manifest, blobs } = layerProbePackage(shape, 64);
      const ref = new ReferenceModel(manifest, (u) => blobs.get(u.file)!);
      for (const tokens of [5, 5, 2]) {
        const feeds = probe.feeds(tokens);
        const out = await session.run(feeds, probe.runOptions);
        const y = out[HIDDEN_OUTPUT];
        expect(y.dims).toEqual([1, tokens, shape.hidden_size]);
        const x = feeds['hidden_states'].data as Float32Array;
        const want = ref.layers(Float64Array.from(x), { start: 0, end: shape.layers }, ref.newCache());
        let diff = 0;
        let scale = 0;
        want.forEach((w, i) => {
          diff = Math.max(diff, Math.abs((y.data as Float32Array)[i] - w));
          scale = Math.max(scale, Math.abs(w));
        });
        expect(diff / scale).toBeLessThan(1e-4);
        expect(scale).toBeGreaterThan(0.1);
        expect(probe.checkError(tokens, out)).toBeCloseTo(diff / scale, 12);
      }
    } finally {
      await session.release();
    }
  });

  it("counts the planner's layer FLOPs", () => {
    const probe = layerSweepProbe(shape, 'node', 64);
    const model = {
      num_hidden_layers: 2,
      hidden_size: 32,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 8,
      intermediate_size: 48,
      vocab_size: 1,
      bytesPerParam: 4,
    };
    for (const t of [1, 16, 64]) expect(probe.flops(t)).toBe(2 * layerCost(model, t).flops);
    // by hand at t=1: attention 4 t hd (d hq + d hk + t hq) = 4*8*(128+64+4) = 6272; MLP 6 t d dff = 9216
    expect(probe.flops(1)).toBe(2 * (6272 + 9216));
  });

  it('sweeps on wasm behind the inference-worker protocol: checked, a point per t, the fit', async () => {
    const r = await benchmarkRuntimeCompute({
      runtime: workerRuntime,
      backend: 'wasm',
      probe: layerSweepProbe(shape, 'wasm', 64),
      sweep: [1, 4, 16, 64],
      runs: 2,
      emulation: null,
      runtimeLabel: 'onnxruntime-web wasm, 1 thread, in the inference worker',
    });
    expect(r.checkError).toBeLessThan(1e-4);
    expect(r.points.map((p) => p.tokens)).toEqual([1, 4, 16, 64]);
    expect(r.fit.samples).toBe(4);
    expect(r.method).toContain('qwen3 decoder layers built as a stage');
  });
});
