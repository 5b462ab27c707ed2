/**
 * The device lab (lab.ts) for real: two devices, each its own Chromium in its own namespace and CPU
 * group, links shaped by tbf, exchange 1 MiB over a PeerJS data channel through the hub. Checks the
 * isolation the lab promises (every process of a device's browser in its group, the quota set, every
 * thread on the device's CPU, the shaping in place, forwarded traffic kept off the host's control link),
 * not speeds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchDeviceContext, prepareE2e, skipBanner, type DeviceBrowser } from './environment.ts';
import {
  checkLabShapes,
  createLab,
  LAB_CPU_SHARES,
  LAB_MIN_QUOTA_US,
  labCpuPeriodUs,
  labGroupShares,
  labSupport,
  tbfBurstBytes,
  type Lab,
} from './lab.ts';
import { allowedCpus, labConfinement, labDeviceCpus } from './lab-cpus.ts';
import { isRenderer, LAB_UI_NICE } from './lab-ui-priority.ts';
import { startServerInNetwork, type ServerProcess } from './server-process.ts';

const ready = prepareE2e();
const support = labSupport();
if (!ready.ok) console.warn(skipBanner('device lab test', ready.reason));
else if (!support.ok) console.warn(skipBanner('device lab test', support.reason));

const PORT = 9100;
const SHAPES = [
  { cores: 0.4, uplinkMbps: 40, downlinkMbps: 80 },
  { cores: 0.25, uplinkMbps: 20, downlinkMbps: 30 },
];

describe('lab shapes', () => {
  it('rejects shares that would contend with the server and rates out of range, with the numbers', () => {
    expect(() =>
      checkLabShapes(
        [
          { cores: 1, uplinkMbps: 10, downlinkMbps: 10 },
          { cores: 0.9, uplinkMbps: 10, downlinkMbps: 10 },
        ],
        2,
      ),
    ).toThrow(/add up to 1.90 cores; keep them under 1.75/);
    expect(() => checkLabShapes([{ cores: 0.5, uplinkMbps: 0, downlinkMbps: 10 }], 2)).toThrow(/uplinkMbps must be in/);
    expect(() => checkLabShapes([], 2)).toThrow(/1 to 60 devices/);
    expect(() => checkLabShapes(SHAPES, 2)).not.toThrow();
  });

  it("enforces a device's quota over the shortest period the kernel takes (a quota of at least 1 ms)", () => {
    const none = {};
    expect(labCpuPeriodUs(0.4, none)).toBe(2_500); // 1 ms of CPU every 2.5 ms
    expect(labCpuPeriodUs(0.24, none)).toBe(4_167);
    expect(labCpuPeriodUs(1, none)).toBe(1_000);
    expect(labCpuPeriodUs(1.5, none)).toBe(1_000); // quota 1.5 ms: more than one CPU within the period
    for (const cores of [0.05, 0.13, 0.4, 0.77, 1.2])
      expect(Math.round(cores * labCpuPeriodUs(cores, none))).toBeGreaterThanOrEqual(LAB_MIN_QUOTA_US);
    // an A/B run may force a longer period, never one whose quota the kernel would refuse
    expect(labCpuPeriodUs(0.4, { TANDEM_LAB_CPU_PERIOD_US: '10000' })).toBe(10_000);
    expect(labCpuPeriodUs(0.4, { TANDEM_LAB_CPU_PERIOD_US: '1000' })).toBe(2_500);
    expect(labCpuPeriodUs(0.4, { TANDEM_LAB_CPU_PERIOD_US: 'fast' })).toBe(2_500);
  });

  it('gives tbf a bucket of at least one 20 ms slice of traffic', () => {
    expect(tbfBurstBytes(1)).toBe(16 * 1024);
    expect(tbfBurstBytes(100)).toBe(250_000); // 100 Mbit/s = 12.5 MB/s; / 50
  });
});

describe.skipIf(!ready.ok || !support.ok)('the device lab in real browsers', () => {
  let lab: Lab;
  let server: ServerProcess;
  const devices: DeviceBrowser[] = [];

  beforeAll(async () => {
    if (!ready.ok) return;
    lab = createLab(ready.chromium.path, SHAPES, PORT, 2);
    server = await startServerInNetwork({
      net: lab.hub,
      onSpawn: (pid) => lab.admitServer(pid),
      command: 'node_modules/.bin/tsx',
      args: ['e2e/fixtures/peer-server.ts', String(PORT)],
      port: PORT,
      readyPath: '/peerjs',
    });
    for (const d of lab.devices) devices.push(await launchDeviceContext(d.chromiumWrapper, { webgpu: false }));
  }, 180_000);

  afterAll(async () => {
    for (const d of devices) await d.context.close().catch(() => {});
    // unset when beforeAll failed or skipped
    await (server as ServerProcess | undefined)?.stop();
    (lab as Lab | undefined)?.destroy();
  });

  it('runs the server in its own weighted group without a quota', () => {
    const pids = readFileSync(join(lab.serverCgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    expect(pids).toContain(String(server.child.pid));
    expect(Number(readFileSync(join(lab.serverCgroup, 'cpu.shares'), 'utf8'))).toBe(LAB_CPU_SHARES);
    expect(Number(readFileSync(join(lab.serverCgroup, 'cpu.cfs_quota_us'), 'utf8'))).toBe(-1);
    // the lab's own group weighs as much as its children together against the host's plain processes
    expect(Number(readFileSync(join(dirname(lab.serverCgroup), 'cpu.shares'), 'utf8'))).toBe(
      labGroupShares(lab.devices.length),
    );
  });

  it('puts every process of a device browser in its own CPU group with its quota', () => {
    lab.devices.forEach((d, i) => {
      const pids = d.pids();
      expect(pids.length, `device ${i} has processes in its group`).toBeGreaterThan(2); // browser, renderer/GPU/utility
      // the executable, not argv: Chromium starts some of its children as /proc/self/exe (seen in CI: the
      // network service), whose command line names no browser
      for (const pid of pids) {
        let exe: string;
        try {
          exe = readlinkSync(`/proc/${pid}/exe`);
        } catch {
          continue; // it ended since the group was read
        }
        expect(exe, `pid ${pid} of device ${i}`).toMatch(/chrom/);
        // every thread on the device's CPU, so that the page's main thread's priority counts (lab-cpus.ts)
        if (d.cpu !== null)
          for (const tid of readdirSafe(`/proc/${pid}/task`)) {
            const status = readFileSafe(`/proc/${pid}/task/${tid}/status`);
            if (status !== null) expect(allowedCpus(status), `thread ${tid} of device ${i}`).toEqual([d.cpu]);
          }
      }
      // confined wherever the machine can (root here): two or more CPUs and a cgroup v1 cpuset
      const canConfine =
        labConfinement() && existsSync('/sys/fs/cgroup/cpuset/cpuset.cpus') && allowedCpus().length > 1;
      expect(lab.confinement, lab.confinement).toMatch(canConfine ? /^each device on one CPU/ : /^devices free/);
      const placed = labDeviceCpus(
        SHAPES.map((s) => s.cores),
        allowedCpus(),
      );
      expect(d.cpu).toBe(canConfine ? placed[i] : null);
      const period = Number(readFileSync(join(d.cgroup, 'cpu.cfs_period_us'), 'utf8'));
      expect(period).toBe(labCpuPeriodUs(SHAPES[i].cores));
      expect(Number(readFileSync(join(d.cgroup, 'cpu.cfs_quota_us'), 'utf8'))).toBe(
        Math.round(SHAPES[i].cores * period),
      );
      // weighted, so that a busy host does not take its share away
      expect(Number(readFileSync(join(d.cgroup, 'cpu.shares'), 'utf8'))).toBe(LAB_CPU_SHARES);
      // Nothing of this device runs outside its group: every live process in its namespace is in the
      // group (the group is read after the namespace, so a process started in between is in both).
      const inNamespace = execFileSync('ip', ['netns', 'pids', d.namespace], { encoding: 'utf8' })
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      const group = new Set(d.pids());
      for (const pid of inNamespace)
        if (existsSync(`/proc/${pid}`))
          expect(group.has(pid), `pid ${pid} of device ${i}'s namespace is in its group`).toBe(true);
    });
  });

  it("raises each renderer's main thread to Chromium's display priority, and none of its other threads", async () => {
    const page = devices[1].context.pages()[0] ?? (await devices[1].context.newPage());
    await page.goto(`${lab.devices[1].serverUrl}/__e2e/smoke.html`);
    // a dedicated worker: a thread of the renderer that stays at the default
    await page.evaluate(() => {
      (globalThis as { keep?: Worker }).keep = new Worker(
        URL.createObjectURL(new Blob(['setInterval(() => {}, 1000)'], { type: 'text/javascript' })),
      );
    });
    const niceOf = (pid: number, tid: number) =>
      Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
    const renderers = () => lab.devices[1].pids().filter((pid) => isRenderer(pid));
    // the lab's watch looks every 500 ms
    await expect.poll(() => renderers().map((pid) => niceOf(pid, pid)), { timeout: 10_000 }).toContain(LAB_UI_NICE);
    for (const pid of renderers()) {
      if (niceOf(pid, pid) !== LAB_UI_NICE) continue;
      const workers = readdirSync(`/proc/${pid}/task`)
        .map(Number)
        .filter((tid) => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').startsWith('DedicatedWorker'));
      for (const tid of workers) expect(niceOf(pid, tid), `worker thread ${tid}`).toBe(0);
    }
  });

  it('shapes each link both ways and keeps forwarded traffic off the host', () => {
    const n = lab.hub.subnet;
    lab.devices.forEach((d, i) => {
      const up = execFileSync('ip', ['netns', 'exec', d.namespace, 'tc', 'qdisc', 'show', 'dev', 'eth0'], {
        encoding: 'utf8',
      });
      const down = execFileSync('ip', ['netns', 'exec', lab.hub.name, 'tc', 'qdisc', 'show', 'dev', `d${i}h`], {
        encoding: 'utf8',
      });
      expect(up).toMatch(new RegExp(`tbf .*rate ${SHAPES[i].uplinkMbps}Mbit`));
      expect(down).toMatch(new RegExp(`tbf .*rate ${SHAPES[i].downlinkMbps}Mbit`));
    });
    const route = (dst: string) => {
      try {
        return execFileSync(
          'ip',
          ['netns', 'exec', lab.hub.name, 'ip', 'route', 'get', dst, 'from', `10.81.${n}.2`, 'iif', 'd0h'],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
        );
      } catch (e) {
        return String((e as { stderr?: unknown }).stderr ?? e);
      }
    };
    expect(route(`10.81.${n}.6`)).toMatch(/dev d1h/); // device 0 -> device 1: forwarded
    expect(route(`10.78.${n}.1`)).toMatch(/unreachable|No route/i); // device 0 -> the host: never
  });

  it("keeps a device's storage on disk in its own profile folder, as a phone's browser does", async () => {
    const page = devices[0].context.pages()[0] ?? (await devices[0].context.newPage());
    await page.goto(`${lab.devices[0].serverUrl}/__e2e/smoke.html`);
    const size = 1 << 20;
    // a byte pattern of its own, written as an OPFS file (what the shard cache does with a unit)
    await page.evaluate(async (n) => {
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = (i * 7 + 3) & 0xff;
      const root = await navigator.storage.getDirectory();
      const w = await (await root.getFileHandle('lab-probe.bin', { create: true })).createWritable();
      await w.write(bytes);
      await w.close();
    }, size);
    const holding = (dir: string): string[] =>
      readdirSync(dir, { recursive: true, withFileTypes: true }).flatMap((e) => {
        const path = join(e.parentPath, e.name);
        if (!e.isFile() || statSync(path).size !== size) return [];
        const head = readFileSync(path).subarray(0, 64);
        return head.every((v, i) => v === ((i * 7 + 3) & 0xff)) ? [path] : [];
      });
    // the file's bytes are in device 0's folder, and only there
    expect(holding(devices[0].profileDir).length).toBe(1);
    expect(holding(devices[1].profileDir)).toEqual([]);
  });

  it('two devices exchange 1 MiB intact over a data channel between their own addresses', async () => {
    const pages: Page[] = [];
    for (const [i, d] of devices.entries()) {
      const page = d.context.pages()[0] ?? (await d.context.newPage());
      await page.goto(`${lab.devices[i].serverUrl}/__e2e/smoke.html`);
      expect(await page.evaluate(() => window.isSecureContext)).toBe(true);
      pages.push(page);
    }
    const n = lab.hub.subnet;
    const ids = { a: `lab-a-${process.pid}`, b: `lab-b-${process.pid}` };
    await pages[0].evaluate(
      ({ id, host, port }) =>
        new Promise<void>((resolve, reject) => {
          const peer = new Peer(id, { host, port, path: '/peerjs', secure: false, config: { iceServers: [] } });
          peer.on('open', () => resolve());
          peer.on('error', (e) => reject(new Error(`peer A: ${e.type} ${e.message}`)));
          peer.on('connection', (conn) => conn.on('data', (d) => void conn.send(d)));
        }),
      { id: ids.a, host: `10.81.${n}.1`, port: PORT },
    );
    const result = await pages[1].evaluate(
      ({ id, target, host, port }) =>
        new Promise<{ equal: boolean; local: string; remote: string }>((resolve, reject) => {
          const peer = new Peer(id, { host, port, path: '/peerjs', secure: false, config: { iceServers: [] } });
          peer.on('error', (e) => reject(new Error(`peer B: ${e.type} ${e.message}`)));
          peer.on('open', () => {
            const conn = peer.connect(target, { serialization: 'binary', reliable: true });
            const big = new Uint8Array(1 << 20);
            for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
            conn.on('open', () => void conn.send(big));
            conn.on('data', (d) => {
              const got = new Uint8Array(d as ArrayBuffer);
              // the pair in use: the transport's selected one (a nominated pair's stats may lag a moment
              // behind the data, so the stats are read again until one is there)
              const addresses = async (): Promise<{ local: string; remote: string }> => {
                for (let attempt = 0; ; attempt++) {
                  const stats = await conn.peerConnection.getStats();
                  let pairId: string | undefined;
                  stats.forEach((s: RTCStats) => {
                    const t = s as RTCTransportStats;
                    if (t.type === 'transport' && t.selectedCandidatePairId) pairId = t.selectedCandidatePairId;
                  });
                  stats.forEach((s: RTCStats) => {
                    const p = s as RTCIceCandidatePairStats;
                    if (!pairId && p.type === 'candidate-pair' && p.state === 'succeeded' && p.nominated) pairId = p.id;
                  });
                  const pair = pairId ? (stats.get(pairId) as RTCIceCandidatePairStats | undefined) : undefined;
                  const address = (id: string | undefined) =>
                    (id ? (stats.get(id) as { address?: string } | undefined) : undefined)?.address ?? '';
                  const found = { local: address(pair?.localCandidateId), remote: address(pair?.remoteCandidateId) };
                  if ((found.local && found.remote) || attempt >= 30) return found;
                  await new Promise((r) => setTimeout(r, 100));
                }
              };
              addresses().then(
                (a) => resolve({ equal: got.length === big.length && got.every((v, i) => v === big[i]), ...a }),
                reject,
              );
            });
          });
        }),
      { id: ids.b, target: ids.a, host: `10.81.${n}.5`, port: PORT },
    );
    expect(result.equal).toBe(true);
    expect(result.local).toBe(`10.81.${n}.6`); // device 1's own address
    expect(result.remote).toBe(`10.81.${n}.2`); // device 0's
  }, 120_000);
});

// PeerJS declares its options as a class (PeerOptions) but reads them as plain fields: the pages pass plain objects.
declare const Peer: new (id: string, options?: Partial<import('peerjs').PeerOptions>) => import('peerjs').Peer;

/** A /proc folder's entries, none where the process ended meanwhile. */
function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** A /proc file, null where its thread ended meanwhile. */
function readFileSafe(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
