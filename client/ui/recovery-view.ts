/**
 * Failover as people see it (issue 13): under the output, one line ("recovered in 1.4 s", "recovering:
 * bravo left", or why recovery was impossible); in the timeline card, a strip that marks the loss, the
 * repair plan, the replay and the first new token at their times after the loss. Layout is pure
 * (`recoveryMarks`, `recoverySummary`); the render functions only build elements.
 */
import type { RecoveryEvent, RequestRecovery } from '../app/failover-view-state.ts';
import { h } from './dom.ts';
import { formatLayers } from './format.ts';

export interface RecoveryMark {
  kind: RecoveryEvent['kind'];
  /** seconds after the first loss of the request (page clock) */
  atSec: number;
  /** 0..1 along the strip */
  position: number;
  label: string;
}

const REASON: Record<'left' | 'heartbeat' | 'link-lost', string> = {
  left: 'closed',
  heartbeat: 'went silent',
  'link-lost': 'lost its links',
};

function describe(e: RecoveryEvent): string {
  switch (e.kind) {
    case 'loss':
      return `stage lost: ${e.lostNames.join(', ')} ${REASON[e.reason]} (${e.layers.map(formatLayers).join(', ')})`;
    case 'repair':
      return `repair plan (${e.mode === 'range' ? 'lost layers moved' : 'whole request re-planned'}): ${e.stageNames.join(' → ')}; replay ${e.replayTokens} tokens, predicted ${e.predictedResumeSec.toFixed(2)} s`;
    case 'replay':
      return `replay from token ${e.firstIndex + 1} (attempt ${e.attempt})`;
    case 'recovered':
      return `next token: recovered in ${(e.recoveredInMs / 1000).toFixed(2)} s`;
    case 'failed':
      return `not recoverable: ${e.message}`;
  }
}

/** The request's events as marks on a strip from the first loss to the last event. */
export function recoveryMarks(r: RequestRecovery): RecoveryMark[] {
  const first = r.events.find((e) => e.kind === 'loss');
  if (!first) return [];
  const t0 = first.atMs;
  const span = Math.max(1, ...r.events.map((e) => e.atMs - t0));
  return r.events.map((e) => ({
    kind: e.kind,
    atSec: (e.atMs - t0) / 1000,
    position: Math.min(1, Math.max(0, (e.atMs - t0) / span)),
    label: describe(e),
  }));
}

/** The one line under the output, or null when the request lost no stage. */
export function recoverySummary(
  r: RequestRecovery | null,
): { text: string; state: 'recovering' | 'recovered' | 'failed' } | null {
  if (!r || !r.events.some((e) => e.kind === 'loss')) return null;
  if (r.failure) return { text: `Could not recover: ${r.failure.message}`, state: 'failed' };
  const losses = r.events.filter((e) => e.kind === 'loss').length;
  const lost = r.events.flatMap((e) => (e.kind === 'loss' ? e.lostNames : []));
  if (r.recovering)
    return { text: `Recovering: ${lost.at(-1) ?? 'a stage'} was lost; replaying…`, state: 'recovering' };
  const times = losses > 1 ? ` (${losses} losses: ${lost.join(', ')})` : ` after ${lost.join(', ')} was lost`;
  return {
    text: `Recovered in ${((r.recoveredInMs ?? 0) / 1000).toFixed(1)} s${times}`,
    state: 'recovered',
  };
}

export function renderRecoveryLine(r: RequestRecovery | null): HTMLElement | null {
  const s = recoverySummary(r);
  if (!s) return null;
  return h(`p.recovery.recovery-${s.state}`, { id: 'recovery-summary', role: 'status' }, s.text);
}

/** The strip for the timeline card (null when the request lost no stage). */
export function renderRecoveryStrip(r: RequestRecovery | null): HTMLElement | null {
  if (!r) return null;
  const marks = recoveryMarks(r);
  if (!marks.length) return null;
  return h(
    'div.recovery-strip',
    { id: 'recovery-strip' },
    h('h3', {}, 'Failover'),
    h(
      'div.recovery-track',
      {},
      marks.map((m) =>
        h(`span.recovery-mark.recovery-${m.kind}`, {
          style: `left: ${(m.position * 100).toFixed(1)}%`,
          title: m.label,
        }),
      ),
    ),
    h(
      'ol.recovery-events',
      {},
      marks.map((m) => h(`li.recovery-${m.kind}`, { 'data-kind': m.kind }, `+${m.atSec.toFixed(2)} s  ${m.label}`)),
    ),
  );
}
