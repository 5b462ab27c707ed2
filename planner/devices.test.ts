import { describe, expect, it } from 'vitest';
import { checkDevice, effectiveFlops, utilisation, wirelessRates } from './devices.ts';
import type { DeviceProfile } from './types.ts';

const cell = {
  mu: 0.5,
  bandwidthHz: 160e6,
  downlinkPowerDbm: 25,
  noiseDbmPerHz: -174,
  refDistanceM: 1,
  pathLossExponent: 3,
  beta0Db: -47.2,
};

/** The link budget in dB, computed independently of devices.ts: SNR = P + beta0 - 10 zeta log10(d/d0) - (N0 + 10 log10 B). */
function rateFromDb(powerDbm: number, distanceM: number): number {
  const snrDb =
    powerDbm +
    cell.beta0Db -
    10 * cell.pathLossExponent * Math.log10(distanceM) -
    (cell.noiseDbmPerHz + 10 * Math.log10(cell.bandwidthHz));
  return cell.mu * cell.bandwidthHz * Math.log2(1 + 10 ** (snrDb / 10));
}

describe('wireless model [10]-[12]', () => {
  it('matches the dB link budget for the paper devices', () => {
    for (const [pu, d] of [
      [20, 1],
      [18, 3],
      [15, 5],
      [15, 7],
      [15, 10],
    ] as const) {
      const r = wirelessRates(cell, { uplinkPowerDbm: pu, distanceM: d });
      expect(r.uplinkBitsPerSec / rateFromDb(pu, d)).toBeCloseTo(1, 12);
      expect(r.downlinkBitsPerSec / rateFromDb(25, d)).toBeCloseTo(1, 12);
    }
  });

  it('device 1 of Table 1 gets about 1.72 Gbit/s up (SNR ~64.8 dB)', () => {
    const r = wirelessRates(cell, { uplinkPowerDbm: 20, distanceM: 1 });
    expect(r.uplinkBitsPerSec / 1e9).toBeCloseTo(1.721, 2);
    expect(r.downlinkBitsPerSec).toBeGreaterThan(r.uplinkBitsPerSec);
  });
});

describe('utilisation [8]-[9]', () => {
  const dev: DeviceProfile = {
    name: 'x',
    peakFlops: 165e12,
    utilA: 0.4,
    utilB: 5.1e-4,
    readBytesPerSec: 1,
    memoryBytes: 1,
    uplinkBitsPerSec: 1,
    downlinkBitsPerSec: 1,
  };
  it('U(t) = a (1 - e^(-b t)), c = c* U', () => {
    expect(utilisation(dev, 0)).toBe(0);
    expect(utilisation(dev, 1e9)).toBeCloseTo(0.4, 12);
    expect(utilisation(dev, 1 / 5.1e-4)).toBeCloseTo(0.4 * (1 - 1 / Math.E), 12);
    expect(effectiveFlops(dev, 256)).toBeCloseTo(165e12 * 0.4 * (1 - Math.exp(-5.1e-4 * 256)), -3);
  });
  it('rejects a bad device naming it and the field', () => {
    expect(() => checkDevice({ ...dev, readBytesPerSec: 0 }, 3)).toThrow(/devices\[3\] \(x\)\.readBytesPerSec/);
    expect(() => checkDevice({ ...dev, utilA: 1.5 }, 0)).toThrow(/utilA/);
  });
});
