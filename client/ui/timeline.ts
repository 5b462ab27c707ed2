/**
 * The cold-start Gantt chart: per stage, the plan's prediction (hatched, above) beside what the pages
 * measured (solid, below), with TTFT and decode tokens/s. Layout is pure (timeline-layout.ts), the
 * chart is drawn on a canvas (timeline-canvas.ts), in a worker where the browser allows
 * (timeline-painter.ts); this file keeps the parts around it. It re-lays out for the container's width
 * so it reads on a phone and on a projector alike.
 */
import type { PredictedStage, TimingEntry } from '../../core/protocol.ts';
import { h, fill, update } from './dom.ts';
import type { TimelineColors } from './timeline-canvas.ts';
import { paintTimeline, releaseTimeline } from './timeline-painter.ts';
import { formatDuration, formatLayers } from './format.ts';
import {
  formatSeconds,
  generationMetrics,
  layoutTimeline,
  measuredPhaseInputs,
  rectAt,
  warmStart,
  type LaneInput,
  type TimelineLayout,
  type TimelinePhase,
  type TimelineRect,
} from './timeline-layout.ts';
import { stageTimes } from '../../core/stage-times.ts';
import { perTokenLine, stepFigures, type StepFigures } from './step-figures.ts';

export const PHASE_STYLE: Record<TimelinePhase, { color: string; label: string }> = {
  load: { color: '#7c8cf8', label: 'load (predicted)' },
  'storage-read': { color: '#5b6ef5', label: 'storage read' },
  'session-create': { color: '#a78bfa', label: 'session create' },
  wait: { color: '#d4d4d8', label: 'wait' },
  receive: { color: '#f59e0b', label: 'receive' },
  compute: { color: '#10b981', label: 'compute' },
  send: { color: '#f97316', label: 'send' },
  sample: { color: '#ec4899', label: 'sample' },
};

export interface TimelineData {
  stages: readonly PredictedStage[];
  /** measured timings per peer id (ms from the server's send of `start`, or that page's own start) */
  measured: ReadonlyMap<string, readonly TimingEntry[]>;
  /** per peer id, the bound (ms) to which its timings are on the server's clock; null: they are not */
  clocks?: ReadonlyMap<string, number | null>;
  decodeSteps?: number;
  /** the host's width in CSS px when the caller knows it (a ResizeObserver): reading clientWidth after DOM changes forces a layout */
  width?: number;
}

export function lanesFrom(data: TimelineData): LaneInput[] {
  return data.stages.map((s) => {
    const measured = measuredPhaseInputs(data.measured.get(s.peerId) ?? []);
    return {
      stageIndex: s.stageIndex,
      label: s.displayName,
      // a warm start (the stage was loaded before the request) says so: its lane has no load bars
      detail: `${formatLayers(s.layers)}${s.embeds ? ' · embed' : ''}${s.hasHead ? ' · head' : ''}${warmStart(measured) ? ' · warm' : ''}`,
      predicted: {
        stageIndex: s.stageIndex,
        label: s.displayName,
        ...stageTimes(s),
      },
      measured,
    };
  });
}

/** What each host holds between draws: the canvas and the layout drawn on it (for hover titles). */
interface Drawn {
  chartKey: string;
  figures: HTMLElement;
  steps: HTMLElement;
  canvas: HTMLCanvasElement;
  layout: TimelineLayout | null;
  /** what was drawn last: drawn again when the colour scheme or the screen's pixel density changes */
  data: TimelineData | null;
  /** the canvas went with a failed timeline worker: the next render mounts a fresh one */
  lost: boolean;
}
const drawn = new WeakMap<HTMLElement, Drawn>();

/**
 * What the chart depends on: the width, the plan's stages, TTFT and the measured phases up to the drawn
 * decode steps. Later decode steps change only the figures and the step table.
 */
function chartKey(data: TimelineData, width: number, ttft: number | null): string {
  const steps = data.decodeSteps ?? 3;
  const drawnEntries = data.stages.map(
    (s) => (data.measured.get(s.peerId) ?? []).filter((e) => e.step <= steps).length,
  );
  return JSON.stringify([
    width,
    steps,
    ttft,
    data.stages.map((s) => [s.peerId, s.stageIndex, s.finishTime, s.load, s.compute, s.layers]),
    drawnEntries,
  ]);
}

