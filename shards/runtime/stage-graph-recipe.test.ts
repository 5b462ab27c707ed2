import { describe, expect, it } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import { buildStageGraph } from '../stage-graph.ts';
import { testPackage } from '../stage-test-packages.ts';
import { prebuildStageGraph, stageModelBytes, stagePartModel, type StageGraphRecipe } from './stage-graph-recipe.ts';

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

describe('prebuildStageGraph', () => {
  it("keeps the graph it builds for the stage's session (and each part's), and builds anew for anything else", async () => {
    const pkg = await testPackage('qwen3', false, 'fp32');
    const manifest = pkg.reader.manifest;
    const options = { backend: 'wasm' as const, maxPositions: 64 };
    const spec = { layers: { start: 0, end: 2 }, embeds: true, hasHead: false };
    const part = { layers: { start: 1, end: 2 }, embeds: false, hasHead: false };
    const recipe: StageGraphRecipe = { kind: 'stage-graph', manifest, spec, options };
    const files = buildStageGraph(manifest, spec, options).externalData.map((e) => e.path);
    prebuildStageGraph(recipe, [part]);
    // the session's request arrives as a structured clone of the same recipe: the kept bytes, not a new build
    const first = stageModelBytes(structuredClone(recipe), files);
    expect(stageModelBytes(structuredClone(recipe), files)).toBe(first);
    expect(stagePartModel(structuredClone(recipe), part, files).model).toBe(stagePartModel(recipe, part, files).model);
    expect(Buffer.from(first).equals(Buffer.from(buildStageGraph(manifest, spec, options).model))).toBe(true);
    // another option (a longer RoPE table) is another graph
    const longer = stageModelBytes({ ...recipe, options: { ...options, maxPositions: 128 } }, files);
    expect(longer).not.toBe(first);
    expect(Buffer.from(longer).equals(Buffer.from(first))).toBe(false);
  });
});
