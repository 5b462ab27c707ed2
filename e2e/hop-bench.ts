/**
 * Benchmarks that need only two blank pages in the private network (no Tandem server): per-hop activation
 * latency and throughput over a WebRTC data channel with the client's transport, for frame sizes from 4 KB
 * to 4 MB, and the raw IndexedDB read speed. Used by `npm run bench`.
 */
import type { Browser, Page } from 'playwright-core';
import { bundleFixture } from './fixture-bundle.ts';
import { launchInNetwork } from './environment.ts';
import { createPrivateNetwork } from './netns.ts';
import { startServerInNetwork } from './server-process.ts';
import type { HopSizeResult } from './fixtures/bench-page.ts';

export interface HopFigures {
  bytes: number;
  /** Median send-to-ack time of one frame, ms (one hop of `bytes` + one tiny ack hop). */
  hopMedianMs: number;
  hopP90Ms: number;
  /** Median hop time minus half the median tiny-frame round trip: the one-way hop estimate, ms. */
  oneWayMs: number;
  /** Back-to-back stream throughput, MB/s (10^6 bytes/s). */
  streamMBps: number;
  samples: number;
}

export interface HopBenchResult {
  /** Median round trip of a 4-byte frame and its ack, ms. */
  tinyRoundTripMs: number;
  sizes: HopFigures[];
  idb: { bytes: number; readMBps: number; writeMBps: number; runs: number; method: string };
  method: string;
}

export const DEFAULT_HOP_SIZES = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function runHopBench(opts: {
  chromium: string;
  webgpu?: boolean;
  sizes?: number[];
  reps?: number;
  streamFrames?: number;
  idbBytes?: number;
}): Promise<HopBenchResult> {
  const sizes = opts.sizes ?? DEFAULT_HOP_SIZES;
  const reps = opts.reps ?? 15;
  const streamFrames = opts.streamFrames ?? 8;
  const scripts = await bundleFixture('bench-page');
  const net = createPrivateNetwork(opts.chromium);
  let browser: Browser | null = null;
  const port = 9000;
  const server = await startServerInNetwork({
    net,
    command: 'node_modules/.bin/tsx',
    args: ['e2e/fixtures/peer-server.ts', String(port), scripts],
    port,
    readyPath: '/peerjs',
  });
  try {
    browser = await launchInNetwork(net, { webgpu: opts.webgpu ?? false });
    const open = async (id: string): Promise<Page> => {
      const page = await browser!.newPage();
      await page.goto(`${server.pageUrl}/__e2e/page.html?script=bench-page`);
      await page.evaluate(({ id, port }) => window.hop.start(id, port), { id, port });
      return page;
    };
    await open('hopecho');
    const sender = await open('hopsend');
    const tiny = await sender.evaluate(({ reps }) => window.hop.measure('hopecho', [4], reps, 1), {
      reps: Math.max(reps, 20),
    });
    const tinyRoundTripMs = quantile(tiny[0].hopMs, 0.5);
    const raw: HopSizeResult[] = await sender.evaluate(
      ({ sizes, reps, streamFrames }) => window.hop.measure('hopecho', sizes, reps, streamFrames),
      { sizes, reps, streamFrames },
    );
    const idbBytes = opts.idbBytes ?? 64 << 20;
    const idb = await sender.evaluate(({ bytes }) => window.hop.idb(bytes, 5), { bytes: idbBytes });
    return {
      tinyRoundTripMs,
      sizes: raw.map((r) => {
        const median = quantile(r.hopMs, 0.5);
        return {
          bytes: r.bytes,
          hopMedianMs: median,
          hopP90Ms: quantile(r.hopMs, 0.9),
          oneWayMs: Math.max(0, median - tinyRoundTripMs / 2),
          streamMBps: (r.bytes * r.streamFrames) / (r.streamMs / 1000) / 1e6,
          samples: r.hopMs.length,
        };
      }),
      idb: {
        bytes: idb.bytes,
        readMBps: idb.readBytesPerSec / 1e6,
        writeMBps: idb.writeBytesPerSec / 1e6,
        runs: idb.runs,
        method: idb.method,
      },
      method:
        `two headless Chromium pages in a private network namespace, client PeerJS transport (raw, <=256 KiB chunks, back-pressure), ` +
        `frames float32 [1, n, 1]; ${reps} timed round trips per size after 2 warm-ups (median, p90); stream = ${streamFrames} frames back to back until the last ack`,
    };
  } finally {
    await browser?.close();
    await server.stop();
    net.destroy();
  }
}
