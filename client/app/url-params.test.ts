import { describe, expect, it } from 'vitest';
import { joinLink, normaliseJoinCode, parsePageParams } from './url-params.ts';
import { TandemError } from '../../core/errors.ts';

function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof TandemError ? e.code : `not a TandemError: ${String(e)}`;
  }
  return 'no error';
}

describe('parsePageParams', () => {
  it('defaults to nothing set', () => {
    expect(parsePageParams('')).toEqual({
      join: null,
      host: false,
      warm: false,
      name: null,
      emulation: null,
      backend: 'auto',
      holdAt: null,
      ring: 'worker',
      parts: 'auto',
    });
  });

  it('reads ?parts= (whether the stage loads in parts); a count from 2 to 8; rejects anything else', () => {
    expect(parsePageParams('?parts=on').parts).toBe('on');
    expect(parsePageParams('?parts=OFF').parts).toBe('off');
    expect(parsePageParams('?parts=auto').parts).toBe('auto');
    expect(parsePageParams('?parts=4').parts).toBe(4);
    expect(errorCode(() => parsePageParams('?parts=1'))).toBe('parts-invalid');
    expect(errorCode(() => parsePageParams('?parts=9'))).toBe('parts-invalid');
    expect(errorCode(() => parsePageParams('?parts=many'))).toBe('parts-invalid');
  });

  it('reads ?ring= (where the stage runs); rejects anything but main and worker', () => {
    expect(parsePageParams('?ring=main').ring).toBe('main');
    expect(parsePageParams('?ring=Worker').ring).toBe('worker');
    expect(errorCode(() => parsePageParams('?ring=gpu'))).toBe('ring-invalid');
  });

  it('reads ?warm=1 (warm mode) like ?host=1', () => {
    expect(parsePageParams('?warm=1').warm).toBe(true);
    expect(parsePageParams('?warm=YES').warm).toBe(true);
    expect(parsePageParams('?warm=0').warm).toBe(false);
    expect(parsePageParams('?join=AB12CDEF').warm).toBe(false);
  });

  it('reads join, name, host and backend', () => {
    const p = parsePageParams('?join=%20ab12-cdef%20&name=Ada%27s%20phone&host=1&backend=WASM');
    expect(p.join).toBe('AB12CDEF');
    expect(p.name).toBe("Ada's phone");
    expect(p.host).toBe(true);
    expect(p.backend).toBe('wasm');
  });

  it('maps Crockford look-alikes in typed codes', () => {
    expect(normaliseJoinCode('k7q2 mnop')).toBe('K7Q2MN0P');
    expect(normaliseJoinCode('il000000')).toBe('11000000');
    expect(normaliseJoinCode('ABCDEFGHU')).toBeNull();
    expect(normaliseJoinCode('ABCDEFGU')).toBeNull();
  });

  it('strips control characters from names and bounds their length', () => {
    expect(parsePageParams('?name=a%00b%0Ac').name).toBe('abc');
    expect(parsePageParams(`?name=${'x'.repeat(100)}`).name).toHaveLength(40);
    expect(parsePageParams('?name=%20%20').name).toBeNull();
  });

  it('rejects bad codes and backends with coded errors', () => {
    expect(errorCode(() => parsePageParams('?join=a'))).toBe('join-code-invalid');
    expect(errorCode(() => parsePageParams('?join=<script>'))).toBe('join-code-invalid');
    expect(errorCode(() => parsePageParams('?backend=cuda'))).toBe('backend-invalid');
    expect(errorCode(() => parsePageParams('?emulate=toaster'))).toBe('emulation-invalid');
  });

  it('reads ?hold= token counts (fault injection); rejects what is not a list of counts', () => {
    expect(parsePageParams('?hold=5').holdAt).toEqual([5]);
    expect(parsePageParams('?hold=5,%209,5').holdAt).toEqual([5, 9]);
    expect(parsePageParams('?hold=').holdAt).toEqual([]);
    for (const bad of ['?hold=x', '?hold=-1', '?hold=1.5', '?hold=5,,9', `?hold=${'1,'.repeat(20)}1`])
      expect(
        errorCode(() => parsePageParams(bad)),
        bad,
      ).toBe('hold-invalid');
  });

  it('parses an emulation preset', () => {
    const p = parsePageParams('?emulate=phone');
    expect(p.emulation?.label).toBe('phone');
    expect(p.emulation?.computeSlowdown).toBe(4);
  });
});

describe('joinLink', () => {
  it('keeps origin and path, drops other params', () => {
    expect(joinLink('https://10.0.0.2:8080/?name=x&emulate=phone#top', 'K7Q2MN0P')).toBe(
      'https://10.0.0.2:8080/?join=K7Q2MN0P',
    );
  });
});
