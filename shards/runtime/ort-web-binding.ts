/**
 * onnxruntime-web as an OrtBinding (ort-session.ts), for any of its builds: the page's
 * 'onnxruntime-web/webgpu' (client/runtime/ort-web.ts) and the Node build (ort-node.ts, backend 'wasm').
 * The module is passed in, so this file imports no build itself: the page must load exactly one.
 */
import type * as OrtWeb from 'onnxruntime-web';
import type { OrtBinding } from './ort-session.ts';

export type OrtWebModule = typeof OrtWeb;
type OrtWebTensor = InstanceType<OrtWebModule['Tensor']>;

export function ortWebBinding(ort: OrtWebModule, opts: { gpuResidentKv: boolean }): OrtBinding<OrtWebTensor> {
  return {
    tensor: (t) => new ort.Tensor(t.dtype, t.data, t.dims),
    open: async (req, options) =>
      await ort.InferenceSession.create(req.model, {
        ...options,
        executionProviders: [req.backend],
        externalData: req.externalData.map((e) => ({ path: e.path, data: e.data })),
      }),
    gpuResidentKv: opts.gpuResidentKv,
  };
}
