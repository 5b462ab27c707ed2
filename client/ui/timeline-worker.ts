/**
 * Entry of the page's timeline worker (timeline-painter.ts): draws each chart's latest layout on the
 * OffscreenCanvas its page handed over. Draws that queued up while one was drawn collapse into the last.
 * A draw that throws is reported to the page, which then draws its charts itself.
 */
import { drawTimeline } from './timeline-canvas.ts';
import type { TimelineDrawMessage, TimelineWorkerError } from './timeline-painter.ts';

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<TimelineDrawMessage>) => void) | null;
  postMessage(m: TimelineWorkerError): void;
};

const charts = new Map<number, OffscreenCanvas>();
const pending = new Map<number, Extract<TimelineDrawMessage, { layout: unknown }>>();
let scheduled = false;

function drawPending(): void {
  scheduled = false;
  for (const [id, m] of pending) {
    pending.delete(id);
    const canvas = charts.get(id);
    if (!canvas) continue;
    try {
      drawTimeline(canvas, m.layout, m.opts);
    } catch (err) {
      scope.postMessage({ error: err instanceof Error ? err.message : String(err) });
      return;
    }
  }
}

scope.onmessage = (e) => {
  const m = e.data;
  if ('gone' in m) {
    charts.delete(m.id);
    pending.delete(m.id);
    return;
  }
  if (m.canvas) charts.set(m.id, m.canvas);
  pending.set(m.id, m);
  if (!scheduled) {
    scheduled = true;
    setTimeout(drawPending, 0);
  }
};
