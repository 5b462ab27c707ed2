/**
 * One ONNX Runtime session behind the StageSession seam, for either package: onnxruntime-node and
 * onnxruntime-web share onnxruntime-common's session and tensor shapes, so only opening a session and
 * building a Tensor differ (each runtime passes an OrtBinding: ort-node.ts, client/runtime/ort-web.ts).
 * Here, once: HostTensor <-> that package's Tensor, the resident KV cache (kv-cache.ts), and the error a
 * failed session creation becomes.
 */
import { TandemError } from '../../core/errors.ts';
import { HIDDEN_INPUT, HIDDEN_OUTPUT, toOrtExtra, type StageSpec } from '../stage-graph.ts';
import { sampleHead } from './head-sampling.ts';
import { ResidentKvCache } from './kv-cache.ts';
import { isOpfsUnit, opfsRoot } from './opfs-file.ts';
import { threadReadHandles } from './opfs-read-handles.ts';
import type { HostTensor, RunOptions, RunTiming, SessionRequest, StageBackend, StageSession } from './stage-runtime.ts';
import { readUnitsInOrder, type MaterialiseOptions } from './unit-data.ts';
import { prebuildStageGraph, stageModelBytes, stagePartModel, type StageGraphRecipe } from './stage-graph-recipe.ts';
import { stageLoadParts } from './stage-parts.ts';

/** The parts of an ORT Tensor (onnxruntime-common's) this module reads. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly location: string;
  dispose(): void;
}

/** The parts of an ORT InferenceSession this module uses. */
export interface OrtSessionLike<T> {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, T>): Promise<Record<string, T>>;
  release(): Promise<void>;
}

/** A session request whose unit data is all in memory (stored units read). */
export type BytesSessionRequest = Omit<SessionRequest, 'externalData' | 'model'> & {
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
};

/** Session options every runtime passes on to its package's InferenceSession.create. */
export interface OrtOpenOptions {
  graphOptimizationLevel: 'all';
  extra: { session: Record<string, string> };
  /** Outputs to keep where they were computed ('gpu-buffer' on WebGPU: the KV cache's presents). */
  preferredOutputLocation?: Record<string, 'gpu-buffer'>;
}

/** How one package opens a session and builds its own Tensor (the packages' Tensor classes do not mix). */
export interface OrtBinding<T extends OrtTensorLike> {
  tensor(t: HostTensor): T;
  open(req: BytesSessionRequest, options: OrtOpenOptions): Promise<OrtSessionLike<T>>;
  /** The KV cache stays on the GPU between runs (WebGPU). */
  gpuResidentKv?: boolean;
}

function toHost(name: string, t: OrtTensorLike): HostTensor {
  const dims = [...t.dims];
  if (t.type === 'float32' && t.data instanceof Float32Array) return { dtype: 'float32', dims, data: t.data };
  if (t.type === 'int64' && t.data instanceof BigInt64Array) return { dtype: 'int64', dims, data: t.data };
  if (t.type === 'int32' && t.data instanceof Int32Array) return { dtype: 'int32', dims, data: t.data };
  throw new TandemError(
    'ort-output-type',
    `Output '${name}' has type ${t.type}; a stage only returns float32, int64 or int32 tensors.`,
  );
}

const CREATE_HINT: Record<StageBackend, string> = {
  webgpu:
    ' If this device is short of GPU memory, ask the host to re-plan with fewer layers here, or reload with ?backend=wasm.',
  wasm: " The stage may not fit in this page's memory: ask the host to re-plan with fewer layers here.",
  node: ' The stage may not fit in memory: give it fewer layers (--split).',
};

/** One ORT session of a stage (the whole stage, or one of its parts: stage-parts.ts) with its KV cache. */
interface OpenPart<T extends OrtTensorLike> {
  session: OrtSessionLike<T>;
  kv: ResidentKvCache<T> | null;
}

/** What each part of a request is: its graph (bytes, or a spec built from the request's recipe) and its layers. */
interface PartPlan {
  /** the request's own model (one part), or a part's spec, built from the request's recipe */
  model: Uint8Array | StageGraphRecipe | StageSpec;
  /** the part's KV layers (global indices): the request's that lie in the part's range */
  kvLayers: number[];
}

function partPlans(request: SessionRequest): PartPlan[] {
  const { model, loadParts, kvCache } = request;
  if (model instanceof Uint8Array || !loadParts) return [{ model, kvLayers: kvCache?.layers ?? [] }];
  return stageLoadParts(model.manifest, model.spec, loadParts).map((spec) => ({
    model: spec,
    kvLayers: (kvCache?.layers ?? []).filter((l) => l >= spec.layers.start && l < spec.layers.end),
  }));
}

/** StageRuntime.prepareSession for the ONNX Runtime runtimes: a recipe's graph (and parts) built now. */
export function prepareOrtStageSession(req: Pick<SessionRequest, 'model' | 'loadParts'>): void {
  if (req.model instanceof Uint8Array) return;
  const parts = req.loadParts ? stageLoadParts(req.model.manifest, req.model.spec, req.loadParts) : [];
  prebuildStageGraph(req.model, parts);
}

/** `openAhead`: the request's stored OPFS units opened on this thread before its reads are timed. */
async function openAhead(externalData: SessionRequest['externalData']): Promise<{ release: () => void } | null> {
  const root = opfsRoot();
  const files = externalData.map((e) => e.data).filter(isOpfsUnit);
  return root && files.length ? threadReadHandles.keep(root, files) : null;
}

/**
 * Opens a session through `binding` and wraps it as a StageSession. With `request.loadParts` the stage is
 * opened in parts (stage-parts.ts): each part's session is created as soon as its units are read, while
 * the next parts' units are still being read (with `reads.readOne` on another thread, the reads and the
 * creations overlap); a step then runs the parts in order, each part's hidden states fed to the next.
 */
