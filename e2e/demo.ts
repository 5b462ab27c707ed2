/**
 * `npm run demo [-- --peers 4 --tokens 256 --json]`: the headless cold-start demo. Starts the server and K
 * headless pages with emulated heterogeneous profiles (default shaped like the CSGO paper's four devices)
 * in a private network namespace, plans, and runs one cold-start request with the DP plan and again from
 * cold with the even, heuristic and single-device plans. Prints per plan the predicted T, measured TTFT,
 * decode tokens/s and predicted vs measured per stage, and writes an HTML report with the Gantt charts and
 * the host page's screenshots. --json prints the same as one JSON document.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { planMethodSchema } from '../core/protocol.ts';
import { requireE2e } from './environment.ts';
import { ensureModelFixture } from './model-fixture.ts';
import { lineupPeers } from './lineup.ts';
import { LAB_LINEUPS } from './profiles.ts';
import { renderReportHtml } from './report-html.ts';
import { formatRuns } from './run-summary.ts';
import { formatCalibrationReport } from './calibration-report.ts';
import { runPlanComparison } from './scenario.ts';
import { integerOption, parseCliArgs, runCliIfEntryPoint, usageError } from '../core/cli.ts';

const USAGE = `usage: npm run demo -- [options]
  --peers K          emulated pages (default 4, shaped like the paper's four devices; 1-8)
  --tokens N         prompt length in tokens the plans are made for and the prompt has (default 256)
  --new-tokens N     tokens to generate per request (default 16)
  --methods LIST     plans to run, in order (default dp,even,heuristic,single)
  --lab L            device lab line-up: paper, equal, laptop-phones, memory-bound, or off (default paper:
                     each page its own browser, CPU group and shaped links; off = one browser with
                     DevTools CPU throttling, the fallback where the lab cannot run)
  --preset P         seeded model: realistic (16 layers split like Qwen3-0.6B, ~90 MB fp32), demo (24 layers,
                     ~217 MB) or tiny (4 layers) (default realistic)
  --backend B        wasm | auto | webgpu (default wasm: CPU throttling, the compute emulation, slows
                     wasm inference; WebGPU runs in Chromium's GPU process, which throttling does not touch)
  --out DIR          where report.html, report.json and screenshots go (default e2e/artifacts/demo-<time>)
  --json             print one JSON document (the report) on stdout instead of tables
  --verbose          echo the server's output
  --help             this text`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      peers: { type: 'string', default: '4' },
      tokens: { type: 'string', default: '256' },
      'new-tokens': { type: 'string', default: '16' },
      methods: { type: 'string', default: 'dp,even,heuristic,single' },
      preset: { type: 'string', default: 'realistic' },
      lab: { type: 'string', default: 'paper' },
      backend: { type: 'string', default: 'wasm' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const peers = integerOption(values.peers, '--peers', 1, 8);
  const tokens = integerOption(values.tokens, '--tokens', 8, 4096);
  const newTokens = integerOption(values['new-tokens'], '--new-tokens', 1, 1024);
  const methods = values.methods.split(',').map((m) => {
    const parsed = planMethodSchema.safeParse(m.trim());
    if (!parsed.success) throw usageError(`--methods: '${m}' is not one of dp, even, heuristic, single.`);
    return parsed.data;
  });
  if (values.preset !== 'realistic' && values.preset !== 'demo' && values.preset !== 'tiny')
    throw usageError(`--preset must be realistic, demo or tiny, not '${values.preset}'.`);
  const backend = values.backend;
  if (backend !== 'auto' && backend !== 'wasm' && backend !== 'webgpu')
    throw usageError(`--backend must be auto, wasm or webgpu, not '${backend}'.`);
  const lab = values.lab;
  if (lab !== 'off' && !(LAB_LINEUPS as readonly string[]).includes(lab))
    throw usageError(`--lab must be one of ${LAB_LINEUPS.join(', ')} or off, not '${lab}'.`);
  const out = resolve(values.out ?? join('e2e/artifacts', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`));

  const log = (line: string) => process.stderr.write(`${line}\n`);
  const chromium = requireE2e('The demo', log);
  log(`demo: Chromium ${chromium.path}; making the ${values.preset} model package (once)`);
  const model = await ensureModelFixture({ preset: values.preset });
  const report = await runPlanComparison({
    chromium: chromium.path,
    model,
    peers: lineupPeers(
      lab,
      peers,
      model.manifest.units.reduce((a, u) => a + u.bytes, 0),
      log,
    ),
    methods,
    tokens,
    newTokens,
    backend,
    screenshotDir: out,
    log,
    verboseServer: values.verbose,
  });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'report.json'), JSON.stringify(report, null, 1) + '\n');
  writeFileSync(join(out, 'report.html'), renderReportHtml(report));
  if (values.json) {
    console.log(JSON.stringify({ ...report, reportHtml: join(out, 'report.html') }));
  } else {
    console.log(formatRuns(report.runs));
    if (report.calibration) console.log(`\n${formatCalibrationReport(report.calibration)}`);
    console.log(`\nreport: ${join(out, 'report.html')}`);
  }
  return 0;
}

runCliIfEntryPoint(import.meta.url, { program: 'demo', usage: USAGE, main });
