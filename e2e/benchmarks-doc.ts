/**
 * `npm run bench:doc`: writes docs/benchmarks.md from the JSON files in bench/results/.
 *
 * Every benchmark script saves its latest figures as JSON (bench/results/<name>.json); this turns the
 * ones it knows (planner, shards and its head before/after pair, frame-codec, signaling, e2e and its lab and
 * issue-11 runs, api, storage) into one page: what each measures, how to
 * run it, its figures as tables, and the machine, load and date recorded with them. A file it does not
 * know is listed with a note, never an error, so new benchmarks can land before their section here.
 *
 * Numbers: integers as recorded, other values to 3 significant digits (`formatNumber`); times in the
 * unit the column names; MB = 10^6 bytes, as the benchmarks compute it.
 *
 * Pure rendering (`renderBenchmarksDoc`) is separate from the file I/O (`readResultFiles`, `main`).
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { parseCliArgs, runCliIfEntryPoint } from '../core/cli.ts';
import { TandemError } from '../core/errors.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const DEFAULT_RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const DEFAULT_OUT = path.join(ROOT, 'docs', 'benchmarks.md');

const USAGE = `usage: npm run bench:doc -- [--results DIR] [--out FILE] [--stdout]
  --results DIR  folder of benchmark JSON files (default bench/results)
  --out FILE     where the Markdown goes (default docs/benchmarks.md)
  --stdout       print the Markdown instead of writing it
  --help         this text`;

// ---------------------------------------------------------------------------------------------
// Formatting

/** Integers as they are; other numbers to 3 significant digits (7256.88 -> 7260, 0.000276 -> 0.000276). */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  return String(Number(x.toPrecision(3)));
}

/** Seconds shown as milliseconds (empty when not measured). */
function ms(seconds: number | null): string {
  return seconds === null ? '' : formatNumber(seconds * 1000);
}

/** A fraction shown as a percentage. */
function percent(fraction: number): string {
  return formatNumber(fraction * 100);
}

function cell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return value.replaceAll('|', '\\|');
}

function table(headers: string[], rows: (string | number | boolean | null | undefined)[][]): string {
  const lines = [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
  return lines.join('\n');
}

function loadText(load: string | null): string {
  return load ?? 'load average not recorded in the JSON';
}

// ---------------------------------------------------------------------------------------------
// The result files this generator knows (loose: extra fields are fine, missing ones are a note)

const planner = z.looseObject({
  date: z.string(),
  machine: z.looseObject({
    cpus: z.number(),
    cpuModel: z.string(),
    node: z.string(),
    loadavg: z.array(z.number()).optional(),
  }),
  method: z.string(),
  quick: z.boolean().optional(),
  exactDp: z.array(
    z.looseObject({
      K: z.number(),
      L: z.number(),
      states: z.number(),
      // null when the script skipped the size (a smaller K was already too slow); `note` says why
      dpSeconds: z.number().nullable(),
      dpCpuSeconds: z.number().nullable(),
      planOptimalSeconds: z.number().nullable(),
      planOptimalCpuSeconds: z.number().nullable(),
      note: z.string().optional(),
    }),
  ),
  scalableGap: z.array(
    z.looseObject({
      kind: z.string(),
      K: z.number(),
      L: z.number(),
      instances: z.number(),
      meanGapPercent: z.number(),
      maxGapPercent: z.number(),
      exactShare: z.number(),
      scalableCpuSeconds: z.number(),
      exactCpuSeconds: z.number(),
    }),
  ),
  scalableLarge: z.array(
    z.looseObject({
      kind: z.string(),
      K: z.number(),
      L: z.number(),
      scalableSeconds: z.number(),
      scalableCpuSeconds: z.number(),
      stages: z.number(),
      evaluations: z.number(),
      latency: z.number(),
      // null when no baseline plan fits in memory
      bestBaseline: z.number().nullable(),
      reductionVsBestBaselinePercent: z.number().nullable(),
    }),
  ),
});

const shards = z.looseObject({
  date: z.string(),
  machine: z.looseObject({ cpus: z.number(), cpuModel: z.string(), node: z.string(), platform: z.string().optional() }),
  loadAverage: z.looseObject({ before: z.number(), after: z.number() }).optional(),
  method: z.string(),
  shape: z.looseObject({
    name: z.string(),
    hidden_size: z.number(),
    num_hidden_layers: z.number(),
    headVocab: z.number(),
  }),
  prefillTokens: z.number(),
  decodeSteps: z.number(),
  repeats: z.number(),
  results: z.array(
    z.looseObject({
      part: z.string(),
      dtype: z.string(),
      backend: z.string(),
      q4Kernel: z.string().nullable(),
      count: z.number(),
      weightBytes: z.number(),
      firstSessionCreateMs: z.number(),
      sessionCreateMs: z.number(),
      sessionCreateMsPerMB: z.number(),
      prefillMsPer: z.number(),
      decodeMsPer: z.number(),
    }),
  ),
});

const percentiles = z.looseObject({
  p50: z.number(),
  p99: z.number(),
  max: z.number().optional(),
  samples: z.number().optional(),
});

const signaling = z.looseObject({
  date: z.string(),
  machine: z.looseObject({
    loadavg1m: z.number().optional(),
    cpus: z.number(),
    cpuModel: z.string(),
    node: z.string(),
  }),
  setup: z.looseObject({
    sessions: z.number(),
    peersPerSession: z.number(),
    layers: z.number(),
    tokens: z.number(),
    method: z.string(),
    websocketConnections: z.number(),
    transport: z.string(),
  }),
  joinToAssignmentMs: percentiles,
  planRoundTripMs: percentiles,
  oneSessionAtATime: z.looseObject({
    sessions: z.number(),
    joinToAssignmentMs: percentiles,
    planRoundTripMs: percentiles,
  }),
  wallSeconds: z.number(),
  cpuSeconds: z.looseObject({ server: z.number(), clients: z.number() }),
  server: z.looseObject({
    idleRssMiB: z.number(),
    idleHeapUsedMiB: z.number(),
    peakRssMiB: z.number(),
    peakHeapUsedMiB: z.number(),
  }),
  notes: z.string().optional(),
});

const frameCodec = z.looseObject({
  date: z.string(),
  node: z.string(),
  cpu: z.string(),
  cores: z.number(),
  loadavg: z.array(z.number()).optional(),
  method: z.string(),
  rows: z.array(
    z.looseObject({
      tokens: z.number(),
      hidden: z.number(),
      wire: z.string(),
      payloadBytes: z.number(),
      wireBytes: z.number(),
      chunks: z.number(),
      encodeDecodeMs: z.number(),
      encodeDecodeMBps: z.number(),
      loopbackOneWayMs: z.number(),
    }),
  ),
});

const measuredStage = z.looseObject({
  name: z.string(),
  layers: z.string(),
  embeds: z.boolean(),
  hasHead: z.boolean(),
  predicted: z.looseObject({
    load: z.number(),
    wait: z.number(),
    comm: z.number(),
    compute: z.number(),
    finish: z.number(),
  }),
  measured: z.looseObject({
    load: z.number(),
    storageRead: z.number(),
    sessionCreate: z.number(),
    wait: z.number(),
    compute: z.number(),
    finish: z.number(),
  }),
});

const decodeSteps = z.looseObject({
  perTokenMs: z.number().nullable(),
  betweenMs: z.number().nullable(),
  stages: z.array(z.looseObject({ ingressMs: z.number(), kernelMs: z.number(), egressMs: z.number() }).nullable()),
  // session 10 on: per hop, where the pages timed the run on the server's clock
  hopsMs: z.array(z.number().nullable()).optional(),
  clockBoundMs: z.number().nullable().optional(),
});

// e2e/calibration-report.ts's CalibrationReport (issue 12), as the bench saves it
const calibration = z.looseObject({
  plans: z.array(
    z.looseObject({
      method: z.string(),
      stages: z.string(),
      measuredTtft: z.number().nullable(),
      predictedBefore: z.number(),
      predictedAfter: z.number(),
      errorBefore: z.number().nullable(),
      errorAfter: z.number().nullable(),
      medianPhaseErrorBefore: z.number().nullable(),
      medianPhaseErrorAfter: z.number().nullable(),
      calibratedPages: z.number(),
      phases: z.array(
        z.looseObject({
          stage: z.number(),
          name: z.string(),
          phase: z.string(),
          measured: z.number(),
          before: z.number(),
          after: z.number(),
          errorBefore: z.number().nullable(),
          errorAfter: z.number().nullable(),
        }),
      ),
    }),
  ),
  predictedRanking: z.array(z.string()),
  predictedRankingBefore: z.array(z.string()),
  measuredRanking: z.array(z.string()),
  rankingHolds: z.boolean(),
  rankingHoldsBefore: z.boolean(),
});

const e2e = z.looseObject({
  started: z.string(),
  finished: z.string(),
  machine: z.looseObject({
    cpus: z.number(),
    cpuModel: z.string(),
    memoryGiB: z.number(),
    node: z.string(),
    chromium: z.string(),
    loadavg: z.array(z.number()).optional(),
    loadavgAtStart: z.array(z.number()).optional(),
  }),
  model: z.looseObject({
    name: z.string(),
    preset: z.string(),
    layers: z.number(),
    dtype: z.string(),
    bytes: z.number(),
  }),
  goals: z.array(
    z.looseObject({ name: z.string(), value: z.number().nullable(), target: z.string(), met: z.boolean().nullable() }),
  ),
  coldStart: z
    .array(
      z.looseObject({
        method: z.string(),
        stages: z.number(),
        predictedT: z.number(),
        ttft: z.number(),
        driverTtft: z.number(),
        decodeTokensPerSec: z.number(),
        perStage: z.array(measuredStage),
      }),
    )
    .optional(),
  // what the plans ran on (newer runs only), e.g. 'paper lab'
  lineup: z.string().optional(),
  calibration: calibration.nullable().optional(),
  // every cold run per plan method where each ran several times (the rows above are the median's)
  repeats: z
    .array(
      z.looseObject({
        method: z.string(),
        chosen: z.string(),
        runs: z.array(
          z.looseObject({
            planId: z.string(),
            predicted: z.number(),
            measuredTtft: z.number().nullable(),
            stages: z.string(),
          }),
        ),
      }),
    )
    .nullable()
    .optional(),
  decode: z
    .looseObject({
      // what the decode runs ran on and where the compared figures come from (runs on the decode lab only)
      setup: z
        .looseObject({
          lineup: z.string(),
          coresPerDevice: z.number().nullable(),
          links: z.string().nullable(),
          storageCap: z.string(),
          hopSource: z.string().nullable(),
          rawReadSource: z.string().nullable(),
        })
        .optional(),
      pipeline: z.looseObject({
        stages: z.number(),
        pages: z.array(z.string()).optional(),
        tokensPerSec: z.number().nullable(), // null: the run measured no decode rate
        steps: decodeSteps.optional(),
        ringBudget: z
          .looseObject({
            perTokenMs: z.number(),
            kernelMs: z.number(),
            hopsMs: z.number(),
            ratio: z.number(),
            // from session 26: the same with each kernel at its lab device's speed
            device: z.looseObject({ cores: z.array(z.number()), kernelMs: z.number(), ratio: z.number() }).nullish(),
          })
          .nullish(),
      }),
      // per decode run, each lab device's CPU against its quota (decode-lab runs only)
      labCpu: z
        .looseObject({
          runs: z.array(
            z.looseObject({
              label: z.string(),
              whole: z.looseObject({
                devices: z.array(
                  z.looseObject({ cores: z.number(), used: z.number(), throttledShare: z.number().nullable() }),
                ),
                machineBusyCores: z.number().nullable(),
                load1: z.number().nullable(),
              }),
            }),
          ),
        })
        .nullish(),
      // hop and raw-read figures of two devices of the decode devices' shape (decode-lab runs only)
      labFigures: z
        .looseObject({
          setup: z.string(),
          tinyRoundTripMs: z.number(),
          sizes: z.array(
            z.looseObject({ bytes: z.number(), hopMedianMs: z.number(), hopP90Ms: z.number(), oneWayMs: z.number() }),
          ),
        })
        .nullish(),
      onePage: z.looseObject({
        pages: z.array(z.string()).optional(),
        tokensPerSec: z.number().nullable(),
        steps: decodeSteps.optional(),
      }),
      transformers: z.looseObject({ tokensPerSec: z.number(), method: z.string() }),
      tokens: z.number(),
      // every alternated run's decode rate (newer runs only; the rows above are the runs of median rate)
      repeats: z
        .looseObject({
          pipelineTokensPerSec: z.array(z.number().nullable()),
          onePageTokensPerSec: z.array(z.number().nullable()),
        })
        .nullish(),
      // main-thread tasks > 50 ms on any page during each cold request (newer runs only)
      coldLongTasks: z
        .array(
          z.looseObject({
            plan: z.string(),
            tasks: z.looseObject({
              count: z.number(),
              maxMs: z.number().nullable(),
              // what the longest ran (Long Animation Frames' scripts and render time; newer runs only)
              longestWhat: z.string().optional(),
            }),
            perPage: z
              .array(z.looseObject({ page: z.string(), count: z.number(), maxMs: z.number().nullable() }))
              .optional(),
            // from session 26: the tasks after the request's last output, until its timings were in
            afterRequest: z
              .looseObject({ count: z.number(), maxMs: z.number().nullable(), longestWhat: z.string().optional() })
              .optional(),
          }),
        )
        .optional(),
    })
    .nullable()
    .optional(),
  hops: z
    .looseObject({
      tinyRoundTripMs: z.number(),
      sizes: z.array(
        z.looseObject({
          bytes: z.number(),
          hopMedianMs: z.number(),
          hopP90Ms: z.number(),
          oneWayMs: z.number(),
          streamMBps: z.number(),
          samples: z.number(),
        }),
      ),
      idb: z.looseObject({ bytes: z.number(), readMBps: z.number(), writeMBps: z.number(), method: z.string() }),
      method: z.string(),
    })
    .nullish(),
  shardLoad: z
    .array(
      z.looseObject({
        stage: z.string(),
        unitBytes: z.number(),
        storageReadSeconds: z.number(),
        loadSeconds: z.number(),
        readMBps: z.number(),
        loadMBps: z.number(),
        // the raw read of the same units on a device of the same emulation (decode-lab runs only)
        plan: z.string().optional(),
        rawReadMBps: z.number().nullable().optional(),
      }),
    )
    .optional(),
  notes: z.array(z.string()).optional(),
});

const apiBench = z.looseObject({
  started: z.string(),
  finished: z.string(),
  model: z.string(),
  goal: z.looseObject({
    name: z.string(),
    value: z.number().nullable(),
    target: z.string(),
    met: z.boolean().nullable(),
  }),
  rounds: z.number(),
  newTokens: z.number(),
  goTtftMs: z.array(z.number()),
  apiTtftMs: z.array(z.number()),
  medianGoTtftMs: z.number().nullable(),
  medianApiTtftMs: z.number().nullable(),
  ttftDifferenceMs: z.number().nullable(),
  sseAfterOutputMs: z.looseObject({ median: z.number().nullable(), p90: z.number().nullable(), samples: z.number() }),
  loadAverage: z.array(z.number()).optional(),
  method: z.string(),
});

const storage = z.looseObject({
  at: z.string(),
  loadavg: z.array(z.number()).optional(),
  bytes: z.number(),
  units: z.number(),
  rows: z.array(
    z.looseObject({
      store: z.string(),
      readMBps: z.number(),
      cpuSecPerGB: z.number().optional(),
      samplesMs: z.array(z.number()),
    }),
  ),
  method: z.string(),
});

// ---------------------------------------------------------------------------------------------
// Sections

interface Section {
  title: string;
  /** What the benchmark measures, in a few sentences. */
  about: string;
  run: string;
  render: (json: unknown) => string;
}

function plannerSection(json: unknown): string {
  const d = planner.parse(json);
  const load = d.machine.loadavg
    ? `load average ${d.machine.loadavg.map(formatNumber).join(' / ')} (1 / 5 / 15 min)`
    : null;
  return [
    machineLine(d.date, `${d.machine.cpus} × ${d.machine.cpuModel}, Node ${d.machine.node}`, loadText(load)),
    `Method: ${d.method}.${d.quick ? ' This was a `--quick` run (fewer sizes).' : ''}`,
    '### Exact DP vs K devices and L layers',
    'Paper-like instances (Qwen3-14B layers, devices drawn around the paper\'s Table 1, t = 1024). `planOptimal` = seed orders for an upper bound + the pruned exact DP; "DP alone" is the DP without that bound.',
    table(
      ['K', 'L', 'states', 'planOptimal wall ms', 'planOptimal CPU ms', 'DP alone wall ms', 'DP alone CPU ms', 'note'],
      d.exactDp.map((r) => [
        r.K,
        r.L,
        r.states,
        ms(r.planOptimalSeconds),
        ms(r.planOptimalCpuSeconds),
        ms(r.dpSeconds),
        ms(r.dpCpuSeconds),
        r.note,
      ]),
    ),
    '### Scalable planner vs the exact optimum',
    'Gap = (scalable latency − exact latency) / exact latency over the instances of a row; "exactly optimal" = share of instances where the scalable planner found the optimum.',
    table(
      [
        'instances',
        'K',
        'L',
        'count',
        'mean gap %',
        'max gap %',
        'exactly optimal %',
        'scalable CPU ms',
        'exact CPU ms',
      ],
      d.scalableGap.map((r) => [
        r.kind,
        r.K,
        r.L,
        r.instances,
        r.meanGapPercent,
        r.maxGapPercent,
        percent(r.exactShare),
        ms(r.scalableCpuSeconds),
        ms(r.exactCpuSeconds),
      ]),
    ),
    "### Scalable planner beyond the exact DP's reach",
    'One instance per row; latency is the plan\'s predicted latency T; "reduction" compares it with the best baseline plan that fits in memory.',
    table(
      [
        'instances',
        'K',
        'L',
        'CPU ms',
        'wall ms',
        'stages',
        'orders evaluated',
        'T (s)',
        'best baseline T (s)',
        'reduction %',
      ],
      d.scalableLarge.map((r) => [
        r.kind,
        r.K,
        r.L,
        ms(r.scalableCpuSeconds),
        ms(r.scalableSeconds),
        r.stages,
        r.evaluations,
        r.latency,
        r.bestBaseline,
        r.reductionVsBestBaselinePercent,
      ]),
    ),
  ].join('\n\n');
}

function shardsSection(json: unknown): string {
  const d = shards.parse(json);
  const load = d.loadAverage
    ? `1-minute load average ${formatNumber(d.loadAverage.before)} before, ${formatNumber(d.loadAverage.after)} after`
    : null;
  return [
    machineLine(
      d.date,
      `${d.machine.cpus} × ${d.machine.cpuModel}, Node ${d.machine.node}${d.machine.platform ? `, ${d.machine.platform}` : ''}`,
      loadText(load),
    ),
    `Method: ${d.method}.`,
    `Shape: \`${d.shape.name}\` (hidden ${d.shape.hidden_size}, ${d.shape.num_hidden_layers} layers per measured stage, head vocabulary ${d.shape.headVocab}); prefill ${d.prefillTokens} tokens, ${d.decodeSteps} decode steps, ${d.repeats} repeats. Prefill and decode are per layer (per head for the head).`,
    table(
      [
        'part',
        'dtype',
        'backend',
        'q4 kernel',
        'MB each',
        'first session ms',
        'session ms',
        'session ms/MB',
        `prefill ${d.prefillTokens} tok ms`,
        'decode ms',
      ],
      d.results.map((r) => [
        r.part,
        r.dtype,
        r.backend,
        r.q4Kernel ?? '',
        formatNumber(r.weightBytes / r.count / 1e6),
        r.firstSessionCreateMs,
        r.sessionCreateMs,
        r.sessionCreateMsPerMB,
        r.prefillMsPer,
        r.decodeMsPer,
      ]),
    ),
  ].join('\n\n');
}

function signalingSection(json: unknown): string {
  const d = signaling.parse(json);
  const s = d.setup;
  const load = d.machine.loadavg1m !== undefined ? `1-minute load average ${formatNumber(d.machine.loadavg1m)}` : null;
  return [
    machineLine(d.date, `${d.machine.cpus} × ${d.machine.cpuModel}, Node ${d.machine.node}`, loadText(load)),
    `Set-up: ${s.sessions} sessions × ${s.peersPerSession} pages at once, ${s.layers}-layer synthetic package, plans for ${s.tokens} tokens with \`${s.method}\`, ${s.websocketConnections} WebSocket connections (${s.transport}).`,
    table(
      ['', 'p50 ms', 'p99 ms', 'max ms'],
      [
        [
          `join → assignment, ${s.sessions} sessions at once`,
          d.joinToAssignmentMs.p50,
          d.joinToAssignmentMs.p99,
          d.joinToAssignmentMs.max,
        ],
        [
          `plan round trip (host), ${s.sessions} at once`,
          d.planRoundTripMs.p50,
          d.planRoundTripMs.p99,
          d.planRoundTripMs.max,
        ],
        [
          `join → assignment, one session at a time (${d.oneSessionAtATime.sessions})`,
          d.oneSessionAtATime.joinToAssignmentMs.p50,
          d.oneSessionAtATime.joinToAssignmentMs.p99,
          d.oneSessionAtATime.joinToAssignmentMs.max,
        ],
        [
          'plan round trip, one session at a time',
          d.oneSessionAtATime.planRoundTripMs.p50,
          d.oneSessionAtATime.planRoundTripMs.p99,
          d.oneSessionAtATime.planRoundTripMs.max,
        ],
      ],
    ),
    table(
      ['server', 'idle', 'peak'],
      [
        ['RSS MiB', d.server.idleRssMiB, d.server.peakRssMiB],
        ['heap used MiB', d.server.idleHeapUsedMiB, d.server.peakHeapUsedMiB],
      ],
    ),
    `CPU time of the concurrent phase: server ${formatNumber(d.cpuSeconds.server)} s (incl. the planner worker), clients ${formatNumber(d.cpuSeconds.clients)} s; wall time ${formatNumber(d.wallSeconds)} s. When the CPU time is far below the wall time, the latencies above are mostly waiting for a CPU.`,
    ...(d.notes ? [`Note recorded with the run: ${d.notes}`] : []),
  ].join('\n\n');
}

function frameCodecSection(json: unknown): string {
  const d = frameCodec.parse(json);
  const load = d.loadavg ? `load average ${d.loadavg.map(formatNumber).join(' / ')} (1 / 5 / 15 min)` : null;
  return [
    machineLine(d.date, `${d.cores} × ${d.cpu}, Node ${d.node}`, loadText(load)),
    `Method: ${d.method}.`,
    table(
      [
        'tokens',
        'hidden',
        'wire',
        'payload bytes',
        'wire bytes',
        'chunks',
        'encode + reassemble ms',
        'MB/s of fp32 states',
        'loopback one-way ms',
      ],
      d.rows.map((r) => [
        r.tokens,
        r.hidden,
        r.wire,
        r.payloadBytes,
        r.wireBytes,
        r.chunks,
        r.encodeDecodeMs,
        r.encodeDecodeMBps,
        r.loopbackOneWayMs,
      ]),
    ),
  ].join('\n\n');
}

function e2eSection(json: unknown): string {
  const d = e2e.parse(json);
  const m = d.machine;
  const avg = (xs: number[]) => xs.map(formatNumber).join(' / ');
  const load = m.loadavg
    ? m.loadavgAtStart
      ? `load average ${avg(m.loadavgAtStart)} at the start, ${avg(m.loadavg)} at the end (1 / 5 / 15 min)`
      : `load average ${avg(m.loadavg)} (1 / 5 / 15 min)`
    : null;
  const parts = [
    machineLine(
      `${d.started} to ${d.finished}`,
      `${m.cpus} × ${m.cpuModel}, ${formatNumber(m.memoryGiB)} GiB, Node ${m.node}, ${m.chromium}`,
      loadText(load),
    ),
    `Model: \`${d.model.name}\` (preset \`${d.model.preset}\`, ${d.model.layers} layers, ${d.model.dtype}, ${d.model.bytes} bytes).`,
    ...(d.lineup ? [`Plans ran on: ${d.lineup}.`] : []),
    '### Goals',
    table(
      ['goal', 'measured', 'target', 'met'],
      d.goals.map((g) => [g.name, g.value, g.target, g.met]),
    ),
  ];
  if (d.coldStart && d.coldStart.length === 0)
    parts.push('### Cold start per plan', '_No plans were compared in this run (`--skip plans`)._');
  if (d.coldStart && d.coldStart.length > 0) {
    parts.push(
      '### Cold start per plan',
      "T = the plan's predicted latency (CSGO model); TTFT = the last stage's first sampled token after the `start` message, on its own clock; driver TTFT = the Node driver's `go` to the first `output` message.",
      table(
        ['plan', 'stages', 'predicted T (s)', 'TTFT (s)', 'driver TTFT (s)', 'decode tokens/s'],
        d.coldStart.map((c) => [c.method, c.stages, c.predictedT, c.ttft, c.driverTtft, c.decodeTokensPerSec]),
      ),
      'Per stage, predicted / measured seconds; the measured load includes the storage read and the session creation, shown on their own:',
      table(
        ['plan', 'page', 'layers', 'load', 'storage read', 'session create', 'wait', 'compute', 'finish'],
        d.coldStart.flatMap((c) =>
          c.perStage.map((s) => [
            c.method,
            s.name,
            s.layers,
            `${formatNumber(s.predicted.load)} / ${formatNumber(s.measured.load)}`,
            s.measured.storageRead,
            s.measured.sessionCreate,
            `${formatNumber(s.predicted.wait)} / ${formatNumber(s.measured.wait)}`,
            `${formatNumber(s.predicted.compute)} / ${formatNumber(s.measured.compute)}`,
            `${formatNumber(s.predicted.finish)} / ${formatNumber(s.measured.finish)}`,
          ]),
        ),
      ),
    );
  }
  if (d.calibration) parts.push(...calibrationParts(d.calibration));
  if (d.repeats?.length)
    parts.push(
      'Every cold run of each plan method (each on a plan made afresh; the rows above are the run of median TTFT, marked):',
      table(
        ['plan', 'run', 'stages', 'predicted T (s)', 'measured TTFT (s)', 'reported'],
        d.repeats.flatMap((r) =>
          r.runs.map((x, i) => [
            r.method,
            i + 1,
            x.stages,
            x.predicted,
            x.measuredTtft ?? '-',
            x.planId === r.chosen ? 'yes' : '',
          ]),
        ),
      ),
    );
  if (d.decode) {
    const setup = d.decode.setup;
    parts.push(
      '### Decode rate',
      ...(setup
        ? [
            `Decode runs on: ${setup.lineup}${setup.coresPerDevice !== null ? `, ${formatNumber(setup.coresPerDevice)} core per device, links ${setup.links}` : ''}; storage read cap: ${setup.storageCap}. Hop in the per-token budget: ${setup.hopSource ?? 'not measured'}. Raw read in the shard-load row: ${setup.rawReadSource ?? 'not measured'}.`,
          ]
        : []),
      table(
        ['run', 'tokens/s'],
        [
          [
            `${d.decode.pipeline.stages}-page even pipeline${d.decode.pipeline.pages ? ` (${d.decode.pipeline.pages.join(' → ')})` : ''}`,
            d.decode.pipeline.tokensPerSec,
          ],
          [
            `one page${d.decode.onePage.pages ? ` (${d.decode.onePage.pages.join(', ')})` : ''}`,
            d.decode.onePage.tokensPerSec,
          ],
          ['transformers.js in Node', d.decode.transformers.tokensPerSec],
        ],
      ),
      `${d.decode.tokens} tokens per run. transformers.js: ${d.decode.transformers.method}.`,
    );
    const rates = (xs: (number | null)[]) => xs.map((x) => (x === null ? '-' : formatNumber(x))).join(' / ');
    if (d.decode.repeats)
      parts.push(
        `The pipeline and the one page ran alternately, ${d.decode.repeats.pipelineTokensPerSec.length} times each; the rows above are each one's run of median rate. Every run: pipeline ${rates(d.decode.repeats.pipelineTokensPerSec)}, one page ${rates(d.decode.repeats.onePageTokensPerSec)} tokens/s.`,
      );
    const labHop = d.decode.labFigures;
    if (labHop)
      parts.push(
        `Hop on ${labHop.setup}: tiny round trip ${formatNumber(labHop.tinyRoundTripMs)} ms; ${labHop.sizes
          .map(
            (h) =>
              `${h.bytes}-byte frame + tiny ack median ${formatNumber(h.hopMedianMs)} ms (p90 ${formatNumber(h.hopP90Ms)}), one-way ${formatNumber(h.oneWayMs)} ms`,
          )
          .join('; ')}.`,
      );
    const labCpu = d.decode.labCpu;
    if (labCpu && labCpu.runs.length > 0)
      parts.push(
        "Each lab device's CPU over each decode request (e2e/lab-cpu.ts): cores used of its quota, and the share of its CFS periods (e2e/lab.ts labCpuPeriodUs: 2.5 ms at 0.4 core today, longer in older runs) in which it ran out of quota (d0, d1, ... in the line-up's order: d0 is its first device, e.g. equal-1); the machine's busy cores and 1-minute load:",
        table(
          ['request', 'devices: used / quota cores (throttled periods)', 'machine busy cores', 'load'],
          labCpu.runs.map((r) => [
            r.label,
            r.whole.devices
              .map(
                (dev, i) =>
                  `d${i} ${formatNumber(dev.used)} / ${formatNumber(dev.cores)} (${dev.throttledShare === null ? '-' : `${percent(dev.throttledShare)} %`})`,
              )
              .join(' · '),
            r.whole.machineBusyCores,
            r.whole.load1,
          ]),
        ),
      );
    const budget = d.decode.pipeline.ringBudget;
    if (budget)
      parts.push(
        `The pipeline's per-token time ${formatNumber(budget.perTokenMs)} ms against its stages' kernels ${formatNumber(budget.kernelMs)} ms + ${d.decode.pipeline.stages} one-way hops ${formatNumber(budget.hopsMs)} ms: ×${formatNumber(budget.ratio)}${
          budget.device
            ? `; with each kernel at its device's speed (kernel / ${budget.device.cores.map((c) => formatNumber(c)).join(', ')} core, core/step-breakdown.ts ringBudget) ${formatNumber(budget.device.kernelMs)} ms + the hops: ×${formatNumber(budget.device.ratio)}${
                d.decode.onePage.steps?.stages[0]
                  ? `. Cross-check: one page of the same shape computed the whole model in ${formatNumber(d.decode.onePage.steps.stages[0].kernelMs)} ms per token`
                  : ''
              }`
            : ''
        }.`,
      );
    const steps = [
      [`${d.decode.pipeline.stages}-page pipeline`, d.decode.pipeline.steps],
      ['one page', d.decode.onePage.steps],
    ] as const;
    if (steps.some(([, x]) => x))
      parts.push(
        "Where a decode token went (the pages' own step phases, medians): the first stage's cycle per token, each stage's input → compute / compute / compute → sent (ms), and the cycle minus the stages' steps (the wire and wake-ups between the pages, which share no clock):",
        table(
          [
            'run',
            'per token ms',
            'stages: input → compute / compute / compute → sent ms',
            'between stages ms (per hop)',
          ],
          steps.flatMap(([run, x]) =>
            x
              ? [
                  [
                    run,
                    x.perTokenMs,
                    x.stages
                      .map((m) =>
                        m ? [m.ingressMs, m.kernelMs, m.egressMs].map((v) => formatNumber(v)).join(' / ') : '-',
                      )
                      .join(' · '),
                    x.clockBoundMs != null && x.hopsMs
                      ? `${x.betweenMs === null ? '-' : formatNumber(x.betweenMs)} (${x.hopsMs.map((h) => (h === null ? '-' : formatNumber(h))).join(' / ')}; clocks to ${formatNumber(x.clockBoundMs)} ms)`
                      : x.betweenMs,
                  ],
                ]
              : [],
          ),
        ),
      );
    const cold = d.decode.coldLongTasks;
    if (cold && cold.length > 0) {
      // runs that recorded each page's tasks (the decode lab's) get a column for them, and those that
      // attributed the longest (Long Animation Frames) one more
      const perPage = cold.every((c) => c.perPage);
      const what = cold.some((c) => c.tasks.longestWhat !== undefined);
      const after = cold.every((c) => c.afterRequest);
      parts.push(
        after
          ? "Main-thread tasks over 50 ms on any page during the cold request of each decode run (from `go` to its last output, each page's clock read as it came), and after it until its timings were in:"
          : 'Main-thread tasks over 50 ms on any page during the cold request of each decode run (from `go` to its end):',
        table(
          [
            'plan',
            'tasks > 50 ms',
            'longest ms',
            ...(what ? ['the longest ran'] : []),
            ...(perPage ? ['per page: tasks / longest ms'] : []),
            ...(after ? ['after it: tasks / longest ms (what ran)'] : []),
          ],
          cold.map((c) => [
            c.plan,
            c.tasks.count,
            c.tasks.maxMs,
            ...(what ? [c.tasks.longestWhat ?? '-'] : []),
            ...(perPage
              ? [
                  (c.perPage ?? [])
                    .map((p) => `${p.page} ${p.count} / ${p.maxMs === null ? '-' : formatNumber(p.maxMs)}`)
                    .join(' · '),
                ]
              : []),
            ...(after && c.afterRequest
              ? [
                  `${c.afterRequest.count} / ${c.afterRequest.maxMs === null ? '-' : formatNumber(c.afterRequest.maxMs)}${c.afterRequest.longestWhat ? ` (${c.afterRequest.longestWhat})` : ''}`,
                ]
              : []),
          ]),
        ),
      );
    }
  }
  if (d.hops) {
    parts.push(
      '### Data-channel hops',
      `Method: ${d.hops.method}. Tiny message round trip ${formatNumber(d.hops.tinyRoundTripMs)} ms.`,
      table(
        ['frame bytes', 'hop median ms', 'hop p90 ms', 'one-way ms', 'stream MB/s', 'samples'],
        d.hops.sizes.map((h) => [h.bytes, h.hopMedianMs, h.hopP90Ms, h.oneWayMs, h.streamMBps, h.samples]),
      ),
      `IndexedDB raw (${d.hops.idb.method}): read ${formatNumber(d.hops.idb.readMBps)} MB/s, write ${formatNumber(d.hops.idb.writeMBps)} MB/s.`,
    );
  }
  if (d.shardLoad) {
    const raw = d.shardLoad.some((s) => s.rawReadMBps != null);
    parts.push(
      '### Shard load (blob → session ready)',
      raw
        ? table(
            [
              'plan',
              'stage',
              'unit bytes',
              'storage read (s)',
              'load (s)',
              'read MB/s',
              'load MB/s',
              'raw read MB/s',
              'load / raw',
            ],
            d.shardLoad.map((s) => [
              s.plan ?? '',
              s.stage,
              s.unitBytes,
              s.storageReadSeconds,
              s.loadSeconds,
              s.readMBps,
              s.loadMBps,
              s.rawReadMBps ?? null,
              s.rawReadMBps ? s.loadMBps / s.rawReadMBps : null,
            ]),
          )
        : table(
            ['stage', 'unit bytes', 'storage read (s)', 'load (s)', 'read MB/s', 'load MB/s'],
            d.shardLoad.map((s) => [s.stage, s.unitBytes, s.storageReadSeconds, s.loadSeconds, s.readMBps, s.loadMBps]),
          ),
    );
  }
  if (d.notes && d.notes.length > 0)
    parts.push('Notes recorded with the run:', d.notes.map((n) => `- ${n}`).join('\n'));
  return parts.join('\n\n');
}

