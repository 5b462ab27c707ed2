/**
 * The byte-level token-text table of a package (shards/runtime/byte-level-text.ts), fetched and built in
 * one go: run by the token-text worker, so that parsing the package's tokenizer.json (11 MB for Qwen3)
 * never blocks the page's main thread.
 */
import { byteLevelTextTable, type ByteLevelTable } from '../../shards/runtime/byte-level-text.ts';

export interface TokenTextRequest {
  /** URL or same-origin path of the folder holding <packageName>/tokenizer.json; ends with '/' */
  modelRoot: string;
  packageName: string;
}

/** The table, or why there is none (`unsupported`: the page needs the full tokenizer; `error`: a failure). */
export type TokenTextReply = { table: ByteLevelTable } | { unsupported: string } | { error: string };

type Fetch = (url: string) => Promise<Pick<Response, 'ok' | 'status' | 'json'>>;

export async function fetchTokenTextTable(req: TokenTextRequest, fetchUrl: Fetch = fetch): Promise<TokenTextReply> {
  const folder = `${req.modelRoot.endsWith('/') ? req.modelRoot : `${req.modelRoot}/`}${req.packageName}/`;
  try {
    const [tokenizer, config] = await Promise.all([
      fetchUrl(`${folder}tokenizer.json`),
      fetchUrl(`${folder}tokenizer_config.json`),
    ]);
    if (!tokenizer.ok) return { error: `${folder}tokenizer.json: HTTP ${tokenizer.status}` };
    // tokenizer_config.json is optional (it only adds special tokens by name)
    return byteLevelTextTable(await tokenizer.json(), config.ok ? await config.json() : {});
  } catch (err) {
    return { error: `${folder}tokenizer.json: ${(err as Error).message}` };
  }
}

/** The buffers a reply hands over (transferred, not copied). */
export function tokenTextTransfers(reply: TokenTextReply): ArrayBuffer[] {
  if (!('table' in reply)) return [];
  const { bytes, offsets, kinds } = reply.table;
  return [bytes.buffer, offsets.buffer, kinds.buffer] as ArrayBuffer[];
}
