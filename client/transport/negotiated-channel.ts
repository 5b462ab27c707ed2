/**
 * A ByteChannel over an RTCDataChannel that both ends create as a negotiated channel (same id, no
 * in-band open message) on each peer connection PeerJS makes, as the connection is made. Where the browser
 * allows it, the page's main thread transfers it to the inference worker at once (Chromium allows a
 * transfer only in the task that created the channel), so the ring's frames go worker to worker and never
 * wake a main thread; elsewhere the main thread's transport uses it (peerjs-transport.ts).
 *
 * A negotiated channel is open as soon as the association is, whether or not the remote end has
 * created its side yet, and a message that arrives before then is lost. So the channel is handed to the
 * link layer only after a handshake: each end sends HELLO (every HELLO_INTERVAL_MS) until it hears from
 * the other, and answers every HELLO with ACK (once its own end is open: a HELLO can arrive before the
 * 'open' event). Any message from the other end, a frame included, says that end exists: the other end
 * may already be sending frames, since it heard from us first. Handshake messages are 4 bytes; a frame
 * chunk is at least 40 bytes and starts with 'TNDM', so the two never collide, and a late HELLO is ignored.
 */
import { TandemError } from '../../core/errors.ts';
import type { ByteChannel } from '../../core/transport/frame-link.ts';

/** The SCTP stream id of Tandem's frame channel on every PeerJS peer connection (Chromium allows 0-1023). */
export const FRAME_CHANNEL_ID = 1000;
export const FRAME_CHANNEL_LABEL = 'tandem-frames';
/** How long a frame channel's two ends may take to find each other. */
export const FRAME_CHANNEL_HANDSHAKE_MS = 15_000;

const HELLO = 0x4948_4454; // 'TDHI' little-endian
const ACK = 0x4b41_4454; // 'TDAK' little-endian
const HELLO_INTERVAL_MS = 50;

/** What the channel needs of an RTCDataChannel (a fake one in Node tests). */
export interface DataChannelLike extends EventTarget {
  readonly readyState: RTCDataChannelState;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  binaryType: BinaryType;
  send(data: ArrayBufferView<ArrayBuffer> | ArrayBuffer): void;
  close(): void;
}

function handshakeWord(data: unknown): number | null {
  if (!(data instanceof ArrayBuffer) || data.byteLength !== 4) return null;
  return new DataView(data).getUint32(0, true);
}

function word(w: number): ArrayBuffer {
  const b = new ArrayBuffer(4);
  new DataView(b).setUint32(0, w, true);
  return b;
}

type Handlers = Parameters<ByteChannel['listen']>[0];

export class NegotiatedChannel implements ByteChannel {
  private handlers: Handlers | null = null;
  /** messages that came between the handshake and listen() */
  private early: Uint8Array[] = [];
  private earlyClose: string | null = null;
  private answered = false;
  /** a HELLO came before this end's 'open' event: its ACK goes out at 'open' */
  private ackOwed = false;
  private helloTimer: ReturnType<typeof setInterval> | null = null;
  private readonly opened: Promise<void>;
  private settle: { resolve: () => void; reject: (e: TandemError) => void } | null = null;

  /**
   * Starts the handshake; `ready()` resolves when the remote end answered, rejects when the channel
   * closes first or after `timeoutMs`.
   */
  constructor(
    private readonly dc: DataChannelLike,
    private readonly remoteId: string,
    timeoutMs: number,
  ) {
    dc.binaryType = 'arraybuffer';
    this.opened = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.opened.catch(() => undefined);
    const timer = setTimeout(
      () =>
        this.failHandshake(
          new TandemError(
            'transport-connect-timeout',
            `The frame channel to '${remoteId}' got no answer within ${timeoutMs / 1000} s: the peer may run another Tandem build or have left.`,
          ),
        ),
      timeoutMs,
    );
    this.opened.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    dc.addEventListener('message', (e) => this.onMessage((e as MessageEvent).data));
    dc.addEventListener('bufferedamountlow', () => this.handlers?.bufferedAmountLow());
    dc.addEventListener('close', () => this.onClose('the data channel closed'));
    dc.addEventListener('error', (e) => {
      const err = (e as Event & { error?: { message?: string } }).error;
      this.onClose(`data channel error: ${err?.message ?? 'unknown'}`);
    });
    if (dc.readyState === 'open') this.startHello();
    else dc.addEventListener('open', () => this.startHello(), { once: true });
  }

  ready(): Promise<void> {
    return this.opened;
  }

  get bufferedAmount(): number {
    return this.dc.bufferedAmount;
  }

  get bufferedAmountLowThreshold(): number {
    return this.dc.bufferedAmountLowThreshold;
  }

  set bufferedAmountLowThreshold(bytes: number) {
    this.dc.bufferedAmountLowThreshold = bytes;
  }

  get isOpen(): boolean {
    return this.answered && this.dc.readyState === 'open';
  }

  describe(): string {
    return `frame channel ${this.dc.readyState}, ${this.answered ? 'answered' : 'not answered'}`;
  }

  send(message: Uint8Array): void {
    this.dc.send(message as Uint8Array<ArrayBuffer>);
  }

  listen(h: Handlers): void {
    this.handlers = h;
    const early = this.early;
    this.early = [];
    for (const m of early) h.message(m);
    if (this.earlyClose !== null) h.close(this.earlyClose);
  }

  close(): void {
    this.stopHello();
    this.dc.close();
  }

  private startHello(): void {
    if (this.ackOwed) this.sendWord(ACK);
    this.ackOwed = false;
    this.settleIfUsable();
    if (this.answered || this.helloTimer !== null) return;
    this.sendWord(HELLO);
    this.helloTimer = setInterval(() => this.sendWord(HELLO), HELLO_INTERVAL_MS);
  }

  private sendWord(w: number): void {
    if (this.dc.readyState === 'open') this.dc.send(word(w));
  }

  private stopHello(): void {
    if (this.helloTimer !== null) clearInterval(this.helloTimer);
    this.helloTimer = null;
  }

  /** The other end exists: stop saying HELLO; once this end is open too, the link layer may have it. */
  private markAnswered(): void {
    if (this.answered) return;
    this.answered = true;
    this.stopHello();
    this.settleIfUsable();
  }

  /** ready() resolves when both hold: the other end answered, and this end can send ('open'). */
  private settleIfUsable(): void {
    if (!this.answered || this.dc.readyState !== 'open' || !this.settle) return;
    this.settle.resolve();
    this.settle = null;
  }

  private onMessage(data: unknown): void {
    const w = handshakeWord(data);
    if (w === HELLO || w === ACK) {
      if (w === HELLO) {
        if (this.dc.readyState === 'open') this.sendWord(ACK);
        else this.ackOwed = true; // answered at 'open'
      }
      this.markAnswered();
      return;
    }
    this.markAnswered();
    const bytes =
      data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : new Uint8Array(0); // not binary: the frame assembler reports it as malformed
    if (this.handlers) this.handlers.message(bytes);
    else this.early.push(bytes);
  }

  private onClose(reason: string): void {
    this.stopHello();
    this.failHandshake(
      new TandemError('transport-connect-failed', `The frame channel to '${this.remoteId}' closed: ${reason}.`),
    );
    if (this.handlers) this.handlers.close(reason);
    else this.earlyClose ??= reason;
  }

  private failHandshake(err: TandemError): void {
    if (!this.settle) return; // settled already
    this.stopHello();
    this.settle.reject(err);
    this.settle = null;
    if (this.dc.readyState !== 'closed') this.dc.close();
  }
}
