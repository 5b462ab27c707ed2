/**
 * A stage's ONNX graph as a recipe (the manifest, the stage and the graph options) instead of its bytes:
 * the runtime builds it where the session is created. In a page that is the inference worker, so encoding
 * the ModelProto (tens of ms of CPU and garbage per cold start) stays off the main thread. The recipe is
 * plain data (structured-cloneable), and the graph it builds must name exactly the request's unit files.
 */
import { TandemError } from '../../core/errors.ts';
import type { ModelManifest } from '../manifest.ts';
import { buildStageGraph, type StageGraphOptions, type StageSpec } from '../stage-graph.ts';

export interface StageGraphRecipe {
  kind: 'stage-graph';
  manifest: ModelManifest;
  spec: StageSpec;
  options: StageGraphOptions;
}

/**
 * Graphs built on this thread, newest last: a stage builds its graph when it is prepared
 * (`prebuildStageGraph`), so that its cold start does not encode it again. A graph depends on the
 * manifest's config and units, the stage and the options only: never on the weights.
 */
const built = new Map<string, { model: Uint8Array; files: string[] }>();
const BUILT_KEPT = 4;

function graphOf(
  manifest: ModelManifest,
  spec: StageSpec,
  options: StageGraphOptions,
): { model: Uint8Array; files: string[] } {
  const key = JSON.stringify([manifest.name, manifest.dtype, manifest.config, manifest.units, spec, options]);
  const hit = built.get(key);
  if (hit) {
    built.delete(key); // most recently used last
    built.set(key, hit);
    return hit;
  }
  const graph = buildStageGraph(manifest, spec, options);
  const entry = { model: graph.model, files: graph.externalData.map((e) => e.path) };
  built.set(key, entry);
  if (built.size > BUILT_KEPT) built.delete(built.keys().next().value!);
  return entry;
}

/** Builds the recipe's graph now (and each part's, for a stage loaded in `parts`), for its cold start to find. */
export function prebuildStageGraph(recipe: StageGraphRecipe, parts: readonly StageSpec[] = []): void {
  graphOf(recipe.manifest, recipe.spec, recipe.options);
  for (const part of parts) graphOf(recipe.manifest, part, recipe.options);
}

/** The ModelProto bytes of `model`: as given, or built from the recipe and checked against `unitFiles`. */
export function stageModelBytes(model: Uint8Array | StageGraphRecipe, unitFiles: readonly string[]): Uint8Array {
  if (model instanceof Uint8Array) return model;
  const graph = graphOf(model.manifest, model.spec, model.options);
  const missing = graph.files.find((f, i) => unitFiles[i] !== f);
  if (missing !== undefined || graph.files.length !== unitFiles.length)
    throw new TandemError(
      'manifest-invalid',
      `The stage graph needs unit file '${missing ?? '?'}', which is not among the stage's units; re-convert the package.`,
    );
  return graph.model;
}

/**
 * One part of a recipe's stage (stage-parts.ts): its ModelProto bytes and the unit files its graph reads,
 * in the graph's order; every one of them must be among the request's `unitFiles`.
 */
export function stagePartModel(
  recipe: StageGraphRecipe,
  part: StageSpec,
  unitFiles: readonly string[],
): { model: Uint8Array; files: string[] } {
  const { model, files } = graphOf(recipe.manifest, part, recipe.options);
  const missing = files.find((f) => !unitFiles.includes(f));
  if (missing !== undefined)
    throw new TandemError(
      'manifest-invalid',
      `The stage graph needs unit file '${missing}', which is not among the stage's units; re-convert the package.`,
    );
  return { model, files: [...files] };
}
