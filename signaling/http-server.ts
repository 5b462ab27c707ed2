/**
 * The access point's one HTTP(S) server: the page, model packages, link probes, field-log downloads,
 * session exports, PeerJS signaling at /peerjs and the coordinator WebSocket at /ws.
 *
 * Every response carries COOP/COEP/CORP so the page is cross-origin isolated (wasm threads).
 *
 * Hostile input: every request target is parsed without throwing (a bad one gets 400), handlers run
 * under a catch-all that answers 500 without internals, and the upgrade path is guarded the same way,
 * so no single request can end the process. PeerJS registrations need the page's token (peerjs-gate.ts).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import { ExpressPeerServer } from 'peer';
import { WebSocketServer } from 'ws';
import { loadChatTokenizer, type ChatTokenizer } from './chat-tokenizer.ts';
import { Coordinator, DEFAULT_LIMITS, type CoordinatorLimits } from './coordinator.ts';
import { FieldLog } from './field-log.ts';
import { ModelRoute, type ModelPackage } from './model-route.ts';
import { OpenAiApi, type ApiOptions } from './openai-api.ts';
import type { PlanCompletion } from './coordinator.ts';
import { PlannerPool } from './planner-pool.ts';
import type { PlanRequest } from './planning.ts';
import { parsePeerJsQuery, PeerTokens } from './peerjs-gate.ts';
import { PeerJsSockets } from './peerjs-sockets.ts';
import { DEFAULT_PROBE_MAX_BYTES, probeDown, probeUp } from './probes.ts';
import { parseRequestTarget } from './request-target.ts';
import { sendJson } from './send-json.ts';
import { StaticFiles } from './static-files.ts';
import { WsGateway, type GatewayOptions } from './ws-gateway.ts';

export interface ServerOptions {
  /** 0 = any free port. */
  port: number;
  host: string;
  /** PEM certificate and key: serve HTTPS (WebGPU needs a secure context on phones). */
  tls?: { cert: string; key: string };
  /** Served packages; sessions use the first. */
  models: ModelPackage[];
  /** The built page (dist/client), or null to answer pages with a hint. */
  clientDir: string | null;
  fieldLogPath: string;
  limits?: Partial<CoordinatorLimits>;
  probeMaxBytes?: number;
  /** Where plans run: 'worker' (default: a worker thread, so big plans never stall other sessions) or 'inline'. */
  planIn?: 'worker' | 'inline';
  gateway?: GatewayOptions;
  /** Default prompt length for plans, tokens. */
  defaultTokens?: number;
  /** The OpenAI-compatible API under /v1 (openai-api.ts); `sessionCode`: a session that always serves it. */
  api?: Partial<ApiOptions> & { sessionCode?: string | null };
  /** Open PeerJS signaling sockets per client address (default 32). */
  maxPeerJsSocketsPerAddress?: number;
  /** Field log: rotate at this size (bytes), and downloads at once. */
  fieldLogMaxBytes?: number;
  fieldLogMaxDownloads?: number;
  /**
   * Tokenise host prompts on the server with the package's tokenizer (default true): the `start` then
   * carries the ids and a failover can replay them (docs/failover.md). Loaded in the background.
   */
  tokenizePrompts?: boolean;
  /** Spares: plans also choose idle pages that keep a warm copy of a stage (default true; docs/failover.md). */
  spares?: boolean;
}

export interface TandemServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  coordinator: Coordinator;
  gateway: WsGateway;
  fieldLog: FieldLog;
  /** Open PeerJS signaling sockets by peer id. */
  peerSockets: PeerJsSockets;
  close(): Promise<void>;
}

export const PEERJS_PATH = '/peerjs';
export const PEERJS_KEY = 'peerjs';

const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

