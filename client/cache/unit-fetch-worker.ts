/**
 * Entry of the page's download worker (started by worker-unit-fetcher.ts): each unit's download, SHA-256
 * check and OPFS write happen here, off the main thread (unit-fetch.ts says why).
 */
import { opfsRoot } from '../../shards/runtime/opfs-file.ts';
import { OpfsUnits } from './opfs-units.ts';
import { localUnitFetcher } from './unit-fetch.ts';
import { serveUnitFetches } from './unit-fetch-host.ts';
import type { UnitFetchMessage, UnitFetchPort, UnitFetchReply } from './unit-fetch-protocol.ts';

const root = opfsRoot();
serveUnitFetches(
  globalThis as unknown as UnitFetchPort<UnitFetchReply, UnitFetchMessage>,
  localUnitFetcher({ opfs: root ? new OpfsUnits(root) : null }),
);
