/**
 * The seam between the page controller and the client runtime (client/runtime/stage-peer.ts, owned by
 * the client-runtime engineer): on `start`, run this page's pipeline stage and surface its phases,
 * tokens and chosen backend through callbacks.
 */
import { TandemError } from '../../planner/errors.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import type { ServerMessageOf, TimingPhase } from '../../signaling/protocol.ts';

export interface PhaseRecord {
  phase: TimingPhase;
  step: number;
  /** ms from this page's arrival of `start` */
  startMs: number;
  endMs: number;
}

export interface TokenReport {
  tokenIds: number[];
  text: string;
  generated: number;
  done: boolean;
  finishReason?: 'eos' | 'max-tokens' | 'error';
}

export interface StageRunOptions {
  start: ServerMessageOf<'start'>;
  assignment: ServerMessageOf<'assignment'>;
  manifest: ModelManifest;
  selfPeerId: string;
  backend: 'auto' | 'webgpu' | 'wasm';
  /** the backend the profile measured (the planner's numbers), null when unknown */
  profileBackend: 'webgpu' | 'wasm' | null;
  readUnit: (unitId: string) => Promise<Uint8Array>;
  onPhase: (p: PhaseRecord) => void;
  onTokens: (r: TokenReport) => void;
  onBackend: (backend: string, why: string) => void;
}

export interface StageHandle {
  done: Promise<void>;
  dispose(): void;
}

export async function runStage(_opts: StageRunOptions): Promise<StageHandle> {
  throw new TandemError('runtime-missing', 'This build of the page has no stage runtime yet (client/runtime/stage-peer.ts).');
}
