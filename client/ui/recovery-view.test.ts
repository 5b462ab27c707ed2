/** The failover strip's pure layout and the one-line summary (recovery-view.ts). */
import { describe, expect, it } from 'vitest';
import type { RequestRecovery } from '../app/failover-view-state.ts';
import { recoveryMarks, recoverySummary } from './recovery-view.ts';

const base: RequestRecovery = {
  requestId: 3,
  continuationIds: [4],
  recoveredInMs: 1400,
  failure: null,
  recovering: false,
  events: [
    {
      kind: 'loss',
      atMs: 10_000,
      lostPeerIds: ['b1'],
      lostNames: ['bravo'],
      layers: [{ start: 1, end: 3 }],
      reason: 'left',
    },
    {
      kind: 'repair',
      atMs: 10_100,
      planId: 'p2',
      mode: 'range',
      replayTokens: 40,
      predictedResumeSec: 1.25,
      stageNames: ['alpha', 'delta', 'charlie'],
    },
    { kind: 'replay', atMs: 10_200, continuationId: 4, firstIndex: 5, attempt: 1 },
    { kind: 'recovered', atMs: 11_400, recoveredInMs: 1400 },
  ],
};

describe('recovery view', () => {
  it('places loss, repair, replay and next token on a strip from the loss', () => {
    const marks = recoveryMarks(base);
    expect(marks.map((m) => m.kind)).toEqual(['loss', 'repair', 'replay', 'recovered']);
    expect(marks.map((m) => m.atSec)).toEqual([0, 0.1, 0.2, 1.4]);
    expect(marks[0].position).toBe(0);
    expect(marks[3].position).toBe(1);
    expect(marks[0].label).toBe('stage lost: bravo closed (layers 2–3)');
    expect(marks[1].label).toContain('alpha → delta → charlie; replay 40 tokens, predicted 1.25 s');
    expect(marks[2].label).toBe('replay from token 6 (attempt 1)');
  });

  it('says recovered in X s, recovering, or why not', () => {
    expect(recoverySummary(base)).toEqual({ text: 'Recovered in 1.4 s after bravo was lost', state: 'recovered' });
    expect(recoverySummary({ ...base, recovering: true })?.state).toBe('recovering');
    expect(
      recoverySummary({ ...base, failure: { code: 'recovery-impossible', message: 'add a device with 1.2 GB free' } }),
    ).toEqual({ text: 'Could not recover: add a device with 1.2 GB free', state: 'failed' });
    expect(recoverySummary({ ...base, events: [] })).toBeNull();
    expect(recoverySummary(null)).toBeNull();
  });
});
