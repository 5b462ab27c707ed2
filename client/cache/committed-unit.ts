/**
 * A committed unit's stored value, looked up in one IndexedDB transaction (its commit record and its value
 * together), by the page's shard cache and by the inference worker that reads the unit for its stage.
 *
 * Why the worker looks units up itself: the stage's worker used to ask the main thread for each unit, so
 * every cold request put IndexedDB transactions and OPFS calls, and their callbacks, on the main thread
 * while the page was drawing the request's start (a cold request's longest task was once such a
 * callback). IndexedDB and the origin private file system are open to workers: the worker reads the
 * records itself and asks the main thread only for what it cannot settle alone (a unit missing, damaged or
 * stored in an older form: the cache drops and re-fetches those). On the lab's 0.4-core devices the
 * lookups of a stage's 4-5 units took 28-150 ms in the worker against 36-152 ms through the main thread
 * (two runs, load 1.5-2.7): storage round trips, not the main thread, set their time.
 */
import { createStore, getMany, type UseStore } from 'idb-keyval';
import type { UnitEntry } from '../../shards/manifest.ts';
import { isOpfsUnit, opfsRoot, type OpfsDirectory } from '../../shards/runtime/opfs-file.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';
import { blobKey, commitKey, commitMatches } from './bookkeeping.ts';
import { OpfsUnits } from './opfs-units.ts';

/** Where a shard cache keeps its records: an IndexedDB database and object store (idb-keyval's createStore). */
export interface UnitStoreLocation {
  db: string;
  store: string;
}

/** Whether a commit record vouches for the unit, and the value stored for it (whatever it is). */
export async function committedValue(
  store: UseStore,
  packageName: string,
  unit: UnitEntry,
): Promise<{ committed: boolean; value: unknown }> {
  const [record, value] = await getMany<unknown>(
    [commitKey(packageName, unit.sha256), blobKey(packageName, unit.sha256)],
    store,
  );
  return { committed: commitMatches(record, packageName, unit), value };
}

/**
 * What the runtime can read as it is: an OPFS file (its file's size checked) or a Blob of the unit's size,
 * under a commit record. null for anything else (no commit, a wrong size, a file gone, bytes stored by an
 * older version): the shard cache on the main thread settles those (an error, a drop and re-fetch).
 */
async function readableUnitData(
  unit: UnitEntry,
  found: { committed: boolean; value: unknown },
  opfs: OpfsUnits | null,
): Promise<UnitData | null> {
  if (!found.committed) return null;
  const v = found.value;
  if (isOpfsUnit(v)) return v.bytes === unit.bytes && opfs && (await opfs.size(v)) === unit.bytes ? v : null;
  if (typeof Blob === 'function' && v instanceof Blob) return v.size === unit.bytes ? v : null;
  return null;
}

/** The worker's lookup of `location`'s units: the unit's data, or null where the main thread must answer. */
export function committedUnitLookup(
  location: UnitStoreLocation,
  packageName: string,
  store: UseStore = createStore(location.db, location.store),
  root: (() => Promise<OpfsDirectory>) | null = opfsRoot(),
): (unit: UnitEntry) => Promise<UnitData | null> {
  const opfs = root ? new OpfsUnits(root) : null;
  return async (unit) => readableUnitData(unit, await committedValue(store, packageName, unit), opfs);
}
