/**
 * Timeline layout (pure): predicted and measured phases of every pipeline stage -> rectangles in
 * pixels, axis ticks and markers, for the Gantt chart in timeline.ts (drawn by timeline-canvas.ts). No DOM here.
 *
 * Each stage gets one lane with two rows: the plan's PREDICTION (CSGO model, prefill only: load, wait,
 * receive, compute) above, the MEASURED phases below (storage read, session create, wait, receive,
 * compute, send, sample for the prefill and the first decode steps). Time runs left to right in
 * seconds from the request's start: every page measures from the server's send of `start`, read through
 * its heartbeat clock offset (core/clock-offset.ts), or without one from its own arrival of it.
 */
import type { TimingEntry } from '../../core/protocol.ts';
import type { StageTimes } from '../../core/stage-times.ts';
import { isStepPart } from '../../core/step-breakdown.ts';

/** Phases drawn; the predicted 'load' covers measured 'storage-read' + 'session-create'. */
export type TimelinePhase =
  'load' | 'storage-read' | 'session-create' | 'wait' | 'receive' | 'compute' | 'send' | 'sample';

/** A stage's predicted times, seconds (CSGO: load_n, wait_n, comm_n, comp_n, start_n, finish_n). */
export interface PredictedStageInput extends StageTimes {
  stageIndex: number;
  label: string;
}

/**
 * The measured phases the chart draws, as its inputs (seconds): a step's 'ingress', 'kernel' and
 * 'egress' parts overlap 'compute' and 'send' and are shown as figures instead (timeline.ts).
 */
export function measuredPhaseInputs(timings: readonly TimingEntry[]): MeasuredPhaseInput[] {
  return timings.flatMap((t) =>
    isStepPart(t.phase) ? [] : [{ phase: t.phase, step: t.step, start: t.startMs / 1000, end: t.endMs / 1000 }],
  );
}

/**
 * Whether a stage's request found its stage loaded (a warm start: loaded at plan time with ?warm=1, or
 * kept from an earlier request): its prefill computed without reading units or creating a session.
 */
export function warmStart(measured: readonly MeasuredPhaseInput[]): boolean {
  const prefill = measured.filter((m) => m.step === 0);
  return (
    prefill.some((m) => m.phase === 'compute') &&
    !prefill.some((m) => m.phase === 'storage-read' || m.phase === 'session-create')
  );
}

export interface MeasuredPhaseInput {
  phase: Exclude<TimelinePhase, 'load'>;
  /** 0 = prefill, n = n-th decode step */
  step: number;
  /** seconds from the request's start */
  start: number;
  end: number;
}

export interface LaneInput {
  stageIndex: number;
  label: string;
  /** e.g. 'layers 1-7 · embeds' (1-based inclusive for people) */
  detail: string;
  predicted: PredictedStageInput | null;
  measured: readonly MeasuredPhaseInput[];
}

export interface LayoutOptions {
  /** Total width in CSS pixels. */
  width: number;
  /** Decode steps shown besides the prefill (step 0). */
  decodeSteps?: number;
  /** Row height in CSS pixels; lanes are two rows plus a gap. */
  rowHeight?: number;
  /** Width of the label column; defaults to min(200, 32% of width). */
  labelWidth?: number;
  /** Font size of the marker labels in CSS pixels (for their placement). */
  markerFont?: number;
}

export interface TimelineRect {
  lane: number;
  row: 'predicted' | 'measured';
  phase: TimelinePhase;
  step: number;
  x: number;
  y: number;
  width: number;
  height: number;
  /** seconds */
  start: number;
  end: number;
}

export interface TimelineTick {
  x: number;
  seconds: number;
  label: string;
}

export interface TimelineMarker {
  x: number;
  label: string;
  seconds: number;
  kind: 'predicted-latency' | 'measured-ttft';
  /** label placement: text-anchor and baseline y (labels that would overlap get separate rows) */
  anchor: 'start' | 'end';
  labelY: number;
}

export interface TimelineLaneLayout {
  stageIndex: number;
  label: string;
  detail: string;
  y: number;
  height: number;
  predictedY: number;
  measuredY: number;
}

