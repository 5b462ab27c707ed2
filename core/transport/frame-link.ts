/**
 * The link layer shared by every transport: frames <-> chunked messages on one ordered byte channel,
 * with a send queue (frames never interleave), back-pressure on bufferedAmount, and a strict per-link
 * FrameAssembler (lost, reordered or malformed chunks are reported, never thrown into the event loop).
 *
 * A `ByteChannel` is the small hook each backend fills in (an RTCDataChannel behind PeerJS, or an
 * in-memory pipe). `LinkHub` turns a set of channels keyed by remote peer id into a PipelineTransport.
 */
import { TandemError } from '../errors.ts';
import { FrameAssembler, FrameEncoder, SCTP_MAX_MESSAGE_BYTES, type Frame } from '../frame-codec.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HIGH_WATER_BYTES,
  DEFAULT_LOW_WATER_BYTES,
  type EventHandler,
  type FrameArrival,
  type FrameHandler,
  type LinkPolicy,
  type PipelineTransport,
  type TransportEvent,
} from './transport.ts';

const DRAIN_POLL_MS = 50;
/** How long a dial keeps retrying a peer that is not (yet, or again) on the signaling server. */
const DEFAULT_CONNECT_RETRY_MS = 3_000;
const CONNECT_RETRY_PAUSE_MS = 500;
/**
 * A channel the current policy does not admit is held this long before it is closed: its sender may be
 * a neighbour of the plan this page has not applied yet (assignments reach pages at different moments),
 * and closing it would leave the sender holding a link it may not see close for a while.
 */
const PARKED_CHANNEL_MS = 30_000;
/** At most this many channels wait for admission, and each holds at most this many frames. */
const MAX_PARKED_CHANNELS = 8;
const MAX_PARKED_FRAMES = 8;
/**
 * Frames that arrive while nothing listens (a page between two stages: the old one disposed, the new
 * one still being built) wait for the next subscriber, at most this many (the oldest go first).
 */
const MAX_UNCLAIMED_FRAMES = 16;

/** One ordered, reliable message channel to one remote peer. */
export interface ByteChannel {
  /** Queue one message (<= the channel's max message size). Throws if the channel is closed. */
  send(message: Uint8Array): void;
  /** Bytes queued but not yet sent (RTCDataChannel.bufferedAmount). */
  readonly bufferedAmount: number;
  /** 'bufferedamountlow' fires when bufferedAmount falls to or below this. */
  bufferedAmountLowThreshold: number;
  readonly isOpen: boolean;
  /** Install the channel's callbacks; called once, right after the channel opens. */
  listen(handlers: {
    message: (message: Uint8Array) => void;
    bufferedAmountLow: () => void;
    close: (reason: string) => void;
  }): void;
  close(): void;
  /** For diagnosis: the channel's state in words. */
  describe?(): string;
}

export interface FrameLinkOptions {
  /** Default time allowed to open a link, ms (default DEFAULT_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** How long to keep re-dialing a peer reported as not on the signaling server, ms (default 3000). */
  connectRetryMs?: number;
  maxChunkBytes?: number;
  highWaterBytes?: number;
  lowWaterBytes?: number;
  maxFrameBytes?: number;
  /** Where the hub says what it does with links (parked, admitted, closed): a page logs it for diagnosis. */
  trace?: (line: string) => void;
}

/** Frames over one ByteChannel. */
export class FrameLink {
  private readonly encoder: FrameEncoder;
  private readonly assembler: FrameAssembler;
  private readonly highWater: number;
  private sendChain: Promise<void> = Promise.resolve();
  private drainWaiters: (() => void)[] = [];
  private closedReason: string | null = null;
  private firstChunkAt = 0;

  constructor(
    readonly remoteId: string,
    readonly direction: 'incoming' | 'outgoing',
    private readonly channel: ByteChannel,
    private readonly handlers: {
      frame: (frame: Frame, arrival: FrameArrival) => void;
      error: (error: TandemError) => void;
      close: (reason: string) => void;
    },
    opts: FrameLinkOptions = {},
  ) {
    this.encoder = new FrameEncoder(opts.maxChunkBytes ?? SCTP_MAX_MESSAGE_BYTES);
    this.assembler = new FrameAssembler({ strictSequence: true, maxFrameBytes: opts.maxFrameBytes });
    this.highWater = opts.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    channel.bufferedAmountLowThreshold = opts.lowWaterBytes ?? DEFAULT_LOW_WATER_BYTES;
    channel.listen({
      message: (m) => this.receive(m),
      bufferedAmountLow: () => this.wakeSenders(),
      close: (reason) => this.markClosed(reason),
    });
  }

