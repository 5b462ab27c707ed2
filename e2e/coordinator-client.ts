/**
 * A Node WebSocket client of the session coordinator (core/protocol.ts), used by the harness as a
 * driver: it can act as the host (create a session, plan with a chosen method, go) and it keeps every
 * server message it receives so tests can wait for and inspect them.
 */
import WebSocket from 'ws';
import { TandemError } from '../core/errors.ts';
import {
  parseServerMessage,
  type ClientMessage,
  type ServerMessage,
  type ServerMessageOf,
  type ServerMessageType,
} from '../core/protocol.ts';

interface Waiter {
  match: (m: ServerMessage) => boolean;
  resolve: (m: ServerMessage) => void;
  reject: (e: Error) => void;
}

export class CoordinatorClient {
  /** Every message received, in order. */
  readonly log: ServerMessage[] = [];
  /** performance.now() at the arrival of each message of `log` (same index). */
  readonly receivedAt: number[] = [];
  private waiters = new Set<Waiter>();
  private nextRef = 1;
  private closedError: Error | null = null;

  private constructor(
    private readonly ws: WebSocket,
    readonly url: string,
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Array.isArray(data)
          ? Buffer.concat(data).toString('utf8')
          : Buffer.from(data).toString('utf8');
      const parsed = parseServerMessage(text);
      if (!parsed.ok) {
        this.fail(
          new TandemError(
            'coordinator-bad-reply',
            `The server sent a message that fails the protocol: ${parsed.message}`,
          ),
        );
        return;
      }
      this.log.push(parsed.message);
      this.receivedAt.push(performance.now());
      for (const w of [...this.waiters]) {
        if (w.match(parsed.message)) {
          this.waiters.delete(w);
          w.resolve(parsed.message);
        }
      }
    });
    ws.on('close', (code, reason) =>
      this.fail(
        new TandemError('coordinator-closed', `The coordinator WebSocket closed (${code} ${reason.toString()}).`),
      ),
    );
    ws.on('error', (err) =>
      this.fail(
        new TandemError('coordinator-closed', `The coordinator WebSocket failed: ${err.message}`, { cause: err }),
      ),
    );
  }

  /** Connect to `ws://host:port/ws` (pass the server's base URL, http://...). */
  static async connect(baseUrl: string, timeoutMs = 10_000): Promise<CoordinatorClient> {
    const url = `${baseUrl.replace(/^http/, 'ws')}/ws`;
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new TandemError('coordinator-timeout', `No WebSocket connection to ${url} within ${timeoutMs} ms.`)),
        timeoutMs,
      );
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(new TandemError('coordinator-closed', `Cannot connect to ${url}: ${err.message}`, { cause: err }));
      });
    });
    return new CoordinatorClient(ws, url);
  }

  send(msg: ClientMessage): void {
    if (this.closedError) throw this.closedError;
    this.ws.send(JSON.stringify(msg));
  }

  /**
   * Send `msg` with a fresh `ref` and resolve with the reply of type `replyType` carrying that ref;
   * an `error` reply with the ref rejects with a TandemError of the server's code.
   */
  async request<T extends ServerMessageType>(
    msg: ClientMessage,
    replyType: T,
    timeoutMs = 30_000,
  ): Promise<ServerMessageOf<T>> {
    const ref = this.nextRef++;
    const reply = this.waitFor(
      (m) => (m.type === replyType || m.type === 'error') && 'ref' in m && m.ref === ref,
      timeoutMs,
      `a '${replyType}' reply to '${msg.type}'`,
    );
    this.send({ ...msg, ref });
    const m = await reply;
    if (m.type === 'error') throw new TandemError(m.code, `The coordinator refused '${msg.type}': ${m.message}`);
    return m as ServerMessageOf<T>;
  }

  /** The first message of `type` (matching `pred`) received at or after log index `since`. */
  async next<T extends ServerMessageType>(
    type: T,
    pred: (m: ServerMessageOf<T>) => boolean = () => true,
    timeoutMs = 30_000,
    since = 0,
  ): Promise<ServerMessageOf<T>> {
    const match = (m: ServerMessage): boolean => m.type === type && pred(m as ServerMessageOf<T>);
    const seen = this.log.slice(since).find(match);
    if (seen) return seen as ServerMessageOf<T>;
    return (await this.waitFor(match, timeoutMs, `a '${type}' message`)) as ServerMessageOf<T>;
  }

  close(): void {
    this.ws.close();
  }

  private waitFor(match: (m: ServerMessage) => boolean, timeoutMs: number, what: string): Promise<ServerMessage> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new TandemError(
            'coordinator-timeout',
            `Waited ${timeoutMs / 1000} s for ${what} from the coordinator; got ${this.summary()}.`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(waiter);
    });
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
  }

  /** The last few message types, for timeout messages. */
  private summary(): string {
    const tail = this.log.slice(-8).map((m) => (m.type === 'error' ? `error(${m.code}: ${m.message})` : m.type));
    return tail.length ? tail.join(', ') : 'nothing';
  }
}