export async function openOrtStageSession<T extends OrtTensorLike>(
  binding: OrtBinding<T>,
  request: SessionRequest,
  reads: Pick<MaterialiseOptions, 'readOne'> = {},
): Promise<StageSession> {
  const opened = request.openAhead ? await openAhead(request.externalData) : null;
  // the stored units' reads start first; the graphs are built while they are in flight
  const unitReads = readUnitsInOrder(request.externalData, request.readCapBytesPerSec, reads);
  const unitFiles = request.externalData.map((e) => e.path);
  const plans = partPlans(request);
  const parts: OpenPart<T>[] = [];
  try {
    for (const [k, plan] of plans.entries()) {
      const { model, files } =
        plan.model instanceof Uint8Array || 'kind' in plan.model
          ? { model: stageModelBytes(plan.model, unitFiles), files: unitFiles }
          : stagePartModel(request.model as StageGraphRecipe, plan.model, unitFiles);
      const externalData = await Promise.all(files.map(async (path) => ({ path, data: await unitReads.bytes(path) })));
      parts.push(await openPart(binding, { ...request, model, externalData }, plan, k < plans.length - 1));
      // the session holds its own copy: the part's bytes may go while the next parts are created
      if (k < plans.length - 1) for (const path of files) unitReads.release(path);
    }
  } catch (err) {
    opened?.release();
    await Promise.all(parts.map((p) => releasePart(p)));
    throw err;
  }
  const readSeconds = await unitReads.seconds;
  opened?.release();
  const last = parts.length - 1;
  const firstInputs = parts[0].session.inputNames;
  const inputNames = [
    ...new Set([
      ...firstInputs,
      ...parts.slice(1).flatMap((p) => p.session.inputNames.filter((n) => n !== HIDDEN_INPUT)),
    ]),
  ];
  // as one session's: the stage's main output, then the presents, layer by layer
  const outputs = parts.flatMap((p, k) => p.session.outputNames.filter((n) => k === last || n !== HIDDEN_OUTPUT));
  const isPresent = (n: string) => n.startsWith('present.');
  const outputNames = [...outputs.filter((n) => !isPresent(n)), ...outputs.filter(isPresent)];
  let lastRun: RunTiming | undefined;
  return {
    backend: request.backend,
    inputNames,
    outputNames,
    readSeconds,
    parts: parts.length,
    get lastRun() {
      return lastRun;
    },
    async run(feeds, options: RunOptions = {}) {
      const startMs = performance.now();
      const res: Record<string, HostTensor> = {};
      let carried: T | null = null; // the hidden states one part hands the next
      for (const [k, part] of parts.entries()) {
        if (part.kv && options.newSequence) part.kv.reset();
        const ortFeeds: Record<string, T> = part.kv ? part.kv.feeds() : {};
        for (const name of part.session.inputNames) {
          if (name in ortFeeds) continue;
          if (k > 0 && name === HIDDEN_INPUT && carried) ortFeeds[name] = carried;
          else if (name in feeds) ortFeeds[name] = binding.tensor(feeds[name]);
        }
        let raw: Record<string, T>;
        try {
          raw = await part.session.run(ortFeeds);
        } finally {
          if (carried?.location === 'gpu-buffer') carried.dispose(); // read by this run, or lost with it
        }
        const out = part.kv ? part.kv.update(raw) : raw;
        carried = null;
        for (const [name, t] of Object.entries(out)) {
          if (k < last && name === HIDDEN_OUTPUT) carried = t;
          else res[name] = toHost(name, t);
        }
      }
      // the head's sampling counts in the run's compute span: it is the head's last step
      const sampled = options.sample ? sampleHead(res, options.sample) : res;
      lastRun = { startMs, endMs: performance.now() };
      return sampled;
    },
    async release() {
      await Promise.all(parts.map((p) => releasePart(p)));
    },
  };
}

async function openPart<T extends OrtTensorLike>(
  binding: OrtBinding<T>,
  req: BytesSessionRequest,
  plan: PartPlan,
  handsOn: boolean,
): Promise<OpenPart<T>> {
  const kv = req.kvCache
    ? new ResidentKvCache<T>(
        { ...req.kvCache, layers: plan.kvLayers },
        {
          empty: (dims) => binding.tensor({ dtype: 'float32', dims, data: new Float32Array(0) }),
          dispose: (t) => {
            if (t.location === 'gpu-buffer') t.dispose();
          },
        },
      )
    : null;
  // WebGPU: presents stay GPU buffers and come back as the next step's past (no read-back per step), and
  // a part's hidden states stay on the GPU for the next part
  const kept = binding.gpuResidentKv
    ? [...(kv ? kv.presentToPast.keys() : []), ...(handsOn ? [HIDDEN_OUTPUT] : [])]
    : [];
  try {
    const session = await binding.open(req, {
      graphOptimizationLevel: 'all',
      extra: toOrtExtra(req.config),
      ...(kept.length > 0
        ? { preferredOutputLocation: Object.fromEntries(kept.map((n) => [n, 'gpu-buffer' as const])) }
        : {}),
    });
    return { session, kv };
  } catch (err) {
    if (err instanceof TandemError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new TandemError(
      'session-create-failed',
      `Could not create the ${req.backend} ONNX Runtime session: ${detail}.${CREATE_HINT[req.backend]}`,
      { cause: err },
    );
  }
}

async function releasePart<T extends OrtTensorLike>(part: OpenPart<T>): Promise<void> {
  part.kv?.disposeAll();
  await part.session.release();
}
