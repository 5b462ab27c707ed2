/**
 * The HTTP side on loopback: model packages (exact Range bytes, ETag, no traversal however encoded),
 * the static page and its isolation headers, bounded probes, and the PeerJS mount.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ModelManifest } from '../shards/manifest.ts';
import { startServer, type TandemServer } from './http-server.ts';
import { loadModelPackage, parseRange } from './model-route.ts';
import { messageText, TestClient, writeSyntheticPackage } from './test-support.ts';

let dir: string;
let server: TandemServer;
let manifest: ModelManifest;
let layer3: Buffer;
const PROBE_MAX = 1 << 20;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tandem-http-'));
  const pkgDir = path.join(dir, 'models', 'pkg');
  manifest = await writeSyntheticPackage(pkgDir, { layers: 4, unitBytes: 100_000 });
  layer3 = await readFile(path.join(pkgDir, 'layer.3.bin'));
  // files that must never be served: beside the package, inside it but unlisted, beside the page
  await writeFile(path.join(dir, 'models', 'secret.txt'), 'TOP SECRET');
  await writeFile(path.join(pkgDir, 'unlisted.bin'), 'NOT IN MANIFEST');
  const page = path.join(dir, 'page');
  await mkdir(path.join(page, 'assets'), { recursive: true });
  await writeFile(path.join(page, 'index.html'), '<!doctype html><title>Tandem test page</title>');
  await writeFile(path.join(page, 'assets', 'app-1234.js'), 'console.log(1)');
  await writeFile(path.join(page, '.env'), 'SECRET=1');
  await writeFile(path.join(dir, 'outside.txt'), 'OUTSIDE THE ROOT');
  server = await startServer({
    port: 0,
    host: '127.0.0.1',
    models: [await loadModelPackage(pkgDir)],
    clientDir: page,
    fieldLogPath: path.join(dir, 'profiles.jsonl'),
    probeMaxBytes: PROBE_MAX,
  });
});

afterAll(async () => {
  await (server as TandemServer | undefined)?.close(); // unset when beforeAll failed
  await rm(dir, { recursive: true, force: true });
});

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request with the path sent exactly as written (fetch and URL would normalise '..'). */
function raw(
  pathText: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<RawResponse> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: pathText, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('model packages', () => {
  it('lists packages and serves the manifest with a strong ETag and 304 revalidation', async () => {
    const list = JSON.parse((await raw('/api/models')).body.toString()) as { models: unknown };
    expect(list.models).toEqual([
      {
        name: 'synthetic-test',
        architecture: 'qwen3',
        dtype: 'fp32',
        layers: 4,
        totalBytes: manifest.units.reduce((a, u) => a + u.bytes, 0),
        manifestUrl: '/models/synthetic-test/manifest.json',
      },
    ]);
    const res = await raw('/models/synthetic-test/manifest.json');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual(manifest);
    expect(res.headers.etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(res.headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
    const again = await raw('/models/synthetic-test/manifest.json', {
      headers: { 'If-None-Match': res.headers.etag! },
    });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it('serves unit blobs whole and by Range with exact bytes', async () => {
    const unit = manifest.units.find((u) => u.id === 'layer.3')!;
    const whole = await raw('/models/synthetic-test/layer.3.bin');
    expect(whole.status).toBe(200);
    expect(whole.body.equals(layer3)).toBe(true);
    expect(whole.headers.etag).toBe(`"${unit.sha256}"`);
    expect(whole.headers['accept-ranges']).toBe('bytes');

    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=10-99', 10, 99],
      ['bytes=99990-', 99990, layer3.length - 1],
      ['bytes=-17', layer3.length - 17, layer3.length - 1],
      ['bytes=50000-999999999', 50000, layer3.length - 1],
    ];
    for (const [range, first, last] of cases) {
      const res = await raw('/models/synthetic-test/layer.3.bin', { headers: { Range: range } });
      expect({ range, status: res.status }).toEqual({ range, status: 206 });
      expect(res.headers['content-range']).toBe(`bytes ${first}-${last}/${layer3.length}`);
      expect(res.body.equals(layer3.subarray(first, last + 1))).toBe(true);
    }
    const beyond = await raw('/models/synthetic-test/layer.3.bin', { headers: { Range: `bytes=${layer3.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${layer3.length}`);
    // If-Range with a stale validator gets the whole file
    const stale = await raw('/models/synthetic-test/layer.3.bin', {
      headers: { Range: 'bytes=0-9', 'If-Range': '"0000"' },
    });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(layer3.length);
    const head = await raw('/models/synthetic-test/layer.3.bin', { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(layer3.length));
    expect(head.body.length).toBe(0);
    expect((await raw('/models/synthetic-test/layer.3.bin', { method: 'PUT', body: Buffer.from('x') })).status).toBe(
      405,
    );
  });

  it('parses Range headers like RFC 9110 (checked against a brute-force reading)', () => {
    const size = 20;
    for (let a = 0; a < 24; a++)
      for (let b = 0; b < 24; b++) {
        const r = parseRange(`bytes=${a}-${b}`, size);
        if (a >= size || b < a) expect(r).toBe('unsatisfiable');
        else expect(r).toEqual({ start: a, end: Math.min(b, size - 1) });
      }
    expect(parseRange('bytes=-0', size)).toBe('unsatisfiable');
    expect(parseRange('bytes=-50', size)).toEqual({ start: 0, end: 19 });
    expect(parseRange('bytes=0-1,4-5', size)).toBeNull(); // several ranges: the whole file
    expect(parseRange('items=0-1', size)).toBeNull();
    expect(parseRange(undefined, size)).toBeNull();
  });

  it('never serves a file outside the manifest, however the path is encoded', async () => {
    const attempts = [
      '/models/synthetic-test/../secret.txt',
      '/models/synthetic-test/%2e%2e/secret.txt',
      '/models/synthetic-test/%2E%2E%2Fsecret.txt',
      '/models/synthetic-test/..%2fsecret.txt',
      '/models/synthetic-test/..%5csecret.txt',
      '/models/synthetic-test/%252e%252e%252fsecret.txt',
      '/models/..%2fsecret.txt',
      '/models/../models/secret.txt',
      '/models/synthetic-test/unlisted.bin',
      '/models/synthetic-test/%00manifest.json',
      '/models/synthetic-test/manifest.json%00',
      '/models/synthetic-test/./manifest.json/..',
      '/models/synthetic-test/%c0%ae%c0%ae/secret.txt',
      '/models/synthetic-test/..\\secret.txt',
      '/models/%2e%2e/%2e%2e/package.json',
      '/models/synthetic-test',
      '/models/synthetic-test/',
      '/models/other/manifest.json',
    ];
    for (const attempt of attempts) {
      const res = await raw(attempt);
      expect({ attempt, ok: res.status >= 400 && res.status < 500 }).toEqual({ attempt, ok: true });
      expect(res.body.toString()).not.toMatch(/TOP SECRET|NOT IN MANIFEST|"dependencies"/);
    }
  });
});

describe('the page', () => {
  it('is served with cross-origin isolation headers; traversal and dot-files fail', async () => {
    const index = await raw('/');
    expect(index.status).toBe(200);
    expect(index.body.toString()).toContain('Tandem test page');
    expect(index.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(index.headers['cross-origin-embedder-policy']).toBe('require-corp');
    const deep = await raw('/session/ABCD?join=1');
    expect(deep.body.toString()).toContain('Tandem test page'); // the page handles its own routes
    const asset = await raw('/assets/app-1234.js');
    expect(asset.headers['content-type']).toMatch(/javascript/);
    expect(asset.headers['cache-control']).toContain('immutable');
    for (const attempt of [
      '/../outside.txt',
      '/%2e%2e/outside.txt',
      '/assets/%2e%2e/%2e%2e/outside.txt',
      '/.env',
      '/%2eenv',
      '/assets/..%2f..%2foutside.txt',
    ]) {
      const res = await raw(attempt);
      expect({ attempt, status: res.status }).toEqual({ attempt, status: 404 });
    }
  });
});

describe('link probes', () => {
  it('sends exactly the requested bytes and refuses sizes out of bounds', async () => {
    const res = await raw('/probe/down?bytes=300000');
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(300000);
    expect(res.headers['cache-control']).toBe('no-store');
    for (const q of ['bytes=0', `bytes=${PROBE_MAX + 1}`, 'bytes=abc', 'bytes=-5', 'bytes=1e6', '']) {
      expect({ q, status: (await raw(`/probe/down?${q}`)).status }).toEqual({ q, status: 400 });
    }
  });

  it('measures an upload and cuts off one over the limit', async () => {
    const up = await raw('/probe/up', { method: 'POST', body: Buffer.alloc(123_456, 7) });
    expect(up.status).toBe(200);
    const body = JSON.parse(up.body.toString()) as { bytes: unknown; seconds: unknown };
    expect(body.bytes).toBe(123_456);
    expect(body.seconds).toBeGreaterThanOrEqual(0);
    const big = await raw('/probe/up', { method: 'POST', body: Buffer.alloc(PROBE_MAX + 1) }).catch((e: unknown) => ({
      status: -1,
      error: e,
    }));
    // either the 413 arrives or the connection is cut mid-upload; never a 200
    expect([413, -1]).toContain(big.status);
    expect((await raw('/probe/up')).status).toBe(405);
    expect((await raw('/api/health')).status).toBe(200); // still serving
  });
});

describe('PeerJS mount', () => {
  it('answers at /peerjs and admits only peer ids the coordinator handed out', async () => {
    const info = await raw('/peerjs');
    expect(info.status).toBe(200);
    expect((JSON.parse(info.body.toString()) as { name?: unknown }).name).toBe('PeerJS Server');
    const wsBase = server.url.replace('http', 'ws') + '/peerjs/peerjs';

    const stranger = new WebSocket(`${wsBase}?key=peerjs&id=p0000000000000000&token=${'t'.repeat(43)}`);
    const refused = await new Promise<string>((resolve) => {
      stranger.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      stranger.on('error', (e) => resolve(e.message));
    });
    expect(refused).toBe('403');

    const host = await TestClient.open(server.url);
    const created = await host.request({ type: 'create-session' });
    if (created.type !== 'session-created') throw new Error(JSON.stringify(created));
    const page = await TestClient.open(server.url);
    const joined = await page.request({ type: 'join', code: created.code, displayName: 'p' });
    if (joined.type !== 'joined') throw new Error(JSON.stringify(joined));
    const peer = new WebSocket(`${wsBase}?key=peerjs&id=${joined.peerId}&token=${joined.peerjs.token}`);
    const first = await new Promise<string>((resolve, reject) => {
      peer.on('message', (d) => resolve(messageText(d)));
      peer.on('error', reject);
    });
    expect(JSON.parse(first)).toEqual({ type: 'OPEN' });
    peer.close();
    host.close();
    page.close();
  });
});