/** Issue 12's report: per plan predicted before / after calibration vs measured, then per phase. */
function calibrationParts(c: z.infer<typeof calibration>): string[] {
  const pct = (x: number | null) => (x === null ? null : percent(x));
  const counted = c.plans.flatMap((p) =>
    p.phases.filter((e) => e.phase !== 'finish' && e.measured >= 0.01).map((e) => ({ ...e, method: p.method })),
  );
  const phaseNames = [...new Set(counted.map((e) => e.phase))];
  const middle = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  return [
    '### Calibration (issue 12)',
    "One calibration request (an even plan, cold) ran before the plans; each plan was then made and predicted with the devices' refitted parameters (after), and is shown beside the prediction from the pages' profiles alone (before). Errors are |predicted − measured| / measured.",
    table(
      [
        'plan',
        'measured TTFT (s)',
        'predicted before (s)',
        'error before %',
        'predicted after (s)',
        'error after %',
        'median phase error before → after %',
        'refitted pages',
        'stages',
      ],
      c.plans.map((p) => [
        p.method,
        p.measuredTtft,
        p.predictedBefore,
        pct(p.errorBefore),
        p.predictedAfter,
        pct(p.errorAfter),
        `${cell(pct(p.medianPhaseErrorBefore))} → ${cell(pct(p.medianPhaseErrorAfter))}`,
        p.calibratedPages,
        p.stages,
      ]),
    ),
    `Measured ranking ${c.measuredRanking.join(' < ')}; predicted after calibration ${c.predictedRanking.join(' < ')} (${c.rankingHolds ? 'equal' : 'differs'}); before ${c.predictedRankingBefore.join(' < ')} (${c.rankingHoldsBefore ? 'equal' : 'differs'}).`,
    "Per phase, over every plan's stages where the phase measured at least 10 ms (the phases the median phase error counts): the error after calibration, and the stage where it is largest.",
    table(
      ['phase', 'stages', 'median error after %', 'largest error after %', 'at', 'measured / predicted after (s)'],
      phaseNames.map((phase) => {
        const rows = counted.filter((e) => e.phase === phase && e.errorAfter !== null);
        const errors = rows.map((e) => e.errorAfter!);
        const worst = rows.reduce<(typeof rows)[number] | null>(
          (w, e) => (w === null || e.errorAfter! > w.errorAfter! ? e : w),
          null,
        );
        return [
          phase,
          rows.length,
          errors.length ? percent(middle(errors)) : null,
          worst ? percent(worst.errorAfter!) : null,
          worst ? `${worst.method}, stage ${worst.stage} ${worst.name}` : null,
          worst ? `${formatNumber(worst.measured)} / ${formatNumber(worst.after)}` : null,
        ];
      }),
    ),
  ];
}

function apiSection(json: unknown): string {
  const d = apiBench.parse(json);
  const load = d.loadAverage
    ? `load average ${d.loadAverage.map(formatNumber).join(' / ')} (1 / 5 / 15 min, at the end of the run)`
    : null;
  const nullable = (x: number | null) => (x === null ? 'not measured' : formatNumber(x));
  return [
    `Recorded ${d.started} to ${d.finished}; model \`${d.model}\`; ${loadText(load)}. The machine is not recorded in this file.`,
    `Method: ${d.method}`,
    `${d.rounds} measured rounds of each, ${d.newTokens} new tokens per request.`,
    table(['goal', 'measured', 'target', 'met'], [[d.goal.name, d.goal.value, d.goal.target, d.goal.met]]),
    table(
      ['round', 'Go TTFT ms', 'API TTFT ms'],
      Array.from({ length: Math.max(d.goTtftMs.length, d.apiTtftMs.length) }, (_, i) => [
        i + 1,
        d.goTtftMs[i],
        d.apiTtftMs[i],
      ]),
    ),
    `Median TTFT: Go ${nullable(d.medianGoTtftMs)} ms, API ${nullable(d.medianApiTtftMs)} ms; API − Go ${nullable(d.ttftDifferenceMs)} ms.`,
    table(
      ['latency', 'median ms', 'p90 ms', 'tokens'],
      [
        [
          'SSE chunk after the /ws `output` of the same token',
          d.sseAfterOutputMs.median,
          d.sseAfterOutputMs.p90,
          d.sseAfterOutputMs.samples,
        ],
      ],
    ),
  ].join('\n\n');
}

function storageSection(json: unknown): string {
  const d = storage.parse(json);
  const load = d.loadavg
    ? `load average ${d.loadavg.map(formatNumber).join(' / ')} (1 / 5 / 15 min, at the end of the run)`
    : null;
  return [
    `Recorded ${d.at}; ${loadText(load)}. The machine is not recorded in this file.`,
    `Method: ${d.method}. ${d.units} units, ${formatNumber(d.bytes / 1e6)} MB in all, per read.`,
    table(
      ['store', 'read MB/s (median)', "browser's CPU-s per GB read", 'read times ms'],
      d.rows.map((r) => [r.store, r.readMBps, r.cpuSecPerGB ?? '-', r.samplesMs.map(formatNumber).join(', ')]),
    ),
  ].join('\n\n');
}

const benchGoal = z.looseObject({ name: z.string(), value: z.number(), target: z.string(), met: z.boolean() });

const failoverBench = z.looseObject({
  started: z.string(),
  finished: z.string(),
  model: z.string(),
  goal: benchGoal,
  failures: z.number(),
  recovered: z.number(),
  samples: z.array(
    z.looseObject({
      index: z.number(),
      how: z.string(),
      stage: z.string(),
      reason: z.string().nullable(),
      mode: z.string().nullable(),
      replayTokens: z.number().nullable(),
      predictedResumeSec: z.number().nullable(),
      recoverySec: z.number().nullable(),
      recovered: z.boolean(),
      tokensMatch: z.boolean(),
    }),
  ),
  medianRecoverySec: z.number().nullable(),
  medianPredictedSec: z.number().nullable(),
  medianRatio: z.number().nullable(),
  loadAverage: z.array(z.number()),
  method: z.string(),
});

function failoverSection(json: unknown): string {
  const d = failoverBench.parse(json);
  const load = `load average ${d.loadAverage.map(formatNumber).join(' / ')} (1 / 5 / 15 min, at the end of the run)`;
  const nullable = (x: number | null) => (x === null ? '–' : formatNumber(x));
  return [
    `Recorded ${d.started} to ${d.finished}; model \`${d.model}\`; ${load}. The machine is not recorded in this file.`,
    `Method: ${d.method}`,
    table(['goal', 'measured', 'target', 'met'], [[d.goal.name, d.goal.value, d.goal.target, d.goal.met]]),
    table(
      ['loss', 'how', 'stage', 'first loss seen', 'repair', 'replay tokens', 'predicted s', 'recovery s', 'recovered'],
      d.samples.map((s) => [
        s.index,
        s.how,
        s.stage,
        s.reason,
        s.mode,
        s.replayTokens,
        nullable(s.predictedResumeSec),
        nullable(s.recoverySec),
        s.recovered,
      ]),
    ),
    `${d.recovered} of ${d.failures} recovered; median recovery ${nullable(d.medianRecoverySec)} s against a predicted ${nullable(d.medianPredictedSec)} s (ratio ${nullable(d.medianRatio)}).`,
  ].join('\n\n');
}

const anchorRun = z.looseObject({
  loadSec: z.number(),
  ttftSec: z.number().nullable(),
  decodeTokensPerSec: z.number().nullable(),
});

const anchorBench = z.looseObject({
  started: z.string(),
  finished: z.string(),
  loadAverage: z.looseObject({ before: z.array(z.number()), after: z.array(z.number()) }),
  model: z.looseObject({ name: z.string(), preset: z.string(), bytes: z.number() }),
  promptTokens: z.number(),
  newTokens: z.number(),
  method: z.string(),
  anchor: z.looseObject({ cold: anchorRun, threads: z.number() }),
  tandem: anchorRun,
  tokensIdentical: z.boolean(),
  goals: z.array(
    z.looseObject({ name: z.string(), value: z.number().nullable(), target: z.string(), met: z.boolean().nullable() }),
  ),
});

function anchorSection(json: unknown): string {
  const d = anchorBench.parse(json);
  const load = (l: number[]) => l.map(formatNumber).join(' / ');
  const row = (name: string, r: z.infer<typeof anchorRun>) => [name, r.loadSec, r.ttftSec, r.decodeTokensPerSec];
  return [
    `Recorded ${d.started} to ${d.finished}; model \`${d.model.name}\` (preset \`${d.model.preset}\`, ${d.model.bytes} bytes); ${d.promptTokens}-token prompt, ${d.newTokens} tokens; ${d.anchor.threads} wasm thread(s); load average ${load(d.loadAverage.before)} before, ${load(d.loadAverage.after)} after (1 / 5 / 15 min).`,
    `Method: ${d.method}`,
    table(
      ['goal', 'measured', 'target', 'met'],
      d.goals.map((g) => [g.name, g.value, g.target, g.met]),
    ),
    table(
      ['run', 'load s', 'TTFT incl. load s', 'decode tokens/s'],
      [row('transformers.js alone', d.anchor.cold), row('Tandem, one page', d.tandem)],
    ),
    `Tokens identical: ${d.tokensIdentical ? 'yes' : 'no'}.`,
  ].join('\n\n');
}

const coldLoad = z.looseObject({
  storageReadSec: z.number(),
  sessionCreateSec: z.number(),
  loadSec: z.number(),
  ttftSec: z.number().nullable(),
  decodeTokensPerSec: z.number().nullable().optional(),
});
const loadPartsMode = z.looseObject({
  parts: z.string(),
  parallel: z.looseObject({ parallelism: z.number(), inParts: z.boolean() }).nullable(),
  runs: z.array(coldLoad),
  median: coldLoad,
  loadMBps: z.number(),
});
const loadPartsBench = z.looseObject({
  started: z.string(),
  finished: z.string(),
  loadAverage: z.looseObject({ before: z.array(z.number()), after: z.array(z.number()) }),
  model: z.looseObject({ name: z.string(), preset: z.string(), dtype: z.string().optional(), bytes: z.number() }),
  method: z.string(),
  settings: z.array(
    z.looseObject({ setting: z.string(), off: loadPartsMode, on: loadPartsMode, loadRatio: z.number() }),
  ),
});

function loadPartsSection(json: unknown): string {
  const d = loadPartsBench.parse(json);
  const load = (l: number[]) => l.map(formatNumber).join(' / ');
  const rows = d.settings.flatMap((s) =>
    [s.off, s.on].map((m) => [
      s.setting,
      m.parts,
      m.median.storageReadSec,
      m.median.sessionCreateSec,
      m.median.loadSec,
      m.loadMBps,
      m.median.ttftSec,
      m.median.decodeTokensPerSec ?? null,
      m.runs.length,
    ]),
  );
  return [
    `Recorded ${d.started} to ${d.finished}; model \`${d.model.name}\` (preset \`${d.model.preset}\`${d.model.dtype ? `, ${d.model.dtype}` : ''}, ${d.model.bytes} bytes); load average ${load(d.loadAverage.before)} before, ${load(d.loadAverage.after)} after (1 / 5 / 15 min).`,
    `Method: ${d.method}`,
    table(
      [
        'setting',
        '?parts=',
        'read s',
        'create after s',
        'load s',
        'load MB/s',
        'TTFT s',
        'decode tok/s',
        'cold requests',
      ],
      rows,
    ),
    table(
      ['setting', 'load in parts / in one', "the page's parallel-load figure", '?parts=auto'],
      d.settings.map((s) => [
        s.setting,
        s.loadRatio,
        s.off.parallel?.parallelism ?? null,
        s.off.parallel ? (s.off.parallel.inParts ? 'in parts' : 'one part') : null,
      ]),
    ),
  ].join('\n\n');
}

const ringBench = z.looseObject({
  label: z.string().optional(),
  started: z.string(),
  model: z.string(),
  goal: benchGoal,
  breakdown: z.looseObject({
    stages: z.array(
      z.looseObject({ steps: z.number(), ingressMs: z.number(), kernelMs: z.number(), egressMs: z.number() }),
    ),
    perTokenMs: z.number(),
    hopWireMs: z.array(z.number()),
    median: z.looseObject({ cycleMs: z.number(), computeMs: z.number(), overheadMs: z.number(), wireMs: z.number() }),
  }),
  pageBookkeepingMs: z.array(z.number()),
  loadAverage: z.array(z.number()),
  method: z.string(),
});

function ringSection(json: unknown): string {
  const d = ringBench.parse(json);
  const b = d.breakdown;
  const load = `load average ${d.loadAverage.map(formatNumber).join(' / ')} (1 / 5 / 15 min, at the end of the run)`;
  return [
    `Recorded ${d.started}${d.label ? ` (${d.label})` : ''}; model \`${d.model}\`; ${load}. The machine is not recorded in this file.`,
    `Method: ${d.method}`,
    table(['goal', 'measured', 'target', 'met'], [[d.goal.name, d.goal.value, d.goal.target, d.goal.met]]),
    `Per token (median): ${formatNumber(b.median.cycleMs)} ms = compute ${formatNumber(b.median.computeMs)} + overhead in the stages ${formatNumber(b.median.overheadMs)} + wire ${formatNumber(b.median.wireMs)} ms (medians taken apart, so they need not add up).`,
    table(
      [
        'stage',
        'decode steps',
        'input → compute ms',
        'compute ms',
        'compute → sent ms',
        'wire to the next ms',
        'timing bookkeeping ms',
      ],
      b.stages.map((s, i) => [
        i + 1,
        s.steps,
        s.ingressMs,
        s.kernelMs,
        s.egressMs,
        b.hopWireMs[i],
        d.pageBookkeepingMs[i],
      ]),
    ),
  ].join('\n\n');
}

