/**
 * The whole model (embedding, every layer, final norm + head) as ONE self-contained ONNX model in the
 * layout transformers.js loads (`onnx/model.onnx`, optionally `onnx/model.onnx_data`), built from the
 * package's unit blobs. It is the one-stage stage graph (logits for every position, (B, S, V), as
 * transformers.js expects) with its tensors moved out of the unit files:
 * inline (raw_data) when small, or packed into a single external data file. Pure: bytes in, bytes out.
 */
import { TandemError } from '../core/errors.ts';
import type { ModelManifest, UnitEntry } from './manifest.ts';
import { encodeModel, type TensorDef } from './onnx/model.ts';
import { buildStageModelDef, type StageGraphOptions } from './stage-graph.ts';

/** Name transformers.js expects next to onnx/model.onnx for `use_external_data_format: true`. */
export const FULL_MODEL_DATA_FILE = 'model.onnx_data';
/** A protobuf message cannot exceed 2 GiB; inline weights only well below that. */
export const INLINE_LIMIT_BYTES = 1.5 * 2 ** 30;
const DATA_ALIGNMENT = 4096;

export interface FullModel {
  model: Uint8Array;
  /** chunks of onnx/model.onnx_data in order (empty when the weights are inline) */
  dataChunks: Uint8Array[];
  dataBytes: number;
  inputNames: string[];
  outputNames: string[];
}

export interface FullModelOptions extends StageGraphOptions {
  /** 'inline' | 'external' | 'auto' (default: inline below INLINE_LIMIT_BYTES) */
  weights?: 'inline' | 'external' | 'auto';
}

/** Builds the full model; `unitBytes` returns a unit's verified bytes. */
export function buildFullModel(
  manifest: ModelManifest,
  unitBytes: (unit: UnitEntry) => Uint8Array,
  opts: FullModelOptions = {},
): FullModel {
  const L = manifest.config.num_hidden_layers;
  const { def, units, inputNames, outputNames } = buildStageModelDef(
    manifest,
    { layers: { start: 0, end: L }, embeds: true, hasHead: true },
    { ...opts, logits: 'all' },
  );
  const byFile = new Map(units.map((u) => [u.file, u]));
  const externalBytes = def.graph.initializers.reduce((s, t) => s + (t.external?.length ?? 0), 0);
  const mode = opts.weights ?? 'auto';
  const inline = mode === 'inline' || (mode === 'auto' && externalBytes < INLINE_LIMIT_BYTES);
  if (inline && externalBytes >= 2 ** 31 - 2 ** 24) {
    throw new TandemError(
      'export-too-large',
      `The weights (${externalBytes} bytes) do not fit inside one ONNX protobuf; export with external data.`,
    );
  }

  const dataChunks: Uint8Array[] = [];
  let dataBytes = 0;
  const relocate = (t: TensorDef): TensorDef => {
    if (!t.external) return t;
    const unit = byFile.get(t.external.location);
    if (!unit)
      throw new TandemError(
        'export-invalid',
        `Tensor ${t.name} points at '${t.external.location}', which is not a unit of this stage.`,
      );
    const blob = unitBytes(unit);
    const bytes = blob.subarray(t.external.offset, t.external.offset + t.external.length);
    if (bytes.byteLength !== t.external.length)
      throw new TandemError(
        'shard-truncated',
        `Unit '${unit.id}' is shorter than its manifest says; re-convert the package.`,
      );
    if (inline) return { name: t.name, dataType: t.dataType, dims: t.dims, raw: bytes };
    const pad = (DATA_ALIGNMENT - (dataBytes % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
    if (pad) dataChunks.push(new Uint8Array(pad));
    const offset = dataBytes + pad;
    dataChunks.push(bytes);
    dataBytes = offset + bytes.byteLength;
    return {
      name: t.name,
      dataType: t.dataType,
      dims: t.dims,
      external: { location: FULL_MODEL_DATA_FILE, offset, length: bytes.byteLength },
    };
  };
  const graph = { ...def.graph, initializers: def.graph.initializers.map(relocate) };
  const model = encodeModel({ ...def, graph, metadata: { ...def.metadata, 'tandem.stage': 'full' } });
  return { model, dataChunks, dataBytes, inputNames, outputNames };
}
