/**
 * The page's WebSocket client for the session coordinator at `/ws` (core/protocol.ts).
 *
 * - Every outgoing message is checked against the shared schema before it leaves (a bug here gets a
 *   clear local error, not a server round trip); every incoming frame is parsed with the same schema.
 * - `request()` numbers messages with `ref` and resolves with the server's direct reply (or rejects
 *   with the server's `error` as a TandemError carrying its code).
 * - After `joined`, heartbeats run at the server's interval. If the socket drops, the client reconnects
 *   with back-off and `resume`s the peer with its secret; listeners see 'connection' events so the
 *   page can show "server gone" and clear it again.
 * - The server closes a socket that has not joined within ~10 s (code 4002, see signaling/ws-gateway.ts):
 *   that is not an outage, so the client goes 'idle' quietly and opens a new socket on the next request.
 */
import { TandemError } from '../../core/errors.ts';
import {
  clientMessageSchema,
  parseServerMessage,
  type ClientMessage,
  type ServerMessage,
  type ServerMessageOf,
} from '../../core/protocol.ts';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'idle' | 'closed';

/** The server's close code for a socket that never joined (signaling/ws-gateway.ts CLOSE_NOT_JOINED). */
const CLOSE_NOT_JOINED = 4002;

export interface Credentials {
  code: string;
  peerId: string;
  peerSecret: string;
}

type Pending = {
  resolve: (m: ServerMessage) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  text: string;
};

/** Distributive Omit, so that `ref` can be left off any member of the union. */
type WithoutRef<T> = T extends unknown ? Omit<T, 'ref'> : never;

export class CoordinatorClient {
  private ws: WebSocket | null = null;
  private nextRef = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly messageListeners = new Set<(m: ServerMessage) => void>();
  private readonly stateListeners = new Set<(s: ConnectionState, detail: string) => void>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
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
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
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

  private setState(s: ConnectionState, detail: string): void {
    this.state = s;
    for (const l of this.stateListeners) l(s, detail);
  }

