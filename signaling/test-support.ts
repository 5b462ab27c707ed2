/**
 * Helpers for the signaling tests and bench: a synthetic model package on disk (random blobs with
 * their real SHA-256, manifest per the contract) or in memory, plausible device profiles, a coordinator
 * driven directly with a hosted session of profiled pages, and a WebSocket client that collects typed
 * server messages.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { bundledQwen3TokenizerDir } from '../shards/tokenizer-files.ts';
import path from 'node:path';
import WebSocket from 'ws';
import type { ModelManifest, UnitEntry } from '../shards/manifest.ts';
import { testManifest, unitEntry, unitIds } from '../shards/test-manifest.ts';
import { startServer, type ServerOptions, type TandemServer } from './http-server.ts';
import { Coordinator, type CoordinatorLimits, type CoordinatorOptions, type Effect } from './coordinator.ts';
import { planInline } from './planner-pool.ts';
import type { StageTimes } from '../core/stage-times.ts';
import { loadModelPackage } from './model-route.ts';
import { coordinatorUrl, ProtocolClient, type CloseInfo } from '../core/protocol-client.ts';
import type {
  ClientMessage,
  ClientMessageOf,
  ProfileReport,
  Sampling,
  ServerMessage,
  ServerMessageOf,
  ServerMessageType,
} from '../core/protocol.ts';

/**
 * A real server on a free loopback port, serving a synthetic package of `layers` layers written under
 * dir/pkg, and (when `page`) a one-line page from dir; the field log goes to dir/`fieldLog`.
 */
export async function startTestServer(
  dir: string,
  options: { layers: number; page?: boolean; fieldLog?: string; qwen3Tokenizer?: boolean } & Pick<
    ServerOptions,
    'limits' | 'gateway' | 'api' | 'maxPeerJsSocketsPerAddress' | 'fieldLogMaxBytes' | 'fieldLogMaxDownloads'
  >,
): Promise<{ server: TandemServer; manifest: ModelManifest; packageDir: string }> {
  const pkgDir = path.join(dir, 'pkg');
  const manifest = await writeSyntheticPackage(pkgDir, {
    layers: options.layers,
    qwen3Tokenizer: options.qwen3Tokenizer,
  });
  if (options.page) await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>t</title>');
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    models: [await loadModelPackage(pkgDir)],
    clientDir: options.page ? dir : null,
    fieldLogPath: path.join(dir, options.fieldLog ?? 'profiles.jsonl'),
    limits: options.limits,
    gateway: options.gateway,
    api: options.api,
    maxPeerJsSocketsPerAddress: options.maxPeerJsSocketsPerAddress,
    fieldLogMaxBytes: options.fieldLogMaxBytes,
    fieldLogMaxDownloads: options.fieldLogMaxDownloads,
    // The placeholder tokenizer cannot load: only a package with the real one tokenises host prompts.
    tokenizePrompts: options.qwen3Tokenizer ?? false,
  });
  return { server, manifest, packageDir: pkgDir };
}

/** Writes a qwen3-shaped fp32 package with `layers` layers of random bytes (unitBytes each) into dir. */
/** `qwen3Tokenizer`: the real Qwen3 tokenizer files (chat template included) instead of a placeholder. */
export async function writeSyntheticPackage(
  dir: string,
  options: { name?: string; layers?: number; unitBytes?: number; qwen3Tokenizer?: boolean } = {},
): Promise<ModelManifest> {
  const name = options.name ?? 'synthetic-test';
  const L = options.layers ?? 6;
  const size = options.unitBytes ?? 4096;
  await mkdir(dir, { recursive: true });
  const units: UnitEntry[] = [];
  for (const id of unitIds(L)) {
    const bytes = randomBytes(size + (id === 'embed' ? 1000 : 0));
    const unit = unitEntry(id, bytes.length, createHash('sha256').update(bytes).digest('hex'));
    await writeFile(path.join(dir, unit.file), bytes);
    units.push(unit);
  }
  const tokenizerFiles = options.qwen3Tokenizer ? ['tokenizer.json', 'tokenizer_config.json'] : ['tokenizer.json'];
  if (options.qwen3Tokenizer)
    for (const f of tokenizerFiles) await copyFile(path.join(bundledQwen3TokenizerDir(), f), path.join(dir, f));
  else await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE' }, note: 'synthetic' }));
  const manifest = testManifest({
    name,
    dtype: 'fp32',
    config: {
      num_hidden_layers: L,
      hidden_size: 1024,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      intermediate_size: 3072,
      vocab_size: 151936,
      tie_word_embeddings: true,
    },
    units,
    tokenizerFiles,
  });
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return manifest;
}

