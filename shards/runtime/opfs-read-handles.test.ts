import { describe, expect, it } from 'vitest';
import { fakeOpfs, type FakeOpfs } from './fake-opfs.ts';
import type { OpfsUnit } from './opfs-file.ts';
import { KeptReadHandles } from './opfs-read-handles.ts';
import { readStoredUnit } from './unit-data.ts';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

/** A fake OPFS (in a worker's scope unless said otherwise) holding units a (2500 B) and b (1200 B). */
function stored(workerScope = true): { fs: FakeOpfs; a: OpfsUnit; b: OpfsUnit } {
  const fs = fakeOpfs({ workerScope });
  fs.files.set('units/a.bin', bytes(2500, 1));
  fs.files.set('units/b.bin', bytes(1200, 2));
  const unit = (file: string, n: number): OpfsUnit => ({ kind: 'opfs-file', dir: 'units', file, bytes: n });
  return { fs, a: unit('a.bin', 2500), b: unit('b.bin', 1200) };
}

describe('KeptReadHandles', () => {
  it('reads a kept unit with no round trip to the browser process, the same bytes as a fresh read', async () => {
    const { fs, a, b } = stored();
    const kept = new KeptReadHandles();
    const { open } = await kept.keep(fs.root, [a, b]);
    expect(open).toEqual([a, b]);
    expect(fs.openHandles.get('units/a.bin')).toBe(1);
    expect(fs.syncOpens).toEqual(['units/a.bin:read-only', 'units/b.bin:read-only']);
    const before = fs.roundTrips();
    const viaKept = await readStoredUnit('a.bin', a, { opfs: fs.root, kept });
    expect(fs.roundTrips()).toBe(before);
    // the same unit again (a second cold start of the same stage): still none, same bytes
    expect([...(await readStoredUnit('a.bin', a, { opfs: fs.root, kept }))]).toEqual([...viaKept]);
    expect(fs.roundTrips()).toBe(before);
    const fresh = await readStoredUnit('a.bin', a, { opfs: fs.root, kept: new KeptReadHandles() });
    expect(fs.roundTrips()).toBeGreaterThan(before);
    expect([...viaKept]).toEqual([...fresh]);
    expect([...viaKept]).toEqual([...bytes(2500, 1)]);
  });

  it('holds a lock while kept (the file cannot be removed) and frees it on release', async () => {
    const { fs, a } = stored();
    const kept = new KeptReadHandles();
    const { release } = await kept.keep(fs.root, [a]);
    const dir = await (await fs.root()).getDirectoryHandle('units');
    const locked = (await dir.removeEntry('a.bin').catch((e: unknown) => e)) as { name?: string };
    expect(locked.name).toBe('NoModificationAllowedError');
    release();
    release(); // once only: a second call lets go of nothing more
    await Promise.resolve();
    expect(fs.openHandles.size).toBe(0);
    expect(kept.size).toBe(0);
    await dir.removeEntry('a.bin');
    expect(fs.files.has('units/a.bin')).toBe(false);
  });

  it('shares one handle between two holders and closes it when the last lets go', async () => {
    const { fs, a, b } = stored();
    const kept = new KeptReadHandles();
    const first = await kept.keep(fs.root, [a, b]);
    const second = await kept.keep(fs.root, [a]);
    expect(fs.openHandles.get('units/a.bin')).toBe(1);
    first.release();
    await Promise.resolve();
    expect(fs.openHandles.get('units/a.bin')).toBe(1); // the second holder still reads through it
    expect(fs.openHandles.has('units/b.bin')).toBe(false);
    const before = fs.roundTrips();
    expect((await kept.read(a))?.byteLength).toBe(2500);
    expect(fs.roundTrips()).toBe(before);
    second.release();
    await Promise.resolve();
    expect(fs.openHandles.size).toBe(0);
    expect(await kept.read(a)).toBeNull();
  });

  it('drops a kept file that is not the unit it should be: the usual read then says it is damaged', async () => {
    const { fs, a } = stored();
    const kept = new KeptReadHandles();
    const short: OpfsUnit = { ...a, bytes: 3000 }; // the manifest's size, not the file's
    await kept.keep(fs.root, [short]);
    expect(await kept.read(short)).toBeNull();
    await Promise.resolve();
    expect(fs.openHandles.size).toBe(0);
    const err = (await readStoredUnit('a.bin', short, { opfs: fs.root, kept }).catch((e: unknown) => e)) as {
      code?: string;
      message?: string;
    };
    expect(err.code).toBe('storage-read-failed');
    expect(err.message).toContain('not 3000');
  });

  it('keeps nothing for a missing file or where sync handles do not exist, and reads go the usual way', async () => {
    const { fs, a } = stored();
    const missing: OpfsUnit = { ...a, file: 'gone.bin' };
    const kept = new KeptReadHandles();
    expect((await kept.keep(fs.root, [missing])).open).toEqual([]);
    expect(await kept.read(missing)).toBeNull();
    expect(kept.size).toBe(0); // not kept as a failure: once the file is there, the next keep opens it
    fs.files.set('units/gone.bin', bytes(2500, 3));
    expect((await kept.keep(fs.root, [missing])).open).toEqual([missing]);

    const page = stored(false); // a main thread: no sync access handles
    const onPage = new KeptReadHandles();
    expect((await onPage.keep(page.fs.root, [page.a])).open).toEqual([]);
    expect([...(await readStoredUnit('a.bin', page.a, { opfs: page.fs.root, kept: onPage }))]).toEqual([
      ...bytes(2500, 1),
    ]);
  });

  it('a handle closed under it (the browser closed it) falls back to a fresh read', async () => {
    const { fs, a } = stored();
    const kept = new KeptReadHandles();
    await kept.keep(fs.root, [a]);
    fs.closeAllHandles();
    const before = fs.roundTrips();
    expect([...(await readStoredUnit('a.bin', a, { opfs: fs.root, kept }))]).toEqual([...bytes(2500, 1)]);
    expect(fs.roundTrips()).toBeGreaterThan(before); // it was read afresh
    expect(kept.size).toBe(0); // and the dead handle is no longer kept
  });
});
