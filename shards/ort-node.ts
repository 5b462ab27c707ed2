/**
 * ONNX Runtime in Node, behind one small interface, for the pipeline runner, tests and benchmarks:
 *   'node' = onnxruntime-node (native CPU EP)   'wasm' = onnxruntime-web on its wasm backend, in Node.
 * This is the only shards file that imports onnxruntime-node (and the only Node-side user of
 * onnxruntime-web). Tensors cross the interface as plain typed arrays so callers never mix the two
 * packages' Tensor classes.
 *
 * onnxruntime-node cannot take external data as buffers: the model is written to a temporary folder
 * next to hard links (or copies) of the unit files and loaded from there; the folder is removed afterwards.
 */
import { copyFileSync, linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { TandemError } from '../core/errors.ts';
import { toOrtExtra } from './stage-graph.ts';

export type NodeBackend = 'node' | 'wasm';

export type HostTensor =
  | { dtype: 'float32'; dims: number[]; data: Float32Array }
  | { dtype: 'int64'; dims: number[]; data: BigInt64Array }
  | { dtype: 'int32'; dims: number[]; data: Int32Array };

/** An external data file: bytes in memory, or a path on disk. `path` == the TensorProto location. */
export interface ExternalFile {
  path: string;
  data: Uint8Array | { file: string };
}

export interface SessionSpec {
  model: Uint8Array;
  externalData: ExternalFile[];
  /** session config entries, e.g. { 'session.disable_quant_qdq': '1' } */
  config?: Record<string, string>;
  /** intra-op threads (default 1: the machines this runs on are shared) */
  threads?: number;
}

export interface StageSession {
  readonly backend: NodeBackend;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

interface OrtTensorLike {
  type: string;
  dims: readonly number[];
  data: unknown;
}

function toHost(name: string, t: OrtTensorLike): HostTensor {
  const dims = [...t.dims];
  if (t.type === 'float32' && t.data instanceof Float32Array) return { dtype: 'float32', dims, data: t.data };
  if (t.type === 'int64' && t.data instanceof BigInt64Array) return { dtype: 'int64', dims, data: t.data };
  if (t.type === 'int32' && t.data instanceof Int32Array) return { dtype: 'int32', dims, data: t.data };
  throw new TandemError(
    'ort-output-type',
    `Output '${name}' has type ${t.type}; only float32, int64 and int32 outputs are supported.`,
  );
}

function sessionError(backend: NodeBackend, cause: unknown): TandemError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new TandemError('session-create-failed', `Could not create the ${backend} ONNX Runtime session: ${detail}`, {
    cause,
  });
}

/** The parts of an onnxruntime-node or onnxruntime-web session this module uses (both share onnxruntime-common's shape). */
interface OrtSessionLike<T> {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, T>): Promise<Record<string, unknown>>;
  release(): Promise<void>;
}

/** Wraps either package's session; `toOrt` builds that package's own Tensor (the two classes do not mix). */
function asStageSession<T>(
  backend: NodeBackend,
  session: OrtSessionLike<T>,
  toOrt: (t: HostTensor) => T,
): StageSession {
  return {
    backend,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const ortFeeds: Record<string, T> = {};
      for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrt(t);
      const out = await session.run(ortFeeds);
      const res: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries(out)) res[k] = toHost(k, t as OrtTensorLike);
      return res;
    },
    release: () => session.release(),
  };
}

/** A hard link (ORT rejects symlinks that resolve outside the model folder), or a copy across file systems. */
function linkOrCopy(source: string, target: string): void {
  try {
    linkSync(source, target);
  } catch {
    copyFileSync(source, target);
  }
}

async function createNodeSession(spec: SessionSpec): Promise<StageSession> {
  const ort = await import('onnxruntime-node');
  const dir = mkdtempSync(join(tmpdir(), 'tandem-stage-'));
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    for (const f of spec.externalData) {
      if (f.path.includes('/') || f.path.includes('\\'))
        throw new TandemError('external-path-invalid', `External data path '${f.path}' must be a plain file name.`);
      const target = join(dir, f.path);
      if (f.data instanceof Uint8Array) writeFileSync(target, f.data);
      else linkOrCopy(isAbsolute(f.data.file) ? f.data.file : resolve(f.data.file), target);
    }
    const modelPath = join(dir, 'stage.onnx');
    writeFileSync(modelPath, spec.model);
    session = await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: spec.threads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      extra: toOrtExtra(spec.config ?? {}),
    });
  } catch (e) {
    throw e instanceof TandemError ? e : sessionError('node', e);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return asStageSession('node', session, (t) => new ort.Tensor(t.dtype, t.data, t.dims));
}

async function createWasmSession(spec: SessionSpec): Promise<StageSession> {
  const ort = await import('onnxruntime-web');
  const { readFile } = await import('node:fs/promises');
  ort.env.wasm.numThreads = spec.threads ?? 1;
  const externalData = await Promise.all(
    spec.externalData.map(async (f) => ({
      path: f.path,
      data: f.data instanceof Uint8Array ? f.data : new Uint8Array(await readFile(f.data.file)),
    })),
  );
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(spec.model, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
      externalData,
      extra: toOrtExtra(spec.config ?? {}),
    });
  } catch (e) {
    throw sessionError('wasm', e);
  }
  return asStageSession('wasm', session, (t) => new ort.Tensor(t.dtype, t.data, t.dims));
}

/** Creates a session on the chosen Node-hosted backend. */
export function createStageSession(backend: NodeBackend, spec: SessionSpec): Promise<StageSession> {
  switch (backend) {
    case 'node':
      return createNodeSession(spec);
    case 'wasm':
      return createWasmSession(spec);
  }
}
