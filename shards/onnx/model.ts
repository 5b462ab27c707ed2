/**
 * ONNX message types (the subset Tandem emits) and their serialisation to ModelProto bytes.
 * Field numbers follow onnx/onnx.proto (IR version 10). Pure: no Node or DOM APIs.
 */
import { ProtoWriter } from './protobuf.ts';

/** TensorProto.DataType values. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT4: 21,
  INT4: 22,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** A tensor whose bytes live in a separate file (TensorProto.data_location = EXTERNAL). */
export interface ExternalRef {
  location: string;
  offset: number; // bytes into the file
  length: number; // bytes
}

export interface TensorDef {
  name: string;
  dataType: DataTypeCode;
  dims: number[];
  /** Exactly one of: little-endian raw bytes inside the model, or an external-data reference. */
  raw?: Uint8Array;
  external?: ExternalRef;
}

/** A dimension: a fixed size or a symbolic name (e.g. 'batch', 'sequence'). */
export type Dim = number | string;

export interface ValueInfoDef {
  name: string;
  elemType: DataTypeCode;
  shape: Dim[];
}

export type AttributeValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorDef }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: number[] };

export interface NodeDef {
  opType: string;
  domain?: string; // '' = ai.onnx, 'com.microsoft' = contrib ops
  name: string;
  inputs: string[]; // '' marks an omitted optional input
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: TensorDef[];
  inputs: ValueInfoDef[];
  outputs: ValueInfoDef[];
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface ModelDef {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  graph: GraphDef;
  metadata?: Record<string, string>;
}

/** AttributeProto.AttributeType values. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export function encodeTensor(t: TensorDef): Uint8Array {
  if ((t.raw === undefined) === (t.external === undefined)) {
    throw new Error(`tensor ${t.name}: give exactly one of raw bytes or an external reference`);
  }
  const w = new ProtoWriter();
  w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.raw !== undefined) w.bytes(9, t.raw);
  if (t.external !== undefined) {
    const entries: [string, string][] = [
      ['location', t.external.location],
      ['offset', String(t.external.offset)],
      ['length', String(t.external.length)],
    ];
    for (const [key, value] of entries) w.message(13, new ProtoWriter().string(1, key).string(2, value).finish());
    w.int(14, 1); // DataLocation.EXTERNAL
  }
  return w.finish();
}

function encodeValueInfo(v: ValueInfoDef): Uint8Array {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim.finish());
  }
  const tensorType = new ProtoWriter().int(1, v.elemType).message(2, shape.finish()).finish();
  const type = new ProtoWriter().message(1, tensorType).finish();
  return new ProtoWriter().string(1, v.name).message(2, type).finish();
}

function encodeAttribute(name: string, a: AttributeValue): Uint8Array {
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value).int(20, AttrType.FLOAT);
      break;
    case 'int':
      w.int(3, a.value).int(20, AttrType.INT);
      break;
    case 'string':
      w.string(4, a.value).int(20, AttrType.STRING);
      break;
    case 'tensor':
      w.message(5, encodeTensor(a.value)).int(20, AttrType.TENSOR);
      break;
    case 'floats':
      w.packedFloats(7, a.value).int(20, AttrType.FLOATS);
      break;
    case 'ints':
      w.packedInts(8, a.value).int(20, AttrType.INTS);
      break;
  }
  return w.finish();
}

function encodeNode(n: NodeDef): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, a] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, a));
  if (n.domain) w.string(7, n.domain);
  return w.finish();
}

function encodeGraph(g: GraphDef): Uint8Array {
  const w = new ProtoWriter(1 << 16);
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  return w.finish();
}

/** Serialises a model to ModelProto bytes, ready for InferenceSession.create. */
export function encodeModel(m: ModelDef): Uint8Array {
  const w = new ProtoWriter(1 << 16);
  w.int(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  w.message(7, encodeGraph(m.graph));
  for (const op of m.opsetImports) {
    const o = new ProtoWriter();
    if (op.domain) o.string(1, op.domain);
    o.int(2, op.version);
    w.message(8, o.finish());
  }
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    w.message(14, new ProtoWriter().string(1, key).string(2, value).finish());
  }
  return w.finish();
}
