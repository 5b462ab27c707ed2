/**
 * The Node pipeline runner: every stage of a split in one process, each with its own ONNX session and
 * KV cache, hidden states passed stage to stage through the same wire format the peers use
 * (encodeFrame -> chunks of <= 256 KiB -> FrameAssembler), the sampled token sent back around the ring
 * as a token frame. For debugging and CI without browsers.
 *
 * One generation step (prefill: S = prompt length; decode: S = 1):
 *   stage 0 : input_ids (1, S) -> hidden (1, S, H) --frame--> stage 1 : hidden -> hidden --frame--> ...
 *   last    : hidden -> logits (1, 1, V) of the last position; sample -> token --frame--> stage 0
 */
import { TandemError } from '../core/errors.ts';
import {
  encodeFrame,
  FrameAssembler,
  frameToFloat32,
  frameToInt32,
  hiddenFrame,
  tokenFrame,
  type Frame,
} from '../core/frame-codec.ts';
import type { LayerRange, ModelManifest, UnitEntry } from './manifest.ts';
import { headDim, unitBytes } from './manifest.ts';
import type { HostTensor, NodeBackend, StageSession } from './ort-node.ts';
import { createStageSession } from './ort-node.ts';
import { Sampler, type SamplingOptions } from './sampler.ts';
import {
  buildStageGraph,
  HIDDEN_OUTPUT,
  stageMaxPositions,
  stageSessionConfig,
  type StageSpec,
} from './stage-graph.ts';

/** Where a stage's unit blobs come from (e.g. PackageReader): verified bytes, and a file path if on disk. */
export interface UnitSource {
  readonly manifest: ModelManifest;
  readUnit(unit: UnitEntry): Promise<Uint8Array>;
  path?(file: string): string;
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
  /** logits row used to pick each generated token, when `keepLogits` was set */
  logits?: Float32Array[];
  timings: {
    prefillMs: number;
    timeToFirstTokenMs: number;
    decodeMsPerToken: number;
    tokensPerSecond: number;
    wireMs: number;
    wireBytes: number;
    totalMs: number;
  };
}

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /** token ids that end generation (default: the package's eos ids) */
  stopTokens?: number[];
  keepLogits?: boolean;
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

/** One stage: its session and KV cache (past_key_values.{i}.key/value, GLOBAL layer i). */
class Stage {
  private cache = new Map<string, HostTensor>();
  readonly runMs: number[] = [];

  constructor(
    readonly index: number,
    readonly spec: StageSpec,
    readonly session: StageSession,
    readonly weightBytes: number,
    readonly createMs: number,
    private readonly kvShape: { heads: number; headDim: number },
  ) {
    this.reset();
  }

  reset(): void {
    this.cache.clear();
    this.runMs.length = 0;
    for (let i = this.spec.layers.start; i < this.spec.layers.end; i++) {
      for (const kv of ['key', 'value']) {
        this.cache.set(`past_key_values.${i}.${kv}`, {
          dtype: 'float32',
          dims: [1, this.kvShape.heads, 0, this.kvShape.headDim],
          data: new Float32Array(0),
        });
      }
    }
  }

  /** Runs one step; `input` is input_ids (first stage) or hidden_states. Returns hidden_states or logits. */
  async run(input: HostTensor, past: number, seq: number): Promise<HostTensor> {
    const total = past + seq;
    const feeds: Record<string, HostTensor> = {
      [this.spec.embeds ? 'input_ids' : 'hidden_states']: input,
      attention_mask: { dtype: 'int64', dims: [1, total], data: new BigInt64Array(total).fill(1n) },
      position_ids: {
        dtype: 'int64',
        dims: [1, seq],
        data: BigInt64Array.from({ length: seq }, (_, j) => BigInt(past + j)),
      },
    };
    for (const [k, v] of this.cache) feeds[k] = v;
    const t0 = performance.now();
    const out = await this.session.run(feeds);
    this.runMs.push(performance.now() - t0);
    for (const k of this.cache.keys()) {
      const present = out[k.replace('past_key_values.', 'present.')] as (typeof out)[string] | undefined;
      if (!present)
        throw new TandemError(
          'stage-output-missing',
          `Stage ${this.index} did not return ${k.replace('past_key_values.', 'present.')}.`,
        );
      this.cache.set(k, present);
    }
    const main = out[this.spec.hasHead ? 'logits' : HIDDEN_OUTPUT] as (typeof out)[string] | undefined;
    if (!main)
      throw new TandemError(
        'stage-output-missing',
        `Stage ${this.index} did not return ${this.spec.hasHead ? 'logits' : HIDDEN_OUTPUT}.`,
      );
    return main;
  }
}

