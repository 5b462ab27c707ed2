/**
 * Independent references for the pages' token ids, run in Node:
 *   - `npm run generate` (shards/generate-cli.ts): the shards pipeline runner on onnxruntime-node, with a
 *     given split or one stage; run as the CLI a person would run, its --json output parsed;
 *   - transformers.js `generate()` on the whole-model ONNX that `npm run shards -- export-full` writes.
 * Greedy decoding, the prompt rendered through the package's chat template as the first stage does.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TandemError } from '../core/errors.ts';

const run = promisify(execFile);

export interface ReferenceTokens {
  /** Generated token ids only (prompt excluded). */
  generated: number[];
  promptTokens: number[];
  source: string;
  /** The generated tokens' text, special tokens skipped (transformers.js only). */
  text?: string;
}

/** `npm run generate -- --model DIR --prompt P --max-new-tokens N --chat --json [--split S]`. */
export async function nodeRunnerTokens(o: {
  packageDir: string;
  prompt: string;
  maxNewTokens: number;
  split?: string;
  backend?: 'node' | 'wasm';
}): Promise<ReferenceTokens> {
  const args = [
    'shards/generate-cli.ts',
    '--model',
    o.packageDir,
    '--prompt',
    o.prompt,
    '--max-new-tokens',
    String(o.maxNewTokens),
    '--chat',
    '--json',
    '--backend',
    o.backend ?? 'node',
  ];
  if (o.split) args.push('--split', o.split);
  let stdout: string;
  try {
    ({ stdout } = await run('node_modules/.bin/tsx', args, { maxBuffer: 64 << 20, timeout: 300_000 }));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new TandemError('reference-failed', `npm run generate failed: ${e.stderr?.slice(-2000) ?? e.message}`, {
      cause: err,
    });
  }
  const line = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  if (!line) throw new TandemError('reference-failed', `npm run generate printed no JSON: ${stdout.slice(-1000)}`);
  const json = JSON.parse(line) as { tokens: number[]; promptTokens: number[] };
  // `tokens` may or may not repeat the prompt: keep only what follows it.
  const generated = startsWith(json.tokens, json.promptTokens)
    ? json.tokens.slice(json.promptTokens.length)
    : json.tokens;
  return {
    generated,
    promptTokens: json.promptTokens,
    source: `npm run generate${o.split ? ` --split ${o.split}` : ''} (${o.backend ?? 'node'})`,
  };
}

function startsWith(a: readonly number[], prefix: readonly number[]): boolean {
  return prefix.length > 0 && a.length >= prefix.length && prefix.every((v, i) => a[i] === v);
}

/**
 * transformers.js `generate()` (greedy) on the export-full folder (`onnx/model.onnx` + config.json +
 * tokenizer files), loaded offline from disk with onnxruntime-node.
 */
export async function transformersTokens(o: {
  exportDir: string;
  prompt: string;
  maxNewTokens: number;
}): Promise<ReferenceTokens> {
  if (!existsSync(o.exportDir)) throw new TandemError('reference-failed', `No export-full folder at ${o.exportDir}.`);
  const { AutoModelForCausalLM, AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(resolve(o.exportDir))}/`;
  const id = basename(resolve(o.exportDir));
  const tokenizer = await AutoTokenizer.from_pretrained(id);
  const text = tokenizer.apply_chat_template<false>([{ role: 'user', content: o.prompt }], {
    tokenize: false,
    add_generation_prompt: true,
  });
  const inputs = tokenizer(text, { add_special_tokens: false });
  const model = await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp32', device: 'cpu' });
  try {
    const out = (await model.generate({ ...inputs, max_new_tokens: o.maxNewTokens, do_sample: false })) as {
      tolist(): bigint[][];
    };
    const all = out.tolist()[0].map(Number);
    const promptTokens = Array.from(inputs.input_ids.data as BigInt64Array, Number);
    const generated = all.slice(promptTokens.length);
    return {
      generated,
      promptTokens,
      source: 'transformers.js generate() on export-full',
      text: tokenizer.decode(generated, { skip_special_tokens: true }),
    };
  } finally {
    await model.dispose();
  }
}

/** `npm run shards -- export-full <package> --out <dir>` (skipped when `dir` already holds onnx/model.onnx). */
export async function ensureExportFull(packageDir: string, outDir: string): Promise<string> {
  if (existsSync(`${outDir}/onnx/model.onnx`)) return outDir;
  try {
    await run('node_modules/.bin/tsx', ['shards/cli.ts', 'export-full', packageDir, '--out', outDir], {
      maxBuffer: 16 << 20,
      timeout: 300_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new TandemError(
      'reference-failed',
      `npm run shards -- export-full failed: ${e.stderr?.slice(-2000) ?? e.message}`,
      { cause: err },
    );
  }
  return outDir;
}
