/** Entry of the inference worker's unit reader thread (unit-read-thread.ts). */
import { serveUnitReads, type UnitReadPort, type UnitReadReply, type UnitReadRequest } from './unit-read-thread.ts';

serveUnitReads(globalThis as unknown as UnitReadPort<UnitReadReply, UnitReadRequest>);