const decodeTrace = z.looseObject({
  label: z.string().optional(),
  started: z.string(),
  model: z.string(),
  stages: z.array(z.looseObject({ name: z.string() })),
  decodeTokensPerSec: z.number().nullable(),
  generated: z.number(),
  breakdown: z.looseObject({
    stages: z.array(z.looseObject({ ingressMs: z.number(), kernelMs: z.number(), egressMs: z.number() }).nullable()),
    perTokenMs: z.number().nullable(),
    ringWireMs: z.number().nullable(),
  }),
  threads: z.array(
    z.looseObject({
      thread: z.string(),
      pid: z.number(),
      busyMs: z.number(),
      tasks: z.number(),
      longTasks: z.number(),
      byEvent: z.array(z.looseObject({ name: z.string(), ms: z.number(), count: z.number() })),
      byFunction: z.array(z.looseObject({ name: z.string(), ms: z.number() })),
      longTaskList: z
        .array(z.looseObject({ startMs: z.number(), durationMs: z.number(), cpuMs: z.number().nullable() }))
        .optional(),
    }),
  ),
  /** per renderer, its thread pool's CPU by kind (runs before session 10 lack it) */
  background: z
    .array(z.looseObject({ pid: z.number(), totalMs: z.number(), byKind: z.record(z.string(), z.number()) }))
    .optional(),
  loadAverage: z.looseObject({ before: z.array(z.number()), after: z.array(z.number()) }),
  method: z.string(),
});

function decodeTraceSection(json: unknown): string {
  const d = decodeTrace.parse(json);
  const b = d.breakdown;
  const n = d.generated;
  const load = `load average ${d.loadAverage.before.map(formatNumber).join(' / ')} before, ${d.loadAverage.after.map(formatNumber).join(' / ')} after (1 / 5 / 15 min)`;
  const threads = d.threads.filter((t) => t.busyMs > 1);
  return [
    `Recorded ${d.started}${d.label ? ` (${d.label})` : ''}; model \`${d.model}\`; ${d.stages.length} page(s); ${load}. The machine is not recorded in this file.`,
    `Method: ${d.method}.`,
    `Decode ${d.decodeTokensPerSec === null ? '-' : formatNumber(d.decodeTokensPerSec)} tok/s; the first stage's cycle ${b.perTokenMs === null ? '-' : formatNumber(b.perTokenMs)} ms per token (median), of which ${b.ringWireMs === null ? '-' : formatNumber(b.ringWireMs)} ms between the stages (the cycle minus the stages' median steps).`,
    table(
      ['stage', 'page', 'input → compute ms', 'compute ms', 'compute → sent ms'],
      b.stages.map((s, i) => [i + 1, d.stages[i]?.name, s?.ingressMs, s?.kernelMs, s?.egressMs]),
    ),
    table(
      [
        'thread',
        'busy ms per token',
        'tasks',
        'tasks > 50 ms',
        'top trace events (self ms per token)',
        'top JS functions (self ms per token)',
      ],
      threads.map((t) => [
        `${t.thread} (pid ${t.pid})`,
        t.busyMs / n,
        t.tasks,
        t.longTasks,
        t.byEvent
          .slice(0, 5)
          .map((e) => `${e.name} ${formatNumber(e.ms / n)}`)
          .join('; '),
        t.byFunction
          .filter((f) => f.name !== '(idle)')
          .slice(0, 5)
          .map((f) => `${f.name} ${formatNumber(f.ms / n)}`)
          .join('; '),
      ]),
    ),
    ...(threads.some((t) => t.longTaskList?.length)
      ? [
          "The longest tasks of each thread, wall and the thread's own CPU ms (a task far longer than its CPU waited for a core: on a lab device, for its CPU group's quota):",
          table(
            ['thread', 'longest tasks: wall / CPU ms'],
            threads.map((t) => [
              `${t.thread} (pid ${t.pid})`,
              (t.longTaskList ?? [])
                .slice(0, 4)
                .map((l) => `${formatNumber(l.durationMs)} / ${l.cpuMs === null ? '-' : formatNumber(l.cpuMs)}`)
                .join('; '),
            ]),
          ),
        ]
      : []),
    ...(d.background?.length
      ? [
          "Each renderer's thread pool over the traced request, CPU ms (on a lab device it shares the stage's quota):",
          table(
            ['renderer', 'thread pool CPU ms', 'of which'],
            d.background.map((b) => [
              `pid ${b.pid}`,
              b.totalMs,
              Object.entries(b.byKind)
                .map(([k, ms]) => `${k} ${formatNumber(ms)}`)
                .join('; '),
            ]),
          ),
        ]
      : []),
  ].join('\n\n');
}

const computeProfile = z.looseObject({
  date: z.string(),
  machine: z.looseObject({ cpus: z.number(), cpuModel: z.string(), node: z.string() }),
  loadAverage: z.looseObject({ before: z.number(), after: z.number() }),
  method: z.string(),
  shape: z.looseObject({ name: z.string() }),
  profiles: z.array(z.looseObject({ name: z.string(), backend: z.string(), peakFlops: z.number() })),
  rows: z.array(
    z.looseObject({
      backend: z.string(),
      tokens: z.number(),
      measuredSeconds: z.number(),
      predicted: z.record(z.string(), z.number()),
    }),
  ),
});

function computeProfileSection(json: unknown): string {
  const d = computeProfile.parse(json);
  const names = [...new Set(d.rows.flatMap((r) => Object.keys(r.predicted)))];
  return [
    machineLine(
      d.date,
      `${d.machine.cpus} × ${d.machine.cpuModel}, Node ${d.machine.node}`,
      `load average ${formatNumber(d.loadAverage.before)} before, ${formatNumber(d.loadAverage.after)} after (1 min)`,
    ),
    `Method: ${d.method}. Layer shape \`${d.shape.name}\`.`,
    table(
      ['profile', 'backend', 'c* GFLOP/s'],
      d.profiles.map((p) => [p.name, p.backend, p.peakFlops / 1e9]),
    ),
    table(
      ['backend', 'tokens', 'measured prefill ms', ...names.map((n) => `predicted / measured (${n})`)],
      d.rows.map((r) => [
        r.backend,
        r.tokens,
        r.measuredSeconds * 1000,
        ...names.map((n) => (n in r.predicted ? r.predicted[n] / r.measuredSeconds : null)),
      ]),
    ),
  ].join('\n\n');
}

const webgpuNode = z.object({
  date: z.string(),
  machine: z.object({ cpus: z.number(), cpuModel: z.string(), node: z.string() }),
  loadAverage: z.object({ before: z.number(), after: z.number() }),
  method: z.string(),
  label: z.string().optional(),
  adapter: z.object({
    vendor: z.string(),
    device: z.string().optional(),
    description: z.string(),
    features: z.array(z.string()),
  }),
  fidelity: z.array(
    z.object({
      dtype: z.string(),
      f16Matmul: z.boolean(),
      maxAbsDiff: z.number().nullable(),
      tolerance: z.number(),
      ok: z.boolean(),
      note: z.string().optional(),
    }),
  ),
  speed: z.array(
    z.object({
      shape: z.string(),
      variant: z.string(),
      weightBytes: z.number(),
      createMs: z.number().optional(),
      prefillTokens: z.number(),
      prefillMs: z.number().optional(),
      decodeMsMedian: z.number().optional(),
      tokensPerSec: z.number().optional(),
      decodeSteps: z.number(),
      tokensMatchingReference: z.number().optional(),
      sameTokensAsGpuKv: z.boolean().optional(),
      error: z.string().optional(),
    }),
  ),
});

function webgpuNodeSection(json: unknown): string {
  const d = webgpuNode.parse(json);
  const hostKv = new Map(
    d.speed.filter((r) => r.variant === 'fp32-host-kv').map((r) => [r.shape, r.decodeMsMedian ?? null]),
  );
  return [
    machineLine(
      d.date,
      `${d.label ? `${d.label}: ` : ''}${d.adapter.device || d.adapter.description || d.adapter.vendor} through Dawn's Node binding (host: ${d.machine.cpus} × ${d.machine.cpuModel}, Node ${d.machine.node})`,
      `load average ${formatNumber(d.loadAverage.before)} before, ${formatNumber(d.loadAverage.after)} after (1 min); adapter features: ${d.adapter.features.join(', ')}`,
    ),
    `Method: ${d.method}.`,
    table(
      ['package', 'max abs logits error vs fp64', 'tolerance', 'result'],
      d.fidelity.map((r) => [
        `${r.dtype}${r.f16Matmul ? ' (fp16 matmuls)' : ''}`,
        r.maxAbsDiff,
        r.tolerance,
        r.note ?? (r.ok ? 'ok' : 'FAIL'),
      ]),
    ),
    table(
      [
        'model',
        'variant',
        'weights MB',
        'create ms',
        'prefill ms',
        'decode ms/token',
        'tok/s',
        'read-back / kept KV decode',
        'tokens as fp64 reference',
        'same tokens as fp32-gpu-kv',
      ],
      d.speed.map((r) => {
        const back = hostKv.get(r.shape);
        return r.error !== undefined
          ? [
              r.shape,
              r.variant,
              r.weightBytes ? r.weightBytes / 1e6 : null,
              r.error,
              null,
              null,
              null,
              null,
              null,
              null,
            ]
          : [
              r.shape,
              r.variant,
              r.weightBytes / 1e6,
              r.createMs,
              r.prefillMs,
              r.decodeMsMedian,
              r.tokensPerSec,
              r.variant === 'fp32-gpu-kv' && back != null && r.decodeMsMedian ? back / r.decodeMsMedian : null,
              r.tokensMatchingReference === undefined ? null : `${r.tokensMatchingReference}/${r.decodeSteps + 1}`,
              r.sameTokensAsGpuKv,
            ];
      }),
    ),
  ].join('\n\n');
}

function machineLine(date: string, machine: string, load: string): string {
  return `Recorded ${date} on ${machine}; ${load}.`;
}

