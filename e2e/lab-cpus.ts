/**
 * Which CPU each lab device runs on. A device's browser is confined to one CPU (a cgroup v1 cpuset, made
 * by lab.ts), so that the priority the lab gives its page's main thread (lab-ui-priority.ts) counts
 * against the page's inference worker: a priority only orders the threads of one CPU's run queue.
 */
import { readFileSync } from 'node:fs';

/**
 * The CPU each device's browser is confined to, or null where it runs free. Linux weighs a thread's nice
 * against the threads of its own CPU's run queue only; the quota of a device's group is shared by all of
 * its CPUs. Free to spread over this machine's two CPUs, a device's worker computed on one while its
 * page's main thread ran on the other, and the two split the quota evenly whatever their nice: in a traced
 * cold request on 4 equal 0.4-core devices, frames of 10-14 ms of CPU took 53-81 ms, 1-3 per page over
 * 50 ms. Confined to one CPU, the main thread's raised priority (lab-ui-priority.ts) puts it ahead of the
 * worker within the quota, as a phone's UI thread is not held up by its other work; the same trace, on a
 * scratch lab that confined each browser with taskset, then had none over 50 ms. Devices go to the
 * least-loaded CPU, the largest first, while the shares on a CPU stay within one core; a device of more
 * than one core, or one that fits nowhere, runs free (one CPU would cap it).
 */
export function labDeviceCpus(cores: readonly number[], cpus: readonly number[]): (number | null)[] {
  const load = cpus.map(() => 0);
  const out: (number | null)[] = cores.map(() => null);
  if (cpus.length < 2) return out; // on one CPU the threads share a run queue already
  const largestFirst = cores.map((_, i) => i).sort((a, b) => cores[b] - cores[a] || a - b);
  for (const i of largestFirst) {
    const k = load.indexOf(Math.min(...load));
    if (cores[i] > 1 || load[k] + cores[i] > 1) continue;
    out[i] = cpus[k];
    load[k] += cores[i];
  }
  return out;
}

/** Whether the lab confines devices to a CPU (`TANDEM_LAB_PIN=0` lets them run free, for A/B runs). */
export function labConfinement(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TANDEM_LAB_PIN !== '0';
}

/** The CPU ids of a `Cpus_allowed_list` ("0-1", "0,2-3"). */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`not a CPU list: ${list}`);
    for (let c = Number(m[1]); c <= Number(m[2] || m[1]); c++) cpus.push(c);
  }
  return cpus;
}

/** The CPUs this process may run on (what the lab's devices may be confined to). */
export function allowedCpus(status = readFileSync('/proc/self/status', 'utf8')): number[] {
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
  return line ? parseCpuList(line[1]) : [];
}
