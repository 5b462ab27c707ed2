import { describe, expect, it } from 'vitest';
import { CompletionText } from './completion-text.ts';

/** A byte-level decoder over a tiny vocabulary: ids index into pieces; '\uFFFD' marks a split character. */
const PIECES = ['Hel', 'lo', ' wor', 'ld', '!', ' S', 'TOP', ' é', '\uFFFD'];
const decode = (ids: readonly number[]) => ids.map((i) => PIECES[i]).join('');

describe('CompletionText', () => {
  it('emits text as it grows and all of it at the end', () => {
    const t = new CompletionText(decode, []);
    expect(t.push([0]).delta).toBe('Hel');
    expect(t.push([1, 2]).delta).toBe('lo wor');
    expect(t.finish()).toBe('');
    expect(t.text).toBe('Hello wor');
    expect(t.tokenCount).toBe(3);
  });

  it('holds back a trailing replacement character until the next token', () => {
    const t = new CompletionText(decode, []);
    expect(t.push([0, 8]).delta).toBe('Hel');
    expect(t.finish()).toBe('\uFFFD');
  });

  it('ends before a stop sequence, holding back a possible start of one', () => {
    const t = new CompletionText(decode, ['STOP']);
    expect(t.push([0, 1]).delta).toBe('Hello');
    // ' S' could start 'STOP': held back
    expect(t.push([5])).toEqual({ delta: ' ', stopped: false });
    expect(t.push([6])).toEqual({ delta: '', stopped: true });
    expect(t.text).toBe('Hello ');
    expect(t.push([4])).toEqual({ delta: '', stopped: true });
  });

  it('releases held-back text that turned out not to be a stop sequence', () => {
    const t = new CompletionText(decode, ['STOP']);
    t.push([0, 1, 5]);
    expect(t.push([7]).delta).toBe('S é');
    expect(t.finish()).toBe('');
    expect(t.text).toBe('Hello S é');
  });

  it('picks the earliest of several stop sequences', () => {
    const t = new CompletionText(decode, ['ld', 'wor']);
    expect(t.push([0, 1, 2, 3])).toEqual({ delta: 'Hello ', stopped: true });
  });
});
