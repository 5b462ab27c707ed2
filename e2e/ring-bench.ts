/**
 * `npm run bench:ring -- [--preset tiny|demo] [--stages K] [--prompt N] [--tokens N] [--runtime worker|inline]
 *   [--backend node|wasm] [--label TEXT] [--out FILE]`
 *
 * Where a decode token's time goes in a K-stage ring (issue 11, item 5): K StagePeers (the pages' own
 * stage code) in one Node process on the loopback transport, each with its runtime in a worker thread of
 * its own (the page's inference worker host, e2e/inference-thread.ts: every run crosses a thread and back)
 * or in-process (`--runtime inline`). All stages share one clock, so each token's cycle is accounted for
 * exactly (core/step-breakdown.ts): the stages' compute ('kernel'), their overhead ('ingress': input here
 * -> compute began; 'egress': compute ended -> output handed to the link) and the wire of every hop
 * (sent -> the next stage's input ready). One warm-up request, then the measured one (greedy), medians
 * over its decode tokens. Prints the figures and saves JSON (default bench/results/ring.json).
 */
import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  choiceOption,
  cliUsage,
  integerOption,
  parseCliArgs,
  runCliIfEntryPoint,
  usageError,
  type CliOption,
} from '../core/cli.ts';
import type { TimingEntry } from '../core/protocol.ts';
import { median, stepBreakdown, type StepBreakdown } from '../core/step-breakdown.ts';
import { mergeTimings } from '../client/app/timings.ts';
import { LoopbackNetwork } from '../core/transport/loopback-transport.ts';
import { createWorkerRuntime } from '../client/runtime/worker-runtime.ts';
import type { MessagePort as PortLike, WorkerReply, WorkerRequest } from '../client/runtime/worker-protocol.ts';
import { PackageReader } from '../shards/package-reader.ts';
import { createNodeRuntime, type NodeBackend } from '../shards/runtime/ort-node.ts';
import {
  ringAssignments,
  StagePeer,
  type PhaseEvent,
  type RunResult,
  type StartRequest,
} from '../shards/runtime/stage-peer.ts';
import type { StageRuntime } from '../shards/runtime/stage-runtime.ts';
import type { LayerRange } from '../shards/manifest.ts';
import { goal, LABEL_OPTION, outOption, writeBenchJson, type Goal } from './bench-output.ts';
import { ensureModelFixture } from './model-fixture.ts';

const RESULTS = 'bench/results/ring.json';
/** The measured request's id (request 1 is the warm-up). */
const MEASURED = 2;

export interface RingBenchOptions {
  packageDir: string;
  stages: number;
  promptTokens: number;
  decodeTokens: number;
  runtime: 'worker' | 'inline';
  backend: NodeBackend;
}

export interface RingBenchResult {
  breakdown: StepBreakdown;
  /**
   * Per stage, median ms per decode step (last quarter of the steps) that keeping the step's timings
   * as a page does costs (client/app/timings.ts mergeTimings per phase): page work on the stage's path.
   */
  pageBookkeepingMs: number[];
  /** the measured request's generated tokens (greedy) */
  tokens: number[];
  /** ms from the first stage's run() to the last token (the measured request) */
  totalMs: number;
  loadAverage: number[];
  method: string;
}

/** K layer ranges as equal as whole layers allow (earlier stages take the remainder). */
export function evenSplit(layers: number, k: number): LayerRange[] {
  const out: LayerRange[] = [];
  let start = 0;
  for (let i = 0; i < k; i++) {
    const n = Math.floor(layers / k) + (i < layers % k ? 1 : 0);
    out.push({ start, end: start + n });
    start += n;
  }
  return out;
}

