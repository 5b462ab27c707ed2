/**
 * "Predicted vs measured" per phase of the last request, with the error of the model the plan used and
 * of the model refitted from that request (the server's calibration message); and the host's what-if
 * panel: every plan method's predicted TTFT and tokens/s on the current roster, before Go.
 */
import type { PlanMethod, ServerMessageOf, WhatIfEntry } from '../../core/protocol.ts';
import { h } from './dom.ts';
import { formatDuration } from './format.ts';
import { calibrationRows, medianError, whatIfRows } from './calibration-rows.ts';

const pct = (e: number | null) => (e === null ? '–' : `${(100 * e).toFixed(0)}%`);

export function renderCalibration(msg: ServerMessageOf<'calibration'> | null): HTMLElement {
  if (!msg)
    return h('p.hint', {}, 'After a request, each phase predicted vs measured appears here, and the refitted error.');
  const rows = calibrationRows(msg);
  const before = medianError(rows.map((r) => r.errorBefore));
  const after = medianError(rows.map((r) => r.errorAfter));
  return h(
    'div.calibration',
    {},
    h(
      'p.hint',
      {},
      `Request ${msg.requestId}: median phase error ${pct(before)} with the plan's model, ${pct(after)} once refitted; the next plan uses the refitted devices.`,
    ),
    h(
      'table.calibration-table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['stage', 'phase', 'predicted', 'measured', 'error', 'refitted', 'error'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        ...rows.map((r) =>
          h(
            'tr',
            {},
            h('td', {}, r.stage),
            h('td', {}, r.phase),
            h('td', {}, r.predicted === null ? '–' : formatDuration(r.predicted)),
            h('td', {}, formatDuration(r.measured)),
            h('td', {}, pct(r.errorBefore)),
            h('td', {}, formatDuration(r.calibrated)),
            h('td', {}, pct(r.errorAfter)),
          ),
        ),
      ),
    ),
  );
}

export function renderWhatIf(entries: readonly WhatIfEntry[] | undefined, current: PlanMethod): HTMLElement | null {
  if (!entries?.length) return null;
  return h(
    'table.what-if',
    { 'aria-label': 'Predicted time to first token and tokens/s of every plan method' },
    h('thead', {}, h('tr', {}, ...['method', 'predicted TTFT', 'tokens/s', 'stages'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      ...whatIfRows(entries, current).map((r) =>
        h(
          r.current ? 'tr.current' : 'tr',
          { title: r.reason ?? '' },
          h('td', {}, r.method.toUpperCase(), r.fastest ? ' ★' : ''),
          h('td', {}, r.predictedLatency === null ? 'no plan' : formatDuration(r.predictedLatency)),
          h('td', {}, r.tokensPerSec === null ? '–' : r.tokensPerSec.toFixed(1)),
          h('td', {}, r.stageCount || '–'),
        ),
      ),
    ),
  );
}
