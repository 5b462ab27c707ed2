/**
 * The device lab: each emulated device is its own Chromium process tree, in its own network namespace
 * with its links shaped, and in its own CPU control group with a quota equal to its share of a core, so
 * that devices do not contend for cores or links the way pages of one browser do.
 *
 *   host ── tdm<N>h 10.78.N.1/30 ─── c1 10.78.N.2   hub namespace (a PrivateNetwork from netns.ts): the
 *                                                    server; forwards between devices, never to the host
 *   hub d<i>h 10.81.N.(4i+1)/30 ─── eth0 10.81.N.(4i+2)/30   namespace tandem-<pid>-<k>-d<i>: device i
 *        tbf at the device's downlink rate     tbf at its uplink rate
 *   cgroup v1 cpu /sys/fs/cgroup/cpu/tandem-lab-<pid>-<k>/d<i>: cfs_quota_us = cores x cfs_period_us (the shortest period
 *                                                    with a 1 ms quota)
 *   cgroup v1 cpuset /sys/fs/cgroup/cpuset/tandem-lab-<pid>-<k>/d<i>: one CPU, so that the page's main
 *                                                    thread goes first within the quota (lab-cpus.ts)
 *
 * A device's page opens the server at http://10.81.N.(4i+1):PORT; Chromium is told to treat that origin
 * as secure (WebGPU, crypto.subtle and cross-origin isolation need a secure context). Only the browser's
 * own process tree enters the group (the wrapper script moves itself in, then execs Chromium): the
 * launching Node process stays outside, so the quota is the device's alone. Each device's browser has a
 * profile folder of its own (environment.ts launchDeviceContext), so its storage is on disk, as a phone's.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TandemError } from '../core/errors.ts';
import { allowedCpus, labConfinement, labDeviceCpus } from './lab-cpus.ts';
import { labUiNice, raiseRendererMainThreads } from './lab-ui-priority.ts';
import { createPrivateNetwork, deleteNamespace, ensureIproute2, shellQuote, type PrivateNetwork } from './netns.ts';

/** What a lab device is given: CPU share and link rates (its storage cap stays the page's ?emulate=). */
export interface LabDeviceShape {
  /** CPU the device's browser may use, in cores (0.25 = a quarter of one core). */
  cores: number;
  /** Link rates, Mbit/s (10^6 bit/s), each way. */
  uplinkMbps: number;
  downlinkMbps: number;
}

export interface LabDevice {
  readonly index: number;
  readonly shape: LabDeviceShape;
  readonly namespace: string;
  /** The server as this device's pages reach it, e.g. http://10.81.7.1:8080. */
  readonly serverUrl: string;
  /** Runs Chromium inside the device's namespace and control group (Playwright's executablePath). */
  readonly chromiumWrapper: string;
  /** The device's control group folder (cgroup v1 cpu). */
  readonly cgroup: string;
  /** The CPU its browser is confined to, null where it runs free (lab-cpus.ts labDeviceCpus). */
  readonly cpu: number | null;
  /** PIDs now in the device's control group. */
  pids(): number[];
  /** Cut the device off the network (its link down: a phone leaving the Wi-Fi) or bring it back. */
  setOnline(online: boolean): void;
}

export interface Lab {
  /** The hub namespace: run the server here (startServerInNetwork). */
  readonly hub: PrivateNetwork;
  /**
   * Moves a process (the server, right after it is spawned: what it forks follows) into the server's
   * control group, which has no quota but the devices' weight: on a busy host the access point is not
   * starved either. (A wrapper inside the namespace cannot do it: `ip netns exec` remounts /sys.)
   */
  admitServer(pid: number): void;
  /** The server's control group folder. */
  readonly serverCgroup: string;
  /** How the devices' browsers are placed on CPUs: on one each, or free and why (placeDevices). */
  readonly confinement: string;
  readonly devices: readonly LabDevice[];
  destroy(): void;
}