/** A phase's hover text: which row, which phase and step, when and how long. */
export function rectTitle(r: TimelineRect): string {
  return `${r.row === 'predicted' ? 'predicted' : 'measured'} ${PHASE_STYLE[r.phase].label}${r.step > 0 ? ` (decode ${r.step})` : ' (prefill)'}: ${formatSeconds(r.start)} → ${formatSeconds(r.end)} (${formatDuration(r.end - r.start)})`;
}

function chartColors(): TimelineColors {
  const dark = typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;
  return {
    phase: Object.fromEntries(Object.entries(PHASE_STYLE).map(([k, v]) => [k, v.color])) as TimelineColors['phase'],
    text: dark ? '#f4f4f5' : '#18181b',
    muted: dark ? '#d4d4d8' : '#52525b',
    grid: dark ? '#3f3f46' : '#e4e4e7',
    predictedMarker: dark ? '#60a5fa' : '#1d4ed8',
    measuredMarker: dark ? '#f87171' : '#dc2626',
  };
}

/** The host's lasting parts: figures, the chart's canvas (with its hover titles), legend, step table. */
function mount(host: HTMLElement): Drawn {
  const canvas = h('canvas.timeline-canvas', {
    role: 'img',
    'aria-label': 'Cold-start timeline: predicted vs measured per stage',
  });
  const d: Drawn = {
    chartKey: '',
    figures: h('div.timeline-figures'),
    steps: h('div.timeline-steps'),
    canvas,
    layout: null,
    data: null,
    lost: false,
  };
  // the canvas has its colours and pixels baked in, where CSS would have followed the system
  onDisplayChange(() => {
    if (!canvas.isConnected || !d.data || drawn.get(host) !== d) return false;
    d.chartKey = '';
    renderTimeline(host, d.data);
    return true;
  });
  canvas.addEventListener('mousemove', (e) => {
    const r = d.layout ? rectAt(d.layout, e.offsetX, e.offsetY) : null;
    const title = r ? rectTitle(r) : '';
    if (canvas.title !== title) canvas.title = title;
  });
  const scroller = h('div.timeline-scroll', {}, canvas);
  fill(host, d.figures, scroller, legend(), d.steps);
  drawn.set(host, d);
  return d;
}

function legend(): HTMLElement {
  return h(
    'div.timeline-legend',
    {},
    ...(['storage-read', 'session-create', 'wait', 'receive', 'compute', 'send', 'sample'] as TimelinePhase[]).map(
      (p) =>
        h(
          'span.legend-item',
          {},
          h('span.swatch', { style: `background:${PHASE_STYLE[p].color}` }),
          PHASE_STYLE[p].label,
        ),
    ),
    h(
      'span.legend-item',
      {},
      h('span.swatch.hatched', { style: `background:${PHASE_STYLE.load.color}` }),
      'predicted (plan)',
    ),
  );
}

/** Renders the chart into `host` (its parts made once, the chart redrawn when its data changed); returns the metrics shown. */
export function renderTimeline(host: HTMLElement, data: TimelineData): ReturnType<typeof generationMetrics> {
  const lanes = lanesFrom(data);
  const last = lanes.find((l) => l.stageIndex === data.stages.length - 1);
  const metrics = generationMetrics(last?.measured ?? []);
  const width = Math.max(320, data.width || host.clientWidth || 960);
  const predictedT = data.stages.length ? Math.max(...data.stages.map((s) => s.finishTime)) : null;
  const key = chartKey(data, width, metrics.ttft);
  const kept = drawn.get(host);
  const live = kept && !kept.lost && kept.canvas.isConnected && kept.figures.parentElement === host;
  if (kept && !live) releaseTimeline(kept.canvas);
  const d = live ? kept : mount(host);
  update(d.figures, ...figureItems(predictedT, metrics));
  update(d.steps, stepTable(stepFigures(data.stages, data.measured, data.clocks)));
  if (d.chartKey === key) return metrics;
  const big = width >= 900;
  const font = big ? 16 : 12;
  const layout = layoutTimeline(lanes, metrics.ttft, {
    width,
    decodeSteps: data.decodeSteps ?? 3,
    rowHeight: big ? 30 : 22,
    labelWidth: Math.min(big ? 230 : 120, Math.round(width * 0.3)),
    markerFont: font,
  });
  const opts = {
    font,
    narrow: width < 600,
    colors: chartColors(),
    pixelRatio: typeof devicePixelRatio === 'number' ? devicePixelRatio : 1,
  };
  // a canvas lost to a failed timeline worker is replaced: drawn again on a fresh one, on this thread
  const redrawLost = () => {
    d.lost = true;
    if (d.data && drawn.get(host) === d) renderTimeline(host, d.data);
  };
  if (!paintTimeline(d.canvas, layout, opts, redrawLost)) {
    d.lost = true; // the next render mounts a fresh canvas
    return renderTimeline(host, data);
  }
  d.chartKey = key;
  d.layout = layout;
  d.data = data;
  return metrics;
}

