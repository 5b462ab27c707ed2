/**
 * The warm-up a page runs at join, before any request: a few decoder layers of the package's own shape
 * (real graph from shards/stage-graph.ts, zero weights of the layer units' sizes), with the embedding and
 * the head where asked, through a prefill and a run of decode steps, twice. It pays the one-off costs of
 * BOTH paths — wasm compile and V8's tier-up of session creation and of the prefill and decode kernels
 * (GroupQueryAttention, the norms, RoPE, MatMul at M = S and M = 1, the embedding's Gather, the head and
 * its sampling), WebGPU shader compilation — so the first measured request measures the request. A
 * prefill-only warm-up left the first request's decode ~2x slower than the second's; one without the head
 * and embedding left the first request of a one-page plan ~3 s of CPU of wasm lazy compile and TurboFan
 * tier-up (a Chrome trace, realistic preset), taken from the device's own compute.
 * Why several layers (up to WARM_UP_LAYER_BYTES of them): V8 tiers a wasm function up once it has run
 * enough, and a one-layer session did not run ORT's creation and prefill code enough. In Node
 * (`--trace-wasm-compilation-times`, realistic preset) five stage requests after a one-layer warm-up still
 * compiled ~1.35 s of TurboFan code; after a four-layer one ~0.75 s. On the 0.4-core equal lab the first
 * cold request's TTFT went from 7.75 to 4.87 s (its stages' prefill 0.7-1.6 s to 0.4 s).
 * Why its session is created WARM_UP_CREATIONS (12) times, all but the last released at once: ORT's session
 * creation runs a few large wasm functions that V8 tiers up only after several creations, and each one left
 * to a request is compiled to TurboFan then, on the device's quota while it creates the request's stage.
 * In Node (`--trace-wasm-compilation-times`, creations of the four-layer warm-up alone) the largest, one of
 * 125 KB of wasm (function #1807 of onnxruntime-web 1.30's simd-threaded build), was compiled after the 8th creation
 * (after the 18th with one layer: the budget a creation spends grows with the graph), another after the
 * 10th, and a creation then took 21 ms against 40-50 ms before. On the 0.4-core equal lab
 * (`TANDEM_JS_FLAGS=--trace-wasm-compilation-times`, two cold requests after the warm-up): with three
 * creations the second cold request still compiled 0.4-1.3 s (wall) of TurboFan per page during its stage's
 * creation; with twelve, 2-51 ms. Three creations had already done better than one (Node, five stage
 * requests after it: 0.25 s of TurboFan left to them against 0.81 s).
 * The embedding and head run on a narrowed vocabulary (shards/narrow-vocabulary.ts): the same kernels,
 * kilobytes of zero weights instead of the full tables.
 */