function sendText(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** A bare HTTP answer on an upgrade socket (no ServerResponse exists there). */
function refuseUpgrade(socket: Duplex, status: string, text = ''): void {
  if (socket.writable)
    socket.end(
      `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  else socket.destroy();
}

const NO_PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>Tandem</title>
<p>The Tandem page is not built. Run <code>npm run build:client</code> (or restart <code>npm start</code>) once <code>client/index.html</code> exists.</p>`;

export async function startServer(options: ServerOptions): Promise<TandemServer> {
  const probeMax = options.probeMaxBytes ?? DEFAULT_PROBE_MAX_BYTES;
  const models = new ModelRoute(options.models);
  const statics = options.clientDir ? new StaticFiles(options.clientDir) : null;
  const fieldLog = new FieldLog(options.fieldLogPath, options.fieldLogMaxBytes, options.fieldLogMaxDownloads);
  const peerTokens = new PeerTokens();
  const peerSockets = new PeerJsSockets(options.maxPeerJsSocketsPerAddress ?? 32);
  // The same files and library as the page's first stage; a package without a usable tokenizer leaves
  // host prompts to the page (those requests then cannot fail over: docs/failover.md).
  let promptTokenizer: ChatTokenizer | null = null;
  const firstModel = options.models[0] as ModelPackage | undefined;
  if (firstModel && (options.tokenizePrompts ?? true))
    loadChatTokenizer(firstModel.dir).then(
      (t) => (promptTokenizer = t),
      () => undefined,
    );
  const coordinator = new Coordinator({
    promptTokenIds: (prompt) => promptTokenizer?.encodeChat([{ role: 'user', content: prompt }]) ?? null,
    model: options.models[0]?.manifest ?? null,
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    limits: options.limits,
    defaultTokens: options.defaultTokens,
    peerjs: { path: PEERJS_PATH, key: PEERJS_KEY },
    apiSessionCode: options.api?.sessionCode ?? null,
    peerToken: (peerId) => peerTokens.tokenFor(peerId),
    spares: options.spares ?? true,
  });
  const pool = (options.planIn ?? 'worker') === 'worker' ? new PlannerPool() : null;
  const gateway = new WsGateway(coordinator, {
    ...(pool ? { plan: (request: PlanRequest): Promise<PlanCompletion> => pool.plan(request) } : {}),
    // A page busy for a while (wasm compile, profiling on a slow phone) may send its first message late:
    // the grace for joining follows the heartbeat timeout the server is run with, and is at least 10 s.
    joinDeadlineMs: Math.max(10_000, (options.limits?.heartbeatTimeoutMs ?? DEFAULT_LIMITS.heartbeatTimeoutMs) / 2),
    ...options.gateway,
    onFieldRecord: (record) => void fieldLog.append(record),
    onPeerGone: (peerId) => peerSockets.close(peerId),
  });
  const api = new OpenAiApi(coordinator, gateway, options.models, {
    key: options.api?.key ?? null,
    corsOrigins: options.api?.corsOrigins ?? [],
  });

  /** Streams the field log as JSON or CSV; at most a few downloads at once (each reads the whole file). */
  const downloadFieldLog = async (res: http.ServerResponse, format: 'json' | 'csv'): Promise<void> => {
    if (!fieldLog.beginDownload()) {
      sendText(res, 503, 'too many field-log downloads at once: retry in a few seconds', { 'Retry-After': '5' });
      return;
    }
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    try {
      res.writeHead(
        200,
        format === 'json'
          ? { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }
          : {
              'Content-Type': 'text/csv; charset=utf-8',
              'Content-Disposition': 'attachment; filename="tandem-field-log.csv"',
              'Cache-Control': 'no-store',
            },
      );
      if (format === 'json') await fieldLog.writeJson(res, gone.signal);
      else await fieldLog.writeCsv(res, gone.signal);
      res.end();
    } catch {
      res.destroy(); // the reader went away, or the file could not be read: a truncated body, not a crash
    } finally {
      fieldLog.endDownload();
    }
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    const url = parseRequestTarget(req.url);
    if (!url) {
      sendText(res, 400, 'bad request target: send an origin-form path such as /api/health');
      return;
    }
    const rawPath = url.rawPath;
    if (rawPath.startsWith('/models/')) return models.serve(req, res, rawPath);
    if (url.pathname === '/v1' || url.pathname.startsWith('/v1/')) return api.serve(req, res, url.pathname);
    if (url.pathname === '/probe/down') {
      probeDown(req, res, url.searchParams, probeMax);
      return;
    }
    if (url.pathname === '/probe/up') {
      probeUp(req, res, probeMax);
      return;
    }
    if (url.pathname.startsWith('/api/') && req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, 'the API is read-only over HTTP: use GET (session actions go over /ws)', {
        Allow: 'GET, HEAD',
      });
      return;
    }
    if (url.pathname === '/api/models') {
      sendJson(res, 200, { models: models.list() });
      return;
    }
    if (url.pathname === '/api/health') {
      sendJson(res, 200, { ok: true, sessions: coordinator.sessionCount, connections: gateway.connectionCount });
      return;
    }
    if (url.pathname === '/api/field-log.json') return downloadFieldLog(res, 'json');
    if (url.pathname === '/api/field-log.csv') return downloadFieldLog(res, 'csv');
    const exportMatch = /^\/api\/sessions\/([0-9A-Z]{8})\/export$/.exec(url.pathname);
    if (exportMatch) {
      const code = exportMatch[1];
      const secret = url.searchParams.get('hostSecret') ?? '';
      const check = coordinator.checkHost(code, secret, req.socket.remoteAddress ?? 'unknown', Date.now());
      if (check === 'rate-limited') {
        sendJson(res, 429, {
          error: 'rate-limited',
          message: 'too many failed host credentials from your address: wait a few seconds',
        });
        return;
      }
      if (check === 'denied') {
        sendJson(res, 403, {
          error: 'wrong-secret',
          message: 'no session with this code and host secret: pass ?hostSecret=<the host secret of this session>',
        });
        return;
      }
      sendJson(res, 200, coordinator.exportSession(code));
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      sendJson(res, 404, { error: 'not-found', message: `no API ${url.pathname}` });
      return;
    }
    if (!statics) {
      res.writeHead(503, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(NO_PAGE_HTML);
      return;
    }
    return statics.serve(req, res, rawPath);
  };

  // PeerJS: an express sub-app mounted at /peerjs. Its WebSocket server is created without a server of
  // its own so that /ws and /peerjs/peerjs upgrades are routed here (ws would answer 400 to each other's paths).
  let peerWss: WebSocketServer | null = null;
  const app = express();
  app.disable('x-powered-by');
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, app)
    : http.createServer(app);
  const peerApp = ExpressPeerServer(server, {
    path: '/',
    key: PEERJS_KEY,
    allow_discovery: false,
    concurrent_limit: 2000,
    // The page is served from this origin; no other origin needs PeerJS's HTTP routes (no CORS headers at all).
    corsOptions: { origin: false },
    createWebSocketServer: (wsOptions) => {
      peerWss = new WebSocketServer({ noServer: true, path: wsOptions.path, maxPayload: 256 * 1024 });
      return peerWss;
    },
  });
  app.use((_req, res, next) => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    next();
  });
  app.use(PEERJS_PATH, peerApp);
  const internalError = (res: http.ServerResponse, error: unknown): void => {
    console.warn(`request failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (!res.headersSent)
      sendJson(res, 500, { error: 'internal', message: 'the server failed on this request; it keeps serving' });
    else res.destroy();
  };
  app.use((req, res) => {
    try {
      handle(req, res).catch((error: unknown) => internalError(res, error));
    } catch (error) {
      internalError(res, error);
    }
  });
  // Errors thrown inside express or PeerJS routes (a malformed path parameter...): 4xx stays 4xx.
  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500 && !res.headersSent) {
      sendText(res, status, 'bad request');
      return;
    }
    internalError(res, error);
  });

  /** Upgrades: /ws to the coordinator; /peerjs/peerjs to PeerJS, only with the page's own id, token and key. */
  const upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = parseRequestTarget(req.url);
    if (!url) {
      refuseUpgrade(socket, '400 Bad Request', 'bad request target');
      return;
    }
    if (url.pathname === '/ws') {
      gateway.handleUpgrade(req, socket, head);
      return;
    }
    const pws: WebSocketServer | null = peerWss;
    if (pws && pws.shouldHandle(req)) {
      const query = parsePeerJsQuery(url.searchParams);
      if (!query.ok) {
        refuseUpgrade(socket, '400 Bad Request', query.reason);
        return;
      }
      if (query.key !== PEERJS_KEY || !coordinator.hasPeer(query.id) || !peerTokens.check(query.id, query.token)) {
        refuseUpgrade(socket, '403 Forbidden');
        return;
      }
      const address = req.socket.remoteAddress ?? 'unknown';
      if (!peerSockets.admits(address, query.id)) {
        refuseUpgrade(socket, '503 Service Unavailable', 'too many PeerJS sockets from your address');
        return;
      }
      pws.handleUpgrade(req, socket, head, (ws) => {
        // One socket per id: the page's older socket (half-open after a network change) goes first.
        void peerSockets.replace(query.id).then(() => {
          // the page may have left while the handshake ran
          if (!coordinator.hasPeer(query.id) || ws.readyState !== ws.OPEN) {
            ws.close(4000, 'the page left the session');
            return;
          }
          peerSockets.add(query.id, ws, address);
          pws.emit('connection', ws, req);
        });
      });
      return;
    }
    refuseUpgrade(socket, '404 Not Found');
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      upgrade(req, socket, head);
    } catch (error) {
      console.warn(`upgrade failed: ${error instanceof Error ? error.message : String(error)}`);
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl =
    options.host === '0.0.0.0' || options.host === '::'
      ? '127.0.0.1'
      : options.host.includes(':')
        ? `[${options.host}]`
        : options.host;
  const url = `${options.tls ? 'https' : 'http'}://${hostForUrl}:${port}`;

  return {
    url,
    port,
    coordinator,
    gateway,
    fieldLog,
    peerSockets,
    close: async () => {
      gateway.close();
      await pool?.close();
      const pws: WebSocketServer | null = peerWss;
      if (pws) for (const client of pws.clients) client.terminate();
      peerSockets.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fieldLog.flush();
    },
  };
}
