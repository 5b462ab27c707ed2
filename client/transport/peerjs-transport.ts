/**
 * WebRTC PipelineTransport through PeerJS, against the access point's own PeerServer at /peerjs.
 * The ONLY file in the client that imports 'peerjs'.
 *
 *   const transport = await createPeerJsTransport({ peerId, token, host: location.hostname, port, secure });
 *
 * `token` is the page's PeerJS token from the coordinator's `joined` message: the access point admits no
 * registration of `peerId` without it. Until a stage sets its link policy (on its assignment), frames are
 * capped at PRE_ASSIGNMENT_MAX_FRAME_BYTES, so no one can make the page allocate much before it has peers.
 *   transport.onFrame((frame, from) => ...);
 *   await transport.send(successorId, frame);
 *
 * PeerJS only carries (createPeerJsCarrier): it registers, dials and accepts 'raw', reliable, ordered
 * data connections, and the frames (our own codec, messages <= 256 KiB, the SCTP limit) travel on a
 * second, negotiated channel of each connection (negotiated-channel.ts); back-pressure waits on its
 * bufferedAmount. Where the browser can transfer that channel to a worker, the inference worker owns it
 * and the main thread never touches the frames (client/runtime/worker-stage.ts); elsewhere this file's
 * transport runs the links here. No STUN/TURN servers by default: peers are expected on one LAN (or pass
 * iceServers).
 */
import { Peer, type DataConnection, type PeerError } from 'peerjs';
import { TandemError } from '../../core/errors.ts';
import { SCTP_MAX_MESSAGE_BYTES } from '../../core/frame-codec.ts';
import { LinkHub, type ByteChannel, type FrameLinkOptions } from '../../core/transport/frame-link.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS, type PipelineTransport } from '../../core/transport/transport.ts';
import {
  FRAME_CHANNEL_HANDSHAKE_MS,
  FRAME_CHANNEL_ID,
  FRAME_CHANNEL_LABEL,
  NegotiatedChannel,
} from './negotiated-channel.ts';

/** Pause before re-registering with the signaling server after its socket dropped. */
const SIGNALING_RECONNECT_DELAY_MS = 1_000;
/** Frame limit before an assignment says how large hidden states can be (no stage frame flows before it). */
const PRE_ASSIGNMENT_MAX_FRAME_BYTES = SCTP_MAX_MESSAGE_BYTES;

export interface PeerJsTransportOptions {
  peerId: string;
  /** This page's PeerJS token (the `joined` message's peerjs.token). */
  token: string;
  host: string;
  port: number;
  secure: boolean;
  /** Mount path of the PeerServer (default '/peerjs'). */
  path?: string;
  iceServers?: RTCIceServer[];
  /** How long to wait for the signaling server to accept our id (default 15 s). */
  openTimeoutMs?: number;
  link?: FrameLinkOptions;
}

/** A Peer registered with the signaling server, and how to dial from it. */
interface RegisteredPeer {
  peer: Peer;
  /** Opens a 'raw' data connection; `onCreate` gets it at once, before it opens (its peer connection exists). */
  dial: (remoteId: string, timeoutMs: number, onCreate?: (conn: DataConnection) => void) => Promise<DataConnection>;
}

/**
 * Registers `opts.peerId` with the signaling server; rejects with TandemError('signaling-unavailable' |
 * 'transport-id-taken'). Later signaling errors and drops go to `reportError`; the Peer re-registers by itself.
 */