import { TandemError } from '../../core/errors.ts';
import { headDim, unitsForRange, type ModelManifest } from '../../shards/manifest.ts';
import { narrowVocabulary } from '../../shards/narrow-vocabulary.ts';
import { stageMaxPositions, stageSessionConfig, type StageSpec } from '../../shards/stage-graph.ts';
import type { ExecutionBackend, HostTensor, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { idsTensor, StageStepper } from '../../shards/runtime/stage-stepper.ts';

export interface WarmUpOptions {
  /** prompt length of the warm-up prefill (default 64) */
  prefillTokens?: number;
  /** decode steps after it (default 24) */
  decodeSteps?: number;
  /** sequences run (default 2) */
  sequences?: number;
  /** warm the embedding's path too (the first stage's; default false) */
  embeds?: boolean;
  /** warm the head's path too: final norm, head MatMul, sampling (the last stage's; default false) */
  hasHead?: boolean;
  /** vocabulary rows of the warm-up's embedding and head (default WARM_UP_VOCAB) */
  vocabRows?: number;
  /** decoder layers of the warm-up's graph (default: as many as WARM_UP_LAYER_BYTES holds, 1 to WARM_UP_MAX_LAYERS) */
  layers?: number;
  /** sessions created (default WARM_UP_CREATIONS): all but the last are released at once, the last runs */
  creations?: number;
}

/** Vocabulary rows of the warm-up's embedding and head: enough for the head's MatMul to take its wide path. */
export const WARM_UP_VOCAB = 1024;

/** Zero-weight bytes of the warm-up's layers: it holds this much (and ORT's copies) for a moment at join. */
export const WARM_UP_LAYER_BYTES = 16 * 1024 * 1024;
/** The most layers a warm-up runs: the tier-up it pays barely grew from four layers to eight (Node). */
export const WARM_UP_MAX_LAYERS = 4;

/** Layers of the default warm-up: as many of `layerBytes` each as WARM_UP_LAYER_BYTES holds, within 1..max. */
export function warmUpLayerCount(layerBytes: number, modelLayers: number): number {
  const fit = Math.floor(WARM_UP_LAYER_BYTES / Math.max(1, layerBytes));
  return Math.max(1, Math.min(fit, WARM_UP_MAX_LAYERS, modelLayers));
}

/** Sessions a warm-up creates: see the file's comment (why creation is repeated). */
export const WARM_UP_CREATIONS = 12;

export interface WarmUpResult {
  backend: ExecutionBackend;
  seconds: number;
  /** session runs done: sequences x (1 prefill + decodeSteps) */
  runs: number;
}

export async function warmUpStageKernels(
  runtime: StageRuntime,
  manifest: ModelManifest,
  backend: ExecutionBackend,
  opts: WarmUpOptions = {},
): Promise<WarmUpResult> {
  const S = opts.prefillTokens ?? 64;
  const steps = opts.decodeSteps ?? 24;
  const sequences = opts.sequences ?? 2;
  const t0 = performance.now();
  const layer = manifest.units.find((u) => u.id === 'layer.0');
  if (!layer)
    throw new TandemError('manifest-invalid', `Package '${manifest.name}' has no unit 'layer.0'; re-convert it.`);
  const maxPositions = S + steps;
  const graphOpts = { backend, maxPositions } as const;
  const embeds = opts.embeds ?? false;
  const hasHead = opts.hasHead ?? false;
  const modelLayers = manifest.config.num_hidden_layers;
  const layerCount = Math.max(1, Math.min(opts.layers ?? warmUpLayerCount(layer.bytes, modelLayers), modelLayers));
  const spec = { layers: { start: 0, end: layerCount }, embeds, hasHead };
  const model =
    embeds || hasHead
      ? narrowVocabulary(manifest, Math.min(opts.vocabRows ?? WARM_UP_VOCAB, manifest.config.vocab_size))
      : manifest;
  const units = unitsForRange(model, spec.layers, embeds, hasHead);
  const create = () =>
    runtime.createSession({
      model: { kind: 'stage-graph', manifest: model, spec, options: graphOpts }, // built in the worker, off the main thread
      externalData: units.map((u) => ({ path: u.file, data: new Uint8Array(u.bytes) })),
      config: stageSessionConfig(manifest, graphOpts),
      backend,
      handOver: true,
      kvCache: {
        layers: Array.from({ length: layerCount }, (_, i) => i),
        heads: manifest.config.num_key_value_heads,
        headDim: headDim(manifest.config),
      },
    });
  for (let c = 1; c < (opts.creations ?? WARM_UP_CREATIONS); c++) await (await create()).release();
  const session = await create();
  const H = manifest.config.hidden_size;
  let runs = 0;
  try {
    for (let q = 0; q < sequences; q++) {
      const stepper = new StageStepper(session, spec); // a new sequence: the KV cache starts empty
      for (let n = 0; n <= steps; n++) {
        const seq = n === 0 ? S : 1;
        const input: HostTensor = embeds
          ? idsTensor(Array.from({ length: seq }, (_, j) => (n + j) % model.config.vocab_size))
          : { dtype: 'float32', dims: [1, seq, H], data: new Float32Array(seq * H).fill(0.5) };
        if (hasHead) await stepper.stepHead(input, { sampling: { temperature: 0 }, index: n });
        else await stepper.step(input);
        runs++;
      }
    }
  } finally {
    await session.release();
  }
  return { backend, seconds: (performance.now() - t0) / 1000, runs };
}

/**
 * Creates the assigned stage's own session once from zero weights (no storage read) and releases it: done
 * at the assignment, before the request, so that the request's creation is not the page's first of that
 * graph and size. A page's first creation of a size grows its wasm memory (fresh pages the kernel zeroes)
 * and runs ORT's creation code on sizes it has not tiered up: in Node in a 0.4-core control group the
 * realistic preset's last stage (4 layers + head, 33 MB) created in 641 ms the first time (10,400 page
 * faults) and in 171-221 ms every time after. Resolves with the seconds it took.
 */
export async function rehearseStageCreation(
  runtime: StageRuntime,
  manifest: ModelManifest,
  backend: ExecutionBackend,
  spec: StageSpec,
): Promise<number> {
  const t0 = performance.now();
  const graphOpts = { backend, maxPositions: stageMaxPositions(manifest) } as const;
  const units = unitsForRange(manifest, spec.layers, spec.embeds, spec.hasHead);
  const session = await runtime.createSession({
    model: { kind: 'stage-graph', manifest, spec, options: graphOpts },
    externalData: units.map((u) => ({ path: u.file, data: new Uint8Array(u.bytes) })),
    config: stageSessionConfig(manifest, graphOpts),
    backend,
    handOver: true,
    kvCache: {
      layers: Array.from({ length: spec.layers.end - spec.layers.start }, (_, i) => spec.layers.start + i),
      heads: manifest.config.num_key_value_heads,
      headDim: headDim(manifest.config),
    },
  });
  await session.release();
  return (performance.now() - t0) / 1000;
}
