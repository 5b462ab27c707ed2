/**
 * The Node pipeline runner: every stage of a split in one process, each a StagePeer (the page's own
 * stage code, stage-peer.ts) on a Node runtime (ort-node.ts: onnxruntime-node, or onnxruntime-web's
 * wasm build) over the in-memory loopback transport (core/transport/loopback-transport.ts): hidden
 * states travel as encoded frames in <= 256 KiB chunks, sampled tokens go back round the ring as token
 * frames, an end frame stops every stage. For the generate CLI, debugging and CI without browsers.
 *
 * One generation step (prefill: S = prompt length; decode: S = 1):
 *   stage 0 : input_ids (1, S) -> hidden (1, S, H) --frame--> stage 1 : hidden -> hidden --frame--> ...
 *   last    : hidden -> logits (1, 1, V) of the last position; sample -> token --frame--> stage 0
 */
import { TandemError } from '../../core/errors.ts';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import type { PipelineTransport } from '../../core/transport/transport.ts';
import {
  eosTokens,
  unitBytes,
  unitsForRange,
  type LayerRange,
  type ModelManifest,
  type UnitEntry,
} from '../manifest.ts';
import type { SamplingOptions } from '../sampler.ts';
import { stageMaxPositions, type StageSpec } from '../stage-graph.ts';
import { createNodeRuntime, type NodeBackend } from './ort-node.ts';
import { ringAssignments, StagePeer, type PhaseEvent, type StartRequest } from './stage-peer.ts';

/** Where a stage's unit blobs come from (e.g. PackageReader): bytes verified against the manifest. */
export interface UnitSource {
  readonly manifest: ModelManifest;
  readUnit(unit: UnitEntry): Promise<Uint8Array>;
}

/** "1-4,5-9,10-16" (1-based inclusive, as CLIs show) -> 0-based half-open ranges covering all layers in order. */
export function parseSplit(text: string, layers: number): LayerRange[] {
  const bad = (why: string) =>
    new TandemError(
      'split-invalid',
      `--split '${text}': ${why}. Give 1-based inclusive layer ranges covering 1-${layers} in order, e.g. '1-${Math.ceil(layers / 2)},${Math.ceil(layers / 2) + 1}-${layers}'.`,
    );
  const ranges = text.split(',').map((part) => {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
    if (!m) throw bad(`'${part}' is not a range like 3-7`);
    const first = Number(m[1]);
    const lastText = m.at(2); // the optional group is absent for a single layer
    const last = lastText === undefined ? first : Number(lastText);
    if (last < first) throw bad(`'${part}' ends before it starts`);
    return { start: first - 1, end: last };
  });
  let next = 0;
  for (const r of ranges) {
    if (r.start !== next) throw bad(`expected a range starting at layer ${next + 1}, got ${formatRange(r)}`);
    next = r.end;
  }
  if (next !== layers) throw bad(`the ranges end at layer ${next}, the model has ${layers}`);
  return ranges;
}

/** 0-based half-open -> "first-last", 1-based inclusive. */
export function formatRange(r: LayerRange): string {
  return r.end - r.start === 1 ? `${r.start + 1}` : `${r.start + 1}-${r.end}`;
}

/** Stage specs for a split: the first stage embeds, the last has the head. */
export function stageSpecs(split: readonly LayerRange[]): StageSpec[] {
  return split.map((layers, i) => ({ layers, embeds: i === 0, hasHead: i === split.length - 1 }));
}

export interface StageReport {
  index: number;
  layers: string; // 1-based inclusive
  embeds: boolean;
  hasHead: boolean;
  backend: NodeBackend;
  weightBytes: number;
  sessionCreateMs: number;
  prefillMs: number;
  decodeMsMean: number;
}

export interface GenerateResult {
  /** prompt ids followed by the generated ids */
  promptTokens: number[];
  tokens: number[];
  stopReason: 'eos' | 'max-new-tokens';
  timings: {
    prefillMs: number;
    timeToFirstTokenMs: number;
    decodeMsPerToken: number;
    tokensPerSecond: number;
    /** time spent in 'send' and 'receive' phases, all stages */
    wireMs: number;
    /** bytes of every chunk on every link */
    wireBytes: number;
    totalMs: number;
  };
}

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /** token ids that end generation (default: the package's eos ids) */
  stopTokens?: number[];
  requestId?: number;
}

export interface PipelineOptions {
  split?: LayerRange[];
  backend?: NodeBackend;
  /** hidden states on the wire (default float32) */
  wire?: 'float32' | 'float16';
  maxPositions?: number;
  threads?: number;
}

/** Peer id of stage i on the loopback network. */
const stageId = (index: number): string => `stage-${index}`;

interface Stage {
  readonly index: number;
  readonly spec: StageSpec;
  readonly peer: StagePeer;
  readonly transport: PipelineTransport;
  readonly weightBytes: number;
  /** storage read + graph build + session creation (open()) */
  createMs: number;
  /** phases of the last run */
  phases: PhaseEvent[];
}

export class PipelineRunner {
  private nextRequestId = 1;

  private constructor(
    readonly manifest: ModelManifest,
    private readonly backend: NodeBackend,
    private readonly stages: Stage[],
    /** bytes of every chunk sent on the loopback links since open() */
    private readonly wire: { bytes: number },
    /** longest sequence (prompt + new tokens) the stage graphs' RoPE tables cover */
    readonly maxPositions: number,
  ) {}

