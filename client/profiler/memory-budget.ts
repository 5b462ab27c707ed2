/**
 * Memory budget (pure): how many bytes of weights + activations the planner may give this page.
 * Takes what the browser tells (navigator.deviceMemory, storage quota, WebGPU maxBufferSize, the user
 * agent) and applies the hard caps phones have. The smallest candidate wins; every candidate is kept so
 * the page can show WHY the budget is what it is.
 */

const GiB = 1024 ** 3;

/** An iOS / iPadOS tab is killed around 1.5 GB; leave room for the page itself. */
export const IOS_TAB_CAP_BYTES = 1.2 * GiB;
/** wasm32 linear memory is at most 4 GiB; ORT's wasm heap also holds the graph and scratch space. */
export const WASM_HEAP_CAP_BYTES = 3.5 * GiB;
/** Used when the browser reports nothing about memory. */
export const UNKNOWN_DEVICE_BYTES = 2 * GiB;

export interface MemoryInputs {
  /** navigator.deviceMemory, GiB (Chromium rounds and caps it at 8), null when absent. */
  deviceMemoryGiB: number | null;
  /** navigator.storage.estimate(): quota and usage, bytes; null when absent. */
  storageQuotaBytes: number | null;
  storageUsageBytes: number | null;
  /** The stage runs on this backend. */
  backend: 'webgpu' | 'wasm';
  /** GPUAdapter.limits.maxBufferSize, bytes (a per-buffer limit, reported, not a total). */
  gpuMaxBufferSize: number | null;
  userAgent: string;
  /** navigator.maxTouchPoints (iPadOS reports a desktop UA but has touch points). */
  maxTouchPoints: number;
  /** ?emulate= memory cap, bytes. */
  emulatedCapBytes: number | null;
}

export interface MemoryCandidate {
  source: string;
  bytes: number;
}

export interface MemoryBudget {
  bytes: number;
  limitedBy: string;
  candidates: MemoryCandidate[];
  /** Per-buffer limit the stage's largest tensor must fit in (WebGPU), bytes; null on wasm. */
  maxBufferBytes: number | null;
  deviceClass: 'ios' | 'android' | 'desktop';
}

export function deviceClass(userAgent: string, maxTouchPoints: number): 'ios' | 'android' | 'desktop' {
  if (/iPhone|iPad|iPod/.test(userAgent)) return 'ios';
  // iPadOS 13+ claims to be a Mac; only touch points give it away
  if (/Macintosh/.test(userAgent) && maxTouchPoints > 1) return 'ios';
  if (/Android/.test(userAgent)) return 'android';
  return 'desktop';
}

export function memoryBudget(inputs: MemoryInputs): MemoryBudget {
  const cls = deviceClass(inputs.userAgent, inputs.maxTouchPoints);
  const candidates: MemoryCandidate[] = [];
  if (inputs.deviceMemoryGiB !== null && inputs.deviceMemoryGiB > 0) {
    // a tab can count on about half of the device's RAM on a desktop, less on a phone
    const share = cls === 'desktop' ? 0.5 : 0.35;
    candidates.push({
      source: `${share * 100}% of navigator.deviceMemory (${inputs.deviceMemoryGiB} GiB)`,
      bytes: inputs.deviceMemoryGiB * GiB * share,
    });
  } else {
    candidates.push({ source: 'device memory unknown: default', bytes: UNKNOWN_DEVICE_BYTES });
  }
  if (cls === 'ios') candidates.push({ source: 'iOS tab limit', bytes: IOS_TAB_CAP_BYTES });
  if (inputs.backend === 'wasm') candidates.push({ source: 'wasm32 heap limit', bytes: WASM_HEAP_CAP_BYTES });
  if (inputs.storageQuotaBytes !== null) {
    // the stage's layers must also fit in IndexedDB
    const free = Math.max(0, inputs.storageQuotaBytes - (inputs.storageUsageBytes ?? 0));
    candidates.push({ source: 'free storage quota', bytes: free });
  }
  if (inputs.emulatedCapBytes !== null) candidates.push({ source: 'emulated cap', bytes: inputs.emulatedCapBytes });
  let best = candidates[0];
  for (const c of candidates) if (c.bytes < best.bytes) best = c;
  return {
    bytes: Math.floor(best.bytes),
    limitedBy: best.source,
    candidates,
    maxBufferBytes: inputs.backend === 'webgpu' ? inputs.gpuMaxBufferSize : null,
    deviceClass: cls,
  };
}
