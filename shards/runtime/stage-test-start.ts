/** Test support: a greedy request over fixed prompt ids, as the StagePeer tests start their stages. */
import type { StartRequest } from './stage-peer.ts';

export const TEST_PROMPT_IDS = [11, 200, 37, 5, 380, 91, 64, 2];

/** Request 1, `maxNewTokens` greedy tokens after TEST_PROMPT_IDS (no prompt text: the ids are given). */
export function greedyStart(maxNewTokens: number): StartRequest {
  return { requestId: 1, prompt: '', promptTokenIds: TEST_PROMPT_IDS, maxNewTokens, sampling: { temperature: 0 } };
}