  get isOpen(): boolean {
    return this.closedReason === null && this.channel.isOpen;
  }

  /** For diagnosis: direction, and why the link is not open. */
  describe(): string {
    const channel = this.channel.describe?.() ?? (this.channel.isOpen ? 'channel open' : 'channel not open');
    return `${this.direction}, ${this.closedReason === null ? channel : `closed: ${this.closedReason}`}`;
  }

  /** Encode and send a frame after every frame queued before it; resolves when all chunks are handed over. */
  send(frame: Frame): Promise<void> {
    const chunks = this.encoder.encode(frame); // validate now, so a bad frame rejects at once
    const run = this.sendChain.then(() => this.sendChunks(chunks));
    this.sendChain = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.channel.close();
    this.markClosed('closed locally');
  }

  /** Frames announcing more payload than this are refused before any allocation. */
  setMaxFrameBytes(bytes: number): void {
    this.assembler.maxFrameBytes = bytes;
  }

  private async sendChunks(chunks: Uint8Array[]): Promise<void> {
    for (const chunk of chunks) {
      while (
        this.closedReason === null &&
        this.channel.bufferedAmount + chunk.byteLength > this.highWater &&
        this.channel.bufferedAmount > 0
      ) {
        // bufferedamountlow wakes us; the timer is a safety net in case the event fired before we waited
        // or the thresholds leave no crossing to fire on.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, DRAIN_POLL_MS);
          this.drainWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      if (this.closedReason !== null || !this.channel.isOpen) {
        throw new TandemError(
          'transport-closed',
          `The link to peer '${this.remoteId}' is closed (${this.closedReason ?? 'channel not open'}); the frame was not sent.`,
        );
      }
      try {
        this.channel.send(chunk);
      } catch (err) {
        this.markClosed(`send failed: ${(err as Error).message}`);
        throw new TandemError(
          'transport-closed',
          `Sending to peer '${this.remoteId}' failed: ${(err as Error).message}.`,
          { cause: err },
        );
      }
    }
  }

  private receive(message: Uint8Array): void {
    const now = performance.now();
    if (!this.assembler.busy) this.firstChunkAt = now;
    let frame: Frame | null;
    try {
      frame = this.assembler.push(message);
    } catch (err) {
      this.handlers.error(
        err instanceof TandemError ? err : new TandemError('frame-malformed', String(err), { cause: err }),
      );
      return;
    }
    if (frame) this.handlers.frame(frame, { firstChunkAt: this.firstChunkAt, completedAt: performance.now() });
  }

  private wakeSenders(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private markClosed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.wakeSenders();
    this.handlers.close(reason);
  }
}

/** The frames a parked link received, in order; null once the link is admitted (frames flow). */
interface ParkedHold {
  held: [Frame, FrameArrival][] | null;
}

/** How a backend opens a channel to a remote peer (outgoing). */
export type Dialer = (peerId: string, timeoutMs: number) => Promise<ByteChannel>;

/**
 * A PipelineTransport over any ByteChannel backend. Backends call `dial` for outgoing channels (through
 * the Dialer given at construction) and `acceptIncoming` for channels the remote side opened.
 * Per remote peer, the first link to open is the one used for sending (stable ordering); further links
 * (two peers dialling each other at once) stay open and are still read.
 */
export class LinkHub implements PipelineTransport {
  private readonly links = new Map<string, FrameLink[]>();
  /** Incoming links the policy did not admit (yet): their frames wait, in order, until it does. */
  private readonly parked = new Map<FrameLink, { hold: ParkedHold; timer: ReturnType<typeof setTimeout> }>();
  private readonly dialing = new Map<string, Promise<void>>();
  private readonly frameHandlers = new Set<FrameHandler>();
  private unclaimed: [Frame, string, FrameArrival][] = [];
  private readonly eventHandlers = new Set<EventHandler>();
  private closed = false;
  private policy: LinkPolicy | null = null;

  constructor(
    readonly localId: string,
    private readonly dialer: Dialer,
    private readonly linkOptions: FrameLinkOptions = {},
    private readonly onClose: () => void = () => undefined,
  ) {}

