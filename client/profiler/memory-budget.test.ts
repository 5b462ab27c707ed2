import { describe, expect, it } from 'vitest';
import {
  deviceClass,
  IOS_TAB_CAP_BYTES,
  memoryBudget,
  UNKNOWN_DEVICE_BYTES,
  WASM_HEAP_CAP_BYTES,
  type MemoryInputs,
} from './memory-budget.ts';

const GiB = 1024 ** 3;
const DESKTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36';
const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1';
const IPAD_UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15';
const ANDROID_UA =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile Safari/537.36';

const base: MemoryInputs = {
  deviceMemoryGiB: 8,
  storageQuotaBytes: 100 * GiB,
  storageUsageBytes: 0,
  backend: 'webgpu',
  gpuMaxBufferSize: GiB,
  userAgent: DESKTOP_UA,
  maxTouchPoints: 0,
  emulatedCapBytes: null,
};

describe('deviceClass', () => {
  it('tells iPhone, iPad (desktop UA + touch), Android and desktop apart', () => {
    expect(deviceClass(IPHONE_UA, 5)).toBe('ios');
    expect(deviceClass(IPAD_UA, 5)).toBe('ios');
    expect(deviceClass(IPAD_UA, 0)).toBe('desktop');
    expect(deviceClass(ANDROID_UA, 5)).toBe('android');
    expect(deviceClass(DESKTOP_UA, 0)).toBe('desktop');
  });
});

describe('memoryBudget', () => {
  it('gives a desktop half its RAM', () => {
    const b = memoryBudget(base);
    expect(b.bytes).toBe(4 * GiB);
    expect(b.limitedBy).toMatch(/deviceMemory/);
    expect(b.maxBufferBytes).toBe(GiB);
  });

  it('caps iOS tabs whatever the device reports', () => {
    const b = memoryBudget({ ...base, userAgent: IPHONE_UA, maxTouchPoints: 5, deviceMemoryGiB: null });
    expect(b.bytes).toBe(Math.floor(IOS_TAB_CAP_BYTES));
    expect(b.limitedBy).toBe('iOS tab limit');
  });

  it('gives a phone a smaller share', () => {
    expect(memoryBudget({ ...base, userAgent: ANDROID_UA, deviceMemoryGiB: 8 }).bytes).toBe(Math.floor(8 * GiB * 0.35));
  });

  it('applies the wasm heap limit, the free quota and the emulated cap, smallest wins', () => {
    const wasm = memoryBudget({ ...base, deviceMemoryGiB: 16, backend: 'wasm' });
    expect(wasm.bytes).toBe(Math.floor(WASM_HEAP_CAP_BYTES));
    expect(wasm.maxBufferBytes).toBeNull();
    const quota = memoryBudget({ ...base, storageQuotaBytes: 3 * GiB, storageUsageBytes: 2.5 * GiB });
    expect(quota.bytes).toBe(0.5 * GiB);
    expect(quota.limitedBy).toBe('free storage quota');
    const emulated = memoryBudget({ ...base, emulatedCapBytes: 1.5 * GiB });
    expect(emulated.bytes).toBe(1.5 * GiB);
    expect(emulated.limitedBy).toBe('emulated cap');
    expect(emulated.candidates.length).toBe(3);
  });

  it('falls back to a default when nothing is known', () => {
    const b = memoryBudget({ ...base, deviceMemoryGiB: null, storageQuotaBytes: null, storageUsageBytes: null });
    expect(b.bytes).toBe(UNKNOWN_DEVICE_BYTES);
  });
});
