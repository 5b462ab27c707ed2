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
    const d = PAPER_DEVICES[i % PAPER_DEVICES.length];
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

/** Device lab line-ups (lab.ts): each page its own device with a CPU share, shaped links and a read cap. */
export const LAB_LINEUPS = ['paper', 'equal', 'laptop-phones', 'memory-bound'] as const;
export type LabLineup = (typeof LAB_LINEUPS)[number];

interface LabDeviceSpec {
  name: string;
  cores: number;
  uplinkMbps: number;
  downlinkMbps: number;
  readMBps: number;
  /** Memory budget cap (MiB), where the line-up needs one. */
  memoryMB?: number;
}

/**
 * The line-ups. Shares add up to at most 1.6 of this machine's 2 cores, so the server keeps the rest and
 * devices never contend. `memoryMB` is in the page's ?emulate= (the page's memory budget); the
 * memory-bound line-up's caps are fractions of the model's bytes so that no single device can hold it.
 */
export function labLineup(lineup: LabLineup, count: number, modelBytes: number): LabDeviceSpec[] {
  const mib = modelBytes / 2 ** 20;
  switch (lineup) {
    case 'paper':
      // The paper's compute order (165 : 70 : 30 : 20 TFLOPS) compressed as (c / 165)^0.4, scaled so the
      // fastest device gets 0.55 core; read caps as the throttled line-up's (paper's speeds / 250).
      return Array.from({ length: count }, (_, i) => {
        const d = PAPER_DEVICES[i % PAPER_DEVICES.length];
        return {
          name: i < PAPER_DEVICES.length ? d.name : `${d.name}-${Math.floor(i / PAPER_DEVICES.length) + 1}`,
          cores: round2((0.55 / d.cpu) * (4 / Math.max(4, count))),
          uplinkMbps: 100,
          downlinkMbps: 100,
          readMBps: d.readMBps,
        };
      });
    case 'equal':
      return Array.from({ length: count }, (_, i) => ({
        name: `equal-${i + 1}`,
        cores: round2(1.6 / count),
        uplinkMbps: 100,
        downlinkMbps: 100,
        readMBps: 16,
      }));
    case 'laptop-phones':
      return Array.from({ length: count }, (_, i) =>
        i === 0
          ? { name: 'laptop', cores: round2(Math.min(0.7, 1.6 / 2)), uplinkMbps: 200, downlinkMbps: 200, readMBps: 30 }
          : {
              name: `phone-${i}`,
              cores: round2(Math.min(0.25, (1.6 - 0.7) / Math.max(1, count - 1))),
              uplinkMbps: 40,
              downlinkMbps: 80,
              readMBps: 10,
            },
      );
    case 'memory-bound':
      // Each device can hold ~0.45 of the model: only a pipeline of at least three answers.
      return Array.from({ length: count }, (_, i) => ({
        name: `small-${i + 1}`,
        cores: round2(1.6 / count),
        uplinkMbps: 100,
        downlinkMbps: 100,
        readMBps: 16,
        memoryMB: Math.max(1, Math.round(mib * 0.45)),
      }));
  }
}

/**
 * Lab line-up as page specs for the harness (no DevTools throttling: the CPU group is the slow-down).
 * `readCap: false` leaves the storage read uncapped (CPU quota and links kept): for runs that compare a
 * page's shard load with the raw storage speed of the same device.
 */
export function labPeers(
  lineup: LabLineup,
  count: number,
  modelBytes: number,
  opts: { readCap?: boolean } = {},
): PeerSpec[] {
  const readCap = opts.readCap ?? true;
  return labLineup(lineup, count, modelBytes).map((d) => {
    const read = readCap ? `read<=${d.readMBps} MiB/s` : 'read uncapped';
    const label = `lab: ${d.cores} core, ${d.uplinkMbps}/${d.downlinkMbps} Mbit/s, ${read}${d.memoryMB ? `, mem<=${d.memoryMB} MiB` : ''}`;
    const emulate = JSON.stringify({
      label,
      compute: 1,
      ...(readCap ? { readMBps: d.readMBps } : {}),
      ...(d.memoryMB ? { memoryMB: d.memoryMB } : {}),
    });
    return {
      name: d.name,
      emulate,
      device: { cores: d.cores, uplinkMbps: d.uplinkMbps, downlinkMbps: d.downlinkMbps },
    };
  });
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
