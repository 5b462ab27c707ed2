/**
 * `npm run shards -- <subcommand> ...`: model package tools. Each subcommand is one entry in COMMANDS
 * (name, usage, run); add a new one by adding an entry.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { TandemError } from '../planner/errors.ts';
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
  if (!(allowed as readonly string[]).includes(value)) throw new TandemError('cli-usage', `${flag} must be one of ${allowed.join(', ')}, not '${value}'.`);
  return value as T;
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`; // MB = MiB, as everywhere in Tandem
}

export const COMMANDS: Record<string, Subcommand> = {
  'make-model': {
    usage: 'make-model --preset <tiny|demo|realistic> --out <dir> [--arch qwen3|qwen2|llama] [--tied|--untied] [--dtype bf16|fp16|fp32] [--seed N]',
    summary: 'write a deterministic Hugging Face style checkpoint with seeded random weights',
    async run(args) {
      const { values } = parseArgs({
        args,
        options: { preset: { type: 'string' }, out: { type: 'string' }, arch: { type: 'string' }, tied: { type: 'boolean' }, untied: { type: 'boolean' }, dtype: { type: 'string' }, seed: { type: 'string' } },
        strict: true,
      });
      if (!values.preset || !values.out) throw new TandemError('cli-usage', 'make-model needs --preset <tiny|demo|realistic> and --out <dir>.');
      if (values.tied && values.untied) throw new TandemError('cli-usage', 'Give --tied or --untied, not both.');
      const preset = oneOf<Preset>(values.preset, Object.keys(PRESETS) as Preset[], '--preset', 'tiny');
      const seed = values.seed === undefined ? undefined : Number(values.seed);
      if (seed !== undefined && !Number.isInteger(seed)) throw new TandemError('cli-usage', `--seed must be an integer, not '${values.seed}'.`);
      const config = writeModel(values.out, {
        preset,
        arch: oneOf<Architecture>(values.arch, ['qwen3', 'qwen2', 'llama'], '--arch', 'qwen3'),
        tied: !values.untied,
        dtype: oneOf<CheckpointDType>(values.dtype, ['bf16', 'fp16', 'fp32'], '--dtype', 'bf16'),
        seed,
      });
      console.log(`wrote ${values.out}: ${String(config.architectures)} ${config.num_hidden_layers} layers, hidden ${config.hidden_size}, vocab ${config.vocab_size}, tied ${config.tie_word_embeddings}, ${config.torch_dtype}`);
    },
  },
  convert: {
    usage: 'convert <checkpoint dir> --out <package dir> [--dtype fp32|fp16|q4] [--name N]',
    summary: 'convert a Hugging Face checkpoint folder into a Tandem model package',
    async run(args) {
      const { values, positionals } = parseArgs({ args, options: { out: { type: 'string' }, dtype: { type: 'string' }, name: { type: 'string' } }, allowPositionals: true, strict: true });
      if (positionals.length !== 1 || !values.out) throw new TandemError('cli-usage', 'convert needs one checkpoint folder and --out <package dir>.');
      const dtype = oneOf<PackageDType>(values.dtype, ['fp32', 'fp16', 'q4'], '--dtype', 'fp32');
      const started = performance.now();
      const { manifest, unusedTensors } = await convertCheckpoint(positionals[0]!, values.out, {
        dtype,
        name: values.name,
        onUnit: (id, i, total) => process.stderr.write(`\r  unit ${i + 1}/${total} ${id}        `),
      });
      process.stderr.write('\n');
      const layers = manifest.units.filter((u) => u.kind === 'layer');
      console.log(
        `wrote package '${manifest.name}' (${manifest.architecture}, ${manifest.dtype}) to ${values.out}: ` +
          `${manifest.units.length} units, ${mb(unitBytes(manifest.units))} (embed ${mb(manifest.units[0]!.bytes)}, ` +
          `layer ${mb(layers[0]?.bytes ?? 0)} each, head ${mb(manifest.units.at(-1)!.bytes)}) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      if (unusedTensors.length > 0) console.log(`ignored ${unusedTensors.length} checkpoint tensor(s): ${unusedTensors.slice(0, 5).join(', ')}${unusedTensors.length > 5 ? ', ...' : ''}`);
    },
  },
  'export-full': exportFullCommand,
};

function usage(): string {
  return ['usage: npm run shards -- <command> ...', ...Object.entries(COMMANDS).map(([, c]) => `  ${c.usage}\n      ${c.summary}`)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command '${name}'\n${usage()}`);
    return 1;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof TandemError) {
      console.error(`error [${e.code}]: ${e.message}`);
      return 1;
    }
    if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${e.message}\nusage: npm run shards -- ${command.usage}`);
      return 1;
    }
    throw e;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
