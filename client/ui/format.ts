/** Human-readable figures for the page (pure). Units in: SI. */

export function formatFlops(flops: number): string {
  if (!Number.isFinite(flops)) return '–';
  if (flops >= 1e12) return `${(flops / 1e12).toFixed(2)} TFLOP/s`;
  if (flops >= 1e9) return `${(flops / 1e9).toFixed(2)} GFLOP/s`;
  return `${(flops / 1e6).toFixed(1)} MFLOP/s`;
}

/** Bytes with binary prefixes (MiB shown as "MB", as the paper does). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KB`;
  return `${Math.round(bytes)} B`;
}

export function formatBytesPerSec(bps: number): string {
  return `${formatBytes(bps)}/s`;
}

export function formatBits(bitsPerSec: number): string {
  if (!Number.isFinite(bitsPerSec)) return '–';
  if (bitsPerSec >= 1e9) return `${(bitsPerSec / 1e9).toFixed(2)} Gbit/s`;
  return `${(bitsPerSec / 1e6).toFixed(1)} Mbit/s`;
}

/** A 0-based half-open layer range as people read it: 1-based inclusive. */
export function formatLayers(range: { start: number; end: number }): string {
  return range.end - range.start === 1 ? `layer ${range.start + 1}` : `layers ${range.start + 1}–${range.end}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0)} ms`;
  return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
}
