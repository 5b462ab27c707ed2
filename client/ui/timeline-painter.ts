/**
 * Where the timeline's pixels are drawn. The chart is redrawn while a request runs, on a page whose
 * stage is using the device's CPU: on a 0.4-core lab device a redraw on the main thread (drawTimeline's
 * few ms of CPU, stretched by the quota it shares with the stage's worker) made most of the animation
 * frames over 50 ms that a cold request left there, and a frame held up the transport and heartbeats
 * that live on the main thread. So where the browser can hand a canvas to a worker
 * (transferControlToOffscreen), the chart is drawn in the timeline worker (timeline-worker.ts): the main
 * thread lays it out (the layout also answers hover titles) and posts it; the worker draws the latest
 * layout of each canvas. Elsewhere it is drawn here, as before.
 */
import { drawTimeline, sizeCanvasElement, type TimelineDrawOptions } from './timeline-canvas.ts';
import type { TimelineLayout } from './timeline-layout.ts';

/** A draw for the worker (`canvas` comes with the first draw of its chart only), or a chart gone from the page. */
export type TimelineDrawMessage =
  | { id: number; canvas?: OffscreenCanvas; layout: TimelineLayout; opts: TimelineDrawOptions }
  | { id: number; gone: true };

let worker: Worker | null | undefined;
const handed = new WeakMap<HTMLCanvasElement, number>();
let nextId = 1;

function paintWorker(): Worker | null {
  if (worker !== undefined) return worker;
  try {
    worker = new Worker(new URL('./timeline-worker.ts', import.meta.url), { type: 'module', name: 'tandem-timeline' });
  } catch {
    worker = null; // no module workers here: the main thread draws
  }
  return worker;
}

/** A chart's canvas that the page dropped (a re-mounted view): the worker lets its OffscreenCanvas go. */
const dropped =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<number>((id) => {
        worker?.postMessage({ id, gone: true } satisfies TimelineDrawMessage);
      })
    : null;

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
 * first draw, and is the worker's from then on), else on this thread.
 */
export function paintTimeline(canvas: HTMLCanvasElement, layout: TimelineLayout, opts: TimelineDrawOptions): void {
  sizeCanvasElement(canvas, layout);
  const id = handed.get(canvas);
  if (id !== undefined) {
    worker!.postMessage({ id, layout, opts } satisfies TimelineDrawMessage);
    return;
  }
  const w = offscreenCapable(canvas) ? paintWorker() : null;
  if (!w) {
    drawTimeline(canvas, layout, opts);
    return;
  }
  const fresh = nextId++;
  const offscreen = canvas.transferControlToOffscreen();
  handed.set(canvas, fresh);
  dropped?.register(canvas, fresh);
  w.postMessage({ id: fresh, canvas: offscreen, layout, opts } satisfies TimelineDrawMessage, [offscreen]);
}
