/**
 * Rotary position embedding tables, computed once in fp64 and rounded to fp32, so that every backend
 * (including WebGPU, where Sin/Cos nodes drift ~5e-4) sees identical angles. Pure.
 *
 * Layout matches com.microsoft.RotaryEmbedding / GroupQueryAttention caches (non-interleaved, "rotate half"):
 *   cos[p, i] = cos(p * invFreq[i]), sin[p, i] = sin(p * invFreq[i]),  p in 0..maxPositions-1, i in 0..D/2-1.
 */
import { TandemError } from '../core/errors.ts';
import type { ModelConfigJson } from './manifest.ts';
import { headDim } from './manifest.ts';

export interface RopeTables {
  maxPositions: number;
  half: number; // D/2 columns
  cos: Float32Array; // (maxPositions, half)
  sin: Float32Array; // (maxPositions, half)
}

interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/** Inverse frequencies (radians per position) for each pair of rotary dimensions, with HF rope_scaling applied. */
export function ropeInverseFrequencies(config: ModelConfigJson): Float64Array {
  const dim = headDim(config);
  const base = config.rope_theta;
  const inv = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = 1 / Math.pow(base, (2 * i) / dim);

  const rawScaling: unknown = config.rope_scaling ?? null;
  const scaling = rawScaling as RopeScaling | null;
  const kind = scaling?.rope_type ?? scaling?.type ?? 'default';
  switch (kind) {
    case 'default':
      return inv;
    case 'linear': {
      const factor = scaling?.factor ?? 1;
      return inv.map((f) => f / factor);
    }
    case 'llama3': {
      const factor = scaling?.factor ?? 8;
      const low = scaling?.low_freq_factor ?? 1;
      const high = scaling?.high_freq_factor ?? 4;
      const oldCtx = scaling?.original_max_position_embeddings ?? 8192;
      const lowWavelen = oldCtx / low;
      const highWavelen = oldCtx / high;
      return inv.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / factor;
        const smooth = (oldCtx / wavelen - low) / (high - low);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
    }
    default:
      throw new TandemError(
        'rope-unsupported',
        `config.rope_scaling type '${kind}' is not supported (supported: default, linear, llama3); remove it from config.json or use another model.`,
      );
  }
}

/** cos/sin tables for positions 0..maxPositions-1. */
export function ropeTables(config: ModelConfigJson, maxPositions: number): RopeTables {
  const inv = ropeInverseFrequencies(config);
  const half = inv.length;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i];
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { maxPositions, half, cos, sin };
}
