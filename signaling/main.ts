/**
 * `npm start [-- --port 8080 --host 0.0.0.0 --model <package dir> --https]`: the Tandem access point.
 * Builds the page if needed, makes the embedded default model package if missing, serves everything on
 * one port, prints the LAN URLs and a QR code. Ctrl-C stops cleanly.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { parseCliArgs, runCliIfEntryPoint, usageError } from '../core/cli.ts';
import { TandemError } from '../core/errors.ts';
import { DEFAULT_LIMITS } from './coordinator.ts';
import { ensureDefaultPackage } from './default-model.ts';
import { startServer } from './http-server.ts';
import { loadModelPackage, type ModelPackage } from './model-route.ts';
import { qrText } from './qr.ts';
import { loadTls, selfSignedTls, type TlsFiles } from './tls.ts';

const USAGE = `usage: npm start -- [options]
  --port N              port (default 8080; 0 = any free port)
  --host H              address to listen on (default 0.0.0.0: every interface)
  --model DIR           model package folder (repeatable; sessions use the first).
                        Default: the embedded demo package, made into .tandem/models on first start
  --https               serve HTTPS (phones need it for WebGPU); self-signed unless --cert/--key
  --cert FILE --key FILE  PEM certificate and key for --https
  --data DIR            where generated data lives (default .tandem)
  --field-log FILE      profiles and failovers, JSON lines (default <data>/field-log.jsonl)
  --tokens N            default prompt length the planner optimises for (default 256)
  --heartbeat-timeout-ms N  drop a silent page after N ms (default ${DEFAULT_LIMITS.heartbeatTimeoutMs})
  --loss-timeout-ms N   a stage silent for N ms during a request is lost for it and the request
                        fails over to the other pages (default ${DEFAULT_LIMITS.lossTimeoutMs}; docs/failover.md)
  --stall-timeout-ms N  a stage whose socket still answers pings but whose page sends nothing for N ms
                        (a frozen tab) is lost too (default ${DEFAULT_LIMITS.stallTimeoutMs}; at least --loss-timeout-ms)
  --no-spares           do not ask idle pages to keep a warm copy of the stage whose loss would cost
                        most (spares make a repair skip that stage's download; docs/failover.md)
  --join-burst N        joins per client address at once (default ${DEFAULT_LIMITS.joinRate.burst}; refills ${DEFAULT_LIMITS.joinRate.perSecond}/s)
  --api-key KEY         the OpenAI-compatible API (/v1) requires "Authorization: Bearer KEY"
  --api-session CODE    the session with this join code serves the API even if its host did not switch it on
  --api-cors ORIGINS    comma-separated browser origins (or *) allowed to call the API from another site
  --api-queue-depth N   requests that may wait per session behind the running one (default ${DEFAULT_LIMITS.queueDepth}); more get HTTP 429
  --rebuild             rebuild the page even if dist/client exists
  --no-build            never build the page
  --help                this text`;

function intArg(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw usageError(`--${name} must be an integer from ${min} to ${max}, not '${value}'`);
  return n;
}

/** EADDRINUSE as a coded error that says what to do. */
function portInUse(error: unknown): never {
  if (error instanceof Error && 'code' in error && error.code === 'EADDRINUSE') {
    throw new TandemError('port-in-use', `the port is in use (${error.message}): pass another --port`);
  }
  throw error;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** IPv4 addresses of the machine's non-internal interfaces (what phones on the LAN can reach). */
function lanAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) out.push(a.address);
  return out;
}

