/**
 * One stage's forward steps over one sequence: builds each run's feeds, keeps the position, and picks
 * the stage's main output by name. The KV cache stays inside the session (SessionRequest.kvCache,
 * kv-cache.ts): step 0 starts it empty, each later step appends to it.
 *
 *   feeds:  input_ids (1, S) int64 [first stage] | hidden_states (1, S, H) float32 [others]
 *           attention_mask (1, past + S) int64 = 1     position_ids (1, S) int64 = past .. past + S - 1
 *   output: logits (1, 1, V) [last stage: the head runs on the last position only] | hidden_states_out (1, S, H)
 */
import { TandemError } from '../../core/errors.ts';
import { HIDDEN_OUTPUT, LOGITS_OUTPUT, type StageSpec } from '../stage-graph.ts';
import { sampledToken, type HeadSample } from './head-sampling.ts';
import type { HostTensor, StageSession } from './stage-runtime.ts';

export class StageStepper {
  /** Positions already in the KV cache. */
  private past = 0;

  constructor(
    private readonly session: StageSession,
    private readonly spec: StageSpec,
  ) {}

  /** Positions processed so far (prompt + decoded tokens that went through this stage). */
  get positions(): number {
    return this.past;
  }

  /** Runs this stage's layers on S new positions; returns logits (last stage) or hidden states. */
  async step(input: HostTensor): Promise<HostTensor & { dtype: 'float32' }> {
    return this.mainOutput(await this.run(input));
  }

  /**
   * The last stage's step with its next token sampled by the runtime, where the logits are (a worker
   * then returns one id, not the vocabulary's row): `{ token }`; `{ logits }` when the runtime left the
   * sampling to the caller.
   */
  async stepHead(
    input: HostTensor,
    sample: HeadSample,
  ): Promise<{ token: number } | { logits: HostTensor & { dtype: 'float32' } }> {
    const out = await this.run(input, sample);
    const token = sampledToken(out);
    return token !== null ? { token } : { logits: this.mainOutput(out) };
  }

  private async run(input: HostTensor, sample?: HeadSample): Promise<Record<string, HostTensor>> {
    const seq = input.dims[1];
    const out = await this.session.run(stageFeeds(this.spec, input, this.past), {
      newSequence: this.past === 0,
      ...(sample ? { sample } : {}),
    });
    this.past += seq;
    return out;
  }

  private mainOutput(out: Record<string, HostTensor>): HostTensor & { dtype: 'float32' } {
    const name = this.spec.hasHead ? LOGITS_OUTPUT : HIDDEN_OUTPUT;
    // the runtime may return fewer outputs than the session declares
    const main = out[name] as HostTensor | undefined;
    if (main?.dtype !== 'float32')
      throw new TandemError('stage-output-missing', `The stage session returned no float32 '${name}'.`);
    return main;
  }
}

/** The feeds of one step: the input (ids or hidden states) of S positions after `past` cached ones. */
export function stageFeeds(spec: StageSpec, input: HostTensor, past: number): Record<string, HostTensor> {
  const seq = input.dims[1];
  const total = past + seq;
  return {
    [spec.embeds ? 'input_ids' : 'hidden_states']: input,
    attention_mask: { dtype: 'int64', dims: [1, total], data: new BigInt64Array(total).fill(1n) },
    position_ids: {
      dtype: 'int64',
      dims: [1, seq],
      data: BigInt64Array.from({ length: seq }, (_, j) => BigInt(past + j)),
    },
  };
}

/** input_ids (1, S) for token ids. */
export function idsTensor(ids: readonly number[]): HostTensor {
  return { dtype: 'int64', dims: [1, ids.length], data: BigInt64Array.from(ids, (x) => BigInt(x)) };
}
