import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatNumber, main, readResultFiles, renderBenchmarksDoc, type ResultFile } from './benchmarks-doc.ts';

const RESULTS = path.resolve(import.meta.dirname, '..', 'bench', 'results');

// Reading the JSON without casts: each helper checks the type it returns.
function get(x: unknown, key: string): unknown {
  if (typeof x !== 'object' || x === null || !(key in x)) throw new Error(`missing field ${key}`);
  return (x as Record<string, unknown>)[key];
}
function list(x: unknown): unknown[] {
  if (!Array.isArray(x)) throw new Error('expected an array');
  return x;
}
function num(x: unknown): number {
  if (typeof x !== 'number') throw new Error(`expected a number, got ${String(x)}`);
  return x;
}
function str(x: unknown): string {
  if (typeof x !== 'string') throw new Error(`expected a string, got ${String(x)}`);
  return x;
}

/** The page's rule, written out again: integers as they are, others to 3 significant digits. */
function shown(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(3)));
}

/** The Markdown table row whose leading cells are `cells`. */
function rowStartingWith(doc: string, cells: string[]): string {
  const prefix = `| ${cells.join(' | ')} |`;
  const row = doc.split('\n').find((line) => line.startsWith(prefix));
  if (row === undefined) throw new Error(`no table row starts with ${prefix}`);
  return row;
}

/** The text of the page's section whose title starts with `title`, up to the next section. */
function section(doc: string, title: string): string {
  const start = doc.indexOf(`\n## ${title}`);
  if (start < 0) throw new Error(`no section titled ${title}`);
  const end = doc.indexOf('\n## ', start + 1);
  return end < 0 ? doc.slice(start) : doc.slice(start, end);
}

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

