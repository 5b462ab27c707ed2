/**
 * What the compute sweep (runtime-sweep.ts) runs: one session, run at several row counts t, with its
 * FLOP count and a check against an independent reference. Filled by the MatMul-block probe
 * (stage-probe.ts) and by real stage layers (layer-probe.ts).
 */
import type { HostTensor, RunOptions, SessionRequest } from '../../shards/runtime/stage-runtime.ts';

export interface SweepProbe {
  /** what the graph is, for the profile's `method` */
  description: string;
  /** width of the input [1, t, dim] */
  dim: number;
  /** bytes of weights the session holds */
  weightBytes: number;
  /** the session to create; the sweep adds the backend */
  session: Omit<SessionRequest, 'backend'>;
  /** the feeds of one run of t rows */
  feeds(tokens: number): Record<string, HostTensor>;
  /** options of every run (a stage probe starts a new sequence each time: a prefill of t rows) */
  runOptions: RunOptions;
  /** counted FLOPs of one run of t rows */
  flops(tokens: number): number;
  /** max |output - reference| / max |reference| of a run of t rows; Infinity when the output is missing */
  checkError(tokens: number, outputs: Record<string, HostTensor>): number;
}

/** max |got - want| / max |want|; Infinity when `got` is missing, of the wrong size, or `want` is all zeros. */
export function relativeError(got: HostTensor | undefined, want: ArrayLike<number>): number {
  if (got?.dtype !== 'float32' || got.data.length !== want.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - want[i]));
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  // NaN in the output fails the check too
  return maxRef > 0 && !Number.isNaN(maxDiff) ? maxDiff / maxRef : Infinity;
}
