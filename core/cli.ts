/**
 * The contract every Tandem command line follows (Node only; the page never imports this):
 *   --help / -h        usage on stdout, exit 0
 *   unknown flag, bad value, missing argument
 *                      one line saying what is wrong, then the usage, on stderr, exit 2 (no stack trace)
 *   any other TandemError
 *                      `error [code]: message` on stderr, exit 1
 */
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TandemError } from './errors.ts';

export const HELP_FLAGS: readonly string[] = ['--help', '-h'];

/** node:util's parseArgs (strict), with --help and parse failures turned into cli-help / cli-usage errors. */
export function parseCliArgs<T extends ParseArgsConfig & { args: string[] }>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  if (config.args.some((a) => HELP_FLAGS.includes(a))) throw new TandemError('cli-help', 'help requested');
  try {
    return parseArgs<T>({ strict: true, ...config });
  } catch (e) {
    // parseArgs' own errors carry ERR_PARSE_ARGS_* codes; their messages name the flag at fault.
    if (e instanceof Error && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))
      throw new TandemError('cli-usage', e.message);
    throw e;
  }
}

/** A cli-usage error for a bad value, e.g. `usageError('--port must be an integer from 0 to 65535, not "x"')`. */
export function usageError(message: string): TandemError {
  return new TandemError('cli-usage', message);
}

export interface CliOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** What a CLI prints and returns for an error thrown by its main (pure, so tests can check it). */
export function describeCliError(program: string, usage: string, e: unknown): CliOutcome {
  if (e instanceof TandemError && e.code === 'cli-help') return { exitCode: 0, stdout: `${usage}\n`, stderr: '' };
  if (e instanceof TandemError && e.code === 'cli-usage') {
    const firstLine = e.message.split('\n')[0] ?? e.message;
    return { exitCode: 2, stdout: '', stderr: `${program}: ${firstLine}\n${usage}\n` };
  }
  if (e instanceof TandemError)
    return { exitCode: 1, stdout: '', stderr: `${program}: error [${e.code}]: ${e.message}\n` };
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  return { exitCode: 1, stdout: '', stderr: `${program}: unexpected failure:\n${text}\n` };
}

export interface CliSpec {
  /** Shown before messages, e.g. `plan`. */
  program: string;
  /** The usage text, or a function of argv for CLIs with sub-commands. */
  usage: string | ((argv: readonly string[]) => string);
  /** Returns the exit code (0 when it returns nothing). */
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type -- most CLIs' main is declared `Promise<void>` (it returns nothing); `void` is what accepts them
  main: (argv: string[]) => number | void | Promise<number | void>;
}

/** Prints what describeCliError says and exits: for scripts whose work runs at module level. */
export function exitWithCliError(program: string, usage: string, e: unknown): never {
  const outcome = describeCliError(program, usage, e);
  if (outcome.stdout) process.stdout.write(outcome.stdout);
  if (outcome.stderr) process.stderr.write(outcome.stderr);
  process.exit(outcome.exitCode);
}

/** Runs `spec.main` when `moduleUrl` is the process entry point (not when a test imports the module). */
export function runCliIfEntryPoint(moduleUrl: string, spec: CliSpec): void {
  const entry = process.argv.at(1); // undefined under `node -e` and in a REPL
  if (entry === undefined || moduleUrl !== pathToFileURL(entry).href) return;
  const argv = process.argv.slice(2);
  const usage = typeof spec.usage === 'string' ? spec.usage : spec.usage(argv);
  const finish = (outcome: CliOutcome) => {
    if (outcome.stdout) process.stdout.write(outcome.stdout);
    if (outcome.stderr) process.stderr.write(outcome.stderr);
    process.exit(outcome.exitCode);
  };
  Promise.resolve()
    .then(() => spec.main(argv))
    .then(
      (code) => finish({ exitCode: code ?? 0, stdout: '', stderr: '' }),
      (e: unknown) => finish(describeCliError(spec.program, usage, e)),
    );
}

/** An integer flag value in [min, max], or a cli-usage error naming the flag. */
export function integerOption(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw usageError(`${flag} must be an integer from ${min} to ${max}, not '${value}'`);
  }
  return n;
}

/** A number flag value in [min, max], or a cli-usage error naming the flag. */
export function numberOption(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw usageError(`${flag} must be a number from ${min} to ${max}, not '${value}'`);
  }
  return n;
}

/** One flag of a CLI: node:util's option config plus what its usage line says. */
export type CliOption = ({ type: 'string'; default?: string } | { type: 'boolean'; default?: boolean }) & {
  /** the value's placeholder in the usage line, e.g. 'N' (string flags) */
  arg?: string;
  /** the usage line's text; '\n' starts a continuation line under it */
  help: string;
};

/**
 * The usage text of a CLI from its options table (the same table goes to parseCliArgs): `head`, then one
 * line per flag with its text in one aligned column, then --help. One table, so the usage cannot forget a flag.
 */
export function cliUsage(head: string, options: Readonly<Record<string, CliOption>>): string {
  const rows = Object.entries(options).map(([name, o]) => ({ flag: `--${name}${o.arg ? ` ${o.arg}` : ''}`, o }));
  const width = Math.max(15, ...rows.map((r) => r.flag.length)) + 2;
  const lines = [head];
  for (const { flag, o } of rows) {
    const [first, ...rest] = o.help.split('\n');
    lines.push(`  ${flag.padEnd(width)}${first}`, ...rest.map((r) => `  ${' '.repeat(width)}${r}`));
  }
  lines.push(`  ${'--help'.padEnd(width)}this text`);
  return lines.join('\n');
}

/** A flag value that must be one of `choices`, or a cli-usage error naming the flag and the choices. */
export function choiceOption<T extends string>(value: string, flag: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  const list = choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}` : choices.join('');
  throw usageError(`${flag} must be ${list}, not '${value}'.`);
}

/** A comma-separated flag value whose items must each be one of `allowed` (empty items dropped). */
export function listOption<T extends string>(value: string, flag: string, allowed: readonly T[]): T[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const i of items)
    if (!(allowed as readonly string[]).includes(i))
      throw usageError(`${flag}: '${i}' is not one of ${allowed.join(', ')}.`);
  return items as T[];
}