export const CGROUP_CPU_ROOT = '/sys/fs/cgroup/cpu';
/** cgroup v1 cpuset: where a device's browser is confined to its CPU (lab-cpus.ts labDeviceCpus). */
export const CGROUP_CPUSET_ROOT = '/sys/fs/cgroup/cpuset';
/**
 * The CFS enforcement period of a device's quota, us. A group that used its quota waits for the next
 * period: at the kernel's default 100 ms a 0.24-core device ran 24 ms at full speed, then stood still for
 * 76 ms. Short work (a decode step, a hand-over's packets) then ran at full speed or waited up to 76 ms, by
 * chance: decode kernels took ~2 ms per layer on every device whatever its share, and 32 KB hand-overs on a
 * 100 Mbit/s link took 0.04-0.8 s. At 10 ms a 0.4-core device could still stand still 6 ms at a time, so
 * each device gets the shortest period the kernel takes (a quota of at least 1 ms, the kernel's minimum):
 * 2.5 ms at 0.4 core, stalls <= 1.5 ms, closer to a CPU that is evenly slow. (It is not what the decode
 * ring's ~5 ms per hop was: on 4 equal 0.4-core devices that stayed 4.8 ms against 5.2 ms at 10 ms.)
 * Evenly slow it is not for short work: in a 0.4-core group of this kernel (HZ 250, a 4 ms tick) a burst
 * of 1.3 ms of CPU took 1.3 ms of wall (median), 4 ms took 7.4 ms and 16 ms took 37 ms, the burst's excess
 * paid back while the group idles. So a ring stage's decode step (~1.3 ms of kernels) runs at the host's
 * speed while one page's whole-model step (~17 ms) is held to its share: the lab flatters a pipeline's
 * decode rate, and its hops weigh more against its kernels than on an evenly slow device.
 */
export const LAB_MIN_QUOTA_US = 1_000;

/** The period of a device of `cores` (see LAB_MIN_QUOTA_US); `TANDEM_LAB_CPU_PERIOD_US` overrides it for A/B runs. */
export function labCpuPeriodUs(cores: number, env: NodeJS.ProcessEnv = process.env): number {
  const forced = Number(env.TANDEM_LAB_CPU_PERIOD_US);
  if (Number.isInteger(forced) && forced >= LAB_MIN_QUOTA_US && forced <= 1_000_000)
    return Math.max(forced, Math.ceil(LAB_MIN_QUOTA_US / cores));
  return Math.max(LAB_MIN_QUOTA_US, Math.ceil(LAB_MIN_QUOTA_US / cores));
}

/**
 * cpu.shares of the devices' and the server's groups (a plain process has 1024): the quota caps a device
 * at its share, the weight makes sure it gets that share while other work (a build, a second test) loads
 * the host, as a real device would. The quotas add up to less than the machine, so this cannot starve it.
 */
export const LAB_CPU_SHARES = 16_384;

/**
 * cpu.shares of the lab's own group, the parent of the devices' and the server's. cgroup v1 weighs a
 * group against its siblings only: at the host's root every plain process weighs 1024, and the lab's group
 * competes as ONE entity with its own weight. Left at the default 1024, the whole lab shared ~1/(1 + busy
 * processes) of the machine: under a load of ~10 three 0.5-core devices got 0.15-0.2 core each (and
 * 0.55 with this weight), so devices contended with each other after all. Its children's weights summed;
 * the kernel's maximum is 262144.
 */
export function labGroupShares(devices: number): number {
  return Math.min(262_144, LAB_CPU_SHARES * (devices + 1));
}

/** Whether the lab can run here, and if not, why (the caller says so loudly and falls back). */
export function labSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'the device lab needs root (network namespaces, cgroups, tc)' };
  if (!existsSync(join(CGROUP_CPU_ROOT, 'cpu.cfs_quota_us')))
    return { ok: false, reason: `no cgroup v1 cpu controller at ${CGROUP_CPU_ROOT} (cpu.cfs_quota_us missing)` };
  if (!tcBinary()) return { ok: false, reason: 'the `tc` command (iproute2) is missing: apt-get install iproute2' };
  return { ok: true };
}

