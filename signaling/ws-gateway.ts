/**
 * The coordinator's WebSocket endpoint (`/ws`): validates each frame with the protocol schemas, feeds
 * the coordinator, and carries out the effects it returns. Bad frames get an `error` reply on their
 * own connection only; a slow or flooding client is cut off without touching anyone else.
 *
 * Hygiene: a socket that has not joined (or acted as a host) within `joinDeadlineMs` is closed with
 * code 4002 (the page reconnects when it has something to send); every socket is pinged and cut after
 * two unanswered pings; sockets are capped in all and per client address.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import {
  Coordinator,
  type ApiEvent,
  type ConnId,
  type Effect,
  type FieldRecord,
  type PlanCompletion,
} from './coordinator.ts';
import { planInline } from './planner-pool.ts';
import type { PlanRequest } from './planning.ts';
import { MAX_MESSAGE_BYTES, parseClientMessage } from '../core/protocol.ts';
import { RateLimiter, type RateLimit } from './rate-limit.ts';

export interface GatewayOptions {
  /** Frames per connection. */
  messageRate?: RateLimit;
  /** Close a connection whose unsent data exceeds this many bytes (a stalled client). */
  maxBufferedBytes?: number;
  /** Open coordinator sockets at most, in all and per client address (upgrades beyond get 503). */
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  /** Coordinator tick period, ms (heartbeat timeouts are checked this often). */
  tickMs?: number;
  onFieldRecord?: (record: FieldRecord) => void;
  /** A peer left or timed out (its PeerJS registration must end). */
  onPeerGone?: (peerId: string) => void;
  /** Close a socket that has not joined or acted as a host within this many ms (default 10 000; the server passes max(10 s, heartbeat timeout / 2)). */
  joinDeadlineMs?: number;
  /** Ping every socket this often, ms; one that left two pings in a row unanswered is cut (default 20 000). */
  pingIntervalMs?: number;
  /** Ping every page's socket this often, ms (failover liveness, liveness.ts; default 1 000). */
  livenessPingIntervalMs?: number;
  /** Runs a plan (default: inline on this thread). */
  plan?: (request: PlanRequest) => Promise<PlanCompletion>;
}

/** Close code for a socket that never joined: not an error, the page opens a new one when needed. */
export const CLOSE_NOT_JOINED = 4002;

export class WsGateway {
  readonly wss: WebSocketServer;
  private readonly sockets = new Map<ConnId, WebSocket>();
  private readonly messageLimiter: RateLimiter;
  private readonly maxBufferedBytes: number;
  private readonly timer: NodeJS.Timeout;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly livenessPingTimer: NodeJS.Timeout;
  /** Pings each socket has left unanswered. */
  private readonly missedPings = new WeakMap<WebSocket, number>();
  /** Connections being closed for not joining: later frames on them are ignored (no peer on a dying socket). */
  private readonly closing = new Set<ConnId>();
  private nextConn = 1;
  private readonly perAddress = new Map<string, number>();
  /** Receives the progress of HTTP API requests (openai-api.ts). */
  private apiListener: ((event: ApiEvent) => void) | null = null;

