/**
 * The cold-start Gantt chart (SVG): per stage, the plan's prediction (hatched, above) beside what the
 * pages measured (solid, below), with TTFT and decode tokens/s. Layout is pure (timeline-layout.ts);
 * this file only draws. It re-lays out for the container's width so it reads on a phone and on a
 * projector alike.
 */
import type { PredictedStage, TimingEntry } from '../../core/protocol.ts';
import { h, svg, fill } from './dom.ts';
import { formatDuration, formatLayers } from './format.ts';
import {
  formatSeconds,
  generationMetrics,
  layoutTimeline,
  measuredPhaseInputs,
  warmStart,
  type LaneInput,
  type TimelinePhase,
} from './timeline-layout.ts';
import { stageTimes } from '../../core/stage-times.ts';
import { stepFigures, type StepFigures } from './step-figures.ts';

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

/** The drawn chart of each host and what it was drawn from: while tokens come only the figures change. */
const drawn = new WeakMap<HTMLElement, { chartKey: string; figures: HTMLElement; steps: HTMLElement }>();

/**
 * What the SVG depends on: the width, the plan's stages, TTFT and the measured phases up to the drawn
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

/** Renders the chart into `host` (replacing its content); returns the metrics shown. */
export function renderTimeline(host: HTMLElement, data: TimelineData): ReturnType<typeof generationMetrics> {
  const lanes = lanesFrom(data);
  const last = lanes.find((l) => l.stageIndex === data.stages.length - 1);
  const metrics = generationMetrics(last?.measured ?? []);
  const width = Math.max(320, data.width || host.clientWidth || 960);
  const predictedT = data.stages.length ? Math.max(...data.stages.map((s) => s.finishTime)) : null;
  const key = chartKey(data, width, metrics.ttft);
  const kept = drawn.get(host);
  if (kept && kept.chartKey === key && kept.figures.isConnected && kept.figures.parentElement === host) {
    // the SVG stays as it is (no rebuild, no re-layout of its hundreds of nodes)
    fill(kept.figures, ...figureItems(predictedT, metrics));
    fill(kept.steps, stepTable(stepFigures(data.stages, data.measured, data.clocks)));
    return metrics;
  }
  const big = width >= 900;
  const font = big ? 16 : 12;
  const layout = layoutTimeline(lanes, metrics.ttft, {
    width,
    decodeSteps: data.decodeSteps ?? 3,
    rowHeight: big ? 30 : 22,
    labelWidth: Math.min(big ? 230 : 120, Math.round(width * 0.3)),
    markerFont: font,
  });

  const root = svg('svg', {
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    role: 'img',
    'aria-label': 'Cold-start timeline: predicted vs measured per stage',
    class: 'timeline-svg',
  });
  const defs = svg('defs');
  const pattern = svg(
    'pattern',
    { id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
    svg('rect', { width: 6, height: 6, fill: 'rgba(255,255,255,0.55)' }),
    svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: 'rgba(0,0,0,0.18)', 'stroke-width': 3 }),
  );
  defs.append(pattern);
  root.append(defs);

  for (const t of layout.ticks) {
    root.append(
      svg('line', {
        x1: t.x,
        y1: layout.axisY - 4,
        x2: t.x,
        y2: layout.lanesBottom,
        stroke: '#e4e4e7',
        'stroke-width': 1,
      }),
    );
    root.append(
      svg(
        'text',
        { x: t.x, y: layout.axisY - 10, 'text-anchor': 'middle', 'font-size': font, fill: '#52525b' },
        t.label,
      ),
    );
  }
  const narrow = width < 600;
  // characters that fit the label column (about 0.6 em per character)
  const fit = (text: string, size: number, room: number) => {
    const max = Math.max(4, Math.floor(room / (size * 0.6)));
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  };
  const room = layout.plotLeft - (narrow ? 10 : 48);
  // what a lane's row at `y` shows, right-aligned against the plot
  const rowTag = (y: number, text: string) =>
    svg(
      'text',
      {
        x: layout.plotLeft - 6,
        y: y + layout.rowHeight * 0.7,
        'font-size': font - 3,
        fill: '#71717a',
        'text-anchor': 'end',
      },
      text,
    );
  for (const lane of layout.lanes) {
    root.append(
      svg(
        'text',
        {
          x: 6,
          y: lane.predictedY + layout.rowHeight * 0.72,
          'font-size': font + 1,
          'font-weight': 600,
          fill: '#18181b',
        },
        fit(`${lane.stageIndex + 1}. ${lane.label}`, font + 1, room),
      ),
    );
    root.append(
      svg(
        'text',
        { x: 6, y: lane.measuredY + layout.rowHeight * 0.72, 'font-size': font - 1, fill: '#52525b' },
        fit(lane.detail, font - 1, room),
      ),
    );
    if (narrow) continue;
    root.append(rowTag(lane.predictedY, 'plan'), rowTag(lane.measuredY, 'meas.'));
  }
  for (const r of layout.rects) {
    const style = PHASE_STYLE[r.phase];
    const title = `${r.row === 'predicted' ? 'predicted' : 'measured'} ${style.label}${r.step > 0 ? ` (decode ${r.step})` : ' (prefill)'}: ${formatSeconds(r.start)} → ${formatSeconds(r.end)} (${formatDuration(r.end - r.start)})`;
    const rect = svg(
      'rect',
      {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
        rx: 3,
        fill: style.color,
        'data-phase': r.phase,
        'data-row': r.row,
        'data-step': r.step,
        opacity: r.step > 0 ? 0.75 : 1,
      },
      svg('title', {}, title),
    );
    root.append(rect);
    if (r.row === 'predicted')
      root.append(
        svg('rect', {
          x: r.x,
          y: r.y,
          width: r.width,
          height: r.height,
          rx: 3,
          fill: 'url(#hatch)',
          'pointer-events': 'none',
        }),
      );
  }
  for (const m of layout.markers) {
    const measured = m.kind === 'measured-ttft';
    const color = measured ? '#dc2626' : '#1d4ed8';
    root.append(
      svg('line', {
        x1: m.x,
        y1: layout.axisY,
        x2: m.x,
        y2: m.labelY - font + 2,
        stroke: color,
        'stroke-width': 2,
        'stroke-dasharray': measured ? '0' : '6 4',
      }),
    );
    root.append(
      svg(
        'text',
        {
          x: m.x + (m.anchor === 'end' ? -4 : 4),
          y: m.labelY,
          'font-size': font,
          'font-weight': 700,
          fill: color,
          'text-anchor': m.anchor,
        },
        m.label,
      ),
    );
  }
  const legend = h(
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
  const figures = h('div.timeline-figures', {}, ...figureItems(predictedT, metrics));
  const scroller = h('div.timeline-scroll', {});
  scroller.append(root);
  const steps = h('div.timeline-steps', {}, stepTable(stepFigures(data.stages, data.measured, data.clocks)));
  fill(host, figures, scroller, legend, steps);
  drawn.set(host, { chartKey: key, figures, steps });
  return metrics;
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
    h(
      'p.hint',
      {},
      `Per token ${ms(f.perTokenMs)} ms = compute ${ms(f.computeMs)} + overhead in the stages ${ms(f.overheadMs)} + between stages ${ms(f.betweenMs)} (medians of the decode steps, ms)`,
    ),
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
