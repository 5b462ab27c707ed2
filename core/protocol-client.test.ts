/**
 * The protocol client's edge cases against a scripted socket (the real server is in
 * signaling/protocol-client.test.ts): replies matched by ref, server error codes, timeouts, close and
 * malformed frames with waits pending, next (looks) versus take (consumes).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TandemError } from './errors.ts';
import { rejectionCode } from './rejection-code.ts';
import type { ClientMessage, ServerMessage } from './protocol.ts';
import { coordinatorUrl, ProtocolClient, type ProtocolSocket } from './protocol-client.ts';

type Listener = (event: never) => void;

/** A socket whose server side the test plays: it records what the client sends and delivers what the test says. */
class ScriptedSocket implements ProtocolSocket {
  readonly url = 'ws://test.invalid/ws';
  readyState = 0;
  readonly sent: ClientMessage[] = [];
  private readonly listeners = new Map<string, Listener[]>();

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data) as ClientMessage);
  }

  close(code = 1005, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit('close', { code, reason });
  }

  open(): void {
    this.readyState = 1;
    this.emit('open', {});
  }

  deliver(data: unknown): void {
    this.emit('message', { data });
  }

  reply(m: ServerMessage): void {
    this.deliver(JSON.stringify(m));
  }

  fail(message: string): void {
    this.emit('error', { message });
  }

  /** The ref of the last message sent. */
  lastRef(): number {
    const last = this.sent.at(-1);
    if (last?.ref === undefined) throw new Error('nothing with a ref was sent');
    return last.ref;
  }

  private emit(type: string, event: object): void {
    for (const l of this.listeners.get(type) ?? []) (l as (e: object) => void)(event);
  }
}

/** A roster broadcast told apart by its plan id. */
const roster = (planId: string): ServerMessage => ({ type: 'roster', code: '0123ABCD', planId, peers: [] });

function openClient(options: ConstructorParameters<typeof ProtocolClient>[1] = {}): {
  socket: ScriptedSocket;
  client: ProtocolClient;
} {
  const socket = new ScriptedSocket();
  const client = new ProtocolClient(socket, options);
  socket.open();
  return { socket, client };
}

