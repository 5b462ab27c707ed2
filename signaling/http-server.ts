/**
 * The access point's one HTTP(S) server: the page, model packages, link probes, field-log downloads,
 * session exports, PeerJS signaling at /peerjs and the coordinator WebSocket at /ws.
 *
 * Every response carries COOP/COEP/CORP so the page is cross-origin isolated (wasm threads).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import { ExpressPeerServer } from 'peer';
import { WebSocketServer } from 'ws';
import { Coordinator, type CoordinatorLimits } from './coordinator.ts';
import { FieldLog, fieldRecordsToCsv } from './field-log.ts';
import { ModelRoute, type ModelPackage } from './model-route.ts';
import { OpenAiApi, type ApiOptions } from './openai-api.ts';
import type { PlanCompletion } from './coordinator.ts';
import { PlannerPool } from './planner-pool.ts';
import type { PlanRequest } from './planning.ts';
import { DEFAULT_PROBE_MAX_BYTES, probeDown, probeUp } from './probes.ts';
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
}

export interface TandemServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  coordinator: Coordinator;
  gateway: WsGateway;
  fieldLog: FieldLog;
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

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

const NO_PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>Tandem</title>
<p>The Tandem page is not built. Run <code>npm run build:client</code> (or restart <code>npm start</code>) once <code>client/index.html</code> exists.</p>`;

export async function startServer(options: ServerOptions): Promise<TandemServer> {
  const probeMax = options.probeMaxBytes ?? DEFAULT_PROBE_MAX_BYTES;
  const models = new ModelRoute(options.models);
  const statics = options.clientDir ? new StaticFiles(options.clientDir) : null;
  const fieldLog = new FieldLog(options.fieldLogPath);
  const coordinator = new Coordinator({
    model: options.models[0]?.manifest ?? null,
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    limits: options.limits,
    defaultTokens: options.defaultTokens,
    peerjs: { path: PEERJS_PATH, key: PEERJS_KEY },
    apiSessionCode: options.api?.sessionCode ?? null,
  });
  const pool = (options.planIn ?? 'worker') === 'worker' ? new PlannerPool() : null;
  const gateway = new WsGateway(coordinator, {
    ...(pool ? { plan: (request: PlanRequest): Promise<PlanCompletion> => pool.plan(request) } : {}),
    ...options.gateway,
    onFieldRecord: (record) => void fieldLog.append(record),
  });
  const api = new OpenAiApi(coordinator, gateway, options.models, { key: options.api?.key ?? null, corsOrigins: options.api?.corsOrigins ?? [] });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    const url = new URL(req.url ?? '/', 'http://tandem.invalid');
    const rawPath = (req.url ?? '/').split('?')[0];
    if (rawPath.startsWith('/models/')) return models.serve(req, res, rawPath);
    if (url.pathname === '/v1' || url.pathname.startsWith('/v1/')) return api.serve(req, res, url.pathname);
    if (url.pathname === '/probe/down') return probeDown(req, res, url.searchParams, probeMax);
    if (url.pathname === '/probe/up') return probeUp(req, res, probeMax);
    if (url.pathname === '/api/models') return sendJson(res, 200, { models: models.list() });
    if (url.pathname === '/api/health') return sendJson(res, 200, { ok: true, sessions: coordinator.sessionCount, connections: gateway.connectionCount });
    if (url.pathname === '/api/field-log.json') return sendJson(res, 200, await fieldLog.readAll());
    if (url.pathname === '/api/field-log.csv') {
      const csv = fieldRecordsToCsv(await fieldLog.readAll());
      res.writeHead(200, { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': 'attachment; filename="tandem-field-log.csv"', 'Cache-Control': 'no-store' });
      res.end(csv);
      return;
    }
    const exportMatch = /^\/api\/sessions\/([0-9A-Z]{8})\/export$/.exec(url.pathname);
    if (exportMatch) {
      const code = exportMatch[1];
      const secret = url.searchParams.get('hostSecret') ?? '';
      if (!coordinator.checkHost(code, secret)) return sendJson(res, 403, { error: 'wrong-secret', message: 'pass ?hostSecret=<the host secret of this session>' });
      return sendJson(res, 200, coordinator.exportSession(code));
    }
    if (url.pathname.startsWith('/api/')) return sendJson(res, 404, { error: 'not-found', message: `no API ${url.pathname}` });
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
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, app) : http.createServer(app);
  const peerApp = ExpressPeerServer(server, {
    path: '/',
    key: PEERJS_KEY,
    allow_discovery: false,
    concurrent_limit: 2000,
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
  app.use((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: (error as Error).message });
      else res.destroy();
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://tandem.invalid');
    if (url.pathname === '/ws') return gateway.handleUpgrade(req, socket, head);
    const pws: WebSocketServer | null = peerWss;
    if (pws && pws.shouldHandle(req)) {
      // Only ids the coordinator handed out may register with PeerJS (assignments name these ids).
      const id = url.searchParams.get('id') ?? '';
      if (!coordinator.hasPeer(id)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      pws.handleUpgrade(req, socket, head, (ws) => pws.emit('connection', ws, req));
      return;
    }
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `${options.tls ? 'https' : 'http'}://${hostForUrl}:${port}`;

  return {
    url,
    port,
    coordinator,
    gateway,
    fieldLog,
    close: async () => {
      gateway.close();
      await pool?.close();
      const pws: WebSocketServer | null = peerWss;
      if (pws) for (const client of pws.clients) client.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fieldLog.readAll().catch(() => undefined);
    },
  };
}
