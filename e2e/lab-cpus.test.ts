import { describe, expect, it } from 'vitest';
import { allowedCpus, labConfinement, labDeviceCpus, parseCpuList } from './lab-cpus.ts';

describe('labDeviceCpus', () => {
  it('puts equal devices on the CPUs in turn and a large one alone', () => {
    expect(labDeviceCpus([0.4, 0.4, 0.4, 0.4], [0, 1])).toEqual([0, 1, 0, 1]);
    // largest first: the laptop gets a CPU of its own, the phones share the other
    expect(labDeviceCpus([0.25, 0.7, 0.25, 0.25], [0, 1])).toEqual([1, 0, 1, 1]);
    expect(labDeviceCpus([0.4, 0.25], [2, 3])).toEqual([2, 3]);
  });

  it('leaves free a device of more than one core, one that fits nowhere, and every device on one CPU', () => {
    expect(labDeviceCpus([1.2, 0.3], [0, 1])).toEqual([null, 0]);
    expect(labDeviceCpus([0.9, 0.9, 0.5], [0, 1])).toEqual([0, 1, null]);
    expect(labDeviceCpus([0.4, 0.4], [0])).toEqual([null, null]);
  });

  it('never fills a CPU past one core, and leaves free only what fits on no CPU', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let trial = 0; trial < 500; trial++) {
      const cpus = [0, 1, 2].slice(0, 2 + Math.floor(rand() * 2));
      const cores = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.round((0.05 + rand()) * 100) / 100);
      const placed = labDeviceCpus(cores, cpus);
      const load = cpus.map((c) => placed.reduce<number>((a, p, i) => a + (p === c ? cores[i] : 0), 0));
      for (const l of load) expect(l).toBeLessThanOrEqual(1 + 1e-9);
      placed.forEach((p, i) => {
        if (p === null && cores[i] <= 1) for (const l of load) expect(l + cores[i]).toBeGreaterThan(1);
      });
    }
  });

  it('reads the CPU list of /proc/self/status, and TANDEM_LAB_PIN=0 turns confinement off', () => {
    expect(parseCpuList('0-1')).toEqual([0, 1]);
    expect(parseCpuList('0,2-4,7\n')).toEqual([0, 2, 3, 4, 7]);
    expect(() => parseCpuList('all')).toThrow(/not a CPU list/);
    expect(allowedCpus('Name:\tnode\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n')).toEqual([0, 1]);
    expect(allowedCpus().length).toBeGreaterThan(0); // this machine's own
    expect(labConfinement({})).toBe(true);
    expect(labConfinement({ TANDEM_LAB_PIN: '0' })).toBe(false);
  });
});
