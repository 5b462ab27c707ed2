/**
 * One WebSocket connection to the session coordinator (`/ws`, core/protocol.ts), for every side that
 * speaks to it: the page (client/session/coordinator-client.ts adds reconnect and heartbeat on top),
 * the e2e driver and the signaling tests. It runs on the browser's WebSocket and on Node's `ws`
 * (`ProtocolSocket` is what both have in common).
 *
 * - Every incoming frame is parsed with the protocol's schema and appended to `log`; outgoing
 *   messages are checked against it before they leave (`send`, `request`).
 * - `request(msg, replyType)` numbers the message with a fresh `ref` and resolves with the server's
 *   reply carrying that ref, or rejects with a TandemError of the server's error code.
 * - `next(type, pred)` looks in the log and waits for a matching message; `take` does the same but
 *   consumes what it returns, so successive calls see successive messages.
 * - When the socket closes, every pending wait rejects ('server-gone'); a frame that fails the
 *   schema fails the client the same way unless `onMalformed` says to carry on.
 *
 * Error codes: 'server-unreachable' (no connection), 'server-gone' (closed, or not open when sending),
 * 'server-timeout' (no reply or message in time), 'bad-reply' (a reply of another type, or a frame
 * that fails the schema), 'bad-message-local' (an outgoing message that fails the schema: a bug here).
 */
import { TandemError } from './errors.ts';
import {
  clientMessageSchema,
  parseServerMessage,
  type ClientMessage,
  type ServerMessage,
  type ServerMessageOf,
  type ServerMessageType,
} from './protocol.ts';
import { WaitList } from './wait-list.ts';

/** What the client uses of a WebSocket; the browser's WebSocket and `ws`'s WebSocket both fit. */
export interface ProtocolSocket {
  readonly url: string;
  /** 0 connecting, 1 open, 2 closing, 3 closed (the WebSocket standard's numbers). */
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: object) => void): void;
}

const OPEN = 1;

export interface CloseInfo {
  code: number;
  reason: string;
}

/** A frame that fails the protocol's schema (or is binary). */
export interface MalformedFrame {
  reason: string;
  /** The `type` the frame claimed, when it could be read. */
  inReplyTo: string | null;
}

export interface ProtocolClientOptions {
  /** Default ms to wait for a reply or a message (15 s). */
  timeoutMs?: number;
  /**
   * Called for a frame that fails the schema; without it, such a frame fails the client (every wait
   * rejects with 'bad-reply'), which is what a test wants. The page reports it and carries on.
   */
  onMalformed?: (frame: MalformedFrame) => void;
  /** Called once when the socket closes, before pending waits reject, so an owner can decide what comes next. */
  onClose?: (info: CloseInfo) => void;
}

/** Distributive Omit, so that `ref` can be left off any member of the union. */
export type WithoutRef<T> = T extends unknown ? Omit<T, 'ref'> : never;

/** ws(s)://host/ws for the server at an http(s) base URL (`http://10.0.0.2:8080` -> `ws://10.0.0.2:8080/ws`). */
export function coordinatorUrl(baseUrl: string): string {
  return `${baseUrl.replace(/^http/, 'ws').replace(/\/+$/, '')}/ws`;
}

/** The JSON text of `msg`, checked against the schema; throws TandemError('bad-message-local') if it fails. */
export function encodeClientMessage(msg: ClientMessage): string {
  const checked = clientMessageSchema.safeParse(msg);
  if (!checked.success) {
    const issue = checked.error.issues.at(0);
    throw new TandemError(
      'bad-message-local',
      `This side built an invalid '${msg.type}' message (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'schema'}); this is a bug in the sender, not the server.`,
    );
  }
  return JSON.stringify(checked.data);
}

function isOfType<T extends ServerMessageType>(m: ServerMessage, type: T): m is ServerMessageOf<T> {
  return m.type === type;
}

/** A type guard for the messages of `type` that `predicate` accepts. */
function matching<T extends ServerMessageType>(
  type: T,
  predicate: (m: ServerMessageOf<T>) => boolean,
): (m: ServerMessage) => m is ServerMessageOf<T> {
  return (m): m is ServerMessageOf<T> => isOfType(m, type) && predicate(m);
}

function hasRef(m: ServerMessage, ref: number): boolean {
  return 'ref' in m && m.ref === ref;
}

