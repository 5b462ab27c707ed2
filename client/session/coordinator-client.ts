/**
 * The page's connection to the session coordinator at `/ws`: the shared protocol client
 * (core/protocol-client.ts: schema checks, `request` by `ref`, the server's error codes) on the
 * browser's WebSocket, plus what only a page needs:
 *
 * - After `joined`, heartbeats run at the server's interval. If the socket drops, the client reconnects
 *   with back-off and `resume`s the peer with its secret; listeners see 'connection' events so the
 *   page can show "server gone" and clear it again.
 * - The server closes a socket that has not joined within ~10 s (code 4002, see signaling/ws-gateway.ts):
 *   that is not an outage, so the client goes 'idle' quietly and opens a new socket on the next request
 *   (a request that crossed that close is sent again on the new socket).
 * - A server frame that fails the schema is shown to listeners as an `error` message; the connection stays.
 */
import { ClockOffset, epochNowMs } from '../../core/clock-offset.ts';
import { TandemError } from '../../core/errors.ts';
import type { ClientMessage, ServerMessage, ServerMessageOf } from '../../core/protocol.ts';
import { coordinatorUrl, ProtocolClient, type CloseInfo, type WithoutRef } from '../../core/protocol-client.ts';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'idle' | 'closed';

/** The server's close code for a socket that never joined (signaling/ws-gateway.ts CLOSE_NOT_JOINED). */
const CLOSE_NOT_JOINED = 4002;

export interface Credentials {
  code: string;
  peerId: string;
  peerSecret: string;
}

export class CoordinatorClient {
  /** The current socket (null between sockets); the tests drop it to act out a network change. */
  private ws: WebSocket | null = null;
  private protocol: ProtocolClient | null = null;
  /** The socket being opened after an idle close, which requests made meanwhile wait for. */
  private reopening: Promise<void> | null = null;
  private readonly messageListeners = new Set<(m: ServerMessage) => void>();
  private readonly stateListeners = new Set<(s: ConnectionState, detail: string) => void>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** This page's clock against the server's, from the heartbeats' round trips. */
  readonly serverClock = new ClockOffset();
  private credentials: Credentials | null = null;
  private closedByUs = false;
  private attempts = 0;
  state: ConnectionState = 'closed';

  constructor(
    private readonly url: string,
    private readonly requestTimeoutMs = 15_000,
  ) {}

  /** ws(s)://host/ws for the page's own origin. */
  static urlFor(location: { protocol: string; host: string }): string {
    return coordinatorUrl(`${location.protocol}//${location.host}`);
  }