async function registerPeer(
  opts: PeerJsTransportOptions,
  reportError: (err: TandemError) => void,
): Promise<RegisteredPeer> {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- peerjs declares its options as a class (PeerOptions) but takes a plain object and does not export the class at runtime
  const peer = new Peer(opts.peerId, {
    host: opts.host,
    port: opts.port,
    path: opts.path ?? '/peerjs',
    secure: opts.secure,
    token: opts.token,
    config: { iceServers: opts.iceServers ?? [] },
    // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- 1 is LogLevel.Errors; peerjs exports the enum as a type only, so its value cannot be imported
    debug: 1,
  });
  const pendingDials = new Map<string, (err: TandemError) => void>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      peer.off('open', opened);
      peer.off('error', failed);
      peer.destroy();
      reject(
        new TandemError(
          'signaling-unavailable',
          `The signaling server at ${opts.host}:${opts.port}${opts.path ?? '/peerjs'} did not answer within ${(opts.openTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 1000} s; check that the access point is running and reachable.`,
        ),
      );
    }, opts.openTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    // Both listeners go once the id is registered: a later error (a dial to a peer that left) must not
    // destroy the Peer, which would leave this page unable to make or take any link.
    const opened = (): void => {
      clearTimeout(timer);
      peer.off('error', failed);
      resolve();
    };
    const failed = (err: PeerError<string>): void => {
      clearTimeout(timer);
      peer.off('open', opened);
      peer.destroy();
      reject(
        err.type === 'unavailable-id'
          ? new TandemError(
              'transport-id-taken',
              `Peer id '${opts.peerId}' is already registered with the signaling server; reload the page to get a fresh id.`,
              { cause: err },
            )
          : new TandemError('signaling-unavailable', `Could not register with the signaling server: ${err.message}.`, {
              cause: err,
            }),
      );
    };
    peer.once('open', opened);
    peer.once('error', failed);
  });

  const dial = (
    remoteId: string,
    timeoutMs: number,
    onCreate?: (conn: DataConnection) => void,
  ): Promise<DataConnection> =>
    new Promise((resolve, reject) => {
      const conn = peer.connect(remoteId, { serialization: 'raw', reliable: true }) as DataConnection | undefined;
      if (!conn) {
        // PeerJS returns nothing (and emits 'disconnected') while its signaling socket is down.
        reject(
          new TandemError(
            'transport-connect-failed',
            `Cannot dial '${remoteId}': this page is not on the signaling server right now (re-registering).`,
          ),
        );
        return;
      }
      onCreate?.(conn);
      const fail = (err: TandemError): void => {
        clearTimeout(timer);
        pendingDials.delete(remoteId);
        conn.close();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(
            new TandemError(
              'transport-connect-timeout',
              `No WebRTC data channel to peer '${remoteId}' within ${timeoutMs / 1000} s: the devices may not share a network (no STUN/TURN is configured) or the peer left.`,
            ),
          ),
        timeoutMs,
      );
      pendingDials.set(remoteId, fail);
      conn.once('open', () => {
        clearTimeout(timer);
        pendingDials.delete(remoteId);
        resolve(conn);
      });
      conn.once('error', (err) =>
        fail(
          new TandemError('transport-connect-failed', `Data connection to '${remoteId}' failed: ${err.message}.`, {
            cause: err,
          }),
        ),
      );
    });

  peer.on('error', (err: PeerError<string>) => {
    if (err.type === 'peer-unavailable') {
      // PeerJS names the missing peer only in the message text ("Could not connect to peer X").
      for (const [remoteId, fail] of pendingDials) {
        if (err.message.includes(remoteId))
          fail(
            new TandemError(
              'transport-connect-failed',
              `Peer '${remoteId}' is not connected to the signaling server (it left or never joined).`,
              { cause: err },
            ),
          );
      }
      return;
    }
    reportError(new TandemError('signaling-error', `Signaling error (${err.type}): ${err.message}.`, { cause: err }));
  });
  peer.on('disconnected', () => {
    console.warn(
      `[tandem] peerjs: ${opts.peerId} lost the signaling server${peer.destroyed ? ' (closed)' : '; re-registering'}`,
    );
    reportError(
      new TandemError(
        'signaling-disconnected',
        'Lost the signaling server; open data channels keep working, new ones cannot be made until it is back. Reconnecting.',
      ),
    );
    // PeerJS does not re-register by itself; without this a page stays unreachable for new links.
    setTimeout(() => {
      if (!peer.destroyed && peer.disconnected) peer.reconnect();
    }, SIGNALING_RECONNECT_DELAY_MS);
  });

  return { peer, dial };
}

/**
 * Register `peerId` with the signaling server and return a transport on this thread: PeerJS carries, and
 * the frames travel on each connection's negotiated frame channel, as they do where the stage runs in the
 * inference worker (stage-worker-host.ts), so pages of either kind share a ring.
 */
