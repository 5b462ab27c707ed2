/**
 * PipelineTransport: how a stage sends frames (hidden states, tokens, errors, end markers) to the other
 * stages of its pipeline. Two implementations share one link layer (frame-link.ts):
 *   - client/transport/peerjs-transport.ts: WebRTC data channels through PeerJS against our own signaling
 *     server (the page);
 *   - loopback-transport.ts: in-memory channels with a simulated SCTP limit and bufferedAmount (Node tests,
 *     and the stages of `npm run generate`).
 *
 * Semantics (both implementations):
 *   - Frames from one sender to one receiver arrive in the order they were sent, or not at all (the link
 *     closes and a 'close' event says why). Chunks of one frame never interleave with another's.
 *   - `send` resolves once every chunk of the frame is handed to the channel; it waits (back-pressure)
 *     while the channel's bufferedAmount is above the high-water mark, so a fast producer cannot queue
 *     unbounded memory. It rejects with TandemError('transport-closed') if the link is or goes down.
 *   - A malformed incoming message is reported as an 'error' event (TandemError code 'frame-*') and dropped;
 *     it never throws into the channel's event loop.
 */
import type { TandemError } from '../errors.ts';
import type { Frame } from '../frame-codec.ts';

export type TransportEvent =
  | { type: 'open'; peerId: string; direction: 'incoming' | 'outgoing' }
  | { type: 'close'; peerId: string; reason: string }
  | { type: 'error'; peerId: string | null; error: TandemError };

/** When a frame arrived, in performance.now() milliseconds of the receiving page. */
export interface FrameArrival {
  /** First chunk of the frame was received. */
  firstChunkAt: number;
  /** Last chunk was received and the frame reassembled. */
  completedAt: number;
}

export type FrameHandler = (frame: Frame, from: string, arrival: FrameArrival) => void;

/** What a stage accepts on its links (set once it has an assignment; see shards/runtime/frame-gate.ts). */
export interface LinkPolicy {
  /** Whether a data channel that `peerId` opens to us may carry frames (one refused is held a while, then closed). */
  admitChannel: (peerId: string) => boolean;
  /** Largest frame payload accepted on every link, bytes. */
  maxFrameBytes: number;
}
export type EventHandler = (event: TransportEvent) => void;

export interface PipelineTransport {
  /** This page's peer id (as registered with the signaling server). */
  readonly localId: string;
  /** Open (or reuse) a link to `peerId`; rejects with TandemError('transport-connect-failed' | 'transport-connect-timeout'). */
  connect(peerId: string, timeoutMs?: number): Promise<void>;
  /** Send one frame to `peerId` (dialling it first if no link is open), with back-pressure. */
  send(peerId: string, frame: Frame): Promise<void>;
  /** Subscribe to incoming frames; returns an unsubscribe function. */
  onFrame(handler: FrameHandler): () => void;
  /** Subscribe to link events; returns an unsubscribe function. */
  onEvent(handler: EventHandler): () => void;
  /**
   * Apply `policy` to every link from now on: open incoming links it does not admit are closed; channels
   * that arrived under an earlier policy and wait for admission (held, with their frames) are released
   * if it admits them.
   */
  setPolicy(policy: LinkPolicy): void;
  /** Close every link and release the transport; pending sends reject with 'transport-closed'. */
  close(): void;
}

/** Default send-side buffer limits (bytes): wait above HIGH, resume at LOW (bufferedamountlow). */
export const DEFAULT_HIGH_WATER_BYTES = 1024 * 1024;
export const DEFAULT_LOW_WATER_BYTES = 256 * 1024;
/** Time allowed to open a data channel: WebRTC set-up on a throttled phone can take many seconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
