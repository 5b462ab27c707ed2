/**
 * The profile's storage read on onnxruntime-web's wasm backend in Node (the page's ort-web.ts): the test
 * unit reaches the runtime as a stored value (a Blob here; OPFS files need a browser, see the e2e profile),
 * the runtime reads it as it reads a stage's units, and the emulated read cap holds there.
 */
import { describe, expect, it } from 'vitest';
import { createOrtWebRuntime } from '../runtime/ort-web.ts';
import type { UnitData } from '../../shards/runtime/unit-data.ts';
import { benchmarkStoredUnitRead, type TestUnitStore } from './stored-unit-read.ts';

/** A store that keeps the unit as a Blob and records what happened to it. */
function blobStore(): TestUnitStore & { stored: Uint8Array | null; removed: boolean } {
  const s = {
    kind: 'indexeddb' as const,
    stored: null as Uint8Array | null,
    removed: false,
    put: (bytes: Uint8Array<ArrayBuffer>): Promise<UnitData> => {
      s.stored = bytes.slice();
      return Promise.resolve(new Blob([bytes]));
    },
    remove: () => {
      s.removed = true;
      return Promise.resolve();
    },
  };
  return s;
}

describe('benchmarkStoredUnitRead', () => {
  const runtime = createOrtWebRuntime();

  it('times the runtime reading the stored unit, under the emulated cap, and removes the unit', async () => {
    const store = blobStore();
    const cap = 2 * 2 ** 20; // 2 MiB/s: 128 KiB take at least 62.5 ms
    const r = await benchmarkStoredUnitRead({
      runtime,
      backend: 'wasm',
      store,
      dim: 128,
      layers: 2,
      runs: 3,
      readCapBytesPerSec: cap,
    });
    expect(r.store).toBe('indexeddb');
    expect(r.bytes).toBe(128 * 128 * 4 * 2);
    expect(store.stored?.byteLength).toBe(r.bytes);
    expect(r.readSeconds).toBeGreaterThanOrEqual(r.bytes / cap - 0.002);
    expect(r.readBytesPerSec).toBeLessThanOrEqual(cap * 1.05);
    expect(r.createSeconds).toHaveLength(3);
    expect(r.writeBytesPerSec).toBeGreaterThan(0);
    expect(store.removed).toBe(true);
  });

  it('refuses a value the runtime does not read (bytes already in memory) and still removes it', async () => {
    const store = blobStore();
    const inMemory: TestUnitStore = { ...store, put: (bytes) => Promise.resolve(bytes) };
    await expect(
      benchmarkStoredUnitRead({ runtime, backend: 'wasm', store: inMemory, dim: 64, layers: 1, runs: 1 }),
    ).rejects.toMatchObject({ code: 'storage-bench-unmeasured' });
    expect(store.removed).toBe(true);
  });
});
