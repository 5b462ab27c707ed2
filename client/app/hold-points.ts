/**
 * Fault injection for tests and demos (`?hold=5,9`, or `arm([5])` through `window.tandem.holds` on a
 * page opened with `?hold`): the page's stage stops before the step that follows the 5th (and later the
 * 9th) generated token of a request until `release(5)` is called, so that a test can take a page away
 * while a request is provably mid-answer (the ring cannot produce token 6 while a stage holds). An armed
 * count holds once; `release` disarms it. Pages opened without `?hold` never wait here.
 */
export class HoldPoints {
  private readonly pending: Set<number>;
  private waiting: { generated: number; resume: () => void } | null = null;

  constructor(counts: readonly number[]) {
    this.pending = new Set(counts);
  }

  /** Resolves when the stage may compute the step that follows `generated` tokens. */
  wait(generated: number): Promise<void> {
    if (!this.pending.has(generated)) return Promise.resolve();
    this.waiting?.resume(); // one stage runs at a time: an older wait has been overtaken
    return new Promise<void>((resolve) => {
      this.waiting = {
        generated,
        resume: () => {
          this.waiting = null;
          resolve();
        },
      };
    });
  }

  /** Hold (once) at these counts too. */
  arm(counts: readonly number[]): void {
    for (const n of counts) if (Number.isInteger(n) && n >= 0) this.pending.add(n);
  }

  /** The count this page is holding at now, or null. */
  holding(): number | null {
    return this.waiting?.generated ?? null;
  }

  /** Never hold at `generated` again, and let a stage held there go on. */
  release(generated: number): void {
    this.pending.delete(generated);
    if (this.waiting?.generated === generated) this.waiting.resume();
  }
}
