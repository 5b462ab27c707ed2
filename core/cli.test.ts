import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { choiceOption, cliUsage, describeCliError, integerOption, parseCliArgs, type CliOption } from './cli.ts';
import { TandemError } from './errors.ts';

const ROOT = resolve(import.meta.dirname, '..');

/** Every command-line entry point of the project (package.json scripts), as run by npm. */
const CLIS: { script: string; file: string }[] = [
  { script: 'start', file: 'signaling/main.ts' },
  { script: 'plan', file: 'planner/cli.ts' },
  { script: 'shards', file: 'shards/cli.ts' },
  { script: 'generate', file: 'shards/generate-cli.ts' },
  { script: 'demo', file: 'e2e/demo.ts' },
  { script: 'bench', file: 'e2e/bench.ts' },
  { script: 'bench:planner', file: 'planner/bench.ts' },
  { script: 'bench:shards', file: 'shards/bench.ts' },
  { script: 'bench:signaling', file: 'signaling/bench.ts' },
  { script: 'bench:api', file: 'e2e/api-bench.ts' },
  { script: 'bench:storage', file: 'e2e/storage-bench.ts' },
  { script: 'bench:doc', file: 'e2e/benchmarks-doc.ts' },
  { script: 'bench:failover', file: 'e2e/failover-bench.ts' },
  { script: 'bench:ring', file: 'e2e/ring-bench.ts' },
  { script: 'bench:compute', file: 'e2e/compute-profile-bench.ts' },
  { script: 'bench:anchor', file: 'e2e/anchor-bench.ts' },
  { script: 'bench:decode-trace', file: 'e2e/decode-trace.ts' },
  { script: 'bench:webgpu-node', file: 'e2e/webgpu-node-check.ts' },
  { script: 'calibration-replay', file: 'e2e/calibration-replay.ts' },
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runTsx(file: string, args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      resolve(ROOT, 'node_modules/.bin/tsx'),
      [file, ...args],
      { cwd: ROOT, timeout: 170_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

describe('the CLI contract', () => {
  it('turns help, usage errors and other errors into exit codes and text', () => {
    expect(describeCliError('x', 'usage: x', new TandemError('cli-help', ''))).toEqual({
      exitCode: 0,
      stdout: 'usage: x\n',
      stderr: '',
    });
    expect(describeCliError('x', 'usage: x', new TandemError('cli-usage', 'bad --n\nmore'))).toEqual({
      exitCode: 2,
      stdout: '',
      stderr: 'x: bad --n\nusage: x\n',
    });
    expect(describeCliError('x', 'usage: x', new TandemError('model-invalid', 'no'))).toMatchObject({
      exitCode: 1,
      stderr: 'x: error [model-invalid]: no\n',
    });
    expect(() => parseCliArgs({ args: ['--nope'], options: {} })).toThrow(
      expect.objectContaining({ code: 'cli-usage' }),
    );
    expect(() => parseCliArgs({ args: ['-h'], options: {} })).toThrow(expect.objectContaining({ code: 'cli-help' }));
    expect(integerOption('12', '--n', 1, 20)).toBe(12);
    for (const bad of ['', '1.5', '0', '21', 'x'])
      expect(() => integerOption(bad, '--n', 1, 20)).toThrow(/--n must be an integer from 1 to 20/);
  });

  it('writes the usage from the options table that parseArgs reads, and checks choices', () => {
    const options = {
      preset: { type: 'string', default: 'tiny', arg: 'P', help: 'seeded model: tiny or demo (default tiny)' },
      'new-tokens': { type: 'string', default: '8', arg: 'N', help: 'tokens per request\n(default 8)' },
      cold: { type: 'boolean', default: false, help: 'trace the cold request' },
    } satisfies Record<string, CliOption>;
    expect(cliUsage('usage: npm run x -- [options]', options).split('\n')).toEqual([
      'usage: npm run x -- [options]',
      '  --preset P       seeded model: tiny or demo (default tiny)',
      '  --new-tokens N   tokens per request',
      '                   (default 8)',
      '  --cold           trace the cold request',
      '  --help           this text',
    ]);
    const { values } = parseCliArgs({ args: ['--new-tokens', '3', '--cold'], options });
    expect(values).toEqual({ preset: 'tiny', 'new-tokens': '3', cold: true });
    expect(choiceOption('demo', '--preset', ['tiny', 'demo'] as const)).toBe('demo');
    expect(() => choiceOption('huge', '--preset', ['tiny', 'demo', 'realistic'])).toThrow(
      "--preset must be tiny, demo or realistic, not 'huge'.",
    );
  });

  // Each CLI started for real, as a user would: --help and a flag it does not know.
  it.each(CLIS)(
    'npm run $script: --help prints usage and exits 0; an unknown flag exits 2 with one line and the usage',
    async ({ file }) => {
      const [help, bogus] = await Promise.all([runTsx(file, ['--help']), runTsx(file, ['--no-such-flag'])]);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^usage: npm (start|run \S+)/);
      expect(help.stderr).toBe('');
      expect(bogus.code).toBe(2);
      const lines = bogus.stderr.split('\n');
      expect(lines[0]).toMatch(/no-such-flag/);
      expect(lines[1]).toMatch(/^usage: npm (start|run \S+)/);
      expect(bogus.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(bogus.stdout).toBe('');
    },
    180_000,
  ); // a CLI that imports Playwright starts slowly on a loaded 2-core machine
});
