import { TandemError } from './errors.ts';

/**
 * For tests: the TandemError code `p` rejects with, 'no error' when it resolves, or 'other: ...' for
 * anything that is not a TandemError, so an assertion can name the code it expects.
 */
export async function rejectionCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof TandemError ? e.code : `other: ${String(e)}`;
  }
  return 'no error';
}
