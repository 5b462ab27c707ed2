import { describe, expect, it } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import { buildStageGraph } from '../stage-graph.ts';
import { testPackage } from '../stage-test-packages.ts';
import { stageModelBytes, type StageGraphRecipe } from './stage-graph-recipe.ts';

describe('stageModelBytes', () => {
  it("builds a recipe's graph as buildStageGraph does, and passes bytes through", async () => {
    const pkg = await testPackage('qwen3', false, 'fp32');
    const manifest = pkg.reader.manifest;
    const spec = { layers: { start: 1, end: 2 }, embeds: false, hasHead: true };
    const options = { backend: 'wasm' as const, maxPositions: 64 };
    const direct = buildStageGraph(manifest, spec, options);
    const recipe: StageGraphRecipe = { kind: 'stage-graph', manifest, spec, options };
    // the recipe crosses to the worker by structured clone: build from a clone
    const built = stageModelBytes(
      structuredClone(recipe),
      direct.externalData.map((e) => e.path),
    );
    expect(Buffer.from(built).equals(Buffer.from(direct.model))).toBe(true);
    expect(stageModelBytes(direct.model, [])).toBe(direct.model);
  });

  it("refuses a graph whose unit files are not the request's (manifest-invalid)", async () => {
    const pkg = await testPackage('qwen3', false, 'fp32');
    const recipe: StageGraphRecipe = {
      kind: 'stage-graph',
      manifest: pkg.reader.manifest,
      spec: { layers: { start: 0, end: 2 }, embeds: true, hasHead: false },
      options: { backend: 'wasm', maxPositions: 64 },
    };
    const files = buildStageGraph(recipe.manifest, recipe.spec, recipe.options).externalData.map((e) => e.path);
    for (const wrong of [files.slice(1), [...files.slice(0, -1), 'other.bin'], [...files, 'extra.bin']]) {
      let caught: unknown;
      try {
        stageModelBytes(recipe, wrong);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(TandemError);
      expect((caught as TandemError).code).toBe('manifest-invalid');
    }
  });
});
