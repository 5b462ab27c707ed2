/**
 * The negotiated frame channel's handshake against a stand-in pair of RTCDataChannels (the real ones need
 * a browser; e2e/session.test.ts runs them there). Like a negotiated SCTP stream, the stand-in delivers a
 * message only to an end that exists: whatever is sent before the remote creates its side is lost.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import { NegotiatedChannel, type DataChannelLike } from './negotiated-channel.ts';

const TIMEOUT_MS = 5_000;

type Side = 0 | 1;

/**
 * One peer connection's SCTP association: each side's end of the negotiated stream, once created. A
 * message (and a close) takes `latencyMs` to reach the other end.
 */
class FakeAssociation {
  readonly ends: [FakeDataChannel | null, FakeDataChannel | null] = [null, null];

  constructor(readonly latencyMs = 0) {}

  /** Create one side's end; it opens in a later task (`openAfterMs`), or at once with `openNow`. */
  create(side: Side, openNow = false, openAfterMs = 0): FakeDataChannel {
    const dc = new FakeDataChannel(this, side);
    this.ends[side] = dc;
    if (openNow) dc.readyState = 'open';
    else setTimeout(() => dc.open(), openAfterMs);
    return dc;
  }
}

class FakeDataChannel extends EventTarget implements DataChannelLike {
  readyState: RTCDataChannelState = 'connecting';
  readonly bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  binaryType: BinaryType = 'blob';
  /** every message this end sent, delivered or not */
  readonly sent: ArrayBuffer[] = [];
  /** every message that reached this end, handshake words included */
  readonly arrived: ArrayBuffer[] = [];

  constructor(
    private readonly association: FakeAssociation,
    private readonly side: Side,
  ) {
    super();
  }

  open(): void {
    if (this.readyState !== 'connecting') return;
    this.readyState = 'open';
    this.dispatchEvent(new Event('open'));
  }

  send(data: ArrayBufferView<ArrayBuffer> | ArrayBuffer): void {
    if (this.readyState !== 'open') throw new DOMException('the data channel is not open', 'InvalidStateError');
    const view =
      data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const copy = view.slice().buffer;
    this.sent.push(copy);
    const remote = this.association.ends[this.side === 0 ? 1 : 0];
    // no remote end yet: the message is lost
    if (remote) setTimeout(() => remote.deliver(copy), this.association.latencyMs);
  }

  /** Closes this end, and the remote's once the close gets there (after anything sent before it). */
  close(): void {
    if (this.readyState === 'closing' || this.readyState === 'closed') return;
    this.readyState = 'closing';
    setTimeout(() => this.closed(), 0);
    const remote = this.association.ends[this.side === 0 ? 1 : 0];
    if (remote) setTimeout(() => remote.closed(), this.association.latencyMs);
  }

  private closed(): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.dispatchEvent(new Event('close'));
  }

  private deliver(buffer: ArrayBuffer): void {
    if (this.readyState === 'closed') return;
    this.arrived.push(buffer);
    const data = this.binaryType === 'arraybuffer' ? buffer : new Blob([buffer]);
    this.dispatchEvent(new MessageEvent('message', { data }));
  }
}

/** A frame chunk as the link layer sends it: 'TNDM' then `length - 4` bytes that depend on `tag`. */
function frame(tag: number, length = 48): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  bytes.set([0x54, 0x4e, 0x44, 0x4d]);
  for (let i = 4; i < length; i++) bytes[i] = (tag * 31 + i) & 0xff;
  return bytes;
}

/** The handlers a link would install, recording what they got. */
function recorder(): {
  messages: Uint8Array[];
  closes: string[];
  handlers: Parameters<NegotiatedChannel['listen']>[0];
} {
  const messages: Uint8Array[] = [];
  const closes: string[] = [];
  return {
    messages,
    closes,
    handlers: {
      message: (m) => messages.push(m.slice()),
      bufferedAmountLow: () => undefined,
      close: (reason) => closes.push(reason),
    },
  };
}

/** Where a promise stands, read synchronously. */
function track(p: Promise<void>): { state: 'pending' | 'resolved' | 'rejected'; error: unknown } {
  const s: { state: 'pending' | 'resolved' | 'rejected'; error: unknown } = { state: 'pending', error: undefined };
  p.then(
    () => (s.state = 'resolved'),
    (e: unknown) => {
      s.state = 'rejected';
      s.error = e;
    },
  );
  return s;
}

