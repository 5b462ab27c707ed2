/**
 * `npm run generate -- --model <package dir> [--split 1-4,5-9,10-16] [--backend node|wasm] --prompt "..."
 *   [--max-new-tokens N] [--chat] [--temperature T --top-k K --top-p P --seed S] [--wire float32|float16]
 *   [--ignore-eos] [--json]`
 * Runs every stage of the split in this process as the page's StagePeers over the loopback transport
 * (runtime/pipeline-runner.ts) and prints the text, or with
 * --json: {"tokens": [...], "text": "...", "stages": [...], "timings": {...}}.
 */
import { basename, dirname, resolve } from 'node:path';
import { parseCliArgs, runCliIfEntryPoint, usageError } from '../core/cli.ts';
import { TandemError } from '../core/errors.ts';
import { PackageReader } from './package-reader.ts';
import type { NodeBackend } from './runtime/ort-node.ts';
import { formatRange, parseSplit, PipelineRunner } from './runtime/pipeline-runner.ts';

const USAGE = `usage: npm run generate -- --model <package dir> --prompt "..." [--split 1-4,5-9] [--backend node|wasm]
       [--max-new-tokens N] [--chat] [--temperature T] [--top-k K] [--top-p P] [--seed S]
       [--wire float32|float16] [--ignore-eos] [--json]`;

/** The package's tokenizer, loaded offline by transformers.js from the package folder's own files. */
async function loadTokenizer(packageDir: string) {
  const { AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = dirname(resolve(packageDir)) + '/';
  return AutoTokenizer.from_pretrained(basename(resolve(packageDir)));
}

function num(value: string | undefined, flag: string, fallback: number, check: (n: number) => boolean): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!check(n)) throw usageError(`${flag} '${value}' is out of range.`);
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      split: { type: 'string' },
      backend: { type: 'string', default: 'node' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      chat: { type: 'boolean', default: false },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      wire: { type: 'string', default: 'float32' },
      'ignore-eos': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.model || values.prompt === undefined) throw usageError('--model and --prompt are required.');
  if (values.backend !== 'node' && values.backend !== 'wasm')
    throw usageError(`--backend must be node or wasm, not '${values.backend}'.`);
  if (values.wire !== 'float32' && values.wire !== 'float16')
    throw usageError(`--wire must be float32 or float16, not '${values.wire}'.`);
  const backend: NodeBackend = values.backend;
  const maxNewTokens = num(values['max-new-tokens'], '--max-new-tokens', 32, (n) => Number.isInteger(n) && n >= 1);
  const sampling = {
    temperature: num(values.temperature, '--temperature', 0, (n) => n >= 0),
    topK: num(values['top-k'], '--top-k', 0, (n) => Number.isInteger(n) && n >= 0),
    topP: num(values['top-p'], '--top-p', 1, (n) => n > 0 && n <= 1),
    seed: num(values.seed, '--seed', 0, (n) => Number.isInteger(n) && n >= 0),
  };

  const reader = PackageReader.open(values.model);
  const L = reader.manifest.config.num_hidden_layers;
  const split = values.split ? parseSplit(values.split, L) : [{ start: 0, end: L }];
  const tokenizer = await loadTokenizer(values.model);
  let promptText = values.prompt;
  if (values.chat) {
    if (!tokenizer.chat_template)
      throw new TandemError(
        'chat-template-missing',
        `--chat: the package's tokenizer has no chat template; drop --chat.`,
      );
    promptText = tokenizer.apply_chat_template([{ role: 'user', content: values.prompt }], {
      add_generation_prompt: true,
      tokenize: false,
    });
  }
  const promptIds = tokenizer.encode(promptText, { add_special_tokens: !values.chat });

  const runner = await PipelineRunner.open(reader, { split, backend, wire: values.wire });
  try {
    const result = await runner.generate(promptIds, {
      maxNewTokens,
      sampling,
      stopTokens: values['ignore-eos'] ? [] : undefined,
    });
    const text = tokenizer.decode(result.tokens, { skip_special_tokens: true });
    if (values.json) {
      console.log(
        JSON.stringify({
          tokens: result.tokens,
          text,
          promptTokens: result.promptTokens,
          stopReason: result.stopReason,
          split: split.map(formatRange),
          stages: runner.stageReports(),
          timings: result.timings,
        }),
      );
    } else {
      console.log(text);
      const t = result.timings;
      console.error(
        `[${split.length} stage(s) ${split.map(formatRange).join(',')} on ${backend}: ${result.tokens.length} tokens, prefill ${t.prefillMs.toFixed(1)} ms, ` +
          `TTFT ${t.timeToFirstTokenMs.toFixed(1)} ms, ${t.tokensPerSecond.toFixed(1)} tok/s decode, stop: ${result.stopReason}]`,
      );
    }
  } finally {
    await runner.release();
  }
}

runCliIfEntryPoint(import.meta.url, { program: 'generate', usage: USAGE, main });
