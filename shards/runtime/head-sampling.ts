/**
 * The next token sampled where the head computed it (pure): a runtime asked for it (RunOptions.sample)
 * replaces the last stage's logits (1, rows, V) with the sampled token id, int32 (1), so a runtime in
 * another thread (the page's inference worker) returns 4 bytes instead of the vocabulary's row (151,936
 * floats for Qwen3) and the main thread never scans it. The same Sampler as on the stage's own thread,
 * on the same float32 row: the same token.
 */
import { Sampler, type SamplingOptions } from '../sampler.ts';
import { LOGITS_OUTPUT } from '../stage-graph.ts';
import type { HostTensor } from './stage-runtime.ts';

/** The output that carries the sampled token id, int32 (1), in place of LOGITS_OUTPUT. */
export const SAMPLED_TOKEN_OUTPUT = 'sampled_token';

/** What to sample: the request's options and the 0-based index of the token being generated (its draw). */
export interface HeadSample {
  sampling: SamplingOptions;
  index: number;
}

/** The logits row of the last position: (1, rows, V) -> (V). */
export function lastLogitsRow(logits: HostTensor & { dtype: 'float32' }): Float32Array {
  const [, rows, V] = logits.dims as [number, number, number];
  return logits.data.subarray((rows - 1) * V, rows * V);
}

/** `outputs` with LOGITS_OUTPUT replaced by SAMPLED_TOKEN_OUTPUT (unchanged when there are no logits). */
export function sampleHead(outputs: Record<string, HostTensor>, sample: HeadSample): Record<string, HostTensor> {
  const logits = outputs[LOGITS_OUTPUT] as HostTensor | undefined;
  if (logits?.dtype !== 'float32') return outputs;
  const token = new Sampler(sample.sampling).sample(lastLogitsRow(logits), sample.index);
  const rest = Object.fromEntries(Object.entries(outputs).filter(([name]) => name !== LOGITS_OUTPUT));
  return { ...rest, [SAMPLED_TOKEN_OUTPUT]: { dtype: 'int32', dims: [1], data: Int32Array.of(token) } };
}

/** The sampled token of a run's outputs, or null when the runtime returned the logits instead. */
export function sampledToken(outputs: Record<string, HostTensor>): number | null {
  const t = outputs[SAMPLED_TOKEN_OUTPUT] as HostTensor | undefined;
  return t?.dtype === 'int32' && t.data.length === 1 ? t.data[0] : null;
}
