/**
 * LongTaskLog: each long task gets the scripts and render time of the Long Animation Frame that holds its
 * start, whichever of the two entries the browser reports first; tasks outside every frame stay bare.
 */
import { describe, expect, it } from 'vitest';
import { LongTaskLog, type AnimationFrameEntry } from './long-tasks.ts';

function frame(startTime: number, duration: number, renderStart: number, scripts: [string, string, number][]) {
  return {
    startTime,
    duration,
    renderStart,
    scripts: scripts.map(([invoker, sourceFunctionName, d]) => ({
      invoker,
      sourceFunctionName,
      sourceURL: 'http://host/assets/index-abc.js?v=1',
      duration: d,
    })),
  } satisfies AnimationFrameEntry;
}

describe('LongTaskLog', () => {
  it('attributes a task to the frame holding its start, reported before or after it', () => {
    const log = new LongTaskLog();
    // frame first, then its task
    log.addFrame(
      frame(100, 120, 190, [
        ['Worker.onmessage', 'onReply', 20],
        ['TimerHandler:setTimeout', '', 60],
      ]),
    );
    log.addTask(101, 110);
    // task first, then its frame
    log.addTask(500, 70);
    log.addFrame(frame(499.5, 80, 0, [['FrameRequestCallback', 'draw', 40]]));
    // a task no frame holds
    log.addTask(900, 55);
    log.addFrame(frame(1000, 60, 1050, []));
    expect(log.list()).toEqual([
      {
        startMs: 101,
        durationMs: 110,
        scripts: [
          { what: 'TimerHandler:setTimeout @index-abc.js', durationMs: 60 },
          { what: 'Worker.onmessage onReply @index-abc.js', durationMs: 20 },
        ],
        renderMs: 30,
      },
      { startMs: 500, durationMs: 70, scripts: [{ what: 'FrameRequestCallback draw @index-abc.js', durationMs: 40 }] },
      { startMs: 900, durationMs: 55 },
    ]);
  });

  it('keeps at most 1000 tasks, the newest, and hands out copies', () => {
    const log = new LongTaskLog();
    for (let i = 0; i < 1005; i++) log.addTask(i * 100, 51);
    const list = log.list();
    expect(list).toHaveLength(1000);
    expect(list[0].startMs).toBe(500);
    list[0].durationMs = 1;
    expect(log.list()[0].durationMs).toBe(51);
  });
});
