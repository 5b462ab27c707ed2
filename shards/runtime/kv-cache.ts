/**
 * The stage's KV cache, kept inside the session's runtime (see SessionRequest.kvCache): it supplies the
 * past_key_values.{i}.key/value feeds of each run and takes the run's present.{i}.key/value as the next
 * past. Generic over the runtime's tensor type, so every runtime keeps its own ORT tensors here (on
 * WebGPU GPU buffers, never read back): a replaced tensor is disposed (frees its GPU buffer) once no run
 * needs it. The only KV cache in Tandem: ort-session.ts uses it for onnxruntime-node and -web alike.
 */
import { TandemError } from '../../core/errors.ts';
import type { KvCacheSpec } from './stage-runtime.ts';

export interface KvTensorOps<T> {
  /** An empty past (1, heads, 0, headDim). */
  empty(dims: number[]): T;
  /** Frees what the tensor holds (a GPU buffer); a no-op for CPU tensors. */
  dispose(t: T): void;
}

export const pastName = (layer: number, kv: 'key' | 'value'): string => `past_key_values.${layer}.${kv}`;
export const presentName = (layer: number, kv: 'key' | 'value'): string => `present.${layer}.${kv}`;

export class ResidentKvCache<T> {
  private readonly past = new Map<string, T>();
  /** present.* name -> past_key_values.* name */
  readonly presentToPast: ReadonlyMap<string, string>;

  constructor(
    private readonly spec: KvCacheSpec,
    private readonly ops: KvTensorOps<T>,
  ) {
    const pairs: [string, string][] = [];
    for (const l of spec.layers)
      for (const kv of ['key', 'value'] as const) pairs.push([presentName(l, kv), pastName(l, kv)]);
    this.presentToPast = new Map(pairs);
    this.reset();
  }

  /** Empty cache: the next run is the first of a sequence. */
  reset(): void {
    this.disposeAll();
    for (const past of this.presentToPast.values())
      this.past.set(past, this.ops.empty([1, this.spec.heads, 0, this.spec.headDim]));
  }

  /** The past_key_values.* feeds of the next run. */
  feeds(): Record<string, T> {
    return Object.fromEntries(this.past);
  }

  /**
   * Takes the presents of a run as the next past and returns the other outputs. The old past tensors
   * are disposed: the run that read them has finished.
   */
  update(outputs: Record<string, T>): Record<string, T> {
    const rest: Record<string, T> = {};
    const next = new Map<string, T>();
    for (const [name, t] of Object.entries(outputs)) {
      const past = this.presentToPast.get(name);
      if (past === undefined) rest[name] = t;
      else next.set(past, t);
    }
    for (const [present, past] of this.presentToPast) {
      if (!next.has(past))
        throw new TandemError('stage-output-missing', `The stage session did not return '${present}'.`);
    }
    this.disposeAll();
    for (const [k, v] of next) this.past.set(k, v);
    return rest;
  }

  disposeAll(): void {
    for (const t of this.past.values()) this.ops.dispose(t);
    this.past.clear();
  }
}
