/**
 * Prompts of a given length in tokens, counted with the package's own tokenizer through its chat template
 * (as the first stage renders it), so a plan made for t tokens runs a prompt of about t tokens.
 */
import { basename, dirname, resolve } from 'node:path';

const WORDS = (
  'the quick brown fox jumps over the lazy dog while a small bird sings in the old oak tree and the river ' +
  'runs past the mill where children play near the green field under a clear blue sky'
).split(' ');

/** Text of `n` words from a fixed cycle. */
function words(n: number): string {
  return Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join(' ');
}

/**
 * The longest prompt "Continue this text: <words>" whose chat-templated token count is <= `tokens`
 * (binary search on the word count). Returns the text and its exact token count.
 */
export async function promptOfTokens(packageDir: string, tokens: number): Promise<{ text: string; tokens: number }> {
  const { AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(resolve(packageDir))}/`;
  const tok = await AutoTokenizer.from_pretrained(basename(resolve(packageDir)));
  const count = (text: string): number => {
    const rendered = tok.apply_chat_template<false>([{ role: 'user', content: text }], {
      tokenize: false,
      add_generation_prompt: true,
    });
    return tok.encode(rendered, { add_special_tokens: false }).length;
  };
  const make = (n: number) => `Continue this text: ${words(n)}`;
  let lo = 1;
  let hi = Math.max(2, tokens);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (count(make(mid)) <= tokens) lo = mid;
    else hi = mid - 1;
  }
  const text = make(lo);
  return { text, tokens: count(text) };
}
