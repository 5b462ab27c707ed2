import { describe, expect, it } from 'vitest';
import { formatBits, formatBytes, formatDuration, formatFlops, formatLayers } from './format.ts';

describe('format', () => {
  it('shows layer ranges 1-based inclusive', () => {
    expect(formatLayers({ start: 0, end: 7 })).toBe('layers 1–7');
    expect(formatLayers({ start: 7, end: 8 })).toBe('layer 8');
  });
  it('scales units', () => {
    expect(formatFlops(2.5e9)).toBe('2.50 GFLOP/s');
    expect(formatFlops(1.65e14)).toBe('165.00 TFLOP/s');
    expect(formatBytes(630 * 2 ** 20)).toBe('630.0 MB');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.50 GB');
    expect(formatBits(54.3e6)).toBe('54.3 Mbit/s');
    expect(formatDuration(0.25)).toBe('250 ms');
    expect(formatDuration(0.0042)).toBe('4.20 ms');
    expect(formatDuration(2.345)).toBe('2.35 s');
    expect(formatDuration(null)).toBe('–');
  });
});