  connect(
    peerId: string,
    timeoutMs: number = this.linkOptions.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  ): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError(peerId));
    if (this.openLink(peerId)) return Promise.resolve();
    let pending = this.dialing.get(peerId);
    if (!pending) {
      pending = this.dialWithRetry(peerId, timeoutMs)
        .then((channel) => {
          if (this.closed) {
            channel.close();
            throw this.closedError(peerId);
          }
          this.addLink(peerId, 'outgoing', channel);
        })
        .finally(() => this.dialing.delete(peerId));
      this.dialing.set(peerId, pending);
    }
    return pending;
  }

  /**
   * Dials, and dials again while the remote is "not on the signaling server": a page whose signaling
   * socket dropped for a moment (a loaded laptop, a phone changing networks) re-registers within
   * seconds, and failing the request for that would be wrong. A peer that really left still fails,
   * after the retry window.
   */
  private async dialWithRetry(peerId: string, timeoutMs: number): Promise<ByteChannel> {
    const retryUntil =
      performance.now() + Math.min(timeoutMs, this.linkOptions.connectRetryMs ?? DEFAULT_CONNECT_RETRY_MS);
    for (;;) {
      const started = performance.now();
      try {
        return await this.dialer(peerId, timeoutMs);
      } catch (err) {
        const retryable = err instanceof TandemError && err.code === 'transport-connect-failed';
        if (!retryable || this.closed || started + CONNECT_RETRY_PAUSE_MS > retryUntil) throw err;
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_PAUSE_MS));
      }
    }
  }

  async send(peerId: string, frame: Frame): Promise<void> {
    let link = this.openLink(peerId);
    if (!link) {
      await this.connect(peerId);
      link = this.openLink(peerId);
    }
    if (!link) {
      const states = (this.links.get(peerId) ?? []).map((l) => l.describe());
      throw new TandemError(
        'transport-closed',
        `No open link to peer '${peerId}'${states.length ? ` (its links: ${states.join('; ')})` : ''}.`,
      );
    }
    await link.send(frame);
  }

  onFrame(handler: FrameHandler): () => void {
    this.frameHandlers.add(handler);
    const waiting = this.unclaimed;
    this.unclaimed = [];
    // after the caller's turn: a stage subscribes in its constructor, before it is fully set up
    if (waiting.length)
      queueMicrotask(() => {
        for (const [frame, from, arrival] of waiting) this.deliver(frame, from, arrival);
      });
    return () => this.frameHandlers.delete(handler);
  }

  private deliver(frame: Frame, from: string, arrival: FrameArrival): void {
    if (this.frameHandlers.size === 0) {
      if (this.unclaimed.push([frame, from, arrival]) > MAX_UNCLAIMED_FRAMES) this.unclaimed.shift();
      return;
    }
    for (const h of this.frameHandlers) h(frame, from, arrival);
  }

  onEvent(handler: EventHandler): () => void {
    this.eventHandlers.add(handler);
    return () => this.eventHandlers.delete(handler);
  }

  /**
   * Register a channel that the remote peer opened to us. One the policy does not admit is parked, not
   * closed: a policy set within PARKED_CHANNEL_MS that admits it releases it with its frames in order;
   * otherwise it is closed then (or at once when MAX_PARKED_CHANNELS already wait).
   */
  acceptIncoming(peerId: string, channel: ByteChannel): void {
    if (this.closed) {
      channel.close();
      return;
    }
    if (!this.policy || this.policy.admitChannel(peerId)) {
      this.addLink(peerId, 'incoming', channel);
      return;
    }
    if (this.parked.size >= MAX_PARKED_CHANNELS) {
      this.trace(`closed a channel from ${peerId}: not a neighbour, and ${MAX_PARKED_CHANNELS} already wait`);
      channel.close();
      return;
    }
    this.trace(`parked a channel from ${peerId} (not a neighbour of the current plan)`);
    this.park(peerId, channel);
  }

  setPolicy(policy: LinkPolicy): void {
    this.policy = policy;
    for (const [peerId, list] of this.links) {
      for (const link of list) {
        if (link.direction === 'incoming' && !policy.admitChannel(peerId)) {
          this.trace(`closed the channel from ${peerId}: not a neighbour of the new plan`);
          link.close();
        } else link.setMaxFrameBytes(policy.maxFrameBytes);
      }
    }
    for (const link of [...this.parked.keys()]) {
      link.setMaxFrameBytes(policy.maxFrameBytes);
      if (policy.admitChannel(link.remoteId)) this.admitParked(link);
    }
  }

  /** Report a backend-level problem (e.g. the signaling server went away). */
  reportError(peerId: string | null, error: TandemError): void {
    this.emit({ type: 'error', peerId, error });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const list of this.links.values()) for (const link of list) link.close();
    this.links.clear();
    for (const link of [...this.parked.keys()]) link.close();
    this.parked.clear();
    this.onClose();
  }

  /** Remote peers with at least one open link. */
  connectedPeers(): string[] {
    return [...this.links.keys()].filter((id) => this.openLink(id));
  }

  private openLink(peerId: string): FrameLink | undefined {
    return this.links.get(peerId)?.find((l) => l.isOpen);
  }

  private addLink(peerId: string, direction: 'incoming' | 'outgoing', channel: ByteChannel): void {
    this.register(this.newLink(peerId, direction, channel, { held: null }));
  }

  private register(link: FrameLink): void {
    const list = this.links.get(link.remoteId) ?? [];
    list.push(link);
    this.links.set(link.remoteId, list);
    this.trace(`${link.direction} link with ${link.remoteId} open (${list.length} with that peer)`);
    this.emit({ type: 'open', peerId: link.remoteId, direction: link.direction });
  }

  /** `hold.held` non-null: the link is parked and its frames are kept there instead of delivered. */
  private newLink(
    peerId: string,
    direction: 'incoming' | 'outgoing',
    channel: ByteChannel,
    hold: ParkedHold,
  ): FrameLink {
    const link: FrameLink = new FrameLink(
      peerId,
      direction,
      channel,
      {
        frame: (frame, arrival) => {
          if (hold.held === null) {
            this.deliver(frame, peerId, arrival);
          } else if (hold.held.push([frame, arrival]) > MAX_PARKED_FRAMES) {
            // A sender that keeps sending while it is not a neighbour is not a plan in transition.
            hold.held = [];
            queueMicrotask(() => link.close());
          }
        },
        error: (error) => {
          if (hold.held === null) this.emit({ type: 'error', peerId, error });
        },
        close: (reason) => {
          if (hold.held !== null) {
            this.unpark(link);
            return;
          }
          const list = this.links.get(peerId);
          if (list) {
            const rest = list.filter((l) => l !== link);
            if (rest.length) this.links.set(peerId, rest);
            else this.links.delete(peerId);
          }
          if (!this.closed) {
            this.trace(`${direction} link with ${peerId} closed: ${reason}`);
            this.emit({ type: 'close', peerId, reason });
          }
        },
      },
      this.policy ? { ...this.linkOptions, maxFrameBytes: this.policy.maxFrameBytes } : this.linkOptions,
    );
    return link;
  }

  private park(peerId: string, channel: ByteChannel): void {
    const hold: ParkedHold = { held: [] };
    const link = this.newLink(peerId, 'incoming', channel, hold);
    if (!link.isOpen) return;
    const timer = setTimeout(() => {
      this.trace(`closed the parked channel from ${peerId}: no plan admitted it within ${PARKED_CHANNEL_MS / 1000} s`);
      link.close();
    }, PARKED_CHANNEL_MS);
    this.parked.set(link, { hold, timer });
  }

  private unpark(link: FrameLink): ParkedHold | null {
    const entry = this.parked.get(link);
    if (!entry) return null;
    clearTimeout(entry.timer);
    this.parked.delete(link);
    return entry.hold;
  }

  /** A parked link the policy now admits: a normal link from here on, its held frames delivered first. */
  private admitParked(link: FrameLink): void {
    const hold = this.unpark(link);
    if (!hold || !link.isOpen) return;
    const held = hold.held ?? [];
    hold.held = null;
    this.trace(`admitted the parked channel from ${link.remoteId} with ${held.length} held frame(s)`);
    this.register(link);
    // After the caller's turn: a stage sets its policy before it subscribes to frames.
    queueMicrotask(() => {
      for (const [frame, arrival] of held) this.deliver(frame, link.remoteId, arrival);
    });
  }

  private trace(line: string): void {
    this.linkOptions.trace?.(line);
  }

  private emit(event: TransportEvent): void {
    for (const h of this.eventHandlers) h(event);
  }

  private closedError(peerId: string): TandemError {
    return new TandemError(
      'transport-closed',
      `The transport of '${this.localId}' is closed; cannot reach '${peerId}'.`,
    );
  }
}
