/**
 * StageRuntimes for Node (the generate CLI, tests, benchmarks), both through ort-session.ts:
 *   'node' = onnxruntime-node (native CPU EP)   'wasm' = onnxruntime-web's Node build (the page's wasm kernels).
 * The only shards file that imports onnxruntime-node (and the only Node-side user of onnxruntime-web).
 *
 * onnxruntime-node cannot take external data as buffers: the model is written to a temporary folder
 * next to the unit files and loaded from there; the folder is removed once the session is created.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TandemError } from '../../core/errors.ts';
import { openOrtStageSession, prepareOrtStageSession } from './ort-session.ts';
import { ortWebBinding } from './ort-web-binding.ts';
import type { SessionRequest, StageRuntime, StageSession } from './stage-runtime.ts';

export type NodeBackend = 'node' | 'wasm';

export interface NodeRuntimeOptions {
  /** intra-op threads (default 1: the machines this runs on are shared) */
  threads?: number;
}

/** A StageRuntime on a Node-hosted backend; its sessions must be requested with that same backend. */
export function createNodeRuntime(backend: NodeBackend, opts: NodeRuntimeOptions = {}): StageRuntime {
  const threads = opts.threads ?? 1;
  return {
    async createSession(req: SessionRequest) {
      if (req.backend !== backend)
        throw new TandemError(
          'backend-mismatch',
          `A ${backend} runtime cannot open a ${req.backend} session; create the runtime for '${req.backend}'.`,
        );
      return backend === 'node' ? openNodeSession(req, threads) : openWasmSession(req, threads);
    },
    prepareSession: prepareOrtStageSession,
  };
}

async function openNodeSession(req: SessionRequest, threads: number) {
  const ort = await import('onnxruntime-node');
  return openOrtStageSession(
    {
      tensor: (t) => new ort.Tensor(t.dtype, t.data, t.dims),
      open: async (r, options) => {
        const dir = mkdtempSync(join(tmpdir(), 'tandem-stage-'));
        try {
          for (const f of r.externalData) {
            if (f.path.includes('/') || f.path.includes('\\'))
              throw new TandemError(
                'external-path-invalid',
                `External data path '${f.path}' must be a plain file name.`,
              );
            writeFileSync(join(dir, f.path), f.data);
          }
          const modelPath = join(dir, 'stage.onnx');
          writeFileSync(modelPath, r.model);
          const session = await ort.InferenceSession.create(modelPath, {
            ...options,
            executionProviders: ['cpu'],
            intraOpNumThreads: threads,
            interOpNumThreads: 1,
          });
          return session;
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    req,
  );
}

async function openWasmSession(req: SessionRequest, threads: number) {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  return openOrtStageSession(ortWebBinding(ort, { gpuResidentKv: false }), req);
}

/** One session on a Node backend, for benchmarks and graph tests (config defaults to none). */
export function createStageSession(
  backend: NodeBackend,
  req: Omit<SessionRequest, 'backend' | 'config'> & { config?: Record<string, string> },
  opts: NodeRuntimeOptions = {},
): Promise<StageSession> {
  return createNodeRuntime(backend, opts).createSession({ ...req, config: req.config ?? {}, backend });
}