/**
 * An in-memory fp32 package, 1024 wide and 8 layers deep: ~50 MB a layer, ~130 MB embedding and head,
 * so memory limits bite and downloads dominate a repair at test sizes.
 */
export function wideFp32Manifest(name: string): ModelManifest {
  return testManifest({
    name,
    dtype: 'fp32',
    config: {
      num_hidden_layers: 8,
      hidden_size: 1024,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 64,
      intermediate_size: 3072,
      vocab_size: 32000,
    },
  });
}

/** The server's tokenizer stand-in for coordinator tests: one id per UTF-16 code unit. */
export const charTokenIds = (prompt: string): number[] =>
  Array.from({ length: prompt.length }, (_, i) => prompt.charCodeAt(i));

/** The last stage's final token report: `generated` tokens in all, the last ones `tokenIds`/`text`, at max tokens. */
export function finalTokens(
  requestId: number,
  tokenIds: number[],
  text: string,
  generated = tokenIds.length,
): ClientMessageOf<'report-tokens'> {
  return { type: 'report-tokens', requestId, tokenIds, text, generated, done: true, finishReason: 'max-tokens' };
}

/** Predicted times for a stage whose predictions a test does not look at. */
export const NO_STAGE_TIMES: StageTimes = { load: 0, wait: 0, comm: 0, compute: 0, startTime: 0, finishTime: 0 };

/**
 * A coordinator driven directly (no sockets) for `manifest`. Rosters are sent at once (rosterIntervalMs 0)
 * unless `limits` sets the interval: most tests check their content.
 */
export function testCoordinator(
  manifest: ModelManifest,
  limits: Partial<CoordinatorLimits> = {},
  options: Pick<CoordinatorOptions, 'promptTokenIds' | 'spares'> = {},
): Coordinator {
  return new Coordinator({
    model: manifest,
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    limits: { rosterIntervalMs: 0, ...limits },
    ...options,
  });
}

/** The messages `effects` send to connection `to`, in order. */
export function sentTo(effects: readonly Effect[], to: number): ServerMessage[] {
  return effects.flatMap((e) => (e.kind === 'send' && e.to === to ? [e.message] : []));
}

/** The one message of `type` that `effects` send to `to`; throws when there is none or more than one. */
export function onlyMessage<T extends ServerMessageType>(
  effects: readonly Effect[],
  to: number,
  type: T,
): ServerMessageOf<T> {
  const found = sentTo(effects, to).filter((m) => m.type === type);
  if (found.length !== 1) throw new Error(`expected one '${type}' to connection ${to}, got ${found.length}`);
  return found[0] as ServerMessageOf<T>;
}

/** The planner request of the `plan` effect among `effects`; throws when there is none. */
export function planEffect(effects: readonly Effect[]): Extract<Effect, { kind: 'plan' }> {
  const effect = effects.find((e) => e.kind === 'plan');
  if (effect?.kind !== 'plan') throw new Error('no plan effect');
  return effect;
}

/** Connection 1 is the host of the sessions `hostedSession` makes; pages are 2, 3, ... */
export const HOST_CONN = 1;

/**
 * A session on `c`: the host (connection 1) creates it, then one page per profile joins (connections
 * 2, 3, ..., addresses a0, a1, ...) and reports its profile, all at `nowMs`.
 */
export function hostedSession(c: Coordinator, profiles: readonly ProfileReport[], nowMs = 0) {
  c.connect(HOST_CONN, 'h');
  const created = onlyMessage(c.handle(HOST_CONN, { type: 'create-session' }, nowMs), HOST_CONN, 'session-created');
  const auth = { code: created.code, hostSecret: created.hostSecret };
  const connOf = new Map<string, number>();
  const peerIds = profiles.map((profile, i) => {
    const conn = 2 + i;
    c.connect(conn, `a${i}`);
    const join = { type: 'join', code: created.code, displayName: `p${i}` } as const;
    const joined = onlyMessage(c.handle(conn, join, nowMs), conn, 'joined');
    c.handle(conn, { type: 'profile', profile }, nowMs);
    connOf.set(joined.peerId, conn);
    return joined.peerId;
  });
  return { ...auth, auth, peerIds, connOf };
}