  onMessage(listener: (m: ServerMessage) => void): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  onState(listener: (s: ConnectionState, detail: string) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Opens the socket; resolves once it is open. */
  connect(): Promise<void> {
    this.closedByUs = false;
    return this.open();
  }

  /** Sends a message and returns the text sent; throws TandemError('bad-message-local') if it does not match the schema. */
  send(msg: ClientMessage): string {
    if (!this.protocol)
      throw new TandemError(
        'server-gone',
        `Not connected to the server; '${msg.type}' was not sent. Wait for the page to reconnect.`,
      );
    return this.protocol.send(msg);
  }

  /** Sends with a fresh `ref` and resolves with the direct reply. */
  async request<T extends ServerMessage['type']>(
    msg: WithoutRef<ClientMessage>,
    expect: T,
  ): Promise<ServerMessageOf<T>> {
    if (this.state === 'idle' && !this.protocol) this.reopening ??= this.reopen();
    if (this.reopening) await this.reopening;
    const protocol = this.protocol;
    if (!protocol)
      throw new TandemError(
        'server-gone',
        `Not connected to the server; '${msg.type}' was not sent. Wait for the page to reconnect.`,
      );
    try {
      return await protocol.request(msg, expect);
    } catch (err) {
      // Closed for not joining in time while this was in flight (a busy main thread): send it again on a new socket.
      if (err instanceof TandemError && err.code === 'server-gone' && this.closedIdle(protocol.closeInfo))
        return this.request(msg, expect);
      throw err;
    }
  }

  /** Remembers the peer credentials so a reconnect resumes the same peer. */
  rememberPeer(credentials: Credentials | null): void {
    this.credentials = credentials;
  }

  close(): void {
    this.closedByUs = true;
    this.stopHeartbeat();
    this.protocol?.close(1000, 'page closed');
  }

  private setState(s: ConnectionState, detail: string): void {
    this.state = s;
    for (const l of this.stateListeners) l(s, detail);
  }

  private emit(m: ServerMessage): void {
    for (const l of this.messageListeners) l(m);
  }

  /** A close for not joining in time, with no peer to resume: the page goes idle instead of reconnecting. */
  private closedIdle(info: CloseInfo | null): boolean {
    return info?.code === CLOSE_NOT_JOINED && !this.credentials && !this.closedByUs;
  }

  private reopen(): Promise<void> {
    this.attempts = 0;
    const opening: Promise<void> = this.open().finally(() => {
      if (this.reopening === opening) this.reopening = null;
    });
    return opening;
  }

  private async open(): Promise<void> {
    const first = this.attempts === 0;
    this.setState(
      first ? 'connecting' : 'reconnecting',
      first ? 'connecting to the server' : `reconnecting (attempt ${this.attempts})`,
    );
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch (cause) {
      throw new TandemError('server-unreachable', `Cannot open ${this.url} (${String(cause)}).`, { cause });
    }
    let opened = false;
    const protocol = new ProtocolClient(ws, {
      timeoutMs: this.requestTimeoutMs,
      onMalformed: (frame) =>
        this.emit({
          type: 'error',
          code: 'bad-message',
          message: `unreadable server message: ${frame.reason}`,
          inReplyTo: frame.inReplyTo,
        }),
      onClose: (info) => {
        if (this.protocol === protocol) this.onSocketClose(info, opened);
      },
    });
    this.ws = ws;
    this.protocol = protocol;
    protocol.subscribe((m) => {
      if (m.type === 'joined') this.startHeartbeat(m.heartbeatIntervalMs);
      if (m.type === 'heartbeat-ack' && m.clientTimeMs !== undefined)
        this.serverClock.sample(m.clientTimeMs, m.serverTimeMs, epochNowMs());
      this.emit(m);
    });
    try {
      await protocol.opened;
    } catch (err) {
      if (!first) throw err;
      throw new TandemError(
        'server-unreachable',
        `Could not connect to ${this.url}; is the server (npm start) running and reachable from this device?`,
        { cause: err },
      );
    }
    opened = true;
    this.attempts = 0;
    this.setState('open', 'connected');
    if (this.credentials) void this.resume(this.credentials);
  }

  private onSocketClose(info: CloseInfo, wasOpen: boolean): void {
    this.stopHeartbeat();
    this.ws = null;
    this.protocol = null;
    if (this.closedIdle(info)) {
      this.setState('idle', 'not joined yet: reconnects on the next request');
      return;
    }
    if (!wasOpen && this.attempts === 0) {
      this.setState('closed', `could not connect (${info.code})`);
      return;
    }
    if (this.closedByUs) {
      this.setState('closed', 'closed');
      return;
    }
    this.attempts += 1;
    // first retry quickly (a blip must not outlast the server's heartbeat timeout), then back off
    const delay = Math.min(10_000, 250 * 2 ** Math.min(this.attempts - 1, 6));
    this.setState(
      'reconnecting',
      `server gone (code ${info.code}${info.reason ? `: ${info.reason}` : ''}); retrying in ${(delay / 1000).toFixed(1)} s`,
    );
    setTimeout(() => {
      if (!this.closedByUs) this.open().catch(() => undefined);
    }, delay);
  }

  private async resume(c: Credentials): Promise<void> {
    try {
      await this.request({ type: 'resume', code: c.code, peerId: c.peerId, peerSecret: c.peerSecret }, 'joined');
    } catch (e) {
      const err = e instanceof TandemError ? e : new TandemError('resume-failed', String(e));
      // The server no longer knows this peer (it timed out, left, or the session ended): resuming again
      // cannot work, so stop (the page joins anew); a connection problem keeps the credentials for the next try.
      if (err.code === 'not-joined' || err.code === 'wrong-secret' || err.code === 'session-not-found')
        this.credentials = null;
      this.emit({
        type: 'error',
        code: 'not-joined',
        message: `Rejoining after the reconnect failed (${err.code}): ${err.message}`,
        inReplyTo: 'resume',
      });
    }
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    const every = Math.max(50, Math.min(intervalMs, 60_000));
    const beat = () => {
      try {
        this.send({ type: 'heartbeat', clientTimeMs: epochNowMs() });
      } catch {
        // not connected: the reconnect path takes over
      }
    };
    beat(); // at once too: the clock offset is known from the first ack
    this.heartbeat = setInterval(beat, every);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}
