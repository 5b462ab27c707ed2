/**
 * The byte-level token text against transformers.js' own decode (skip_special_tokens) on the real Qwen3
 * tokenizer: every id of the model's vocabulary (151,936, beyond the tokenizer's 151,669), random runs
 * mixing byte, added, special and out-of-range ids, and every window of a multilingual text; and on a
 * small BPE tokenizer with an unknown token, built for the test.
 */
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundledQwen3TokenizerDir } from '../tokenizer-files.ts';
import { ByteLevelText, byteLevelTextTable, TokenKind } from './byte-level-text.ts';
import { TextStream } from './text-stream.ts';

const MODEL_VOCAB = 151936;

function qwen3Files(): { json: unknown; config: Record<string, unknown> } {
  const dir = bundledQwen3TokenizerDir();
  return {
    json: JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as unknown,
    config: JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>,
  };
}

function tableOf(json: unknown, config: unknown): ByteLevelText {
  const built = byteLevelTextTable(json, config);
  if ('unsupported' in built) throw new Error(built.unsupported);
  return new ByteLevelText(built.table);
}

/** A seeded generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('byte-level token text (Qwen3) against transformers.js', () => {
  let reference: PreTrainedTokenizer;
  let text: ByteLevelText;
  const decodeRef = (ids: number[]): string => reference.decode(ids, { skip_special_tokens: true });

  beforeAll(() => {
    const { json, config } = qwen3Files();
    reference = new PreTrainedTokenizer(json, config);
    text = tableOf(json, config);
  });

  it('decodes every id of the model vocabulary alone like transformers.js', () => {
    const differ: number[] = [];
    for (let id = 0; id < MODEL_VOCAB; id++) if (text.decode([id]) !== decodeRef([id])) differ.push(id);
    expect(differ).toEqual([]);
  });

  it('decodes random runs of byte, added, special and out-of-range ids like transformers.js', () => {
    const next = random(7);
    // byte tokens of multi-byte characters, so that runs cut characters in two
    const pieces = reference.encode('日本語の文章 🙂🚀 Ça marche? Ωμέγα', { add_special_tokens: false });
    const pick = (): number => {
      const r = next();
      if (r < 0.45) return Math.floor(next() * MODEL_VOCAB);
      if (r < 0.6) return 151643 + Math.floor(next() * 26); // added tokens, special and not
      if (r < 0.65) return 151669 + Math.floor(next() * (MODEL_VOCAB - 151669)); // no token at all
      return pieces[Math.floor(next() * pieces.length)] ?? 0;
    };
    for (let run = 0; run < 2000; run++) {
      const ids = Array.from({ length: 1 + Math.floor(next() * 12) }, pick);
      expect(text.decode(ids), `ids ${ids.join(',')}`).toBe(decodeRef(ids));
    }
  });

  it('decodes every window of a multilingual text like transformers.js', () => {
    const ids = reference.encode('Tandem: 一つのモデル, many phones 📱📱. Größe <tool_call> done.\n\tend', {
      add_special_tokens: false,
    });
    for (let from = 0; from < ids.length; from++)
      for (let to = from + 1; to <= ids.length; to++) {
        const window = ids.slice(from, to);
        expect(text.decode(window)).toBe(decodeRef(window));
      }
  });

  it('streams the same text as the transformers.js tokenizer through TextStream', () => {
    const next = random(11);
    const ids = Array.from({ length: 400 }, () => Math.floor(next() * MODEL_VOCAB));
    const ours = new TextStream(text);
    const theirs = new TextStream({ decode: decodeRef });
    const a = ids.map((id, i) => ours.push(id, i === ids.length - 1));
    const b = ids.map((id, i) => theirs.push(id, i === ids.length - 1));
    expect(a).toEqual(b);
  });
});

describe('byte-level token text, other tokenizers', () => {
  /** A BPE tokenizer with an unknown token and a hole in its ids. */
  const small = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 6, content: '<s>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false },
      { id: 7, content: '[X]', special: false, single_word: false, lstrip: false, rstrip: false, normalized: false },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      vocab: { '<unk>': 0, a: 1, b: 2, Ġ: 3, Ã: 4, '©': 5, z: 9 },
      merges: [],
    },
  };

  it('decodes ids outside the vocabulary, and holes in it, as the unknown token, like transformers.js', () => {
    const reference = new PreTrainedTokenizer(small, {});
    const ours = tableOf(small, {});
    for (const ids of [[1, 2], [4, 5], [8], [1, 12, 2], [3, 6, 7, 4, 5], [4, 7, 5], [0, 9, 100]])
      expect(ours.decode(ids), `ids ${ids.join(',')}`).toBe(reference.decode(ids, { skip_special_tokens: true }));
  });

  it('says why it does not apply to a tokenizer without a byte-level decoder', () => {
    expect(byteLevelTextTable({ ...small, decoder: { type: 'WordPiece' } })).toEqual({
      unsupported: 'decoder WordPiece',
    });
    expect(byteLevelTextTable({ ...small, model: { ...small.model, type: 'Unigram' } })).toEqual({
      unsupported: 'model type Unigram',
    });
    expect(byteLevelTextTable('not json')).toEqual({ unsupported: 'no model in tokenizer.json' });
  });

  it('classifies ids as bytes, verbatim, special or empty', () => {
    const built = byteLevelTextTable(small, {});
    if ('unsupported' in built) throw new Error(built.unsupported);
    expect([...built.table.kinds]).toEqual([
      TokenKind.Bytes,
      TokenKind.Bytes,
      TokenKind.Bytes,
      TokenKind.Bytes,
      TokenKind.Bytes,
      TokenKind.Bytes,
      TokenKind.Special,
      TokenKind.Verbatim,
      TokenKind.Empty,
      TokenKind.Bytes,
    ]);
    expect(built.table.unknownId).toBe(0);
  });
});