describe('ProtocolClient', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('matches replies to requests by ref, whatever order they come back in', async () => {
    const { socket, client } = openClient();
    const left = client.request({ type: 'leave' }, 'ack');
    const firstRef = socket.lastRef();
    const beat = client.request({ type: 'heartbeat' }, 'heartbeat-ack');
    const secondRef = socket.lastRef();
    expect(secondRef).not.toBe(firstRef);
    socket.reply({ type: 'heartbeat-ack', ref: secondRef, serverTimeMs: 5 });
    socket.reply({ type: 'ack', ref: firstRef, of: 'leave' });
    expect((await beat).serverTimeMs).toBe(5);
    expect((await left).of).toBe('leave');
    expect(socket.sent.map((m) => m.type)).toEqual(['leave', 'heartbeat']);
  });

  it("rejects with the server's error code, and with bad-reply for a reply of another type", async () => {
    const { socket, client } = openClient();
    const refused = client.request({ type: 'join', code: '0123ABCD', displayName: 'x' }, 'joined');
    socket.reply({
      type: 'error',
      ref: socket.lastRef(),
      code: 'session-not-found',
      message: 'no session 0123ABCD',
      inReplyTo: 'join',
    });
    expect(await rejectionCode(refused)).toBe('session-not-found');
    const odd = client.request({ type: 'heartbeat' }, 'heartbeat-ack');
    socket.reply({ type: 'ack', ref: socket.lastRef(), of: 'heartbeat' });
    expect(await rejectionCode(odd)).toBe('bad-reply');
  });

  it('exchange returns the raw reply, an error included', async () => {
    const { socket, client } = openClient();
    const reply = client.exchange({ type: 'leave' });
    const error: ServerMessage = {
      type: 'error',
      ref: socket.lastRef(),
      code: 'not-joined',
      message: 'join first',
      inReplyTo: 'leave',
    };
    socket.reply(error);
    expect(await reply).toEqual(error);
  });

  it('refuses an invalid outgoing message locally and sends nothing; check: false sends it as it is', async () => {
    const { socket, client } = openClient();
    expect(await rejectionCode(client.request({ type: 'join', code: 'lower', displayName: 'x' }, 'joined'))).toBe(
      'bad-message-local',
    );
    expect(() => client.send({ type: 'join', code: 'lower', displayName: 'x' })).toThrow(TandemError);
    expect(socket.sent).toEqual([]);
    const unchecked = client.exchange({ type: 'join', code: 'lower', displayName: 'x' }, { check: false });
    expect(socket.sent).toEqual([{ type: 'join', code: 'lower', displayName: 'x', ref: socket.lastRef() }]);
    socket.reply({ type: 'error', ref: socket.lastRef(), code: 'bad-message', message: 'code', inReplyTo: 'join' });
    expect((await unchecked).type).toBe('error');
  });

  it('times out a request and a wait with server-timeout, and a late reply still lands in the log', async () => {
    const { socket, client } = openClient({ timeoutMs: 1000 });
    const slow = client.request({ type: 'heartbeat' }, 'heartbeat-ack');
    const ref = socket.lastRef();
    const never = client.next('roster', () => true, 500);
    vi.advanceTimersByTime(500);
    expect(await rejectionCode(never)).toBe('server-timeout');
    vi.advanceTimersByTime(500);
    const err = await slow.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TandemError);
    expect((err as TandemError).code).toBe('server-timeout');
    expect((err as TandemError).message).toContain("'heartbeat'");
    socket.reply({ type: 'heartbeat-ack', ref, serverTimeMs: 1 });
    expect(client.log.map((m) => m.type)).toEqual(['heartbeat-ack']);
  });

  it('next looks in the log from `since` and leaves what it finds; take consumes it', async () => {
    const { socket, client } = openClient();
    socket.reply(roster('p1'));
    socket.reply(roster('p2'));
    expect((await client.next('roster')).planId).toBe('p1');
    expect((await client.next('roster')).planId).toBe('p1');
    expect((await client.next('roster', () => true, 1000, 1)).planId).toBe('p2');
    expect((await client.take('roster')).planId).toBe('p1');
    expect((await client.take('roster')).planId).toBe('p2');
    const third = client.take('roster');
    const watched = client.next('roster', (r) => r.planId === 'p3');
    socket.reply(roster('p3'));
    expect((await third).planId).toBe('p3');
    expect((await watched).planId).toBe('p3');
    expect(client.receivedAt).toHaveLength(3);
  });

  it('gives an arriving message to the oldest matching take only; watchers see it too', async () => {
    const { socket, client } = openClient();
    const first = client.take('roster');
    const watcher = client.next('roster');
    const second = client.take('roster');
    socket.reply(roster('p1'));
    expect((await first).planId).toBe('p1');
    expect((await watcher).planId).toBe('p1');
    socket.reply(roster('p2'));
    expect((await second).planId).toBe('p2');
  });

  it("a request's reply is consumed: take does not return it, next does", async () => {
    const { socket, client } = openClient();
    const beat = client.request({ type: 'heartbeat' }, 'heartbeat-ack');
    socket.reply({ type: 'heartbeat-ack', ref: socket.lastRef(), serverTimeMs: 1 });
    await beat;
    expect((await client.next('heartbeat-ack')).serverTimeMs).toBe(1);
    const taken = client.take('heartbeat-ack', () => true, 100);
    vi.advanceTimersByTime(100);
    expect(await rejectionCode(taken)).toBe('server-timeout');
  });

  it('rejects every pending wait with server-gone when the socket closes, after telling onClose', async () => {
    const order: string[] = [];
    const { socket, client } = openClient({ onClose: (info) => order.push(`onClose ${info.code}`) });
    socket.reply(roster('p1'));
    const request = client.request({ type: 'heartbeat' }, 'heartbeat-ack');
    const waiting = client.next('roster', (r) => r.planId === 'p2');
    const taking = client.take('session-ended');
    void request.catch(() => order.push('request rejected'));
    socket.close(4000, 'heartbeat timeout');
    expect(await rejectionCode(request)).toBe('server-gone');
    expect(await rejectionCode(waiting)).toBe('server-gone');
    expect(await rejectionCode(taking)).toBe('server-gone');
    expect(order).toEqual(['onClose 4000', 'request rejected']);
    expect(client.closeInfo).toEqual({ code: 4000, reason: 'heartbeat timeout' });
    expect(await client.closed).toEqual({ code: 4000, reason: 'heartbeat timeout' });
    // what already arrived can still be read; nothing new can
    expect((await client.next('roster')).planId).toBe('p1');
    expect(await rejectionCode(client.next('roster', (r) => r.planId === 'p9'))).toBe('server-gone');
    expect(await rejectionCode(client.request({ type: 'heartbeat' }, 'heartbeat-ack'))).toBe('server-gone');
    expect(() => client.send({ type: 'heartbeat' })).toThrow(/not sent/);
    expect(client.isOpen).toBe(false);
  });

  it('fails every wait with bad-reply on a frame that breaks the protocol (binary ones included)', async () => {
    for (const frame of ['{"type":"roster"}', 'not json', new Uint8Array([1, 2])]) {
      const { socket, client } = openClient();
      const waiting = client.next('roster');
      const request = client.request({ type: 'heartbeat' }, 'heartbeat-ack');
      socket.deliver(frame);
      expect(await rejectionCode(waiting)).toBe('bad-reply');
      expect(await rejectionCode(request)).toBe('bad-reply');
      expect(await rejectionCode(client.take('roster'))).toBe('bad-reply');
      expect(client.log).toEqual([]);
    }
  });

  it('with onMalformed, reports a bad frame and carries on', async () => {
    const reported: { reason: string; inReplyTo: string | null }[] = [];
    const { socket, client } = openClient({ onMalformed: (f) => reported.push(f) });
    const waiting = client.next('roster');
    socket.deliver(JSON.stringify({ type: 'roster', code: '0123ABCD', planId: 1, peers: [] }));
    socket.reply(roster('p7'));
    expect((await waiting).planId).toBe('p7');
    expect(reported).toHaveLength(1);
    expect(reported[0]?.inReplyTo).toBe('roster');
    expect(reported[0]?.reason).toMatch(/roster/);
  });

  it('calls subscribers for every message, until they unsubscribe', () => {
    const { socket, client } = openClient();
    const seen: (string | null)[] = [];
    const off = client.subscribe((m) => {
      if (m.type === 'roster') seen.push(m.planId);
    });
    socket.reply(roster('p1'));
    off();
    socket.reply(roster('p2'));
    expect(seen).toEqual(['p1']);
  });

  it("opened rejects with server-unreachable and the socket's reason when it closes before opening", async () => {
    const socket = new ScriptedSocket();
    const client = new ProtocolClient(socket);
    socket.fail('Unexpected server response: 503');
    socket.close(1006);
    const err = await client.opened.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TandemError);
    expect((err as TandemError).code).toBe('server-unreachable');
    expect((err as TandemError).message).toContain('503');
  });

  it('connect resolves once open, and gives up with server-timeout (closing the socket) when it never opens', async () => {
    let socket = new ScriptedSocket();
    const opening = ProtocolClient.connect('ws://x/ws', () => socket);
    socket.open();
    expect((await opening).isOpen).toBe(true);

    socket = new ScriptedSocket();
    const stuck = ProtocolClient.connect('ws://x/ws', () => socket, { connectTimeoutMs: 2000 });
    vi.advanceTimersByTime(2000);
    expect(await rejectionCode(stuck)).toBe('server-timeout');
    expect(socket.readyState).toBe(3);

    const refused = ProtocolClient.connect('not a url', () => {
      throw new SyntaxError('invalid URL');
    });
    expect(await rejectionCode(refused)).toBe('server-unreachable');
  });
});

describe('coordinatorUrl', () => {
  it('maps http(s) to ws(s) and appends /ws', () => {
    expect(coordinatorUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/ws');
    expect(coordinatorUrl('https://10.0.0.2:8443/')).toBe('wss://10.0.0.2:8443/ws');
  });
});
