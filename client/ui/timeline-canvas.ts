/**
 * Draws a laid-out timeline (timeline-layout.ts) on one canvas. A canvas, not SVG: the chart is
 * redrawn while a cold start runs, and an SVG of a few hundred nodes cost every redraw style, layout
 * and paint of all of them (60-250 ms on a 0.4-core lab device, in the CPU its stage was using); a
 * canvas of a fixed size is a few ms of drawing and no layout. The canvas may be an OffscreenCanvas in
 * the timeline worker (timeline-painter.ts): nothing here needs the document.
 */
import type { TimelineLayout, TimelinePhase } from './timeline-layout.ts';

export interface TimelineColors {
  phase: Record<TimelinePhase, string>;
  /** labels and tick text */
  text: string;
  muted: string;
  grid: string;
  predictedMarker: string;
  measuredMarker: string;
}

export interface TimelineDrawOptions {
  /** base font size, CSS px */
  font: number;
  /** narrow charts leave out the rows' 'plan' / 'meas.' tags */
  narrow: boolean;
  colors: TimelineColors;
  /** device pixels per CSS pixel */
  pixelRatio: number;
}

/** An element's or an OffscreenCanvas' 2D context: the drawing calls used here are the same on both. */
type Context2D = CanvasRenderingContext2D;

const FONT_FAMILY = 'system-ui, sans-serif';

/** A canvas drawTimeline can draw on: the page's own, or one handed to a worker. */
export type TimelineSurface = HTMLCanvasElement | OffscreenCanvas;

/** Sizes the bitmap to the layout (only when it changed: a resize clears it). */
function sizeBitmap(canvas: TimelineSurface, layout: TimelineLayout, ratio: number): void {
  const w = Math.round(layout.width * ratio);
  const hgt = Math.round(layout.height * ratio);
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== hgt) canvas.height = hgt;
}

/** Sizes the canvas element on the page to the layout, in CSS px (only when it changed: it may move the page). */
export function sizeCanvasElement(canvas: HTMLCanvasElement, layout: TimelineLayout): void {
  const cssW = `${layout.width}px`;
  const cssH = `${layout.height}px`;
  if (canvas.style.width !== cssW) canvas.style.width = cssW;
  if (canvas.style.height !== cssH) canvas.style.height = cssH;
}

/** A 6 px diagonal hatch, the predicted rows' mark. */
function hatch(ctx: Context2D, ratio: number): CanvasPattern | null {
  const size = Math.max(1, Math.round(6 * ratio));
  const tile =
    typeof OffscreenCanvas === 'function' ? new OffscreenCanvas(size, size) : document.createElement('canvas');
  tile.width = size;
  tile.height = size;
  const t = tile.getContext('2d') as Context2D | null;
  if (!t) return null;
  t.fillStyle = 'rgba(255,255,255,0.55)';
  t.fillRect(0, 0, size, size);
  t.strokeStyle = 'rgba(0,0,0,0.18)';
  t.lineWidth = 1.5 * ratio;
  t.beginPath();
  // two strokes so that the tile's diagonal continues across tiles
  t.moveTo(0, size);
  t.lineTo(size, 0);
  t.moveTo(-size / 2, size / 2);
  t.lineTo(size / 2, -size / 2);
  t.moveTo(size / 2, size * 1.5);
  t.lineTo(size * 1.5, size / 2);
  t.stroke();
  const p = ctx.createPattern(tile, 'repeat');
  // the pattern is in device pixels; the context draws in CSS pixels
  p?.setTransform(new DOMMatrix().scale(1 / ratio));
  return p;
}

/** Characters of `text` that fit `room` px at `size` px (about 0.6 em per character), with an ellipsis. */
export function fitText(text: string, size: number, room: number): string {
  const max = Math.max(4, Math.floor(room / (size * 0.6)));
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function roundedRect(ctx: Context2D, x: number, y: number, w: number, h: number, r: number): void {
  ctx.beginPath();
  if (typeof ctx.roundRect === 'function') ctx.roundRect(x, y, w, h, Math.min(r, w / 2, h / 2));
  else ctx.rect(x, y, w, h);
}

/** Draws `layout` on `canvas` (an element's CSS size is the caller's: sizeCanvasElement). */
export function drawTimeline(canvas: TimelineSurface, layout: TimelineLayout, opts: TimelineDrawOptions): void {
  const ratio = opts.pixelRatio > 0 ? opts.pixelRatio : 1;
  sizeBitmap(canvas, layout, ratio);
  const ctx = canvas.getContext('2d') as Context2D | null;
  if (!ctx) return;
  const { font, colors } = opts;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, layout.width, layout.height);
  ctx.textBaseline = 'alphabetic';

  // grid and ticks
  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const t of layout.ticks) {
    const x = Math.round(t.x) + 0.5;
    ctx.moveTo(x, layout.axisY - 4);
    ctx.lineTo(x, layout.lanesBottom);
  }
  ctx.stroke();
  ctx.fillStyle = colors.muted;
  ctx.font = `${font}px ${FONT_FAMILY}`;
  ctx.textAlign = 'center';
  for (const t of layout.ticks) ctx.fillText(t.label, t.x, layout.axisY - 10);

  // lane labels
  const room = layout.plotLeft - (opts.narrow ? 10 : 48);
  for (const lane of layout.lanes) {
    ctx.textAlign = 'left';
    ctx.fillStyle = colors.text;
    ctx.font = `600 ${font + 1}px ${FONT_FAMILY}`;
    ctx.fillText(
      fitText(`${lane.stageIndex + 1}. ${lane.label}`, font + 1, room),
      6,
      lane.predictedY + layout.rowHeight * 0.72,
    );
    ctx.fillStyle = colors.muted;
    ctx.font = `${font - 1}px ${FONT_FAMILY}`;
    ctx.fillText(fitText(lane.detail, font - 1, room), 6, lane.measuredY + layout.rowHeight * 0.72);
    if (opts.narrow) continue;
    ctx.textAlign = 'right';
    ctx.font = `${font - 3}px ${FONT_FAMILY}`;
    ctx.fillText('plan', layout.plotLeft - 6, lane.predictedY + layout.rowHeight * 0.7);
    ctx.fillText('meas.', layout.plotLeft - 6, lane.measuredY + layout.rowHeight * 0.7);
  }

  // phases: decode steps a little lighter than the prefill, predictions hatched
  const pattern = hatch(ctx, ratio);
  for (const r of layout.rects) {
    ctx.globalAlpha = r.step > 0 ? 0.75 : 1;
    ctx.fillStyle = colors.phase[r.phase];
    roundedRect(ctx, r.x, r.y, r.width, r.height, 3);
    ctx.fill();
    if (r.row === 'predicted' && pattern) {
      ctx.fillStyle = pattern;
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;

  // TTFT and predicted-T markers
  for (const m of layout.markers) {
    const measured = m.kind === 'measured-ttft';
    const color = measured ? colors.measuredMarker : colors.predictedMarker;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.setLineDash(measured ? [] : [6, 4]);
    ctx.beginPath();
    ctx.moveTo(m.x, layout.axisY);
    ctx.lineTo(m.x, m.labelY - font + 2);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = color;
    ctx.font = `700 ${font}px ${FONT_FAMILY}`;
    ctx.textAlign = m.anchor === 'end' ? 'right' : 'left';
    ctx.fillText(m.label, m.x + (m.anchor === 'end' ? -4 : 4), m.labelY);
  }
}
