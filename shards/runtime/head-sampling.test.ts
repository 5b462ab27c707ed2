import { describe, expect, it } from 'vitest';
import { Sampler } from '../sampler.ts';
import { LOGITS_OUTPUT } from '../stage-graph.ts';
import { lastLogitsRow, SAMPLED_TOKEN_OUTPUT, sampledToken, sampleHead } from './head-sampling.ts';
import type { HostTensor, RunOptions, StageSession } from './stage-runtime.ts';
import { StageStepper } from './stage-stepper.ts';

/** logits (1, rows, V) whose rows differ, so sampling the wrong row gives another token */
function logits(rows: number, V: number): HostTensor & { dtype: 'float32' } {
  const data = new Float32Array(rows * V);
  for (let r = 0; r < rows; r++) for (let v = 0; v < V; v++) data[r * V + v] = Math.sin(1 + r * 7.3 + v * 0.91) * 4;
  return { dtype: 'float32', dims: [1, rows, V], data };
}

describe('sampleHead', () => {
  const V = 97;
  for (const sampling of [{ temperature: 0 }, { temperature: 0.8, topK: 20, topP: 0.9, seed: 7 }]) {
    it(`replaces the logits by the token a Sampler draws from the last row (${JSON.stringify(sampling)})`, () => {
      const l = logits(3, V);
      const hidden: HostTensor = { dtype: 'float32', dims: [1, 1, 2], data: Float32Array.of(1, 2) };
      for (let index = 0; index < 5; index++) {
        const out = sampleHead({ [LOGITS_OUTPUT]: l, other: hidden }, { sampling, index });
        const want = new Sampler(sampling).sample(l.data.subarray(2 * V, 3 * V), index);
        expect(Object.keys(out).sort()).toEqual(['other', SAMPLED_TOKEN_OUTPUT]);
        expect(sampledToken(out)).toBe(want);
        expect(out.other).toBe(hidden);
      }
      // the last row really is another distribution than the first
      expect(new Sampler({ temperature: 0 }).sample(lastLogitsRow(l), 0)).not.toBe(
        new Sampler({ temperature: 0 }).sample(l.data.subarray(0, V), 0),
      );
    });
  }

  it('leaves outputs without logits alone; sampledToken is null without a token', () => {
    const hidden: HostTensor = { dtype: 'float32', dims: [1, 1, 2], data: Float32Array.of(1, 2) };
    const out = { hidden_states_out: hidden };
    expect(sampleHead(out, { sampling: {}, index: 0 })).toBe(out);
    expect(sampledToken(out)).toBeNull();
  });
});

describe('StageStepper.stepHead', () => {
  const spec = { layers: { start: 0, end: 1 }, embeds: true, hasHead: true };
  const session = (honoursSample: boolean, seen: RunOptions[]): StageSession => ({
    backend: 'node',
    inputNames: [],
    outputNames: [LOGITS_OUTPUT],
    run: (_feeds, options = {}) => {
      seen.push(options);
      const out = { [LOGITS_OUTPUT]: logits(1, 50) };
      return Promise.resolve(honoursSample && options.sample ? sampleHead(out, options.sample) : out);
    },
    release: () => Promise.resolve(),
  });
  const ids: HostTensor = { dtype: 'int64', dims: [1, 2], data: BigInt64Array.of(1n, 2n) };

  it('asks the runtime to sample and returns its token; a runtime that ignores it gives the logits', async () => {
    const sample = { sampling: { temperature: 0 }, index: 3 };
    const seen: RunOptions[] = [];
    const sampled = await new StageStepper(session(true, seen), spec).stepHead(ids, sample);
    expect(sampled).toEqual({ token: new Sampler({ temperature: 0 }).sample(logits(1, 50).data, 3) });
    const left = await new StageStepper(session(false, seen), spec).stepHead(ids, sample);
    expect('logits' in left && left.logits.dims).toEqual([1, 1, 50]);
    expect(seen.map((o) => o.sample)).toEqual([sample, sample]);
    expect(seen.every((o) => o.newSequence)).toBe(true);
  });
});
