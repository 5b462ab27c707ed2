/**
 * A package's manifest with a smaller vocabulary (pure): the embedding and head units keep their tensors,
 * names and order, with every vocabulary-sized dimension (the embedding's rows, the head's columns) cut to
 * `vocab` and the offsets laid out again. The stage graph built from it has the real stage's operators (Gather, the final norm, the
 * head MatMul) at a size whose zero weights cost kilobytes instead of the full table: the kernel warm-up
 * (client/runtime/stage-warmup.ts) runs the first and last stages' own code paths on it.
 */
import { TandemError } from '../core/errors.ts';
import { TENSOR_ALIGNMENT, tensorByteLength, type ModelManifest, type UnitEntry } from './manifest.ts';

export function narrowVocabulary(manifest: ModelManifest, vocab: number): ModelManifest {
  const V = manifest.config.vocab_size;
  if (!Number.isInteger(vocab) || vocab < 1 || vocab > V)
    throw new TandemError('range-invalid', `A narrowed vocabulary needs 1..${V} rows, not ${vocab}.`);
  const narrowUnit = (unit: UnitEntry): UnitEntry => {
    if (unit.kind === 'layer') return unit;
    let offset = 0;
    const tensors = unit.tensors.map((t) => {
      const shape = t.shape.map((d) => (d === V ? vocab : d));
      offset = Math.ceil(offset / TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT;
      const entry = { ...t, shape, offset, length: tensorByteLength(t.dtype, shape) };
      offset += entry.length;
      return entry;
    });
    // the hash no longer describes these bytes: nothing may verify or cache a narrowed unit
    return { ...unit, bytes: offset, sha256: '', tensors };
  };
  return { ...manifest, config: { ...manifest.config, vocab_size: vocab }, units: manifest.units.map(narrowUnit) };
}