export class ProtocolClient {
  /** Every message received, in order. */
  readonly log: ServerMessage[] = [];
  /** performance.now() at the arrival of each message of `log` (same index). */
  readonly receivedAt: number[] = [];
  /** Resolves once the socket is open; rejects with 'server-unreachable' if it closes first. */
  readonly opened: Promise<void>;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<CloseInfo>;
  /** How the socket closed; null while it is not closed. */
  closeInfo: CloseInfo | null = null;

  private readonly waits = new WaitList<ServerMessage>();
  /** Messages consumed by `take` or by a request's reply. */
  private readonly taken = new WeakSet<ServerMessage>();
  private readonly listeners = new Set<(m: ServerMessage) => void>();
  private readonly timeoutMs: number;
  private nextRef = 1;
  /** Set once the client can no longer receive: every later wait that the log cannot answer rejects with it. */
  private failure: TandemError | null = null;
  private errorDetail = '';

  constructor(
    private readonly socket: ProtocolSocket,
    private readonly options: ProtocolClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 15_000;
    let resolveOpened = (): void => undefined;
    let rejectOpened = (_: Error): void => undefined;
    this.opened = new Promise<void>((resolve, reject) => {
      resolveOpened = resolve;
      rejectOpened = reject;
    });
    // whoever does not await `opened` (a socket handed over already open) must not see an unhandled rejection
    this.opened.catch(() => undefined);
    let resolveClosed = (_: CloseInfo): void => undefined;
    this.closed = new Promise<CloseInfo>((resolve) => (resolveClosed = resolve));
    if (socket.readyState === OPEN) resolveOpened();

    socket.addEventListener('open', () => resolveOpened());
    socket.addEventListener('message', (event) => this.onFrame(event.data));
    // `ws` says why (e.g. "Unexpected server response: 503"); a browser's error event carries no detail.
    socket.addEventListener('error', (event) => {
      if ('message' in event && typeof event.message === 'string' && event.message) this.errorDetail = event.message;
    });
    socket.addEventListener('close', (event) => {
      const info = { code: event.code, reason: event.reason };
      this.closeInfo = info;
      rejectOpened(
        new TandemError(
          'server-unreachable',
          `Could not connect to ${socket.url} (${this.errorDetail || `closed with code ${info.code}`}); is the server running and reachable from here?`,
        ),
      );
      this.options.onClose?.(info);
      this.fail(
        new TandemError(
          'server-gone',
          `The connection to the server closed (code ${info.code}${info.reason ? `: ${info.reason}` : ''}) before the awaited message arrived.`,
        ),
      );
      resolveClosed(info);
    });
  }

