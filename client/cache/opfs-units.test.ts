import { describe, expect, it } from 'vitest';
import { fakeOpfs } from '../../shards/runtime/fake-opfs.ts';
import { KeptReadHandles } from '../../shards/runtime/opfs-read-handles.ts';
import { OPFS_UNITS_DIR, OpfsUnits, opfsUnitFile } from './opfs-units.ts';

const SHA = 'ab'.repeat(32);
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255);

describe('OpfsUnits.write', () => {
  it('takes a file another page wrote as it is, only when its bytes are the verified ones', async () => {
    const fs = fakeOpfs({ workerScope: true });
    const units = new OpfsUnits(fs.root);
    const good = bytes(3000, 1);
    const path = `${OPFS_UNITS_DIR}/${opfsUnitFile('pkg', SHA)}`;
    await units.write('pkg', SHA, good);
    const written = fs.files.get(path)!;
    // the same bytes again: the file is not rewritten (no writable, which would lock out other readers)
    await units.write('pkg', SHA, good.slice());
    expect(fs.files.get(path)).toBe(written);
    // a damaged file of the right size is rewritten with the verified bytes
    fs.files.set(path, bytes(3000, 9));
    await units.write('pkg', SHA, good.slice());
    expect([...fs.files.get(path)!]).toEqual([...good]);
  });

  it('refuses, with a clear error, to take back a damaged file a stage still keeps open; writes it once let go', async () => {
    const fs = fakeOpfs({ workerScope: true });
    const units = new OpfsUnits(fs.root);
    const good = bytes(3000, 1);
    const file = opfsUnitFile('pkg', SHA);
    const path = `${OPFS_UNITS_DIR}/${file}`;
    fs.files.set(path, bytes(3000, 9)); // damaged in place, same size
    const kept = new KeptReadHandles();
    const { release } = await kept.keep(fs.root, [{ kind: 'opfs-file', dir: OPFS_UNITS_DIR, file, bytes: 3000 }]);
    const err = (await units.write('pkg', SHA, good.slice()).catch((e: unknown) => e)) as {
      code?: string;
      message?: string;
    };
    expect(err.code).toBe('shard-file-in-use');
    expect(err.message).toContain('damaged');
    expect([...fs.files.get(path)!]).not.toEqual([...good]); // nothing was taken back as good
    release();
    await Promise.resolve();
    await units.write('pkg', SHA, good.slice());
    expect([...fs.files.get(path)!]).toEqual([...good]);
  });
});
