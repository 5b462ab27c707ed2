/**
 * Token text for byte-level BPE tokenizers (Qwen3, GPT-2 style), without transformers.js: the last stage
 * only needs ids -> text, and loading transformers.js' whole tokenizer (import + from_pretrained, ~2 s of
 * one main-thread task on a laptop core, many seconds on a throttled phone) starves the page's heartbeats.
 *
 *   const table = byteLevelTextTable(JSON.parse(tokenizerJson), tokenizerConfig);   // null: not byte-level
 *   const text = new ByteLevelText(table).decode(ids);
 *
 * The table is plain typed arrays, so a worker can build it (parsing 11 MB of JSON) and transfer it.
 * decode(ids) equals transformers.js' `tokenizer.decode(ids, { skip_special_tokens: true })` for the
 * tokenizers this accepts (tested against it on every id of the Qwen3 vocabulary and on random runs):
 *  - a vocabulary token's characters map back to bytes through the GPT-2 byte<->unicode table;
 *  - added tokens are copied verbatim, special ones skipped (by their text, as transformers.js does);
 *  - each run of byte tokens between verbatim ones is decoded as UTF-8 on its own, invalid bytes as U+FFFD;
 *  - an id outside the vocabulary adds the unknown token's text, or nothing when there is none.
 */

/** What each id is. */
export const TokenKind = {
  /** not in the vocabulary: decodes as the unknown token, or adds nothing */
  Empty: 0,
  /** bytes, decoded as UTF-8 together with the neighbouring byte tokens */
  Bytes: 1,
  /** an added token's text, copied as is */
  Verbatim: 2,
  /** skipped */
  Special: 3,
} as const;

/** ids -> bytes, in typed arrays (transferable). */
export interface ByteLevelTable {
  /** every token's bytes (Bytes: the raw bytes; Verbatim: its text as UTF-8), concatenated */
  bytes: Uint8Array;
  /** token i's bytes are bytes[offsets[i], offsets[i + 1]); length = ids + 1 */
  offsets: Uint32Array;
  /** TokenKind per id */
  kinds: Uint8Array;
  /** the Bytes/Verbatim entry an id outside the vocabulary decodes as, or -1 (it adds nothing) */
  unknownId: number;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

/** The GPT-2 table: bytes that are printable map to themselves, the rest to U+0100 upward. */
function unicodeToByte(): Map<number, number> {
  const map = new Map<number, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map.set(printable ? b : next++, b);
  }
  return map;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * The table of a parsed tokenizer.json (and its tokenizer_config.json, for `additional_special_tokens`),
 * or a reason why this decoder does not apply (not a BPE model with a ByteLevel decoder): the caller then
 * uses a full tokenizer.
 */
export function byteLevelTextTable(
  tokenizerJson: unknown,
  tokenizerConfig: unknown = {},
): { table: ByteLevelTable } | { unsupported: string } {
  if (!isRecord(tokenizerJson) || !isRecord(tokenizerJson.model)) return { unsupported: 'no model in tokenizer.json' };
  const { model, decoder } = tokenizerJson;
  if (model.type !== 'BPE' || !isRecord(model.vocab)) return { unsupported: `model type ${String(model.type)}` };
  if (!isRecord(decoder) || decoder.type !== 'ByteLevel')
    return { unsupported: `decoder ${isRecord(decoder) ? String(decoder.type) : 'none'}` };
  if (model.end_of_word_suffix) return { unsupported: 'end_of_word_suffix' };

  const text: (string | undefined)[] = [];
  for (const [token, id] of Object.entries(model.vocab)) if (typeof id === 'number') text[id] = token;
  const added = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as AddedTokenJson[]) : [];
  const addedText = new Set<string>();
  const specialText = new Set<string>();
  for (const a of added) {
    text[a.id] = a.content;
    addedText.add(a.content);
    if (a.special) specialText.add(a.content);
  }
  const extra = isRecord(tokenizerConfig) ? tokenizerConfig.additional_special_tokens : undefined;
  if (Array.isArray(extra)) for (const t of extra) if (typeof t === 'string') specialText.add(t);

  const toByte = unicodeToByte();
  const encoder = new TextEncoder();
  const n = text.length;
  const kinds = new Uint8Array(n);
  const offsets = new Uint32Array(n + 1);
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (let id = 0; id < n; id++) {
    const t = text[id];
    let bytes: Uint8Array;
    if (t === undefined) {
      kinds[id] = TokenKind.Empty;
      bytes = new Uint8Array(0);
    } else if (specialText.has(t)) {
      kinds[id] = TokenKind.Special;
      bytes = new Uint8Array(0);
    } else if (addedText.has(t)) {
      kinds[id] = TokenKind.Verbatim;
      bytes = encoder.encode(t);
    } else {
      kinds[id] = TokenKind.Bytes;
      // code points, as transformers.js maps them (the table's characters are single code points)
      const cps = Array.from(t);
      bytes = new Uint8Array(cps.length);
      // a character outside the table becomes byte 0, as in transformers.js (Uint8Array of undefined)
      cps.forEach((c, i) => (bytes[i] = toByte.get(c.codePointAt(0) ?? -1) ?? 0));
    }
    chunks.push(bytes);
    offsets[id] = length;
    length += bytes.length;
  }
  offsets[n] = length;
  const all = new Uint8Array(length);
  chunks.forEach((c, id) => all.set(c, offsets[id]));

  const unk = typeof model.unk_token === 'string' ? model.unk_token : null;
  const unkId = unk !== null && typeof model.vocab[unk] === 'number' ? model.vocab[unk] : -1;
  // an unknown token that is special is filtered like one: it adds nothing
  const unknownId = unkId >= 0 && unkId < n && kinds[unkId] !== TokenKind.Special ? unkId : -1;
  return { table: { bytes: all, offsets, kinds, unknownId } };
}

/** ids -> text over a table (pure, no allocation beyond the output). */
export class ByteLevelText {
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(private readonly table: ByteLevelTable) {}

  /** Text of `ids`, special tokens skipped. */
  decode(ids: readonly number[]): string {
    const { bytes, offsets, kinds, unknownId } = this.table;
    const entry = (id: number): number =>
      Number.isInteger(id) && id >= 0 && id < kinds.length && kinds[id] !== TokenKind.Empty ? id : unknownId;
    let size = 0;
    for (const id of ids) {
      const e = entry(id);
      if (e >= 0) size += offsets[e + 1] - offsets[e];
    }
    const run = new Uint8Array(size);
    let text = '';
    let start = 0;
    let end = 0;
    for (const id of ids) {
      const e = entry(id);
      if (e < 0) continue;
      const kind = kinds[e];
      if (kind === TokenKind.Bytes) {
        run.set(bytes.subarray(offsets[e], offsets[e + 1]), end);
        end += offsets[e + 1] - offsets[e];
      } else if (kind === TokenKind.Verbatim) {
        if (end > start) text += this.utf8.decode(run.subarray(start, end));
        start = end;
        text += this.utf8.decode(bytes.subarray(offsets[e], offsets[e + 1]));
      }
    }
    if (end > start) text += this.utf8.decode(run.subarray(start, end));
    return text;
  }
}
