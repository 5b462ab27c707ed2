/**
 * A minimal protocol-buffers wire-format writer (proto3 encoding rules), enough to serialise ONNX
 * messages. Pure: no Node or DOM APIs.
 *
 * Wire types: 0 = varint, 1 = 64-bit, 2 = length-delimited, 5 = 32-bit.
 */

const textEncoder = new TextEncoder();

/** Appends protobuf fields to a growing byte buffer. */
export class ProtoWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Unsigned varint of a non-negative integer (safe up to 2^53) or a bigint (two's complement for negatives). */
  private varint(value: number | bigint): void {
    let v: bigint;
    if (typeof value === 'bigint') v = value;
    else {
      if (!Number.isSafeInteger(value)) throw new RangeError(`protobuf varint: ${value} is not a safe integer`);
      v = BigInt(value);
    }
    if (v < 0n) v = BigInt.asUintN(64, v);
    this.reserve(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  private tag(field: number, wireType: 0 | 1 | 2 | 5): void {
    this.varint(field * 8 + wireType);
  }

  /** int32 / int64 / enum / bool field (negative values are sign-extended to 64 bits, as protobuf does). */
  int(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.varint(typeof value === 'number' && value < 0 ? BigInt(value) : value);
    return this;
  }

  /** 32-bit float field (fixed32). */
  float(field: number, value: number): this {
    this.tag(field, 5);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(value.length);
    this.reserve(value.length);
    this.buf.set(value, this.len);
    this.len += value.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** Embedded message field. */
  message(field: number, encoded: Uint8Array): this {
    return this.bytes(field, encoded);
  }

  /** Packed repeated int64 / int32 field. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const inner = new ProtoWriter(values.length * 2 + 8);
    for (const v of values) inner.varint(typeof v === 'number' && v < 0 ? BigInt(v) : v);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated float field. */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const data = new Uint8Array(values.length * 4);
    const view = new DataView(data.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, data);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