/** A StageRuntime in a worker thread of its own; `close` ends the thread. */
function threadRuntime(backend: NodeBackend): { runtime: StageRuntime; close: () => Promise<void> } {
  const channel = new MessageChannel();
  // the thread's module is TypeScript: tsx loads it there as it does here
  const entry = new URL('./inference-thread.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}))`;
  const worker = new Worker(boot, {
    eval: true,
    workerData: { port: channel.port2, backend },
    transferList: [channel.port2 as unknown as import('node:worker_threads').MessagePort],
  });
  const port = channel.port1 as PortLike<WorkerRequest, WorkerReply>;
  const runtime = createWorkerRuntime(port, { wasmUrl: null, numThreads: 1 });
  channel.port1.start();
  worker.on('error', (e) => runtime.fail(e.message));
  return {
    runtime,
    close: async () => {
      channel.port1.close();
      await worker.terminate();
    },
  };
}

export async function runRingBench(o: RingBenchOptions): Promise<RingBenchResult> {
  const reader = PackageReader.open(o.packageDir);
  const manifest = reader.manifest;
  const L = manifest.config.num_hidden_layers;
  if (o.stages > L) throw usageError(`--stages ${o.stages}: the model has only ${L} layers.`);
  const ids = Array.from({ length: o.stages }, (_, i) => `stage-${i}`);
  const assignments = ringAssignments(evenSplit(L, o.stages), ids);
  const net = new LoopbackNetwork();
  const threads = ids.map(() => (o.runtime === 'worker' ? threadRuntime(o.backend) : null));
  const inline = createNodeRuntime(o.backend);
  const maxPositions = o.promptTokens + o.decodeTokens + 8;
  // each stage keeps its timings as a page does (the reducer merges every phase into the page's list,
  // synchronously, on the stage's path); the time that takes is measured per step
  const pageTimings: TimingEntry[][] = ids.map(() => []);
  const bookkeeping = ids.map(() => new Map<number, number>());
  const keep = (i: number, e: PhaseEvent): void => {
    if (e.requestId !== MEASURED) return;
    const b0 = performance.now();
    pageTimings[i] = mergeTimings(pageTimings[i], [
      { phase: e.phase, step: e.step, startMs: e.startMs, endMs: e.endMs },
    ]);
    bookkeeping[i].set(e.step, (bookkeeping[i].get(e.step) ?? 0) + performance.now() - b0);
  };
  const peers = assignments.map(
    (assignment, i) =>
      new StagePeer({
        onPhase: (e) => keep(i, e),
        manifest,
        assignment,
        transport: net.createTransport(ids[i]),
        runtime: threads[i]?.runtime ?? inline,
        backend: o.backend,
        // a buffer of its own: the stage hands it over to its runtime (a worker detaches it)
        readUnit: async (unitId) => (await reader.readUnit(unitId)).slice(),
        // a stand-in text decoder, so the last stage does the per-token text work a page does
        tokenizer: { hasChatTemplate: false, encode: () => [], decode: (t) => t.map((x) => `<${x}>`).join('') },
        maxPositions,
        stopTokens: [],
      }),
  );
  // prompt ids spread over the vocabulary (deterministic)
  const V = manifest.config.vocab_size;
  const promptTokenIds = Array.from({ length: o.promptTokens }, (_, i) => (i * 7919 + 13) % V);
  const request = (requestId: number, maxNewTokens: number): StartRequest => ({
    requestId,
    prompt: '',
    promptTokenIds,
    maxNewTokens,
    sampling: { temperature: 0 },
  });
  try {
    await Promise.all(peers.map((p) => p.load()));
    await Promise.all(peers.map((p) => p.run(request(1, 4)))); // warm-up: one-time costs of both paths
    const t0 = performance.now();
    const results: RunResult[] = await Promise.all(peers.map((p) => p.run(request(MEASURED, o.decodeTokens))));
    const totalMs = performance.now() - t0;
    const breakdown = stepBreakdown(results.map((r) => ({ timings: r.phases, offsetMs: r.originMs })));
    // the last quarter of the decode steps: the page's lists are longest there
    const lateSteps = (m: Map<number, number>) => [...m].filter(([step]) => step > (o.decodeTokens * 3) / 4);
    return {
      breakdown,
      pageBookkeepingMs: bookkeeping.map((m) => median(lateSteps(m).map(([, ms]) => ms))),
      tokens: results[results.length - 1].tokens,
      totalMs,
      loadAverage: loadavg(),
      method:
        `${o.stages} StagePeers in one Node process on the loopback transport (unlimited bandwidth), ${o.backend} backend, ` +
        `${o.runtime === 'worker' ? 'each runtime in its own worker thread (the page inference worker host)' : 'runtimes in-process'}, ` +
        `1 intra-op thread; prompt ${o.promptTokens} tokens, ${o.decodeTokens} greedy tokens after a 4-token warm-up request; ` +
        `medians over decode tokens; one clock, so each token's cycle = compute + overhead + wire exactly. The K stages share one main ` +
        `thread here (pages have one each): what a stage does after handing its output on delays the next stage's ingress`,
    };
  } finally {
    await Promise.all(peers.map((p) => p.dispose()));
    await Promise.all(threads.flatMap((t) => (t ? [t.close()] : [])));
  }
}

/** The ring goal: per-token time <= sum of stage compute + sum of hop wire + 10%. */
export function ringGoal(b: StepBreakdown): Goal {
  const m = b.median;
  return goal(
    'per-token time / (sum of stage compute + sum of hop wire)',
    m ? m.cycleMs / (m.computeMs + m.wireMs) : null,
    '<=',
    1.1,
  );
}

const OPTIONS = {
  preset: {
    type: 'string',
    default: 'tiny',
    arg: 'P',
    help: 'seeded model: tiny (4 layers, default) or demo (24 layers)',
  },
  stages: { type: 'string', default: '4', arg: 'K', help: 'ring stages, equal layer counts (default 4)' },
  prompt: { type: 'string', default: '32', arg: 'N', help: 'prompt tokens (default 32)' },
  tokens: { type: 'string', default: '64', arg: 'N', help: 'measured greedy tokens (default 64)' },
  runtime: {
    type: 'string',
    default: 'worker',
    arg: 'R',
    help: "worker (each stage's runtime in a worker thread, as a page; default) or inline",
  },
  backend: {
    type: 'string',
    default: 'node',
    arg: 'B',
    help: "node (onnxruntime-node, default) or wasm (onnxruntime-web's wasm, the page's kernels)",
  },
  label: LABEL_OPTION,
  out: outOption(RESULTS),
} satisfies Record<string, CliOption>;

const USAGE = cliUsage('usage: npm run bench:ring -- [options]', OPTIONS);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({ args: argv, options: OPTIONS });
  const preset = choiceOption(values.preset, '--preset', ['tiny', 'demo'] as const);
  const runtime = choiceOption(values.runtime, '--runtime', ['worker', 'inline'] as const);
  const backend = choiceOption(values.backend, '--backend', ['node', 'wasm'] as const);
  const model = await ensureModelFixture({ preset });
  const started = new Date().toISOString();
  const result = await runRingBench({
    packageDir: model.packageDir,
    stages: integerOption(values.stages, '--stages', 1, 64),
    promptTokens: integerOption(values.prompt, '--prompt', 1, 2048),
    decodeTokens: integerOption(values.tokens, '--tokens', 3, 2048),
    runtime,
    backend,
  });
  const b = result.breakdown;
  const saved = writeBenchJson(values.out, {
    benchmark: 'ring',
    label: values.label,
    started,
    finished: new Date().toISOString(),
    model: model.manifest.name,
    goal: ringGoal(b),
    ...result,
  });
  const f = (x: number | null | undefined) => (x == null ? '-' : x.toFixed(2));
  const m = b.median;
  console.log(
    `per token (median): ${f(m?.cycleMs)} ms = compute ${f(m?.computeMs)} + overhead ${f(m?.overheadMs)} + wire ${f(m?.wireMs)} ms (medians of each; ${b.tokens.length} tokens)`,
  );
  b.stages.forEach((s, i) =>
    console.log(
      `  stage ${i}: ingress ${f(s?.ingressMs)}  kernel ${f(s?.kernelMs)}  egress ${f(s?.egressMs)} ms;  hop ${i}->${(i + 1) % b.stages.length} wire ${f(b.hopWireMs[i])} ms`,
    ),
  );
  console.log(
    `page bookkeeping per decode step (late steps, median): ${result.pageBookkeepingMs.map((x) => f(x)).join(' / ')} ms per stage`,
  );
  const g = ringGoal(b);
  console.log(
    `goal ${g.name}: ${f(g.value)} (${g.target}: ${g.met === null ? 'not measured' : g.met ? 'met' : 'not met'})`,
  );
  console.log(`load average ${result.loadAverage.map((x) => x.toFixed(2)).join(' ')}\nsaved ${saved}`);
  return 0;
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:ring', usage: USAGE, main });