/** Builds dist/client with Vite when it is missing (or --rebuild); null when there is no page to build. */
function ensurePage(root: string, rebuild: boolean, build: boolean): string | null {
  const dist = path.join(root, 'dist', 'client');
  const built = existsSync(path.join(dist, 'index.html'));
  if (built && !rebuild) return dist;
  if (!build) {
    console.log(built ? `page: ${dist}` : 'page: not built and --no-build given: the server answers pages with a hint');
    return built ? dist : null;
  }
  if (!existsSync(path.join(root, 'client', 'index.html'))) {
    console.log(
      'page: client/index.html does not exist yet, so there is no page to build; serving the API, models and PeerJS only',
    );
    return built ? dist : null;
  }
  console.log('page: building with vite (once)...');
  const vite = path.join(root, 'node_modules', '.bin', 'vite');
  const result = spawnSync(vite, ['build', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`page: vite build failed (exit ${result.status}); fix the build or run with --no-build`);
    return built ? dist : null;
  }
  return dist;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      model: { type: 'string', multiple: true },
      https: { type: 'boolean' },
      cert: { type: 'string' },
      key: { type: 'string' },
      data: { type: 'string' },
      'field-log': { type: 'string' },
      tokens: { type: 'string' },
      'heartbeat-timeout-ms': { type: 'string' },
      'loss-timeout-ms': { type: 'string' },
      'stall-timeout-ms': { type: 'string' },
      'no-spares': { type: 'boolean' },
      'join-burst': { type: 'string' },
      'api-key': { type: 'string' },
      'api-session': { type: 'string' },
      'api-cors': { type: 'string' },
      'api-queue-depth': { type: 'string' },
      rebuild: { type: 'boolean' },
      'no-build': { type: 'boolean' },
    },
    allowPositionals: false,
  });
  const root = process.cwd();
  const port = intArg(values.port, 'port', 8080, 0, 65535);
  const host = values.host ?? '0.0.0.0';
  const tokens = intArg(values.tokens, 'tokens', 256, 1, 131072);
  const heartbeatTimeoutMs = intArg(
    values['heartbeat-timeout-ms'],
    'heartbeat-timeout-ms',
    DEFAULT_LIMITS.heartbeatTimeoutMs,
    1000,
    3_600_000,
  );
  // Pages heartbeat every requestHeartbeatIntervalMs during a request: the timeout must allow a late one.
  const lossTimeoutMs = intArg(
    values['loss-timeout-ms'],
    'loss-timeout-ms',
    DEFAULT_LIMITS.lossTimeoutMs,
    2 * DEFAULT_LIMITS.requestHeartbeatIntervalMs,
    600_000,
  );
  // a stall is a page that still answers pings: it cannot be judged sooner than a silent one
  const stallTimeoutMs = intArg(
    values['stall-timeout-ms'],
    'stall-timeout-ms',
    Math.max(DEFAULT_LIMITS.stallTimeoutMs, lossTimeoutMs),
    lossTimeoutMs,
    3_600_000,
  );
  const joinBurst = intArg(values['join-burst'], 'join-burst', DEFAULT_LIMITS.joinRate.burst, 1, 100_000);
  const queueDepth = intArg(values['api-queue-depth'], 'api-queue-depth', DEFAULT_LIMITS.queueDepth, 1, 1000);
  const apiKey = values['api-key'] ?? null;
  if (apiKey !== null && !/^[\x21-\x7e]{8,256}$/.test(apiKey))
    throw usageError('--api-key must be 8-256 printable characters without spaces');
  const apiSession = values['api-session']?.toUpperCase() ?? null;
  if (apiSession !== null && !/^[0-9A-HJKMNP-TV-Z]{8}$/.test(apiSession))
    throw usageError(`--api-session takes a join code (8 characters), not '${values['api-session']}'`);
  const corsOrigins = values['api-cors']
    ? values['api-cors']
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean)
    : [];
  if ((values.cert === undefined) !== (values.key === undefined)) throw usageError('--cert and --key go together');
  const dataDir = path.resolve(values.data ?? '.tandem');

  const clientDir = ensurePage(root, values.rebuild ?? false, !(values['no-build'] ?? false));
  const modelDirs = values.model ?? [await ensureDefaultPackage(dataDir, (line) => console.log(`model: ${line}`))];
  const models: ModelPackage[] = [];
  for (const dir of modelDirs) models.push(await loadModelPackage(dir));
  const ips = lanAddresses();
  let tls: TlsFiles | undefined;
  if (values.https || values.cert)
    tls =
      values.cert && values.key
        ? await loadTls(values.cert, values.key)
        : await selfSignedTls(path.join(dataDir, 'tls'), ips);

  const server = await startServer({
    port,
    host,
    tls,
    models,
    clientDir,
    fieldLogPath: path.resolve(values['field-log'] ?? path.join(dataDir, 'field-log.jsonl')),
    defaultTokens: tokens,
    limits: {
      heartbeatTimeoutMs,
      lossTimeoutMs,
      stallTimeoutMs,
      heartbeatIntervalMs: Math.min(DEFAULT_LIMITS.heartbeatIntervalMs, Math.floor(heartbeatTimeoutMs / 4)),
      joinRate: { ...DEFAULT_LIMITS.joinRate, burst: joinBurst },
      queueDepth,
    },
    api: { key: apiKey, corsOrigins, sessionCode: apiSession },
    spares: !(values['no-spares'] ?? false),
  }).catch(portInUse);

  const scheme = tls ? 'https' : 'http';
  const lanUrls =
    host === '0.0.0.0' || host === '::' ? ips.map((ip) => `${scheme}://${ip}:${server.port}/`) : [`${server.url}/`];
  const m = models[0];
  console.log(`\nTandem access point on ${server.url}`);
  console.log(
    `  model:  ${m.name} (${m.manifest.architecture}, ${m.manifest.dtype}, ${m.manifest.config.num_hidden_layers} layers, ${(m.totalBytes / 2 ** 20).toFixed(1)} MiB)`,
  );
  console.log(`  page:   ${clientDir ?? '(not built)'}`);
  if (tls) console.log(`  TLS:    ${tls.source}; phones must accept the certificate once`);
  else if (lanUrls.length > 0)
    console.log('  note:   phones need --https for WebGPU (a LAN address over http is not a secure context)');
  console.log(`  local:  ${scheme}://localhost:${server.port}/`);
  for (const url of lanUrls) console.log(`  LAN:    ${url}`);
  if (lanUrls.length > 0) console.log(`\nScan to open ${lanUrls[0]}\n${qrText(lanUrls[0])}`);
  console.log(
    `  API:    ${scheme}://localhost:${server.port}/v1 (OpenAI-compatible; docs/api.md)${apiKey ? ', key required' : ''}`,
  );
  if (!apiKey && !isLoopback(host))
    console.warn(
      `  warning: the API listens on ${host} without --api-key: anyone on the network can run prompts on sessions that serve it`,
    );
  console.log('Ctrl-C stops the server.');

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${signal}: telling the pages and stopping...`);
      server.close().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

runCliIfEntryPoint(import.meta.url, { program: 'npm start', usage: USAGE, main });
