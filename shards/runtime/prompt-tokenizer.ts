/**
 * What a stage needs of a tokenizer: the first stage encodes the prompt, the last turns tokens into text.
 * The page loads one with transformers.js (client/runtime/tokenizer.ts); Node callers may pass the ids
 * already encoded (StartRequest.promptTokenIds) and no tokenizer.
 */
export interface PromptTokenizer {
  /** True when the tokenizer files carry a chat template. */
  readonly hasChatTemplate: boolean;
  /**
   * Token ids of a prompt. With `chatTemplate`, the prompt becomes one user message rendered through the
   * template with the assistant generation prompt appended; otherwise it is encoded as plain text.
   */
  encode(prompt: string, opts?: { chatTemplate?: boolean }): number[];
  /** Text of token ids (special tokens skipped). */
  decode(ids: readonly number[]): string;
}
