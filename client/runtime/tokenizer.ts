/**
 * Prompt tokenizer for the first stage (and text decoding for any stage): transformers.js AutoTokenizer
 * loaded from the package's own tokenizer files, served by our server at /models/<package>/..., with
 * every remote lookup switched off (nothing may download at run time).
 *
 *   const tok = await loadPackageTokenizer({ modelRoot: new URL('/models/', location.href).href, packageName });
 *   const ids = tok.encode('Hello', { chatTemplate: tok.hasChatTemplate });
 *
 * transformers.js is imported lazily (it is large), and because importing it points ORT's shared
 * env.wasm.wasmPaths at a CDN, we re-apply our local wasm path right after (ort-web.ts applyWasmPaths).
 * In Node, `modelRoot` is a folder path holding <packageName>/tokenizer.json.
 */
import { TandemError } from '../../core/errors.ts';
import type { PromptTokenizer } from '../../shards/runtime/prompt-tokenizer.ts';
import { applyWasmPaths } from './ort-web.ts';

export type { PromptTokenizer };

export interface TokenizerSource {
  /** URL (page) or folder path (Node) that contains <packageName>/tokenizer.json. Must end with '/'. */
  modelRoot: string;
  packageName: string;
}

/** Loads the package's tokenizer with transformers.js, offline. */
export async function loadPackageTokenizer(src: TokenizerSource): Promise<PromptTokenizer> {
  const transformers = await import('@huggingface/transformers');
  applyWasmPaths();
  const { env, AutoTokenizer } = transformers;
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = src.modelRoot.endsWith('/') ? src.modelRoot : `${src.modelRoot}/`;
  env.useBrowserCache = false;
  let tokenizer: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(src.packageName);
  } catch (err) {
    throw new TandemError(
      'tokenizer-load-failed',
      `Could not load the tokenizer of package '${src.packageName}' from ${env.localModelPath}${src.packageName}/: ${(err as Error).message}. Check that the package folder has tokenizer.json and tokenizer_config.json.`,
      { cause: err },
    );
  }
  const template: unknown = tokenizer.chat_template;
  const hasChatTemplate =
    typeof template === 'string' ? template.length > 0 : template !== null && template !== undefined;
  return {
    hasChatTemplate,
    encode(prompt, opts = {}) {
      if (opts.chatTemplate) {
        if (!hasChatTemplate) {
          throw new TandemError(
            'chat-template-missing',
            `Package '${src.packageName}' has no chat template; send the prompt as plain text.`,
          );
        }
        const text = tokenizer.apply_chat_template([{ role: 'user', content: prompt }], {
          tokenize: false,
          add_generation_prompt: true,
        });
        return tokenizer.encode(text, { add_special_tokens: false });
      }
      return tokenizer.encode(prompt);
    },
    decode(ids) {
      return tokenizer.decode([...ids], { skip_special_tokens: true });
    },
  };
}
