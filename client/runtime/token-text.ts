/**
 * Token text for the last stage, built off the main thread: a worker fetches the package's tokenizer.json
 * and builds a byte-level table (client/runtime/token-text-table.ts); decoding over it is a table lookup.
 * transformers.js' tokenizer costs ~2 s of main thread to load (seconds more on a throttled phone, which
 * then misses heartbeats and is taken for lost); it stays the fallback for tokenizers that are not
 * byte-level BPE.
 *
 *   const text = await loadTokenText({ modelRoot: '/models/', packageName });   // null: use the full tokenizer
 */
import { TandemError } from '../../core/errors.ts';
import { ByteLevelText } from '../../shards/runtime/byte-level-text.ts';
import type { PromptTokenizer } from '../../shards/runtime/prompt-tokenizer.ts';
import type { TokenTextReply, TokenTextRequest } from './token-text-table.ts';

export type TokenText = Pick<PromptTokenizer, 'decode'>;

interface TokenTextWorker {
  onmessage: ((e: MessageEvent<TokenTextReply>) => void) | null;
  onerror: ((e: ErrorEvent) => void) | null;
  postMessage(req: TokenTextRequest): void;
  terminate(): void;
}

function startWorker(): TokenTextWorker {
  return new Worker(new URL('./token-text-worker.ts', import.meta.url), { type: 'module', name: 'tandem-token-text' });
}

/** The package's token text, or null when its tokenizer is not byte-level BPE (use the full tokenizer). */
export function loadTokenText(
  req: TokenTextRequest,
  start: () => TokenTextWorker = startWorker,
): Promise<TokenText | null> {
  return new Promise((resolve, reject) => {
    const worker = start();
    const fail = (why: string): void => {
      worker.terminate();
      reject(
        new TandemError(
          'tokenizer-load-failed',
          `Could not load the token text of package '${req.packageName}': ${why}. Check that the package folder has tokenizer.json.`,
        ),
      );
    };
    worker.onerror = (e) => fail(e.message || 'the worker failed');
    worker.onmessage = (e) => {
      const reply = e.data;
      if ('error' in reply) {
        fail(reply.error);
        return;
      }
      worker.terminate();
      resolve('table' in reply ? new ByteLevelText(reply.table) : null);
    };
    worker.postMessage(req);
  });
}
