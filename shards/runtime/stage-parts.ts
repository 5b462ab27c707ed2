/**
 * A stage loaded in parts: consecutive slices of its units (embedding, layers, head), each its own ONNX
 * Runtime session, run one after the other on each step. onnxruntime-web creates a session only once all
 * of its weights are in memory, so a stage of one session reads everything, then creates; in parts, part
 * k's session is created while the units of part k+1 are still being read (ort-session.ts), and the load
 * takes about max(read, create) instead of read + create where the device has a second core for the
 * reads. The price is one more session run per part on every step (~0.05 ms on wasm, measured in Node).
 *
 * Pure: no I/O. The parts are cut at unit boundaries, about equal in bytes.
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
  const total = bytes.reduce((a, b) => a + b, 0);
  const maxParts = Math.max(1, Math.floor(policy.maxParts));
  const n = Math.min(items.length, maxParts, Math.max(1, Math.floor(total / Math.max(1, policy.minPartBytes))));
  if (n <= 1) return [spec];
  // cut where the running byte count first reaches k/n of the total (each part keeps at least one unit)
  const cuts: number[] = [];
  let sum = 0;
  for (let i = 0; i < items.length - 1 && cuts.length < n - 1; i++) {
    sum += bytes[i];
    const k = cuts.length + 1;
    const unitsLeft = items.length - (i + 1);
    const partsLeft = n - k;
    if (sum >= (k * total) / n || unitsLeft === partsLeft) cuts.push(i + 1);
  }
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
