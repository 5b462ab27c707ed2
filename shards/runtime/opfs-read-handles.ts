/**
 * Read-only OPFS sync access handles kept open for a prepared stage's units, so that its cold start reads
 * bytes and nothing else. Each handle is a round trip to the browser process to open (a folder lookup, a
 * file lookup, the handle itself), and in a cold request on the lab's 0.4-core devices those round trips
 * took 20-135 ms per unit, queued behind one another, while the reads themselves took 1.5-5 ms per 3.5 MB
 * unit: most of a stage's storage read. A stage opens its units' handles when it is prepared (its units
 * are stored: stage-peer.ts `prepareLoad`), before any request, on the thread that will read them (a
 * handle cannot move: StageRuntime.keepFiles), and closes them when it is disposed.
 *
 * Handles are shared per file and counted: a stage kept aside for a failover and its successor may hold
 * the same unit. A read-only handle takes a shared lock: other pages of the origin read the file too, but
 * none can rewrite or remove it while it is held. The cache never rewrites a good stored unit (its name is
 * its content's hash), refuses to take back a damaged one it cannot rewrite (client/cache/opfs-units.ts),
 * and its removals leave a locked file for a later sweep (client/cache/shard-cache.ts).
 *
 * Sync access handles exist only in dedicated workers: elsewhere nothing is kept and reads go the usual way.
 */
import { readWholeFile, unitFileHandle, type OpfsDirectory, type OpfsSyncHandle, type OpfsUnit } from './opfs-file.ts';

/** Unit files kept open for someone: those that opened, and how to let them go. */
export interface KeptFiles {
  open: OpfsUnit[];
  release: () => void;
}

/** Keeps nothing (where no file can be kept open). */
export const NOTHING_KEPT: KeptFiles = { open: [], release: () => undefined };

interface Kept {
  key: string;
  /** the open handle; null when it could not be opened (the read then goes the usual way) */
  handle: Promise<OpfsSyncHandle | null>;
  holders: number;
}

const keyOf = (unit: OpfsUnit) => `${unit.dir}/${unit.file}`;

export class KeptReadHandles {
  private readonly kept = new Map<string, Kept>();

  /**
   * Opens (or shares) a read-only handle on each unit's file; resolves when they are all open or have
   * failed (a unit that cannot be opened is simply not kept), with the units now open and a function that
   * lets them go (once).
   */
  async keep(root: () => Promise<OpfsDirectory>, units: readonly OpfsUnit[]): Promise<KeptFiles> {
    const held: Kept[] = [];
    for (const unit of units) {
      const key = keyOf(unit);
      let k = this.kept.get(key);
      if (!k) {
        const entry: Kept = { key, handle: openReadOnly(root, unit), holders: 0 };
        this.kept.set(key, entry);
        // a file that would not open is not kept: the next keep tries again
        void entry.handle.then((h) => {
          if (h === null && this.kept.get(key) === entry) this.kept.delete(key);
        });
        k = entry;
      }
      k.holders += 1;
      held.push(k);
    }
    const handles = await Promise.all(held.map((k) => k.handle));
    const open = units.filter((_, i) => handles[i] !== null);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const k of held) this.letGo(k, false);
    };
    return { open, release };
  }

  /**
   * The unit's bytes through its kept handle; null when none is kept for it, or when the kept file is not
   * the unit's size or cannot be read (that handle is then closed, and the caller's usual read reports
   * what is wrong with the file).
   */
  async read(unit: OpfsUnit): Promise<Uint8Array | null> {
    const k = this.kept.get(keyOf(unit));
    const handle = await k?.handle;
    if (!k || !handle) return null;
    try {
      if (handle.getSize() === unit.bytes) {
        const bytes = readWholeFile(handle);
        if (bytes.byteLength === unit.bytes) return bytes;
      }
    } catch {
      // closed under us or unreadable: the usual read decides
    }
    this.letGo(k, true);
    return null;
  }

  /** Files with a handle kept now (for tests and the page's diagnostics). */
  get size(): number {
    return this.kept.size;
  }

  /** One holder lets go (or, for a bad file, all of them): the last closes the handle. */
  private letGo(k: Kept, all: boolean): void {
    if (k.holders <= 0) return; // closed already
    k.holders = all ? 0 : k.holders - 1;
    if (k.holders > 0) return;
    if (this.kept.get(k.key) === k) this.kept.delete(k.key);
    void k.handle.then((h) => h?.close());
  }
}

async function openReadOnly(root: () => Promise<OpfsDirectory>, unit: OpfsUnit): Promise<OpfsSyncHandle | null> {
  try {
    const file = await unitFileHandle(root, unit);
    return file.createSyncAccessHandle ? await file.createSyncAccessHandle({ mode: 'read-only' }) : null;
  } catch {
    return null; // gone, locked by a writer, or no sync handles here: the read goes the usual way
  }
}

/** This thread's kept handles: the stages prepared here keep theirs, the runtime's reads look here first. */
export const threadReadHandles = new KeptReadHandles();
