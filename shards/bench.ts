/**
 * `npm run bench:shards [-- --shape qwen3-0.6b|demo --layers N --prefill S --decode N --dtypes fp32,fp16,q4
 *   --backends node,wasm --repeats R --head-vocab V --out bench/results/shards.json]`
 *
 * For each package dtype and each ONNX Runtime backend available in Node (onnxruntime-node CPU,
 * onnxruntime-web wasm; q4 with both kernels), a layers-only stage graph, and a head-only one (final
 * norm + lm_head with the real vocabulary V, default 151,936; 0 skips it), are built from freshly made and
 * converted checkpoints and measured:
 *   - session creation time per MB of layer weights (median of R creations, from model bytes + blobs in
 *     memory to a ready session);
 *   - prefill ms per layer (S tokens, empty cache) and decode ms per layer (1 token after S cached), the
 *     median over R runs after one warm-up run (the first run is slower: allocations, kernel selection).
 * Single-threaded (1 intra-op thread), as a page's wasm backend runs. Figures go to stdout and JSON.
 */
import { listOption, parseCliArgs, runCliIfEntryPoint, usageError } from '../core/cli.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { convertCheckpoint } from './convert.ts';
import { headDim, type ModelManifest, type PackageDType } from './manifest.ts';
import { BENCH_LAYER_SHAPES, benchLayerShape } from './bench-layer-shapes.ts';
import { writeModel, type ModelShape } from './make-model.ts';
import { createStageSession, type NodeBackend } from './runtime/ort-node.ts';
import { StageStepper } from './runtime/stage-stepper.ts';
import { PackageReader } from './package-reader.ts';
import { buildStageGraph, stageSessionConfig, type StageGraphOptions } from './stage-graph.ts';

interface Result {
  /** 'layer': a layers-only stage, figures per layer; 'head': a head-only stage (final norm + lm_head), per head */
  part: 'layer' | 'head';
  dtype: PackageDType;
  backend: NodeBackend;
  q4Kernel: string | null;
  count: number;
  vocab: number;
  weightBytes: number;
  firstSessionCreateMs: number;
  sessionCreateMs: number;
  sessionCreateMsPerMB: number;
  prefillTokens: number;
  prefillMsPer: number;
  decodeMsPer: number;
}

interface Measure {
  part: 'layer' | 'head';
  backend: NodeBackend;
  q4Kernel?: 'matmulnbits' | 'dequantize';
  prefill: number;
  decodeSteps: number;
  repeats: number;
}

