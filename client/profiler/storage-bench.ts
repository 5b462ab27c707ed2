/**
 * IndexedDB read-speed benchmark: writes a test blob with idb-keyval in the same form the shard cache
 * stores units (a Uint8Array value), reads it back several times and reports bytes/s of the median
 * read. The blob is deleted afterwards. A storage read cap from ?emulate= stretches each timed read.
 */
import { createStore, del, get, set, type UseStore } from 'idb-keyval';
import { TandemError } from '../../core/errors.ts';
import { rateStretch, type Emulation } from './emulation.ts';
import { median, sleepSeconds } from './timing.ts';

export interface StorageBenchResult {
  bytes: number;
  /** median read seconds (emulation included) */
  readSeconds: number;
  readBytesPerSec: number;
  writeBytesPerSec: number;
  runs: number;
  method: string;
}

const KEY = 'tandem-profiler-test-blob';

export async function benchmarkStorage(options: {
  bytes: number;
  runs: number;
  emulation: Emulation | null;
  store?: UseStore;
}): Promise<StorageBenchResult> {
  const store = options.store ?? createStore('tandem-profiler', 'scratch');
  const data = new Uint8Array(options.bytes);
  // incompressible-ish content so no layer can shortcut it
  let s = 0x9e3779b9;
  const words = new Uint32Array(data.buffer, 0, Math.floor(data.byteLength / 4));
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  try {
    const w0 = performance.now();
    await set(KEY, data, store);
    const writeSeconds = (performance.now() - w0) / 1000;
    const times: number[] = [];
    for (let r = 0; r < options.runs; r++) {
      const t0 = performance.now();
      const back = await get<Uint8Array>(KEY, store);
      if (
        !(back instanceof Uint8Array) ||
        back.byteLength !== data.byteLength ||
        back[back.byteLength - 1] !== data[data.byteLength - 1]
      ) {
        throw new TandemError(
          'storage-unreliable',
          'IndexedDB returned different bytes than were written; storage on this browser is unreliable (private mode or a full disk?).',
        );
      }
      await sleepSeconds(
        rateStretch(options.emulation?.readBytesPerSecCap, data.byteLength, (performance.now() - t0) / 1000),
      );
      times.push((performance.now() - t0) / 1000);
    }
    const readSeconds = median(times);
    return {
      bytes: data.byteLength,
      readSeconds,
      readBytesPerSec: data.byteLength / readSeconds,
      writeBytesPerSec: data.byteLength / writeSeconds,
      runs: options.runs,
      method: `idb-keyval set/get of a ${(data.byteLength / 2 ** 20).toFixed(0)} MiB Uint8Array; median of ${options.runs} reads`,
    };
  } catch (cause) {
    if (cause instanceof TandemError) throw cause;
    const name = (cause as { name?: string } | null)?.name;
    if (name === 'QuotaExceededError') {
      throw new TandemError(
        'quota-exceeded',
        'The browser refused to store the storage test blob (quota exceeded); free some space or leave private browsing.',
        { cause },
      );
    }
    throw new TandemError(
      'storage-unavailable',
      `IndexedDB is not usable here (${String(cause)}); private browsing modes often block it.`,
      { cause },
    );
  } finally {
    await del(KEY, store).catch(() => undefined);
  }
}
