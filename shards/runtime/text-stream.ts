/**
 * The text each generated token adds, at a cost that does not grow with the answer (pure): decoding all
 * tokens again for every new one costs O(n) per token, O(n^2) per answer, on the last stage's step path.
 * Here each token decodes a short window: the tokens since the text last grew, after a few tokens of
 * context (a tokenizer may render a token differently at the start of a text). A token that ends inside a
 * multi-byte character (the text ends in U+FFFD) adds nothing until the character completes.
 * The deltas concatenated equal decode(all tokens) for byte-level BPE tokenizers such as Qwen3's.
 */
import type { PromptTokenizer } from './prompt-tokenizer.ts';

/** Tokens of context decoded before the new ones. */
const CONTEXT_TOKENS = 5;
const REPLACEMENT = '\uFFFD';

export class TextStream {
  private readonly tokens: number[];
  /** tokens[prefix, read) is the context; tokens[read, ..) have not added text yet */
  private prefix: number;
  private read: number;

  /** `prior`: tokens whose text is already shown (a continuation's), context for the first new ones. */
  constructor(
    private readonly tokenizer: Pick<PromptTokenizer, 'decode'>,
    prior: readonly number[] = [],
  ) {
    this.tokens = [...prior.slice(-CONTEXT_TOKENS)];
    this.read = this.tokens.length;
    this.prefix = 0;
  }

  /** The text `token` adds ('' while a character is incomplete); `last`: nothing more comes, flush. */
  push(token: number, last = false): string {
    this.tokens.push(token);
    const before = this.decode(this.prefix, this.read);
    const now = this.decode(this.prefix, this.tokens.length);
    if (!last && (now.length <= before.length || now.endsWith(REPLACEMENT))) return '';
    const delta = now.startsWith(before) ? now.slice(before.length) : now.slice(Math.min(before.length, now.length));
    this.prefix = this.read;
    this.read = this.tokens.length;
    // keep the window short: what lies before the context is never decoded again
    if (this.prefix > CONTEXT_TOKENS) {
      const drop = this.prefix - CONTEXT_TOKENS;
      this.tokens.splice(0, drop);
      this.prefix -= drop;
      this.read -= drop;
    }
    return delta;
  }

  private decode(from: number, to: number): string {
    return to > from ? this.tokenizer.decode(this.tokens.slice(from, to)) : '';
  }
}