  /** Opens a socket with `createSocket(url)` and resolves once it is open. */
  static async connect(
    url: string,
    createSocket: (url: string) => ProtocolSocket,
    options: ProtocolClientOptions & { connectTimeoutMs?: number } = {},
  ): Promise<ProtocolClient> {
    let socket: ProtocolSocket;
    try {
      socket = createSocket(url);
    } catch (cause) {
      throw new TandemError('server-unreachable', `Cannot open ${url} (${String(cause)}).`, { cause });
    }
    const client = new ProtocolClient(socket, options);
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new TandemError('server-timeout', `No WebSocket connection to ${url} within ${timeoutMs / 1000} s.`));
        socket.close();
      }, timeoutMs);
    });
    try {
      await Promise.race([client.opened, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  get isOpen(): boolean {
    return this.socket.readyState === OPEN;
  }

  /** Calls `listener` for every message received from now on; returns the unsubscribe function. */
  subscribe(listener: (m: ServerMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends a message checked against the schema; returns the text sent. */
  send(msg: ClientMessage): string {
    const text = encodeClientMessage(msg);
    this.sendText(text, msg.type);
    return text;
  }

  /**
   * Sends `msg` with a fresh `ref` and resolves with the server's reply carrying that ref, whatever
   * its type (an `error` included). `check: false` sends it without the local schema check, for tests
   * of the server's own checks.
   */
  async exchange(
    msg: WithoutRef<ClientMessage>,
    options: { timeoutMs?: number; check?: boolean } = {},
  ): Promise<ServerMessage> {
    const ref = this.nextRef++;
    const message: ClientMessage = { ...msg, ref };
    const text = options.check === false ? JSON.stringify(message) : encodeClientMessage(message);
    if (this.failure) throw this.failure;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const unsent = new AbortController();
    const reply = this.waits.wait((m) => hasRef(m, ref), {
      mode: 'take',
      timeoutMs,
      signal: unsent.signal,
      onTimeout: () =>
        new TandemError(
          'server-timeout',
          `The server did not answer '${msg.type}' within ${timeoutMs / 1000} s; it last sent ${this.summary()}.`,
        ),
    });
    try {
      this.sendText(text, msg.type);
    } catch (err) {
      unsent.abort(err);
    }
    return reply;
  }

  /** Like `exchange`, but resolves only with a reply of `replyType`; an `error` reply rejects with the server's code. */
  async request<T extends ServerMessageType>(
    msg: WithoutRef<ClientMessage>,
    replyType: T,
    timeoutMs?: number,
  ): Promise<ServerMessageOf<T>> {
    const reply = await this.exchange(msg, { timeoutMs });
    if (reply.type === 'error') throw new TandemError(reply.code, reply.message);
    if (!isOfType(reply, replyType))
      throw new TandemError(
        'bad-reply',
        `The server answered '${msg.type}' with '${reply.type}', expected '${replyType}'.`,
      );
    return reply;
  }

  /**
   * The first message of `type` matching `predicate` at or after log index `since` (0: since the
   * socket opened), waiting for it if it has not arrived. It stays in the log for other calls.
   */
  next<T extends ServerMessageType>(
    type: T,
    predicate: (m: ServerMessageOf<T>) => boolean = () => true,
    timeoutMs = this.timeoutMs,
    since = 0,
  ): Promise<ServerMessageOf<T>> {
    const match = matching(type, predicate);
    const seen = this.log.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    return this.waitFor(match, 'watch', timeoutMs, type);
  }

  /**
   * The oldest message of `type` matching `predicate` that no `take` (and no request) has consumed,
   * waiting for it if there is none; it is consumed, so the next call returns a later one.
   */
  take<T extends ServerMessageType>(
    type: T,
    predicate: (m: ServerMessageOf<T>) => boolean = () => true,
    timeoutMs = this.timeoutMs,
  ): Promise<ServerMessageOf<T>> {
    const match = matching(type, predicate);
    for (const m of this.log) {
      if (!this.taken.has(m) && match(m)) {
        this.taken.add(m);
        return Promise.resolve(m);
      }
    }
    return this.waitFor(match, 'take', timeoutMs, type);
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  private waitFor<U extends ServerMessage>(
    match: (m: ServerMessage) => m is U,
    mode: 'take' | 'watch',
    timeoutMs: number,
    type: string,
  ): Promise<U> {
    if (this.failure) return Promise.reject(this.failure);
    return this.waits.wait(match, {
      mode,
      timeoutMs,
      onTimeout: () =>
        new TandemError(
          'server-timeout',
          `Waited ${timeoutMs / 1000} s for a '${type}' message from the server; it last sent ${this.summary()}.`,
        ),
    });
  }

  private sendText(text: string, type: string): void {
    if (this.socket.readyState !== OPEN)
      throw new TandemError('server-gone', `Not connected to the server; '${type}' was not sent.`);
    this.socket.send(text);
  }

  private onFrame(data: unknown): void {
    const parsed =
      typeof data === 'string'
        ? parseServerMessage(data)
        : ({ ok: false, message: 'a binary frame (the protocol is JSON text)', inReplyTo: null } as const);
    if (!parsed.ok) {
      const frame = { reason: parsed.message, inReplyTo: parsed.inReplyTo };
      if (this.options.onMalformed) this.options.onMalformed(frame);
      else
        this.fail(
          new TandemError(
            'bad-reply',
            `The server sent a message that fails the protocol (${frame.reason}); is it the same version as this side?`,
          ),
        );
      return;
    }
    const msg = parsed.message;
    this.log.push(msg);
    this.receivedAt.push(performance.now());
    if (this.waits.offer(msg)) this.taken.add(msg);
    for (const listener of this.listeners) listener(msg);
  }

  private fail(err: TandemError): void {
    if (this.failure) return;
    this.failure = err;
    this.waits.failAll(err);
  }

  /** The last few message types, for timeout messages. */
  private summary(): string {
    const tail = this.log.slice(-8).map((m) => (m.type === 'error' ? `error(${m.code}: ${m.message})` : m.type));
    return tail.length ? tail.join(', ') : 'nothing';
  }
}
