/**
 * The reducer's part for a spare (docs/failover.md, "Spares"): the coordinator asks this page, outside
 * the plan, to keep a warm copy of one stage's units. The page downloads them through the same verified
 * path as an assignment's (`download-units`: SHA-256 checked, committed to IndexedDB), reports
 * cache-status, and shows "Spare for layers a–b (downloaded)". No session is built. The download takes
 * its own `seq` from the assignments' counter, so its results never mix with an assignment's; an
 * assignment, an `excluded` of another plan, or the end of the session ends the spare (its download is
 * aborted; units already in stay cached and a later assignment reuses them).
 *
 * The coordinator offers spares only while no request runs, but a download begun then may still be going
 * when the next request starts: its bytes would then share the access point with the request's
 * hand-overs, and its hashing and progress the page's CPU. So every page hears each `start`, and a
 * running spare download stops there ('paused', under a new `seq`) and starts again when that request's
 * last output comes; the units it had committed are kept and not fetched twice.
 */
import type { ServerMessageOf } from '../../core/protocol.ts';
import type { FetchProgress } from '../cache/shard-cache.ts';
import { formatLayers } from '../ui/format.ts';
import type { AppEvent } from './app-events.ts';
import type { Step } from './reducer-step.ts';

export type SpareMessage = ServerMessageOf<'spare'>;

export interface SpareState {
  /** names the download's results (shared counter with assignments: AppState.lastSeq) */
  readonly seq: number;
  readonly message: SpareMessage;
  /** 'waiting': no manifest yet, or the cache is being swept; 'paused': a request runs (`pausedBy`) */
  readonly download: 'waiting' | 'running' | 'paused' | 'done' | 'failed';
  /** the request whose end starts a paused download again */
  readonly pausedBy: number | null;
  readonly progress: FetchProgress | null;
  /** units downloaded now / found in the cache, once done */
  readonly fetchedUnits: readonly string[];
  readonly reusedUnits: readonly string[];
  /** what the page shows, e.g. "Spare for layers 3–4 (downloaded)" */
  readonly label: string;
}

/** The line the page shows for a spare in `download` state. */
export function spareLabel(
  layers: { start: number; end: number },
  download: SpareState['download'],
  progress: FetchProgress | null = null,
): string {
  const pct = progress && progress.bytesTotal > 0 ? Math.round((100 * progress.bytesDone) / progress.bytesTotal) : 0;
  const what =
    download === 'waiting'
      ? 'waiting for the model'
      : download === 'running'
        ? `downloading, ${pct}%`
        : download === 'paused'
          ? `download paused at ${pct}% while a request runs`
          : download === 'done'
            ? 'downloaded'
            : 'download failed';
  return `Spare for ${formatLayers(layers)} (${what})`;
}

function withSpare(step: Step, patch: Partial<SpareState>): void {
  const spare = step.state.spare;
  if (!spare) return;
  const next = { ...spare, ...patch };
  step.set({ spare: { ...next, label: spareLabel(next.message.layers, next.download, next.progress) } });
}

export function isSpare(step: Step, seq: number): boolean {
  return step.state.spare?.seq === seq;
}

export function onSpare(step: Step, m: SpareMessage): void {
  // a page with a stage is not a spare (a late message of an older plan)
  if (step.state.work) return;
  dropSpare(step);
  const seq = step.state.lastSeq + 1;
  step.set({
    lastSeq: seq,
    spare: {
      seq,
      message: m,
      download: 'waiting',
      pausedBy: null,
      progress: null,
      fetchedUnits: [],
      reusedUnits: [],
      label: spareLabel(m.layers, 'waiting'),
    },
  });
  if (step.state.manifest && step.state.cache.state !== 'checking') startSpareDownload(step);
}

/** Starts the waiting spare's download (once the manifest is in and the cache swept). */
export function startSpareDownload(step: Step): void {
  const spare = step.state.spare;
  if (spare?.download !== 'waiting') return;
  withSpare(step, { download: 'running' });
  step.emit({ type: 'download-units', seq: spare.seq, units: spare.message.units });
}

/**
 * A request started in the session: a running spare download stops until its end (units in stay). The
 * spare takes a new seq at once, so that the stopped download's late results are not taken for its own;
 * the server hears what the cache holds now, so that a repair during the request counts the units in.
 */
export function pauseSpare(step: Step, requestId: number): void {
  const spare = step.state.spare;
  if (spare?.download !== 'running') return;
  step.emit({ type: 'abort-assignment', seq: spare.seq }, { type: 'report-cache' });
  const seq = step.state.lastSeq + 1;
  step.set({ lastSeq: seq });
  withSpare(step, { seq, download: 'paused', pausedBy: requestId });
}

/** `requestId` ended: the download it paused starts again. */
export function resumeSpare(step: Step, requestId: number): void {
  const spare = step.state.spare;
  if (spare?.download !== 'paused' || spare.pausedBy !== requestId) return;
  withSpare(step, { download: 'waiting', pausedBy: null });
  if (step.state.manifest && step.state.cache.state !== 'checking') startSpareDownload(step);
}

/** Ends the spare: its download stops (units already committed stay cached). */
export function dropSpare(step: Step): void {
  const spare = step.state.spare;
  if (!spare) return;
  if (spare.download === 'running') step.emit({ type: 'abort-assignment', seq: spare.seq });
  step.set({ spare: null });
}

export function onSpareProgress(step: Step, progress: FetchProgress): void {
  withSpare(step, { progress });
}

export function onSpareDownloaded(step: Step, e: Extract<AppEvent, { type: 'download-finished' }>): void {
  withSpare(step, { download: 'done', progress: null, fetchedUnits: e.result.fetched, reusedUnits: e.result.reused });
  step.emit({ type: 'report-cache' });
}

export function onSpareDownloadFailed(step: Step, e: Extract<AppEvent, { type: 'download-failed' }>): void {
  withSpare(step, { download: 'failed', progress: null });
  // not a failure of any request: a warning here, and the server learns what the cache holds
  step.error(e.error, 'spare', 'cache-failed', 'warning');
  step.emit({ type: 'report-cache' });
}
