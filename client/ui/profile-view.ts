/** "This device": profile progress, the measured figures, the sweep chart with the U(t) fit. */
import type {
  ComputeProfile,
  ProfileDetails,
  ProfileProgress,
  ProfileResult,
  StorageRead,
} from '../profiler/profile.ts';
import { utilizationAt } from '../profiler/utilization-fit.ts';
import { h, svg } from './dom.ts';
import { formatBits, formatBytes, formatBytesPerSec, formatDuration, formatFlops } from './format.ts';

function row(label: string, value: string, note?: string): HTMLElement {
  return h('div.kv', {}, h('span.k', {}, label), h('span.v', {}, value, note ? h('span.note', {}, ` ${note}`) : null));
}

/** Achieved FLOP/s per sweep size (dots) and the fitted c* U(t) (line), log-scaled tokens. */
/** How the profile's storage read was made. */
const STORE_LABEL: Record<StorageRead['store'], string> = {
  opfs: 'an OPFS file read in the inference worker, as a stage reads',
  indexeddb: 'an IndexedDB Blob read in the inference worker, as a stage reads',
  'indexeddb-main-thread': 'IndexedDB read on the main thread (the runtime did not start)',
};

export function sweepChart(result: ProfileResult): SVGSVGElement {
  const { points, peakFlops, fit } = result.details.compute;
  const W = 320;
  const H = 150;
  const pad = { l: 44, r: 8, t: 10, b: 26 };
  const tMin = Math.min(...points.map((p) => p.tokens));
  const tMax = Math.max(...points.map((p) => p.tokens));
  const lx = (t: number) =>
    pad.l +
    ((Math.log2(t) - Math.log2(tMin)) / Math.max(1e-9, Math.log2(tMax) - Math.log2(tMin))) * (W - pad.l - pad.r);
  const ly = (f: number) => H - pad.b - (f / (peakFlops * 1.08)) * (H - pad.t - pad.b);
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'sweep-chart',
    role: 'img',
    'aria-label': 'Matmul FLOP/s per token count with the fitted utilisation curve',
  });
  root.append(svg('line', { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, stroke: '#a1a1aa' }));
  root.append(svg('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, stroke: '#a1a1aa' }));
  root.append(
    svg(
      'text',
      { x: pad.l - 4, y: ly(peakFlops) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#52525b' },
      `${(peakFlops / 1e9).toFixed(1)}G`,
    ),
  );
  root.append(svg('text', { x: pad.l - 4, y: H - pad.b, 'text-anchor': 'end', 'font-size': 10, fill: '#52525b' }, '0'));
  const xLabels: [number, string][] = [
    [tMin, 'start'],
    [2 ** Math.round(Math.log2(Math.sqrt(tMin * tMax))), 'middle'],
    [tMax, 'end'],
  ];
  for (const [t, anchor] of xLabels)
    root.append(svg('text', { x: lx(t), y: H - 8, 'text-anchor': anchor, 'font-size': 10, fill: '#52525b' }, `t=${t}`));
  let d = '';
  for (let i = 0; i <= 60; i++) {
    const t = 2 ** (Math.log2(tMin) + ((Math.log2(tMax) - Math.log2(tMin)) * i) / 60);
    d += `${i ? 'L' : 'M'}${lx(t).toFixed(1)},${ly(peakFlops * utilizationAt(fit.a, fit.b, t)).toFixed(1)}`;
  }
  root.append(svg('path', { d, fill: 'none', stroke: '#2563eb', 'stroke-width': 2 }));
  for (const p of points)
    root.append(
      svg(
        'circle',
        { cx: lx(p.tokens), cy: ly(p.flops), r: 3.5, fill: '#10b981' },
        svg('title', {}, `t=${p.tokens}: ${formatFlops(p.flops)} (${formatDuration(p.seconds)})`),
      ),
    );
  return root;
}

const COMPUTE_SOURCE: Record<ComputeProfile['measuredWith'], string> = {
  onnxruntime: 'ONNX Runtime (the runtime a stage runs)',
  'wgsl-matmul': 'stand-in WGSL matmul',
  'js-matmul': 'stand-in JavaScript matmul',
};

function computeNote(c: ComputeProfile): string {
  const check =
    c.checkError === null ? 'result not checked' : `checked against JS, error ${c.checkError.toExponential(1)}`;
  const stand = c.measuredWith === 'onnxruntime' ? '' : 'the runtime sweep failed (see the issues); ';
  return `${stand}${c.points.length} sizes, t = ${c.points[0]?.tokens ?? '?'}..${c.points.at(-1)?.tokens ?? '?'}; ${check}`;
}

export function renderProfile(
  progress: ProfileProgress | null,
  result: ProfileResult | null,
  sent: boolean,
): HTMLElement {
  if (!result) {
    const pct = Math.round((progress?.fraction ?? 0) * 100);
    return h(
      'div.profile-running',
      {},
      h('p', {}, progress?.text ?? 'Starting the measurement…'),
      h(
        'div.progress',
        { role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100 },
        h('div.progress-bar', { style: `transform:scaleX(${pct / 100})` }),
      ),
      h(
        'p.hint',
        {},
        'Measuring ONNX Runtime (warm-up, session creation, a compute sweep on it), storage, link and memory. This takes a few seconds.',
      ),
    );
  }
  const { report, details } = result;
  const em = details.emulation;
  return h(
    'div.profile-result',
    {},
    em
      ? h(
          'p.emulated-note',
          {},
          h('span.badge.badge-emulated', {}, 'emulated'),
          ` ${em.label}: compute ×${em.computeSlowdown.toFixed(2)}${em.readBytesPerSecCap ? `, read ≤ ${formatBytesPerSec(em.readBytesPerSecCap)}` : ''}${em.linkBitsPerSecCap ? `, link ≤ ${formatBits(em.linkBitsPerSecCap)}` : ''}${em.memoryBytesCap ? `, memory ≤ ${formatBytes(em.memoryBytesCap)}` : ''}. The figures below were measured under this emulation.`,
        )
      : null,
    h(
      'div.kv-grid',
      {},
      row('Backend', report.backend === 'webgpu' ? 'WebGPU' : 'wasm (CPU)', details.backendReason),
      row(
        'Inference',
        details.inference
          ? `worker, ${details.inference.wasmThreads} wasm thread${details.inference.wasmThreads === 1 ? '' : 's'}`
          : 'unknown',
        details.inference
          ? details.inference.crossOriginIsolated
            ? 'cross-origin isolated: threads allowed (half the cores, at most 4)'
            : 'not cross-origin isolated: 1 thread'
          : 'the runtime did not start',
      ),
      row('Peak compute c*', formatFlops(report.peakFlops), em ? '(emulated)' : undefined),
      row('Compute measured with', COMPUTE_SOURCE[details.compute.measuredWith], computeNote(details.compute)),
      row(
        'U(t) = a(1−e^{−bt})',
        `a = ${report.utilA.toFixed(3)}, b = ${report.utilB.toExponential(2)}`,
        `fit RMSE ${(details.compute.fit.rmse * 100).toFixed(1)}%, max ${(details.compute.fit.maxRelError * 100).toFixed(0)}% rel.`,
      ),
      row(
        'Storage read',
        formatBytesPerSec(details.storage.readBytesPerSec),
        `${STORE_LABEL[details.storage.store]}, ${formatBytes(details.storage.bytes)}${em?.readBytesPerSecCap ? ', emulated cap' : ''}`,
      ),
      row(
        'Shard load (read + session create)',
        formatBytesPerSec(report.readBytesPerSec),
        details.session
          ? `session create ${formatBytesPerSec(details.session.sessionCreateBytesPerSec)} (${details.session.backend}, ${formatBytes(details.session.bytes)}); runtime warm-up ${formatDuration(details.session.warmupSeconds)}; the planner uses this rate`
          : 'session benchmark failed: storage read only',
      ),
      row('Read while creating', ...parallelRow(details.load.parallel)),
      row(
        'Link ↓ / ↑',
        `${formatBits(report.downlinkBitsPerSec)} / ${formatBits(report.uplinkBitsPerSec)}`,
        details.link ? `RTT ${formatDuration(details.link.rttSeconds)}` : 'assumed: probes unavailable',
      ),
      row('Memory budget', formatBytes(report.memoryBytes), `limited by ${details.memory.limitedBy}`),
      report.gpu
        ? row(
            'GPU adapter',
            [report.gpu.vendor, report.gpu.architecture, report.gpu.description].filter(Boolean).join(' · ') ||
              'unnamed adapter',
            `${report.gpu.isFallbackAdapter ? 'software fallback · ' : ''}shader-f16 ${report.gpu.features.includes('shader-f16') ? 'yes' : 'no'} · maxBuffer ${formatBytes((report.gpu.limits as Partial<Record<string, number>>).maxBufferSize ?? NaN)}`,
          )
        : row('GPU adapter', 'none', 'no WebGPU in this browser'),
      row('Profiled in', formatDuration(details.durationSeconds), sent ? 'sent to the server' : 'not sent yet'),
    ),
    h('div.sweep', {}, sweepChart(result), h('p.hint', {}, details.compute.method)),
  );
}

/** The parallel-load row (profiler/parallel-load.ts): value and note. */
export function parallelRow(p: ProfileDetails['load']['parallel'] | undefined): [string, string] {
  if (!p) return ['unknown', 'the runtime did not start: stages load in one part'];
  if (p.samples.length === 0) return ['no', `${p.reason ?? 'not measured'}: stages load in one part`];
  const how = `two threads ran ${p.parallelism.toFixed(2)}x one's work at once`;
  return p.inParts
    ? ['yes', `${how}: stages load in parts, each part's session created while the next part is read`]
    : ['no', `${how}: stages load in one part (parts would only interleave here)`];
}