  /**
   * Sets up every stage of the split (default: one stage with all layers) and loads each one in turn:
   * its units read and verified (size, SHA-256), its session created, before any request runs.
   */
  static async open(source: UnitSource, opts: PipelineOptions = {}): Promise<PipelineRunner> {
    const manifest = source.manifest;
    const L = manifest.config.num_hidden_layers;
    const split = opts.split ?? [{ start: 0, end: L }];
    const backend = opts.backend ?? 'node';
    const maxPositions = stageMaxPositions(manifest, { maxPositions: opts.maxPositions });
    const readUnit = (unitId: string) => source.readUnit(manifest.units.find((u) => u.id === unitId)!);
    const wire = { bytes: 0 };
    const net = new LoopbackNetwork({
      // observes every chunk, changes none
      tamper: (_from, _to, message) => {
        wire.bytes += message.byteLength;
        return message;
      },
    });
    const runtime = createNodeRuntime(backend, { threads: opts.threads });
    const assignments = ringAssignments(
      split,
      split.map((_, i) => stageId(i)),
    );
    const stages = split.map((layers, index): Stage => {
      const assignment = assignments[index];
      const transport = net.createTransport(stageId(index));
      return {
        index,
        spec: { layers, embeds: assignment.embeds, hasHead: assignment.hasHead },
        transport,
        weightBytes: unitBytes(unitsForRange(manifest, layers, assignment.embeds, assignment.hasHead)),
        createMs: 0,
        phases: [],
        peer: new StagePeer({
          manifest,
          assignment,
          transport,
          runtime,
          backend,
          readUnit,
          wire: opts.wire,
          maxPositions,
        }),
      };
    });
    const runner = new PipelineRunner(manifest, backend, stages, wire, maxPositions);
    try {
      for (const s of stages) {
        const { storageReadMs, sessionCreateMs } = await s.peer.load();
        s.createMs = storageReadMs + sessionCreateMs;
      }
    } catch (e) {
      await runner.release();
      throw e;
    }
    return runner;
  }

  /** The package's end-of-sequence ids (generation_config.json, else config.json). */
  eosTokens(): number[] {
    return eosTokens(this.manifest);
  }

  async generate(promptIds: number[], opts: GenerateOptions): Promise<GenerateResult> {
    if (promptIds.length === 0)
      throw new TandemError('prompt-empty', 'The prompt has no tokens; give a non-empty prompt.');
    if (promptIds.length + opts.maxNewTokens > this.maxPositions) {
      throw new TandemError(
        'context-too-long',
        `${promptIds.length} prompt tokens + ${opts.maxNewTokens} new tokens exceed the ${this.maxPositions} positions the stage graphs were built for; shorten the prompt, lower --max-new-tokens, or build with a larger maxPositions.`,
      );
    }
    const V = this.manifest.config.vocab_size;
    const bad = promptIds.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad !== undefined)
      throw new TandemError('token-out-of-range', `Prompt token id ${bad} is outside the vocabulary 0..${V - 1}.`);
    const start: StartRequest = {
      requestId: opts.requestId ?? this.nextRequestId,
      prompt: '',
      promptTokenIds: promptIds,
      maxNewTokens: opts.maxNewTokens,
      sampling: opts.sampling ?? {},
      stopTokens: opts.stopTokens ?? this.eosTokens(),
    };
    this.nextRequestId = start.requestId + 1;
    const wireBytes0 = this.wire.bytes;
    const t0 = performance.now();
    // every stage runs the request at once, as every page does on 'start'; the last stage's result has the tokens
    const results = await Promise.all(this.stages.map((s) => s.peer.run(start)));
    const totalMs = performance.now() - t0;
    for (const [i, s] of this.stages.entries()) s.phases = results[i].phases;
    const last = results[results.length - 1];
    const sinceT0 = (ms: number): number => last.originMs + ms - t0;
    const prefill = last.phases.find((p) => p.phase === 'compute' && p.step === 0);
    const timeToFirstTokenMs = sinceT0(last.timeToFirstTokenMs ?? 0);
    const generated = last.tokens.length;
    const decodeMs = totalMs - timeToFirstTokenMs;
    const wirePhases = this.stages.flatMap((s) => s.phases.filter((p) => p.phase === 'send' || p.phase === 'receive'));
    return {
      promptTokens: promptIds,
      tokens: last.tokens,
      stopReason: last.finishReason === 'eos' ? 'eos' : 'max-new-tokens',
      timings: {
        prefillMs: prefill ? sinceT0(prefill.endMs) : 0,
        timeToFirstTokenMs,
        decodeMsPerToken: generated > 1 ? decodeMs / (generated - 1) : 0,
        tokensPerSecond: generated > 1 ? ((generated - 1) * 1000) / decodeMs : 0,
        wireMs: wirePhases.reduce((sum, p) => sum + p.endMs - p.startMs, 0),
        wireBytes: this.wire.bytes - wireBytes0,
        totalMs,
      },
    };
  }

  /** Per-stage figures of the last generate() call. */
  stageReports(): StageReport[] {
    return this.stages.map((s) => {
      const computeMs = (step: (n: number) => boolean) =>
        s.phases.filter((p) => p.phase === 'compute' && step(p.step)).map((p) => p.endMs - p.startMs);
      const decode = computeMs((n) => n > 0);
      return {
        index: s.index,
        layers: s.spec.layers.end > s.spec.layers.start ? formatRange(s.spec.layers) : '',
        embeds: s.spec.embeds,
        hasHead: s.spec.hasHead,
        backend: this.backend,
        weightBytes: s.weightBytes,
        sessionCreateMs: s.createMs,
        prefillMs: computeMs((n) => n === 0)[0] ?? 0,
        decodeMsMean: decode.length ? decode.reduce((a, b) => a + b, 0) / decode.length : 0,
      };
    });
  }

  async release(): Promise<void> {
    await Promise.all(this.stages.map((s) => s.peer.dispose()));
    for (const s of this.stages) s.transport.close();
  }
}
