/**
 * A small helper for assembling ONNX graphs node by node with unique names. Pure.
 */
import type { AttributeValue, DataTypeCode, GraphDef, NodeDef, TensorDef, ValueInfoDef } from './model.ts';
import { DataType } from './model.ts';

export type Attrs = Record<string, number | string | number[] | { floats: number[] } | { float: number }>;

/** Integers become INT attributes, `{ float: x }` FLOAT, strings STRING, integer arrays INTS. */
function toAttribute(v: Attrs[string]): AttributeValue {
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute value ${v}: wrap non-integers as { float: x }`);
    return { kind: 'int', value: v };
  }
  if (Array.isArray(v)) return { kind: 'ints', value: v };
  if ('float' in v) return { kind: 'float', value: v.float };
  return { kind: 'floats', value: v.floats };
}

export function float32Raw(values: Float32Array | readonly number[]): Uint8Array {
  const f = values instanceof Float32Array ? values : Float32Array.from(values);
  const out = new Uint8Array(f.length * 4);
  const view = new DataView(out.buffer);
  f.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

export function int64Raw(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return out;
}

export function int32Raw(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setInt32(i * 4, v, true));
  return out;
}

export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly initializers: TensorDef[] = [];
  readonly inputs: ValueInfoDef[] = [];
  readonly outputs: ValueInfoDef[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();

  /** A fresh value/node name starting with `base`. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  input(name: string, elemType: DataTypeCode, shape: (number | string)[]): string {
    this.used.add(name);
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  output(name: string, elemType: DataTypeCode, shape: (number | string)[]): void {
    this.outputs.push({ name, elemType, shape });
  }

  initializer(t: TensorDef): string {
    if (this.used.has(t.name)) throw new Error(`duplicate graph value name ${t.name}`);
    this.used.add(t.name);
    this.initializers.push(t);
    return t.name;
  }

  /** An int64 constant initializer (shared between uses with equal values). */
  int64(values: readonly number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const cached = this.constCache.get(key);
    if (cached !== undefined) return cached;
    const name = this.unique(`const_i64_${values.join('_').replace(/-/g, 'm').slice(0, 40)}`);
    this.initializers.push({ name, dataType: DataType.INT64, dims, raw: int64Raw(values) });
    this.constCache.set(key, name);
    return name;
  }

  /**
   * Adds a node; returns its output names. `outputs` is a count of fresh outputs named after `name`, or
   * explicit names (use '' to skip an optional output).
   */
  node(
    opType: string,
    inputs: string[],
    opts: { name: string; outputs?: number | string[]; attrs?: Attrs; domain?: string },
  ): string[] {
    const nodeName = this.unique(opts.name);
    const outs = opts.outputs ?? 1;
    const outputs =
      typeof outs === 'number'
        ? Array.from({ length: outs }, (_, i) => this.unique(outs === 1 ? `${nodeName}/out` : `${nodeName}/out${i}`))
        : outs.map((o) => {
            if (o !== '') this.used.add(o);
            return o;
          });
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(opts.attrs ?? {})) attributes[k] = toAttribute(v);
    this.nodes.push({ opType, name: nodeName, inputs, outputs, attributes, domain: opts.domain });
    return outputs;
  }

  /** Single-output convenience form of `node`. */
  op(opType: string, inputs: string[], name: string, attrs?: Attrs, domain?: string): string {
    return this.node(opType, inputs, { name, attrs, domain })[0];
  }

  graph(name: string): GraphDef {
    return { name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs };
  }
}