  private open(): Promise<void> {
    this.setState(
      this.attempts === 0 ? 'connecting' : 'reconnecting',
      this.attempts === 0 ? 'connecting to the server' : `reconnecting (attempt ${this.attempts})`,
    );
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(this.url);
      } catch (cause) {
        reject(new TandemError('server-unreachable', `Cannot open ${this.url} (${String(cause)}).`, { cause }));
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.attempts = 0;
        this.setState('open', 'connected');
        resolve();
        if (this.credentials) void this.resume(this.credentials);
      };
      ws.onmessage = (ev) => this.handleFrame(ev.data);
      // an error is always followed by close, which does the work
      ws.onerror = () => undefined;
      ws.onclose = (ev) => {
        this.stopHeartbeat();
        this.ws = null;
        if (ev.code === CLOSE_NOT_JOINED && !this.credentials && !this.closedByUs) {
          // Closed for not joining in time; a request sent meanwhile (a busy main thread) is sent again on a new socket.
          this.setState('idle', 'not joined yet: reconnects on the next request');
          if (this.pending.size > 0) this.reopenAndResend();
          return;
        }
        for (const [ref, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(
            new TandemError(
              'server-gone',
              'The connection to the server closed before it answered; the page reconnects by itself.',
            ),
          );
          this.pending.delete(ref);
        }
        if (!opened && this.attempts === 0) {
          this.setState('closed', `could not connect (${ev.code})`);
          reject(
            new TandemError(
              'server-unreachable',
              `Could not connect to ${this.url}; is the server (npm start) running and reachable from this device?`,
            ),
          );
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
          `server gone (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}); retrying in ${(delay / 1000).toFixed(1)} s`,
        );
        setTimeout(() => {
          if (!this.closedByUs) this.open().catch(() => undefined);
        }, delay);
      };
    });
  }

  private handleFrame(data: unknown): void {
    if (typeof data !== 'string') return;
    const parsed = parseServerMessage(data);
    if (!parsed.ok) {
      // a server we do not understand: surface it like a server error, keep the connection
      const synthetic: ServerMessage = {
        type: 'error',
        code: 'bad-message',
        message: `unreadable server message: ${parsed.message}`,
        inReplyTo: parsed.inReplyTo,
      };
      for (const l of this.messageListeners) l(synthetic);
      return;
    }
    const msg = parsed.message;
    const ref = 'ref' in msg ? msg.ref : undefined;
    if (ref !== undefined) {
      const p = this.pending.get(ref);
      if (p) {
        this.pending.delete(ref);
        clearTimeout(p.timer);
        if (msg.type === 'error') p.reject(new TandemError(msg.code, msg.message));
        else p.resolve(msg);
      }
    }
    if (msg.type === 'joined') this.startHeartbeat(msg.heartbeatIntervalMs);
    for (const l of this.messageListeners) l(msg);
  }

  /** Sends a message and returns the text sent; throws TandemError('bad-message-local') if it does not match the schema. */
  send(msg: ClientMessage): string {
    const checked = clientMessageSchema.safeParse(msg);
    if (!checked.success) {
      const issue = checked.error.issues.at(0);
      throw new TandemError(
        'bad-message-local',
        `The page built an invalid '${msg.type}' message (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'schema'}); this is a bug in the page.`,
      );
    }
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      throw new TandemError(
        'server-gone',
        `Not connected to the server; '${msg.type}' was not sent. Wait for the page to reconnect.`,
      );
    }
    const text = JSON.stringify(checked.data);
    this.ws.send(text);
    return text;
  }

  /** After a 4002 close with requests in flight: a new socket, and the same requests again. */
  private reopenAndResend(): void {
    this.attempts = 0;
    this.open().then(
      () => {
        for (const p of this.pending.values()) this.ws?.send(p.text);
      },
      (err: unknown) => {
        for (const [ref, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(err instanceof Error ? err : new TandemError('server-unreachable', String(err)));
          this.pending.delete(ref);
        }
      },
    );
  }

  /** Sends with a fresh `ref` and resolves with the direct reply. */
  request<T extends ServerMessage['type']>(msg: WithoutRef<ClientMessage>, expect: T): Promise<ServerMessageOf<T>> {
    if (this.state === 'idle' && !this.ws) {
      this.attempts = 0;
      return this.open().then(() => this.request(msg, expect));
    }
    const ref = this.nextRef++;
    return new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(
          new TandemError(
            'server-timeout',
            `The server did not answer '${msg.type}' within ${this.requestTimeoutMs / 1000} s.`,
          ),
        );
      }, this.requestTimeoutMs);
      const pending: Pending = { resolve, reject, timer, text: '' };
      this.pending.set(ref, pending);
      try {
        pending.text = this.send({ ...msg, ref });
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(ref);
        reject(e instanceof Error ? e : new TandemError('bad-message-local', String(e)));
      }
    }).then((reply) => {
      if (reply.type !== expect)
        throw new TandemError(
          'bad-reply',
          `The server answered '${msg.type}' with '${reply.type}', expected '${expect}'.`,
        );
      return reply as ServerMessageOf<T>;
    });
  }

  /** Remembers the peer credentials so a reconnect resumes the same peer. */
  rememberPeer(credentials: Credentials | null): void {
    this.credentials = credentials;
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
      const synthetic: ServerMessage = {
        type: 'error',
        code: 'not-joined',
        message: `Rejoining after the reconnect failed (${err.code}): ${err.message}`,
        inReplyTo: 'resume',
      };
      for (const l of this.messageListeners) l(synthetic);
    }
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    const every = Math.max(50, Math.min(intervalMs, 60_000));
    this.heartbeat = setInterval(() => {
      try {
        this.send({ type: 'heartbeat', clientTimeMs: Date.now() });
      } catch {
        // not connected: the reconnect path takes over
      }
    }, every);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  close(): void {
    this.closedByUs = true;
    this.stopHeartbeat();
    this.ws?.close(1000, 'page closed');
  }
}
