/**
 * A stage loaded in parts: consecutive slices of its units (embedding, layers, head), each its own ONNX
 * Runtime session, run one after the other on each step. onnxruntime-web creates a session only once all
 * of its weights are in memory, so a stage of one session reads everything, then creates; in parts, part
 * k's session is created while the units of part k+1 are still being read (ort-session.ts), and the load
 * takes about max(read, create) instead of read + create where the device has a second core for the
 * reads. The price is one more session run per part on every step (~0.05 ms on wasm, measured in Node).
 *
 * Pure: no I/O. The parts are cut at unit boundaries: each holds about an equal share of the bytes, and at
 * least `minPartBytes` (partCuts).
 */
import type { ModelManifest } from '../manifest.ts';
import { unitsForRange } from '../manifest.ts';
import type { StageSpec } from '../stage-graph.ts';

export interface LoadPartsPolicy {
  /** a part holds at least this many bytes of units (fewer parts rather than small ones) */
  minPartBytes: number;
  /** at most this many parts, so at most this many runs per step */
  maxParts: number;
}

/** Parts of at least 8 MiB, at most 4: each part's overlap is worth more than its extra run per step. */
export const DEFAULT_LOAD_PARTS: LoadPartsPolicy = { minPartBytes: 8 << 20, maxParts: 4 };

/** One unit of a stage, as the split sees it: the embedding, one layer or the head. */
type Item = { kind: 'embed' } | { kind: 'layer'; layer: number } | { kind: 'head' };

/**
 * The parts of `spec` under `policy`, in run order: together they hold exactly the stage's units; the first
 * embeds when the stage does, the last has the head when the stage does. One part (the stage itself) when
 * the stage is too small to split.
 */
export function stageLoadParts(manifest: ModelManifest, spec: StageSpec, policy: LoadPartsPolicy): StageSpec[] {
  const units = unitsForRange(manifest, spec.layers, spec.embeds, spec.hasHead);
  const items: Item[] = [
    ...(spec.embeds ? [{ kind: 'embed' } as const] : []),
    ...Array.from({ length: spec.layers.end - spec.layers.start }, (_, i) => ({
      kind: 'layer' as const,
      layer: spec.layers.start + i,
    })),
    ...(spec.hasHead ? [{ kind: 'head' } as const] : []),
  ];
  const bytes = units.map((u) => u.bytes);
  const cuts = partCuts(bytes, policy);
  if (cuts.length === 0) return [spec];
  const bounds = [0, ...cuts, items.length];
  const parts: StageSpec[] = [];
  for (let p = 0; p + 1 < bounds.length; p++) {
    const slice = items.slice(bounds[p], bounds[p + 1]);
    const layers = slice.flatMap((it) => (it.kind === 'layer' ? [it.layer] : []));
    // a part without layers sits at the stage's edge: before all of them (embedding) or after (head)
    const start = layers.length > 0 ? layers[0] : slice[0].kind === 'embed' ? spec.layers.start : spec.layers.end;
    parts.push({
      layers: { start, end: layers.length > 0 ? layers[layers.length - 1] + 1 : start },
      embeds: slice[0].kind === 'embed',
      hasHead: slice[slice.length - 1].kind === 'head',
    });
  }
  return parts;
}

/**
 * Where to cut units of `bytes` into parts: as many parts as the policy allows (n), each cut at the unit
 * boundary nearest an n-th of the bytes; with one part under minPartBytes, one part fewer. The nearest
 * boundary to the half makes the largest smaller half, so a stage splits whenever any two parts of at least
 * minPartBytes could hold it.
 */
function partCuts(bytes: readonly number[], policy: LoadPartsPolicy): number[] {
  const total = bytes.reduce((a, b) => a + b, 0);
  const prefix = [0];
  for (const b of bytes) prefix.push(prefix[prefix.length - 1] + b);
  const most = Math.min(Math.max(1, Math.floor(policy.maxParts)), bytes.length);
  for (let n = Math.min(most, Math.max(1, Math.floor(total / Math.max(1, policy.minPartBytes)))); n > 1; n--) {
    const cuts: number[] = [];
    for (let k = 1; k < n; k++) {
      // boundaries 1..len-1, after the previous cut, leaving a unit for each part still to come
      const lo = (cuts.at(-1) ?? 0) + 1;
      const hi = bytes.length - (n - k);
      let best = lo;
      for (let c = lo; c <= hi; c++)
        if (Math.abs(prefix[c] - (k * total) / n) < Math.abs(prefix[best] - (k * total) / n)) best = c;
      cuts.push(best);
    }
    const bounds = [0, ...cuts, bytes.length];
    if (bounds.slice(1).every((b, p) => prefix[b] - prefix[bounds[p]] >= policy.minPartBytes)) return cuts;
  }
  return [];
}
