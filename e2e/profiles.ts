/**
 * Emulated device line-ups for heterogeneous runs on one machine. Every emulated page is labelled as such
 * (?emulate= carries the label); the planner receives what the pages MEASURE under emulation.
 *
 * Compute is slowed by Chromium's CPU throttling (DevTools protocol), which slows the profiler's benchmark
 * and the stage's real inference alike; storage is capped by the page's own ?emulate= read cap (applied to
 * the profiler's IndexedDB benchmark and to every shard read). `compute` in ?emulate= stays 1 so the
 * slow-down is not counted twice.
 */
import type { PeerSpec } from './tandem-page.ts';

interface DeviceShape {
  name: string;
  /** CPU slow-down factor (CDP Emulation.setCPUThrottlingRate). */
  cpu: number;
  /** Storage read cap, MiB/s. */
  readMBps: number;
}

/**
 * Shaped like the CSGO paper's four devices (its Table 1): storage in the ratio of their read speeds
 * (5000 : 4000 : 3000 : 2000 MB/s) and compute in the ORDER of their peak TFLOPS (165 : 70 : 30 : 20),
 * compressed to a CPU slow-down of (165 / c)^0.4 = 1, 1.4, 2.0, 2.3: at the paper's full 8.3x (and still at
 * 3.0-3.9x), a throttled page sharing 2 cores with three others, busy creating its onnxruntime-web session,
 * answered the data-channel set-up too late for the client transport's 15 s connect timeout. The read caps are the paper's speeds / 250 (20 .. 8 MiB/s): they must sit below what
 * IndexedDB does on the machine running the pages (4 pages sharing 2 cores measured 15-45 MiB/s here) or
 * they would not bind; loading stays the dominant cold-start cost, as in the paper.
 */
const slowdown = (tflops: number) => (165 / tflops) ** 0.4;
export const PAPER_DEVICES: readonly DeviceShape[] = [
  { name: 'dev1-165tf', cpu: slowdown(165), readMBps: 20 },
  { name: 'dev2-70tf', cpu: slowdown(70), readMBps: 16 },
  { name: 'dev3-30tf', cpu: slowdown(30), readMBps: 12 },
  { name: 'dev4-20tf', cpu: slowdown(20), readMBps: 8 },
];

/** `count` emulated peers: the paper's four shapes, cycled (a 5th device repeats the 1st with a new name). */
export function paperPeers(count: number): PeerSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const d = PAPER_DEVICES[i % PAPER_DEVICES.length]!;
    const name = i < PAPER_DEVICES.length ? d.name : `${d.name}-${Math.floor(i / PAPER_DEVICES.length) + 1}`;
    return emulatedPeer(name, d.cpu, d.readMBps);
  });
}

/** One emulated peer: CDP CPU throttling `cpu`x and a `readMBps` storage cap, labelled in the page. */
export function emulatedPeer(name: string, cpu: number, readMBps?: number): PeerSpec {
  const label = `cpu/${cpu.toFixed(1)}${readMBps ? `, read<=${readMBps} MiB/s` : ''}`;
  const emulate = JSON.stringify({ label, compute: 1, ...(readMBps ? { readMBps } : {}) });
  return { name, emulate, cpuThrottle: cpu };
}
