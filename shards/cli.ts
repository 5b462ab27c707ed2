/**
 * `npm run shards -- <subcommand> ...`: model package tools. Each subcommand is one entry in COMMANDS
 * (name, usage, run); add a new one by adding an entry.
 */
import { parseCliArgs, runCliIfEntryPoint, usageError } from '../core/cli.ts';
import { TandemError } from '../core/errors.ts';
import { convertCheckpoint } from './convert.ts';
import { exportFullCommand } from './export-full.ts';
import { unitBytes, type Architecture, type PackageDType } from './manifest.ts';
import { PRESETS, writeModel, type CheckpointDType, type Preset } from './make-model.ts';

export interface Subcommand {
  usage: string;
  summary: string;
  run(args: string[]): Promise<void>;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value))
    throw usageError(`${flag} must be one of ${allowed.join(', ')}, not '${value}'.`);
  return value as T;
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`; // MB = MiB, as everywhere in Tandem
}

export const COMMANDS: Record<string, Subcommand> = {
  'make-model': {
    usage:
      'make-model --preset <tiny|demo|realistic> --out <dir> [--arch qwen3|qwen2|llama] [--tied|--untied] [--dtype bf16|fp16|fp32] [--seed N]',
    summary: 'write a deterministic Hugging Face style checkpoint with seeded random weights',
    run(args) {
      const { values } = parseCliArgs({
        args,
        options: {
          preset: { type: 'string' },
          out: { type: 'string' },
          arch: { type: 'string' },
          tied: { type: 'boolean' },
          untied: { type: 'boolean' },
          dtype: { type: 'string' },
          seed: { type: 'string' },
        },
        strict: true,
      });
      if (!values.preset || !values.out)
        throw usageError('make-model needs --preset <tiny|demo|realistic> and --out <dir>.');
      if (values.tied && values.untied) throw usageError('Give --tied or --untied, not both.');
      const preset = oneOf<Preset>(values.preset, Object.keys(PRESETS) as Preset[], '--preset', 'tiny');
      const seed = values.seed === undefined ? undefined : Number(values.seed);
      if (seed !== undefined && !Number.isInteger(seed))
        throw usageError(`--seed must be an integer, not '${values.seed}'.`);
      const config = writeModel(values.out, {
        preset,
        arch: oneOf<Architecture>(values.arch, ['qwen3', 'qwen2', 'llama'], '--arch', 'qwen3'),
        tied: !values.untied,
        dtype: oneOf<CheckpointDType>(values.dtype, ['bf16', 'fp16', 'fp32'], '--dtype', 'bf16'),
        seed,
      });
      console.log(
        `wrote ${values.out}: ${config.architectures.join(',')} ${config.num_hidden_layers} layers, hidden ${config.hidden_size}, vocab ${config.vocab_size}, tied ${config.tie_word_embeddings}, ${config.torch_dtype}`,
      );
      return Promise.resolve();
    },
  },
  convert: {
    usage: 'convert <checkpoint dir> --out <package dir> [--dtype fp32|fp16|q4] [--name N]',
    summary: 'convert a Hugging Face checkpoint folder into a Tandem model package',
    async run(args) {
      const { values, positionals } = parseCliArgs({
        args,
        options: { out: { type: 'string' }, dtype: { type: 'string' }, name: { type: 'string' } },
        allowPositionals: true,
        strict: true,
      });
      if (positionals.length !== 1 || !values.out)
        throw usageError('convert needs one checkpoint folder and --out <package dir>.');
      const dtype = oneOf<PackageDType>(values.dtype, ['fp32', 'fp16', 'q4'], '--dtype', 'fp32');
      const started = performance.now();
      const { manifest, unusedTensors } = await convertCheckpoint(positionals[0], values.out, {
        dtype,
        name: values.name,
        onUnit: (id, i, total) => process.stderr.write(`\r  unit ${i + 1}/${total} ${id}        `),
      });
      process.stderr.write('\n');
      const layers = manifest.units.filter((u) => u.kind === 'layer');
      console.log(
        `wrote package '${manifest.name}' (${manifest.architecture}, ${manifest.dtype}) to ${values.out}: ` +
          `${manifest.units.length} units, ${mb(unitBytes(manifest.units))} (embed ${mb(manifest.units[0].bytes)}, ` +
          `layer ${mb(layers[0]?.bytes ?? 0)} each, head ${mb(manifest.units.at(-1)!.bytes)}) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      if (unusedTensors.length > 0)
        console.log(
          `ignored ${unusedTensors.length} checkpoint tensor(s): ${unusedTensors.slice(0, 5).join(', ')}${unusedTensors.length > 5 ? ', ...' : ''}`,
        );
    },
  },
  'export-full': exportFullCommand,
};

/** The sub-command called `name`, or undefined (own keys only: `toString` is no command). */
function commandNamed(name: string | undefined): Subcommand | undefined {
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

function usage(): string {
  return [
    'usage: npm run shards -- <command> ...',
    ...Object.entries(COMMANDS).map(([, c]) => `  ${c.usage}\n      ${c.summary}`),
  ].join('\n');
}

/** The usage of the sub-command argv names, else of the whole tool. */
export function usageFor(argv: readonly string[]): string {
  const command = commandNamed(argv.at(0));
  return command ? `usage: npm run shards -- ${command.usage}\n      ${command.summary}` : usage();
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h') throw new TandemError('cli-help', 'help requested');
  if (!name) throw usageError('a command is required');
  const command = commandNamed(name);
  if (!command) throw usageError(`unknown command '${name}'`);
  await command.run(rest);
}

runCliIfEntryPoint(import.meta.url, { program: 'shards', usage: usageFor, main });
