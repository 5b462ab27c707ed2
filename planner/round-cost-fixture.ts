/**
 * A tiny model whose per-layer costs are round at t = 8 (P = 81920 bytes, W = 671744 FLOP, A = 1024 bytes),
 * and devices given in seconds per layer, so that tests can work timelines out by hand.
 */
import type { DeviceProfile, ModelConfig } from './types.ts';

export const ROUND_MODEL: ModelConfig = {
  num_hidden_layers: 4,
  hidden_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  head_dim: 16,
  intermediate_size: 128,
  vocab_size: 10,
  bytesPerParam: 2,
};

/** Per-layer costs of ROUND_MODEL at t = 8: bytes (P), FLOP (W), activation bytes (A). */
export const ROUND_P = 81920;
export const ROUND_W = 671744;
export const ROUND_A = 1024;

/** A device that loads a layer in `secPerLayerLoad` s and computes one in `secPerLayerComp` s (U(t) = 1). */
export function roundDevice(
  name: string,
  secPerLayerLoad: number,
  secPerLayerComp: number,
  up: number,
  down: number,
  extra: Partial<DeviceProfile> = {},
): DeviceProfile {
  return {
    name,
    peakFlops: ROUND_W / secPerLayerComp,
    utilA: 1,
    utilB: 100, // utilB huge so U(t) = a = 1: effective FLOP/s = peak
    readBytesPerSec: ROUND_P / secPerLayerLoad,
    memoryBytes: 1e12,
    uplinkBitsPerSec: up,
    downlinkBitsPerSec: down,
    ...extra,
  };
}

/**
 * A page for repair and spare tests: reads a layer in 0.25 s, computes one in `secPerLayerComp` s, has
 * 1 Gbit/s links both ways and downloads a layer in 2 s.
 */
export function roundPage(name: string, memoryBytes = 1e12, secPerLayerComp = 0.5): DeviceProfile {
  return roundDevice(name, 0.25, secPerLayerComp, 1e9, 1e9, { memoryBytes, downloadBytesPerSec: ROUND_P / 2 });
}