/** Builds the stage, times session creation, then prefill and decode runs (see the file comment). */
async function measure(m: ModelManifest, blobs: Map<string, Uint8Array>, c: Measure): Promise<Result> {
  const layers = c.part === 'layer' ? m.config.num_hidden_layers : 0;
  const nkv = m.config.num_key_value_heads;
  const hd = headDim(m.config);
  const H = m.config.hidden_size;
  const S = c.prefill;
  const opts: StageGraphOptions = {
    backend: c.backend === 'wasm' ? 'wasm' : 'cpu',
    q4Kernel: c.q4Kernel,
    maxPositions: 2048,
  };
  const stage = { layers: { start: 0, end: layers }, embeds: false, hasHead: c.part === 'head' };
  const graph = buildStageGraph(m, stage, opts);
  const externalData = graph.externalData.map((e) => ({ path: e.path, data: blobs.get(e.path)! }));
  const weightBytes = externalData.reduce((sum, e) => sum + e.data.byteLength, 0);
  const kvCache = { layers: Array.from({ length: layers }, (_, l) => l), heads: nkv, headDim: hd };
  const spec = { model: graph.model, externalData, config: stageSessionConfig(m, opts), kvCache };

  // The first creation also pays one-off costs (the wasm runtime's compile, kernel registration): reported apart.
  const tFirst = performance.now();
  await (await createStageSession(c.backend, spec)).release();
  const firstCreateMs = performance.now() - tFirst;
  const createMs: number[] = [];
  for (let r = 0; r < c.repeats; r++) {
    const t0 = performance.now();
    const s = await createStageSession(c.backend, spec);
    createMs.push(performance.now() - t0);
    await s.release();
  }

  const session = await createStageSession(c.backend, spec);
  // hidden states (1, seq, H), made before the timers start
  const hidden = (seq: number) => ({
    dtype: 'float32' as const,
    dims: [1, seq, H],
    data: Float32Array.from({ length: seq * H }, (_, i) => Math.sin(i) * 0.5),
  });
  const prefillInput = hidden(S);
  const decodeInput = hidden(1);
  const prefillMs: number[] = [];
  const decodeMs: number[] = [];
  const warmUp = new StageStepper(session, stage); // one prefill and one decode step, not measured
  await warmUp.step(prefillInput);
  await warmUp.step(decodeInput);
  for (let r = 0; r < c.repeats; r++) {
    const stepper = new StageStepper(session, stage); // a new sequence: empty KV cache
    const t0 = performance.now();
    await stepper.step(prefillInput);
    prefillMs.push(performance.now() - t0);
    for (let n = 0; n < c.decodeSteps; n++) {
      const t1 = performance.now();
      await stepper.step(decodeInput);
      decodeMs.push(performance.now() - t1);
    }
  }
  await session.release();
  const count = c.part === 'layer' ? layers : 1;
  return {
    part: c.part,
    dtype: m.dtype,
    backend: c.backend,
    q4Kernel: c.q4Kernel ?? null,
    count,
    vocab: m.config.vocab_size,
    weightBytes,
    firstSessionCreateMs: firstCreateMs,
    sessionCreateMs: median(createMs),
    sessionCreateMsPerMB: median(createMs) / (weightBytes / 1e6),
    prefillTokens: S,
    prefillMsPer: median(prefillMs) / count,
    decodeMsPer: median(decodeMs) / count,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const USAGE = `usage: npm run bench:shards -- [options]
  --shape S          layer shape: ${Object.keys(BENCH_LAYER_SHAPES).join(' | ')} (default qwen3-0.6b)
  --layers N         layers in the measured stage graph (default 2)
  --prefill S        prompt tokens of the prefill run (default 32)
  --decode N         decode steps after the prefill (default 8)
  --repeats R        runs per figure, median reported (default 3)
  --dtypes LIST      package dtypes: fp32,fp16,q4 (default all)
  --backends LIST    node,wasm (default both)
  --head-vocab V     vocabulary of the head-only graph (default 151936; 0 skips it)
  --out FILE         where the JSON goes (default bench/results/shards.json)
  --help             this text`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      shape: { type: 'string', default: 'qwen3-0.6b' },
      layers: { type: 'string', default: '2' },
      prefill: { type: 'string', default: '32' },
      decode: { type: 'string', default: '8' },
      repeats: { type: 'string', default: '3' },
      dtypes: { type: 'string', default: 'fp32,fp16,q4' },
      backends: { type: 'string', default: 'node,wasm' },
      'head-vocab': { type: 'string', default: '151936' },
      out: { type: 'string', default: 'bench/results/shards.json' },
    },
  });
  const shape = benchLayerShape(values.shape);
  const layers = Number(values.layers);
  const S = Number(values.prefill);
  const decodeSteps = Number(values.decode);
  const repeats = Number(values.repeats);
  const headVocab = Number(values['head-vocab']);
  if (!Number.isInteger(headVocab) || headVocab < 0)
    throw usageError('--head-vocab must be an integer >= 0 (0 = skip the head).');
  for (const [flag, v] of [
    ['--layers', layers],
    ['--prefill', S],
    ['--decode', decodeSteps],
    ['--repeats', repeats],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw usageError(`${flag} must be a positive integer.`);
  }
  const dtypes = listOption<PackageDType>(values.dtypes, '--dtypes', ['fp32', 'fp16', 'q4']);
  const backends = listOption<NodeBackend>(values.backends, '--backends', ['node', 'wasm']);

  const loadBefore = loadavg()[0];
  const work = mkdtempSync(join(tmpdir(), 'tandem-bench-shards-'));
  const results: Result[] = [];
  try {
    // Layers: the shape's layers with a small vocabulary. Head: 1 layer, the real vocabulary (lm_head H x V).
    const parts: { part: 'layer' | 'head'; overrides: Partial<ModelShape> }[] = [
      { part: 'layer', overrides: { ...shape, num_hidden_layers: layers } },
    ];
    if (headVocab > 0)
      parts.push({ part: 'head', overrides: { ...shape, num_hidden_layers: 1, vocab_size: headVocab } });
    for (const { part, overrides } of parts) {
      const ckpt = join(work, `${part}-ckpt`);
      writeModel(ckpt, { preset: 'tiny', arch: 'qwen3', tied: true, dtype: 'bf16', seed: 7, overrides });
      for (const dtype of dtypes) {
        const dir = join(work, `${part}-${dtype}`);
        await convertCheckpoint(ckpt, dir, { dtype });
        const reader = PackageReader.open(dir);
        const blobs = new Map<string, Uint8Array>();
        for (const u of reader.manifest.units) blobs.set(u.file, await reader.readUnit(u));
        for (const backend of backends) {
          const kernels = dtype === 'q4' ? (['matmulnbits', 'dequantize'] as const) : [undefined];
          for (const q4Kernel of kernels) {
            // q4 packages keep the head in float32: one kernel is enough there.
            if (part === 'head' && q4Kernel === 'dequantize') continue;
            const res = await measure(reader.manifest, blobs, {
              part,
              backend,
              q4Kernel,
              prefill: S,
              decodeSteps,
              repeats,
            });
            results.push(res);
            console.log(
              `${part.padEnd(5)} ${dtype.padEnd(4)} ${backend.padEnd(4)} ${(q4Kernel ?? '').padEnd(11)} ${String(res.count).padStart(2)} x ${(res.weightBytes / res.count / 1e6).toFixed(1).padStart(6)} MB  ` +
                `create ${res.sessionCreateMs.toFixed(0).padStart(6)} ms (${res.sessionCreateMsPerMB.toFixed(2)} ms/MB, first ${res.firstSessionCreateMs.toFixed(0)} ms)  ` +
                `prefill(${S}) ${res.prefillMsPer.toFixed(2).padStart(7)} ms  decode ${res.decodeMsPer.toFixed(2).padStart(6)} ms  per ${part}`,
            );
          }
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const report = {
    bench: 'shards',
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      platform: process.platform,
    },
    // 1-minute load average before and after: on a shared machine, figures taken under load are inflated.
    loadAverage: { before: loadBefore, after: loadavg()[0] },
    method:
      'layers-only stage graph of a made qwen3 checkpoint (and a head-only stage with the real vocabulary); 1 intra-op thread; session creation = median of repeats from in-memory model + blobs, ' +
      'after one untimed creation (firstSessionCreateMs, which includes one-off runtime start-up); ' +
      'prefill/decode = median over repeats after one warm-up run, divided by the layer count (per head for the head); decode with the prefill cached',
    shape: { name: values.shape, ...shape, num_hidden_layers: layers, headVocab },
    prefillTokens: S,
    decodeSteps,
    repeats,
    results,
  };
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`saved ${values.out}`);
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:shards', usage: USAGE, main });
