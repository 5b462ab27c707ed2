/**
 * SVG charts as strings (pure; the CLI writes them): latency vs token length for the four methods
 * (like the paper's Fig. 3a) and a Gantt chart of one plan (load / wait / comm / compute per device,
 * like its Figs. 4-5).
 */
import type { StageTiming, Timeline } from './types.ts';

const FONT = 'font-family="system-ui, sans-serif" font-size="12"';
const COLORS = { load: '#8fb3d9', wait: '#e8e8e8', comm: '#f2b134', compute: '#2f7d4f' };
const SERIES_COLORS = ['#c0392b', '#2471a3', '#7d3c98', '#148f77', '#b9770e', '#566573'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Round step for an axis covering 0..max with about `ticks` ticks. */
function niceStep(max: number, ticks: number): number {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

function fmt(x: number): string {
  return Number(x.toPrecision(6)).toString();
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/** Line chart of latency (s) vs token length (log2 x axis when the lengths span more than 4x). */
export function latencyChart(title: string, series: readonly Series[]): string {
  const W = 640,
    H = 400,
    ml = 60,
    mr = 130,
    mt = 40,
    mb = 50;
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const xmin = Math.min(...xs),
    xmax = Math.max(...xs);
  const logX = xmin > 0 && xmax / xmin > 4;
  const fx = (x: number) => (logX ? Math.log2(x) : x);
  const x0 = fx(xmin),
    x1 = fx(xmax) === x0 ? x0 + 1 : fx(xmax);
  const step = niceStep(Math.max(...ys) || 1, 5);
  const ymax = Math.ceil((Math.max(...ys) || 1) / step) * step;
  const px = (x: number) => ml + ((fx(x) - x0) / (x1 - x0)) * (W - ml - mr);
  const py = (y: number) => H - mb - (y / ymax) * (H - mt - mb);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`);
  for (let y = 0; y <= ymax + 1e-12; y += step) {
    out.push(`<line x1="${ml}" x2="${W - mr}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${ml - 6}" y="${py(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${H - mb}" y2="${H - mb + 5}" stroke="#333"/>`);
    out.push(`<text x="${px(x)}" y="${H - mb + 18}" text-anchor="middle">${fmt(x)}</text>`);
  }
  out.push(`<line x1="${ml}" x2="${W - mr}" y1="${H - mb}" y2="${H - mb}" stroke="#333"/>`);
  out.push(`<line x1="${ml}" x2="${ml}" y1="${mt}" y2="${H - mb}" stroke="#333"/>`);
  out.push(`<text x="${(ml + W - mr) / 2}" y="${H - 12}" text-anchor="middle">prompt length t (tokens)</text>`);
  out.push(
    `<text transform="translate(16 ${(mt + H - mb) / 2}) rotate(-90)" text-anchor="middle">cold-start latency T (s)</text>`,
  );
  series.forEach((s, k) => {
    const color = SERIES_COLORS[k % SERIES_COLORS.length];
    const pts = s.points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of s.points)
      out.push(
        `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${color}"><title>${escapeXml(s.name)}: t=${p.x}, T=${p.y.toFixed(3)} s</title></circle>`,
      );
    const ly = mt + 10 + k * 20;
    out.push(
      `<line x1="${W - mr + 12}" x2="${W - mr + 36}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    );
    out.push(`<text x="${W - mr + 42}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Gantt chart of one plan: a row per stage (pipeline order), bars for load, wait, comm and compute. */
export function ganttChart(title: string, timeline: Timeline, deviceNames: readonly string[]): string {
  const rows = timeline.stages;
  const ml = 130,
    mr = 20,
    mt = 40,
    rowH = 28,
    mb = 70;
  const W = 760,
    H = mt + rows.length * rowH + mb;
  const tmax = Math.max(timeline.latency, ...rows.map((s) => s.load)) || 1;
  const step = niceStep(tmax, 8);
  const axisMax = Math.ceil(tmax / step) * step;
  const px = (t: number) => ml + (t / axisMax) * (W - ml - mr);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)} (T = ${timeline.latency.toFixed(3)} s)</text>`,
  );
  for (let t = 0; t <= axisMax + 1e-12; t += step) {
    out.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${mt}" y2="${mt + rows.length * rowH}" stroke="#eee"/>`);
    out.push(`<text x="${px(t)}" y="${mt + rows.length * rowH + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(
    `<text x="${(ml + W - mr) / 2}" y="${mt + rows.length * rowH + 34}" text-anchor="middle">time since the request (s)</text>`,
  );
  rows.forEach((s: StageTiming, n) => {
    const y = mt + n * rowH + 4,
      h = rowH - 8;
    const label = `${deviceNames[s.device] ?? `#${s.device}`} L${s.layers.start + 1}-${s.layers.end}`;
    out.push(`<text x="${ml - 8}" y="${y + h / 2 + 4}" text-anchor="end">${escapeXml(label)}</text>`);
    const bar = (kind: keyof typeof COLORS, from: number, to: number) => {
      if (to - from <= 0) return;
      out.push(
        `<rect x="${px(from).toFixed(2)}" y="${y}" width="${Math.max(0.5, px(to) - px(from)).toFixed(2)}" height="${h}" fill="${COLORS[kind]}"><title>${kind}: ${from.toFixed(3)}-${to.toFixed(3)} s (${(to - from).toFixed(3)} s)</title></rect>`,
      );
    };
    bar('load', 0, s.load);
    bar('wait', s.load, s.startTime); // idle bubble: loaded, upstream not done yet
    bar('comm', s.startTime, s.startTime + s.comm);
    bar('compute', s.startTime + s.comm, s.finishTime);
  });
  const ly = H - 18;
  (Object.keys(COLORS) as (keyof typeof COLORS)[]).forEach((k, i) => {
    out.push(`<rect x="${ml + i * 110}" y="${ly - 10}" width="14" height="12" fill="${COLORS[k]}"/>`);
    out.push(`<text x="${ml + i * 110 + 20}" y="${ly}">${k}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