/** Known result files, in the order they appear on the page. */
const SECTIONS: Record<string, Section> = {
  'planner.json': {
    title: 'Planner (`bench:planner`)',
    about:
      "How long planning takes: the exact DP against the number of devices K and layers L, and the scalable planner's time and how far its plans are from the exact optimum (and from the baselines where exact is out of reach). Wall time and process CPU time are both recorded, because on a shared machine the wall time includes waiting for a CPU.",
    run: 'npm run bench:planner [-- --quick] [--out FILE]',
    render: plannerSection,
  },
  'shards.json': {
    title: 'Stage graphs on ONNX Runtime (`bench:shards`)',
    about:
      "What one stage costs on each ONNX Runtime backend available in Node (onnxruntime-node CPU, onnxruntime-web wasm) and package dtype: session creation per MB of weights, and prefill and decode time per layer, for a layers-only stage with Qwen3-0.6B's layer shape and a head-only stage with the real vocabulary. One intra-op thread, as a page's wasm backend runs. These are the figures the planner's per-layer costs can be calibrated against.",
    run: 'npm run bench:shards [-- --shape qwen3-0.6b|demo --layers 2 --prefill 32 --decode 8 --repeats 3 --dtypes fp32,fp16,q4 --backends node,wasm]',
    render: shardsSection,
  },
  'shards-head-all-rows-before.json': {
    title: 'Stage graphs, head on every prefill row (before the last-position cut)',
    about:
      "`bench:shards` (shards/bench.ts, as in the stage-graph section above) on the `demo` layer shape, fp32 only, a 256-token prefill, before the last stage's final norm and lm_head were cut to the last position: here the head-only stage still computes logits for every prefill row, (1, S, V). Compare its head rows with the next section's.",
    run: 'npm run bench:shards -- --shape demo --layers 24 --prefill 256 --decode 4 --dtypes fp32 --out bench/results/shards-head-all-rows-before.json',
    render: shardsSection,
  },
  'shards-head-last-row-after.json': {
    title: 'Stage graphs, head on the last position only (after the cut)',
    about:
      "The same `bench:shards` run as the previous section after the stage graph applies the final norm and lm_head to the last position only (prefill logits (1, 1, V); export-full keeps (1, S, V)). The head's prefill figure is the one the cut changes; the layer rows measure the same graph as before, so differences there come from the machine's load (recorded below).",
    run: 'npm run bench:shards -- --shape demo --layers 24 --prefill 256 --decode 4 --dtypes fp32 --out bench/results/shards-head-last-row-after.json',
    render: shardsSection,
  },
  'frame-codec.json': {
    title: 'Frame codec and loopback transport',
    about:
      'The cost of moving hidden states between stages, without the network: encoding a hidden-state frame into ≤ 256 KiB chunks and reassembling it (float32 and float16 on the wire), and one-way delivery through the in-memory loopback transport. Hidden size 1024 (Qwen3-0.6B); 1 token is a decode step, 128 and 1024 tokens are prefills.',
    run: 'npx tsx client/transport/bench.ts [--reps 15]',
    render: frameCodecSection,
  },
  'signaling.json': {
    title: 'Coordinator under load (`bench:signaling`)',
    about:
      "The access point with many sessions at once: the server in a child process, and in the bench process many sessions of pages that join, report a profile and get planned as soon as their roster is complete. Join-to-assignment latency (a page sends `join` until it holds its `assignment` or `excluded`), the host's plan round trip, then the same one session at a time, and the server's memory.",
    run: 'npm run bench:signaling [-- --sessions 100 --peers 5 --layers 28]',
    render: signalingSection,
  },
  'storage.json': {
    title: 'Browser storage read speed (`bench:storage`)',
    about:
      "How fast a page gets unit bytes back from each browser store, in headless Chromium (persistent profile, warm OS cache), for a demo-shaped package (24 units of 2.56 MB and 2 of 77.8 MB), all units read at once as a stage does: IndexedDB with Uint8Array values (what the shard cache stored first) and with Blob values (its fallback now), OPFS (`file.arrayBuffer()`), OPFS sync access handles read in a dedicated worker (what the shard cache and the inference worker use now), and Cache Storage. Median MB/s of the timed reads after one dropped warm-up read, and the CPU seconds all the browser's processes used per GB read (what a read costs a device whose CPU is the limit); the page is served from 127.0.0.1, no network.",
    run: 'npm run bench:storage [-- --runs 3 --incognito --out FILE]',
    render: storageSection,
  },
  'storage-s13-incognito.json': {
    title: 'Browser storage read speed, session 13 (a): an off-the-record context, as the e2e pages have',
    about:
      "`bench:storage --incognito`: the same reads in a Playwright default context, whose IndexedDB, OPFS and Cache Storage live in memory (every e2e page and lab device uses such a context). Run right before (b) below, load 1.3-2.2. OPFS sync access handles, the inference worker's read, reach 512 MB/s at 2.29 CPU-s per GB here against 1,207 MB/s at 0.98 in a persistent profile; IndexedDB Blob values 752 MB/s at 3.06 against 1,272 at 1.32. So a lab device's stage read and the bench's raw IndexedDB read both pay the in-memory stores' ~2.3x CPU, and the shard-load ratio compares like with like.",
    run: 'npm run bench:storage -- --incognito --out bench/results/storage-s13-incognito.json',
    render: storageSection,
  },
  'storage-s13-persistent.json': {
    title: 'Browser storage read speed, session 13 (b): a persistent profile',
    about:
      "The same reads right after (a), in a persistent profile on disk (warm OS cache), as a user's browser has; CPU counted over the browser's process tree.",
    run: 'npm run bench:storage -- --out bench/results/storage-s13-persistent.json',
    render: storageSection,
  },
  'storage-s16-q04-incognito.json': {
    title: 'Browser storage read speed, session 16 (a): off the record, in a 0.4-core group',
    about:
      "`bench:storage --incognito --runs 2` with the whole run (Chromium included) in a cgroup v1 `cpu` group of 0.4 core (quota 1 ms per 2.5 ms period, a lab device's), made by hand for this run. Load 2-4 (a decode bench had just ended). OPFS sync access handles, the inference worker's read, reach 36 MB/s at 10.3 CPU-s per GB; IndexedDB Blob values 50 MB/s. These are Playwright's default contexts, which every lab device had until this session: the lab's stage reads ran at about this speed (a probe in the worker timed 3.47 MB units at 100-130 ms each on the equal lab).",
    run: 'npm run bench:storage -- --runs 2 --incognito --out bench/results/storage-s16-q04-incognito.json (run inside a 0.4-core cgroup)',
    render: storageSection,
  },
  'storage-s16-q04-persistent.json': {
    title: 'Browser storage read speed, session 16 (b): a profile folder, in a 0.4-core group',
    about:
      "Right after (a), in the same 0.4-core group, with a persistent profile on disk as a phone's browser has: OPFS sync access handles 105 MB/s at 3.85 CPU-s per GB (2.9x (a)), IndexedDB Blob values 58 MB/s. On a device whose CPU is the limit the off-the-record stores cost 2.7x the CPU per byte, so the lab's devices now get a profile folder each (`e2e/environment.ts` launchDeviceContext).",
    run: 'npm run bench:storage -- --runs 2 --out bench/results/storage-s16-q04-persistent.json (run inside a 0.4-core cgroup)',
    render: storageSection,
  },
  'e2e.json': {
    title: 'End to end in headless Chromium (`bench`)',
    about:
      "Real pages against the real server in a private network namespace, reported against the project's goals: the cold-start TTFT of the DP plan against the even, heuristic and single-device plans after one calibration request, on a device-lab line-up (`--lab`, default paper; runs before the lab recorded no line-up and used paper-shaped pages in one browser with DevTools throttling), with issue 12's goals on the prediction after calibration; decode tokens/s of a multi-page pipeline against one page and against transformers.js; per-hop latency and throughput over a WebRTC data channel; and shard load (IndexedDB read + session creation) against the raw IndexedDB read rate.",
    run: 'npm run bench [-- --preset realistic|demo|tiny --lab paper|equal|laptop-phones|memory-bound|off --peers 4 --tokens 256 --decode-tokens 32 --skip hop,plans,decode,api,failover]',
    render: e2eSection,
  },
  'e2e-lab.json': {
    title: 'End to end, plans on the device lab, after calibration (issue 12)',
    about:
      "The plan comparison of `npm run bench` (e2e/bench.ts) alone, on the default `realistic` preset and the paper-shaped device lab (each page its own Chromium in its own CPU control group and network namespace with tc-shaped links, plus a storage read cap): one warm-up request, one calibration request, then the DP, even, heuristic and single-device plans from cold, each predicted with the refitted parameters. Goals (issue 12): per plan TTFT and median per-phase error after calibration <= 15 %, DP's measured TTFT the lowest and <= 0.8x even's, and the measured ranking of the plans equal to the predicted one. The runs saved here (this one and the repeat below) predate the uplink fit from one request's hand-overs (planner/calibration.ts): heuristic's 3.96 s predicted hand-over below is the cross-request fit it replaced.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab.json',
    render: e2eSection,
  },
  'e2e-lab-repeat.json': {
    title: 'End to end, plans on the device lab, the same code again',
    about:
      "A second run of the lab plan comparison on the same code as the section above, started right after it (the two differ only by the machine's other work and chance): how far the measured times of the same plans on the same devices move from one run to the next.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-repeat.json',
    render: e2eSection,
  },
  'e2e-lab-before.json': {
    title: 'End to end, plans on the device lab, before the fixes of this run',
    about:
      "The same run as `e2e-lab.json` above at the commit that added the lab to `npm run bench`, before the fixes it led to: the lab's own CPU group at the default weight (under load the whole lab shared about one process's share of the machine, so devices got a fraction of their quota and contended), the read cap applied to each unit alone (a stage's concurrent reads took max(unit) / cap instead of sum / cap), and link latencies fitted per pair across the pages' offset clocks (2.8-3.2 s predicted per hand-over). Compare its calibration and per-phase tables with the section above.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-before.json',
    render: e2eSection,
  },
  'e2e-lab-s7.json': {
    title: 'End to end, plans on the device lab, session 7: robust fits',
    about:
      "The lab plan comparison after session 7's calibration fixes (planner/calibration.ts): the storage read fitted through the origin (its intercept no longer moves into the creation's fixed part), a creation line only from 3 requests, and an uplink padded to 3 samples with the session's median (one stalled hand-over no longer sets it). Still the kernel's 100 ms CFS period and one warm-up request. New in the JSON: `calibrationRuns` (the warm-up and calibration requests' own phases), `profiles`, and `labCpu` (e2e/lab-cpu.ts): per run and per stage's prefill compute, the CPU each device's processes used against its quota, the share of its CFS periods throttled, and the machine's busy cores and load.",
    run: 'npm run bench -- --lab paper --skip hop,decode,api,failover --out bench/results/e2e-lab-s7.json',
    render: e2eSection,
  },
  'e2e-lab-s7-run2.json': {
    title: 'End to end, plans on the device lab, session 7: 10 ms CFS period',
    about:
      "As the section above with each device's quota enforced every 10 ms instead of 100 ms (e2e/lab.ts LAB_CPU_PERIOD_US), and `labCpu` splitting a renderer's CPU by thread: its inference worker (`renderer:worker`), V8's and Blink's thread pools (`renderer:pool`, garbage collection and compilation) and the rest.",
    run: 'npm run bench -- --lab paper --skip hop,decode,api,failover --out bench/results/e2e-lab-s7-run2.json',
    render: e2eSection,
  },
  'e2e-lab-s7-run3.json': {
    title: 'End to end, plans on the device lab, session 7: two warm-up requests',
    about:
      "As the section above with two unreported warm-up requests before the calibration request, and the server counting a page's first two requests only until a later one is measured (signaling/calibration-store.ts WARM_UP_REQUESTS): on the lab a page's first two requests computed 2-3x slower per layer than later ones.",
    run: 'npm run bench -- --lab paper --skip hop,decode,api,failover --out bench/results/e2e-lab-s7-run3.json',
    render: e2eSection,
  },
  'e2e-lab-s7-run4.json': {
    title: 'End to end, plans on the device lab, session 7: the final fits',
    about:
      "As the section above on the fits the session ended with (planner/calibration.ts): compute rate and uplink factors from the median of the faster half of a device's samples (other work on a device only ever lengthens them), and the embedding read but not created (cost model [B1]). The replay of runs 2 and 3 through these fits (`npm run calibration-replay`) guided them; this run is their first fresh measurement.",
    run: 'npm run bench -- --lab paper --skip hop,decode,api,failover --out bench/results/e2e-lab-s7-run4.json',
    render: e2eSection,
  },
  'e2e-lab-s8-run1.json': {
    title: 'End to end, plans on the device lab, session 8: three cold runs per plan',
    about:
      "The lab plan comparison with each plan method run three times from cold (`--repeats 3`, each run on a plan made afresh with the parameters refitted so far), reported by the run of median TTFT: one lab device's session creation alone varied 0.2-2.4 s between identical requests in session 7, so one run per plan ranked noise. Also new: the kernel warm-up runs the stage's own embedding and head paths. Units were still IndexedDB Blobs. Every goal on the TTFT is met in this run (errors 0.5-6%, DP fastest and 0.75x even, the ranking as predicted); the median phase error is not (even 20%, heuristic 23%). The next section is the same comparison 40 minutes later.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-s8-run1.json',
    render: e2eSection,
  },
  'e2e-lab-s8-run2.json': {
    title: 'End to end, plans on the device lab, session 8: the same comparison again, units in OPFS',
    about:
      "As the section above, after the shard cache moved units to OPFS files read with sync access handles in the inference worker. No goal but single's TTFT is met: DP measured 6.70 s against 4.78 s predicted, its 10-layer stage on dev2 taking 1.29 s to create against 0.46 s predicted (session 7's run 4 missed the same stage the same way: 1.68 s against 0.46 s). Creation of a large stage on a slow device is under-predicted, and the DP is drawn to exactly such plans.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-s8-run2.json',
    render: e2eSection,
  },
  'e2e-lab-s9-run1.json': {
    title: 'End to end, plans on the device lab, session 9: a quiet machine',
    about:
      "The session-8 code (10 ms CFS period, units in OPFS) run again at the start of session 9, on a machine otherwise idle (load 0.0 before it, 2-3 during it). Every TTFT goal is met (errors 0.9-6.4%), DP is fastest and 0.69x even, and the measured ranking equals the predicted one; the median phase error is within 15% for even, heuristic and single and 15.4% for DP. Session creation is again the phase predicted worst (errors 3-207% per stage, DP's 11-layer stage on dev1 0.69 s against 0.30 s predicted).",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-s9-run1.json',
    render: e2eSection,
  },
  'e2e-s9-full.json': {
    title: 'End to end, every part, session 9',
    about:
      "The whole `npm run bench` (hops, the paper-lab plan comparison with 3 cold runs per plan, decode on 4 equal lab devices, the API, failover) on the session-9 code: the shortest CFS period per lab device, a step's phase records after its hand-over and the view drawn in the ring's gaps. Load 0.7 at its start, 3.7 at its end. Plans: every TTFT within 4% after one calibration request, DP fastest and 0.65x even, the measured ranking as predicted; the median phase error is within 15% for dp, heuristic and single and 17.7% for even (its stages' session creation predicted 6-78% off, each under 0.5 s). Decode in this run: 4-page 21.3 tok/s against one page 28.2 (0.76), per token 39.6 ms with 16.3 ms between stages: the decode-only run (c) above gave 32.2 ms and 11.4 ms on the same code 20 minutes earlier.",
    run: 'npm run bench -- --out bench/results/e2e-s9-full.json',
    render: e2eSection,
  },
  'e2e-s10-quiet.json': {
    title: 'End to end, every part, session 10 start (session 9 code)',
    about:
      "The whole `npm run bench` on the code session 9 left, started on a quiet machine (load 0.1) that other work loaded to 4-7 by the decode and failover parts. Plans: TTFT within 4% after calibration for every plan, DP fastest and 0.72x even, the measured ranking as predicted; median phase error 17.0% (dp), 13.6% (even), 14.1% (heuristic), 2.3% (single): dp's was the miss, its session creations 17-46% off and its prefill computes 8-31% off. Decode (host loaded): 4-page 12.2 tok/s against one page 19.4 (0.63), 78 ms per token against 24.9 ms of kernels. Shard load / raw read 0.33; longest cold main-thread task 144 ms.",
    run: 'npm run bench -- --out bench/results/e2e-s10-quiet.json',
    render: e2eSection,
  },
  'e2e-s10-final.json': {
    title: "End to end, every part, session 10's final code",
    about:
      "The whole `npm run bench` on the session's last code: the profile's storage read in the worker, pages on the server's clock, hops one by one. Load 1.0 at the start, 3.0 at the end. Plans: TTFT after calibration within 0.5% (dp), 3.7%, 8.2% and 1.0%; median phase error 13.9% (dp), 8.0% (even), 19.5% (heuristic: its prefill computes 21-22% slower than predicted on three stages, a creation 32% off, its hand-overs 25-99%), 1.2% (single); DP fastest and 0.71x even; ranking as predicted. Decode on the equal lab: 4-page 18.1 tok/s against one page 22.5 (0.80, the goal met in this run); per token 42.6 ms against kernels 16.4 ms + hops 3.4 ms (x 2.15), the hops read one by one 1.5 / 1.0 / 2.5 / 4.2 ms (clocks to 0.6 ms). Shard load / raw read 0.27 (median stage); longest cold main-thread task 153 ms. API and failover goals met.",
    run: 'npm run bench -- --out bench/results/e2e-s10-final.json',
    render: e2eSection,
  },
  'e2e-s10-profile-opfs.json': {
    title: 'End to end, every part, session 10: the profile reads storage as a stage does',
    about:
      "The whole `npm run bench` after the profile's storage read moved to the store and thread a stage reads from: a test unit stored like a cached unit (an OPFS file here) and read by the inference worker under the page's emulated cap (client/profiler/stored-unit-read.ts). Load 1.1 at the start, 2.9 at the end. Plans: TTFT within 4% after calibration for every plan, DP fastest and 0.72x even, ranking as predicted; median phase error 24.8% (dp), 11.2% (even), 12.1% (heuristic), 6.4% (single): dp's session creations were over-predicted by 25-38% (fitted on the earlier even requests; creation gets faster through a session) and its first stage's compute under-predicted by 31%. Before calibration the storage reads were predicted within 6-13% (10-15% with the old main-thread IndexedDB probe in e2e-s10-quiet). Decode: 4-page 18.2 tok/s against one page 24.4 (0.74), 46 ms per token; shard load / raw read 0.23; longest cold main-thread task 188 ms.",
    run: 'npm run bench -- --out bench/results/e2e-s10-profile-opfs.json',
    render: e2eSection,
  },
  'e2e-lab-s10-clock.json': {
    title: "Plans on the device lab, session 10: pages on the server's clock",
    about:
      "The plan comparison alone (`--skip hop,decode,api,failover`) after pages time a request's phases from the server's send of `start`, each reading its clock through the offset its heartbeats' round trips give (core/clock-offset.ts), so that a hand-over reads across two pages: the hand-overs that found their receiver loaded measured 9-28 ms here, against 3-121 ms in session 9's whole bench, whose pages each timed from their own arrival of `start`. Load 2.6-3.4. TTFT after calibration within 13% (dp), 2%, 1% and 0%; median phase error 15.6% (dp, a miss by 0.6 points), 4.6%, 14.9%, 4.5%; DP fastest and 0.79x even; ranking as predicted. The misses are session creation (4-150% off, over- and under-predicted) and the model's hand-overs (predicted 14-41 ms against 9-28 ms measured).",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-s10-clock.json',
    render: e2eSection,
  },
  'e2e-s15-final.json': {
    title: "End to end, every part, session 15's code",
    about:
      "The whole `npm run bench` after session 15: the inference worker holds a decode step's phases up to 1 s and the page reports decode phases once a second (a ring device's main thread takes ~10-15 messages a second while the ring decodes, not ~40), and a ring stage's page leaves the timeline chart as it is until its own prefill is handed on. Load 3.4 at the start, 2.7-3.0 at the end. Plans on the paper lab: TTFT after calibration within 5.9% (dp), 1.8%, 0.2% and 3.2% ✓; median phase error 11.9% (dp), 8.8%, 6.8%, 5.6% ✓ (dp's was 16.1% in `e2e-s14-final`: with this lab's run-to-run noise in session creation and hand-overs it moves by a few points from run to run); DP fastest (dp 3.96 / 3.85 / 4.13 s, even 5.14-5.71 s, heuristic 4.45-4.94 s, single 5.96-6.65 s), 0.88x the next plan and 0.76x even ✓; the measured ranking as predicted ✓. Decode on the equal lab: 4-page 34.3 / 36.0 / 37.4 tok/s against one page 37.0 / 34.8 / 42.5 (0.97 ✓); 24.1 ms per token against kernels 11.1 ms + hops 1.2 ms (x 1.95 ✗), cycles 17.5 ms (p10) to 42.4 ms (p90). Shard load / raw read 0.20 ✗. Longest cold main-thread task 144 ms ✗ (a worker message and a draw in one task); the other cold runs 50-80 ms or none. API ✓; failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s15-final.json',
    render: e2eSection,
  },
  'e2e-s27-final-code.json': {
    title: "End to end, every part, session 27's final code",
    about:
      "The whole `npm run bench` at commit 3f24882 (the final code: the review's changes to the page and the lab, each device's placement logged: the paper lab's five devices on CPUs 0, 1, 0, 1, 0, the equal lab's four on 0, 1, 0, 1). Load 1.0 at the start, 8.8 at the end. Every goal met. Issue 11 on the equal lab: 4-page decode 72.5 against one page 70.3 tok/s (1.03 ✓; alternated runs 50.3 / 72.5 / 73.3 against 56.2 / 74.7 / 70.3); 12.42 ms per token against the kernels at device speed 13.83 ms + 4 hops 6.20 ms (x 0.62 ✓; one page of the same shape timed the whole model at 12.17 ms); shard load / raw read 0.70 ✓; no main-thread task over 50 ms in the six cold requests ✓; API ✓ (-3.9 ms); failover 10 of 10 ✓. Issue 12 on the paper lab: TTFT after calibration within 4.4% (dp), 0.6%, 0.9%, 1.8% ✓; median phase error 5.0% (dp), 6.0%, 10.5%, 5.1% ✓; DP 0.66x the next plan and 0.59x even; measured ranking = predicted.",
    run: 'npm run bench -- --out bench/results/e2e-s27-final-code.json',
    render: e2eSection,
  },
  'e2e-s27-final-decode.json': {
    title: "Decode rows, session 27's final code",
    about:
      "The decode part of `npm run bench` at commit f77c52c (after the review: progress bars grow by a transform, the QR code built with its card). The harness logged the lab's placement: each device on one CPU (0, 1, 0, 1). Load 2.5 at the start, 3.0 at the end. 4-page decode 65.2 against one page 71.2 tok/s (0.917 ✓; alternated runs 65.2 / 76.2 / 58.5 against 61.3 / 78.9 / 71.2); per token x 0.80 against the kernels at device speed + hops ✓; shard load 0.63 ✓; no main-thread task over 50 ms in the six cold requests ✓.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-final-decode.json',
    render: e2eSection,
  },
  'e2e-s27-final.json': {
    title: "End to end, every part, session 27's final run",
    about:
      "The whole `npm run bench` at commit 620f52e (the code of `e2e-s27-pin`: the page's parts patched into the DOM, each lab device confined to one CPU). Load 1.4 at the start, 9.6 at the end. Every goal met. Issue 11 on the equal lab: 4-page decode 66.6 against one page 72.6 tok/s (0.918 ✓; alternated runs 66.6 / 67.3 / 60.2 against 80.6 / 65.3 / 72.6); 10.91 ms per token against the kernels at device speed 12.31 ms (x 0.89 ✓; one page of the same shape timed the whole model at 11.92 ms); the hop row's one-way estimate came out 0 here (128 B median 0.50 ms against a 1.20 ms tiny round trip), so the budget is the kernels alone; shard load / raw read 0.63 ✓; no main-thread task over 50 ms in the six cold requests ✓; API ✓ (-9.5 ms); failover 10 of 10 ✓. Issue 12 on the paper lab: TTFT after calibration within 3.7% (dp), 0.4%, 0.7%, 1.7% ✓; median phase error 11.8% (dp), 2.2%, 12.3%, 4.6% ✓; DP 0.66x the next plan and 0.58x even; measured ranking = predicted.",
    run: 'npm run bench -- --out bench/results/e2e-s27-final.json',
    render: e2eSection,
  },
  'e2e-s27-ab-free-1.json': {
    title: 'Decode rows, session 27, A/B of the CPU confinement: devices free, run 1',
    about:
      "Six decode parts of `npm run bench` at commit 1a4c3a6 (the code of `e2e-s27-pin`), alternating the lab with each device's browser free on both CPUs (`TANDEM_LAB_PIN=0`, this run and the `free` ones below) and confined to one CPU (the `pin` ones), from 03:13 to 03:24 UTC; with `e2e-s27-free-decode` and `e2e-s27-pin-decode3` just before, four runs each. Devices free: 4-page / one-page decode 1.20, 0.95, 0.88, 1.08; confined: 0.97, 0.86, 0.78, 0.92. No main-thread task over 50 ms in any of the 48 cold requests either way. Over the session, with the page's parts patched into the DOM, 1 of 30 cold requests had such a task with the devices free (`e2e-s27-update-decode`) and 1 of 60 confined (`e2e-s27-pin-decode2`; counting the three full runs and `e2e-s27-final-decode`): the bench cannot tell the two labs apart there, where session 26 saw 1-2 in 6 per run; the traces (`decode-trace-lab-cold-s27-*`) show how confining works. This run: load 0.3 at the start, 2.9 at the end; 67.5 against 71.3 tok/s (0.95 \u2713); per token x 0.82 \u2713; shard load 0.57 \u2713; no cold task over 50 ms \u2713.",
    run: 'TANDEM_LAB_PIN=0 npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-ab-free-1.json',
    render: e2eSection,
  },
  'e2e-s27-ab-pin-1.json': {
    title: 'Decode rows, session 27, A/B of the CPU confinement: devices confined, run 1',
    about:
      'See `e2e-s27-ab-free-1`. Load 2.9 at the start, 5.0 at the end. 68.6 against 79.5 tok/s (0.86 \u2713); per token x 0.63 \u2713; shard load 0.55 \u2713; no cold task over 50 ms \u2713.',
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-ab-pin-1.json',
    render: e2eSection,
  },
  'e2e-s27-ab-free-2.json': {
    title: 'Decode rows, session 27, A/B of the CPU confinement: devices free, run 2',
    about:
      'See `e2e-s27-ab-free-1`. Load 4.8 at the start, 3.2 at the end. 58.4 against 66.2 tok/s (0.88 \u2713); per token x 0.89 \u2713; shard load 0.64 \u2713; no cold task over 50 ms \u2713.',
    run: 'TANDEM_LAB_PIN=0 npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-ab-free-2.json',
    render: e2eSection,
  },
  'e2e-s27-ab-pin-2.json': {
    title: 'Decode rows, session 27, A/B of the CPU confinement: devices confined, run 2',
    about:
      'See `e2e-s27-ab-free-1`. Load 3.2 at the start and the end. 55.5 against 71.0 tok/s (0.78 \u2717); per token x 1.03 \u2713; shard load 0.60 \u2713; no cold task over 50 ms \u2713.',
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-ab-pin-2.json',
    render: e2eSection,
  },
  'e2e-s27-ab-free-3.json': {
    title: 'Decode rows, session 27, A/B of the CPU confinement: devices free, run 3',
    about:
      'See `e2e-s27-ab-free-1`. Load 3.2 at the start, 4.9 at the end. 78.1 against 72.4 tok/s (1.08 \u2713); per token x 0.75 \u2713; shard load 0.55 \u2713; no cold task over 50 ms \u2713.',
    run: 'TANDEM_LAB_PIN=0 npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-ab-free-3.json',
    render: e2eSection,
  },
  'e2e-s27-ab-pin-3.json': {
    title: 'Decode rows, session 27, A/B of the CPU confinement: devices confined, run 3',
    about:
      'See `e2e-s27-ab-free-1`. Load 4.9 at the start, 4.1 at the end. 66.3 against 72.3 tok/s (0.92 \u2713); per token x 0.66 \u2713; shard load 0.36 \u2717; no cold task over 50 ms \u2713.',
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-ab-pin-3.json',
    render: e2eSection,
  },
  'e2e-s27-free-decode.json': {
    title: 'Decode rows, session 27: lab devices free on both CPUs (TANDEM_LAB_PIN=0)',
    about:
      "The decode part of `npm run bench` at commit 1a4c3a6 with `TANDEM_LAB_PIN=0`. Load 0.6 at the start, 1.7 at the end. 4-page decode 90.3 against one page 75.3 tok/s (1.20 \u2713; alternated runs 60.3 / 90.3 / 98.0 against 75.3 / 77.5 / 73.1); per token x 0.72 \u2713; shard load 0.68 \u2713; no cold task over 50 ms \u2713. Each ring stage's compute-to-sent time 0.05-0.10 ms.",
    run: 'TANDEM_LAB_PIN=0 npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-free-decode.json',
    render: e2eSection,
  },
  'e2e-s27-pin-decode3.json': {
    title: 'Decode rows, session 27: lab devices on one CPU each, third run',
    about:
      "The decode part of `npm run bench` at commit 1a4c3a6, right after `e2e-s27-free-decode`. Load 1.7 at the start, 3.8 at the end. 4-page decode 72.3 against one page 74.9 tok/s (0.97 \u2713; alternated runs 54.0 / 73.0 / 72.3 against 68.2 / 74.9 / 80.9); per token x 0.77 \u2713; shard load 0.73 \u2713; no cold task over 50 ms \u2713. Each ring stage's compute-to-sent time 0.44-1.50 ms.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-pin-decode3.json',
    render: e2eSection,
  },
  'e2e-s27-pin.json': {
    title: 'End to end, every part, session 27: each lab device on one CPU',
    about:
      "The whole `npm run bench` at commit 98cb92e: the page's parts patched into the DOM (`client/ui/dom.ts` `update`) and each lab device's browser confined to one CPU by a cpuset, so that its page's main thread, at nice -8, goes ahead of its inference worker within the device's quota (`labDeviceCpus`, then in e2e/lab-ui-priority.ts, since in e2e/lab-cpus.ts). Load 0.4 at the start, 8.0 at the end. Every goal met. Issue 11 on the equal lab: 4-page decode 53.4 against one page 66.2 tok/s (0.806 ✓; alternated runs 53.4 / 52.2 / 60.6 against 58.4 / 66.2 / 70.4); 15.22 ms per token against the kernels at device speed 15.15 ms + 4 hops 3.40 ms (x 0.82 ✓; one page of the same shape timed the whole model at 14.23 ms); shard load / raw read 0.69 ✓; no main-thread task over 50 ms in the six cold requests ✓; API ✓ (-9.3 ms); failover 10 of 10 ✓. Each ring stage's compute-to-sent time was 0.84-2.53 ms per token, against 0.07-0.30 ms with the devices free on both CPUs (`e2e-s27-update-decode`); why is not measured (docs/architecture.md, device lab). Issue 12 on the paper lab: TTFT after calibration within 4.1% (dp), 0.7%, 0.7%, 0.2% ✓; median phase error 7.2% (dp), 3.8%, 6.4%, 2.4% ✓; DP 0.66x the next plan and 0.59x even; measured ranking = predicted.",
    run: 'npm run bench -- --out bench/results/e2e-s27-pin.json',
    render: e2eSection,
  },
  'e2e-s27-pin-decode2.json': {
    title: 'Decode rows, session 27: lab devices on one CPU each, second run',
    about:
      "The decode part of `npm run bench` at commit 98cb92e (as `e2e-s27-pin`), right after it. Load 2.3 at the start, 2.6 at the end. 4-page decode 56.1 against one page 72.0 tok/s (0.780 ✗; alternated runs 47.4 / 56.1 / 61.4 against 62.1 / 72.0 / 77.8): the stages' kernels at device speed summed to 14.74 ms a token, one page's whole-model kernel to 11.95 ms. 15.21 ms per token (x 0.71 ✓ against the kernels at device speed + hops); shard load 0.63 ✓. One of the six cold requests had a main-thread task over 50 ms ✗: 132 ms on the single-page plan's page, a timer callback of 133 ms (4 ms of it the view's render).",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-pin-decode2.json',
    render: e2eSection,
  },
  'e2e-s27-pin-decode.json': {
    title: 'Decode rows, session 27: each lab device on one CPU',
    about:
      "The decode part of `npm run bench` at commit bd9fd7d: each lab device's browser confined to one CPU (a cgroup v1 cpuset) besides its quota. Load 2.1 at the start, 3.4 at the end. 4-page decode 49.4 against one page 60.6 tok/s (0.815 ✓; alternated runs 47.6 / 49.4 / 67.6 against 60.2 / 60.6 / 75.5); 17.44 ms per token against the kernels at device speed 15.22 ms + 4 hops 5.80 ms (x 0.83 ✓); shard load 0.50 ✓; no main-thread task over 50 ms in the six cold requests ✓. Each ring stage's compute-to-sent time rose to 1.33-2.51 ms per token (0.07-0.30 ms in `e2e-s27-update-decode`), the pipeline's median token from 11.4 to 17.4 ms.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-pin-decode.json',
    render: e2eSection,
  },
  'e2e-s27-update-decode.json': {
    title: "Decode rows, session 27: the page's parts patched into the DOM",
    about:
      "The decode part of `npm run bench` at commit 3665975: the page's parts and the timeline's figures and step table are patched into the DOM (`client/ui/dom.ts` `update`: old nodes of the new ones' tags stay, only texts, attributes and children change) instead of replaced; the lab as in session 26 (each device free on both CPUs). Load 0.5 at the start, 4.1 at the end. 4-page decode 67.7 against one page 68.7 tok/s (0.99 ✓; alternated runs 67.7 / 73.5 / 65.0 against 65.8 / 76.4 / 68.7); 11.43 ms per token against the kernels at device speed 13.25 ms + 4 hops 1.00 ms (x 0.80 ✓); shard load 0.49 ✗; one of the six cold requests had a main-thread task over 50 ms ✗: 131 ms, the view's render on the single-page plan's page, while it loaded the whole model.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s27-update-decode.json',
    render: e2eSection,
  },
  'e2e-s26-decode-window.json': {
    title: 'Decode rows, session 26: cold long tasks during the request and after it, apart',
    about:
      "The decode part of `npm run bench` at session 26's final page and server (the code of `e2e-s26-chart-full`), with the cold requests' main-thread tasks split at each page's clock read as the request's last output came: before, the window ran until the request's timings were in, 1-2 s later. Load 1.1 at the start, 3.2 at the end (3.5-5.4 during the runs). 4-page 52.3 against one page 53.7 tok/s (0.97 ✓; alternated runs 52.9 / 52.3 / 51.4 against 52.0 / 53.7 / 74.1); per token x 0.95 ✓; shard load 0.60 ✓. Two of the six cold requests had one task over 50 ms during the request ✗, none after it: 92 ms on a ring page of an even plan (a frame: the view's callback 45 ms, rendering 70 ms, of wall) and 78 ms on a page outside a single-page plan (a draw run from the pacer's timer fallback, where no animation frame came in time). So the window was not what made these tasks count.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s26-decode-window.json',
    render: e2eSection,
  },
  'e2e-s26-decode-busy.json': {
    title: 'Decode rows, session 26: the calibration table and the roster held too while the stage loads (taken back)',
    about:
      "The decode part of `npm run bench` at commit f3250a6, which held the page's calibration table and roster, besides its chart, while its own stage loaded and prefilled; reverted after this run. Load 3.1 at the start and at the end (3.7-5.5 during the runs). 4-page 58.8 against one page 62.0 tok/s (0.95 ✓); per token x 0.91 ✓; shard load 0.46 ✗; two cold requests of the pipeline each had one main-thread task over 50 ms ✗: 72 ms and 57 ms on ring pages (the latter a frame of 15 ms of callback and 53 ms of rendering). A Chrome trace of a cold request on the same lab (`bench:decode-trace -- --lab equal --cold --cold-after 2`) showed such frames 1.7-2.0 s into its trace: 50-93 ms of wall for 7-16 ms of CPU each, mostly full-document layouts with ~450 of ~750 layout objects dirty. Holding more parts during the load did not remove such frames, so I took it back.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s26-decode-busy.json',
    render: e2eSection,
  },
  'e2e-s26-chart-full.json': {
    title: "End to end, every part, session 26: a single stage's chart waits too",
    about:
      "The whole `npm run bench` at commit 16f99ea: a single stage's page, like a ring stage's, leaves its timeline chart alone while its stage loads and prefills. Load 1.1 at the start, 4.5 at the end (1.6-2.9 during the decode runs). Issue 11: 4-page decode 62.5 against one page 64.0 tok/s (0.98 ✓; alternated runs 50.2 / 73.2 / 62.5 against 64.0 / 76.9 / 56.8); per token x 0.83 against the kernels at device speed (15.41 ms; one page of the same shape 14.64 ms) + hops ✓; shard load 0.55 ✓ (0.47-0.78 per stage); one main-thread task over 50 ms in the six cold requests ✗: 72 ms on a ring page of an even plan, a frame whose callback took 10 ms and its rendering 28 ms, while the chart waited. API ✓ (-8.1 ms); failover 10 of 10 ✓. Issue 12: TTFT within 5.9% (dp), 0.4%, 1.7%, 1.6% ✓; median phase error 20.8% for dp ✗ (its hand-overs of 23 and 68 ms predicted at 13 and 18 ms, its creations of 13-97 ms missed by 22-83%), 0.9%, 2.6%, 7.7%; DP 0.67x the next plan and 0.60x even; measured ranking = predicted. After this run I tried holding the calibration table and the roster too while the stage loads (`e2e-s26-decode-busy`), and took it back.",
    run: 'npm run bench -- --out bench/results/e2e-s26-chart-full.json',
    render: e2eSection,
  },
  'e2e-s26-decode-chart.json': {
    title: "Decode rows, session 26: a single stage's chart waits too",
    about:
      "The decode part of `npm run bench` at commit 16f99ea (128 decode tokens per run). Load 3.4 at the start, 3.6 at the end (4.0-5.7 during the runs). 4-page 59.3 against one page 70.7 tok/s (0.84 ✓; alternated runs 59.3 / 53.3 / 84.9 against 64.5 / 78.0 / 70.7); per token x 0.89 against the kernels at device speed (15.29 ms; one page of the same shape 12.14 ms) + hops ✓; shard load 0.84 ✓; the longest cold main-thread task 50 ms (a ring page, its frame's rendering 42 ms; the goal is <= 50 ms).",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s26-decode-chart.json',
    render: e2eSection,
  },
  'e2e-s26-repeat.json': {
    title: "End to end, every part, session 26: the final run's code once more",
    about:
      "The whole `npm run bench` again at the code of `e2e-s26-final` (at commit 58c1941, which only moves an import and adds results), right after it; load 1.7 at the start, 4.0 at the end (3.6-7.6 during the decode runs). Issue 11: 4-page decode 58.7 against one page 68.6 tok/s (0.86 ✓; alternated runs 63.9 / 54.5 / 58.7 against 68.6 / 75.0 / 67.1); 12.80-15.78 ms per pipeline token, x 0.86 against the kernels at device speed (16.06 ms; one page of the same shape 12.75 ms) + hops ✓; shard load 0.73 ✓; but two of the six cold requests had one main-thread task over 50 ms ✗: 68 ms on the single-page plan's page, a frame whose callback (the view, the timeline chart among it) took 28 ms and its rendering 35 ms of wall, and 67 ms on a ring page (not attributed). API ✓ (-26.5 ms); failover 10 of 10 ✓. Issue 12: TTFT within 5.1% (dp), 1.2%, 1.5%, 1.4% ✓; median phase error 7.4% (dp), 9.9%, 21.2% ✗ (heuristic), 17.1% ✗ (single): the single plan's median is the middle of four phases, two of them its 11 ms warm-up (36%) and its 134 ms creation (29%); DP 0.69x the next plan and 0.62x even; measured ranking = predicted. After this run the single stage's page leaves its chart alone while its stage loads and prefills, as a ring stage's page did.",
    run: 'npm run bench -- --out bench/results/e2e-s26-repeat.json',
    render: e2eSection,
  },
  'e2e-s26-final.json': {
    title: "End to end, every part, session 26's final code",
    about:
      "The whole `npm run bench` at commit 44277cb: a running request's decode phases reach its ring's pages only when it ends (`signaling/timings-relay.ts`), 128 decode tokens per decode run, the per-token row with each kernel at its lab device's speed. Load 2.8 at the start, 4.1 at the end (3.5-5.7 during the decode runs). Issue 11 on the equal lab, every goal met: 4-page decode 64.9 against one page 66.1 tok/s (0.98 ✓; alternated runs 64.9 / 55.1 / 71.6 against 66.1 / 66.3 / 61.6); 9.92 ms per token (median; p90 34 ms) against the kernels at device speed 12.64 ms + 4 hops of 0.30 ms (x 0.72 ✓; x 1.59 against the kernels as timed; one page of the same shape timed the whole model at 13.44 ms per token); shard load / raw read 0.80 ✓ (0.61-0.87 per stage); no main-thread task over 50 ms in the six cold requests ✓; API ✓ (-11.1 ms); failover 10 of 10 ✓. Issue 12: TTFT after calibration within 2.1% (dp), 0.4%, 0.5%, 0.1% ✓; median phase error 18.5% for dp ✗, 4.4%, 10.1%, 2.8%: the dp plan's creations of 23-65 ms miss by 22-77% and its hand-overs of 10-47 ms by 26-56%, while its reads are exact and its prefills within 4-15%; DP 0.67x the next plan and 0.59x even; measured ranking = predicted.",
    run: 'npm run bench -- --out bench/results/e2e-s26-final.json',
    render: e2eSection,
  },
  'e2e-s26-first.json': {
    title: "End to end, every part, session 26's first run: the per-token row at the devices' speed",
    about:
      "The whole `npm run bench` at commit 26813e3 (session 25's page and server; the per-token goal row with each kernel at its lab device's speed, see `e2e-s26-decode`), 32 decode tokens per decode run. Load 1.0 at the start, 7.2 at the end. Issue 11 on the equal lab: 4-page decode 51.9 against one page 67.6 tok/s (0.77 ✗; alternated runs 76.9 / 51.9 / 48.6 against 67.6 / 70.5 / 57.0); 15.76 ms per token against the kernels at device speed 16.69 ms + 4 hops 0.80 ms (x 0.90 ✓; x 2.11 against the kernels as timed; one page of the same shape timed the whole model at 12.91 ms); shard load / raw read 0.65 ✓; no main-thread task over 50 ms in the six cold requests ✓; API ✓ (-13.9 ms); failover 10 of 10 ✓. Issue 12: TTFT after calibration within 3.7% (dp), 0.6%, 1.6%, 0.1%; median phase error 7.6%, 9.5%, 11.2%, 2.9% ✓; DP 0.85x the fastest other plan ✓ and 0.85x even (✗, <= 0.8); measured ranking = predicted.",
    run: 'npm run bench -- --out bench/results/e2e-s26-first.json',
    render: e2eSection,
  },
  'e2e-s26-decode-r5.json': {
    title: 'Decode rows, session 26: five alternated runs of 32 tokens',
    about:
      "The decode part of `npm run bench` with five alternations instead of three, at commit 2e117c9 (which prints each pipeline run's tokens on their own account). Load 1.5 at the start, 3.0-6.5 during the runs. 4-page 48.7 / 42.1 / 36.2 / 47.6 / 59.3 against one page 65.8 / 61.0 / 58.1 / 69.0 / 66.4 tok/s: 0.72 ✗ for the median pair. Each pipeline run's median token: 15.1-23.7 ms (p90 22-40 ms) = kernels 7.7-10.1 + the stages' overhead 3.2-4.8 + hops 2.9-6.0 ms, against one page's 13.8-16.5 ms. Per token x 1.01 ✓ against the kernels at device speed. Shard load 0.40 ✗: the median run's stages read their 33 MB in 0.15 s, where other runs read them in 0.05 s. With `e2e-s26-decode` (1.04) and `e2e-s26-first` (0.77), three runs of 32 tokens in one hour put the decode ratio anywhere from 0.72 to 1.04: the reason the bench now decodes 128 tokens per run.",
    run: 'npm run bench -- --skip hop,plans,api,failover --repeats 5 --decode-tokens 32 --out bench/results/e2e-s26-decode-r5.json',
    render: e2eSection,
  },
  'e2e-s26-decode256.json': {
    title: 'Decode rows, session 26: one 256-token run each, every timing report relayed to every page',
    about:
      "The decode part of `npm run bench`, one alternation of 256 decode tokens, at commit 2e117c9: the server relays each page's timing reports to every page of the session as they come. Load 0.3 at the start, 4.0 at the end (4.6 during the pipeline run). 4-page 55.5 against one page 53.1 tok/s (1.04 ✓); 14.86 ms per token, x 0.87 against the kernels at device speed (16.17 ms) + hops ✓; shard load 0.75 ✓. The lab's CPU report per token (each run's CPU over its 256 tokens, prefill included): each ring device spent 1.6-2.8 ms in its inference worker and 2.0-2.4 ms outside it (its page's main thread 0.41-0.55, the renderer's WebRTC and other threads 0.43-0.60, V8's and Blink's pool 0.51-0.63, the network service 0.35-0.39, the browser process 0.12-0.20 ms); the one page's device 0.23 ms on its main thread. A Chrome trace of such a decode (e2e/decode-trace.ts) showed each ring page's main thread taking ~60 WebSocket frames a second, in bursts, every page's decode phases relayed to it.",
    run: 'npm run bench -- --skip hop,plans,api,failover --repeats 1 --decode-tokens 256 --out bench/results/e2e-s26-decode256.json',
    render: e2eSection,
  },
  'e2e-s26-decode256-norelay.json': {
    title: 'Decode rows, session 26: a scratch server that relays no decode phase (not kept)',
    about:
      "As `e2e-s26-decode256`, with a scratch change to the server (not committed): a timing report's decode phases (step 1 on) were relayed to no one, so the driver's decode figures are missing and the decode-rate rows say n/a; only the lab's CPU report counts here. Load 0.2 at the start, 2.9 at the end (4.0 during the pipeline run). Per token, each ring device spent 1.5-2.8 ms in its worker and 1.4-1.8 ms outside it (main thread 0.24-0.39, network service 0.23-0.27, WebRTC and other threads 0.32-0.43 ms), against 2.0-2.4 ms with every report relayed: the relay's share. The server kept since (`signaling/timings-relay.ts`) holds a running request's decode phases for its ring's pages until it ends, and relays them to every other connection at once.",
    run: 'npm run bench -- --skip hop,plans,api,failover --repeats 1 --decode-tokens 256 --out bench/results/e2e-s26-decode256-norelay.json (with the scratch server)',
    render: e2eSection,
  },
  'e2e-s26-decode256-held.json': {
    title: "Decode rows, session 26: one 256-token run each, decode phases held for the ring's pages",
    about:
      "As `e2e-s26-decode256` at commit 06cd65d: the server holds a running request's decode phases for the pages of its ring and sends them when the request ends (`signaling/timings-relay.ts`). Load 2.4 at the start, 2.9 at the end (3.7 during the runs). 4-page 60.6 against one page 63.5 tok/s (0.95 ✓); 13.16 ms per token (its parts: kernels 6.93 + the stages' overhead 2.25 + hops 3.01 ms), x 0.80 against the kernels at device speed + hops ✓; shard load 0.63 ✓; no cold main-thread task over 50 ms ✓. Per token over the whole run, each ring device spent 1.8-2.2 ms outside its worker: the held phases still arrive within the run, at its end. A Chrome trace of the same decode (e2e/decode-trace.ts, samples off) shows where they went: each ring page's main thread took 10-20 WebSocket frames a second while the ring decoded and ~125 in the half second after the last token, where the trace before the change showed ~60 a second throughout.",
    run: 'npm run bench -- --skip hop,plans,api,failover --repeats 1 --decode-tokens 256 --out bench/results/e2e-s26-decode256-held.json',
    render: e2eSection,
  },
  'e2e-s26-decode.json': {
    title: "Decode rows, session 26: the per-token budget with each kernel at its device's speed",
    about:
      "The decode part of `npm run bench` (hop, plans, API and failover skipped) at commit 26813e3; load 1.8 at the start, 3.8 at the end, 4.7-6.6 during the decode runs (its own four lab browsers). The code is session 25's; what changed is the per-token goal row's account. A lab device's quota is checked at the kernel's 4 ms scheduler tick, so a stage's 1-2 ms decode kernel runs as a burst at the host's speed and the device pays the debt after it (e2e/lab.ts measured a 1.3 ms burst at 1.3 ms of wall, 16 ms at 37 ms): the row now sets each kernel at its device's speed, kernel / 0.4 core (core/step-breakdown.ts `ringBudget`). Cross-check in the same run: the stages' kernels at device speed sum to 13.97 ms; one page of the same shape, whose 14 ms kernel meets the tick, timed the whole model at 14.37 ms per token. The pipeline took 12.75 ms per token against 13.97 + 4 hops of 0.25 ms: x 0.85 ✓. Against the kernels as timed (5.59 ms) it is x 1.93, the figure earlier sessions reported. 4-page decode 65.9 against one page 63.5 tok/s (1.04 ✓; alternated runs 69.3 / 65.9 / 63.0 against 63.5 / 59.3 / 77.3). Shard load / raw read 0.68 ✓ (0.65-0.78 per stage). No main-thread task over 50 ms in the six cold requests ✓.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s26-decode.json',
    render: e2eSection,
  },
  'e2e-s25-final.json': {
    title: "End to end, every part, session 25's final code",
    about:
      "The whole `npm run bench` at the session's final code: on top of `e2e-s25-kept`, the cold start skips the unit lookups of a prepared stage (the files it keeps open), a stage in parts keeps its files on the reader thread that reads them, and a page is prepared once its files are open. Load 0.6 at the start, 4.7 at the end. Issue 11 on the equal lab: shard load / raw read 0.75 ✓ (per stage 0.37-0.87); 4-page decode 42.9 against one page 54.4 tok/s (0.79 ✗; alternated runs 55.4 / 42.4 / 42.9 against 48.5 / 54.4 / 72.3, where `e2e-s25-kept` gave 1.05); 17.4 ms per token against kernels 6.3 ms + hops 1.8 ms (x 2.14 ✗); longest cold main-thread task 66 ms ✗ (one task in one of the three single-page cold requests; none in the other five). API ✓ (-8.2 ms); failover 10 of 10 ✓. Issue 12: TTFT after calibration within 5.0% (dp), 0.5%, 1.1%, 0.8%; median phase error 18.7% for dp ✗, 10.4%, 1.2%, 4.3%: the dp plan's median falls among its short phases, which every session mispredicts by about as much (its creations of 16-124 ms by 22-64% here, 1-123% in session 24's final run; its two prefill hand-overs of 32-59 ms predicted at 7-14 ms; its prefills by 2-21%), while its four storage reads are within 0.1%; session 24's runs gave 5.7% and 10.8%, session 23's 12.6%, this session's 15.8%, 8.4% (plans only) and 18.7%. DP 0.66x the next plan and 0.59x even; measured ranking = predicted.",
    run: 'npm run bench -- --out bench/results/e2e-s25-final.json',
    render: e2eSection,
  },
  'e2e-s25-kept.json': {
    title: 'End to end, every part, session 25: unit files opened when a stage is prepared',
    about:
      "The whole `npm run bench` at commit bb8e738: a page opens its stage's unit files (read-only OPFS sync access handles) and builds the stage's graph when it prepares the stage, before any request, so a cold start reads the bytes and makes no round trip to the browser process per unit (in a cold request on the 0.4-core lab those round trips had taken 20-135 ms per unit, queued, against 1.5-5 ms for a 3.5 MB unit's bytes; a console probe, not kept). Load 1.7 at the start, 3.6 at the end. Issue 11 on the equal lab: shard load / raw read 0.61 ✓ (per stage 0.49-0.81; 0.43 in session 24's final run): a 13.9 MB stage read in 35-42 ms against 78-129 ms then, the whole model on one device in 0.15 s against 0.28 s, so session creation is now most of a load; longest cold main-thread task 0 ✓ (no task over 50 ms in the six cold requests); 4-page decode 66.4 against one page 62.9 tok/s (1.05 ✓); 14.8 ms per token against kernels 6.3 ms + hops 1.0 ms (x 2.04 ✗, as before: the stages' kernels run as bursts at the host's speed under the quota and the debt comes due in the hops). API ✓ (-3.5 ms); failover 10 of 10 ✓. Issue 12 in this run: TTFT after calibration within 7.2% (dp), 1.1%, 1.4%, 0.0%; median phase error 15.8% for dp ✗ (its short creations: 0.02-0.09 s, one predicted at 0.21 s), 7.2%, 6.1%, 1.1%; a plans-only run right after, with the cold start's unit lookups also skipped (commit after this one), gave dp 8.4%, even 6.2%, heuristic 2.6%, single 7.0%, TTFT within 4.6% / 0.6% / 1.3% / 0.9%; DP 0.69x the next plan and 0.62x even.",
    run: 'npm run bench -- --out bench/results/e2e-s25-kept.json',
    render: e2eSection,
  },
  'e2e-s24-final.json': {
    title: 'End to end, every part, session 24: stages in parts where a device has a core to spare',
    about:
      "The whole `npm run bench` at the session's final code (the parallel-load figure the median of three samples). Every page's figure is in the log: the paper lab's devices 1.02-1.17 and the equal lab's 1.02-1.16, so they load in one part as before; of the hop bench's two plain pages one read 1.62 (in parts). Load 3.0 at the start, 4.6 at the end. Every issue-12 goal holds: TTFT after calibration within 1.6% (dp), 1.5% (even), 2.4% (heuristic), 1.1% (single); median phase error 5.7%, 6.6%, 5.0%, 8.2%; DP 0.80x the next plan and 0.60x even; measured ranking = predicted. Issue 11 on the equal lab: 4-page decode 49.7 against one page 54.5 tok/s (0.91 ✓); 17.5 ms per token against kernels 7.7 ms + hops 0.8 ms (x 2.05 ✗); shard load / raw read 0.43 ✗ (per stage 0.28-0.51); longest cold main-thread task 76 ms ✗ (one frame in one of the three single-page cold requests; none in the pipeline's). API ✓ (-2.8 ms); failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s24-final.json',
    render: e2eSection,
  },
  'e2e-s24-full.json': {
    title: 'End to end, every part, session 24, with a one-sample parallel-load figure',
    about:
      "The whole `npm run bench` at commit 12e1192, where the profile's parallel-load figure was one short sample (two threads spinning ~18 ms each). Load 3.0 at the start, 4.6 at the end. The issue-12 goals all hold (TTFT within 2.2% (dp), 1.4%, 1.1%, 0.0%; median phase error 10.8%, 10.3%, 6.6%, 7.0%; DP 0.68x the next plan, 0.61x even). On the equal lab the shard load fell to 0.21 of the raw read (0.41-0.44 in session 23; the stages' reads took 0.14-0.33 s against 0.05-0.15 s) and the decode ratio was 0.795: a decode-only run right after, at the same code, read the single-page stage in 1.07 s against 0.27 s with `?parts=off`, the lab device's stage evidently loaded in parts, which the load-parts bench had found 1.3x slower on a CPU-quota device. A short sample there can read 1.5 and more (the quota lets bursts run past its share), so the figure became the median of three longer samples (`e2e-s24-final.json`).",
    run: 'npm run bench -- --out bench/results/e2e-s24-full.json',
    render: e2eSection,
  },
  'e2e-s23-full.json': {
    title: 'End to end, every part, session 23: a quiet machine',
    about:
      "The whole `npm run bench` at commit dd0f8f0 (session 22's lab and runtime; this session changed only planning for q4 packages and the WebGPU stage check, neither of which the lab's fp32 wasm pages run). The machine was quiet and faster than in session 21 (load 0.4 at the start, 4.2 at the end; one page decoded 56 tok/s against 28 then; the whole run took 8.5 minutes). Every issue-12 goal holds in this one run: after one calibration request TTFT within 3.8% (dp: 2.85 s against 2.74 s predicted), 0.5% (even), 1.7% (heuristic) and 0.6% (single); median phase error 12.6% (dp), 4.0% (even), 4.5% (heuristic) and 1.7% (single), against 21.4% and 19.4% for heuristic and single at load 5-6 in session 21; DP fastest (2.85 s against heuristic 4.17, even 4.62, single 5.63), 0.68x the next plan and 0.62x even; measured ranking = predicted. The three cold runs of each plan measured within 8% of each other. Issue 11's goals on the lab stay unmet: decode 4-page 55.3 / 44.8 / 36.7 tok/s against one page 56.1 / 59.2 / 51.2 (0.797 ✗; 0.82-0.95 in four decode-only runs an hour earlier); 20.9 ms per token against kernels 7.4 ms + hops 1.2 ms (x 2.42 ✗): the pipeline's four stages computed their layers in 7.4 ms where the one page took 16.9 ms for the same work, so a 0.4-core quota evidently lets a short burst run at full speed (this kernel ticks every 4 ms, coarser than the 2.5 ms quota period), and the ring's 9 ms between stages (2.25 ms per hop against 0.30 ms alone) weighs more; shard load / raw read 0.44 ✗ (0.67 in session 21: the raw IndexedDB read is now 276-366 MB/s against 38-55 then, and session creation, 48 ms for a 13.9 MB stage, did not speed up alike); longest cold main-thread task 75 ms ✗ (one frame, 63 ms of rendering, in one of six cold requests; the other five had none over 50 ms). API ✓ (-20 ms); failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s23-full.json',
    render: e2eSection,
  },
  'e2e-s23-plans-repeat.json': {
    title: 'Plans on the device lab, session 23: the same comparison again',
    about:
      "The plan comparison of `npm run bench` alone, right after the section above on the same code (plus a commit that only touches a forced-WebGPU page's profile text), load 0.8 at the start and 1.3 at the end: every issue-12 goal holds again. After one calibration request TTFT within 2.9% (dp: 2.74 s against 2.66 s predicted), 0.5% (even), 2.8% (heuristic) and 0.5% (single); median phase error 11.2%, 3.2%, 7.4% and 4.9%; DP fastest (2.74 s against heuristic 4.18, even 4.59, single 5.69), 0.65x the next plan and 0.60x even; measured ranking = predicted.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-s23-plans-repeat.json',
    render: e2eSection,
  },
  'e2e-s23-plans-final.json': {
    title: "Plans on the device lab, session 23's final code",
    about:
      'The plan comparison of `npm run bench` alone at commit 5a74a18 (the sections above plus spare downloads paused while a request runs), load 1.8 at the start and 1.4 at the end: every issue-12 goal holds a third time. After one calibration request TTFT within 6.8% (dp: 2.80 s against 2.61 s predicted), 0.3% (even), 0.7% (heuristic) and 0.0% (single); median phase error 10.6%, 2.6%, 9.4% and 0.1%; DP fastest (2.80 s against heuristic 4.11, even 4.61, single 5.56), 0.68x the next plan and 0.61x even; measured ranking = predicted.',
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-s23-plans-final.json',
    render: e2eSection,
  },
  'e2e-s23-decode-final.json': {
    title: "Decode on the device lab, session 23's final code",
    about:
      "The decode rows of `npm run bench` at commit bf0d071 (spare downloads paused while a request runs, and reported), load 0.7 at the start and 3.5 at the end. 4-page decode 58.3 / 48.9 / 57.2 tok/s against one page 47.0 / 58.0 / 58.3 (0.99 ✓); 17.3 ms per token against kernels 7.5 ms + hops 1.4 ms (x 1.95 ✗), 1.91 ms per hop in the ring against 0.35 ms alone; the four stages' kernels took 7.5 ms where one page took 13.4 ms for the same work (short bursts run at the host's speed under the lab's quota, e2e/lab.ts). Shard load / raw read 0.41 ✗. Longest cold main-thread task 62 ms ✗: one frame over 50 ms in two of the three cold even requests (57 and 62 ms), none in the three cold single-page requests, on the stage's page or the three idle ones.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s23-decode-final.json',
    render: e2eSection,
  },
  'e2e-s21-full.json': {
    title: 'End to end, every part, session 21: page main threads at display priority in the lab',
    about:
      "The whole `npm run bench` at commit 38d6271: the lab raises each device's foreground renderer main thread to nice -8 within the device's quota (`e2e-s21-ui-nice8` below), and the e2e harness gives a stalled page 120 s (`--stall-timeout-ms`). Load 3.0 at the start, 4.9-6.2 through the run. Plans on the paper lab after calibration: TTFT within 9.5% (dp: 3.79 s median against 3.44 s predicted, under-predicted again in all three repeats: 4.07 / 3.79 / 3.57 s against 3.40 / 3.44 / 3.49 s), 1.6% (even), 0.7% (heuristic) and 0.4% (single); median phase error 14.0% (dp ✓), 4.8% (even), 21.4% (heuristic ✗) and 19.4% (single ✗). The two misses are the short phases: each stage's warm-up (the start's dispatch to the stage, 12-31 ms) was 27-66% off in both, and heuristic's session creations of 0.13-0.51 s were 13-65% off; single's four phases are a 20 ms warm-up (52%), the read (0.3%), a 0.58 s creation predicted at 0.75 s (29%) and the compute (10%). The same phases of one plan moved by a median 23-41% between its three repeats (creations of 0.05-1 s, this run and the three before), so one calibration request cannot predict them within 15%. DP fastest (3.79 s against heuristic 4.58, even 5.30, single 6.50), 0.83x the next plan and 0.72x even ✓; measured ranking = predicted ✓. Six of the eight calibration goals hold. Decode on the equal lab: 4-page 13.0 / 16.4 / 12.6 tok/s against one page 17.8 / 29.5 / 27.7 (0.47 ✗, against 0.74-0.77 in the A/B pair at load 1.5-3.9 an hour earlier); 57.7 ms per token against kernels 28.0 ms + hops 2.8 ms (x 1.87 ✗), 4.8 ms per hop in the ring against 0.7 ms alone. Shard load / raw read 0.67 ✓. Longest cold main-thread task 139 ms ✗: per cold request 69 / 139 / 95 ms (even) and none over 50 ms / 53 / 127 ms (single). API ✓ (-33 ms); failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s21-full.json',
    render: e2eSection,
  },
  'e2e-s21-ui-nice8.json': {
    title: "Decode on the device lab, session 21: each page's main thread at Chromium's display priority",
    about:
      "The decode rows of `npm run bench` at commit 3c84d63, right after `e2e-s21-ui-nice0` (the same code with the new lab setting off): the lab raises the main thread of each device's foreground renderer to nice -8, the priority Chromium gives its own compositor threads (e2e/lab-ui-priority.ts), inside the device's unchanged 0.4-core quota. Load 2.2 at the start, 3.9 at the end. Longest cold main-thread task 123 ms ✗, per cold request 77 / 70 / 123 ms (even) and 66 / 87 / 52 ms (single), 26 tasks over 50 ms in the six requests, against 84 / 66 / 122 and 143 / 170 / 207 ms and 36 tasks with the setting off: the single-page requests gained most, the 4-stage ones did not change. What is left are frames (our draw and Blink's style, layout and paint) of 50-123 ms of wall; a Chrome trace of a cold single request (`bench:decode-trace --plan single --cold`, load 8) still showed main-thread tasks of 7-15 ms of CPU taking 110-210 ms. Decode 4-page 17.6 / 18.1 / 21.0 tok/s against one page 22.3 / 24.3 / 32.4 (0.74 ✗; 0.77 with the setting off); 43.6 ms per token against kernels 19.8 ms + hops 2.8 ms (x 1.92 ✗; 1.63 off). Shard load / raw read 0.63 ✓ (0.91 off). The decode figures moved within their usual run-to-run spread.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s21-ui-nice8.json',
    render: e2eSection,
  },
  'e2e-s21-ui-nice0.json': {
    title: 'Decode on the device lab, session 21: main threads as Chromium leaves them (A/B baseline)',
    about:
      "The decode rows of `npm run bench` at commit 3c84d63 with `TANDEM_LAB_UI_NICE=0`: each device's renderer main thread at the priority Chromium gives it (nice 0 in front), as in every lab run before session 21, competing with the page's inference worker on equal terms for the device's quota. Load 1.5 at the start, 2.3 at the end. Longest cold main-thread task 207 ms ✗ (even 84 / 66 / 122 ms, single 143 / 170 / 207 ms; 36 tasks over 50 ms). Decode 4-page 24.1 / 21.2 / 11.7 tok/s against one page 22.1 / 27.4 / 30.9 (0.77 ✗); 39.7 ms per token against kernels 18.8 ms + hops 5.6 ms (x 1.63 ✗). Shard load / raw read 0.91 ✓.",
    run: 'TANDEM_LAB_UI_NICE=0 npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s21-ui-nice0.json',
    render: e2eSection,
  },
  'e2e-s20-loading-draws.json': {
    title: "Decode on the device lab, session 20: no draws while a page's own stage loads (tried, reverted)",
    about:
      "The decode rows of `npm run bench` at commit 3e7c7df, since reverted: the render pacer drew a page at most every 5 s while its own stage read, created its session and prefilled, and at once when the stage handed its prefill on (or sampled the first token). Load 1.4 at the start, 3.2-4.9 at the end. Longest cold main-thread task 150 ms ✗ (per cold request 64-150 ms, 1-5 tasks over 50 ms) against 62-101 ms in `e2e-s20-pooled-create` and 54-167 ms in `e2e-s20-creations`: no better. Over 50 ms they came from every page, idle ones too: in the single-page runs the other three pages, which computed nothing, had 0-4 such tasks (up to 135 ms), and the stage's own page still had 1-2 (67-150 ms). So the change was reverted. Decode 4-page 21.6 / 19.4 / 15.8 tok/s against one page 27.8 / 27.2 / 26.7 (0.71 ✗); 45.7 ms per token against kernels 18.4 ms + hops 2.2 ms (x 2.22 ✗). Shard load / raw read 0.68 ✓.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s20-loading-draws.json',
    render: e2eSection,
  },
  'e2e-s20-pooled-create.json': {
    title: 'End to end, every part, session 20: one creation line for the whole session',
    about:
      "The whole `npm run bench` at commit d2019c2: on top of the twelve warm-up creations (the section below), calibration takes each device's creation fixed part from one Theil-Sen line through every device's creations, each scaled by its device's calibrated speed (planner/calibration.ts `sessionCreateFixedWork`): the one even calibration request gives each device one creation, which set a rate but no fixed part, so a dp stage of one layer was predicted several times too fast. Load 0.7 at the start, 4.9-5.3 at the end. Plans on the paper lab after calibration: TTFT within 8.7% (dp: 3.60 / 3.44 / 3.35 s against 3.11 / 3.14 / 3.22 s, still under-predicted in all three), 1.2% (even), 0.1% (heuristic) and 0.4% (single); median phase error 6.9% (dp), 6.2% (even), 9.7% (heuristic) and 27.8% (single ✗: four phases, the median of a 0.59 s creation predicted at 0.83 s (42%) and a 1.41 s compute predicted at 1.19 s (16%); its three runs 19%, 28%, 10%); DP fastest (3.44 s against heuristic 4.60, even 5.13, single 6.55), 0.75x the next plan and 0.67x even ✓; measured ranking = predicted ✓. Seven of the eight calibration goals hold (six in `e2e-s20-creations`). Replayed on seven saved lab runs (`npm run calibration-replay`), the pooled line moved dp's TTFT errors over 15% from 6 to 4 of 21 runs. Decode on the equal lab: 4-page 23.3 / 19.3 / 19.0 tok/s against one page 26.1 / 26.3 / 28.7 (0.73 ✗; 0.87 in `e2e-s20-creations` on the same decode code); 42.2 ms per token against kernels 20.8 ms + hops 1.2 ms (x 1.92 ✗), cycles 27.6 ms (p10) to 84.8 ms (p90). Shard load / raw read 0.65 ✓ (stages 0.49-0.90). Longest cold main-thread task 101 ms ✗ (per cold request 62-101 ms, frames whose rendering took 47-83 ms of wall). API ✓ (-14 ms); failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s20-pooled-create.json',
    render: e2eSection,
  },
  'e2e-s20-creations.json': {
    title: 'End to end, every part, session 20: the warm-up creates its session twelve times',
    about:
      "The whole `npm run bench` at commit f67bfd4: the warm-up at join creates its session twelve times instead of three (client/runtime/stage-warmup.ts WARM_UP_CREATIONS), so that V8 tiers up ORT's creation-path wasm functions before any request; a probe with `TANDEM_JS_FLAGS=--trace-wasm-compilation-times` on the equal lab (two cold requests after the warm-up) saw the second cold request compile 0.4-1.3 s (wall) of TurboFan code per page with three creations and 2-51 ms with twelve. Load 4.5 at the start, 5.2-6.2 through the run. Plans on the paper lab after calibration: TTFT within 13.8% (dp ✓, under-predicted in all three repeats: 3.73 / 3.80 / 3.73 s against 3.22 / 3.19 / 3.28 s), 0.1% (even), 3.1% (heuristic) and 1.0% (single); median phase error 27.6% (dp ✗: its session creations 24-78% off and computes 13-43% slower than predicted), 9.1% (even), 5.3% (heuristic) and 17.2% (single ✗: a 10 ms warm-up 30% off and a 0.56 s creation predicted at 0.67 s); DP fastest (3.73 s against heuristic 4.54, even 5.20, single 6.46), 0.82x the next plan and 0.72x even ✓; measured ranking = predicted ✓. Six of the eight calibration goals hold (five in `e2e-s19-full`). During the prefill computes the renderers' thread pools now took 0-0.03 core (0.11-0.19 core in the slowest computes of `e2e-s19-full`). Decode on the equal lab: 4-page 24.4 / 21.3 / 18.3 tok/s against one page 23.0 / 24.4 / 51.5 (0.87 ✓ in this run); 37.6 ms per token against kernels 19.1 ms + hops 2.0 ms (x 1.79 ✗), cycles 29.8 ms (p10) to 73.5 ms (p90). Shard load / raw read 0.67 ✓ (stages 0.48-0.89). Longest cold main-thread task 167 ms ✗ (per cold request 54-167 ms: frames whose rendering took 37-156 ms of wall). API ✓ (-48 ms); failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s20-creations.json',
    render: e2eSection,
  },
  'e2e-s19-full.json': {
    title: 'End to end, every part, session 19: the timeline drawn in a worker',
    about:
      'The whole `npm run bench` at commit 3ed5fa4: the warm-up creates its session three times (client/runtime/stage-warmup.ts WARM_UP_CREATIONS) and the timeline chart is drawn in a worker (client/ui/timeline-painter.ts). Load 2.3 at the start, 1.9-3.1 in the plans, 3.2-6.2 in the decode rows. Plans on the paper lab after calibration: TTFT within 16.2% (dp ✗: under-predicted in all three repeats, 16-23%; its third stage, 9 layers on the fastest device, computed in 0.92 s against 0.69 s predicted and created in 0.40 s against 0.75 s), 2.9% (even), 1.0% (heuristic) and 0.7% (single); median phase error 17.4% (dp ✗), 3.8% (even), 13.4% (heuristic) and 22.4% (single ✗: the median of four phases, a 20 ms warm-up predicted at 10 ms (49%) and a 0.60 s creation predicted at 0.81 s (35%)); DP fastest (4.07 s against heuristic 4.56, even 5.33, single 6.47), 0.89x the next plan and 0.76x even ✓; measured ranking = predicted ✓. Five of the eight calibration goals hold (seven in `e2e-s17-rehearsal`). Decode on the equal lab: 4-page 22.3 / 24.4 / 23.3 tok/s against one page 30.6 / 23.6 / 31.1 (0.76 ✗); 38.2 ms per token against kernels 18.8 ms + hops 2.6 ms (x 1.78 ✗), cycles 21.6 ms (p10) to 82.7 ms (p90). Shard load / raw read 0.67 ✓ (stages 0.58-0.82). Longest cold main-thread task 107 ms ✗ (per cold request 51-107 ms, 1-4 tasks over 50 ms; 92-249 ms in `e2e-s17-rehearsal`). API ✓ (-22 ms); failover 10 of 10 ✓.',
    run: 'npm run bench -- --out bench/results/e2e-s19-full.json',
    render: e2eSection,
  },
  'e2e-s19-paint-worker.json': {
    title: 'Decode on the device lab, session 19: the timeline drawn in a worker',
    about:
      "The decode rows of `npm run bench` at commit f2407f5: the timeline chart's pixels are drawn in a worker on an OffscreenCanvas (client/ui/timeline-painter.ts), the main thread lays the chart out and posts the layout. Run right after `e2e-s19-paint-main` (the commit before, the chart drawn on the main thread), same host, load 5.2-8.6 (4.0-5.9 for the other). Longest cold main-thread task 117 ms against 319 ms; per cold request (even, single, x3) the longest 104 / 117 / none / 64 / 77 / none ms against 140 / 169 / 124 / 319 / 176 / 196 ms, and 0-7 tasks over 50 ms against 3-13; the longest frames' callbacks 13-20 ms of script against 45-153 ms. Still ✗ (<= 50 ms): what is left is the rest of a frame (style, layout, paint: 40-69 ms of wall on a 0.4-core device). Shard load / raw read 0.58 ✓ against 0.48 ✗ (stages 0.44-0.72 against 0.31-0.70; the single stage 0.66 against 0.31); one run each at different loads, and the worker's draws spend the same quota, so these two runs do not show that the gain is the painter's. Decode 4-page 17.2 / 22.0 / 16.4 tok/s against one page 30.2 / 20.8 / 34.9 (0.57 ✗) against 0.77 ✗ in the other run; 45.5 ms per token against kernels 23.3 ms (x 1.95 ✗; the hop measured alone came out 0.00 ms this run, 1.65 ms in the other) against 43.9 ms (x 1.55 ✗): at these loads the decode rows vary by a quarter from run to run (alternated runs within each file span 12.7-22.0 and 20.8-34.9 tok/s).",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s19-paint-worker.json',
    render: e2eSection,
  },
  'e2e-s19-paint-main.json': {
    title: 'Decode on the device lab, session 19: the timeline drawn on the main thread (before)',
    about:
      'The decode rows of `npm run bench` at commit dbec0dd (the warm-up creates its session three times; the timeline chart still drawn on the main thread), run from a worktree right before `e2e-s19-paint-worker`. Load 4.0-5.9. Longest cold main-thread task 319 ms ✗ (per cold request 124-319 ms, 3-13 tasks over 50 ms; the longest a frame: 153 ms of its callback, 187 ms of rendering). Shard load / raw read 0.48 ✗. Decode 4-page 22.0 / 18.8 / 12.7 tok/s against one page 33.3 / 24.5 / 20.7 (0.77 ✗); 43.9 ms per token against kernels 21.7 ms + hops 6.6 ms (x 1.55 ✗), cycles 28.3 ms (p10) to 89.9 ms (p90).',
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s19-paint-main.json',
    render: e2eSection,
  },
  'e2e-s17-rehearsal.json': {
    title: "End to end, every part, session 17: each stage's creation rehearsed at its assignment",
    about:
      "The whole `npm run bench` at commit 70c3910: on top of the four-layer warm-up (the section below), a wasm page creates its assigned stage's session once from zero weights at the assignment (client/runtime/stage-warmup.ts `rehearseStageCreation`), so the request's creation is not the page's first of that size, and it reports its stage prepared only when its warm-ups are over (the plan comparison and the decode rows wait for that before Go). Load 4.5 at the start, 4.5-5.0 at the end. Plans on the paper lab after calibration: TTFT within 0.6% (dp), 9.1% (even), 0.8% (heuristic) and 0.8% (single); median phase error 7.3% (dp), 12.9% (even), 9.6% (heuristic) and 17.0% (single ✗: four phases, the median of a 14 ms warm-up predicted at 10 ms (26%) and a 0.62 s creation predicted at 0.77 s (25%)); DP fastest (3.68 s against heuristic 4.84, even 5.38, single 6.43) and 0.68x even ✓; measured ranking = predicted ✓. Seven of the eight calibration goals hold (five in session 16). Decode on the equal lab: 4-page 23.3 / 25.1 / 14.0 tok/s against one page 24.5 / 31.1 / 34.2 (0.75 ✗); 32.2 ms per token against kernels 17.8 ms + hops 2.4 ms (x 1.60 ✗). Shard load / raw read 0.43 ✗ (stages 0.36-0.60). Longest cold main-thread task 92-249 ms ✗. API ✓ (-8 ms); failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s17-rehearsal.json',
    render: e2eSection,
  },
  'e2e-s17-warmup.json': {
    title: 'End to end, every part, session 17: a warm-up of four layers',
    about:
      "The whole `npm run bench` at commit 52acb34: the page's warm-up at join runs as many layers as 16 MiB of zero weights hold (four of the realistic preset's), not one, so V8 tiers up ONNX Runtime's creation and prefill code before the first request (a probe script on the equal lab, not saved: the first cold even request's TTFT 7.75 s before, 5.63 s after; its stages' prefill 0.5-1.6 s before, 0.5-0.7 s after). Load 2.9 at the start, 4.2 at the end. Plans on the paper lab after calibration: TTFT within 0.1% (dp), 6.2% (even), 6.0% (heuristic) and 4.6% (single), all four within 15% for the first time; median phase error 22.0% (dp ✗: its four warm-up phases of 12-23 ms predicted at 30-54 ms, and creation), 15.2% (even ✗, 29.2% in session 16), 9.8% and 3.9%; DP fastest (3.76 s against heuristic 4.99, even 5.23, single 6.44) and 0.72x even ✓; measured ranking = predicted ✓. Decode on the equal lab: 4-page 21.1 / 18.5 / 22.4 tok/s against one page 31.9 / 24.7 / 28.5 (0.74 ✗); 40.5 ms per token against kernels 19.1 ms + hops 1.8 ms (x 1.94 ✗), the last stage's kernel 13.1 ms of it (the head reads its 19.4 MB per token). Shard load / raw read 0.44 ✗ (0.40 in session 16): during creation the renderer's V8 thread pool (compile, GC) took 0.20-0.24 of a device's 0.4 core and the inference worker 0.11-0.13. Longest cold main-thread task 117-235 ms ✗ (109-385 in session 16), the longest a frame callback. API ✓; failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s17-warmup.json',
    render: e2eSection,
  },
  'e2e-s16-final.json': {
    title: "End to end, every part, session 16's code",
    about:
      "The whole `npm run bench` at commit 13eea3c (the canvas timeline, lab devices with profile folders of their own, calibration that small stages cannot throw off); the later review fixes change no measured path. Load 1.9 at the start, 5.3 at the end, on a host about 3x slower than in session 15 (raw IndexedDB reads 41-55 MB/s on fresh lab devices against 130-190 then; one page 20-24 tok/s against 40-48). Plans on the paper lab after calibration: TTFT within 12.6% (dp), 15.3% (even ✗), 5.3% (heuristic) and 2.7% (single); median phase error 15.1% (dp ✗), 29.2% (even ✗: creation over-predicted 40-90% on every stage), 11.3% and 7.0%; DP fastest (4.41 s against heuristic 5.35, even 5.69, single 6.96) and 0.78x even ✓; measured ranking = predicted ✓. Decode on the equal lab: 4-page 18.3 / 13.1 / 20.3 tok/s against one page 20.7 / 20.3 / 24.2 (0.89 ✓); 40.9 ms per token against kernels 20.2 ms + hops 3.2 ms (x 1.75 ✗). Shard load / raw read 0.40 ✗ (stage reads 33-65 MB/s from the profile folders; creation 0.35-1.36 s of the pipeline stages' loads, 3.9 s of the single stage's). Longest cold main-thread task 109-385 ms ✗. API ✓; failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s16-final.json',
    render: e2eSection,
  },
  'e2e-s16-decode-canvas.json': {
    title: 'Decode on the device lab, session 16: the timeline drawn on a canvas',
    about:
      "The decode rows of `npm run bench` after the timeline chart moved from SVG to a canvas (no other change). Load 1.2 at the start, 6-7 during the runs, and this host ran about 3x slower all session than in session 15: the raw IndexedDB read of the same units on fresh lab devices (no Tandem page) came out at 29-44 MB/s against 130-190 MB/s then, so no figure here compares with session 15's. 4-page 13.8 / 18.2 / 12.1 tok/s against one page 23.0 / 23.5 / 28.3 (0.59 ✗); 73.7 ms per token against kernels 24.4 ms (x 3.02 ✗). Longest cold main-thread task 155-232 ms ✗. A cold-request trace of the same lab (e2e/decode-trace.ts --cold, not saved) summed the 4 pages' main threads to 10.5 s busy against 17.0 s with the SVG (load 4.4 against 6.0): script 1.8 s against 2.9 s, layout 0.34 s against 0.79 s, style 0.08 s against 0.57 s. Its long tasks were mostly waiting: 80-325 ms of wall time holding 1-29 ms of the main thread's CPU, the device's quota spent by its inference worker and V8's compile and GC threads.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s16-decode-canvas.json',
    render: e2eSection,
  },
  'e2e-s16-decode-incognito.json': {
    title: 'Decode on the device lab, session 16 (a): devices in off-the-record contexts, as before',
    about:
      "The decode rows of `npm run bench` on the canvas code, each lab device's page in a Playwright default (off-the-record) context as in every earlier lab run; run right after (b) on the same host, load 0.8-3.6. Stage storage reads 14-29 MB/s (OPFS sync handles in memory), the raw IndexedDB read of the same units 30-42 MB/s; shard load / raw read 0.37 ✗. 4-page 18.3 / 21.5 / 16.0 tok/s against one page 28.6 / 32.3 / 23.2 (0.64 ✗); 43.6 ms per token against kernels 19.0 ms + hops 1.8 ms (x 2.10 ✗). Longest cold main-thread task 98-324 ms ✗.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s16-decode-incognito.json (at commit 9f27ba9)',
    render: e2eSection,
  },
  'e2e-s16-decode-profiles.json': {
    title: 'Decode on the device lab, session 16 (b): every device with a profile folder of its own',
    about:
      "The same decode rows with each lab device's browser a persistent context with its own profile folder (storage on disk, as a phone's; the raw read's devices too), run just before (a), load 1.9-3.6. Stage storage reads 42-70 MB/s, 2.4-3x (a)'s, as `storage-s16-q04-*` predicted for OPFS sync reads at 0.4 core; the raw IndexedDB read of the same units 36-55 MB/s; shard load / raw read 0.45 ✗ (creation took 0.16-0.97 s of the pipeline stages' 0.49-1.46 s loads, and 2.8 s of the single stage's 4.3 s). 4-page 13.7 / 21.6 / 15.3 tok/s against one page 25.6 / 30.4 / 32.4 (0.50 ✗), within (a)'s spread; 54.7 ms per token against kernels 25.0 ms + hops 4.8 ms (x 1.84 ✗). Longest cold main-thread task 107-462 ms ✗.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s16-decode-profiles.json',
    render: e2eSection,
  },
  'e2e-s15-final-2.json': {
    title: "End to end, every part, session 15's code, a second run",
    about:
      'The whole `npm run bench` again on the code of `e2e-s15-final`, an hour later. Load 1.2 at the start, 4.6 at the end. Plans on the paper lab: TTFT after calibration within 5.2% (dp), 1.3% (even) and 2.2% (single) but 17.2% for heuristic ✗; median phase error 14.4%, 10.0%, 25.0% (heuristic) ✗ and 25.1% (single) ✗; DP fastest (dp 3.81 / 3.72 / 3.74 s, even 4.39-5.61 s, heuristic 4.57-5.74 s, single 6.46-7.08 s) and 0.73x even ✓; measured even < heuristic where heuristic < even was predicted ✗. Where `e2e-s15-final` met every calibration goal, this run of the same code missed three: the reported run of each method is the median of three cold runs on fresh plans, and those spread by up to 25% (even 4.39-5.61 s). Decode on the equal lab: 4-page 34.7 / 38.7 / 22.8 tok/s against one page 40.0 / 41.3 / 47.9 (0.84 ✓); 24.1 ms per token against kernels 9.7 ms (x 2.50 ✗; the hop measured alone came out at 0 ms one-way: its 128-byte round trip no longer than the tiny one). Shard load / raw read 0.40 ✗. Longest cold main-thread task 119 ms ✗. API ✓; failover 10 of 10 ✓.',
    run: 'npm run bench -- --out bench/results/e2e-s15-final-2.json',
    render: e2eSection,
  },
  'e2e-s15-decode-batched-reduce.json': {
    title: 'Decode on the device lab, session 15, tried and reverted: one state change per batch of phases',
    about:
      "The decode rows of `npm run bench` with a change since reverted: the page reduced each batch of its stage's phases in one pass (one state change and one draw request) instead of one dispatch per phase, which a probe had timed at 10-35 ms a batch on the main thread of a 0.4-core device. Load 1.0 at the start, 1.6-3.1 at the end. 4-page 29.7 / 37.9 / 24.0 tok/s against one page 43.4 / 41.3 / 38.2 (0.72); 30.5 ms per token against kernels 11.5 ms + hops 1.0 ms (x 2.43); longest cold main-thread task 123 ms. No better than `e2e-s15-decode-chart-waits` and `e2e-s15-final` without it.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s15-decode-batched-reduce.json (with the change, since reverted)',
    render: e2eSection,
  },
  'e2e-s15-decode-before.json': {
    title: "Decode on the device lab, session 15's start",
    about:
      "The decode rows of `npm run bench` on session 14's code, built with a probe (not committed) that logged each draw of the page longer than 3 ms to its console: the draws of a cold request were 20-138 ms of wall time on a 0.4-core device, the timeline chart 20-96 ms of them. Load 0.6 at the start, 2.3 at the end. 4-page 16.2 / 19.5 / 21.3 tok/s against one page 31.4 / 30.6 / 29.2 (0.64); 38.3 ms per token against kernels 18.1 ms + hops 1.6 ms (x 1.94), cycles 25.1 ms (p10) to 80.3 ms (p90). Longest cold main-thread task 173 ms. During these warm requests a ring device's main thread used 0.035 cores and its inference worker 0.03-0.04 (labCpu): per second it took ~30 server messages (every page's timings, four reports a second each, relayed to every page) and ~10 batches of phases from its worker.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s15-decode-before.json (with the draw probe)',
    render: e2eSection,
  },
  'e2e-s15-decode-quiet-phases.json': {
    title: 'Decode on the device lab, session 15: decode phases once a second',
    about:
      "The decode rows of `npm run bench` after the inference worker holds a decode step's phases up to 1 s (tokens still 100 ms) and the page reports decode phases to the server once a second (cold start and prefill every 250 ms): a ring device's main thread now takes ~10-15 messages a second while the ring decodes, not ~40. Load 3.1 at the start, 2.6 at the end. 4-page 22.3 / 34.4 / 25.9 tok/s against one page 37.7 / 21.8 / 28.5 (0.91, the one-page runs unusually spread); 31.5 ms per token against kernels 15.4 ms + hops 1.2 ms (x 1.89), cycles 21.8 ms (p10) to 55.3 ms (p90). Two runs of an earlier cut of the same idea (every worker report held 500 ms, tokens included; every timing report 1 s) gave 26.4 and 25.3 tok/s against 36.4 and 38.4 (0.73, 0.66), beside 19.5 against 30.6 before (`e2e-s15-decode-before`). Longest cold main-thread task 215 ms.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s15-decode-quiet-phases.json',
    render: e2eSection,
  },
  'e2e-s15-decode-chart-waits.json': {
    title: "Decode on the device lab, session 15: a ring stage's chart waits for its prefill",
    about:
      "The decode rows of `npm run bench` after, in addition, a ring stage's page leaves the timeline chart as it is while its own stage loads and prefills (it redraws when the prefill is handed on). Load 2.6 at the start, 3.6 at the end. Longest cold main-thread task 98 ms (cold even runs 98 / 59 / 64 ms, cold single runs none over 50 ms), against 162-250 ms in this session's other runs; what remains are draws after the hand-over (script 12-29 ms, style, layout and paint 37-73 ms, wall time). 4-page 22.7 / 33.7 / 38.0 tok/s against one page 36.6 / 40.2 / 41.3 (0.84); 26.4 ms per token against kernels 10.9 ms + hops 3.4 ms (x 1.84), cycles 19.1 ms (p10) to 41.9 ms (p90).",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s15-decode-chart-waits.json',
    render: e2eSection,
  },
  'e2e-s15-decode-k2.json': {
    title: 'Decode on the device lab, session 15, diagnostic: two devices of 0.8 core',
    about:
      "The decode rows of `npm run bench -- --peers 2` on session 14's code: 2 equal lab devices of 0.8 core each (the lab's 1.6 cores split two ways; the quota period 1.25 ms with 1 ms of CPU, where four devices of 0.4 core get 2.5 ms periods with 1 ms). Load 0.1 at the start, 3.0 at the end. 2-page 43.3 / 45.5 / 30.8 tok/s against one page 40.1 / 54.0 / 80.3 (0.80); 21.8 ms per token against kernels 15.1 ms + 2 hops of 1.9 ms (x 1.15), cycles 17.6 ms (p10) to 31.2 ms (p90). With twice the CPU per device the ring costs its kernels and its hops within 15%: at 0.4 core every thread of a hop (the network thread, the worker, the main thread's reports) waits on the same quota as the kernels, and the ring's overhead grows with it. Longest cold main-thread task 58 ms.",
    run: 'npm run bench -- --peers 2 --skip hop,plans,api,failover --out bench/results/e2e-s15-decode-k2.json',
    render: e2eSection,
  },
  'e2e-s14-final.json': {
    title: "End to end, every part, session 14's code",
    about:
      "The whole `npm run bench` after session 14: a stage's units are looked up in the inference worker (no IndexedDB or OPFS work on the main thread in a cold request), and a stage in a ring draws its page at most once a second. Load 1.3 at the start, 5.5 at the end: other work loaded the machine from the decode rows on (load 4-6 then). Plans on the paper lab: TTFT after calibration within 0.5% (dp), 2.4%, 6.4% and 3.0% ✓; median phase error 16.1% (dp) ✗, 14.0% (even), 11.8% (heuristic), 5.7% (single); DP fastest (dp 4.30 / 3.91 / 3.73 s, even 5.23-5.36 s, heuristic 4.74-5.33 s, single 6.32-7.29 s) and 0.74x even ✓; the measured ranking as predicted ✓. Decode on the equal lab, under that load: 4-page 19.1 tok/s against one page 34.0 (0.56 ✗; alternated runs 14.9 / 19.1 / 19.5 and 36.2 / 34.0 / 30.7); 43.8 ms per token against kernels 19.8 ms + hops 1.6 ms (x 2.05 ✗), cycles from 28.8 ms (p10) to 86.1 ms (p90). The same code's decode rows at load 0.9-3.6 gave 0.82 (`e2e-s14-decode-ring-draws`). Shard load / raw read 0.29 ✗. Longest cold main-thread task 250 ms ✗ (a draw: 178 ms of its script, 235 ms of rendering, wall time on a 0.4-core device). API ✓; failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s14-final.json',
    render: e2eSection,
  },
  'e2e-s14-decode-ring-draws.json': {
    title: 'Decode on the device lab, session 14: a stage in a ring draws once a second',
    about:
      "The decode rows of `npm run bench` (equal lab: 4 devices of 0.4 core, each its own Chromium, CPU group and namespace) with `client/app/render-pacer.ts` drawing a ring stage's page at most every second (after a hand-over; every 2 s without one), a single stage's every 250 ms as before. Load 0.9 at the start, 3.6 at the end. 4-page 26.5 / 26.4 / 29.0 tok/s against one page 32.5 / 30.5 / 33.1: 0.82 ✓; 31.8 ms per token, cycles 19.8 ms (p10) to 50.1 ms (p90). Beside `e2e-s14-decode-before` (every 250 ms: 0.62) and `e2e-s14-decode-no-draws` (no draws while running: 0.76), all three within 35 minutes. In the whole bench an hour later, at load 4-6, the same code gave 0.56 (`e2e-s14-final`).",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s14-decode-ring-draws.json',
    render: e2eSection,
  },
  'e2e-s14-decode-no-draws.json': {
    title: 'Decode on the device lab, session 14, diagnostic: no draws while the stage runs',
    about:
      'The decode rows of `npm run bench` from a build (not committed) whose pages did not draw at all while their stage ran a request: how much drawing costs the ring. Load 3.2 at the start, 2.9 at the end. 4-page 25.5 / 24.7 / 24.4 tok/s against one page 32.5 / 32.4 / 30.8 (0.76), against 21.5 / 21.6 / 18.3 and 34.6 / 33.3 / 42.2 drawing every 250 ms (`e2e-s14-decode-before`): the single page decoded at the same rate either way, the ring faster without the draws.',
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s14-decode-no-draws.json (with the page never drawing while its stage runs)',
    render: e2eSection,
  },
  'e2e-s14-decode-before.json': {
    title: "Decode on the device lab, session 14's start: drawing every 250 ms",
    about:
      "The decode rows of `npm run bench` on session 13's code (every page drew at most every 250 ms while its stage ran, right after a hand-over). Load 1.0 at the start, 3.1 at the end. 4-page 21.5 / 21.6 / 18.3 tok/s against one page 34.6 / 33.3 / 42.2 (0.62); 37.2 ms per token against kernels 15.0 ms + hops 1.8 ms (x 2.21). Shard load / raw read 0.20; longest cold main-thread task 146 ms.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s14-decode-before.json',
    render: e2eSection,
  },
  'e2e-s13-decode-off.json': {
    title: 'Decode and cold loads on unemulated pages, session 13 (`--decode-lab off`)',
    about:
      "The decode part on 4 plain pages of one headless Chromium (no CPU quota, no shaped links, all on this machine's 2 cores), load 4.4-4.7, beside the lab runs above: what the code costs when no emulation stretches it. The pipeline's 13.3 ms per token against kernels 8.4 ms + hops 2.2 ms is 1.26x (the lab's runs: 2.2-2.4x), 0.94 ms per hop in the ring against 0.55 ms alone. One page decodes at 134 tok/s, 1.13x transformers.js in Node (119); the 4-page pipeline at 56 tok/s shares the same 2 cores. Main-thread tasks over 50 ms during a cold request: none in 3 of 6 runs, at most 84 ms (a draw). Shard load 0.34 (per stage 0.17-0.63): the 13.9 MB middle stages read their 4 units in 0.16-0.17 s and create in 0.10-0.13 s, against a raw read of 0.05 s, while all four pages load at once on the 2 cores.",
    run: 'npm run bench -- --skip plans,api,failover --decode-lab off --out bench/results/e2e-s13-decode-off.json',
    render: e2eSection,
  },
  'e2e-s13-final.json': {
    title: "End to end, every part, session 13's code",
    about:
      "The whole `npm run bench` after session 13: units download in a worker (fetch, SHA-256, OPFS write off the main thread), and each long task names what it ran (Long Animation Frames). Load 3.1 at the start, 3.7 at the end (1.4-5.5 between). Plans on the paper lab: TTFT after calibration within 9% (dp), 0%, 3% and 1% ✓; median phase error 13% (dp), 9% (even), 23% (heuristic) ✗, 11% (single); DP fastest (dp 4.05 / 3.82 / 4.40 s, even 5.56 / 5.42 / 5.21 s, heuristic 4.63-5.42 s, single 6.55-6.98 s) and 0.75x even ✓; the measured ranking as predicted ✓. Decode on the equal lab: 4-page 18.4 tok/s against one page 36.5 (0.50 ✗; alternated runs 10.9 / 18.4 / 21.8 and 20.4 / 36.9 / 36.5); the pipeline's 48.0 ms per token against kernels 18.0 ms + hops 1.8 ms (x 2.43 ✗), 5.2 ms per hop in the ring against 0.45 ms alone, its tokens' cycles from 31.3 ms (p10) to 95.2 ms (p90). Shard load / raw read 0.25 ✗. Longest cold main-thread task 266 ms ✗: a draw of the page (56 ms of its script, 202 ms of style, layout and paint, wall time on a 0.4-core device); one single-plan run's longest (110 ms) was the script after an IndexedDB transaction. API ✓; failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s13-final.json',
    render: e2eSection,
  },
  'e2e-s12-final.json': {
    title: "End to end, every part, session 12's code",
    about:
      "The whole `npm run bench` with the stage and its links in each page's inference worker (`e2e-s12-ring-worker` below). The machine was loaded by other work: load 3.4 at the start, 7.2 at the end (the Node transformers.js row, 126 tok/s, ran at its usual speed). Plans on the paper lab: TTFT after calibration within 9% (dp), 0%, 6% and 1% ✓; median phase error 27.6% (dp), 7.9% (even), 14.5% (heuristic), 18.4% (single) ✗; DP fastest (dp 4.38 / 4.33 / 3.66 s, even 5.33 / 5.33 / 5.38 s) but 0.81x even, against 0.8 ✗; the measured ranking as predicted ✓. Decode on the equal lab: 4-page 19.5 tok/s against one page 36.8 (0.53 ✗; alternated runs 16.7 / 19.5 / 21.4 and 36.8 / 37.2 / 33.2); the pipeline's 41.2 ms per token against kernels 17.0 ms + hops 1.4 ms (x 2.24 ✗), its tokens' cycles from 22.9 ms (p10) to 97.2 ms (p90). Shard load / raw read 0.26 ✗. Longest cold main-thread task 389 ms (one single-plan run; the other five 70-130 ms) ✗. API ✓; failover 10 of 10 ✓.",
    run: 'npm run bench -- --out bench/results/e2e-s12-final.json',
    render: e2eSection,
  },
  'e2e-s12-ab-ring-main.json': {
    title: 'Decode on the device lab, session 12, A/B (a): the stage on the main thread',
    about:
      'The decode part with every page opened with `?ring=main` (`TANDEM_PAGE_PARAMS=ring=main`): the stage on the main thread as before this session, its frames now on the same negotiated channels. Run right before (b) below, load 5.2 at the start, 3.3 at the end. Pipeline 16.0 tok/s, 54.4 ms per token (input → compute 0.4 ms, compute → sent 1.1-2.9 ms per stage); one page 27.5 tok/s, 33.9 ms per token (input → compute 0.9 ms, compute → sent 2.7 ms): 0.58.',
    run: 'TANDEM_PAGE_PARAMS=ring=main npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s12-ab-ring-main.json',
    render: e2eSection,
  },
  'e2e-s12-ab-ring-worker.json': {
    title: 'Decode on the device lab, session 12, A/B (b): the stage in the inference worker',
    about:
      'The same decode part right after (a), the pages on their default (the stage and its links in the inference worker); load 3.3 at the start, 5.3 at the end (the Node transformers.js row fell to 42.7 tok/s from its usual ~126: the machine was busy). Pipeline 20.0 tok/s, 41.5 ms per token (input → compute 0.08-0.09 ms per stage); one page 34.9 tok/s, 27.7 ms per token (input → compute 0.04 ms, compute → sent 0.03 ms): 0.57. Against (a), per token 24% less on the pipeline and 18% less on the one page: both gain, so their ratio does not move.',
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s12-ab-ring-worker.json',
    render: e2eSection,
  },
  'e2e-s12-ring-worker.json': {
    title: 'Decode on the device lab, session 12: the stage and its links in the inference worker',
    about:
      "The decode part alone on 4 equal 0.4-core lab devices, after the stage (StagePeer) and its frame links moved into each page's inference worker: PeerJS only carries, each connection's negotiated frame channel is transferred to the worker as it is made, and the worker sends the main thread its phases and tokens in batches (step 0, the first and the last token at once, the rest within 100 ms). Load 1.1 at the start, 1.5 at the end. Per stage, input → compute fell to 0.07-0.09 ms and compute → sent to 0.12-0.35 ms (session 11: 0.3-0.4 and 1.1-2.1 ms). Pipeline per token 30.1 ms (session 11: 39.0 ms) against kernels 10.9 ms + hops 3.2 ms (x 2.14); between stages 13.2 ms, 3.3 ms per hop against 0.8 ms between two idle devices. The one page gained more: 18.4 ms per token, 48.8 tok/s (session 11: 25.3 ms, 32.0). So 4-page 27.0 tok/s against one page 48.8: 0.55 (alternated runs 23.1 / 32.1 / 27.0 and 48.9 / 44.7 / 48.8). A run of the same code a few minutes earlier, before the batching, gave 0.82 (22.5 against 27.5 tok/s), and one a few minutes later 0.68 (24.2 against 35.7), its tokens' cycles spread from 19.8 ms (p10) to 63.4 ms (p90): the run-to-run spread is larger than the goal's margin.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-s12-ring-worker.json',
    render: e2eSection,
  },
  'e2e-s11-final.json': {
    title: "End to end, every part, session 11's final code",
    about:
      "The whole `npm run bench` on the session's last code: the kernel warm-up at join (every path, before any plan), a start handled at once timed from now within the clock's bound, the last stage's tokens reported in batches of at most 100 ms, and every cold plan run in the JSON. The machine was loaded by other work: load 4.2 at the start, 3.4 at the end. Plans: TTFT after calibration within 4% (dp), 8%, 3% and 4%; median phase error 10% (dp), 17.3% (even), 12% (heuristic), 0.4% (single); DP fastest, but 0.84x even (the goal is 0.8), and even and heuristic ranked the other way round from their predictions, which differed by 1% (measured: even 4.71 / 4.34 / 4.57 s, heuristic 4.36 / 4.62 / 4.07 s over their three runs). This run's even plan put the slowest reader third instead of last (session 10's even plans took 5.2-5.4 s). Decode on the equal lab: 4-page 20.6 tok/s against one page 32.0 (0.64); the one page's per token fell to 25.3 ms (input → compute 1.9 ms, compute → sent 0.6 ms); the pipeline's 39.0 ms against kernels 13.4 ms + hops 1.8 ms (x 2.57). Shard load / raw read 0.30; longest cold main-thread task 187 ms. API and failover goals met.",
    run: 'npm run bench -- --out bench/results/e2e-s11-final.json',
    render: e2eSection,
  },
  'e2e-lab-s11-final.json': {
    title: "Plans on the device lab, session 11's final code",
    about:
      "The plan comparison alone (`--skip hop,decode,api,failover`) on the session's last code, right after the whole bench above, on a quieter machine (load 0.8 at the start, 1.4 at the end). TTFT after calibration within 1% (dp), 4%, 0.1% and 0.8%; DP fastest and 0.70x even; the measured ranking as predicted. Median phase error 15.1% (dp: a miss by 0.1 point), 2.9% (even), 12.4% (heuristic), 7.6% (single); over all 12 cold runs (`npm run calibration-replay -- --phases` reproduces each prediction) the median phase errors were 9-16%, dp's three 12%, 15% and 9%.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-s11-final.json',
    render: e2eSection,
  },
  'e2e-lab-s11-coldruns.json': {
    title: 'Plans on the device lab, session 11: every cold run saved, replayed exactly',
    about:
      "The plan comparison alone on session 10's code plus one change to the bench: the JSON keeps every cold plan run in the order it ran (`coldRuns`, each method's 3 repeats), so `npm run calibration-replay -- --phases` learns what the server learnt and reproduces each of the 12 predictions to the millisecond (older files hold only the reported runs and drift: 16-22% off on 'even'). Load 1.5 at the start, 2.5 at the end. TTFT after calibration within 0-14% on all 12 runs; DP fastest and 0.72x even; ranking as predicted. Median phase error of the reported runs: 22% (dp), 8%, 13%, 3%; dp's three runs gave 22%, 4% and 17%. Over this file and four replayed session-10 files (28 runs), the median error by phase: storage read 1%, compute 9%, session creation 45%, hand-over 40%, warm-up 37%: a stage's creation fell through the session (one device: 1.8 s, 0.8 s, 0.5 s in its first three requests, 0.24-0.45 s later) and varied by +-40% between identical later requests, so the median over a plan's ~19 phases sits at the boundary between the well-predicted phases and these. Fits of the creation over only the last 1-4 requests, and a head counted at 0.3 of a layer's bytes, moved it by at most 4 points.",
    run: 'npm run bench -- --skip hop,decode,api,failover --out bench/results/e2e-lab-s11-coldruns.json',
    render: e2eSection,
  },
  'e2e-decode-lab-s10-hops.json': {
    title: 'Decode on the device lab, session 10: each hop of the ring on its own',
    about:
      "The decode part alone on 4 equal 0.4-core lab devices, after the pages time their phases on the server's clock (to within 0.6 ms here), so each hop of the browser ring is read across its two pages for the first time. Load 3.4-4.3. Per token 42.1 ms: kernels 4.2 / 1.8 / 2.8 / 8.3 ms, input → compute 0.3-0.4 ms and compute → sent 0.8-2.3 ms per stage, and the hops 1.2 / 2.6 / 1.2 / 3.1 ms (the last is the sampled token's way back to the first stage) against 0.35 ms one way between two idle lab devices. 4-page 20.8 tok/s against one page 27.5 (0.76; alternated runs 18.0 / 20.8 / 22.6 and 27.5 / 25.1 / 28.3). The CPU windows now cover each stage's session creation too: in them the renderer's thread pool (V8's compilers and GC) used up to 0.22 of the device's 0.4 core against the inference worker's 0.07-0.30.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-decode-lab-s10-hops.json',
    render: e2eSection,
  },
  'e2e-decode-lab-s9-a-period10ms.json': {
    title: 'Decode on the device lab, session 9 (a): the 10 ms CFS period',
    about:
      "The first of three decode runs on 4 equal 0.4-core lab devices (the bench's decode part) within 25 minutes at load 2.3-3.2. This one forces the old 10 ms CFS period (`TANDEM_LAB_CPU_PERIOD_US=10000`): per token 40.3 ms, of which 20.6 ms between stages (5.2 ms per hop against 1.45 ms measured alone).",
    run: 'TANDEM_LAB_CPU_PERIOD_US=10000 npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-decode-lab-s9-a-period10ms.json',
    render: e2eSection,
  },
  'e2e-decode-lab-s9-b-period-short.json': {
    title: 'Decode on the device lab, session 9 (b): the shortest CFS period',
    about:
      "As (a) with each device's quota over the shortest period the kernel takes (a 1 ms quota: 2.5 ms at 0.4 core; e2e/lab.ts labCpuPeriodUs). Per token 44.6 ms, 19.3 ms between stages (4.8 ms per hop): the ring's overhead was not the quota's stalls.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-decode-lab-s9-b-period-short.json',
    render: e2eSection,
  },
  'e2e-decode-lab-s9-c-drawn-in-gaps.json': {
    title: "Decode on the device lab, session 9 (c): the view drawn in the ring's gaps",
    about:
      "As (b) after two changes a Chrome trace of the four lab devices pointed to (`npm run bench:decode-trace -- --lab equal`): every page's main thread spent about a third of a request drawing, and a ring frame arriving meanwhile waited. A running page now draws right after its stage hands a step on (client/app/render-pacer.ts), and a step's phase records reach the page's reducer after the hand-over (shards/runtime/stage-peer.ts). This run gave 32.2 ms per token and 11.4 ms between stages, against 40.3 and 44.6 ms in (a) and (b); but (d) below shows that one run cannot tell: alternating the old and the new code A-B-B-A gave 33.2 / 55.6 / 47.9 / 49.4 ms.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-decode-lab-s9-c-drawn-in-gaps.json',
    render: e2eSection,
  },
  'e2e-decode-lab-s9-d-final.json': {
    title: 'Decode on the device lab, session 9 (d): the final code, and how far one run can be trusted',
    about:
      "The session's final code (c, plus cards out of view skipped by `content-visibility`), load 1.6-3.5: 52.4 ms per token, 17.5 ms between stages, kernels 19.3 ms (9.6 ms in c: the same work). The same decode-only bench run back to back on this machine afterwards, old code (before the drawing and phase-record changes) and new alternated A-B-B-A at load 2.0-4.2: per token 33.2 / 55.6 / 47.9 / 49.4 ms, between stages 10.3 / 25.5 / 22.5 / 20.7 ms; and without / with `content-visibility`, then with / without: 46.7 / 58.0 / 47.3 / 58.0 ms. Neither change shows beyond the noise, which moves a run's kernels alone by 2x: the second run of each pair was the slower one. What limits the ring is not found by these runs; a change of less than ~30% needs many alternated runs to show here.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-decode-lab-s9-d-final.json',
    render: e2eSection,
  },
  'e2e-decode-lab-s9-e-alternated.json': {
    title: 'Decode on the device lab, session 9 (e): pipeline and one page alternated',
    about:
      "After (d): the decode part now runs the 4-page pipeline and the one page alternately, `--repeats` times each (default 3; plan, cold request, warm request each time), and reports each by its run of median decode rate, so that both sides of the 4-page / 1-page row see the same drift of the host's load. Load 2.1-2.6. The three runs: pipeline 20.5 / 16.1 / 15.0 tokens/s, one page 19.7 / 27.1 / 22.2; ratio of the medians 0.73. Per token / (kernels + hops) 2.66, shard load / raw read 0.38, longest cold main-thread task 240 ms over the six cold requests.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-decode-lab-s9-e-alternated.json',
    render: e2eSection,
  },
  'e2e-issue11-s7.json': {
    title: 'End to end, realistic preset, decode and hops (issue 11, session 7)',
    about:
      "The decode and hop parts of `npm run bench` on the realistic preset after session 7's load-path changes: unit Blobs read and stage graphs built in the page's inference worker, the timeline's chart kept while tokens come. New goal row: the pipeline's per-token time against the sum of its stages' median kernels plus one data-channel one-way hop per stage (core/step-breakdown.ts ringBudget). Three runs of this code within 40 minutes gave 4-page/1-page decode ratios of 0.40 to 0.83 at load 4.5-7.5: on this 2-core machine the pages' threads share two cores, so these ratios follow the machine's load more than the code.",
    run: 'npm run bench -- --skip plans,api,failover --out bench/results/e2e-issue11-s7.json',
    render: e2eSection,
  },
  'e2e-issue11-lab.json': {
    title: 'End to end, realistic preset, decode on the device lab (issue 11)',
    about:
      "The decode part of `npm run bench` on the device lab (`--decode-lab equal`, e2e/decode-bench.ts), so that both sides of issue 11's rows have the same emulation per page: the 4-stage even pipeline on 4 `equal` devices (0.4 core each, its own Chromium, CPU group and namespace, 100/100 Mbit/s tc-shaped links, storage read NOT capped) and the single-page plan on one of those same devices; warm-up → cold → warm requests per plan (the cold request gives shard load and main-thread long tasks, the warm one the decode rate). The budget's hop (one-way, decode-sized frame) and the shard-load row's raw IndexedDB read (the same units as each stage, Blob values read at once) are measured afterwards on two fresh devices of the same shape. `labCpu` gives each device's CPU against its quota and its throttled periods per run. The machine is shared: three runs of this code within 45 minutes (load 5.0-5.4 at their starts) gave 4-page/1-page decode 0.47 / 0.69 / 0.87 (this one), per token / (kernels + hops) 2.87 / 3.10 / 2.44 and shard load / raw read 0.43 / 0.44 / 0.66. The pipeline followed the host's busy cores (1.9 of 2 busy: 142 ms per token; 0.9 busy, this run: 69 ms) while the one page stayed at 63-74 ms: a quota caps a device, it does not shield it from the host's other work. In every run the ring's wire and wake-up between stages (6-17 ms per hop) were many times the hop measured alone (0.7-1.15 ms), with the devices throttled in about half of their 10 ms periods while using about half their quota.",
    run: 'npm run bench -- --skip hop,plans,api,failover --out bench/results/e2e-issue11-lab.json',
    render: e2eSection,
  },
  'e2e-issue11.json': {
    title: 'End to end, tiny preset, plans skipped (issue 11 run)',
    about:
      'The same end-to-end benchmark as `e2e.json` above (e2e/bench.ts, headless Chromium pages against the real server in a private network namespace), run on the `tiny` preset with the cold-start plan comparison skipped: the decode rate of a 4-page pipeline against one page and against transformers.js in Node, the longest main-thread task of a page during a cold request, data-channel hops, and shard load against the raw IndexedDB read rate. Without the plans the DP/even TTFT goal is not measured.',
    run: 'npm run bench -- --preset tiny --skip plans --out bench/results/e2e-issue11.json',
    render: e2eSection,
  },
  'e2e-decode-after.json': {
    title: 'End to end, tiny preset, decode only (after the decode cuts)',
    about:
      'The end-to-end benchmark (e2e/bench.ts) on the `tiny` preset with only its decode part: the 4-page pipeline against one page and against transformers.js in Node, and the longest main-thread task of a cold request, after the page stopped drawing every state change, the head samples in the worker and wasm sessions run on the CPU-only ORT build. Compare its decode rows with the issue-11 run above (an older commit: the cuts of the ring bench landed between them).',
    run: 'npm run bench -- --preset tiny --skip plans,hop,api,failover --out bench/results/e2e-decode-after.json',
    render: e2eSection,
  },
  'api.json': {
    title: 'OpenAI-compatible API against Go (`bench:api`)',
    about:
      "The OpenAI-compatible API on a warm session of two unemulated wasm pages (tiny model), against the host's Go on the same session, alternating after one warm-up of each: TTFT through the API (HTTP POST with the official `openai` client until the first SSE content chunk) against Go (the driver's `go` until the first `output` message over /ws), with the goal median API − median Go ≤ 50 ms; and how long after the `output` message of a token its SSE chunk arrives, both on the bench process's clock. `npm run bench` runs it too (`--skip api` leaves it out).",
    run: 'npm run bench:api [-- --preset tiny|demo --rounds 5 --new-tokens 8 --out FILE]',
    render: apiSection,
  },
  'failover.json': {
    title: 'Failover: injected losses (`bench:failover`)',
    about:
      "Pages taken away mid-request on lab devices (a closed tab, or a cut link), one per request: whether each request still ends with the tokens of an uninterrupted run, and the recovery time (loss detected → next token, server clock) against the repair plan's predicted resume (docs/failover.md).",
    run: 'npm run bench:failover [-- --failures 10 --devices 5 --new-tokens 16 --at 5]',
    render: failoverSection,
  },
  'load-parts-s25.json': {
    title: 'A stage loaded in parts against one session, session 25: unit files opened ahead',
    about:
      "As session 24's run, plain page only (`--cores 0`), after a prepared stage keeps its unit files open on the thread that reads them (the inference worker's for one part, its reader thread's for a stage in parts), a page being prepared once they are open. Load about 1.4. One part: read 0.267 s + create 0.055 s = load 0.320 s, decode 231 tok/s; in parts: 0.193 s + 0.013 s = 0.206 s (0.64x; session 24: 0.269 against 0.324 s), decode 204 tok/s. Each mode's third cold request on a fresh page read in 0.13-0.17 s, the first ones in 0.21-0.39 s. Two earlier runs of this session: with the files kept on the worker's thread only, a stage in parts read there between its creations and no longer overlapped them (0.263 against 0.304 s, creation after the last read 0.072 s); before a page waited for its files to open, a request could start first (one part 0.423 s).",
    run: 'npm run bench:load-parts -- --cores 0 --out bench/results/load-parts-s25.json',
    render: loadPartsSection,
  },
  'load-parts-s24.json': {
    title: 'A stage loaded in parts against one session (`bench:load-parts`), fp32',
    about:
      "One page loads the whole realistic model (94.3 MB fp32: 16 layers, embedding and head) cold from its cache, again and again, with `?parts=off` (one onnxruntime-web session, created once every unit is read on the inference worker's own thread) and `?parts=on` (four parts of at least 8 MiB, each part's session created while the next part's units are read on the worker's reader thread: shards/runtime/stage-parts.ts), alternated over fresh pages, 6 cold requests of 16 tokens per mode; on a plain page (the host's two cores) and on one lab device of 0.4 core; load 3.0 at the start, 2.8 at the end. Plain page: load 0.269 s in parts against 0.324 s in one (0.83x), TTFT 0.311 against 0.366 s: the creation after the last read fell from 0.060 to 0.013 s while the reads' span stayed (0.257 against 0.264 s); decode 198 against 202 tok/s (the three extra runs per step). Its parallel-load figure 2.00, so `?parts=auto` loads it in parts. Lab device: 0.718 s against 0.549 s (1.31x, slower: the reads and the creations only take turns within its quota, with a hand-over between threads on top), decode 38 against 46 tok/s; its figure 1.00, so auto keeps it in one part, as the lab's plan and decode benches run. An earlier run of this session's code (cuts at the first reach of an n-th of the bytes, one-part reads also on the reader thread) at load 2.8-1.7 gave 0.96x on the plain page and 1.20x on the lab device.",
    run: 'npm run bench:load-parts -- --out bench/results/load-parts-s24.json',
    render: loadPartsSection,
  },
  'load-parts-s24-q4.json': {
    title: 'A stage loaded in parts against one session, q4 on a plain page',
    about:
      "The same comparison with the q4 package of the realistic model (47.6 MB: the layers' 4-bit matrices are dequantised to float32 when a wasm session is created, so creation weighs more against the read), on a plain page only, load 2.8 at the start, 2.9 at the end: load 0.223 s in parts against 0.241 s in one (0.93x), TTFT 0.268 against 0.283 s; the creation after the last read fell from 0.109 to 0.009 s while the reads' span grew from 0.131 to 0.214 s, the reader sharing a loaded host with the creations; decode 188 against 202 tok/s. An earlier run of this session's code at load 0.7-2.2 gave 0.71x (0.206 against 0.291 s): the gain needs a core to spare. The page's parallel-load figure 1.96-1.99: auto loads in parts.",
    run: 'npm run bench:load-parts -- --dtype q4 --cores 0 --out bench/results/load-parts-s24-q4.json',
    render: loadPartsSection,
  },
  'anchor.json': {
    title: 'One page against transformers.js in the same browser (`bench:anchor`)',
    about:
      "The baseline a one-laptop user would open instead of Tandem: transformers.js alone in one tab (client/anchor.html) on the same weights (`shards export-full`), against one Tandem page, both in the same headless Chromium on wasm with the same thread count and the same chat-rendered prompt, greedy; each after a 1-token warm-up request, measured on a cold request (the model loaded again). Issue 11's goals: TTFT including load <= 0.75x the anchor's, decode >= 1.2x.",
    run: 'npm run bench:anchor [-- --preset realistic --tokens 256 --new-tokens 32]',
    render: anchorSection,
  },
  'anchor-s27.json': {
    title: 'The anchor, session 27: one Tandem page against transformers.js',
    about:
      "`npm run bench:anchor` at commit 9e724de (the page's parts patched into the DOM). Load 1.3 at the start, 1.9 at the end. TTFT including load 0.38x transformers.js (0.60 against 1.60 s) ✓; decode 2.75x (164.9 against 59.9 tok/s) ✓; tokens identical.",
    run: 'npm run bench:anchor -- --out bench/results/anchor-s27.json',
    render: anchorSection,
  },
  'anchor-s26.json': {
    title: "One page against transformers.js, at session 26's final code",
    about:
      "The same comparison at commit 4bbc7be (session 26's final code: the page is session 25's; the server now holds a running request's decode phases for its ring's pages, here the one page's own), load 2.5 at the start, 2.6 at the end. This plain page measured 1.92 and loaded in parts. Tandem loaded the 94 MB model in 0.21 s against transformers.js' 0.89 s; TTFT including load 0.34x the anchor (0.68 against 1.99 s) ✓ (goal <= 0.75); decode 160.1 against 48.8 tok/s, 3.28x ✓ (goal >= 1.2); tokens identical.",
    run: 'npm run bench:anchor -- --out bench/results/anchor-s26.json',
    render: anchorSection,
  },
  'anchor-s25.json': {
    title: 'One page against transformers.js, again at session 25',
    about:
      "The same comparison at session 25 (unit files opened when the stage is prepared, its graph built then, stages loaded in parts where the page has a core to spare: this plain page measured 1.99 and loaded in parts), load 0.4 at the start, 1.3 at the end: Tandem loaded the 94 MB model in 0.25 s against transformers.js' 0.84 s; TTFT including load 0.39x the anchor (0.73 against 1.87 s) and decode 2.91x (145.2 against 49.9 tok/s), tokens identical. Both goals hold.",
    run: 'npm run bench:anchor -- --out bench/results/anchor-s25.json',
    render: anchorSection,
  },
  'anchor-s12.json': {
    title: 'One page against transformers.js, again at session 12',
    about:
      "The same comparison on the session-12 code (the one page's stage in its inference worker), at load 4.9 at the start, 3.8 at the end: TTFT including load 0.46x the anchor and decode 2.81x (132.7 against 47.2 tok/s), tokens identical. Both goals hold.",
    run: 'npm run bench:anchor -- --out bench/results/anchor-s12.json',
    render: anchorSection,
  },
  'anchor-s9.json': {
    title: 'One page against transformers.js, again at session 9',
    about:
      'The same comparison as the section above, re-run on the session-9 code (units in OPFS, the warm-up with the embedding and head paths, the view drawn in the gaps) at load 1.6-3.0: TTFT including load 0.60x the anchor and decode 1.50x, tokens identical (session 6: 0.31x and 2.19x at another load). Both goals still hold.',
    run: 'npm run bench:anchor -- --out bench/results/anchor-s9.json',
    render: anchorSection,
  },
  'ring.json': {
    title: 'The decode ring, per token (`bench:ring`)',
    about:
      "Where a decode token's time goes in a K = 4 ring without a network: each stage's input → compute, compute, compute → sent, and the wire between stages, all on one clock. The goal: per token no more than the stages' compute plus the hops' wire, + 10 %.",
    run: 'npm run bench:ring [-- --out FILE --label after]',
    render: ringSection,
  },
  'ring-before.json': {
    title: 'The decode ring, before the overhead cuts',
    about:
      'The same `bench:ring` at the commit that added its instrumentation, before the cuts it led to; compare with the section above.',
    run: 'npm run bench:ring -- --out bench/results/ring-before.json --label before',
    render: ringSection,
  },
  'ring-wasm-before.json': {
    title: 'The decode ring on the wasm kernels, before the head sampled in the worker',
    about:
      "`bench:ring --backend wasm` (onnxruntime-web's wasm kernels, each runtime in a worker thread as a page's) before the last stage's runtime sampled the next token itself: the logits row (151,936 floats) crossed back to the stage's thread every token. Node has no page rendering, so this ring shows the stage code's own overhead only.",
    run: 'npm run bench:ring -- --backend wasm --out bench/results/ring-wasm-before.json --label before',
    render: ringSection,
  },
  'ring-wasm-after.json': {
    title: 'The decode ring on the wasm kernels, the head sampled in the worker',
    about:
      "The same `bench:ring --backend wasm` after the last stage's runtime samples the token where the logits are (its kernel now includes the sampling). The machine is shared: compare with the loads recorded.",
    run: 'npm run bench:ring -- --backend wasm --out bench/results/ring-wasm-after.json --label after',
    render: ringSection,
  },
  'decode-trace-1-before.json': {
    title: 'One page decoding, traced (`bench:decode-trace`), before',
    about:
      "Where a decode token's time goes in a real page: one unemulated wasm page runs the whole tiny model in headless Chromium; a Chrome trace of the warm measured request records the page's main thread and its inference worker (top-level tasks, trace events by self time, the V8 sampling profiler's functions), beside the page's own step figures (input → compute, compute, compute → sent). Busy time per token divides the whole traced window (prefill and the wait for the last reports included) by the tokens. Tracing with the sampling profiler slows the pages (most with 4 pages on 2 cores): compare traced figures with traced ones, and take decode rates from the untraced `bench`. Before the page stopped re-rendering every part on every state change.",
    run: 'npm run bench:decode-trace -- --pages 1 --out bench/results/decode-trace-1-before.json --label before',
    render: decodeTraceSection,
  },
  'decode-trace-1-after.json': {
    title: 'One page decoding, traced, after',
    about:
      'The same trace after the cuts it led to (the label names the commit): the page re-fills only the parts whose state changed and, while its stage runs, draws at most every 250 ms and lays the timeline out at most every 500 ms; the last stage samples its token in the inference worker; wasm sessions run on the CPU-only onnxruntime-web build instead of the asyncify one.',
    run: 'npm run bench:decode-trace -- --pages 1 --out bench/results/decode-trace-1-after.json --label after',
    render: decodeTraceSection,
  },
  'decode-trace-4-before.json': {
    title: 'A 4-page ring decoding, traced, before',
    about:
      "Four unemulated wasm pages in one headless Chromium (one tiny-model layer each, the first with the embedding, the last with the head) on an even plan over WebRTC data channels, traced as above; the pages share the machine's 2 cores.",
    run: 'npm run bench:decode-trace -- --pages 4 --out bench/results/decode-trace-4-before.json --label before',
    render: decodeTraceSection,
  },
  'decode-trace-4-after.json': {
    title: 'A 4-page ring decoding, traced, after',
    about: 'The same 4-page trace after the cuts (the label names the commit; see the one-page section).',
    run: 'npm run bench:decode-trace -- --pages 4 --out bench/results/decode-trace-4-after.json --label after',
    render: decodeTraceSection,
  },
  'decode-trace-lab-cold-s10.json': {
    title: 'A cold request on 4 lab devices, traced after 3 cold requests (session 10)',
    about:
      "`bench:decode-trace --lab equal --cold --cold-after 3` on the realistic preset: four equal 0.4-core lab devices (each its own Chromium, CPU group and namespace), an even plan, three untraced cold requests on fresh plans, then the traced one (storage read, session creation, prefill, 32 tokens). Load 2.1-2.8. The inference workers' longest tasks ran 4-8x longer than their own CPU (e.g. 705 ms of wall for 88 ms of CPU): the rest of the device's quota went to its other threads, the trace's own sampling profiler among them, and 240-310 ms per renderer of thread-pool work, a third of it V8 compiling wasm functions to its top tier, most of that while the session was being created. The first cold request of the same line-up (the section below) had 240-380 ms of top-tier compilation per renderer; after three, 80-170 ms remained: the warm-up does not pay all of it, since V8 compiles a function to its top tier when it has become hot.",
    run: 'npm run bench:decode-trace -- --pages 4 --preset realistic --lab equal --cold --cold-after 3 --out bench/results/decode-trace-lab-cold-s10.json',
    render: decodeTraceSection,
  },
  'decode-trace-lab-cold-first-s10.json': {
    title: 'The first cold request on 4 lab devices, traced (session 10)',
    about:
      "As above without untraced cold requests first: the pages' first request after joining and warming up. Load 5.5-5.9 (the host was busy). Thread-pool top-tier wasm compilation 240-380 ms per renderer; main-thread draws of 4-24 ms of CPU took 60-310 ms of wall.",
    run: 'npm run bench:decode-trace -- --pages 4 --preset realistic --lab equal --cold --out bench/results/decode-trace-lab-cold-first-s10.json',
    render: decodeTraceSection,
  },
  'decode-trace-lab-cold-s27-before.json': {
    title: 'A cold request on 4 lab devices, traced (session 27, before)',
    about:
      "`bench:decode-trace --lab equal --cold --cold-after 2 --samples off` at commit 285b855 (session 26's final code). Load 5.5 at the start, 5.3 at the end. Seven main-thread tasks over 50 ms on the four pages (53-81 ms of wall for 10-14 ms of CPU each: layout, the view's render, paint). The first large layout of each page had 436-443 of its ~735 layout objects dirty (5-6 ms of CPU, 30-43 ms of wall). Each page's main thread was busy 333-416 ms over the request.",
    run: 'npm run bench:decode-trace -- --pages 4 --lab equal --preset realistic --cold --cold-after 2 --samples off --out bench/results/decode-trace-lab-cold-s27-before.json',
    render: decodeTraceSection,
  },
  'decode-trace-lab-cold-s27-update.json': {
    title: "A cold request on 4 lab devices, traced: the page's parts patched into the DOM (session 27)",
    about:
      "As the section above at commit 3665975 (`client/ui/dom.ts` `update`). Load 4.6 at the start, 4.5 at the end. The first large layout had 313 layout objects dirty, the next ones 21 and 102 (before: 436-494). Four main-thread tasks over 50 ms (54-73 ms of wall for 5-12 ms of CPU): the layouts' CPU fell, their wall time did not, since a frame waited on the device's quota while the inference worker computed. Main threads busy 252-413 ms.",
    run: 'npm run bench:decode-trace -- --pages 4 --lab equal --preset realistic --cold --cold-after 2 --samples off --out bench/results/decode-trace-lab-cold-s27-update.json',
    render: decodeTraceSection,
  },
  'decode-trace-lab-cold-s27-pinned.json': {
    title: 'A cold request on 4 lab devices, traced: each device on one CPU (session 27)',
    about:
      "As the section above with each device's browser confined to one CPU (a scratch version of the lab at commit 3665975 that launched each device's browser under `taskset`; the lab kept since uses a cpuset, which also holds the threads that set their own affinity). Load 3.9 at the start, 3.3 at the end. No main-thread task over 50 ms on any page; main threads busy 192-303 ms. With both CPUs free, a device's worker and its page's main thread ran on different CPUs and split the quota whatever their nice; on one CPU the main thread's nice -8 puts it ahead.",
    run: 'TANDEM_LAB_PIN=1 npm run bench:decode-trace -- --pages 4 --lab equal --preset realistic --cold --cold-after 2 --samples off --out bench/results/decode-trace-lab-cold-s27-pinned.json (scratch taskset lab)',
    render: decodeTraceSection,
  },
  'decode-trace-lab-cold-single-s27-pinned.json': {
    title: 'A cold single-page request on 4 lab devices, traced, each device on one CPU (session 27)',
    about:
      "`bench:decode-trace --pages 4 --plan single --lab equal --cold --cold-after 2 --samples off` at commit 5be6904 (each device's browser on one CPU). Load 4.6 at the start, 4.3 at the end. On the page that ran the whole model (its inference worker took the load, creation and prefill as one task of 1456 ms of wall, 408 ms of CPU), one main-thread task went over 50 ms: 55 ms of wall for 8 ms of CPU, 40 ms of it a layout of 12 dirty objects (4.9 ms of CPU). The other pages' main threads had none.",
    run: 'npm run bench:decode-trace -- --pages 4 --plan single --lab equal --preset realistic --cold --cold-after 2 --samples off --out bench/results/decode-trace-lab-cold-single-s27-pinned.json',
    render: decodeTraceSection,
  },
  'compute-profile.json': {
    title: 'Compute profiles against a real stage (`bench:compute`)',
    about:
      "How well each compute profile predicts a real stage's prefill: the planner's layer FLOPs / (c* U(t)) from the old JS matmul and from the runtime sweep (MatMul blocks, or real stage layers) on onnxruntime-node and -web wasm, divided by the measured prefill. 1 is a perfect prediction.",
    run: 'npm run bench:compute [-- --shape qwen3-0.6b|demo --out FILE]',
    render: computeProfileSection,
  },
  'webgpu-node.json': {
    title: 'Stage sessions on a GPU, latest run (`bench:webgpu-node`)',
    about:
      'The latest `bench:webgpu-node` run at its default output, on whatever GPU ran it (the label and adapter say which). The runs kept for the record follow.',
    run: 'npm run bench:webgpu-node -- --dawn DIR [--label TEXT]',
    render: webgpuNodeSection,
  },
  'webgpu-node-h200.json': {
    title: 'Stage sessions on a real GPU (`bench:webgpu-node`)',
    about:
      "The page's WebGPU runtime (client/runtime/ort-web.ts on onnxruntime-web) on a lent NVIDIA H200, through Dawn's Node binding (no browser there). Fidelity: the tiny model in two stages against the fp64 reference. Speed: one whole-model stage, a 256-token prefill and 32 greedy steps, with the KV cache kept as GPU buffers (what the page does) and read back every step (what it did before). This machine has no GPU: the figures come from the one session that was lent one.",
    run: 'npm run bench:webgpu-node -- --dawn DIR --out bench/results/webgpu-node-h200.json',
    render: webgpuNodeSection,
  },
  'webgpu-node-h200-f16.json': {
    title: 'Stage sessions on a real GPU with shader-f16 (`bench:webgpu-node`)',
    about:
      "The same check on the same kind of machine, with Dawn told to offer shader-f16 on NVIDIA's Vulkan driver (it hides it there by default), to try fp16 packages whose matmuls run in float16 (stage-graph.ts `f16Matmul`) against the fp32 path the page runs.",
    run: "npm run bench:webgpu-node -- --dawn DIR --dawn-flags 'enable-dawn-features=vulkan_enable_f16_on_nvidia' --variants fp32-gpu-kv,fp16-f16-matmul,q4 --out bench/results/webgpu-node-h200-f16.json",
    render: webgpuNodeSection,
  },
  'webgpu-node-h200-wasm.json': {
    title: "A real GPU against the same machine's CPU (`bench:webgpu-node`)",
    about:
      "The page's WebGPU path on the H200 beside the wasm kernels on one thread of that machine's Xeon (as a page without WebGPU runs), same models, same run.",
    run: 'npm run bench:webgpu-node -- --dawn DIR --variants fp32-gpu-kv,fp32-wasm --out bench/results/webgpu-node-h200-wasm.json',
    render: webgpuNodeSection,
  },
  'webgpu-node-swiftshader.json': {
    title: 'Stage sessions on a software WebGPU adapter (`bench:webgpu-node`)',
    about:
      "The same check on this machine's CPU, through Chromium's SwiftShader (a fallback adapter, which is why the page picks wasm over it unless `?backend=webgpu`), beside the wasm kernels on one thread of the same CPU.",
    run: 'LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npm run bench:webgpu-node -- --dawn DIR --shapes realistic --variants fp32-gpu-kv,fp32-wasm --prefill 64 --decode 8 --out bench/results/webgpu-node-swiftshader.json',
    render: webgpuNodeSection,
  },
  'compute-profile-demo.json': {
    title: 'Compute profiles against a real stage, demo layer shape',
    about: "The same `bench:compute` on the demo model's layer shape.",
    run: 'npm run bench:compute -- --shape demo --out bench/results/compute-profile-demo.json',
    render: computeProfileSection,
  },
};