/** Two channels whose ends are created together, handshake done, each with a recorder installed. */
async function connectedPair(): Promise<{
  dcs: [FakeDataChannel, FakeDataChannel];
  channels: [NegotiatedChannel, NegotiatedChannel];
  recs: [ReturnType<typeof recorder>, ReturnType<typeof recorder>];
}> {
  const assoc = new FakeAssociation();
  const dcs: [FakeDataChannel, FakeDataChannel] = [assoc.create(0), assoc.create(1)];
  const channels: [NegotiatedChannel, NegotiatedChannel] = [
    new NegotiatedChannel(dcs[0], 'b', TIMEOUT_MS),
    new NegotiatedChannel(dcs[1], 'a', TIMEOUT_MS),
  ];
  const ready = channels.map((c) => track(c.ready()));
  await vi.advanceTimersByTimeAsync(100);
  expect(ready.map((r) => r.state)).toEqual(['resolved', 'resolved']);
  const recs: [ReturnType<typeof recorder>, ReturnType<typeof recorder>] = [recorder(), recorder()];
  channels[0].listen(recs[0].handlers);
  channels[1].listen(recs[1].handlers);
  await vi.advanceTimersByTimeAsync(100); // let the last handshake words land
  return { dcs, channels, recs };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('NegotiatedChannel', () => {
  it('two ends created together become ready and carry frames in order, byte for byte', async () => {
    const { channels, recs } = await connectedPair();
    const aToB = [frame(1), frame(2, 40), frame(3, 1_000)];
    const bToA = [frame(4), frame(5)];
    for (const f of aToB) channels[0].send(f);
    for (const f of bToA) channels[1].send(f);
    await vi.advanceTimersByTimeAsync(10);
    expect(recs[1].messages).toEqual(aToB);
    expect(recs[0].messages).toEqual(bToA);
  });

  it('an end built on an already open data channel says HELLO at once', async () => {
    const assoc = new FakeAssociation();
    const dcA = assoc.create(0, true);
    const dcB = assoc.create(1, true);
    const a = track(new NegotiatedChannel(dcA, 'b', TIMEOUT_MS).ready());
    const b = track(new NegotiatedChannel(dcB, 'a', TIMEOUT_MS).ready());
    expect(dcA.sent.map((m) => m.byteLength)).toEqual([4]);
    await vi.advanceTimersByTimeAsync(1);
    expect([a.state, b.state]).toEqual(['resolved', 'resolved']);
  });

  it('a remote created late still completes the handshake, and no handshake word reaches listen()', async () => {
    const assoc = new FakeAssociation(30);
    /** each end, its channel, what its handlers got, and how many messages it had received at listen() */
    const ends: {
      dc: FakeDataChannel;
      channel: NegotiatedChannel;
      rec: ReturnType<typeof recorder>;
      ready: ReturnType<typeof track>;
      arrivedAtListen: number;
    }[] = [];
    const createEnd = (side: Side) => {
      const dc = assoc.create(side);
      const channel = new NegotiatedChannel(dc, side === 0 ? 'b' : 'a', TIMEOUT_MS);
      const end = { dc, channel, rec: recorder(), ready: track(channel.ready()), arrivedAtListen: -1 };
      void channel.ready().then(() => {
        channel.listen(end.rec.handlers);
        end.arrivedAtListen = dc.arrived.length;
      });
      ends.push(end);
    };

    createEnd(0);
    await vi.advanceTimersByTimeAsync(499);
    expect(ends[0].dc.sent.length).toBeGreaterThanOrEqual(5); // HELLOs into the void
    expect(ends[0].ready.state).toBe('pending');

    setTimeout(() => createEnd(1), 1);
    await vi.advanceTimersByTimeAsync(300);
    const [a, b] = ends as [(typeof ends)[0], (typeof ends)[0]];
    expect([a.ready.state, b.ready.state]).toEqual(['resolved', 'resolved']);

    // handshake words kept arriving after the ends were listened to (the late ones): none reached a handler
    const late = [a, b].flatMap((end) => end.dc.arrived.slice(end.arrivedAtListen));
    expect(late.filter((m) => m.byteLength === 4).length).toBeGreaterThan(0);
    expect(a.rec.messages).toEqual([]);
    expect(b.rec.messages).toEqual([]);

    const sent = a.dc.sent.length + b.dc.sent.length;
    await vi.advanceTimersByTimeAsync(1_000); // and no more come: the HELLOs stopped
    expect(a.dc.sent.length + b.dc.sent.length).toBe(sent);

    a.channel.send(frame(1));
    b.channel.send(frame(2));
    await vi.advanceTimersByTimeAsync(100);
    expect(b.rec.messages).toEqual([frame(1)]);
    expect(a.rec.messages).toEqual([frame(2)]);
  });

  it('messages between the handshake and listen() are delivered in order at listen()', async () => {
    const assoc = new FakeAssociation();
    const dcA = assoc.create(0);
    const dcB = assoc.create(1);
    const a = new NegotiatedChannel(dcA, 'b', TIMEOUT_MS);
    const b = new NegotiatedChannel(dcB, 'a', TIMEOUT_MS);
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([a.ready(), b.ready()]);
    const early = [frame(1), frame(2), frame(3)];
    for (const f of early) a.send(f);
    await vi.advanceTimersByTimeAsync(100);
    const rec = recorder();
    b.listen(rec.handlers);
    expect(rec.messages).toEqual(early);
    a.send(frame(4));
    await vi.advanceTimersByTimeAsync(10);
    expect(rec.messages).toEqual([...early, frame(4)]);
  });

  it('a HELLO before the open event is answered at open, and a frame before any handshake word is kept', async () => {
    // seen in Chromium: A's end hears B's HELLO while it still reads 'connecting', takes B as there and
    // sends its first frame before B has heard anything from A; B must keep that frame, not drop it
    const assoc = new FakeAssociation();
    const dcB = assoc.create(1, true);
    const b = new NegotiatedChannel(dcB, 'a', TIMEOUT_MS); // says HELLO now: lost, A's end does not exist
    const dcA = assoc.create(0, false, 70); // 'connecting' for 70 ms: B's next HELLO (at 50 ms) comes first
    const a = new NegotiatedChannel(dcA, 'b', TIMEOUT_MS);
    const aReady = track(a.ready());
    const bReady = track(b.ready());
    await vi.advanceTimersByTimeAsync(60);
    expect(dcA.readyState).toBe('connecting');
    expect(aReady.state).toBe('pending'); // A heard B, but cannot send before its end is open
    expect(bReady.state).toBe('pending'); // B has heard nothing from A yet
    await vi.advanceTimersByTimeAsync(10); // A opens: its ACK goes out
    expect(aReady.state).toBe('resolved');
    a.send(frame(1));
    await vi.advanceTimersByTimeAsync(1);
    expect(bReady.state).toBe('resolved');
    const recB = recorder();
    b.listen(recB.handlers);
    await vi.advanceTimersByTimeAsync(100);
    expect(recB.messages).toEqual([frame(1)]);
    // A answered the HELLO that came before its 'open' once it was open
    expect(dcA.sent.some((m) => m.byteLength === 4 && new DataView(m).getUint32(0, true) === 0x4b41_4454)).toBe(true);
  });

  it('ready() rejects with transport-connect-timeout when the remote never answers, and the channel closes', async () => {
    const assoc = new FakeAssociation();
    const dc = assoc.create(0);
    const channel = new NegotiatedChannel(dc, 'b', TIMEOUT_MS);
    const ready = track(channel.ready());
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS - 1);
    expect(ready.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(ready.state).toBe('rejected');
    expect(ready.error).toBeInstanceOf(TandemError);
    expect((ready.error as TandemError).code).toBe('transport-connect-timeout');
    await vi.advanceTimersByTimeAsync(10);
    expect(dc.readyState).toBe('closed');
    expect(channel.isOpen).toBe(false);
    const sent = dc.sent.length;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(dc.sent.length).toBe(sent); // the HELLOs stopped
  });

  it('a close before the handshake rejects ready() with transport-connect-failed', async () => {
    const assoc = new FakeAssociation();
    const dc = assoc.create(0);
    const ready = track(new NegotiatedChannel(dc, 'b', TIMEOUT_MS).ready());
    await vi.advanceTimersByTimeAsync(200);
    dc.close(); // the peer connection went away
    await vi.advanceTimersByTimeAsync(1);
    expect(ready.state).toBe('rejected');
    expect(ready.error).toBeInstanceOf(TandemError);
    expect((ready.error as TandemError).code).toBe('transport-connect-failed');
    const sent = dc.sent.length;
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS); // no HELLO after the close, no timeout error either
    expect(dc.sent.length).toBe(sent);
    expect((ready.error as TandemError).code).toBe('transport-connect-failed');
  });

  it('a close after the handshake reaches the close handler on both ends', async () => {
    const { channels, recs } = await connectedPair();
    channels[1].close();
    await vi.advanceTimersByTimeAsync(10);
    expect(recs[0].closes).toHaveLength(1);
    expect(recs[1].closes).toHaveLength(1);
    expect(channels[0].isOpen).toBe(false);
  });

  it('a close before listen() is delivered at listen(), after the messages that preceded it', async () => {
    const assoc = new FakeAssociation();
    const a = new NegotiatedChannel(assoc.create(0), 'b', TIMEOUT_MS);
    const b = new NegotiatedChannel(assoc.create(1), 'a', TIMEOUT_MS);
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([a.ready(), b.ready()]);
    a.send(frame(1));
    a.close();
    await vi.advanceTimersByTimeAsync(100);
    const order: string[] = [];
    b.listen({
      message: (m) => order.push(`message ${m[4]}`),
      bufferedAmountLow: () => undefined,
      close: () => order.push('close'),
    });
    expect(order).toEqual([`message ${frame(1)[4]}`, 'close']);
  });

  it('isOpen is false before the handshake, true after it', async () => {
    const assoc = new FakeAssociation();
    const a = new NegotiatedChannel(assoc.create(0), 'b', TIMEOUT_MS);
    await vi.advanceTimersByTimeAsync(300);
    expect(a.isOpen).toBe(false); // the data channel is open, but nobody answered yet
    const b = new NegotiatedChannel(assoc.create(1), 'a', TIMEOUT_MS);
    expect(b.isOpen).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(a.isOpen).toBe(true);
    expect(b.isOpen).toBe(true);
  });
});
