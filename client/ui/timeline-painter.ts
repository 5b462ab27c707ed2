/**
 * Where the timeline's pixels are drawn. The chart is redrawn while a request runs, on a page whose
 * stage is using the device's CPU: on a 0.4-core lab device a redraw on the main thread (drawTimeline's
 * few ms of CPU, stretched by the quota it shares with the stage's worker) made most of the animation
 * frames over 50 ms that a cold request left there, and such a frame holds up the transport and
 * heartbeats that live on the main thread. So where the browser can hand a canvas to a worker
 * (transferControlToOffscreen), the chart is drawn in the timeline worker (timeline-worker.ts): the main
 * thread lays it out (the layout also answers hover titles) and posts it; the worker draws the latest
 * layout of each canvas. The CPU is the device's either way; the main thread's tasks get short.
 *
 * A handed-over canvas can no longer be drawn here, so if the worker fails (its script does not load, a
 * draw throws), every chart it held is reported lost (its owner mounts a fresh canvas) and from then on
 * the page draws on the main thread. Until a handed-over canvas' first draw comes, it shows nothing.
 */
import { drawTimeline, sizeCanvasElement, type TimelineDrawOptions } from './timeline-canvas.ts';
import type { TimelineLayout } from './timeline-layout.ts';

/**
 * A draw for the worker (`canvas` comes with the first draw of its chart only), or a chart the page
 * dropped. Layout and options are plain data (numbers, strings, arrays): they cross by structured clone.
 */
export type TimelineDrawMessage =
  | { id: number; canvas?: OffscreenCanvas; layout: TimelineLayout; opts: TimelineDrawOptions }
  | { id: number; gone: true };

/** What the worker says back: only that a draw failed (the page then draws on its main thread). */
export interface TimelineWorkerError {
  error: string;
}

interface Handed {
  id: number;
  /** called if the worker fails: the canvas is the worker's, and blank */
  lost: () => void;
}

let worker: Worker | null = null;
/** set once the worker failed: charts are drawn on the main thread from then on */
let failed = false;
const handed = new WeakMap<HTMLCanvasElement, Handed>();
/** the lost-callbacks of the canvases the worker holds, by id */
const held = new Map<number, () => void>();
let nextId = 1;

function workerFailed(why: string): void {
  if (failed) return;
  failed = true;
  worker?.terminate();
  worker = null;
  console.warn(`The timeline worker failed (${why}); the chart is drawn on the main thread.`);
  const lost = [...held.values()];
  held.clear();
  for (const l of lost) l();
}

function paintWorker(): Worker | null {
  if (failed) return null;
  if (worker) return worker;
  try {
    worker = new Worker(new URL('./timeline-worker.ts', import.meta.url), { type: 'module', name: 'tandem-timeline' });
  } catch (err) {
    workerFailed(err instanceof Error ? err.message : String(err)); // no module workers here
    return null;
  }
  worker.addEventListener('error', (e) => workerFailed(e.message || 'its script did not load'));
  worker.addEventListener('messageerror', () => workerFailed('a message could not be read'));
  worker.addEventListener('message', (e: MessageEvent<TimelineWorkerError>) => workerFailed(e.data.error));
  return worker;
}

/** A backstop for canvases that were not released: the worker lets their OffscreenCanvas go. */
const collected =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<number>((id) => forget(id)) : null;

function forget(id: number): void {
  if (!held.delete(id)) return;
  worker?.postMessage({ id, gone: true } satisfies TimelineDrawMessage);
}

/** Whether this browser can draw the chart in a worker. */
function offscreenCapable(canvas: HTMLCanvasElement): boolean {
  return (
    typeof canvas.transferControlToOffscreen === 'function' &&
    typeof Worker === 'function' &&
    typeof OffscreenCanvas === 'function'
  );
}

/**
 * Draws `layout` on `canvas`: in the timeline worker where possible (the canvas is handed to it on the
 * first draw, and is the worker's from then on), else on this thread. Returns false when the canvas was
 * lost to a failed worker: the caller mounts a fresh one (`lost` is called as soon as that happens).
 */
export function paintTimeline(
  canvas: HTMLCanvasElement,
  layout: TimelineLayout,
  opts: TimelineDrawOptions,
  lost: () => void,
): boolean {
  const h = handed.get(canvas);
  if (h) {
    if (!worker || !held.has(h.id)) return false;
    sizeCanvasElement(canvas, layout);
    worker.postMessage({ id: h.id, layout, opts } satisfies TimelineDrawMessage);
    return true;
  }
  sizeCanvasElement(canvas, layout);
  const w = offscreenCapable(canvas) ? paintWorker() : null;
  if (w) {
    let offscreen: OffscreenCanvas | null = null;
    try {
      offscreen = canvas.transferControlToOffscreen();
    } catch {
      // a canvas that has a context of its own cannot be handed over: it is drawn here
    }
    if (offscreen) {
      const id = nextId++;
      try {
        w.postMessage({ id, canvas: offscreen, layout, opts } satisfies TimelineDrawMessage, [offscreen]);
      } catch (err) {
        handed.set(canvas, { id, lost });
        workerFailed(err instanceof Error ? err.message : String(err));
        return false;
      }
      handed.set(canvas, { id, lost });
      held.set(id, lost);
      collected?.register(canvas, id);
      return true;
    }
  }
  drawTimeline(canvas, layout, opts);
  return true;
}

/** The page no longer shows `canvas`: the worker lets its OffscreenCanvas (and bitmap) go. */
export function releaseTimeline(canvas: HTMLCanvasElement): void {
  const h = handed.get(canvas);
  if (h) forget(h.id);
}
