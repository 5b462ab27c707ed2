/**
 * `npm run bench:compute [-- --shape qwen3-0.6b|demo --layers N --prefill 16,64,256 --backends node,wasm
 *   --repeats R --out bench/results/compute-profile.json]`
 *
 * How well each compute profile predicts a real stage's prefill, in Node on the runtimes a stage uses
 * (onnxruntime-node CPU, onnxruntime-web's wasm kernels; 1 thread):
 *   - 'runtime-matmul' / 'runtime-layers': the page's compute sweep on that runtime
 *     (client/profiler/runtime-sweep.ts) with the MatMul-block probe (stage-probe.ts) or real stage
 *     layers (layer-probe.ts), the shapes and sizes the page uses;
 *   - 'js-matmul': the old wasm-page profile, a JS matmul sweep (client/profiler/cpu-matmul.ts).
 * Each gives c* and U(t); the predicted prefill of a layers-only stage graph of a made checkpoint is the
 * planner's layer FLOPs (planner/cost-model.ts) / (c* U(t)); measured is the median prefill over R runs
 * after one warm-up. Prints predicted / measured per profile and prefill length, and saves JSON.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseCliArgs, runCliIfEntryPoint, usageError } from '../core/cli.ts';
import { layerCost } from '../planner/cost-model.ts';
import type { ModelConfig } from '../planner/types.ts';
import { convertCheckpoint } from '../shards/convert.ts';
import { headDim } from '../shards/manifest.ts';
import { BENCH_LAYER_SHAPES, benchLayerShape } from '../shards/bench-layer-shapes.ts';
import { writeModel } from '../shards/make-model.ts';
import { PackageReader } from '../shards/package-reader.ts';
import { createNodeRuntime, createStageSession, type NodeBackend } from '../shards/runtime/ort-node.ts';
import { StageStepper } from '../shards/runtime/stage-stepper.ts';
import { buildStageGraph, stageSessionConfig } from '../shards/stage-graph.ts';
import { benchmarkCpu } from '../client/profiler/cpu-matmul.ts';
import { benchmarkRuntimeCompute } from '../client/profiler/runtime-sweep.ts';
import { matmulSweepProbe, PROFILE_PROBE } from '../client/profiler/stage-probe.ts';
import { layerSweepProbe, PROFILE_LAYER_PROBE } from '../client/profiler/layer-probe.ts';
import { median } from '../client/profiler/timing.ts';
import { fitUtilization, utilizationAt, type UtilizationFit } from '../client/profiler/utilization-fit.ts';

interface Profile {
  name: 'runtime-matmul' | 'runtime-layers' | 'js-matmul';
  backend: NodeBackend | 'js';
  peakFlops: number;
  fit: UtilizationFit;
  method: string;
  seconds: number;
}

const USAGE = `usage: npm run bench:compute -- [options]
  --shape S          stage layer shape: ${Object.keys(BENCH_LAYER_SHAPES).join(' | ')} (default qwen3-0.6b)
  --layers N         layers in the stage graph (default 2)
  --prefill LIST     prompt lengths t (default 16,64,256)
  --backends LIST    node,wasm (default both)
  --repeats R        prefill runs per figure, median reported (default 3)
  --out FILE         where the JSON goes (default bench/results/compute-profile.json)
  --help             this text`;

function positiveInts(value: string, flag: string): number[] {
  const xs = value.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw usageError(`${flag} must be positive integers.`);
  return xs;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      shape: { type: 'string', default: 'qwen3-0.6b' },
      layers: { type: 'string', default: '2' },
      prefill: { type: 'string', default: '16,64,256' },
      backends: { type: 'string', default: 'node,wasm' },
      repeats: { type: 'string', default: '3' },
      out: { type: 'string', default: 'bench/results/compute-profile.json' },
    },
  });
  const shape = benchLayerShape(values.shape);
  const [layers] = positiveInts(values.layers, '--layers');
  const [repeats] = positiveInts(values.repeats, '--repeats');
  const prefills = positiveInts(values.prefill, '--prefill');
  const backends = values.backends.split(',').map((b) => b.trim());
  for (const b of backends)
    if (b !== 'node' && b !== 'wasm') throw usageError(`--backends: '${b}' is not node or wasm.`);

  const loadBefore = loadavg()[0];
  const profiles: Profile[] = [];
  const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    const r = await f();
    return [r, (performance.now() - t0) / 1000];
  };

  // the old wasm-page profile: the JS matmul sweep (as profile.ts ran it)
  const [js, jsSeconds] = await timed(() =>
    benchmarkCpu({ sweep: [1, 2, 4, 8, 16, 32, 64, 128], dim: 256, runs: 3, emulation: null }),
  );
  const jsPeak = Math.max(...js.points.map((p) => p.flops));
  profiles.push({
    name: 'js-matmul',
    backend: 'js',
    peakFlops: jsPeak,
    fit: fitUtilization(js.points.map((p) => ({ tokens: p.tokens, utilization: p.flops / jsPeak }))),
    method: js.method,
    seconds: jsSeconds,
  });

  const work = mkdtempSync(join(tmpdir(), 'tandem-bench-compute-'));
  const rows: {
    backend: NodeBackend;
    tokens: number;
    layerFlops: number;
    measuredSeconds: number;
    predicted: Record<string, number>;
  }[] = [];
  try {
    const ckpt = join(work, 'ckpt');
    writeModel(ckpt, {
      preset: 'tiny',
      arch: 'qwen3',
      tied: true,
      dtype: 'bf16',
      seed: 7,
      overrides: { ...shape, num_hidden_layers: layers },
    });
    const dir = join(work, 'fp32');
    await convertCheckpoint(ckpt, dir, { dtype: 'fp32' });
    const reader = PackageReader.open(dir);
    const m = reader.manifest;
    const blobs = new Map<string, Uint8Array>();
    for (const u of m.units) blobs.set(u.file, await reader.readUnit(u));
    const model: ModelConfig = { ...m.config, bytesPerParam: 4 };

    for (const backend of backends as NodeBackend[]) {
      const label = backend === 'node' ? 'onnxruntime-node cpu, 1 thread' : 'onnxruntime-web wasm (Node), 1 thread';
      const runtimeProfiles: Profile[] = [];
      for (const [name, probe, sweep] of [
        ['runtime-matmul', matmulSweepProbe(PROFILE_PROBE.shape), PROFILE_PROBE.sweep],
        [
          'runtime-layers',
          layerSweepProbe(PROFILE_LAYER_PROBE.shape, backend, PROFILE_LAYER_PROBE.maxPositions),
          PROFILE_LAYER_PROBE.sweep,
        ],
      ] as const) {
        const [r, seconds] = await timed(() =>
          benchmarkRuntimeCompute({
            runtime: createNodeRuntime(backend),
            backend,
            probe,
            sweep,
            runs: 3,
            emulation: null,
            runtimeLabel: label,
          }),
        );
        runtimeProfiles.push({ name, backend, peakFlops: r.peakFlops, fit: r.fit, method: r.method, seconds });
      }
      profiles.push(...runtimeProfiles);

      const stage = { layers: { start: 0, end: layers }, embeds: false, hasHead: false };
      const opts = { backend: backend === 'wasm' ? ('wasm' as const) : ('cpu' as const), maxPositions: 2048 };
      const graph = buildStageGraph(m, stage, opts);
      const kvCache = {
        layers: Array.from({ length: layers }, (_, l) => l),
        heads: m.config.num_key_value_heads,
        headDim: headDim(m.config),
      };
      const session = await createStageSession(backend, {
        model: graph.model,
        externalData: graph.externalData.map((e) => ({ path: e.path, data: blobs.get(e.path)! })),
        config: stageSessionConfig(m, opts),
        kvCache,
      });
      try {
        for (const tokens of prefills) {
          const input = {
            dtype: 'float32' as const,
            dims: [1, tokens, m.config.hidden_size],
            data: Float32Array.from({ length: tokens * m.config.hidden_size }, (_, i) => Math.sin(i) * 0.5),
          };
          await new StageStepper(session, stage).step(input); // warm-up
          const times: number[] = [];
          for (let i = 0; i < repeats; i++) {
            const stepper = new StageStepper(session, stage); // a new sequence: empty KV cache
            const t0 = performance.now();
            await stepper.step(input);
            times.push((performance.now() - t0) / 1000);
          }
          const measuredSeconds = median(times);
          const layerFlops = layers * layerCost(model, tokens).flops;
          const predicted: Record<string, number> = {};
          for (const p of [profiles[0], ...runtimeProfiles])
            predicted[p.name] = layerFlops / (p.peakFlops * utilizationAt(p.fit.a, p.fit.b, tokens));
          rows.push({ backend, tokens, layerFlops, measuredSeconds, predicted });
          console.log(
            `${backend.padEnd(4)} t=${String(tokens).padStart(4)}  measured ${(measuredSeconds * 1e3).toFixed(1).padStart(8)} ms  ` +
              Object.entries(predicted)
                .map(([name, v]) => `${name} ${(v * 1e3).toFixed(1)} ms (x${(v / measuredSeconds).toFixed(2)})`)
                .join('  '),
          );
        }
      } finally {
        await session.release();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const p of profiles)
    console.log(
      `profile ${p.name.padEnd(9)} ${p.backend.padEnd(4)} c* ${(p.peakFlops / 1e9).toFixed(2)} GFLOP/s, a ${p.fit.a.toFixed(3)} b ${p.fit.b.toExponential(2)}, took ${p.seconds.toFixed(1)} s`,
    );
  const report = {
    bench: 'compute-profile',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    // 1-minute load average before and after: on a shared machine, figures taken under load are inflated.
    loadAverage: { before: loadBefore, after: loadavg()[0] },
    method:
      'predicted prefill = planner layerCost(t).flops x layers / (c* U(t)) from each profile; measured = median of repeats of a layers-only stage graph (fp32, made qwen3 checkpoint, empty KV cache) after one warm-up; 1 intra-op thread',
    shape: { name: values.shape, ...shape, num_hidden_layers: layers },
    repeats,
    profiles,
    rows,
  };
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`saved ${values.out}`);
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:compute', usage: USAGE, main });
