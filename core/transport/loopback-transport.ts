/**
 * In-memory PipelineTransport for Node tests and single-process runs: every transport created from one
 * LoopbackNetwork can dial every other by peer id. Channels behave like data channels where it matters:
 * ordered delivery in a later macrotask, a bufferedAmount that grows on send and shrinks on delivery (with
 * 'bufferedamountlow'), an optional bandwidth and latency, and a max message size whose violation closes
 * the channel (as SCTP does for a message over 256 KiB).
 */
import { TandemError } from '../errors.ts';
import { SCTP_MAX_MESSAGE_BYTES } from '../frame-codec.ts';
import { LinkHub, type ByteChannel, type FrameLinkOptions } from './frame-link.ts';
import type { PipelineTransport } from './transport.ts';

export interface LoopbackOptions {
  /** Simulated link bandwidth in bytes/s (default: unlimited, delivery in the next macrotask). */
  bytesPerSec?: number;
  /** One-way latency in seconds added to every message (default 0). */
  latency?: number;
  /** Largest message a channel accepts before it closes (default 256 KiB, the SCTP limit). */
  maxMessageBytes?: number;
  /** Rewrite or drop (return null) a message in flight: fault injection for tests. */
  tamper?: (from: string, to: string, message: Uint8Array) => Uint8Array | null;
}

type Handlers = Parameters<ByteChannel['listen']>[0];

interface Scheduled {
  cancel(): void;
}

/** A macrotask without a timer's clamp: setImmediate where the host has it (Node), else setTimeout(0). */
function nextTask(run: () => void): Scheduled {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown; clearImmediate?: (h: unknown) => void };
  const { setImmediate, clearImmediate } = g;
  if (!setImmediate || !clearImmediate) return later(run, 0);
  const handle = setImmediate(run);
  return { cancel: () => clearImmediate(handle) };
}

function later(run: () => void, ms: number): Scheduled {
  const timer = setTimeout(run, ms);
  return { cancel: () => clearTimeout(timer) };
}

class LoopbackEnd implements ByteChannel {
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  peer!: LoopbackEnd;
  private handlers: Handlers | null = null;
  private early: Uint8Array[] = [];
  private open = true;
  private nextFree = 0; // ms timestamp when the simulated wire is free again
  /** Messages in flight, in send order, each with its delivery time (ms timestamp). */
  private readonly inFlight: { message: Uint8Array; at: number }[] = [];
  private pumpTimer: Scheduled | null = null;

  constructor(
    private readonly from: string,
    private readonly to: string,
    private readonly opts: LoopbackOptions,
  ) {}

  get isOpen(): boolean {
    return this.open;
  }

  listen(handlers: Handlers): void {
    this.handlers = handlers;
    const early = this.early;
    this.early = [];
    for (const m of early) handlers.message(m);
  }

  send(message: Uint8Array): void {
    if (!this.open) throw new TandemError('transport-closed', `Loopback channel ${this.from} -> ${this.to} is closed.`);
    const max = this.opts.maxMessageBytes ?? SCTP_MAX_MESSAGE_BYTES;
    if (message.byteLength > max) {
      this.closeBoth(`a ${message.byteLength}-byte message exceeded the ${max}-byte channel limit`);
      throw new TandemError(
        'transport-closed',
        `Message of ${message.byteLength} bytes exceeds the channel limit of ${max} bytes; the channel closed.`,
      );
    }
    const copy = message.slice();
    this.bufferedAmount += copy.byteLength;
    const now = Date.now();
    const wireMs = this.opts.bytesPerSec ? (copy.byteLength / this.opts.bytesPerSec) * 1000 : 0;
    this.nextFree = Math.max(now, this.nextFree) + wireMs;
    this.inFlight.push({ message: copy, at: this.nextFree + (this.opts.latency ?? 0) * 1000 });
    this.schedulePump();
  }

  /** One timer for the head of the queue: delivery stays in send order whatever the timer rounding. */
  private schedulePump(): void {
    if (this.pumpTimer !== null || this.inFlight.length === 0) return;
    const pump = () => {
      this.pumpTimer = null;
      const now = Date.now();
      while (this.open && this.inFlight.length > 0 && this.inFlight[0].at <= now)
        this.deliver(this.inFlight.shift()!.message);
      this.schedulePump();
    };
    const delay = this.inFlight[0].at - Date.now();
    // Due now: the next macrotask, as a data channel's message event. Node's setTimeout(0) waits >= 1 ms,
    // which made every loopback hop of a decode step cost a millisecond no link would.
    this.pumpTimer = delay <= 0 ? nextTask(pump) : later(pump, delay);
  }

  close(): void {
    this.closeBoth('closed by the peer');
  }

  private deliver(message: Uint8Array): void {
    if (!this.open) return;
    const before = this.bufferedAmount;
    this.bufferedAmount -= message.byteLength;
    if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) {
      this.handlers?.bufferedAmountLow();
    }
    const out = this.opts.tamper ? this.opts.tamper(this.from, this.to, message) : message;
    if (out) this.peer.receive(out);
  }

  private receive(message: Uint8Array): void {
    if (!this.open) return;
    if (this.handlers) this.handlers.message(message);
    else this.early.push(message);
  }

  private closeBoth(reason: string): void {
    for (const end of [this, this.peer]) {
      if (!end.open) continue;
      end.open = false;
      end.bufferedAmount = 0;
      end.inFlight.length = 0;
      end.pumpTimer?.cancel();
      end.pumpTimer = null;
      end.handlers?.close(reason);
    }
  }
}

/** A set of in-memory transports that can reach each other by peer id. */
export class LoopbackNetwork {
  private readonly hubs = new Map<string, LinkHub>();

  constructor(
    private readonly opts: LoopbackOptions = {},
    private readonly linkOptions: FrameLinkOptions = {},
  ) {}

  /** A transport for `peerId`; throws TandemError('transport-id-taken') if the id is in use. */
  createTransport(peerId: string): PipelineTransport {
    if (this.hubs.has(peerId)) {
      throw new TandemError('transport-id-taken', `Peer id '${peerId}' is already in use on this loopback network.`);
    }
    const hub = new LinkHub(
      peerId,
      (remoteId) => this.dial(peerId, remoteId),
      this.linkOptions,
      () => this.hubs.delete(peerId),
    );
    this.hubs.set(peerId, hub);
    return hub;
  }

  private async dial(localId: string, remoteId: string): Promise<ByteChannel> {
    await Promise.resolve(); // dialling is asynchronous, like a real signaling round trip
    const remote = this.hubs.get(remoteId);
    if (!remote) {
      throw new TandemError(
        'transport-connect-failed',
        `Peer '${remoteId}' is not on the network (it left or never joined).`,
      );
    }
    const mine = new LoopbackEnd(localId, remoteId, this.opts);
    const theirs = new LoopbackEnd(remoteId, localId, this.opts);
    mine.peer = theirs;
    theirs.peer = mine;
    remote.acceptIncoming(localId, theirs);
    return mine;
  }
}