function tcBinary(): string | null {
  for (const p of ['/usr/sbin/tc', '/sbin/tc', '/usr/bin/tc']) if (existsSync(p)) return p;
  return null;
}

/** Shape checks with the numbers in the message. */
export function checkLabShapes(shapes: readonly LabDeviceShape[], machineCores: number): void {
  if (shapes.length === 0 || shapes.length > 60)
    throw new TandemError('lab-invalid', `A lab has 1 to 60 devices, not ${shapes.length}.`);
  shapes.forEach((s, i) => {
    if (!(s.cores >= 0.05 && s.cores <= machineCores))
      throw new TandemError('lab-invalid', `device ${i}: cores must be in [0.05, ${machineCores}], not ${s.cores}.`);
    for (const [k, v] of [
      ['uplinkMbps', s.uplinkMbps],
      ['downlinkMbps', s.downlinkMbps],
    ] as const) {
      if (!(v >= 0.1 && v <= 10_000))
        throw new TandemError('lab-invalid', `device ${i}: ${k} must be in [0.1, 10000] Mbit/s, not ${v}.`);
    }
  });
  const total = shapes.reduce((a, s) => a + s.cores, 0);
  // The server and the harness need the rest: devices that add up to the whole machine would contend.
  if (total > machineCores - 0.25) {
    throw new TandemError(
      'lab-invalid',
      `The devices' CPU shares add up to ${total.toFixed(2)} cores; keep them under ${(machineCores - 0.25).toFixed(2)} (this machine's ${machineCores} cores less room for the server).`,
    );
  }
}

/** tbf needs a bucket of at least one timer tick of traffic; 16 KiB or rate/50 s, whichever is larger. */
export function tbfBurstBytes(rateMbps: number): number {
  return Math.max(16 * 1024, Math.ceil((rateMbps * 1e6) / 8 / 50));
}

