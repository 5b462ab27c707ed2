/**
 * Entry of the short-lived token-text worker (started by token-text.ts): fetches a package's tokenizer
 * files, builds the byte-level table and transfers it back, then the page terminates it.
 */
import {
  fetchTokenTextTable,
  tokenTextTransfers,
  type TokenTextReply,
  type TokenTextRequest,
} from './token-text-table.ts';

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<TokenTextRequest>) => void) | null;
  postMessage(reply: TokenTextReply, transfer: ArrayBuffer[]): void;
};
scope.onmessage = (e) => {
  void fetchTokenTextTable(e.data).then((reply) => scope.postMessage(reply, tokenTextTransfers(reply)));
};
