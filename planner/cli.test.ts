import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseArgs } from './cli.ts';
import type { reportJson } from './report.ts';
import { presetJson } from './presets.ts';

/** Runs the CLI in-process, capturing stdout and stderr. */
function run(argv: string[]) {
  let out = '',
    err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = main(argv);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'tandem-plan-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('plan CLI', () => {
  it('prints the table with the DP allocation and the mean reduction', () => {
    const r = run(['--scenario', 'csgo-paper', '--tokens', '256,8192']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('D3:7 -> D4:5 -> D2:11 -> D1:17');
    expect(r.out).toContain('D3:3 -> D2:9 -> D1:28');
    expect(r.out).toMatch(/mean vs the best baseline at each length: \d+\.\d\d%/);
  });

  it('--json: every length and method, 1-based inclusive layers covering 1..L, timings consistent', () => {
    const r = run(['--scenario', 'csgo-paper', '--tokens', '256', '--json']);
    const doc = JSON.parse(r.out) as ReturnType<typeof reportJson>; // checked field by field below
    expect(doc.tokens).toHaveLength(1);
    const t = doc.tokens[0];
    expect(Object.keys(t.methods).sort()).toEqual(['dp', 'even', 'heuristic', 'ideal']);
    const dp = t.methods.dp;
    expect(dp.stages.map((s: { device: string }) => s.device)).toEqual(['D3', 'D4', 'D2', 'D1']);
    expect(dp.stages[0].firstLayer).toBe(1);
    expect(dp.stages[0].lastLayer).toBe(7);
    expect(dp.stages.at(-1)?.lastLayer).toBe(40);
    for (let n = 1; n < dp.stages.length; n++) expect(dp.stages[n].firstLayer).toBe(dp.stages[n - 1].lastLayer + 1);
    for (const s of dp.stages) expect(s.finish).toBeCloseTo(s.start + s.comm + s.compute, 12);
    expect(dp.latency).toBe(dp.stages.at(-1)?.finish);
    expect(t.reductionPercent.best).toBeCloseTo(100 * (1 - dp.latency / t.methods[t.bestBaseline].latency), 9);
  });

  it('--svg writes the latency chart and a Gantt chart per plan', () => {
    const dir = tmp();
    const r = run(['--scenario', 'csgo-table1', '--tokens', '256,1024', '--svg', dir]);
    expect(r.code).toBe(0);
    const files = readdirSync(dir).sort();
    expect(files).toContain('latency.svg');
    expect(files.filter((f) => f.startsWith('gantt-'))).toHaveLength(2 * 4);
    const gantt = readFileSync(join(dir, 'gantt-t256-dp.svg'), 'utf8');
    expect(gantt).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(gantt).toContain('D1 L');
    expect(readFileSync(join(dir, 'latency.svg'), 'utf8')).toContain('DP (optimal)');
  });

  it('reads a scenario file; a bad file exits 2 naming the field', () => {
    const dir = tmp();
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(presetJson('csgo-paper')));
    expect(run(['--scenario', good, '--tokens', '256']).out).toContain('D3:7 -> D4:5 -> D2:11 -> D1:17');
    const bad = join(dir, 'bad.json');
    const json = presetJson('csgo-paper')!;
    (json.devices[2] as Record<string, unknown>).memoryGB = 'eight';
    writeFileSync(bad, JSON.stringify(json));
    const r = run(['--scenario', bad]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('devices[2].memoryGB');
    expect(r.out).toBe('');
  });

  it('parses flags and rejects bad ones', () => {
    expect(parseArgs(['--scenario=csgo-paper', '--tokens=1,2', '--json'])).toEqual({
      scenario: 'csgo-paper',
      tokens: [1, 2],
      json: true,
      svgDir: undefined,
    });
    expect(() => parseArgs(['--tokens', '256'])).toThrow(/--scenario is required/);
    expect(() => parseArgs(['--scenario', 'x', '--tokens', '0'])).toThrow(/--tokens/);
    expect(() => parseArgs(['--scenario', 'x', '--frobnicate'])).toThrow(/unknown argument/);
  });
});
