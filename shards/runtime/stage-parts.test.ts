/**
 * A stage loaded in parts (stage-parts.ts, ort-session.ts): the parts hold exactly the stage's units in
 * order; a parted session computes what one session does (the fp64 reference's greedy tokens, the same
 * logits), on onnxruntime-web wasm and onnxruntime-node; and a part's session is created before the later
 * parts' units are read.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { unitsForRange, type ModelManifest } from '../manifest.ts';
import { ReferenceModel } from '../reference-forward.ts';
import { buildStageGraph, type StageSpec } from '../stage-graph.ts';
import { removeTestPackages, testPackage } from '../stage-test-packages.ts';
import { createNodeRuntime, type NodeBackend } from './ort-node.ts';
import { openOrtStageSession, type OrtBinding, type OrtSessionLike, type OrtTensorLike } from './ort-session.ts';
import { stageLoadParts, type LoadPartsPolicy } from './stage-parts.ts';
import type { HostTensor, SessionRequest } from './stage-runtime.ts';
import { StageStepper } from './stage-stepper.ts';

afterAll(removeTestPackages);

const PROMPT = [11, 200, 37, 5, 380, 91, 64, 2];

const unitIds = (m: ModelManifest, s: StageSpec) => unitsForRange(m, s.layers, s.embeds, s.hasHead).map((u) => u.id);

describe('stageLoadParts', () => {
  it('cuts every stage of a model into parts that hold exactly its units, in order, none smaller than the minimum', async () => {
    const m = (await testPackage('qwen3', false, 'fp32')).reader.manifest;
    const L = m.config.num_hidden_layers;
    const layerBytes = m.units[1].bytes;
    const bytesOf = (s: StageSpec) => unitsForRange(m, s.layers, s.embeds, s.hasHead).reduce((a, u) => a + u.bytes, 0);
    for (let start = 0; start < L; start++)
      for (let end = start; end <= L; end++)
        for (const embeds of [false, true])
          for (const hasHead of [false, true]) {
            const spec = { layers: { start, end }, embeds: embeds && start === 0, hasHead: hasHead && end === L };
            const ids = unitIds(m, spec);
            if (ids.length === 0) continue;
            for (const maxParts of [1, 2, 3, 8])
              for (const minPartBytes of [1, layerBytes, 2.5 * layerBytes, 1e12]) {
                const policy: LoadPartsPolicy = { minPartBytes, maxParts };
                const parts = stageLoadParts(m, spec, policy);
                const where = `${JSON.stringify(spec)} ${JSON.stringify(policy)}`;
                expect(
                  parts.flatMap((p) => unitIds(m, p)),
                  where,
                ).toEqual(ids);
                expect(parts.length, where).toBeLessThanOrEqual(Math.min(maxParts, ids.length));
                if (parts.length === 1) expect(parts[0], where).toEqual(spec);
                parts.forEach((p, k) => {
                  expect(unitIds(m, p).length, where).toBeGreaterThan(0);
                  if (parts.length > 1) expect(bytesOf(p), where).toBeGreaterThanOrEqual(minPartBytes);
                  expect(p.embeds, where).toBe(spec.embeds && k === 0);
                  expect(p.hasHead, where).toBe(spec.hasHead && k === parts.length - 1);
                });
                // split exactly when some cut leaves two parts of at least the minimum (brute force)
                const unitBytes = unitsForRange(m, spec.layers, spec.embeds, spec.hasHead).map((u) => u.bytes);
                const sumOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
                const splittable = unitBytes
                  .slice(1)
                  .some(
                    (_, c) =>
                      sumOf(unitBytes.slice(0, c + 1)) >= minPartBytes && sumOf(unitBytes.slice(c + 1)) >= minPartBytes,
                  );
                if (maxParts >= 2) expect(parts.length > 1, where).toBe(splittable);
              }
          }
  });

  it('cuts equal layers into about equal parts, and leaves a small remainder with the part before', async () => {
    const m = (await testPackage('qwen3', false, 'fp32')).reader.manifest;
    const layer = m.units[1].bytes;
    const sizes = (first: number, end: number, minPartBytes: number, maxParts: number) =>
      stageLoadParts(
        m,
        { layers: { start: first, end }, embeds: false, hasHead: false },
        { minPartBytes, maxParts },
      ).map((p) => p.layers.end - p.layers.start);
    expect(sizes(0, 4, 1, 2)).toEqual([2, 2]);
    expect(sizes(0, 4, 1, 4)).toEqual([1, 1, 1, 1]);
    expect(sizes(0, 4, 2 * layer, 4)).toEqual([2, 2]);
    // a third layer would make a part of one layer, under the minimum of two: it joins the part before
    expect(sizes(0, 3, 2 * layer, 4)).toEqual([3]);
    expect(sizes(0, 4, 3 * layer, 4)).toEqual([4]);
  });
});

for (const backend of ['wasm', 'node'] as NodeBackend[])
  describe(`a stage opened in parts (${backend})`, () => {
    it("gives the fp64 reference's greedy tokens and one session's logits", async () => {
      const pkg = await testPackage('qwen3', true, 'fp32');
      const m = pkg.reader.manifest;
      const L = m.config.num_hidden_layers;
      const spec: StageSpec = { layers: { start: 0, end: L }, embeds: true, hasHead: true };
      const graphOpts = { backend: backend === 'node' ? ('cpu' as const) : ('wasm' as const), maxPositions: 64 };
      const units = unitsForRange(m, spec.layers, true, true);
      const request = (loadParts?: LoadPartsPolicy): SessionRequest => ({
        model: { kind: 'stage-graph', manifest: m, spec, options: graphOpts },
        externalData: units.map((u) => ({ path: u.file, data: pkg.unitBytes(u).slice() })),
        config: {},
        backend,
        kvCache: { layers: Array.from({ length: L }, (_, i) => i), heads: m.config.num_key_value_heads, headDim: 16 },
        ...(loadParts ? { loadParts } : {}),
      });
      const runtime = createNodeRuntime(backend);
      const whole = await runtime.createSession(request());
      const parted = await runtime.createSession(request({ minPartBytes: 1, maxParts: 4 }));
      expect(stageLoadParts(m, spec, { minPartBytes: 1, maxParts: 4 })).toHaveLength(4);
      expect([whole.parts, parted.parts]).toEqual([1, 4]);
      expect(parted.inputNames).toEqual(whole.inputNames);
      expect(parted.outputNames).toEqual(whole.outputNames);
      const greedy = async (session: typeof whole) => {
        const stepper = new StageStepper(session, spec);
        const tokens: number[] = [];
        const logits: Float32Array[] = [];
        let ids = PROMPT;
        for (let i = 0; i < 5; i++) {
          const out = await stepper.step({
            dtype: 'int64',
            dims: [1, ids.length],
            data: BigInt64Array.from(ids, BigInt),
          });
          logits.push(out.data);
          const next = out.data.indexOf(Math.max(...out.data));
          tokens.push(next);
          ids = [next];
        }
        return { tokens, logits };
      };
      const a = await greedy(whole);
      const b = await greedy(parted);
      expect(b.tokens).toEqual(new ReferenceModel(m, (u) => pkg.unitBytes(u)).greedy(PROMPT, 5));
      expect(b.tokens).toEqual(a.tokens);
      for (let i = 0; i < a.logits.length; i++)
        for (let v = 0; v < a.logits[i].length; v++)
          expect(Math.abs(b.logits[i][v] - a.logits[i][v])).toBeLessThan(1e-4);
      await whole.release();
      await parted.release();
    });
  });

describe('reads and creations of a parted stage', () => {
  it("creates a part's session while the later parts' units are still being read", async () => {
    const pkg = await testPackage('qwen3', false, 'fp32');
    const m = pkg.reader.manifest;
    const spec: StageSpec = { layers: { start: 0, end: 4 }, embeds: false, hasHead: false };
    const units = unitsForRange(m, spec.layers, false, false);
    const events: string[] = [];
    // every read waits until the test lets it go, one at a time; creations only log what they got
    const pending: { path: string; go: () => void }[] = [];
    const readOne = (path: string) =>
      new Promise<Uint8Array>((resolve) => {
        pending.push({
          path,
          go: () => {
            events.push(`read ${path}`);
            resolve(pkg.blobs.get(path)!.slice());
          },
        });
      });
    const fakeSession: OrtSessionLike<OrtTensorLike> = {
      inputNames: ['hidden_states'],
      outputNames: ['hidden_states_out'],
      run: () => Promise.reject(new Error('not run here')),
      release: () => Promise.resolve(),
    };
    const binding: OrtBinding<OrtTensorLike> = {
      tensor: (t: HostTensor) => ({ type: t.dtype, dims: t.dims, data: t.data, location: 'cpu', dispose() {} }),
      open: (req) => {
        events.push(`create ${req.externalData.map((e) => e.path).join(',')}`);
        return Promise.resolve(fakeSession);
      },
    };
    const opening = openOrtStageSession(
      binding,
      {
        model: { kind: 'stage-graph', manifest: m, spec, options: { backend: 'wasm', maxPositions: 64 } },
        externalData: units.map((u) => ({ path: u.file, data: new Blob([]) })),
        config: {},
        backend: 'wasm',
        loadParts: { minPartBytes: 1, maxParts: 2 },
      },
      { readOne },
    );
    // all four reads were asked for at once, in the stage's order
    await new Promise((r) => setTimeout(r, 0));
    expect(pending.map((p) => p.path)).toEqual(units.map((u) => u.file));
    for (const p of pending) {
      p.go();
      await new Promise((r) => setTimeout(r, 0));
    }
    await opening;
    const [u0, u1, u2, u3] = units.map((u) => u.file);
    expect(events).toEqual([
      `read ${u0}`,
      `read ${u1}`,
      `create ${u0},${u1}`,
      `read ${u2}`,
      `read ${u3}`,
      `create ${u2},${u3}`,
    ]);
    // the graphs name the units each part reads
    expect(buildStageGraph(m, spec, { backend: 'wasm' }).externalData.map((e) => e.path)).toEqual(
      units.map((u) => u.file),
    );
  });
});
