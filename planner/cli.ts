/**
 * `npm run plan -- --scenario <preset | file.json> [--tokens 256,512] [--json] [--svg <dir>]`
 * Prints, per token length, the DP plan and the baselines with the DP's latency reductions; --json
 * prints one JSON document instead; --svg writes a latency-vs-tokens chart and a Gantt chart per plan.
 * All I/O of the planner lives here.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCliError } from '../core/cli.ts';
import { TandemError } from '../core/errors.ts';
import { PRESET_NAMES, presetScenario } from './presets.ts';
import { buildReport, METHODS, reportJson, reportText, type PlanReport } from './report.ts';
import { DEFAULT_TOKENS, parseScenarioText, type Scenario } from './scenario.ts';
import { ganttChart, latencyChart } from './svg.ts';

const USAGE = `usage: npm run plan -- --scenario <preset | path/to/scenario.json> [--tokens 256,512,...] [--json] [--svg <dir>]
  --scenario  a preset (${PRESET_NAMES.join(', ')}) or a scenario JSON file (format: docs/architecture.md, "Scenario files")
  --tokens    prompt lengths to plan for (default: the scenario's "tokens", else ${DEFAULT_TOKENS.join(',')})
  --json      print one JSON document (stages with 1-based inclusive layers, seconds) instead of the table
  --svg DIR   also write latency.svg and gantt-t<tokens>-<method>.svg into DIR`;

export interface CliArgs {
  scenario: string;
  tokens?: number[];
  json: boolean;
  svgDir?: string;
}

/** Parses argv (without node and script); throws TandemError('cli-usage'). */
export function parseArgs(argv: readonly string[]): CliArgs {
  const usage = (msg: string) => new TandemError('cli-usage', `${msg}\n${USAGE}`);
  let scenario: string | undefined, tokens: number[] | undefined, svgDir: string | undefined;
  let json = false;
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k];
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = () => {
      const v = inline ?? argv.at(++k); // undefined when the flag is last
      if (v === undefined || v === '') throw usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--scenario':
        scenario = value();
        break;
      case '--tokens': {
        const raw = value();
        tokens = raw.split(',').map((s) => {
          const n = Number(s.trim());
          if (!Number.isInteger(n) || n <= 0 || n > 10_000_000)
            throw usage(`--tokens: "${s}" is not a positive integer token count`);
          return n;
        });
        break;
      }
      case '--json':
        json = true;
        break;
      case '--svg':
        svgDir = value();
        break;
      case '--help':
      case '-h':
        throw new TandemError('cli-help', USAGE);
      default:
        throw usage(`unknown argument "${arg}"`);
    }
  }
  if (!scenario) throw usage('--scenario is required');
  return { scenario, tokens, json, svgDir };
}

/** A preset name, or else a path to a JSON file. */
export function loadScenario(nameOrPath: string): Scenario {
  if (PRESET_NAMES.includes(nameOrPath)) return presetScenario(nameOrPath);
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (err) {
    throw new TandemError(
      'scenario-unreadable',
      `cannot read scenario "${nameOrPath}" (${(err as NodeJS.ErrnoException).code ?? 'error'}); give a preset (${PRESET_NAMES.join(', ')}) or a readable .json file`,
      { cause: err },
    );
  }
  return parseScenarioText(text, nameOrPath);
}

/** Writes latency.svg and one Gantt chart per token length and method; returns the paths. */
export function writeSvgs(report: PlanReport, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const name = report.scenario.name ?? 'scenario';
  const written: string[] = [];
  const series = METHODS.map((m) => ({
    name: m === 'dp' ? 'DP (optimal)' : m,
    points: report.perTokens.map((t) => ({ x: t.tokens, y: t.results[m].timeline.latency })),
  }));
  const latencyPath = join(dir, 'latency.svg');
  writeFileSync(latencyPath, latencyChart(`${name}: cold-start latency vs prompt length`, series));
  written.push(latencyPath);
  for (const t of report.perTokens) {
    for (const m of METHODS) {
      const path = join(dir, `gantt-t${t.tokens}-${m}.svg`);
      writeFileSync(path, ganttChart(`${name}, t = ${t.tokens}, ${m}`, t.results[m].timeline, report.deviceNames));
      written.push(path);
    }
  }
  return written;
}

export function main(argv: readonly string[]): number {
  try {
    const args = parseArgs(argv);
    const scenario = loadScenario(args.scenario);
    const tokens = args.tokens ?? scenario.tokens ?? DEFAULT_TOKENS;
    const report = buildReport(scenario, tokens);
    if (args.json) process.stdout.write(`${JSON.stringify(reportJson(report), null, 2)}\n`);
    else process.stdout.write(`${reportText(report)}\n`);
    if (args.svgDir) {
      const paths = writeSvgs(report, args.svgDir);
      process.stderr.write(`wrote ${paths.length} SVG files to ${args.svgDir}\n`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof TandemError)) throw err;
    const outcome = describeCliError('plan', USAGE, err);
    process.stdout.write(outcome.stdout);
    process.stderr.write(outcome.stderr);
    // A bad scenario file is bad input as much as a bad flag: exit 2 for both.
    return outcome.exitCode === 1 ? 2 : outcome.exitCode;
  }
}

// Run only when executed as a script (tests import main()).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = main(process.argv.slice(2));
