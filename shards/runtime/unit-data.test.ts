import { describe, expect, it } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import { fakeOpfs } from './fake-opfs.ts';
import type { OpfsDirectory } from './opfs-file.ts';
import { readUnitsInOrder, unitDataBytes, type MaterialiseOptions, type UnitData } from './unit-data.ts';

/** Every unit's bytes and the reads' seconds, as a one-part stage waits for them (ort-session.ts). */
async function materialiseUnits(
  externalData: { path: string; data: UnitData }[],
  capBytesPerSec?: number,
  opts?: MaterialiseOptions,
): Promise<{ externalData: { path: string; data: Uint8Array }[]; readSeconds: number }> {
  const reads = readUnitsInOrder(externalData, capBytesPerSec, opts);
  const read = await Promise.all(externalData.map(async ({ path }) => ({ path, data: await reads.bytes(path) })));
  return { externalData: read, readSeconds: await reads.seconds };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

describe('readUnitsInOrder', () => {
  it("lets go of a unit's bytes on release: asking for them again says so, and the reads' time still comes", async () => {
    const reads = readUnitsInOrder([
      { path: 'a.bin', data: new Blob([bytes(10, 1)]) },
      { path: 'b.bin', data: new Blob([bytes(20, 2)]) },
    ]);
    expect([...(await reads.bytes('a.bin'))]).toEqual([...bytes(10, 1)]);
    reads.release('a.bin');
    const err = (await reads.bytes('a.bin').catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(err.code).toBe('manifest-invalid');
    expect(err.message).toContain('let go');
    const unknown = (await reads.bytes('c.bin').catch((e: unknown) => e)) as { message?: string };
    expect(unknown.message).toContain('not among');
    expect([...(await reads.bytes('b.bin'))]).toEqual([...bytes(20, 2)]);
    expect(await reads.seconds).toBeGreaterThanOrEqual(0); // resolves, though a's bytes are gone
  });
});

describe('readUnitsInOrder, every unit awaited', () => {
  it('passes bytes through untouched and reports no read', async () => {
    const a = bytes(10, 1);
    const r = await materialiseUnits([{ path: 'a.bin', data: a }]);
    expect(r.externalData[0].data).toBe(a);
    expect(r.readSeconds).toBe(0);
  });

  it('reads Blobs into bytes equal to what was stored, in order, beside bytes', async () => {
    const a = bytes(1000, 3);
    const b = bytes(77, 9);
    const r = await materialiseUnits([
      { path: 'a.bin', data: new Blob([a]) },
      { path: 'b.bin', data: b },
    ]);
    expect(r.externalData.map((e) => e.path)).toEqual(['a.bin', 'b.bin']);
    expect([...r.externalData[0].data]).toEqual([...a]);
    expect(r.externalData[1].data).toBe(b);
    expect(unitDataBytes(new Blob([a]))).toBe(1000);
    expect(unitDataBytes(b)).toBe(77);
  });

  it('keeps the reads of Blob bytes to the cap, unit by unit: the last arrives after about sum(blob bytes) / cap', async () => {
    const waits: number[] = [];
    const sleep = (ms: number) => {
      waits.push(ms);
      return Promise.resolve();
    };
    // 3000 Blob bytes at 1000 B/s: 'a' is due after 1 s, 'b' after 3 s; the 500 in-memory bytes are not storage reads
    const t0 = performance.now();
    await materialiseUnits(
      [
        { path: 'a', data: new Blob([bytes(1000, 1)]) },
        { path: 'b', data: new Blob([bytes(2000, 2)]) },
        { path: 'c', data: bytes(500, 3) },
      ],
      1000,
      { sleep },
    );
    const readMs = performance.now() - t0; // the real read (the sleeps returned at once): the waits top it up
    expect(waits).toHaveLength(2);
    expect(Math.max(...waits)).toBeLessThanOrEqual(3000);
    expect(Math.max(...waits) + readMs).toBeGreaterThanOrEqual(3000);
    expect(Math.min(...waits)).toBeLessThanOrEqual(1000);
    expect(Math.min(...waits) + readMs).toBeGreaterThanOrEqual(1000);
    const none: number[] = [];
    await materialiseUnits([{ path: 'a', data: new Blob([bytes(10, 1)]) }], undefined, {
      sleep: (ms) => {
        none.push(ms);
        return Promise.resolve();
      },
    });
    expect(none).toEqual([]);
  });

  it("turns a Blob the browser cannot read any more into 'storage-read-failed', naming the unit", async () => {
    const lost = new Blob([bytes(10, 1)]);
    lost.arrayBuffer = () => Promise.reject(new DOMException('A requested file could not be read', 'NotReadableError'));
    const err = await materialiseUnits([{ path: 'layer.3.bin', data: lost }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TandemError);
    expect((err as TandemError).code).toBe('storage-read-failed');
    expect((err as TandemError).message).toMatch(/layer\.3\.bin.*could not be read.*Re-download/);
  });

  for (const workerScope of [true, false])
    it(`reads OPFS unit files ${workerScope ? 'with read-only sync access handles (a worker)' : 'as Blobs (no sync handles)'}, and counts them against the cap`, async () => {
      const fs = fakeOpfs({ workerScope });
      const a = bytes(2500, 5);
      const b = bytes(40, 6);
      fs.files.set('units/pkg.aa', a);
      fs.files.set('units/pkg.bb', b);
      const waits: number[] = [];
      const r = await materialiseUnits(
        [
          { path: 'a.bin', data: { kind: 'opfs-file', dir: 'units', file: 'pkg.aa', bytes: 2500 } },
          { path: 'b.bin', data: { kind: 'opfs-file', dir: 'units', file: 'pkg.bb', bytes: 40 } },
        ],
        1000,
        {
          opfs: fs.root,
          sleep: (ms) => {
            waits.push(ms);
            return Promise.resolve();
          },
        },
      );
      expect([...r.externalData[0].data]).toEqual([...a]);
      expect([...r.externalData[1].data]).toEqual([...b]);
      expect(fs.syncOpens).toEqual(workerScope ? ['units/pkg.aa:read-only', 'units/pkg.bb:read-only'] : []);
      // one wait per unit: 'a' due after 2500 bytes at 1000 B/s, 'b' after 2540, less the (short) real read
      expect(waits).toHaveLength(2);
      expect(waits[0]).toBeGreaterThan(2000);
      expect(waits[1]).toBeGreaterThan(waits[0]);
      expect(unitDataBytes({ kind: 'opfs-file', dir: 'units', file: 'pkg.aa', bytes: 2500 })).toBe(2500);
    });

  it("turns a missing or short OPFS file, or a context without OPFS, into 'storage-read-failed'", async () => {
    const fs = fakeOpfs({ workerScope: true });
    fs.files.set('units/short', bytes(10, 1));
    const fail = async (file: string, opfs: typeof fs.root | null) => {
      const err = await materialiseUnits(
        [{ path: 'x.bin', data: { kind: 'opfs-file', dir: 'units', file, bytes: 20 } }],
        undefined,
        {
          opfs,
        },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TandemError);
      expect((err as TandemError).code).toBe('storage-read-failed');
      return (err as TandemError).message;
    };
    expect(await fail('gone', fs.root)).toMatch(/'gone'.*not found.*Re-download/);
    expect(await fail('short', fs.root)).toMatch(/holds 10 bytes, not 20.*Re-download/);
    expect(await fail('short', null)).toMatch(/cannot open/);
  });

  it("asks for a units folder's handle once per root, and afresh when the kept one went stale", async () => {
    const fs = fakeOpfs({ workerScope: true });
    fs.files.set('units/a', bytes(30, 1));
    fs.files.set('units/b', bytes(40, 2));
    // one root handle (as the origin's is), counting the folder handles it gives; after `stale`, the
    // folder handles given so far answer NotFoundError (the folder was removed and made again)
    const base = await fs.root();
    let folderCalls = 0;
    let stale = false;
    const root: OpfsDirectory = {
      ...base,
      getDirectoryHandle: async (name, o) => {
        folderCalls++;
        const folder = await base.getDirectoryHandle(name, o);
        const born = stale;
        return {
          ...folder,
          getFileHandle: (file, fo) =>
            stale && !born
              ? Promise.reject(new DOMException(`'${file}' not found`, 'NotFoundError'))
              : folder.getFileHandle(file, fo),
        };
      },
    };
    const read = (file: string, n: number) =>
      materialiseUnits(
        [{ path: `${file}.bin`, data: { kind: 'opfs-file', dir: 'units', file, bytes: n } }],
        undefined,
        {
          opfs: () => Promise.resolve(root),
        },
      ).then((r) => r.externalData[0].data);
    expect(await read('a', 30)).toEqual(bytes(30, 1));
    expect(await read('b', 40)).toEqual(bytes(40, 2));
    expect(folderCalls).toBe(1);
    stale = true;
    expect(await read('a', 30)).toEqual(bytes(30, 1));
    expect(folderCalls).toBe(2);
    expect(await read('b', 40)).toEqual(bytes(40, 2));
    expect(folderCalls).toBe(2);
  });
});
