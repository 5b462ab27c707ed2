import { describe, expect, it } from 'vitest';
import { LAB_UI_NICE, labUiNice, raiseRendererMainThreads } from './lab-ui-priority.ts';

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
