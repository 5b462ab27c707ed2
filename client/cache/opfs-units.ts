/**
 * Unit files in the origin private file system (OPFS), for the shard cache: one file per verified unit,
 * named by its package and SHA-256 under one folder, so that a re-converted package never reuses old
 * bytes and a file without its IndexedDB records is recognisably debris. The inference worker reads them
 * with synchronous access handles (shards/runtime/opfs-file.ts); this side writes, sizes and removes.
 */
import { TandemError } from '../../core/errors.ts';
import {
  isNotFound,
  opfsFileSize,
  readOpfsUnit,
  writeOpfsFile,
  type OpfsDirectory,
  type OpfsUnit,
} from '../../shards/runtime/opfs-file.ts';

export const OPFS_UNITS_DIR = 'tandem-units';

export function opfsUnitFile(packageName: string, sha256: string): string {
  return `${packageName}.${sha256}`;
}

/** The package and hash a unit file was named for; null for a name this cache did not write. */
export function parseOpfsUnitFile(name: string): { packageName: string; sha256: string } | null {
  const m = /^([A-Za-z0-9._-]+)\.([0-9a-f]{64})$/.exec(name);
  return m ? { packageName: m[1], sha256: m[2] } : null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class OpfsUnits {
  constructor(private readonly root: () => Promise<OpfsDirectory>) {}

  private async dir(): Promise<OpfsDirectory> {
    return (await this.root()).getDirectoryHandle(OPFS_UNITS_DIR, { create: true });
  }

  /**
   * Writes a unit's bytes (already verified) and returns the value the runtime reads it by; null where this
   * browser cannot write OPFS files (no createWritable): the caller keeps the unit another way.
   */
  async write(packageName: string, sha256: string, bytes: Uint8Array<ArrayBuffer>): Promise<OpfsUnit | null> {
    const file = opfsUnitFile(packageName, sha256);
    const unit: OpfsUnit = { kind: 'opfs-file', dir: OPFS_UNITS_DIR, file, bytes: bytes.byteLength };
    // another page of this origin wrote it already (a writable lands whole on close, and the name is the
    // content's hash): rewriting it would lock it against that page's reads. Its bytes are compared first:
    // a unit dropped as damaged while a stage kept its file open (shards/runtime/opfs-read-handles.ts)
    // could not be removed then, and must not be taken back as it is
    if ((await this.size(unit)) === bytes.byteLength && sameBytes(await this.read(unit), bytes)) return unit;
    const handle = await (await this.dir()).getFileHandle(file, { create: true });
    if (!handle.createWritable) return null;
    try {
      await writeOpfsFile(await handle.createWritable(), bytes);
    } catch (err) {
      await this.remove(file).catch(() => undefined); // a file still held open stays for a later sweep
      if ((err as { name?: string } | null)?.name === 'NoModificationAllowedError')
        throw new TandemError(
          'shard-file-in-use',
          `Unit file '${file}' is damaged and a stage of this site still reads it; it is replaced once that stage is done (a new plan, or reload the other tab).`,
          { cause: err },
        );
      throw err;
    }
    return unit;
  }

  /** The stored file's size, without reading it; null when the file is gone. */
  size(unit: OpfsUnit): Promise<number | null> {
    return opfsFileSize(this.root, unit);
  }

  read(unit: OpfsUnit): Promise<Uint8Array> {
    return readOpfsUnit(this.root, unit);
  }

  async remove(file: string): Promise<void> {
    try {
      await (await this.dir()).removeEntry(file);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async files(): Promise<string[]> {
    const out: string[] = [];
    for await (const name of (await this.dir()).keys()) out.push(name);
    return out;
  }
}