/** A one-way ordered link between two stages carrying frames as chunks, like one data channel. */
class Link {
  private readonly assembler = new FrameAssembler({ strictSequence: false });
  bytes = 0;
  ms = 0;

  send(frame: Frame): Frame {
    const t0 = performance.now();
    let received: Frame | null = null;
    for (const chunk of encodeFrame(frame)) {
      this.bytes += chunk.byteLength;
      const f = this.assembler.push(chunk);
      if (f) received = f;
    }
    this.ms += performance.now() - t0;
    if (!received)
      throw new TandemError('frame-lost', `A ${frame.kind} frame (step ${frame.step}) did not reassemble.`);
    return received;
  }
}

export class PipelineRunner {
  private constructor(
    readonly manifest: ModelManifest,
    private readonly stages: Stage[],
    private readonly links: Link[],
    private readonly wire: 'float32' | 'float16',
    /** longest sequence (prompt + new tokens) the stage graphs' RoPE tables cover */
    readonly maxPositions: number,
  ) {}

  /** Builds and loads every stage of the split (default: one stage with all layers). */
  static async open(source: UnitSource, opts: PipelineOptions = {}): Promise<PipelineRunner> {
    const manifest = source.manifest;
    const L = manifest.config.num_hidden_layers;
    const split = opts.split ?? [{ start: 0, end: L }];
    const backend = opts.backend ?? 'node';
    const graphOpts = {
      backend: backend === 'wasm' ? ('wasm' as const) : ('cpu' as const),
      maxPositions: opts.maxPositions,
    };
    const stages: Stage[] = [];
    try {
      for (const [index, spec] of stageSpecs(split).entries()) {
        const t0 = performance.now();
        const graph = buildStageGraph(manifest, spec, graphOpts);
        const units = graph.externalData.map((e) => manifest.units.find((u) => u.id === e.unitId)!);
        const externalData = await Promise.all(
          units.map(async (u) => {
            const bytes = await source.readUnit(u); // verifies size and SHA-256
            return { path: u.file, data: backend === 'node' && source.path ? { file: source.path(u.file) } : bytes };
          }),
        );
        const session = await createStageSession(backend, {
          model: graph.model,
          externalData,
          config: stageSessionConfig(manifest, graphOpts),
          threads: opts.threads,
        });
        const kv = { heads: manifest.config.num_key_value_heads, headDim: headDim(manifest.config) };
        stages.push(new Stage(index, spec, session, unitBytes(units), performance.now() - t0, kv));
      }
    } catch (e) {
      await Promise.all(stages.map((s) => s.session.release()));
      throw e;
    }
    const links = stages.map(() => new Link()); // links[i]: stage i -> stage i+1 (the last one closes the ring)
    return new PipelineRunner(manifest, stages, links, opts.wire ?? 'float32', stageMaxPositions(manifest, graphOpts));
  }

  /** The package's end-of-sequence ids (generation_config.json, else config.json). */
  eosTokens(): number[] {
    const raw = this.manifest.generation?.['eos_token_id'] ?? this.manifest.config.eos_token_id;
    if (typeof raw === 'number') return [raw];
    if (Array.isArray(raw)) return raw.filter((x): x is number => typeof x === 'number');
    return [];
  }

