import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TimelineDrawOptions } from './timeline-canvas.ts';
import type { TimelineLayout } from './timeline-layout.ts';
import type { TimelineDrawMessage } from './timeline-painter.ts';

/** A stand-in for the page's Worker: records what is posted, and can fire its events. */
class FakeWorker {
  static made: FakeWorker[] = [];
  posted: { message: TimelineDrawMessage; transfer?: unknown[] }[] = [];
  terminated = false;
  private listeners = new Map<string, ((e: unknown) => void)[]>();
  constructor(readonly url: URL | string) {
    FakeWorker.made.push(this);
  }
  addEventListener(type: string, l: (e: unknown) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), l]);
  }
  postMessage(message: TimelineDrawMessage, transfer?: unknown[]): void {
    this.posted.push({ message, transfer });
  }
  terminate(): void {
    this.terminated = true;
  }
  fire(type: string, e: unknown): void {
    for (const l of this.listeners.get(type) ?? []) l(e);
  }
}

/** What transferControlToOffscreen returns (only its identity matters here). */
class FakeOffscreen {
  readonly kind = 'offscreen';
}

/** A canvas element: handed over at most once; its own context is asked for only when drawn on this thread. */
function fakeCanvas(canTransfer = true) {
  const c = {
    style: { width: '', height: '' },
    width: 300,
    height: 150,
    contextAsked: 0,
    transfers: 0,
    getContext: () => {
      c.contextAsked++;
      return null; // drawTimeline stops there: what matters is that it was drawn here
    },
    transferControlToOffscreen: canTransfer
      ? () => {
          c.transfers++;
          return new FakeOffscreen();
        }
      : undefined,
  };
  return c;
}

const layout = { width: 640, height: 200 } as unknown as TimelineLayout;
const opts = { font: 12, narrow: false, pixelRatio: 1 } as unknown as TimelineDrawOptions;

async function painter() {
  vi.resetModules();
  return import('./timeline-painter.ts');
}

describe('paintTimeline', () => {
  beforeEach(() => {
    FakeWorker.made = [];
    vi.stubGlobal('Worker', FakeWorker);
    vi.stubGlobal('OffscreenCanvas', FakeOffscreen);
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it('hands a canvas to one worker on its first draw and posts only layouts after', async () => {
    const { paintTimeline } = await painter();
    const a = fakeCanvas();
    const b = fakeCanvas();
    const lost = vi.fn();
    expect(paintTimeline(a as unknown as HTMLCanvasElement, layout, opts, lost)).toBe(true);
    expect(paintTimeline(a as unknown as HTMLCanvasElement, layout, opts, lost)).toBe(true);
    expect(paintTimeline(b as unknown as HTMLCanvasElement, layout, opts, lost)).toBe(true);
    expect(FakeWorker.made).toHaveLength(1);
    const [w] = FakeWorker.made;
    expect(String(w.url)).toContain('timeline-worker');
    expect(a.transfers).toBe(1);
    expect(a.contextAsked).toBe(0);
    const first = w.posted[0];
    expect('canvas' in first.message && first.message.canvas).toBeInstanceOf(FakeOffscreen);
    expect(first.transfer).toHaveLength(1);
    expect(w.posted[1].message).toEqual({ id: first.message.id, layout, opts });
    expect(w.posted[2].message.id).not.toBe(first.message.id);
    expect(a.style).toEqual({ width: '640px', height: '200px' }); // the element's CSS size is set here
    expect(lost).not.toHaveBeenCalled();
  });

  it('draws on the main thread where a canvas cannot be handed over', async () => {
    const { paintTimeline } = await painter();
    const c = fakeCanvas(false);
    expect(paintTimeline(c as unknown as HTMLCanvasElement, layout, opts, () => undefined)).toBe(true);
    expect(c.contextAsked).toBe(1);
    expect(FakeWorker.made).toHaveLength(0);
  });

  it('a failed worker loses its canvases (each owner told once) and later charts are drawn on the main thread', async () => {
    const { paintTimeline } = await painter();
    const a = fakeCanvas();
    const lostA = vi.fn();
    paintTimeline(a as unknown as HTMLCanvasElement, layout, opts, lostA);
    const [w] = FakeWorker.made;
    w.fire('error', { message: 'script 404' });
    w.fire('message', { data: { error: 'again' } });
    expect(lostA).toHaveBeenCalledTimes(1);
    expect(w.terminated).toBe(true);
    // the lost canvas cannot be drawn on any more: its owner mounts a fresh one
    expect(paintTimeline(a as unknown as HTMLCanvasElement, layout, opts, lostA)).toBe(false);
    const fresh = fakeCanvas();
    expect(paintTimeline(fresh as unknown as HTMLCanvasElement, layout, opts, () => undefined)).toBe(true);
    expect(fresh.transfers).toBe(0);
    expect(fresh.contextAsked).toBe(1);
    expect(FakeWorker.made).toHaveLength(1);
  });

  it('a draw the worker reports failed counts as the worker failing', async () => {
    const { paintTimeline } = await painter();
    const lost = vi.fn();
    paintTimeline(fakeCanvas() as unknown as HTMLCanvasElement, layout, opts, lost);
    FakeWorker.made[0].fire('message', { data: { error: 'DOMMatrix is not defined' } });
    expect(lost).toHaveBeenCalledTimes(1);
  });

  it('a released canvas is let go in the worker, once', async () => {
    const { paintTimeline, releaseTimeline } = await painter();
    const a = fakeCanvas();
    paintTimeline(a as unknown as HTMLCanvasElement, layout, opts, () => undefined);
    const [w] = FakeWorker.made;
    const id = w.posted[0].message.id;
    releaseTimeline(a as unknown as HTMLCanvasElement);
    releaseTimeline(a as unknown as HTMLCanvasElement);
    expect(w.posted.slice(1).map((p) => p.message)).toEqual([{ id, gone: true }]);
    // a released chart is not the worker's to lose any more
    expect(paintTimeline(a as unknown as HTMLCanvasElement, layout, opts, () => undefined)).toBe(false);
  });
});
