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

/** The ModelProto bytes of `model`: as given, or built from the recipe and checked against `unitFiles`. */
export function stageModelBytes(model: Uint8Array | StageGraphRecipe, unitFiles: readonly string[]): Uint8Array {
  if (model instanceof Uint8Array) return model;
  const graph = buildStageGraph(model.manifest, model.spec, model.options);
  const missing = graph.externalData.find((e, i) => unitFiles[i] !== e.path);
  if (missing || graph.externalData.length !== unitFiles.length)
    throw new TandemError(
      'manifest-invalid',
      `The stage graph needs unit file '${missing?.path ?? '?'}', which is not among the stage's units; re-convert the package.`,
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
  const graph = buildStageGraph(recipe.manifest, part, recipe.options);
  const files = graph.externalData.map((e) => e.path);
  const missing = files.find((f) => !unitFiles.includes(f));
  if (missing !== undefined)
    throw new TandemError(
      'manifest-invalid',
      `The stage graph needs unit file '${missing}', which is not among the stage's units; re-convert the package.`,
    );
  return { model: graph.model, files };
}
