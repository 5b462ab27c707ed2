import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.ts';
import { frameToFloat32, frameToInt32, hiddenFrame, tokenFrame, type Frame } from '../frame-codec.ts';
import { LoopbackNetwork } from './loopback-transport.ts';
import type { TransportEvent } from './transport.ts';

function collect(t: { onFrame: (h: (f: Frame, from: string) => void) => unknown }): {
  frames: [Frame, string][];
  next: (n: number) => Promise<[Frame, string][]>;
} {
  const frames: [Frame, string][] = [];
  const waiters: [number, () => void][] = [];
  t.onFrame((f, from) => {
    frames.push([f, from]);
    for (const [n, w] of waiters) if (frames.length >= n) w();
  });
  return {
    frames,
    next: (n) =>
      new Promise((resolve) => {
        if (frames.length >= n) resolve(frames);
        else waiters.push([n, () => resolve(frames)]);
      }),
  };
}

describe('loopback transport', () => {
  it('delivers frames in order around a 3-peer ring, multi-chunk included', async () => {
    const net = new LoopbackNetwork();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => net.createTransport(id));
    const rb = collect(b);
    const rc = collect(c);
    const ra = collect(a);
    const big = new Float32Array(200_000).map((_, i) => i * 0.5); // 800 KB -> 4 chunks
    await Promise.all([
      a.send('b', hiddenFrame(1, 0, big, [1, 200, 1000])),
      a.send('b', hiddenFrame(1, 1, Float32Array.of(1, 2), [1, 1, 2])),
    ]);
    await rb.next(2);
    expect(rb.frames.map(([f, from]) => [f.step, from])).toEqual([
      [0, 'a'],
      [1, 'a'],
    ]);
    const got = frameToFloat32(rb.frames[0][0]);
    expect(got.length).toBe(big.length);
    expect(got.every((x, i) => x === big[i])).toBe(true);
    await b.send('c', hiddenFrame(1, 0, Float32Array.of(3), [1, 1, 1]));
    await c.send('a', tokenFrame(1, 0, [42]));
    await rc.next(1);
    await ra.next(1);
    expect(Array.from(frameToInt32(ra.frames[0][0]))).toEqual([42]);
    expect(ra.frames[0][1]).toBe('c');
    for (const t of [a, b, c]) t.close();
  });

  it('applies back-pressure: bufferedAmount never passes the high-water mark', async () => {
    let peak = 0;
    const net = new LoopbackNetwork(
      {
        bytesPerSec: 20e6,
        tamper: (_from, _to, m) => m,
      },
      { highWaterBytes: 300 * 1024, lowWaterBytes: 64 * 1024, maxChunkBytes: 64 * 1024 },
    );
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    const rb = collect(b);
    await a.connect('b');
    // Sample the sender's buffered bytes by wrapping setTimeout-driven delivery: poll while sending.
    const sends: Promise<void>[] = [];
    const sampler = setInterval(() => {
      // reach into the hub for the test: its private links, each with the channel it sends on
      const hub = a as unknown as { links: Map<string, { channel: { bufferedAmount: number } }[]> };
      const link = hub.links.get('b')![0];
      peak = Math.max(peak, link.channel.bufferedAmount);
    }, 1);
    const t0 = performance.now();
    for (let i = 0; i < 8; i++) sends.push(a.send('b', hiddenFrame(1, i, new Float32Array(64 * 1024), [1, 64, 1024]))); // 256 KiB each
    await Promise.all(sends);
    await rb.next(8);
    clearInterval(sampler);
    const seconds = (performance.now() - t0) / 1000;
    expect(rb.frames.map(([f]) => f.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(300 * 1024);
    expect(seconds).toBeGreaterThan(((2 * 1024 * 1024) / 20e6) * 0.8); // the wire speed was honoured
    a.close();
    b.close();
  });

  it('reports a corrupted message as a frame error event and keeps the link usable', async () => {
    let corruptNext = true;
    const net = new LoopbackNetwork({
      tamper: (_f, _t, m) => {
        if (!corruptNext) return m;
        corruptNext = false;
        const bad = m.slice();
        bad[10] ^= 0xff; // request id byte: caught by the header checksum
        return bad;
      },
    });
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    const events: TransportEvent[] = [];
    b.onEvent((e) => events.push(e));
    const rb = collect(b);
    await a.send('b', tokenFrame(7, 0, [1]));
    await a.send('b', tokenFrame(7, 1, [2]));
    await rb.next(1);
    await new Promise((r) => setTimeout(r, 5));
    const errors = events.filter((e) => e.type === 'error');
    expect(errors.map((e) => e.error.code)).toEqual(['frame-malformed']);
    // Frame 0 never decoded, so the strict assembler had no expectation yet and frame 1 is accepted.
    expect(rb.frames.map(([f]) => f.step)).toEqual([1]);
  });

  it('reports a dropped frame as a sequence gap', async () => {
    let n = 0;
    const net = new LoopbackNetwork({ tamper: (_f, _t, m) => (n++ === 1 ? null : m) });
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    const codes: string[] = [];
    b.onEvent((e) => {
      if (e.type === 'error') codes.push(e.error.code);
    });
    const rb = collect(b);
    for (let i = 0; i < 3; i++) await a.send('b', tokenFrame(1, i, [i]));
    await rb.next(1);
    await new Promise((r) => setTimeout(r, 5));
    expect(rb.frames.map(([f]) => f.step)).toEqual([0]); // frame 1 lost, frame 2 rejected: the stream broke
    expect(codes).toEqual(['frame-sequence-gap']);
  });

  it('re-dials a peer that registers a moment late (signaling socket re-opening), and gives up on one that never does', async () => {
    const net = new LoopbackNetwork({}, { connectRetryMs: 2_000 });
    const a = net.createTransport('a');
    const rb: { frames: [Frame, string][] }[] = [];
    setTimeout(() => rb.push(collect(net.createTransport('late'))), 700);
    await a.send('late', tokenFrame(1, 0, [7]));
    await new Promise((r) => setTimeout(r, 20));
    expect(rb[0]?.frames.map(([f, from]) => [Array.from(frameToInt32(f)), from])).toEqual([[[7], 'a']]);
    const t0 = performance.now();
    await expect(a.send('never', tokenFrame(1, 0, [1]))).rejects.toMatchObject({ code: 'transport-connect-failed' });
    expect(performance.now() - t0).toBeGreaterThan(1_400);
    a.close();
  });

  it('fails clearly for an unknown peer, a closed link and a taken id', async () => {
    const net = new LoopbackNetwork();
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    await expect(a.send('nobody', tokenFrame(1, 0, [1]))).rejects.toMatchObject({ code: 'transport-connect-failed' });
    expect(() => net.createTransport('a')).toThrow(TandemError);
    await a.connect('b');
    const closes: TransportEvent[] = [];
    a.onEvent((e) => closes.push(e));
    b.close();
    await expect(a.send('b', tokenFrame(1, 0, [1]))).rejects.toMatchObject({ code: 'transport-connect-failed' });
    expect(closes.some((e) => e.type === 'close' && e.peerId === 'b')).toBe(true);
    a.close();
    await expect(a.send('b', tokenFrame(1, 0, [1]))).rejects.toMatchObject({ code: 'transport-closed' });
  });

  it('closes the channel on a message over the SCTP limit, like a data channel', async () => {
    const net = new LoopbackNetwork({}, { maxChunkBytes: 300 * 1024 });
    const a = net.createTransport('a');
    net.createTransport('b');
    await expect(a.send('b', hiddenFrame(1, 0, new Float32Array(100_000), [1, 100, 1000]))).rejects.toMatchObject({
      code: 'transport-closed',
    });
  });

  it('holds a channel its policy does not admit yet, and releases it with its frames when a new policy does', async () => {
    // Assignments reach pages at different moments: the new successor may dial before this page has
    // applied the plan that makes it a neighbour.
    const net = new LoopbackNetwork();
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    const rb = collect(b);
    const aEvents: TransportEvent[] = [];
    a.onEvent((e) => aEvents.push(e));
    b.setPolicy({ admitChannel: (id) => id === 'old-neighbour', maxFrameBytes: 1024 });
    await a.send('b', tokenFrame(1, 0, [5]));
    await a.send('b', tokenFrame(1, 1, [6]));
    await new Promise((r) => setTimeout(r, 20));
    expect(rb.frames).toEqual([]);
    b.setPolicy({ admitChannel: (id) => id === 'other', maxFrameBytes: 1024 });
    await new Promise((r) => setTimeout(r, 20));
    expect(rb.frames).toEqual([]);
    b.setPolicy({ admitChannel: (id) => id === 'a', maxFrameBytes: 1024 });
    const subscribedAfterPolicy = collect(b); // a stage sets its policy, then subscribes, in one turn
    await a.send('b', tokenFrame(1, 2, [7]));
    await rb.next(3);
    await subscribedAfterPolicy.next(3);
    expect(subscribedAfterPolicy.frames).toEqual(rb.frames);
    expect(rb.frames.map(([f, from]) => [f.step, Array.from(frameToInt32(f)), from])).toEqual([
      [0, [5], 'a'],
      [1, [6], 'a'],
      [2, [7], 'a'],
    ]);
    expect(aEvents.filter((e) => e.type === 'close')).toEqual([]);
    a.close();
    b.close();
  });

  it('keeps frames that arrive while nothing listens (between two stages) for the next subscriber, in order and bounded', async () => {
    const net = new LoopbackNetwork();
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    const oldFrames: Frame[] = [];
    const unsubscribe = b.onFrame((f) => oldFrames.push(f));
    await a.send('b', tokenFrame(1, 0, [5]));
    await new Promise((r) => setTimeout(r, 20));
    expect(oldFrames).toHaveLength(1);
    // b's stage is replaced: the old one is disposed, frames come before the new one subscribes
    unsubscribe();
    for (let step = 1; step <= 20; step++) await a.send('b', tokenFrame(2, step, [step]));
    await new Promise((r) => setTimeout(r, 20));
    expect(oldFrames).toHaveLength(1);
    const fresh = collect(b);
    await fresh.next(16);
    await new Promise((r) => setTimeout(r, 20));
    // the 16 newest, in order (the first 4 made room)
    expect(fresh.frames.map(([f]) => f.step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 5));
    a.close();
    b.close();
  });

  it('closes a held channel whose sender keeps sending, and one still held when the transport closes', async () => {
    const net = new LoopbackNetwork();
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    const c = net.createTransport('c');
    const rb = collect(b);
    const closed: string[] = [];
    a.onEvent((e) => e.type === 'close' && closed.push(`a<-${e.peerId}`));
    c.onEvent((e) => e.type === 'close' && closed.push(`c<-${e.peerId}`));
    b.setPolicy({ admitChannel: () => false, maxFrameBytes: 1024 });
    const sends: Promise<void>[] = [];
    for (let step = 0; step < 12; step++) sends.push(a.send('b', tokenFrame(1, step, [step])).catch(() => undefined));
    await Promise.all(sends);
    await c.send('b', tokenFrame(1, 0, [1]));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toEqual(['a<-b']);
    b.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toEqual(['a<-b', 'c<-b']);
    expect(rb.frames).toEqual([]);
    a.close();
    c.close();
  });
});