/**
 * Calls `redraw` when the colour scheme or the device pixel ratio changes (a window moved to another
 * screen), until it returns false (its chart is gone).
 */
function onDisplayChange(redraw: () => boolean): void {
  if (typeof matchMedia !== 'function') return;
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', function changed() {
    if (!redraw()) this.removeEventListener('change', changed);
  });
  // a resolution query matches one ratio only: it is asked again for the new one after each change
  const watchRatio = () => {
    const ratio = matchMedia(`(resolution: ${typeof devicePixelRatio === 'number' ? devicePixelRatio : 1}dppx)`);
    ratio.addEventListener(
      'change',
      () => {
        if (redraw()) watchRatio();
      },
      { once: true },
    );
  };
  watchRatio();
}

/** Predicted T, measured TTFT, decode tok/s and tokens. */
function figureItems(predictedT: number | null, metrics: ReturnType<typeof generationMetrics>): HTMLElement[] {
  return [
    h(
      'div.figure',
      {},
      h('span.figure-label', {}, 'Predicted T'),
      h('span.figure-value', { 'data-figure': 'predicted-latency' }, formatDuration(predictedT)),
    ),
    h(
      'div.figure',
      {},
      h('span.figure-label', {}, 'Measured TTFT'),
      h('span.figure-value', { 'data-figure': 'ttft' }, formatDuration(metrics.ttft)),
    ),
    h(
      'div.figure',
      {},
      h('span.figure-label', {}, 'Decode'),
      h(
        'span.figure-value',
        { 'data-figure': 'tokens-per-sec' },
        metrics.decodeTokensPerSec === null ? '–' : `${metrics.decodeTokensPerSec.toFixed(2)} tok/s`,
      ),
    ),
    h('div.figure', {}, h('span.figure-label', {}, 'Tokens'), h('span.figure-value', {}, String(metrics.tokens))),
  ];
}

/** A decode step per stage: input here -> compute -> output sent, medians (item 5 of issue 11). */
function stepTable(f: StepFigures | null): HTMLElement | null {
  if (!f) return null;
  const hops = f.hops;
  const ms = (x: number) => x.toFixed(1);
  return h(
    'div.step-figures',
    { 'data-figure': 'decode-step' },
    h('p.hint', {}, perTokenLine(f)),
    h(
      'table.calibration-table',
      {},
      h('tr', {}, h('th', {}, 'stage'), h('th', {}, 'in'), h('th', {}, 'compute'), h('th', {}, 'out')),
      ...f.rows.map((r) =>
        h(
          'tr',
          {},
          h('td', {}, r.label),
          h('td', {}, ms(r.ingressMs)),
          h('td', {}, ms(r.kernelMs)),
          h('td', {}, ms(r.egressMs)),
        ),
      ),
    ),
    hops
      ? h(
          'p.hint',
          { 'data-figure': 'decode-hops' },
          `Hops, hand-over to the next stage's input (medians, ms; the pages' clocks agree to ${ms(hops.clockBoundMs)} ms): ${hops.labels
            .map((label, i) => {
              const x = hops.ms[i];
              return `${label} ${x === null ? '–' : ms(x)}`;
            })
            .join(' · ')}`,
        )
      : null,
  );
}
