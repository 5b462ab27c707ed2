/**
 * WebRTC smoke test: two headless Chromium pages in a private network namespace exchange binary data over a
 * PeerJS data connection brokered by the bare `peer` server. No Tandem app code: if this fails, the
 * machine/browser/namespace set-up is wrong, and every other browser test would fail for the same reason.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchInNetwork, prepareE2e, skipBanner } from './environment.ts';
import { createPrivateNetwork, type PrivateNetwork } from './netns.ts';
import { startServerInNetwork, type ServerProcess } from './server-process.ts';

const ready = prepareE2e();
if (!ready.ok) console.warn(skipBanner('WebRTC smoke test', ready.reason));

const PORT = 9000;

interface EchoResult {
  equal: boolean;
  bytes: number;
  rttMs: number[];
  localAddress: string;
  remoteAddress: string;
}

describe.skipIf(!ready.ok)('WebRTC in the private network (bare PeerJS server)', () => {
  let net: PrivateNetwork;
  let server: ServerProcess;
  let browser: Browser;

  beforeAll(async () => {
    if (!ready.ok) return;
    net = createPrivateNetwork(ready.chromium.path);
    server = await startServerInNetwork({
      net,
      command: 'node_modules/.bin/tsx',
      args: ['e2e/fixtures/peer-server.ts', String(PORT)],
      port: PORT,
      readyPath: '/peerjs',
    });
    browser = await launchInNetwork(net, { webgpu: false });
  }, 120_000);

  afterAll(async () => {
    // unset when beforeAll failed or skipped
    await (browser as Browser | undefined)?.close();
    await (server as ServerProcess | undefined)?.stop();
    (net as PrivateNetwork | undefined)?.destroy();
  });

  async function openFixture(): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${server.pageUrl}/__e2e/smoke.html`);
    return page;
  }

  it('two pages connect over a data channel on a non-loopback interface and echo binary data intact', async () => {
    const [a, b] = [await openFixture(), await openFixture()];
    const ids = { a: `smoke-a-${process.pid}`, b: `smoke-b-${process.pid}` };

    // Page A: a PeerJS peer that echoes every message back.
    await a.evaluate(
      ({ id, port }) =>
        new Promise<void>((resolve, reject) => {
          const peer = new Peer(id, {
            host: '127.0.0.1',
            port,
            path: '/peerjs',
            secure: false,
            config: { iceServers: [] },
          });
          peer.on('open', () => resolve());
          peer.on('error', (e) => reject(new Error(`peer A: ${e.type} ${e.message}`)));
          peer.on('connection', (conn) => conn.on('data', (d) => void conn.send(d)));
        }),
      { id: ids.a, port: PORT },
    );

    // Page B: connect, send 1 MiB of pseudo-random bytes and 20 small pings, compare what comes back.
    const result = await b.evaluate(
      ({ id, target, port }) =>
        new Promise<EchoResult>((resolve, reject) => {
          const peer = new Peer(id, {
            host: '127.0.0.1',
            port,
            path: '/peerjs',
            secure: false,
            config: { iceServers: [] },
          });
          peer.on('error', (e) => reject(new Error(`peer B: ${e.type} ${e.message}`)));
          peer.on('open', () => {
            const conn = peer.connect(target, { serialization: 'binary', reliable: true });
            const big = new Uint8Array(1 << 20);
            let x = 12345;
            for (let i = 0; i < big.length; i++) big[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
            const rtts: number[] = [];
            let sentAt = 0;
            let bigEchoed = false;
            const ping = () => {
              sentAt = performance.now();
              void conn.send(new Uint8Array([rtts.length]));
            };
            conn.on('open', () => void conn.send(big));
            conn.on('data', (d) => {
              const got = new Uint8Array(d as ArrayBuffer);
              if (got.length === big.length) {
                bigEchoed = got.every((v, i) => v === big[i]);
                ping();
                return;
              }
              rtts.push(performance.now() - sentAt);
              if (rtts.length < 20) {
                ping();
                return;
              }
              conn.peerConnection.getStats().then((stats) => {
                let pair: RTCIceCandidatePairStats | undefined;
                stats.forEach((s: RTCStats) => {
                  const p = s as RTCIceCandidatePairStats;
                  if (p.type === 'candidate-pair' && p.state === 'succeeded' && p.nominated) pair = p;
                });
                // `ip` is the pre-standard name of `address`
                const candidate = (id: string | undefined) =>
                  id ? (stats.get(id) as { address?: string; ip?: string } | undefined) : undefined;
                const local = candidate(pair?.localCandidateId);
                const remote = candidate(pair?.remoteCandidateId);
                resolve({
                  equal: bigEchoed,
                  bytes: big.length,
                  rttMs: rtts,
                  localAddress: local?.address ?? local?.ip ?? '',
                  remoteAddress: remote?.address ?? remote?.ip ?? '',
                });
              }, reject);
            });
          });
        }),
      { id: ids.b, target: ids.a, port: PORT },
    );

    expect(result.equal).toBe(true);
    expect(result.rttMs).toHaveLength(20);
    // The selected ICE pair runs over the namespace's veth addresses, not loopback and not mDNS names.
    expect(net.innerIps.concat(net.controlIp)).toContain(result.localAddress);
    expect(net.innerIps.concat(net.controlIp)).toContain(result.remoteAddress);
    const sorted = [...result.rttMs].sort((p, q) => p - q);
    console.log(
      `webrtc smoke: 1 MiB echoed intact; small-message RTT median ${sorted[10].toFixed(2)} ms; ` +
        `pair ${result.localAddress} <-> ${result.remoteAddress}`,
    );
  }, 60_000);
});

// PeerJS's browser global, as the fixture page loads it.
// PeerJS declares its options as a class (PeerOptions) but reads them as plain fields: the pages pass plain objects.
declare const Peer: new (id: string, options?: Partial<import('peerjs').PeerOptions>) => import('peerjs').Peer;
