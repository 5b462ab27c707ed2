/**
 * The demo's HTML report (pure: data in, one self-contained HTML string out): per plan a summary line, a
 * Gantt chart of predicted vs measured phases per stage (laid out by the page's own timeline layout,
 * client/ui/timeline-layout.ts, so the report and the live page draw the same thing), the per-stage table,
 * and the host page's screenshot. Emulated devices are labelled as such.
 */
import type { CalibrationReport } from './calibration-report.ts';
import type { RosterPeer } from '../core/protocol.ts';
import type { LabCpuReport } from './lab-cpu.ts';
import type { RepeatedRun } from './median-run.ts';
import { layoutTimeline, type LaneInput, type TimelinePhase } from '../client/ui/timeline-layout.ts';
import { toPhaseInputs, type PlanRun } from './run-summary.ts';

export interface ReportPeer {
  name: string;
  emulated: string | null;
  /** Measured profile figures, SI units. */
  peakFlops: number;
  readBytesPerSec: number;
  uplinkBitsPerSec: number;
  downlinkBitsPerSec: number;
  memoryBytes: number;
  backend: string;
}

export interface DemoReport {
  title: string;
  createdAt: string;
  model: { name: string; layers: number; dtype: string; bytes: number };
  prompt: string;
  maxNewTokens: number;
  backend: string;
  peers: ReportPeer[];
  runs: PlanRun[];
  /** Predicted before / after calibration vs measured, per plan (issue 12). */
  calibration?: CalibrationReport;
  /** Free-form notes (e.g. what was emulated and how). */
  notes: string[];
  /** Each page's profile as the server got it (display name -> profile). */
  profiles?: Record<string, RosterPeer['profile'] | null>;
  /** The unreported warm-up and the calibration request, as measured (what the first refit saw). */
  calibrationRuns?: PlanRun[];
  /** Every cold plan run, repeats included, in the order they ran (each taught the calibration). */
  coldRuns?: PlanRun[];
  /** On the device lab: each device's CPU use and throttling per run (e2e/lab-cpu.ts). */
  labCpu?: LabCpuReport;
  /** Where each method ran several times from cold: every run, and the plan id of the one reported. */
  repeats?: { method: string; chosen: string; runs: RepeatedRun[] }[];
}

