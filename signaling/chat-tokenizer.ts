/**
 * The server's copy of a package's tokenizer, for the HTTP API: renders OpenAI `messages` through the
 * package's chat template and tokenises them (so the first stage runs exactly these ids), and decodes
 * the generated ids back to text. The same files and library (transformers.js AutoTokenizer, offline)
 * as the page's client/runtime/tokenizer.ts, so a prompt typed on the host's page and the same prompt
 * sent as one user message give the same ids.
 */
import { basename, dirname, resolve } from 'node:path';
import { TandemError } from '../core/errors.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatTokenizer {
  readonly hasChatTemplate: boolean;
  /** Prompt ids of a conversation: the chat template with the assistant's generation prompt appended. */
  encodeChat(messages: readonly ChatMessage[]): number[];
  /** Text of generated ids (special tokens skipped). */
  decode(ids: readonly number[]): string;
}

/** Loads the tokenizer files of the package folder `packageDir` (nothing is fetched from the network). */
export async function loadChatTokenizer(packageDir: string): Promise<ChatTokenizer> {
  const { AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(resolve(packageDir))}/`;
  let tokenizer: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(basename(resolve(packageDir)));
  } catch (cause) {
    throw new TandemError(
      'tokenizer-load-failed',
      `Could not load the tokenizer of ${packageDir}: ${(cause as Error).message}. The package needs tokenizer.json and tokenizer_config.json.`,
      { cause },
    );
  }
  const template: unknown = tokenizer.chat_template;
  const hasChatTemplate =
    typeof template === 'string' ? template.length > 0 : template !== null && template !== undefined;
  return {
    hasChatTemplate,
    encodeChat(messages) {
      if (!hasChatTemplate) {
        // Without a template the conversation is plain text, one message per line (a base model).
        return tokenizer.encode(messages.map((m) => m.content).join('\n'));
      }
      const text = tokenizer.apply_chat_template(
        messages.map((m) => ({ role: m.role, content: m.content })),
        { tokenize: false, add_generation_prompt: true },
      );
      return tokenizer.encode(text, { add_special_tokens: false });
    },
    decode(ids) {
      return tokenizer.decode([...ids], { skip_special_tokens: true });
    },
  };
}