export async function createPeerJsTransport(opts: PeerJsTransportOptions): Promise<PipelineTransport> {
  let hub: LinkHub | null = null;
  const channels = new Map<number, RTCDataChannel>();
  const adopt = (c: CarriedChannel): NegotiatedChannel => {
    channels.set(c.key, c.channel);
    c.channel.addEventListener('close', () => {
      if (channels.delete(c.key)) carrier.closeLink(c.key);
    });
    return new NegotiatedChannel(c.channel, c.peerId, FRAME_CHANNEL_HANDSHAKE_MS);
  };
  const carrier = await createPeerJsCarrier(opts, {
    incoming: (c) => {
      const channel = adopt(c);
      channel.ready().then(
        () => (hub ? hub.acceptIncoming(c.peerId, channel) : channel.close()),
        () => undefined, // closed by then: its connection goes with it
      );
    },
    closed: (key) => channels.get(key)?.close(),
    error: (err) => hub?.reportError(null, err),
  });
  const trace = (line: string): void => console.info(`[tandem] links: ${line}`);
  const dial = async (remoteId: string, timeoutMs: number): Promise<ByteChannel> => {
    let channel: NegotiatedChannel | null = null;
    try {
      await carrier.dial(remoteId, timeoutMs, (c) => (channel = adopt(c)));
    } catch (err) {
      (channel as NegotiatedChannel | null)?.close(); // its handshake would wait in vain
      throw err;
    }
    await channel!.ready();
    return channel!;
  };
  hub = new LinkHub(opts.peerId, dial, { maxFrameBytes: PRE_ASSIGNMENT_MAX_FRAME_BYTES, trace, ...opts.link }, () =>
    carrier.close(),
  );
  return hub;
}

/** Tandem speaks only 'raw' connections (its own frame codec): another kind is refused and closed. */
function rawOnly(conn: DataConnection, reportError: (err: TandemError) => void): boolean {
  if (conn.serialization === 'raw') return true;
  reportError(
    new TandemError(
      'transport-protocol',
      `Peer '${conn.peer}' opened a '${conn.serialization}' connection; Tandem needs 'raw'. Is it running the same build?`,
    ),
  );
  conn.close();
  return false;
}

/** A frame channel the carrier made on a new PeerJS connection (not open yet): transfer it, if at all, in this task. */
export interface CarriedChannel {
  /** the carrier's name for the connection under it (closeLink, `closed`) */
  key: number;
  peerId: string;
  direction: 'incoming' | 'outgoing';
  channel: RTCDataChannel;
}

export interface FrameChannelSink {
  /** A peer opened a connection to us: transfer `c.channel` now or never (it is not open yet). */
  incoming(c: CarriedChannel): void;
  /** The PeerJS connection under channel `key` closed. */
  closed(key: number, reason: string): void;
  /** A signaling-level problem (the server went away, a peer opened a connection of another kind). */
  error(err: TandemError): void;
}

/**
 * PeerJS as a carrier only: it registers, dials and accepts data connections, and on each new one creates
 * Tandem's negotiated frame channel (FRAME_CHANNEL_ID, both ends alike), which the caller transfers to the
 * inference worker; the worker runs the link layer over it (negotiated-channel.ts). The channel is made
 * as the connection is, before it opens: a channel made on an open connection opens at once, and in
 * Chromium one that opened while it moved to the worker could stay 'connecting' there, unable to send.
 */
export interface PeerJsCarrier {
  readonly localId: string;
  /**
   * Dials `peerId`; `take` gets the new frame channel at once (transfer it there); resolves when the
   * connection is open, rejects as PeerJS's dial fails.
   */
  dial(peerId: string, timeoutMs: number, take: (c: CarriedChannel) => void): Promise<void>;
  /** Closes the connection under channel `key` (its link closed in the worker). */
  closeLink(key: number): void;
  close(): void;
}

export async function createPeerJsCarrier(
  opts: PeerJsTransportOptions,
  sink: FrameChannelSink,
): Promise<PeerJsCarrier> {
  const { peer, dial } = await registerPeer(opts, (err) => sink.error(err));
  const connections = new Map<number, DataConnection>();
  let nextKey = 1;
  const carry = (conn: DataConnection, direction: 'incoming' | 'outgoing'): CarriedChannel => {
    const key = nextKey++;
    connections.set(key, conn);
    const channel = conn.peerConnection.createDataChannel(FRAME_CHANNEL_LABEL, {
      negotiated: true,
      id: FRAME_CHANNEL_ID,
      ordered: true,
    });
    const gone = (reason: string) => {
      if (connections.delete(key)) sink.closed(key, reason);
    };
    conn.on('close', () => gone('the data connection closed'));
    conn.on('error', (err) => gone(`data connection error: ${err.message}`));
    return { key, peerId: conn.peer, direction, channel };
  };
  peer.on('connection', (conn: DataConnection) => {
    if (!rawOnly(conn, (err) => sink.error(err))) return;
    sink.incoming(carry(conn, 'incoming'));
  });
  return {
    localId: opts.peerId,
    async dial(peerId, timeoutMs, take) {
      await dial(peerId, timeoutMs, (conn) => take(carry(conn, 'outgoing')));
    },
    closeLink(key) {
      const conn = connections.get(key);
      connections.delete(key);
      conn?.close();
    },
    close() {
      for (const conn of connections.values()) conn.close();
      connections.clear();
      peer.destroy();
    },
  };
}
