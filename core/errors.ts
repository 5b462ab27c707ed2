/** An error with a stable machine-readable code; match on `code`, never on the message text. */
export class TandemError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
