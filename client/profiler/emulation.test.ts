import { describe, expect, it } from 'vitest';
import { computeStretch, EMULATION_PRESETS, parseEmulation, rateStretch } from './emulation.ts';
import { TandemError } from '../../core/errors.ts';

const MiB = 1024 * 1024;

function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof TandemError ? e.code : 'other';
  }
  return 'no error';
}

describe('parseEmulation', () => {
  it('is null when absent', () => {
    expect(parseEmulation(null)).toBeNull();
    expect(parseEmulation('  ')).toBeNull();
  });

  it('converts JSON user units to SI', () => {
    const e = parseEmulation('{"label":"slow","compute":3,"readMBps":100,"linkMbps":20,"memoryMB":512}');
    expect(e).toEqual({
      label: 'slow',
      computeSlowdown: 3,
      readBytesPerSecCap: 100 * MiB,
      linkBitsPerSecCap: 20e6,
      memoryBytesCap: 512 * MiB,
    });
  });

  it('bounds and cleans labels', () => {
    expect(parseEmulation(`{"label":"${'x'.repeat(100)}"}`)!.label).toHaveLength(40);
    expect(parseEmulation('{"label":" a\\u0007b "}')!.label).toBe('ab');
    expect(parseEmulation('{"label":"  "}')!.label).toBe('custom');
  });

  it('knows every preset and labels it by name', () => {
    for (const name of Object.keys(EMULATION_PRESETS)) {
      const e = parseEmulation(name);
      expect(e?.label).toBe(name);
      expect(e!.computeSlowdown).toBeGreaterThanOrEqual(1);
    }
    expect(parseEmulation('paper-4')!.computeSlowdown).toBeCloseTo(8.25, 10);
  });

  it('rejects bad input with emulation-invalid', () => {
    for (const raw of [
      '{',
      '[1]',
      '{"compute":0.5}',
      '{"compute":-1}',
      '{"readMBps":"fast"}',
      '{"cpu":2}',
      'warp-drive',
      '{"label":3}',
    ]) {
      expect(errorCode(() => parseEmulation(raw))).toBe('emulation-invalid');
    }
  });
});

describe('stretch arithmetic', () => {
  it('stretches compute to factor x measured', () => {
    const e = parseEmulation('{"compute":4}');
    expect(0.25 + computeStretch(e, 0.25)).toBeCloseTo(1.0, 12);
    expect(computeStretch(null, 0.25)).toBe(0);
  });

  it('stretches a transfer only when it ran faster than the cap', () => {
    // 100 MiB at a 50 MiB/s cap must take 2 s
    expect(0.5 + rateStretch(50 * MiB, 100 * MiB, 0.5)).toBeCloseTo(2, 12);
    expect(rateStretch(50 * MiB, 100 * MiB, 3)).toBe(0);
    expect(rateStretch(undefined, 100 * MiB, 0.1)).toBe(0);
  });
});
