import { describe, expect, it } from 'vitest';
import {
  allowedCpus,
  LAB_UI_NICE,
  labDeviceCpus,
  labPinning,
  labUiNice,
  parseCpuList,
  raiseRendererMainThreads,
} from './lab-ui-priority.ts';

describe('raiseRendererMainThreads', () => {
  const cmdlines = new Map<number, string | null>([
    [10, ['/usr/lib/chromium/chromium', '--no-sandbox'].join('\0')],
    [11, ['/usr/lib/chromium/chromium', '--type=renderer', '--lang=en-US'].join('\0')],
    [12, ['/usr/lib/chromium/chromium', '--type=gpu-process'].join('\0')],
    [13, null], // exited
    [14, ['/usr/lib/chromium/chromium', '--type=renderer'].join('\0')],
    [16, '/usr/lib/chromium/chromium --type=renderer --lang=en-US'], // forked by the zygote: one string
    [17, '/usr/lib/chromium/chromium --type=rendererx'],
  ]);
  const readCmdline = (pid: number) => cmdlines.get(pid) ?? null;

  it("raises foreground renderers (Chromium's nice 0) only, again after Chromium resets one, and skips one that exits", () => {
    const nice = new Map<number, number>([
      [10, 0],
      [11, 0],
      [12, -8],
      [14, 0],
      [16, 0],
      [17, 0],
      [18, 5], // a renderer Chromium put in the background
    ]);
    cmdlines.set(18, 'chromium --type=renderer');
    const calls: [number, number][] = [];
    const deps = {
      readCmdline,
      getPriority: (pid: number) => nice.get(pid) ?? 0,
      setPriority: (pid: number, n: number) => {
        if (pid === 14) throw new Error('ESRCH');
        calls.push([pid, n]);
        nice.set(pid, n);
      },
    };
    expect(raiseRendererMainThreads([10, 11, 12, 13, 14, 16, 17, 18], -8, deps)).toEqual([11, 16]);
    // nothing more to do at the next look ...
    expect(raiseRendererMainThreads([10, 11, 12, 13, 14, 16, 17, 18], -8, deps)).toEqual([]);
    // ... until Chromium sets one back to its foreground value
    nice.set(16, 0);
    expect(raiseRendererMainThreads([10, 11, 16, 18], -8, deps)).toEqual([16]);
    expect(calls).toEqual([
      [11, -8],
      [16, -8],
      [16, -8],
    ]);
  });

  it('takes its nice from TANDEM_LAB_UI_NICE, Chromium display priority otherwise', () => {
    expect(labUiNice({})).toBe(LAB_UI_NICE);
    expect(labUiNice({ TANDEM_LAB_UI_NICE: '0' })).toBe(0);
    expect(labUiNice({ TANDEM_LAB_UI_NICE: 'x' })).toBe(LAB_UI_NICE);
  });
});

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
    expect(labPinning({})).toBe(true);
    expect(labPinning({ TANDEM_LAB_PIN: '0' })).toBe(false);
  });
});
