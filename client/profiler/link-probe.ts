/**
 * Link speed to the access point through the server's probes: GET /probe/down?bytes=N streams N bytes,
 * POST /probe/up receives a body. Each direction: one small warm-up transfer (connection set-up, TCP
 * slow start) dropped, then the median of timed transfers. A link cap from ?emulate= stretches each
 * timed transfer. Result in bit/s.
 */
import { TandemError } from '../../core/errors.ts';
import { rateStretch, type Emulation } from './emulation.ts';
import { median, sleepSeconds } from './timing.ts';

export interface LinkResult {
  downlinkBitsPerSec: number;
  uplinkBitsPerSec: number;
  /** median round trip of a 1-byte download, seconds */
  rttSeconds: number;
  bytes: number;
  runs: number;
  method: string;
}

async function timedDownload(origin: string, bytes: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${origin}/probe/down?bytes=${bytes}`, { cache: 'no-store' });
  if (!res.ok)
    throw new TandemError(
      'probe-failed',
      `The server's download probe answered HTTP ${res.status}; is this page served by \`npm start\`?`,
    );
  const body = await res.arrayBuffer();
  if (body.byteLength !== bytes)
    throw new TandemError('probe-failed', `The download probe sent ${body.byteLength} bytes instead of ${bytes}.`);
  return (performance.now() - t0) / 1000;
}

async function timedUpload(origin: string, payload: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${origin}/probe/up`, {
    method: 'POST',
    body: payload as Uint8Array<ArrayBuffer>,
    cache: 'no-store',
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (!res.ok)
    throw new TandemError(
      'probe-failed',
      `The server's upload probe answered HTTP ${res.status}; is this page served by \`npm start\`?`,
    );
  await res.arrayBuffer();
  return (performance.now() - t0) / 1000;
}

export async function probeLink(options: {
  origin: string;
  bytes: number;
  runs: number;
  emulation: Emulation | null;
}): Promise<LinkResult> {
  const { origin, bytes, runs } = options;
  const capBytes =
    options.emulation?.linkBitsPerSecCap === undefined ? undefined : options.emulation.linkBitsPerSecCap / 8;
  try {
    const rtts: number[] = [];
    for (let r = 0; r < 3; r++) rtts.push(await timedDownload(origin, 1));
    await timedDownload(origin, Math.min(bytes, 64 * 1024));
    const down: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      await timedDownload(origin, bytes);
      await sleepSeconds(rateStretch(capBytes, bytes, (performance.now() - t0) / 1000));
      down.push((performance.now() - t0) / 1000);
    }
    const payload = new Uint8Array(bytes);
    for (let i = 0; i < payload.length; i += 4096) payload[i] = i & 0xff;
    await timedUpload(origin, payload.subarray(0, Math.min(bytes, 64 * 1024)));
    const up: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      await timedUpload(origin, payload);
      await sleepSeconds(rateStretch(capBytes, bytes, (performance.now() - t0) / 1000));
      up.push((performance.now() - t0) / 1000);
    }
    const rtt = median(rtts);
    // subtract the request round trip so that small probes on a fast LAN are not dominated by it
    const rate = (t: number) => (8 * bytes) / Math.max(t - rtt, t * 0.5);
    return {
      downlinkBitsPerSec: rate(median(down)),
      uplinkBitsPerSec: rate(median(up)),
      rttSeconds: rtt,
      bytes,
      runs,
      method: `GET /probe/down and POST /probe/up of ${(bytes / 2 ** 20).toFixed(1)} MiB, warm-up dropped, median of ${runs}, minus the 1-byte round trip`,
    };
  } catch (cause) {
    if (cause instanceof TandemError) throw cause;
    throw new TandemError(
      'server-unreachable',
      `Could not reach the server's link probes (${String(cause)}); check that the server is running and this page was opened from it.`,
      { cause },
    );
  }
}
