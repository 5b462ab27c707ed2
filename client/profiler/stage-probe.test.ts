/**
 * The stage probe graph: onnxruntime-node runs it (at two row counts, one session: t is dynamic) to the
 * result of a plain JS pass written here from the graph's own initializers, and its FLOP count equals a
 * count of the graph's MatMul nodes.
 */
import { describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../shards/runtime/ort-node.ts';
import type { GraphDef } from '../../shards/onnx/model.ts';
import {
  buildStageProbeModel,
  stageProbeFlops,
  stageProbeForward,
  stageProbeInput,
  type StageProbeModel,
  type StageProbeShape,
} from './stage-probe.ts';

/** A weight matrix as the graph declares it: [rows, cols] from its dims, values from its external-data slice. */
function weightOf(m: StageProbeModel, name: string): { rows: number; cols: number; w: Float32Array } {
  const t = m.graph.initializers.find((i) => i.name === name);
  if (!t?.external) throw new Error(`no external initializer ${name}`);
  const bytes = m.externalData[0].data.slice(t.external.offset, t.external.offset + t.external.length);
  return { rows: t.dims[0], cols: t.dims[1], w: new Float32Array(bytes.buffer) };
}

/** Plain row-by-row matmul: a (n x rows) @ W (rows x cols). */
function mm(a: number[][], m: { rows: number; cols: number; w: Float32Array }): number[][] {
  return a.map((row) => {
    const out = new Array<number>(m.cols).fill(0);
    for (let p = 0; p < m.rows; p++) for (let j = 0; j < m.cols; j++) out[j] += row[p] * m.w[p * m.cols + j];
    return out;
  });
}

/** The block as the probe's doc comment states it, independent of stage-probe.ts's own forward pass. */
function reference(m: StageProbeModel, x: Float32Array, tokens: number): number[][] {
  const d = m.shape.dim;
  let cur = Array.from({ length: tokens }, (_, i) => Array.from(x.subarray(i * d, (i + 1) * d)));
  for (let l = 0; l < m.shape.layers; l++) {
    const w = (r: string) => weightOf(m, `l${l}.${r}`);
    const [q, k, v] = [mm(cur, w('q')), mm(cur, w('k')), mm(cur, w('v'))];
    const o = mm(
      q.map((row, i) => row.map((qv, j) => qv + k[i][j] + v[i][j])),
      w('o'),
    );
    const h = cur.map((row, i) => row.map((xv, j) => xv + o[i][j]));
    const [g, u] = [mm(h, w('gate')), mm(h, w('up'))];
    const silu = (z: number) => z / (1 + Math.exp(-z));
    const down = mm(
      g.map((row, i) => row.map((gv, j) => silu(gv) * u[i][j])),
      w('down'),
    );
    cur = h.map((row, i) => row.map((hv, j) => hv + down[i][j]));
  }
  return cur;
}

/** 2 t K N summed over the graph's MatMul nodes, K x N read from each node's weight initializer. */
function countMatmulFlops(graph: GraphDef, tokens: number): number {
  let flops = 0;
  for (const n of graph.nodes) {
    if (n.opType !== 'MatMul') continue;
    const w = graph.initializers.find((i) => i.name === n.inputs[1]);
    if (!w) throw new Error(`MatMul ${n.name} has no weight initializer`);
    flops += 2 * tokens * w.dims[0] * w.dims[1];
  }
  return flops;
}

const relError = (got: ArrayLike<number>, want: number[]) => {
  let diff = 0;
  let scale = 0;
  want.forEach((v, i) => {
    diff = Math.max(diff, Math.abs(got[i] - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return { diff: diff / scale, scale };
};

describe('buildStageProbeModel', () => {
  const shape: StageProbeShape = { dim: 8, ffn: 12, layers: 2 };
  const m = buildStageProbeModel(shape, 5);

  it('runs on onnxruntime-node to the plain JS block, at t = 1 and t = 3 in one session', async () => {
    const session = await createNodeRuntime('node').createSession({
      model: m.model,
      externalData: m.externalData,
      config: {},
      backend: 'node',
    });
    try {
      for (const tokens of [1, 3]) {
        const x = stageProbeInput(shape, tokens);
        const want = reference(m, x, tokens).flat();
        const y = (await session.run({ x: { dtype: 'float32', dims: [1, tokens, shape.dim], data: x } }))['y'];
        expect(y.dims).toEqual([1, tokens, shape.dim]);
        const e = relError(y.data as Float32Array, want);
        expect(e.diff).toBeLessThan(1e-5);
        // not a trivially small output
        expect(e.scale).toBeGreaterThan(0.1);
        // the module's own forward pass (the profiler's check) agrees with this one
        expect(relError(stageProbeForward(shape, m.weights, x, tokens), want).diff).toBeLessThan(1e-9);
      }
    } finally {
      await session.release();
    }
  });

  it('holds 7 weight matrices per block, all in the one external file', () => {
    expect(m.graph.initializers).toHaveLength(7 * shape.layers);
    expect(m.weightBytes).toBe(4 * shape.layers * (4 * 8 * 8 + 3 * 8 * 12));
    const ends = m.graph.initializers.map((i) => i.external!.offset + i.external!.length);
    expect(Math.max(...ends)).toBe(m.weightBytes);
  });

  it('rejects a bad shape with a code', () => {
    expect(() => buildStageProbeModel({ dim: 0, ffn: 4, layers: 1 })).toThrow(
      expect.objectContaining({ code: 'bench-invalid' }),
    );
    expect(() => stageProbeFlops({ dim: 4, ffn: 4, layers: 1.5 }, 1)).toThrow(
      expect.objectContaining({ code: 'bench-invalid' }),
    );
  });
});

describe('stageProbeFlops', () => {
  it('equals the MatMul count of the graph', () => {
    for (const shape of [
      { dim: 4, ffn: 6, layers: 1 },
      { dim: 16, ffn: 48, layers: 3 },
      { dim: 256, ffn: 768, layers: 1 },
    ])
      for (const t of [1, 7, 256])
        expect(stageProbeFlops(shape, t)).toBe(countMatmulFlops(buildStageProbeModel(shape).graph, t));
  });
  it('matches a hand count', () => {
    // D 4, F 6, t 2: 4 x (4x4) + 3 x (4x6) = 64 + 72 multiply-adds per row, x2 rows x2 FLOP
    expect(stageProbeFlops({ dim: 4, ffn: 6, layers: 1 }, 2)).toBe(544);
  });
});