/** The host plans (`plan`'s other fields) and the planner answers at once: the plan-ready and the planner's request. */
export async function planSession(
  c: Coordinator,
  auth: { code: string; hostSecret: string },
  plan: Omit<ClientMessageOf<'plan'>, 'type' | 'code' | 'hostSecret'> = {},
  nowMs = 0,
) {
  const effect = planEffect(c.handle(HOST_CONN, { type: 'plan', ...auth, ...plan }, nowMs));
  const ready = onlyMessage(
    c.planFinished(effect.token, await planInline(effect.request), nowMs),
    HOST_CONN,
    'plan-ready',
  );
  return { request: effect.request, ready };
}

/** Greedy sampling (the reference's choice: the same tokens on every run). */
export const GREEDY: Sampling = { temperature: 0, topK: 0, topP: 1, seed: 1 };

/** A plausible measured profile; `seed` varies the numbers deterministically. */
export function sampleProfile(seed: number, overrides: Partial<ProfileReport> = {}): ProfileReport {
  const f = 1 + (Math.abs(seed * 7919) % 13) / 4; // 1 .. 4
  return {
    name: `device ${seed}`,
    userAgent: 'Mozilla/5.0 (test)',
    backend: seed % 3 === 0 ? 'wasm' : 'webgpu',
    emulated: null,
    peakFlops: 2e11 * f,
    utilA: 0.5 + 0.1 * (seed % 4),
    utilB: 1e-3 * f,
    fitRmsError: 0.02,
    sweep: [
      { tokens: 16, flops: 2e10 * f },
      { tokens: 256, flops: 1e11 * f },
    ],
    readBytesPerSec: 2e8 * (5 - f),
    uplinkBitsPerSec: 1e8,
    downlinkBitsPerSec: 2e8,
    memoryBytes: 4 * 2 ** 30,
    gpu: null,
    ...overrides,
  };
}

/** The text of a received WebSocket message (a Buffer under ws's default binaryType; the other forms for completeness). */
export function messageText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/**
 * A test's connection to the coordinator: the shared protocol client (core/protocol-client.ts) on a
 * `ws` socket, plus what only tests need (raw frames, a chosen local address, terminate). Its `next`
 * consumes what it returns (the protocol client's `take`); its `send` and `request` skip the local
 * schema check so tests can send what the server must refuse.
 */
export class TestClient {
  private constructor(
    private readonly ws: WebSocket,
    private readonly protocol: ProtocolClient,
  ) {}

  /** Every message received, in order. */
  get messages(): ServerMessage[] {
    return this.protocol.log;
  }

  get closed(): Promise<CloseInfo> {
    return this.protocol.closed;
  }

  /** localAddress: e.g. '127.0.0.2' to appear as another client address on loopback. */
  static async open(url: string, localAddress?: string): Promise<TestClient> {
    const ws = new WebSocket(coordinatorUrl(url), localAddress ? { localAddress } : {});
    const protocol = new ProtocolClient(ws, { timeoutMs: 30_000 });
    await protocol.opened;
    return new TestClient(ws, protocol);
  }

  send(message: ClientMessage): void {
    this.ws.send(JSON.stringify(message));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The oldest message not yet taken of this type matching pred (waits for it if none). */
  next<T extends ServerMessageType>(
    type: T,
    pred: (m: ServerMessageOf<T>) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<ServerMessageOf<T>> {
    return this.protocol.take(type, pred, timeoutMs);
  }

  /** Send and wait for the reply carrying the same ref (the reply itself or an error). */
  request(message: ClientMessage, timeoutMs = 30_000): Promise<ServerMessage> {
    return this.protocol.exchange(message, { timeoutMs, check: false });
  }

  /** Send a heartbeat every `ms` until the socket closes (as a page does). */
  heartbeatEvery(ms: number): void {
    const timer = setInterval(() => {
      if (this.ws.readyState === WebSocket.OPEN) this.send({ type: 'heartbeat' });
    }, ms);
    this.ws.on('close', () => clearInterval(timer));
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}
