/**
 * The PeerJS transport's life cycle against a stand-in Peer (the real one needs a browser; e2e/session.test.ts
 * runs it there): registration, and that a later PeerJS error (a dial to a page that has left) leaves the
 * Peer registered. Until session 4 the registration's error listener stayed installed and destroyed the
 * Peer on the first such error, so every later link of that page failed.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';

/** The frame channel the carrier creates on a connection; it never opens here (the dial fails first). */
class FakeFrameChannel extends EventTarget {
  readyState: RTCDataChannelState = 'connecting';
  readonly bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  binaryType: BinaryType = 'blob';
  send(): void {}
  close(): void {
    this.readyState = 'closed';
    this.dispatchEvent(new Event('close'));
  }
}

class FakePeer extends EventEmitter {
  static last: FakePeer | null = null;
  destroyed = false;
  disconnected = false;
  dialed: string[] = [];

  constructor(readonly id: string) {
    super();
    FakePeer.last = this;
  }

  /** The signaling server has nobody under `remoteId`: PeerJS emits 'peer-unavailable' on the Peer. */
  connect(remoteId: string): EventEmitter | undefined {
    if (this.disconnected) return undefined;
    this.dialed.push(remoteId);
    const conn = new EventEmitter();
    queueMicrotask(() =>
      this.emit(
        'error',
        Object.assign(new Error(`Could not connect to peer ${remoteId}`), { type: 'peer-unavailable' }),
      ),
    );
    // the carrier makes its frame channel on the connection's peer connection at once
    const frameChannel = new FakeFrameChannel();
    return Object.assign(conn, {
      close: () => undefined,
      peer: remoteId,
      peerConnection: { createDataChannel: () => frameChannel },
    });
  }

  destroy(): void {
    this.destroyed = true;
    this.disconnected = true;
  }
}

vi.mock('peerjs', () => ({ Peer: FakePeer }));

const { createPeerJsTransport } = await import('./peerjs-transport.ts');

const OPTS = { peerId: 'me', token: 't'.repeat(43), host: '127.0.0.1', port: 1, secure: false };

afterEach(() => {
  FakePeer.last = null;
});

describe('createPeerJsTransport', () => {
  it('a dial to a page that left fails with transport-connect-failed and leaves the Peer registered', async () => {
    const opening = createPeerJsTransport({ ...OPTS, link: { connectRetryMs: 0 } });
    const peer = FakePeer.last!;
    peer.emit('open', 'me');
    const transport = await opening;
    await expect(transport.connect('gone', 1_000)).rejects.toMatchObject({ code: 'transport-connect-failed' });
    expect(peer.destroyed).toBe(false);
    // the page can still dial (another page that left here: the dial reaches the server again)
    await expect(transport.connect('gone-too', 1_000)).rejects.toMatchObject({ code: 'transport-connect-failed' });
    expect(peer.dialed).toEqual(['gone', 'gone-too']);
    transport.close();
    expect(peer.destroyed).toBe(true);
  });

  it('an error before registration rejects (id taken) and destroys the Peer', async () => {
    const opening = createPeerJsTransport(OPTS);
    const peer = FakePeer.last!;
    peer.emit('error', Object.assign(new Error('ID "me" is taken'), { type: 'unavailable-id' }));
    await expect(opening).rejects.toMatchObject({ code: 'transport-id-taken' });
    expect(peer.destroyed).toBe(true);
  });
});
