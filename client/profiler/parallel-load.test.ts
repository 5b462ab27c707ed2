/**
 * The parallel-load figure (parallel-load.ts) and what the page does with it; the inference worker's
 * 'measure-parallel' call over the worker protocol, with and without a second thread; the unit reader
 * thread's reads and failures (unit-read-thread.ts), served over a MessageChannel as in a page.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { parallelRow } from '../ui/profile-view.ts';
import { serveInference } from '../runtime/inference-worker-host.ts';
import { readOnThread, serveUnitReads, spin, UnitReadThread } from '../runtime/unit-read-thread.ts';
import { createWorkerRuntime } from '../runtime/worker-runtime.ts';
import { DEFAULT_LOAD_PARTS } from '../../shards/runtime/stage-parts.ts';
import { loadPartsPolicy, PARALLEL_LOAD_MIN, PARALLEL_REPEATS, parallelLoad } from './parallel-load.ts';

const channels: MessageChannel[] = [];
afterAll(() => channels.forEach((c) => c.port1.close()));

function readerThread(): UnitReadThread {
  const c = new MessageChannel();
  channels.push(c);
  serveUnitReads(c.port2);
  const thread = new UnitReadThread(c.port1);
  c.port1.start();
  c.port2.start();
  return thread;
}

describe('parallelLoad', () => {
  it('is (alone + alone) / together, within 1..2, and loads in parts from PARALLEL_LOAD_MIN on', () => {
    const two = parallelLoad([{ aloneMs: [20, 22], togetherMs: 21 }]);
    expect(two.parallelism).toBe(2);
    expect(two.inParts).toBe(true);
    const one = parallelLoad([{ aloneMs: [20, 20], togetherMs: 40 }]);
    expect(one.parallelism).toBe(1);
    expect(one.inParts).toBe(false);
    // contention can make the pair slower than one after the other: still 1
    expect(parallelLoad([{ aloneMs: [20, 20], togetherMs: 55 }]).parallelism).toBe(1);
    const edge = parallelLoad([{ aloneMs: [30, 30], togetherMs: 60 / PARALLEL_LOAD_MIN }]);
    expect(edge.inParts).toBe(true);
    expect(parallelLoad([{ aloneMs: [30, 30], togetherMs: 60 / PARALLEL_LOAD_MIN + 1 }]).inParts).toBe(false);
    const none = parallelLoad([], 'no second thread in this browser');
    expect(none).toMatchObject({ parallelism: 1, inParts: false, reason: 'no second thread in this browser' });
  });

  it('keeps the median of its repetitions: one burst that ran both threads at once does not decide', () => {
    const burst = { aloneMs: [30, 30] as [number, number], togetherMs: 31 };
    const shared = { aloneMs: [30, 30] as [number, number], togetherMs: 58 };
    expect(parallelLoad([shared, burst, shared]).parallelism).toBeCloseTo(60 / 58, 6);
    expect(parallelLoad([shared, burst, shared]).inParts).toBe(false);
    expect(parallelLoad([burst, shared, burst]).inParts).toBe(true);
    // an even count: the mean of the middle two
    expect(parallelLoad([burst, shared]).parallelism).toBeCloseTo((60 / 31 + 60 / 58) / 2, 6);
  });

  it('loads in parts as ?parts= says, else as the profile measured', () => {
    const two = parallelLoad([{ aloneMs: [20, 20], togetherMs: 21 }]);
    const one = parallelLoad([{ aloneMs: [20, 20], togetherMs: 40 }]);
    expect([two, one, null, undefined].map((p) => loadPartsPolicy('auto', p))).toEqual([
      DEFAULT_LOAD_PARTS,
      null,
      null,
      null,
    ]);
    expect([two, one, null].map((p) => loadPartsPolicy('on', p))).toEqual([
      DEFAULT_LOAD_PARTS,
      DEFAULT_LOAD_PARTS,
      DEFAULT_LOAD_PARTS,
    ]);
    expect([two, one, null].map((p) => loadPartsPolicy('off', p))).toEqual([null, null, null]);
    expect(loadPartsPolicy(3, one)).toEqual({ minPartBytes: 1, maxParts: 3 });
  });

  it('says in the profile card whether stages load in parts, and why', () => {
    expect(parallelRow(parallelLoad([{ aloneMs: [20, 20], togetherMs: 21 }]))).toEqual([
      'yes',
      "two threads ran 1.90x one's work at once: stages load in parts, each part's session created while the next part is read",
    ]);
    expect(parallelRow(parallelLoad([{ aloneMs: [20, 20], togetherMs: 40 }]))[0]).toBe('no');
    expect(parallelRow(parallelLoad([], 'no second thread in this browser'))).toEqual([
      'no',
      'no second thread in this browser: stages load in one part',
    ]);
    expect(parallelRow(null)[0]).toBe('unknown');
  });
});

describe('the unit reader thread', () => {
  it('reads Blob units in the order asked, hands the bytes over, and fails one it cannot read as storage-read-failed', async () => {
    const thread = readerThread();
    const a = new Uint8Array([1, 2, 3, 4]);
    const b = new Uint8Array(1000).map((_, i) => i % 251);
    const [ra, rb] = await Promise.all([
      thread.readOne('a.bin', new Blob([a])),
      thread.readOne('b.bin', new Blob([b])),
    ]);
    expect([...ra]).toEqual([...a]);
    expect([...rb]).toEqual([...b]);
    // a unit in OPFS, where this context has none (Node): the reader fails it, and the next read still works
    const err = (await thread
      .readOne('layer.3.bin', { kind: 'opfs-file', dir: 'units', file: 'pkg.layer3', bytes: 4 })
      .catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(err.code).toBe('storage-read-failed');
    expect(err.message).toContain('pkg.layer3');
    expect([...(await thread.readOne('a.bin', new Blob([a])))]).toEqual([...a]);
  });

  it('hands reads to this thread once the reader thread stopped; a unit it could not read still fails', async () => {
    const thread = readerThread();
    const inline: string[] = [];
    const read = readOnThread(
      () => thread,
      (path) => {
        inline.push(path);
        return Promise.resolve(new Uint8Array([7]));
      },
    );
    expect([...(await read('a.bin', new Blob([new Uint8Array([1, 2])])))]).toEqual([1, 2]);
    const lost = (await read('b.bin', { kind: 'opfs-file', dir: 'units', file: 'pkg.b', bytes: 1 }).catch(
      (e: unknown) => e,
    )) as { code?: string };
    expect(lost.code).toBe('storage-read-failed');
    expect(inline).toEqual([]);
    thread.fail('the reader thread stopped (test)');
    expect([...(await read('c.bin', new Blob([new Uint8Array([3])])))]).toEqual([7]);
    expect(inline).toEqual(['c.bin']);
    // no thread at all: every read on this thread
    expect([
      ...(await readOnThread(
        () => null,
        () => Promise.resolve(new Uint8Array([9])),
      )('d.bin', new Blob([]))),
    ]).toEqual([9]);
  });

  it('spins the same work as this thread (the same result), and says how long it took', async () => {
    const thread = readerThread();
    expect(await thread.spin(4)).toBeGreaterThan(0);
    expect(spin(4)).toBe(spin(4));
  });
});

describe("the inference worker's 'measure-parallel'", () => {
  const runtimeWith = (second: UnitReadThread | null) => {
    const c = new MessageChannel();
    channels.push(c);
    serveInference(
      c.port2,
      () => ({ createSession: () => Promise.reject(new Error('no sessions here')) }),
      () => second,
    );
    const runtime = createWorkerRuntime(c.port1, { wasmUrl: null, numThreads: 1 });
    c.port1.start();
    c.port2.start();
    return runtime;
  };

  it('times both threads alone and together (one thread in Node: they only interleave)', async () => {
    const p = await runtimeWith(readerThread()).measureParallel();
    expect(p.samples).toHaveLength(PARALLEL_REPEATS);
    for (const sample of p.samples) {
      expect(sample.aloneMs.every((ms) => ms > 0)).toBe(true);
      expect(sample.togetherMs).toBeGreaterThan(0);
    }
    expect(p.parallelism).toBeGreaterThanOrEqual(1);
    expect(p.parallelism).toBeLessThanOrEqual(2);
  });

  it('says so where the worker has no second thread: stages then load in one part', async () => {
    const p = await runtimeWith(null).measureParallel();
    expect(p).toMatchObject({
      parallelism: 1,
      inParts: false,
      samples: [],
      reason: 'no second thread in this browser',
    });
  });
});