export interface TimelineLayout {
  width: number;
  height: number;
  /** x of t = 0 */
  plotLeft: number;
  plotRight: number;
  /** seconds shown at plotRight */
  span: number;
  rowHeight: number;
  axisY: number;
  /** y where the lanes end; marker labels go in the row below it */
  lanesBottom: number;
  lanes: TimelineLaneLayout[];
  rects: TimelineRect[];
  ticks: TimelineTick[];
  markers: TimelineMarker[];
}

const AXIS_HEIGHT = 28;
const LANE_GAP = 10;
const MIN_RECT_WIDTH = 1.5;

/** A "nice" tick step (1, 2 or 5 x 10^k) giving at most maxTicks intervals over span. */
export function niceStep(span: number, maxTicks: number): number {
  if (!(span > 0)) return 1;
  const raw = span / Math.max(1, maxTicks);
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

/** Seconds as a short readable label: 0, 250 ms, 1.5 s, 12 s. */
export function formatSeconds(seconds: number): string {
  if (seconds === 0) return '0';
  if (Math.abs(seconds) < 1) return `${+(seconds * 1000).toPrecision(3)} ms`;
  return `${+seconds.toPrecision(3)} s`;
}

/** The predicted phases of one stage as intervals (seconds). */
export function predictedIntervals(p: PredictedStageInput): { phase: TimelinePhase; start: number; end: number }[] {
  const out: { phase: TimelinePhase; start: number; end: number }[] = [];
  if (p.load > 0) out.push({ phase: 'load', start: 0, end: p.load });
  // wait_n = max(0, finish_{n-1} - load_n): the idle bubble between the end of loading and the start
  if (p.startTime > p.load) out.push({ phase: 'wait', start: p.load, end: p.startTime });
  if (p.comm > 0) out.push({ phase: 'receive', start: p.startTime, end: p.startTime + p.comm });
  if (p.compute > 0) out.push({ phase: 'compute', start: p.startTime + p.comm, end: p.startTime + p.comm + p.compute });
  return out;
}

export function layoutTimeline(
  lanes: readonly LaneInput[],
  measuredTtft: number | null,
  options: LayoutOptions,
): TimelineLayout {
  const width = Math.max(200, options.width);
  const rowHeight = options.rowHeight ?? 22;
  const decodeSteps = options.decodeSteps ?? 3;
  const labelWidth = options.labelWidth ?? Math.min(200, Math.round(width * 0.32));
  const plotLeft = labelWidth + 8;
  const plotRight = width - 28;
  const ordered = [...lanes].sort((a, b) => a.stageIndex - b.stageIndex);

  const shown = (m: MeasuredPhaseInput) =>
    m.step <= decodeSteps && m.end >= m.start && Number.isFinite(m.start) && Number.isFinite(m.end);
  let span = 0;
  let predictedLatency = 0;
  for (const lane of ordered) {
    if (lane.predicted) {
      span = Math.max(span, lane.predicted.finishTime);
      predictedLatency = Math.max(predictedLatency, lane.predicted.finishTime);
    }
    for (const m of lane.measured) if (shown(m)) span = Math.max(span, m.end);
  }
  if (!(span > 0)) span = 1;
  const step = niceStep(span, Math.max(2, Math.floor((plotRight - plotLeft) / 90)));
  span = Math.ceil(span / step - 1e-9) * step;
  const xOf = (t: number) => plotLeft + ((plotRight - plotLeft) * t) / span;

  const rects: TimelineRect[] = [];
  const laneLayouts: TimelineLaneLayout[] = [];
  let y = AXIS_HEIGHT;
  ordered.forEach((lane, i) => {
    const predictedY = y;
    const measuredY = y + rowHeight;
    laneLayouts.push({
      stageIndex: lane.stageIndex,
      label: lane.label,
      detail: lane.detail,
      y,
      height: 2 * rowHeight,
      predictedY,
      measuredY,
    });
    const push = (
      row: 'predicted' | 'measured',
      phase: TimelinePhase,
      stepIndex: number,
      start: number,
      end: number,
    ) => {
      const x = xOf(start);
      rects.push({
        lane: i,
        row,
        phase,
        step: stepIndex,
        x,
        y: (row === 'predicted' ? predictedY : measuredY) + 2,
        width: Math.max(MIN_RECT_WIDTH, xOf(end) - x),
        height: rowHeight - 4,
        start,
        end,
      });
    };
    if (lane.predicted)
      for (const iv of predictedIntervals(lane.predicted)) push('predicted', iv.phase, 0, iv.start, iv.end);
    for (const m of lane.measured) if (shown(m)) push('measured', m.phase, m.step, m.start, m.end);
    y += 2 * rowHeight + LANE_GAP;
  });

  const ticks: TimelineTick[] = [];
  for (let k = 0; k * step <= span + 1e-9; k++) {
    const seconds = k * step;
    ticks.push({ x: xOf(seconds), seconds, label: formatSeconds(seconds) });
  }
  // markers: the prediction's label left of its line, the measurement's right of it (flipped near an
  // edge); labels that would overlap go on separate rows under the lanes
  const font = options.markerFont ?? 14;
  const lanesBottom = Math.max(y - LANE_GAP, AXIS_HEIGHT + 20);
  const wanted: { x: number; seconds: number; label: string; kind: TimelineMarker['kind'] }[] = [];
  if (predictedLatency > 0)
    wanted.push({
      x: xOf(predictedLatency),
      seconds: predictedLatency,
      label: `T pred ${formatSeconds(predictedLatency)}`,
      kind: 'predicted-latency',
    });
  if (measuredTtft !== null && measuredTtft <= span)
    wanted.push({
      x: xOf(measuredTtft),
      seconds: measuredTtft,
      label: `TTFT ${formatSeconds(measuredTtft)}`,
      kind: 'measured-ttft',
    });
  const rowsUsed: [number, number][][] = [];
  const markers: TimelineMarker[] = wanted.map((m) => {
    const textWidth = 0.62 * font * m.label.length + 4;
    let anchor: 'start' | 'end' = m.kind === 'measured-ttft' ? 'start' : 'end';
    if (anchor === 'start' && m.x + textWidth > width) anchor = 'end';
    if (anchor === 'end' && m.x - textWidth < 0) anchor = 'start';
    const extent: [number, number] = anchor === 'start' ? [m.x, m.x + textWidth] : [m.x - textWidth, m.x];
    let row = 0;
    while (rowsUsed[row]?.some(([a, b]) => extent[0] < b && a < extent[1])) row++;
    (rowsUsed[row] ??= []).push(extent);
    return { ...m, anchor, labelY: lanesBottom + (row + 1) * (font + 8) };
  });
  const height = lanesBottom + Math.max(1, rowsUsed.length) * (font + 8) + 8;
  return {
    width,
    height,
    plotLeft,
    plotRight,
    span,
    rowHeight,
    axisY: AXIS_HEIGHT,
    lanesBottom,
    lanes: laneLayouts,
    rects,
    ticks,
    markers,
  };
}

export interface GenerationMetrics {
  /** seconds from start to the first sampled token, null before it */
  ttft: number | null;
  /** tokens sampled so far (prefill's token included) */
  tokens: number;
  /** decode throughput after the first token, tokens/s; null with fewer than 2 tokens */
  decodeTokensPerSec: number | null;
}

/**
 * TTFT and decode tokens/s from the last stage's measured 'sample' phases (one per generated token:
 * step 0 = the prefill's token). Steps may arrive out of order and twice (re-reports); each counts once.
 */
export function generationMetrics(lastStage: readonly MeasuredPhaseInput[]): GenerationMetrics {
  const endByStep = new Map<number, number>();
  for (const m of lastStage)
    if (m.phase === 'sample') endByStep.set(m.step, Math.max(endByStep.get(m.step) ?? -Infinity, m.end));
  const first = endByStep.get(0);
  if (first === undefined) return { ttft: null, tokens: endByStep.size, decodeTokensPerSec: null };
  const lastStep = Math.max(...endByStep.keys());
  const lastEnd = endByStep.get(lastStep)!;
  const decodeTokensPerSec = lastStep > 0 && lastEnd > first ? lastStep / (lastEnd - first) : null;
  return { ttft: first, tokens: endByStep.size, decodeTokensPerSec };
}

/** The phase drawn at (x, y) in CSS px, the last drawn where phases overlap (as it is on top); null where none. */
export function rectAt(layout: TimelineLayout, x: number, y: number): TimelineRect | null {
  for (let i = layout.rects.length - 1; i >= 0; i--) {
    const r = layout.rects[i];
    if (x >= r.x && x <= r.x + r.width && y >= r.y && y <= r.y + r.height) return r;
  }
  return null;
}