// ---------------------------------------------------------------------------------------------
// Rendering and I/O

export interface ResultFile {
  /** File name inside the results folder, e.g. `planner.json`. */
  file: string;
  /** Parsed JSON, or undefined when the file could not be read as JSON. */
  json: unknown;
  readError?: string;
}

export function renderBenchmarksDoc(files: readonly ResultFile[], resultsLabel = 'bench/results'): string {
  const byName = new Map(files.map((f) => [f.file, f]));
  const out: string[] = [
    '# Benchmarks',
    `<!-- Generated by \`npm run bench:doc\` (e2e/benchmarks-doc.ts) from ${resultsLabel}/*.json. Do not edit by hand: rerun a benchmark, then the generator. -->`,
    `The latest figures of every benchmark, as saved in \`${resultsLabel}/\`. Each benchmark records the machine it ran on and, where the script measures it, the load average: the project's machine is shared, so figures from a loaded machine are pessimistic and vary between runs. Rerun on an idle machine before calibrating anything against them.`,
    'Numbers are shown to 3 significant digits; MB = 10^6 bytes, MiB = 2^20 bytes. Tests never assert timings; the goals below are checked here, by the benchmarks.',
  ];
  const notes: string[] = [];
  for (const [name, section] of Object.entries(SECTIONS)) {
    const file = byName.get(name);
    out.push(`## ${section.title}`, section.about, `Run: \`${section.run}\` (writes \`${resultsLabel}/${name}\`).`);
    if (!file) {
      out.push(`_No \`${name}\` in ${resultsLabel}: run the benchmark to fill this section._`);
      continue;
    }
    if (file.readError !== undefined) {
      out.push(`_\`${name}\` could not be read: ${file.readError}_`);
      continue;
    }
    try {
      out.push(section.render(file.json));
    } catch (e) {
      const detail =
        e instanceof z.ZodError
          ? e.issues
              .slice(0, 3)
              .map((i) => `${i.path.join('.')}: ${i.message}`)
              .join('; ')
          : String(e);
      out.push(
        `_\`${name}\` does not have the fields this page expects (${detail}); update e2e/benchmarks-doc.ts to its new shape._`,
      );
    }
  }
  for (const f of files)
    if (!(f.file in SECTIONS))
      notes.push(
        `- \`${resultsLabel}/${f.file}\`: not known to this generator, skipped. Add a section for it in e2e/benchmarks-doc.ts.`,
      );
  if (notes.length > 0) out.push('## Other result files', notes.join('\n'));
  return `${out.join('\n\n')}\n`;
}

