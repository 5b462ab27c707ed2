/**
 * Which frames and data channels a stage accepts, decided from its assignment alone (pure, no I/O).
 *
 * The pipeline is a ring: stage i gets hidden states from stage i-1, the first stage gets tokens from
 * the last, and 'end' / 'error' frames travel the ring, so each stage receives them from its ring
 * predecessor (the previous stage; for the first stage, the last). So:
 *   - data channels: only from ring neighbours (predecessor, successor, and first <-> last);
 *   - 'hidden' only from the predecessor; 'token' only from the last stage (on the first stage);
 *     'end' and 'error' only from the ring predecessor;
 *   - only for the request in flight, or for a newer one that has not started here yet (a fast
 *     predecessor's early frames); frames of finished or older requests are stale.
 * Everything else is dropped and counted, never acted on: whoever learns a neighbour's peer id
 * cannot inject activations, read them, or stop a request.
 */
import type { FrameKind } from '../../core/frame-codec.ts';

/** The assignment fields the gate needs (those of the coordinator's 'assignment' message). */
export interface GateAssignment {
  embeds: boolean;
  hasHead: boolean;
  predecessorPeerId: string | null;
  successorPeerId: string | null;
  firstPeerId: string;
  lastPeerId: string;
}

export type DropReason = 'channel-not-neighbour' | 'wrong-sender' | 'stale-request';

export class FrameGate {
  /** Dropped channels and frames by reason. */
  readonly dropped: Record<DropReason, number> = { 'channel-not-neighbour': 0, 'wrong-sender': 0, 'stale-request': 0 };
  private readonly neighbours: Set<string>;
  private readonly ringPredecessor: string | null;
  private inFlight: number | null = null;
  /** Highest request id started here (-1: none yet). */
  private newestStarted = -1;

  constructor(
    private readonly a: GateAssignment,
    localId: string,
  ) {
    this.ringPredecessor = a.embeds ? (a.hasHead ? null : a.lastPeerId) : a.predecessorPeerId;
    const ids = [
      a.predecessorPeerId,
      a.successorPeerId,
      a.embeds ? a.lastPeerId : null,
      a.hasHead ? a.firstPeerId : null,
    ];
    this.neighbours = new Set(ids.filter((id): id is string => id !== null && id !== localId));
  }

  /** Whether a data channel from `peerId` may open. */
  admitChannel(peerId: string): boolean {
    if (this.neighbours.has(peerId)) return true;
    this.dropped['channel-not-neighbour'] += 1;
    return false;
  }

  /** A request starts on this stage. */
  begin(requestId: number): void {
    this.inFlight = requestId;
    this.newestStarted = Math.max(this.newestStarted, requestId);
  }

  /** The request ended here: its late frames are stale from now on. */
  end(requestId: number): void {
    if (this.inFlight === requestId) this.inFlight = null;
  }

  /** Whether a frame of `kind` for `requestId` from `from` may be acted on (or buffered as early). */
  admitFrame(kind: FrameKind, requestId: number, from: string): boolean {
    if (from !== this.expectedSender(kind)) {
      this.dropped['wrong-sender'] += 1;
      return false;
    }
    if (requestId !== this.inFlight && requestId <= this.newestStarted) {
      this.dropped['stale-request'] += 1;
      return false;
    }
    return true;
  }

  get droppedTotal(): number {
    return this.dropped['channel-not-neighbour'] + this.dropped['wrong-sender'] + this.dropped['stale-request'];
  }

  private expectedSender(kind: FrameKind): string | null {
    switch (kind) {
      case 'hidden':
        return this.a.embeds ? null : this.a.predecessorPeerId;
      case 'token':
        return this.a.embeds && !this.a.hasHead ? this.a.lastPeerId : null;
      case 'end':
      case 'error':
        return this.ringPredecessor;
    }
  }
}

/**
 * Largest frame a stage can need: hidden states [1, S, hidden] as float32 with S up to the stage
 * graphs' positions, or a small token/end/error frame (64 KiB floor). The link refuses larger frames
 * before allocating, so a 45-byte chunk can no longer claim 256 MiB.
 */
export function maxFrameBytesFor(hiddenSize: number, maxPositions: number): number {
  return Math.max(64 * 1024, 4 * hiddenSize * maxPositions);
}