describe('docs/benchmarks.md generator', () => {
  it('formats numbers to 3 significant digits and keeps integers', () => {
    expect(formatNumber(7256.880699999998)).toBe('7260');
    expect(formatNumber(0.000276)).toBe('0.000276');
    expect(formatNumber(3981312)).toBe('3981312');
    expect(formatNumber(0.7631706473316635)).toBe('0.763');
  });

  it('puts the figures of every committed result file into the page', async () => {
    const files = await readResultFiles(RESULTS);
    const json = (name: string): unknown => {
      const f = files.find((r) => r.file === name);
      if (!f) throw new Error(`bench/results/${name} is not committed`);
      return f.json;
    };
    const doc = renderBenchmarksDoc(files);
    expect(doc).not.toMatch(/does not have the fields|could not be read/);

    const planner = json('planner.json');
    expect(doc).toContain(str(get(planner, 'date')));
    for (const r of list(get(planner, 'exactDp'))) {
      const po = get(r, 'planOptimalSeconds');
      if (po === null) continue;
      const row = rowStartingWith(doc, [
        shown(num(get(r, 'K'))),
        shown(num(get(r, 'L'))),
        shown(num(get(r, 'states'))),
      ]);
      expect(row).toContain(`| ${shown(num(po) * 1000)} | ${shown(num(get(r, 'planOptimalCpuSeconds')) * 1000)} |`);
    }
    for (const r of list(get(planner, 'scalableLarge'))) {
      const row = rowStartingWith(doc, [
        str(get(r, 'kind')),
        shown(num(get(r, 'K'))),
        shown(num(get(r, 'L'))),
        shown(num(get(r, 'scalableCpuSeconds')) * 1000),
      ]);
      expect(row).toContain(`| ${shown(num(get(r, 'latency')))} |`);
    }

    const shards = json('shards.json');
    expect(doc).toContain(str(get(shards, 'date')));
    for (const r of list(get(shards, 'results'))) {
      const kernel = get(r, 'q4Kernel');
      const row = rowStartingWith(doc, [
        str(get(r, 'part')),
        str(get(r, 'dtype')),
        str(get(r, 'backend')),
        kernel === null ? '' : str(kernel),
      ]);
      expect(row).toContain(
        `| ${shown(num(get(r, 'sessionCreateMsPerMB')))} | ${shown(num(get(r, 'prefillMsPer')))} | ${shown(num(get(r, 'decodeMsPer')))} |`,
      );
    }
    const load = get(shards, 'loadAverage');
    expect(doc).toContain(`load average ${shown(num(get(load, 'before')))} before`);

    const frames = json('frame-codec.json');
    expect(doc).toContain(str(get(frames, 'date')));
    for (const r of list(get(frames, 'rows'))) {
      const row = rowStartingWith(doc, [
        shown(num(get(r, 'tokens'))),
        shown(num(get(r, 'hidden'))),
        str(get(r, 'wire')),
      ]);
      expect(row).toContain(
        `| ${shown(num(get(r, 'wireBytes')))} | ${shown(num(get(r, 'chunks')))} | ${shown(num(get(r, 'encodeDecodeMs')))} |`,
      );
    }

    const signaling = json('signaling.json');
    expect(doc).toContain(str(get(signaling, 'date')));
    const join = get(signaling, 'joinToAssignmentMs');
    expect(doc).toContain(`| ${shown(num(get(join, 'p50')))} | ${shown(num(get(join, 'p99')))} |`);
    expect(rowStartingWith(doc, ['RSS MiB'])).toContain(shown(num(get(get(signaling, 'server'), 'peakRssMiB'))));
    expect(doc).toContain(`load average ${shown(num(get(get(signaling, 'machine'), 'loadavg1m')))}`);

    const e2e = json('e2e.json');
    expect(doc).toContain(str(get(e2e, 'started')));
    expect(doc).toContain(str(get(get(e2e, 'machine'), 'chromium')));
    for (const g of list(get(e2e, 'goals'))) {
      expect(rowStartingWith(doc, [str(get(g, 'name'))])).toContain(
        `| ${shown(num(get(g, 'value')))} | ${str(get(g, 'target'))} |`,
      );
    }
    for (const c of list(get(e2e, 'coldStart'))) {
      const row = rowStartingWith(doc, [str(get(c, 'method')), shown(num(get(c, 'stages')))]);
      expect(row).toContain(`| ${shown(num(get(c, 'predictedT')))} | ${shown(num(get(c, 'ttft')))} |`);
    }
    for (const h of list(get(get(e2e, 'hops'), 'sizes'))) {
      rowStartingWith(doc, [
        shown(num(get(h, 'bytes'))),
        shown(num(get(h, 'hopMedianMs'))),
        shown(num(get(h, 'hopP90Ms'))),
      ]);
    }

    const api = json('api.json');
    const apiDoc = section(doc, 'OpenAI-compatible API');
    expect(apiDoc).toContain(str(get(api, 'started')));
    const goal = get(api, 'goal');
    expect(rowStartingWith(apiDoc, [str(get(goal, 'name'))])).toContain(
      `| ${shown(num(get(goal, 'value')))} | ${str(get(goal, 'target'))} |`,
    );
    const goTtft = list(get(api, 'goTtftMs'));
    const apiTtft = list(get(api, 'apiTtftMs'));
    goTtft.forEach((go, i) => {
      expect(apiDoc).toContain(`| ${i + 1} | ${shown(num(go))} | ${shown(num(apiTtft[i]))} |`);
    });
    const sse = get(api, 'sseAfterOutputMs');
    expect(rowStartingWith(apiDoc, ['SSE chunk after the /ws `output` of the same token'])).toContain(
      `| ${shown(num(get(sse, 'median')))} | ${shown(num(get(sse, 'p90')))} | ${shown(num(get(sse, 'samples')))} |`,
    );
    expect(apiDoc).toContain(
      `load average ${list(get(api, 'loadAverage'))
        .map((x) => shown(num(x)))
        .join(' / ')}`,
    );

    const storage = json('storage.json');
    const storageDoc = section(doc, 'Browser storage read speed');
    expect(storageDoc).toContain(str(get(storage, 'at')));
    for (const r of list(get(storage, 'rows'))) {
      expect(rowStartingWith(storageDoc, [str(get(r, 'store'))])).toContain(
        `| ${shown(num(get(r, 'readMBps')))} | ${shown(num(get(r, 'cpuSecPerGB')))} | ${list(get(r, 'samplesMs'))
          .map((x) => shown(num(x)))
          .join(', ')} |`,
      );
    }
    expect(storageDoc).toContain(
      `load average ${list(get(storage, 'loadavg'))
        .map((x) => shown(num(x)))
        .join(' / ')}`,
    );

    const lab = json('e2e-lab.json');
    const labDoc = section(doc, 'End to end, plans on the device lab');
    expect(labDoc).toContain(`Recorded ${str(get(lab, 'started'))} to ${str(get(lab, 'finished'))}`);
    expect(labDoc).toContain(`Plans ran on: ${str(get(lab, 'lineup'))}.`);
    expect(labDoc).toContain(
      `load average ${list(get(get(lab, 'machine'), 'loadavgAtStart'))
        .map((x) => shown(num(x)))
        .join(' / ')} at the start`,
    );
    for (const g of list(get(lab, 'goals'))) {
      const value = get(g, 'value');
      // the page escapes '|' inside a cell
      expect(rowStartingWith(labDoc, [str(get(g, 'name')).replaceAll('|', '\\|')])).toContain(
        `| ${value === null ? '' : shown(num(value))} | ${str(get(g, 'target'))} |`,
      );
    }
    const calibration = get(lab, 'calibration');
    for (const p of list(get(calibration, 'plans'))) {
      const measured = get(p, 'measuredTtft');
      expect(rowStartingWith(labDoc, [str(get(p, 'method')), shown(num(measured))])).toContain(
        `| ${shown(num(get(p, 'predictedAfter')))} | ${shown(100 * num(get(p, 'errorAfter')))} |`,
      );
    }
    expect(labDoc).toContain(
      `Measured ranking ${list(get(calibration, 'measuredRanking')).map(str).join(' < ')}; predicted after calibration ${list(get(calibration, 'predictedRanking')).map(str).join(' < ')}`,
    );
    // the per-phase table: the largest error after calibration of the storage reads, found here again
    const reads = list(get(calibration, 'plans')).flatMap((p) =>
      list(get(p, 'phases')).filter((e) => str(get(e, 'phase')) === 'storage-read' && num(get(e, 'measured')) >= 0.01),
    );
    const worstRead = Math.max(...reads.map((e) => num(get(e, 'errorAfter'))));
    expect(rowStartingWith(labDoc, ['storage-read', String(reads.length)])).toContain(`| ${shown(100 * worstRead)} |`);

    const issue11 = json('e2e-issue11.json');
    const issue11Doc = section(doc, 'End to end, tiny preset');
    expect(issue11Doc).toContain(`Recorded ${str(get(issue11, 'started'))} to ${str(get(issue11, 'finished'))}`);
    for (const g of list(get(issue11, 'goals'))) {
      const value = get(g, 'value');
      expect(rowStartingWith(issue11Doc, [str(get(g, 'name'))])).toContain(
        `| ${value === null ? '' : shown(num(value))} | ${str(get(g, 'target'))} |`,
      );
    }
    const issue11Decode = get(issue11, 'decode');
    expect(issue11Doc).toContain(`| one page | ${shown(num(get(get(issue11Decode, 'onePage'), 'tokensPerSec')))} |`);
    expect(issue11Doc).toContain('No plans were compared in this run');
    for (const c of list(get(issue11Decode, 'coldLongTasks'))) {
      const tasks = get(c, 'tasks');
      expect(issue11Doc).toContain(
        `| ${str(get(c, 'plan'))} | ${shown(num(get(tasks, 'count')))} | ${shown(num(get(tasks, 'maxMs')))} |`,
      );
    }
    for (const s of list(get(issue11, 'shardLoad'))) {
      expect(rowStartingWith(issue11Doc, [str(get(s, 'stage')), shown(num(get(s, 'unitBytes')))])).toContain(
        `| ${shown(num(get(s, 'readMBps')))} | ${shown(num(get(s, 'loadMBps')))} |`,
      );
    }

    // The decode runs on the lab: the set-up, each page's long tasks and each stage's raw read are on the page.
    const issue11Lab = json('e2e-issue11-lab.json');
    const issue11LabDoc = section(doc, 'End to end, realistic preset, decode on the device lab');
    const labDecode = get(issue11Lab, 'decode');
    const labSetup = get(labDecode, 'setup');
    expect(issue11LabDoc).toContain(`Decode runs on: ${str(get(labSetup, 'lineup'))}`);
    expect(issue11LabDoc).toContain(`Hop in the per-token budget: ${str(get(labSetup, 'hopSource'))}.`);
    expect(issue11LabDoc).toContain(`Raw read in the shard-load row: ${str(get(labSetup, 'rawReadSource'))}.`);
    expect(issue11LabDoc).not.toContain('Plans ran on');
    for (const g of list(get(issue11Lab, 'goals'))) {
      const value = get(g, 'value');
      expect(rowStartingWith(issue11LabDoc, [str(get(g, 'name'))])).toContain(
        `| ${value === null ? '' : shown(num(value))} | ${str(get(g, 'target'))} |`,
      );
    }
    for (const c of list(get(labDecode, 'coldLongTasks'))) {
      const row = rowStartingWith(issue11LabDoc, [str(get(c, 'plan')), shown(num(get(get(c, 'tasks'), 'count')))]);
      for (const p of list(get(c, 'perPage'))) {
        const maxMs = get(p, 'maxMs');
        expect(row).toContain(
          `${str(get(p, 'page'))} ${shown(num(get(p, 'count')))} / ${maxMs === null ? '-' : shown(num(maxMs))}`,
        );
      }
    }
    for (const s of list(get(issue11Lab, 'shardLoad'))) {
      const load = num(get(s, 'loadMBps'));
      const raw = num(get(s, 'rawReadMBps'));
      expect(
        rowStartingWith(issue11LabDoc, [str(get(s, 'plan')), str(get(s, 'stage')), shown(num(get(s, 'unitBytes')))]),
      ).toContain(`| ${shown(load)} | ${shown(raw)} | ${shown(load / raw)} |`);
    }

    for (const [name, title] of [
      ['shards-head-all-rows-before.json', 'Stage graphs, head on every prefill row'],
      ['shards-head-last-row-after.json', 'Stage graphs, head on the last position only'],
    ]) {
      const d = json(name);
      const headDoc = section(doc, title);
      expect(headDoc).toContain(str(get(d, 'date')));
      const loadAverage = get(d, 'loadAverage');
      expect(headDoc).toContain(
        `load average ${shown(num(get(loadAverage, 'before')))} before, ${shown(num(get(loadAverage, 'after')))} after`,
      );
      for (const r of list(get(d, 'results'))) {
        // The same part/dtype/backend rows appear in both sections: the values pick out this file's row.
        expect(headDoc).toContain(
          `| ${str(get(r, 'part'))} | ${str(get(r, 'dtype'))} | ${str(get(r, 'backend'))} |  | ${shown(num(get(r, 'weightBytes')) / num(get(r, 'count')) / 1e6)} | ${shown(num(get(r, 'firstSessionCreateMs')))} | ${shown(num(get(r, 'sessionCreateMs')))} | ${shown(num(get(r, 'sessionCreateMsPerMB')))} | ${shown(num(get(r, 'prefillMsPer')))} | ${shown(num(get(r, 'decodeMsPer')))} |`,
        );
      }
    }
  });

  it('skips result files it does not know, with a note, and names a known file whose fields changed', () => {
    const files: ResultFile[] = [
      { file: 'new-bench.json', json: { bench: 'new', figures: [1, 2, 3] } },
      { file: 'signaling.json', json: { bench: 'signaling', date: '2030-01-01' } },
      { file: 'broken.json', json: undefined, readError: 'Unexpected end of JSON input' },
      { file: 'api.json', json: { benchmark: 'api', started: '2030-01-01', ttftMs: 12 } },
      { file: 'storage.json', json: { benchmark: 'storage', at: '2030-01-01', rows: [{ store: 'idb', MBps: 3 }] } },
    ];
    const doc = renderBenchmarksDoc(files);
    expect(doc).toContain('`bench/results/new-bench.json`: not known to this generator, skipped');
    expect(doc).toContain('`bench/results/broken.json`: not known to this generator, skipped');
    expect(doc).toMatch(/`signaling\.json` does not have the fields this page expects \(machine: /);
    expect(doc).toMatch(/`api\.json` does not have the fields this page expects \(finished: /);
    expect(doc).toMatch(/`storage\.json` does not have the fields this page expects \(bytes: /);
    expect(doc).toContain(
      '_No `shards-head-last-row-after.json` in bench/results: run the benchmark to fill this section._',
    );
    // A known file that is absent gets a placeholder, not an error.
    expect(doc).toContain('_No `planner.json` in bench/results: run the benchmark to fill this section._');
  });

  it('as a command, writes the same page to --out, and says what to do when the folder is missing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-bench-doc-'));
    tmpDirs.push(dir);
    const out = path.join(dir, 'benchmarks.md');
    await main(['--results', RESULTS, '--out', out]);
    expect(await readFile(out, 'utf8')).toBe(renderBenchmarksDoc(await readResultFiles(RESULTS)));
    await expect(main(['--results', path.join(dir, 'nowhere'), '--out', out])).rejects.toMatchObject({
      code: 'bench-results-missing',
    });
  });
});