/** Make the lab. `port` is the server's port in the hub (pages' secure-origin flag names it). */
export function createLab(
  chromium: string,
  shapes: readonly LabDeviceShape[],
  port: number,
  machineCores: number,
): Lab {
  const support = labSupport();
  if (!support.ok) throw new TandemError('lab-unavailable', support.reason);
  checkLabShapes(shapes, machineCores);
  removeStaleGroups();
  const ip = ensureIproute2();
  const tc = tcBinary()!;
  const hub = createPrivateNetwork(chromium);
  const n = hub.subnet;
  const groupRoot = join(CGROUP_CPU_ROOT, `tandem-lab-${process.pid}-${n}`);
  const cpusetRoot = join(CGROUP_CPUSET_ROOT, `tandem-lab-${process.pid}-${n}`);
  const namespaces: string[] = [];
  const wrapperDir = mkdtempSync(join(tmpdir(), `${hub.name}-lab-`));
  const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const inHub = (...args: string[]) => run(ip, 'netns', 'exec', hub.name, ...args);
  let destroyed = false;
  let uiWatch: ReturnType<typeof setInterval> | null = null;
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', destroy);
    if (uiWatch !== null) clearInterval(uiWatch);
    for (const ns of namespaces) deleteNamespace(ip, ns);
    removeGroupTree(groupRoot);
    removeGroupTree(cpusetRoot);
    rmSync(wrapperDir, { recursive: true, force: true });
    hub.destroy();
  };
  process.on('exit', destroy);
  try {
    inHub('sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward');
    mkdirSync(groupRoot);
    writeFileSync(join(groupRoot, 'cpu.shares'), String(labGroupShares(shapes.length)));
    // each device's browser on one CPU, so that its page's main thread goes first (lab-cpus.ts)
    const { cpus, confinement } = placeDevices(shapes, cpusetRoot);
    const devices = shapes.map((shape, i): LabDevice => {
      const cpu = cpus[i];
      const namespace = `${hub.name}-d${i}`;
      const hubIf = `d${i}h`;
      const hubIp = `10.81.${n}.${4 * i + 1}`;
      const deviceIp = `10.81.${n}.${4 * i + 2}`;
      run(ip, 'netns', 'add', namespace);
      namespaces.push(namespace);
      const inDev = (...args: string[]) => run(ip, 'netns', 'exec', namespace, ...args);
      inDev(ip, 'link', 'set', 'lo', 'up');
      inHub(ip, 'link', 'add', hubIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace);
      inHub(ip, 'addr', 'add', `${hubIp}/30`, 'dev', hubIf);
      inHub(ip, 'link', 'set', hubIf, 'up');
      inDev(ip, 'addr', 'add', `${deviceIp}/30`, 'dev', 'eth0');
      inDev(ip, 'link', 'set', 'eth0', 'up');
      // A default route, so Chromium sees a normal network; the hub's policy table below ends it there.
      inDev(ip, 'route', 'add', 'default', 'via', hubIp, 'dev', 'eth0');
      // Uplink: what leaves the device; downlink: what the hub sends to it.
      inDev(
        tc,
        'qdisc',
        'add',
        'dev',
        'eth0',
        'root',
        'tbf',
        'rate',
        `${shape.uplinkMbps}mbit`,
        'burst',
        String(tbfBurstBytes(shape.uplinkMbps)),
        'latency',
        '100ms',
      );
      inHub(
        tc,
        'qdisc',
        'add',
        'dev',
        hubIf,
        'root',
        'tbf',
        'rate',
        `${shape.downlinkMbps}mbit`,
        'burst',
        String(tbfBurstBytes(shape.downlinkMbps)),
        'latency',
        '100ms',
      );
      const cgroup = join(groupRoot, `d${i}`);
      mkdirSync(cgroup);
      const cpuset = cpu === null ? null : join(cpusetRoot, `d${i}`);
      const periodUs = labCpuPeriodUs(shape.cores);
      writeFileSync(join(cgroup, 'cpu.cfs_period_us'), String(periodUs));
      writeFileSync(join(cgroup, 'cpu.cfs_quota_us'), String(Math.round(shape.cores * periodUs)));
      writeFileSync(join(cgroup, 'cpu.shares'), String(LAB_CPU_SHARES));
      const serverUrl = `http://${hubIp}:${port}`;
      const chromiumWrapper = join(wrapperDir, `chromium-d${i}`);
      // exec keeps Playwright's --remote-debugging-pipe descriptors (3 and 4) attached to the browser.
      writeFileSync(
        chromiumWrapper,
        `#!/bin/sh\necho $$ > ${shellQuote(join(cgroup, 'cgroup.procs'))} || exit 1\n${cpuset === null ? '' : `echo $$ > ${shellQuote(join(cpuset, 'cgroup.procs'))} || exit 1\n`}exec ${ip} netns exec ${namespace} ${shellQuote(chromium)} --unsafely-treat-insecure-origin-as-secure=${serverUrl} "$@"\n`,
        { mode: 0o755 },
      );
      const setOnline = (online: boolean) => {
        inDev(ip, 'link', 'set', 'eth0', online ? 'up' : 'down');
        // a link going down takes its routes along; its tbf qdisc stays configured
        if (online) inDev(ip, 'route', 'replace', 'default', 'via', hubIp, 'dev', 'eth0');
      };
      return {
        index: i,
        shape,
        namespace,
        serverUrl,
        chromiumWrapper,
        cgroup,
        cpu,
        pids: () => readPids(cgroup),
        setOnline,
      };
    });
    // Forwarded traffic (from a device) may only go to another device: table 100 knows the devices'
    // subnets and nothing else, so nothing a page sends can reach the host's control link or beyond.
    devices.forEach((d, i) => inHub(ip, 'route', 'add', `10.81.${n}.${4 * i}/30`, 'dev', `d${i}h`, 'table', '100'));
    inHub(ip, 'route', 'add', 'unreachable', 'default', 'table', '100');
    devices.forEach((_, i) => inHub(ip, 'rule', 'add', 'iif', `d${i}h`, 'table', '100', 'pref', '100'));
    const serverCgroup = join(groupRoot, 'server');
    mkdirSync(serverCgroup);
    writeFileSync(join(serverCgroup, 'cpu.shares'), String(LAB_CPU_SHARES));
    const admitServer = (pid: number) => writeFileSync(join(serverCgroup, 'cgroup.procs'), String(pid));
    // each renderer a device's browser starts gets its main thread raised (lab-ui-priority.ts), within a second
    const uiNice = labUiNice();
    if (uiNice !== 0) {
      uiWatch = setInterval(() => devices.forEach((d) => raiseRendererMainThreads(d.pids(), uiNice)), 500);
      uiWatch.unref();
    }
    return { hub, devices, destroy, admitServer, serverCgroup, confinement };
  } catch (err) {
    destroy();
    if (err instanceof TandemError) throw err;
    const detail = err instanceof Error && 'stderr' in err ? String(err.stderr) : String(err);
    throw new TandemError('lab-failed', `Could not set up the device lab: ${detail.trim()}`, { cause: err });
  }
}

