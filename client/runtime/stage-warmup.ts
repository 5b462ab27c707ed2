/**
 * The warm-up a page runs when it gets an assignment, before any request: one decoder layer of the
 * package's own shape (real graph from shards/stage-graph.ts, zero weights of the layer unit's size),
 * with the embedding and the head where the assignment has them, through a prefill and a run of decode
 * steps, twice. It pays the one-off costs of BOTH paths — wasm compile and V8's tier-up of the prefill
 * and decode kernels (GroupQueryAttention, the norms, RoPE, MatMul at M = S and M = 1, the embedding's
 * Gather, the head and its sampling), WebGPU shader compilation — so the first measured request measures
 * the request. A prefill-only warm-up left the first request's decode ~2x slower than the second's; one
 * without the head and embedding left the first request of a one-page plan ~3 s of CPU of wasm lazy
 * compile and TurboFan tier-up (a Chrome trace, realistic preset), taken from the device's own compute.
 * The embedding and head run on a narrowed vocabulary (shards/narrow-vocabulary.ts): the same kernels,
 * kilobytes of zero weights instead of the full tables.
 */
import { TandemError } from '../../core/errors.ts';
import { headDim, unitsForRange, type ModelManifest } from '../../shards/manifest.ts';
import { narrowVocabulary } from '../../shards/narrow-vocabulary.ts';
import { stageSessionConfig } from '../../shards/stage-graph.ts';
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
}

/** Vocabulary rows of the warm-up's embedding and head: enough for the head's MatMul to take its wide path. */
export const WARM_UP_VOCAB = 1024;

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
  const spec = { layers: { start: 0, end: 1 }, embeds, hasHead };
  const model =
    embeds || hasHead
      ? narrowVocabulary(manifest, Math.min(opts.vocabRows ?? WARM_UP_VOCAB, manifest.config.vocab_size))
      : manifest;
  const units = unitsForRange(model, spec.layers, embeds, hasHead);
  const session = await runtime.createSession({
    model: { kind: 'stage-graph', manifest: model, spec, options: graphOpts }, // built in the worker, off the main thread
    externalData: units.map((u) => ({ path: u.file, data: new Uint8Array(u.bytes) })),
    config: stageSessionConfig(manifest, graphOpts),
    backend,
    handOver: true,
    kvCache: { layers: [0], heads: manifest.config.num_key_value_heads, headDim: headDim(manifest.config) },
  });
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
