/**
 * Device model: utilisation vs. sequence length [8]-[9] and the wireless link model [10]-[12].
 * Pure: no I/O.
 */
import { TandemError } from '../core/errors.ts';
import type { DeviceProfile } from './types.ts';

/** U_k(t) = a_k (1 - exp(-b_k t)), the fraction of peak compute reached at sequence length t [8]. */
export function utilisation(device: DeviceProfile, t: number): number {
  return device.utilA * (1 - Math.exp(-device.utilB * t));
}

/** c_k = c*_k U_k(t), effective FLOP/s at sequence length t [9]. */
export function effectiveFlops(device: DeviceProfile, t: number): number {
  return device.peakFlops * utilisation(device, t);
}

/** Shared radio parameters of the access point's cell (paper Table 1, "shared"). */
export interface WirelessCell {
  mu: number; // spectral efficiency factor (0..1)
  bandwidthHz: number; // B
  downlinkPowerDbm: number; // P^d, the AP's transmit power
  noiseDbmPerHz: number; // N0
  refDistanceM: number; // d0
  pathLossExponent: number; // zeta
  beta0Db: number; // channel gain at d0, dB
}

/** One device's radio: its transmit power and its distance to the AP. */
export interface WirelessLink {
  uplinkPowerDbm: number; // P^u_k
  distanceM: number; // d_k
}

/** dBm -> watts. */
export function dbmToWatts(dbm: number): number {
  return 10 ** (dbm / 10) / 1000;
}

/** Uplink and downlink rates in bit/s from the wireless model [10]-[12]. */
export function wirelessRates(
  cell: WirelessCell,
  link: WirelessLink,
): { uplinkBitsPerSec: number; downlinkBitsPerSec: number } {
  const gain = 10 ** (cell.beta0Db / 10) * (link.distanceM / cell.refDistanceM) ** -cell.pathLossExponent; // [12]
  const noiseW = dbmToWatts(cell.noiseDbmPerHz) * cell.bandwidthHz; // N0 B
  const rate = (powerDbm: number) => cell.mu * cell.bandwidthHz * Math.log2(1 + (dbmToWatts(powerDbm) * gain) / noiseW);
  return {
    uplinkBitsPerSec: rate(link.uplinkPowerDbm), // [10]
    downlinkBitsPerSec: rate(cell.downlinkPowerDbm), // [11]
  };
}

/** Throws TandemError('device-invalid') naming the device and the first bad field. */
export function checkDevice(device: DeviceProfile, index: number): void {
  const where = `devices[${index}] (${device.name})`;
  const positive: (keyof DeviceProfile)[] = [
    'peakFlops',
    'utilA',
    'utilB',
    'readBytesPerSec',
    'uplinkBitsPerSec',
    'downlinkBitsPerSec',
  ];
  for (const key of positive) {
    const v = device[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new TandemError('device-invalid', `${where}.${key} must be a positive finite number, got ${String(v)}`);
    }
  }
  if (device.utilA > 1) {
    throw new TandemError('device-invalid', `${where}.utilA must be in (0, 1], got ${device.utilA}`);
  }
  const scale = device.extrasMemoryScale;
  if (scale !== undefined && (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0))
    throw new TandemError(
      'device-invalid',
      `${where}.extrasMemoryScale must be a positive finite number (or absent), got ${String(scale)}`,
    );
  const optionalPositive: (keyof DeviceProfile)[] = ['sessionCreateBytesPerSec', 'downloadBytesPerSec'];
  for (const key of optionalPositive) {
    const v = device[key];
    if (v !== undefined && (typeof v !== 'number' || !(v > 0))) {
      throw new TandemError(
        'device-invalid',
        `${where}.${key} must be a positive number (or absent), got ${String(v)}`,
      );
    }
  }
  const optionalSeconds: (keyof DeviceProfile)[] = ['sessionCreateFixedSec', 'warmupSec', 'linkLatencySec'];
  for (const key of optionalSeconds) {
    const v = device[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new TandemError(
        'device-invalid',
        `${where}.${key} must be a non-negative number of seconds (or absent), got ${String(v)}`,
      );
    }
  }
  if (typeof device.memoryBytes !== 'number' || Number.isNaN(device.memoryBytes) || device.memoryBytes < 0) {
    throw new TandemError(
      'device-invalid',
      `${where}.memoryBytes must be a non-negative number, got ${String(device.memoryBytes)}`,
    );
  }
}