function readPids(cgroup: string): number[] {
  try {
    return readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kill what is left in each child group, then remove the groups (a group with processes cannot go). */
function removeGroupTree(root: string): void {
  if (!existsSync(root)) return;
  for (const child of readdirSync(root, { withFileTypes: true })) {
    if (!child.isDirectory()) continue;
    const dir = join(root, child.name);
    for (const pid of readPids(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    removeDir(dir);
  }
  removeDir(root);
}

function removeDir(dir: string): void {
  // A killed process leaves its group a moment later: retry briefly.
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      execFileSync('sleep', ['0.05']);
    }
  }
}

/**
 * Places each device on a CPU (lab-cpus.ts labDeviceCpus) and makes its cpuset group under `root`. Where
 * confinement is turned off, the cpuset controller is missing or refuses a group, or no device fits on
 * one CPU, every device runs free; `confinement` says which.
 */
function placeDevices(
  shapes: readonly LabDeviceShape[],
  root: string,
): { cpus: (number | null)[]; confinement: string } {
  const free = (why: string) => ({ cpus: shapes.map(() => null), confinement: `devices free on every CPU: ${why}` });
  if (!labConfinement()) return free('TANDEM_LAB_PIN=0');
  if (!existsSync(join(CGROUP_CPUSET_ROOT, 'cpuset.cpus'))) return free(`no cgroup v1 cpuset at ${CGROUP_CPUSET_ROOT}`);
  const cpus = labDeviceCpus(
    shapes.map((s) => s.cores),
    allowedCpus(),
  );
  if (cpus.every((c) => c === null)) return free('no device fits on one CPU (or the machine has one)');
  try {
    mkdirSync(root);
    // a cgroup v1 cpuset takes no process before it has CPUs and memory nodes of its own
    const mems = readFileSync(join(CGROUP_CPUSET_ROOT, 'cpuset.mems'), 'utf8');
    writeFileSync(join(root, 'cpuset.mems'), mems);
    writeFileSync(join(root, 'cpuset.cpus'), readFileSync(join(CGROUP_CPUSET_ROOT, 'cpuset.cpus'), 'utf8'));
    cpus.forEach((cpu, i) => {
      if (cpu === null) return;
      const group = join(root, `d${i}`);
      mkdirSync(group);
      writeFileSync(join(group, 'cpuset.mems'), mems);
      writeFileSync(join(group, 'cpuset.cpus'), String(cpu));
    });
  } catch (err) {
    removeGroupTree(root);
    return free(`the cpuset controller refused a group (${err instanceof Error ? err.message : String(err)})`);
  }
  return { cpus, confinement: `each device on one CPU (${cpus.map((c) => c ?? 'free').join(', ')})` };
}

/** Groups of lab runs whose process is gone (a crashed run) are removed before a new lab starts. */
function removeStaleGroups(): void {
  for (const root of [CGROUP_CPU_ROOT, CGROUP_CPUSET_ROOT]) {
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      const m = /^tandem-lab-(\d+)-\d+$/.exec(entry.name);
      if (!entry.isDirectory() || !m) continue;
      const pid = Number(m[1]);
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) removeGroupTree(join(root, entry.name));
    }
  }
}
