/**
 * Benchmarks that need only two blank pages in the private network (no Tandem server): per-hop activation
 * latency and throughput over a WebRTC data channel with the client's transport, for frame sizes from 4 KB
 * to 4 MB, and the raw IndexedDB read speed. Used by `npm run bench`.
 *
 * With `lab`, the two pages are two device-lab devices of that shape (e2e/lab.ts: each its own Chromium in
 * its own CPU group and network namespace, links shaped by tc), so a hop crosses the links a pipeline of
 * such devices uses and the reads run under the device's CPU quota. `unitReads` times the raw read of sets
 * of Blob units in the sending page, all units of a set at once, as a stage reads its units.
 */
import { cpus } from 'node:os';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { bundleFixture } from './fixture-bundle.ts';
import { launchDeviceContext, launchInNetwork } from './environment.ts';
import { createLab, type Lab, type LabDeviceShape } from './lab.ts';
import { createPrivateNetwork } from './netns.ts';
import { startServerInNetwork, type ServerProcess } from './server-process.ts';
import type { HopSizeResult, UnitReadResult } from './fixtures/bench-page.ts';
import { median } from '../core/step-breakdown.ts';

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
  /** The timed reads of `unitReads`' sets (empty without it). */
  unitReads: UnitReadFigures[];
  /** Where the pages ran: one browser in one namespace, or two lab devices of a shape. */
  setup: string;
  method: string;
}

export interface UnitReadFigures {
  label: string;
  bytes: number;
  readMs: number[];
  /** bytes / median read, MB/s (10^6 bytes/s) */
  readMBps: number;
}

export interface HopBenchOptions {
  chromium: string;
  webgpu?: boolean;
  sizes?: number[];
  reps?: number;
  streamFrames?: number;
  idbBytes?: number;
  /**
   * Round trips per size (and of a tiny frame) run and dropped before anything is timed (default 0). A lab
   * device of a fraction of a core is still busy with its browser's start-up for a while: its first ~100
   * round trips measured 10-30 ms where later ones took 2-4 ms.
   */
  warmUpRounds?: number;
  /** Run the two pages as two lab devices of this shape. */
  lab?: LabDeviceShape;
  /** Blob units of these sizes stored in the sending page, then each set of them (indices) read back `runs` times. */
  unitReads?: { sizes: number[]; sets: { label: string; keys: number[] }[]; runs: number };
}

export const DEFAULT_HOP_SIZES = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function runHopBench(opts: HopBenchOptions): Promise<HopBenchResult> {
  const sizes = opts.sizes ?? DEFAULT_HOP_SIZES;
  const reps = opts.reps ?? 15;
  const streamFrames = opts.streamFrames ?? 8;
  const scripts = await bundleFixture('bench-page');
  const port = 9000;
  const lab: Lab | null = opts.lab ? createLab(opts.chromium, [opts.lab, opts.lab], port, cpus().length) : null;
  const net = lab ? lab.hub : createPrivateNetwork(opts.chromium);
  const browsers: Browser[] = [];
  const contexts: BrowserContext[] = [];
  let server: ServerProcess | null = null;
  try {
    server = await startServerInNetwork({
      net,
      // in the lab the server runs in its own weighted control group, as the Tandem server does
      onSpawn: lab ? (pid) => lab.admitServer(pid) : undefined,
      command: 'node_modules/.bin/tsx',
      args: ['e2e/fixtures/peer-server.ts', String(port), scripts],
      port,
      readyPath: '/peerjs',
    });
    const pageUrl = server.pageUrl;
    const open = async (i: number, id: string): Promise<Page> => {
      // one browser per lab device, with its own profile folder as the Tandem pages' (the raw reads below
      // read what a device's storage gives); pages of one browser otherwise
      let page: Page;
      if (lab) {
        const { context } = await launchDeviceContext(lab.devices[i].chromiumWrapper, { webgpu: opts.webgpu ?? false });
        contexts.push(context);
        page = context.pages()[0] ?? (await context.newPage());
      } else {
        browsers[0] ??= await launchInNetwork(net, { webgpu: opts.webgpu ?? false });
        page = await browsers[0].newPage();
      }
      const base = lab ? lab.devices[i].serverUrl : pageUrl;
      await page.goto(`${base}/__e2e/page.html?script=bench-page`, { timeout: 180_000 });
      await page.evaluate(({ id, host, port }) => window.hop.start(id, host, port), {
        id,
        host: new URL(base).hostname,
        port,
      });
      return page;
    };
    await open(1, 'hopecho');
    const sender = await open(0, 'hopsend');
    const warmUp = opts.warmUpRounds ?? 0;
    if (warmUp > 0)
      await sender.evaluate(({ sizes, n }) => window.hop.measure('hopecho', sizes, n, 1), {
        sizes: [4, ...sizes],
        n: warmUp,
      });
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
    const unitReads: UnitReadFigures[] = [];
    if (opts.unitReads) {
      const u = opts.unitReads;
      await sender.evaluate((s) => window.hop.writeUnits(s), u.sizes);
      for (const set of u.sets) {
        const r: UnitReadResult = await sender.evaluate(({ keys, runs }) => window.hop.readUnits(keys, runs), {
          keys: set.keys,
          runs: u.runs,
        });
        unitReads.push({
          label: set.label,
          bytes: r.bytes,
          readMs: r.readMs,
          readMBps: r.bytes / median(r.readMs) / 1e3,
        });
      }
    }
    const shape = opts.lab;
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
      unitReads,
      setup: shape
        ? `two lab devices of ${shape.cores} core each, links ${shape.uplinkMbps}/${shape.downlinkMbps} Mbit/s (tc tbf), each its own Chromium, CPU group and namespace`
        : 'two pages of one headless Chromium in one private network namespace (no emulation)',
      method:
        `client PeerJS transport (raw, <=256 KiB chunks, back-pressure), ` +
        `frames float32 [1, n, 1]; ${reps} timed round trips per size after ${warmUp > 0 ? `${warmUp} dropped round trips of every size, then ` : ''}2 warm-ups (median, p90); stream = ${streamFrames} frames back to back until the last ack` +
        (opts.unitReads
          ? `; unit reads: Blob values in IndexedDB, a set's units read at once (get + blob.arrayBuffer()), median of ${opts.unitReads.runs} after one dropped read`
          : ''),
    };
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    for (const c of contexts) await c.close().catch(() => {});
    await server?.stop();
    if (lab) lab.destroy();
    else net.destroy();
  }
}
