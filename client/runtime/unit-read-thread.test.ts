/**
 * The reader thread keeps a stage's files open where it reads them (a stage loaded in parts is read
 * there): its reads of them then make no round trip, and they are let go on release. Both ends run in
 * this thread over a MessageChannel, on an in-memory OPFS that behaves as a worker's.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import { fakeOpfs, type FakeOpfs } from '../../shards/runtime/fake-opfs.ts';
import type { OpfsUnit } from '../../shards/runtime/opfs-file.ts';
import { keepWhereRead, readOnThread, serveUnitReads, UnitReadThread } from './unit-read-thread.ts';
import { readStoredUnit } from '../../shards/runtime/unit-data.ts';

const channels: MessageChannel[] = [];
afterAll(() => channels.forEach((c) => c.port1.close()));

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 255);

function stored() {
  const fs = fakeOpfs({ workerScope: true });
  fs.files.set('units/a.bin', bytes(2000, 1));
  fs.files.set('units/b.bin', bytes(1500, 2));
  const unit = (file: string, n: number): OpfsUnit => ({ kind: 'opfs-file', dir: 'units', file, bytes: n });
  return { fs, a: unit('a.bin', 2000), b: unit('b.bin', 1500), gone: unit('gone.bin', 10) };
}

function readerThread(root: FakeOpfs['root']): UnitReadThread {
  const c = new MessageChannel();
  channels.push(c);
  serveUnitReads(c.port2, root);
  const thread = new UnitReadThread(c.port1);
  c.port1.start();
  c.port2.start();
  return thread;
}

describe('files kept open on the reader thread', () => {
  it('reads them there with no round trip, and lets them go on release', async () => {
    const { fs, a, b, gone } = stored();
    const thread = readerThread(fs.root);
    const kept = await keepWhereRead(() => thread, [a, b, gone], { inParts: true }, fs.root);
    expect(kept.open.map((u) => u.file)).toEqual(['a.bin', 'b.bin']); // a missing file is not kept
    expect(fs.openHandles.size).toBe(2);
    const before = fs.roundTrips();
    expect([...(await thread.readOne('a.bin', a))]).toEqual([...bytes(2000, 1)]);
    expect([...(await thread.readOne('b.bin', b))]).toEqual([...bytes(1500, 2)]);
    expect(fs.roundTrips()).toBe(before);
    kept.release();
    kept.release(); // once
    await thread.readOne('a.bin', a); // the let-go is handled before this read: the read opens afresh
    expect(fs.roundTrips()).toBeGreaterThan(before);
    expect(fs.openHandles.size).toBe(0);
  });

  it('keeps a stage in one part on this thread, and falls back to it when the reader thread has stopped', async () => {
    const { fs, a } = stored();
    const thread = readerThread(fs.root);
    const here = await keepWhereRead(() => thread, [a], { inParts: false }, fs.root);
    expect(here.open).toHaveLength(1);
    here.release();
    thread.fail('the reader thread stopped');
    const fallback = await keepWhereRead(() => thread, [a], { inParts: true }, fs.root);
    expect(fallback.open).toHaveLength(1); // kept here instead
    // and a stage in parts, whose reader has stopped, reads it here through that handle
    const read = readOnThread(
      () => thread,
      (path, data) => readStoredUnit(path, data, { opfs: fs.root }),
    );
    const before = fs.roundTrips();
    expect([...(await read('a.bin', a))]).toEqual([...bytes(2000, 1)]);
    expect(fs.roundTrips()).toBe(before);
    fallback.release();
    const none = await keepWhereRead(() => null, [a], { inParts: true }, null);
    expect(none.open).toEqual([]); // no OPFS on this thread: nothing kept, reads go the usual way
  });

  it('passes on a reader failure other than a stop', async () => {
    const broken = new UnitReadThread({
      postMessage: () => undefined,
      addEventListener: () => undefined,
    });
    const failing = Object.assign(broken, {
      keep: () => Promise.reject(new TandemError('storage-read-failed', 'the disk went away')),
    });
    const err = (await keepWhereRead(() => failing, [], { inParts: true }, null).catch((e: unknown) => e)) as {
      code?: string;
    };
    expect(err.code).toBe('storage-read-failed');
  });
});
