/**
 * Generated token ids -> the text an API client may see so far. Two things hold text back:
 *   - a trailing U+FFFD: the last token ended inside a multi-byte character that the next completes;
 *   - a suffix that could be the start of a stop sequence: it is sent once it is clearly not one.
 * When a stop sequence appears, the text ends just before it (OpenAI's `stop`).
 *
 * Pure: the decoder is passed in (the package tokenizer on the server, a table in tests).
 */

export interface TextStep {
  /** New text to send now (may be ''). */
  delta: string;
  /** A stop sequence matched: the text is complete and generation should stop. */
  stopped: boolean;
}

export class CompletionText {
  private readonly ids: number[] = [];
  private emitted = '';
  private done = false;

  constructor(
    private readonly decode: (ids: readonly number[]) => string,
    private readonly stops: readonly string[],
  ) {}

  get text(): string {
    return this.emitted;
  }

  get tokenCount(): number {
    return this.ids.length;
  }

  push(tokenIds: readonly number[]): TextStep {
    if (this.done) return { delta: '', stopped: true };
    this.ids.push(...tokenIds);
    const full = this.decode(this.ids);
    const stopAt = this.firstStop(full);
    if (stopAt !== null) {
      this.done = true;
      return { delta: this.advance(full.slice(0, stopAt)), stopped: true };
    }
    let end = full.length;
    while (end > 0 && full.charCodeAt(end - 1) === 0xfffd) end--;
    end -= this.partialStopLength(full.slice(0, end));
    return { delta: this.advance(full.slice(0, end)), stopped: false };
  }

  /** Generation ended (EOS or length): whatever was held back goes out. */
  finish(): string {
    if (this.done) return '';
    this.done = true;
    return this.advance(this.decode(this.ids));
  }

  private advance(upTo: string): string {
    if (upTo.length <= this.emitted.length || !upTo.startsWith(this.emitted)) return '';
    const delta = upTo.slice(this.emitted.length);
    this.emitted = upTo;
    return delta;
  }

  private firstStop(text: string): number | null {
    let best: number | null = null;
    for (const stop of this.stops) {
      const i = text.indexOf(stop);
      if (i >= 0 && (best === null || i < best)) best = i;
    }
    return best;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of a stop sequence. */
  private partialStopLength(text: string): number {
    let longest = 0;
    for (const stop of this.stops)
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--)
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
    return longest;
  }
}