const COLORS: Record<TimelinePhase, string> = {
  load: '#9aa5b1',
  'storage-read': '#7b8794',
  'session-create': '#b36bd4',
  wait: '#f0f0f0',
  receive: '#f5a623',
  compute: '#2f80ed',
  send: '#27ae60',
  sample: '#eb5757',
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Font size (px) of the T pred / TTFT labels: the layout sizes their rows from it. */
const MARKER_FONT = 11;

/** SVG Gantt chart of one run: per stage a predicted row above a measured row. */
export function ganttSvg(run: PlanRun, width = 960): string {
  const lanes: LaneInput[] = run.stages.map((s) => ({
    stageIndex: s.stageIndex,
    label: `${s.stageIndex + 1}. ${s.name}`,
    detail: `layers ${s.layers}${s.embeds ? ' · embeds' : ''}${s.hasHead ? ' · head' : ''}`,
    predicted: {
      stageIndex: s.stageIndex,
      label: s.name,
      load: s.predicted.load,
      wait: s.predicted.wait,
      comm: s.predicted.comm,
      compute: s.predicted.compute,
      startTime: s.predicted.start,
      finishTime: s.predicted.finish,
    },
    measured: toPhaseInputs(run.timings[s.peerId] ?? []),
  }));
  const L = layoutTimeline(lanes, run.metrics.ttft, { width, decodeSteps: 3, markerFont: MARKER_FONT });
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height + 8}" font-family="sans-serif" font-size="11">`,
  );
  for (const t of L.ticks) {
    parts.push(`<line x1="${t.x}" y1="${L.axisY - 6}" x2="${t.x}" y2="${L.height}" stroke="#e4e7eb"/>`);
    parts.push(
      `<text x="${t.x}" y="${L.axisY - 10}" text-anchor="middle" fill="#52606d">${escapeHtml(t.label)}</text>`,
    );
  }
  for (const lane of L.lanes) {
    parts.push(
      `<text x="4" y="${lane.predictedY + L.rowHeight * 0.7}" fill="#1f2933">${escapeHtml(lane.label)}</text>`,
    );
    parts.push(
      `<text x="4" y="${lane.measuredY + L.rowHeight * 0.7}" fill="#616e7c">${escapeHtml(lane.detail)}</text>`,
    );
    parts.push(
      `<text x="${L.plotLeft - 4}" y="${lane.predictedY + L.rowHeight * 0.7}" text-anchor="end" fill="#9aa5b1">pred</text>`,
    );
    parts.push(
      `<text x="${L.plotLeft - 4}" y="${lane.measuredY + L.rowHeight * 0.7}" text-anchor="end" fill="#9aa5b1">meas</text>`,
    );
  }
  for (const r of L.rects) {
    const stroke = r.phase === 'wait' ? ' stroke="#cbd2d9"' : '';
    const opacity = r.row === 'predicted' ? ' fill-opacity="0.55"' : '';
    parts.push(
      `<rect x="${r.x.toFixed(1)}" y="${r.y}" width="${r.width.toFixed(1)}" height="${r.height}" fill="${COLORS[r.phase]}"${opacity}${stroke}>` +
        `<title>${escapeHtml(`${r.row} ${r.phase} step ${r.step}: ${(r.start * 1000).toFixed(1)}-${(r.end * 1000).toFixed(1)} ms`)}</title></rect>`,
    );
  }
  for (const m of L.markers) {
    const color = m.kind === 'predicted-latency' ? '#9b51e0' : '#eb5757';
    parts.push(
      `<line x1="${m.x}" y1="${L.axisY}" x2="${m.x}" y2="${m.labelY + 2}" stroke="${color}" stroke-dasharray="4 3"/>`,
    );
    // where the layout put the label: left or right of its line, on its own row when two would overlap
    const x = m.anchor === 'start' ? m.x + 3 : m.x - 3;
    parts.push(
      `<text x="${x}" y="${m.labelY}" text-anchor="${m.anchor}" font-size="${MARKER_FONT}" fill="${color}">${escapeHtml(m.label)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

const num = (x: number | null | undefined, digits = 3) => (x === null || x === undefined ? '–' : x.toFixed(digits));

function legend(): string {
  return (Object.keys(COLORS) as TimelinePhase[])
    .map((p) => `<span class="key"><i style="background:${COLORS[p]}"></i>${p}</span>`)
    .join(' ');
}

export function renderReportHtml(r: DemoReport): string {
  const peers = r.peers
    .map(
      (p) =>
        `<tr><td>${escapeHtml(p.name)}</td><td>${p.emulated ? `emulated: ${escapeHtml(p.emulated)}` : 'real'}</td><td>${escapeHtml(p.backend)}</td>` +
        `<td>${num(p.peakFlops / 1e9, 2)}</td><td>${num(p.readBytesPerSec / 2 ** 20, 0)}</td><td>${num(p.uplinkBitsPerSec / 1e6, 0)} / ${num(p.downlinkBitsPerSec / 1e6, 0)}</td>` +
        `<td>${num(p.memoryBytes / 2 ** 20, 0)}</td></tr>`,
    )
    .join('\n');
  const summary = r.runs
    .map(
      (run) =>
        `<tr><td>${run.method}</td><td>${run.stages.length}</td><td>${num(run.predictedLatency)}</td><td>${num(run.metrics.ttft)}</td>` +
        `<td>${num(run.driverTtft)}</td><td>${num(run.metrics.decodeTokensPerSec, 1)}</td><td>${run.generatedTokenIds.length}</td></tr>`,
    )
    .join('\n');
  const sections = r.runs
    .map((run) => {
      const rows = run.stages
        .map((s) => {
          const m = s.measured;
          return (
            `<tr><td>${s.stageIndex + 1}</td><td>${escapeHtml(s.name)}</td><td>${s.layers}</td>` +
            `<td>${num(s.predicted.load)} / ${num(m?.load)}</td><td>${num(s.predicted.wait)} / ${num(m?.wait)}</td>` +
            `<td>${num(s.predicted.comm)} / ${num(m?.receive)}</td><td>${num(s.predicted.compute)} / ${num(m?.compute)}</td>` +
            `<td>${num(s.predicted.finish)} / ${num(m?.finish)}</td></tr>`
          );
        })
        .join('\n');
      const shot = run.screenshot
        ? `<p><img src="${escapeHtml(run.screenshot)}" alt="host page after the ${run.method} run" width="960"></p>`
        : '';
      return `<section><h2>${run.method} plan</h2>
<p>predicted T ${num(run.predictedLatency)} s · measured TTFT ${num(run.metrics.ttft)} s · decode ${num(run.metrics.decodeTokensPerSec, 1)} tok/s · ${run.generatedTokenIds.length} tokens</p>
${ganttSvg(run)}
<table><tr><th>#</th><th>device</th><th>layers</th><th>load (s) pred / meas</th><th>wait</th><th>comm / receive</th><th>compute</th><th>finish</th></tr>
${rows}</table>
${shot}
<details><summary>generated text</summary><pre>${escapeHtml(run.text)}</pre></details>
</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #1f2933; max-width: 1000px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
td, th { border: 1px solid #e4e7eb; padding: 3px 8px; text-align: right; }
td:nth-child(2), th:nth-child(2) { text-align: left; }
.key { margin-right: 10px; font-size: 12px; } .key i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
section { margin-top: 28px; }
</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<p>${escapeHtml(r.createdAt)} · model <b>${escapeHtml(r.model.name)}</b> (${r.model.layers} layers, ${escapeHtml(r.model.dtype)}, ${num(r.model.bytes / 1e6, 1)} MB) ·
backend ${escapeHtml(r.backend)} · ${r.maxNewTokens} new tokens · prompt: <q>${escapeHtml(r.prompt)}</q></p>
${r.notes.map((n) => `<p><i>${escapeHtml(n)}</i></p>`).join('\n')}
<h2>Devices (profiles as the pages measured them)</h2>
<table><tr><th>name</th><th>kind</th><th>backend</th><th>peak GFLOP/s</th><th>read MiB/s</th><th>up / down Mbit/s</th><th>memory MiB</th></tr>
${peers}</table>
<h2>Plans</h2>
<table><tr><th>plan</th><th>stages</th><th>predicted T (s)</th><th>measured TTFT (s)</th><th>driver TTFT (s)</th><th>decode tok/s</th><th>tokens</th></tr>
${summary}</table>
<p>${legend()}</p>
${sections}
</body></html>
`;
}