/** Every `*.json` in the folder, sorted by name, parsed (a file that is not JSON keeps its error). */
export async function readResultFiles(dir: string): Promise<ResultFile[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    throw new TandemError(
      'bench-results-missing',
      `Cannot read the results folder ${dir} (${e instanceof Error ? e.message : String(e)}); pass --results DIR or run a benchmark first.`,
    );
  }
  const names = entries.filter((n) => n.endsWith('.json')).sort();
  return Promise.all(
    names.map(async (file): Promise<ResultFile> => {
      const text = await readFile(path.join(dir, file), 'utf8');
      try {
        return { file, json: JSON.parse(text) as unknown };
      } catch (e) {
        return { file, json: undefined, readError: e instanceof Error ? e.message : String(e) };
      }
    }),
  );
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      results: { type: 'string', default: DEFAULT_RESULTS_DIR },
      out: { type: 'string', default: DEFAULT_OUT },
      stdout: { type: 'boolean', default: false },
    },
  });
  const dir = path.resolve(values.results);
  const label = path.relative(ROOT, dir).split(path.sep).join('/') || '.';
  const markdown = renderBenchmarksDoc(await readResultFiles(dir), label.startsWith('..') ? dir : label);
  if (values.stdout) {
    process.stdout.write(markdown);
    return;
  }
  const out = path.resolve(values.out);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, markdown);
  process.stdout.write(`bench:doc: wrote ${path.relative(process.cwd(), out) || out}\n`);
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:doc', usage: USAGE, main });