  constructor(
    readonly coordinator: Coordinator,
    private readonly options: GatewayOptions = {},
  ) {
    // ws itself refuses frames far above our limit (it closes with 1009); between the two we reply `message-too-large`.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4 * MAX_MESSAGE_BYTES, perMessageDeflate: false });
    this.messageLimiter = new RateLimiter(options.messageRate ?? { burst: 400, perSecond: 200 });
    this.maxBufferedBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024;
    // Ticks also send coalesced rosters, so they run a few times per roster interval.
    this.timer = setInterval(() => this.apply(this.coordinator.tick(Date.now())), options.tickMs ?? 100);
    this.timer.unref();
    this.pingTimer = setInterval(() => this.pingAll(), options.pingIntervalMs ?? 20_000);
    this.pingTimer.unref();
    // every page: a ping every request heartbeat, whose pong says the device is still there (liveness.ts)
    this.livenessPingTimer = setInterval(() => this.pingPeers(), options.livenessPingIntervalMs ?? 1_000);
    this.livenessPingTimer.unref();
    this.wss.on('connection', (ws: WebSocket, req: IncomingMessage) => this.onConnection(ws, req));
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const address = req.socket.remoteAddress ?? 'unknown';
    const mine = this.perAddress.get(address) ?? 0;
    if (
      this.sockets.size >= (this.options.maxConnections ?? 4096) ||
      mine >= (this.options.maxConnectionsPerAddress ?? 32)
    ) {
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\ntoo many open WebSockets',
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  setApiListener(listener: (event: ApiEvent) => void): void {
    this.apiListener = listener;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const conn = this.nextConn++;
    const address = req.socket.remoteAddress ?? 'unknown';
    this.sockets.set(conn, ws);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.coordinator.connect(conn, address);
    this.missedPings.set(ws, 0);
    ws.on('pong', () => {
      this.missedPings.set(ws, 0);
      this.coordinator.pong(conn, Date.now());
    });
    const deadline = setTimeout(() => {
      if (this.coordinator.isBound(conn)) return;
      this.closing.add(conn);
      ws.close(CLOSE_NOT_JOINED, 'not joined: reconnect to join');
    }, this.options.joinDeadlineMs ?? 10_000);
    deadline.unref();
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on('close', () => {
      clearTimeout(deadline);
      this.closing.delete(conn);
      this.sockets.delete(conn);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
      this.apply(this.coordinator.disconnect(conn, Date.now()));
    });
    ws.on('error', () => ws.terminate());
  }

  private onMessage(conn: ConnId, data: RawData, isBinary: boolean): void {
    if (this.closing.has(conn)) return;
    const now = Date.now();
    if (!this.messageLimiter.take(`c${conn}`, now)) {
      this.apply(this.coordinator.reject(conn, 'rate-limited', 'too many messages: at most 200 per second', null));
      return;
    }
    if (isBinary) {
      this.apply(this.coordinator.reject(conn, 'binary-not-supported', 'send JSON text frames, not binary', null));
      return;
    }
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (buffer.length > MAX_MESSAGE_BYTES) {
      this.apply(
        this.coordinator.reject(conn, 'message-too-large', `messages are limited to ${MAX_MESSAGE_BYTES} bytes`, null),
      );
      return;
    }
    const parsed = parseClientMessage(buffer.toString('utf8'));
    if (!parsed.ok) {
      this.apply(this.coordinator.reject(conn, parsed.code, parsed.message, parsed.inReplyTo, parsed.ref));
      return;
    }
    this.apply(this.coordinator.handle(conn, parsed.message, now));
  }

  /** Carry out the coordinator's effects. */
  apply(effects: Effect[]): void {
    // Serialise each distinct message once (a broadcast is one object sent to many connections).
    const texts = new Map<object, string>();
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send': {
          const ws = this.sockets.get(effect.to);
          if (!ws || ws.readyState !== WebSocket.OPEN) break;
          if (ws.bufferedAmount > this.maxBufferedBytes) {
            ws.terminate();
            break;
          }
          let text = texts.get(effect.message);
          if (text === undefined) {
            text = JSON.stringify(effect.message);
            texts.set(effect.message, text);
          }
          ws.send(text);
          break;
        }
        case 'close':
          this.sockets.get(effect.conn)?.close(effect.code, effect.reason);
          break;
        case 'field-log':
          this.options.onFieldRecord?.(effect.record);
          break;
        case 'api':
          this.apiListener?.(effect.event);
          break;
        case 'peer-gone':
          this.options.onPeerGone?.(effect.peerId);
          break;
        case 'plan': {
          const plan = this.options.plan ?? planInline;
          const token = effect.token;
          void plan(effect.request)
            .catch((error: unknown): PlanCompletion => ({ ok: false, code: 'planner-error', message: String(error) }))
            .then((completion) => this.apply(this.coordinator.planFinished(token, completion, Date.now())));
          break;
        }
      }
    }
  }

  private pingPeers(): void {
    for (const conn of this.coordinator.peerConns()) {
      const ws = this.sockets.get(conn);
      if (ws && ws.readyState === ws.OPEN) ws.ping();
    }
  }

  /** Cut sockets that left two pings in a row unanswered (a vanished phone), ping the rest. */
  private pingAll(): void {
    for (const ws of this.sockets.values()) {
      const missed = this.missedPings.get(ws) ?? 0;
      if (missed >= 2) {
        ws.terminate();
        continue;
      }
      this.missedPings.set(ws, missed + 1);
      ws.ping();
    }
  }

  /** Tell everyone the server stops, then close every socket. */
  close(): void {
    clearInterval(this.timer);
    clearInterval(this.pingTimer);
    clearInterval(this.livenessPingTimer);
    this.apply(this.coordinator.shutdown());
    for (const ws of this.sockets.values()) ws.close(1001, 'server shutting down');
    this.wss.close();
  }
}
