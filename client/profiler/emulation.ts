/**
 * Device emulation for heterogeneous runs on one machine (`?emulate=<json or preset>`).
 *
 * Emulation changes what is MEASURED, never the reported numbers directly: the compute slow-down
 * stretches every timed matmul (sleeping (factor - 1) x the measured time inside the timed region), the
 * read cap stretches every timed storage read to at least bytes / cap, the link cap stretches probe
 * transfers the same way, and the memory cap bounds the memory budget. The planner then receives what
 * the page measured under emulation. Everything emulated is labelled so in the page and in reports.
 *
 * Pure: parsing and the stretch arithmetic only; the sleeping happens at the call sites.
 */
import { TandemError } from '../../core/errors.ts';

const MiB = 1024 * 1024;

export interface Emulation {
  /** Human label shown beside every emulated figure, e.g. 'phone' or 'custom'. */
  label: string;
  /** Measured compute time is multiplied by this factor (>= 1). */
  computeSlowdown: number;
  /** Storage reads are stretched so that they run no faster than this, bytes/s. */
  readBytesPerSecCap?: number;
  /** Link probes are stretched so that they run no faster than this, bit/s (both directions). */
  linkBitsPerSecCap?: number;
  /** The memory budget is capped to this many bytes. */
  memoryBytesCap?: number;
}

/** The JSON accepted by `?emulate=`: user units (MB/s = MiB/s, MB = MiB, Mbit/s = 10^6 bit/s). */
interface EmulationJson {
  label?: string;
  compute?: number;
  readMBps?: number;
  linkMbps?: number;
  memoryMB?: number;
}

/**
 * Presets. `paper-1` .. `paper-4` are shaped like the CSGO paper's four devices (Table 1): compute
 * slow-downs in the ratio of their peak TFLOPS (165 : 70 : 30 : 20) and read caps in the ratio of
 * their read speeds (5000 : 4000 : 3000 : 2000 MB/s) scaled by 1/10 so that a laptop's IndexedDB can
 * honour them.
 */
export const EMULATION_PRESETS: Readonly<Record<string, EmulationJson>> = {
  laptop: { compute: 1 },
  tablet: { compute: 2, readMBps: 300, memoryMB: 3072 },
  phone: { compute: 4, readMBps: 150, linkMbps: 200, memoryMB: 1536 },
  'old-phone': { compute: 8, readMBps: 60, linkMbps: 50, memoryMB: 1024 },
  'paper-1': { compute: 1, readMBps: 500 },
  'paper-2': { compute: 165 / 70, readMBps: 400 },
  'paper-3': { compute: 165 / 30, readMBps: 300 },
  'paper-4': { compute: 165 / 20, readMBps: 200 },
};

function positive(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TandemError(
      'emulation-invalid',
      `?emulate= field "${field}" must be a positive number, got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/** Parses `?emulate=`: a preset name or a JSON object; null/empty means no emulation. */
export function parseEmulation(raw: string | null | undefined): Emulation | null {
  if (raw === null || raw === undefined || raw.trim() === '') return null;
  const text = raw.trim();
  let json: EmulationJson;
  let label: string;
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new TandemError(
        'emulation-invalid',
        `?emulate= is not valid JSON (${String(cause)}); give a preset (${Object.keys(EMULATION_PRESETS).join(', ')}) or e.g. {"compute":4,"readMBps":150}.`,
        { cause },
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TandemError(
        'emulation-invalid',
        '?emulate= JSON must be an object such as {"compute":4,"readMBps":150}.',
      );
    }
    const known = new Set(['label', 'compute', 'readMBps', 'linkMbps', 'memoryMB']);
    for (const key of Object.keys(parsed)) {
      if (!known.has(key))
        throw new TandemError(
          'emulation-invalid',
          `?emulate= has an unknown field "${key}"; known: ${[...known].join(', ')}.`,
        );
    }
    json = parsed;
    if (json.label !== undefined && typeof json.label !== 'string') {
      throw new TandemError('emulation-invalid', '?emulate= field "label" must be a string.');
    }
    // shown to others and sent with `join`: printable, at most 40 characters
    label =
      (json.label ?? '')
        .replace(/[\u0000-\u001f\u007f]/g, '')
        .trim()
        .slice(0, 40) || 'custom';
  } else {
    // own keys only: `toString` & co. are not presets
    const preset = Object.hasOwn(EMULATION_PRESETS, text) ? EMULATION_PRESETS[text] : undefined;
    if (!preset) {
      throw new TandemError(
        'emulation-invalid',
        `Unknown ?emulate= preset "${text}"; use one of ${Object.keys(EMULATION_PRESETS).join(', ')} or a JSON object.`,
      );
    }
    json = preset;
    label = text;
  }
  const compute = positive(json.compute, 'compute') ?? 1;
  if (compute < 1)
    throw new TandemError(
      'emulation-invalid',
      `?emulate= "compute" is a slow-down factor and must be >= 1, got ${compute}.`,
    );
  const readMBps = positive(json.readMBps, 'readMBps');
  const linkMbps = positive(json.linkMbps, 'linkMbps');
  const memoryMB = positive(json.memoryMB, 'memoryMB');
  return {
    label,
    computeSlowdown: compute,
    readBytesPerSecCap: readMBps === undefined ? undefined : readMBps * MiB,
    linkBitsPerSecCap: linkMbps === undefined ? undefined : linkMbps * 1e6,
    memoryBytesCap: memoryMB === undefined ? undefined : memoryMB * MiB,
  };
}

/** Extra seconds to sleep after a compute region that took `measured` seconds. */
export function computeStretch(emulation: Emulation | null, measured: number): number {
  if (!emulation) return 0;
  return Math.max(0, (emulation.computeSlowdown - 1) * measured);
}

/** Extra seconds to sleep so that moving `bytes` in `measured` seconds respects a rate cap in bytes/s. */
export function rateStretch(capBytesPerSec: number | undefined, bytes: number, measured: number): number {
  if (capBytesPerSec === undefined) return 0;
  return Math.max(0, bytes / capBytesPerSec - measured);
}