  /** Runs one step through all stages; returns the last logits row (V). */
  private async step(ids: number[], past: number, stepIndex: number, requestId: number): Promise<Float32Array> {
    const S = ids.length;
    let x: HostTensor = { dtype: 'int64', dims: [1, S], data: BigInt64Array.from(ids, BigInt) };
    for (const [i, stage] of this.stages.entries()) {
      const out = await stage.run(x, past, S);
      if (stage.spec.hasHead) {
        // (1, 1, V): the stage graph's head runs on the last position only
        const [, rows, V] = out.dims as [number, number, number];
        return (out.data as Float32Array).slice((rows - 1) * V, rows * V);
      }
      const frame = this.links[i].send(
        hiddenFrame(requestId, stepIndex, out.data as Float32Array, out.dims, this.wire),
      );
      x = { dtype: 'float32', dims: frame.dims, data: frameToFloat32(frame) };
    }
    throw new TandemError('pipeline-invalid', 'The last stage has no head.');
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
    const requestId = opts.requestId ?? 1;
    const sampler = new Sampler(opts.sampling);
    const stops = new Set(opts.stopTokens ?? this.eosTokens());
    for (const s of this.stages) s.reset();
    const ring = this.links[this.links.length - 1];
    const logits: Float32Array[] = [];
    const tokens = [...promptIds];
    const t0 = performance.now();
    let row = await this.step(promptIds, 0, 0, requestId);
    const prefillMs = performance.now() - t0;
    let timeToFirstTokenMs = 0;
    let stopReason: GenerateResult['stopReason'] = 'max-new-tokens';
    for (let n = 0; n < opts.maxNewTokens; n++) {
      if (opts.keepLogits) logits.push(row);
      // The last stage samples and sends the token around the ring to the first stage.
      const frame = ring.send(tokenFrame(requestId, n, [sampler.sample(row, n)]));
      const token = frameToInt32(frame)[0];
      tokens.push(token);
      if (n === 0) timeToFirstTokenMs = performance.now() - t0;
      if (stops.has(token)) {
        stopReason = 'eos';
        break;
      }
      if (n + 1 < opts.maxNewTokens) row = await this.step([token], tokens.length - 1, n + 1, requestId);
    }
    const totalMs = performance.now() - t0;
    const generated = tokens.length - promptIds.length;
    const decodeMs = totalMs - timeToFirstTokenMs;
    return {
      promptTokens: promptIds,
      tokens: tokens.slice(promptIds.length),
      stopReason,
      logits: opts.keepLogits ? logits : undefined,
      timings: {
        prefillMs,
        timeToFirstTokenMs,
        decodeMsPerToken: generated > 1 ? decodeMs / (generated - 1) : 0,
        tokensPerSecond: generated > 1 ? ((generated - 1) * 1000) / decodeMs : 0,
        wireMs: this.links.reduce((s, l) => s + l.ms, 0),
        wireBytes: this.links.reduce((s, l) => s + l.bytes, 0),
        totalMs,
      },
    };
  }

  /** Per-stage figures of the last generate() call. */
  stageReports(): StageReport[] {
    return this.stages.map((s) => {
      const decode = s.runMs.slice(1);
      return {
        index: s.index,
        layers: s.spec.layers.end > s.spec.layers.start ? formatRange(s.spec.layers) : '',
        embeds: s.spec.embeds,
        hasHead: s.spec.hasHead,
        backend: s.session.backend,
        weightBytes: s.weightBytes,
        sessionCreateMs: s.createMs,
        prefillMs: s.runMs[0] ?? 0,
        decodeMsMean: decode.length ? decode.reduce((a, b) => a + b, 0) / decode.length : 0,
      };
    });
  }

  async release(): Promise<void> {
    await Promise.all(this.stages.map((s) => s.session.release()));
  }
}
