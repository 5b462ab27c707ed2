/**
 * `npm run bench:storage [-- --runs 3 --incognito --out FILE]`: how fast a page gets unit bytes back from each
 * browser store, in headless Chromium (persistent profile, warm OS cache; with --incognito an off-the-record
 * context, whose stores live in memory, as the e2e pages' do), for a demo-shaped package:
 * 24 units of 2.6 MB + 2 of 77.8 MB, all read at once as a stage does. Stores:
 *   idb-u8     IndexedDB, Uint8Array values (what the shard cache stored before)
 *   idb-blob   IndexedDB, Blob values, read with blob.arrayBuffer() (what it stores now)
 *   opfs       Origin Private File System, file.arrayBuffer()
 *   opfs-sync  OPFS sync access handles read in a dedicated worker, buffers transferred to the page
 *   cache      Cache Storage, response.arrayBuffer()
 * Median MB/s (10^6 B/s) of `runs` reads after one dropped warm read, and the CPU seconds the browser's
 * processes spent per GB read (what a read costs a device whose CPU is the limit). Saves
 * bench/results/storage.json.
 * No network: the page is served from 127.0.0.1 (a secure context for OPFS and Cache Storage).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumArgs, ensureChromium } from './browser.ts';
import { processCpuSec } from './lab-cpu.ts';
import { integerOption, parseCliArgs, runCliIfEntryPoint } from '../core/cli.ts';

const PAGE = `<!doctype html><meta charset="utf-8"><title>storage bench</title><script>
const SYNC_WORKER = URL.createObjectURL(new Blob([\`
onmessage = async (e) => {
  const dir = await navigator.storage.getDirectory();
  const out = [];
  for (const name of e.data) {
    const h = await (await dir.getFileHandle(name)).createSyncAccessHandle();
    const buf = new ArrayBuffer(h.getSize());
    h.read(new Uint8Array(buf), { at: 0 });
    h.close();
    out.push(buf);
  }
  postMessage(out, out);
};\`], { type: 'text/javascript' }));
const idb = () => new Promise((res, rej) => { const r = indexedDB.open('bench', 1); r.onupgradeneeded = () => r.result.createObjectStore('u'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
const tx = (db, mode, f) => new Promise((res, rej) => { const t = db.transaction('u', mode); const out = f(t.objectStore('u')); t.oncomplete = () => res(out); t.onerror = () => rej(t.error); });
const get = (db, k) => new Promise((res, rej) => { const r = db.transaction('u').objectStore('u').get(k); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
window.writeAll = async (sizes) => {
  const db = await idb();
  const dir = await navigator.storage.getDirectory();
  const cache = await caches.open('bench');
  for (let i = 0; i < sizes.length; i++) {
    const bytes = new Uint8Array(sizes[i]);
    for (let j = 0; j < bytes.length; j += 4096) bytes[j] = (i + j) & 255;
    await tx(db, 'readwrite', (s) => { s.put(bytes, 'u8-' + i); s.put(new Blob([bytes]), 'blob-' + i); });
    const w = await (await dir.getFileHandle('unit-' + i, { create: true })).createWritable();
    await w.write(bytes); await w.close();
    await cache.put('/unit-' + i, new Response(bytes));
  }
  db.close();
};
window.readAll = async (store, n) => {
  const t0 = performance.now();
  let bytes = 0;
  const names = Array.from({ length: n }, (_, i) => i);
  if (store === 'idb-u8' || store === 'idb-blob') {
    const db = await idb();
    const vals = await Promise.all(names.map(async (i) => {
      const v = await get(db, (store === 'idb-u8' ? 'u8-' : 'blob-') + i);
      return v instanceof Blob ? new Uint8Array(await v.arrayBuffer()) : v;
    }));
    db.close();
    bytes = vals.reduce((a, v) => a + v.byteLength, 0);
  } else if (store === 'opfs') {
    const dir = await navigator.storage.getDirectory();
    const vals = await Promise.all(names.map(async (i) => (await (await dir.getFileHandle('unit-' + i)).getFile()).arrayBuffer()));
    bytes = vals.reduce((a, v) => a + v.byteLength, 0);
  } else if (store === 'opfs-sync') {
    const w = new Worker(SYNC_WORKER);
    const vals = await new Promise((res) => { w.onmessage = (e) => res(e.data); w.postMessage(names.map((i) => 'unit-' + i)); });
    w.terminate();
    bytes = vals.reduce((a, v) => a + v.byteLength, 0);
  } else if (store === 'cache') {
    const cache = await caches.open('bench');
    const vals = await Promise.all(names.map(async (i) => (await cache.match('/unit-' + i)).arrayBuffer()));
    bytes = vals.reduce((a, v) => a + v.byteLength, 0);
  }
  return { bytes, ms: performance.now() - t0 };
};
</script>`;

const STORES = ['idb-u8', 'idb-blob', 'opfs', 'opfs-sync', 'cache'] as const;

/**
 * CPU seconds used so far by every process of the browser whose command line holds `marker` and by their
 * descendants (renderer, GPU, storage and network services): a read's cost on a device whose CPU is the
 * limit (a phone, a lab device held to a share of a core) is its CPU, not its wall time on this machine's
 * idle cores.
 */
function browserCpuSec(marker: string): number {
  const procs: { pid: string; ppid: string; cpuSec: number; marked: boolean }[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      const marked = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
      procs.push({ pid, ppid, cpuSec: processCpuSec(stat), marked });
    } catch {
      // the process exited between listing and reading
    }
  }
  const inTree = new Set(procs.filter((p) => p.marked).map((p) => p.pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs)
      if (!inTree.has(p.pid) && inTree.has(p.ppid)) {
        inTree.add(p.pid);
        grew = true;
      }
  }
  return procs.reduce((sum, p) => sum + (inTree.has(p.pid) ? p.cpuSec : 0), 0);
}

const USAGE = `usage: npm run bench:storage -- [--runs N] [--incognito] [--out FILE]
  --runs N     measured reads per store, after one dropped warm read (default 3)
  --incognito  an off-the-record browser context (stores in memory), as Playwright's default contexts
  --out FILE   where the JSON goes (default bench/results/storage.json)
  --help       this text`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '3' },
      incognito: { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench/results/storage.json' },
    },
  });
  const runs = integerOption(values.runs, '--runs', 1, 100);
  const sizes = [...Array.from({ length: 24 }, () => 2_560_000), 77_800_000, 77_800_000];
  const total = sizes.reduce((a, b) => a + b, 0);
  const server = createServer((_, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const profile = mkdtempSync(join(tmpdir(), 'tandem-storage-bench-'));
  const incognito = values.incognito;
  // an off-the-record context's browser is found by a switch of its own (its profile is Playwright's)
  const marker = incognito ? `--tandem-storage-bench=${profile}` : profile;
  const launch = { executablePath: ensureChromium().path, headless: true, args: chromiumArgs({ webgpu: false }) };
  const ctx = incognito
    ? await (await chromium.launch({ ...launch, args: [...launch.args, marker] })).newContext()
    : await chromium.launchPersistentContext(profile, launch);
  const rows: { store: string; readMBps: number; cpuSecPerGB: number; samplesMs: number[] }[] = [];
  try {
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.evaluate((s) => (window as unknown as { writeAll(s: number[]): Promise<void> }).writeAll(s), sizes);
    for (const store of STORES) {
      const ms: number[] = [];
      let cpuSec = 0;
      for (let r = 0; r <= runs; r++) {
        const cpu0 = browserCpuSec(marker);
        const res = await page.evaluate(
          ([s, n]) =>
            (window as unknown as { readAll(s: string, n: number): Promise<{ bytes: number; ms: number }> }).readAll(
              s as string,
              n,
            ),
          [store, sizes.length] as const,
        );
        if (res.bytes !== total) throw new Error(`${store} read ${res.bytes} bytes, wrote ${total}`);
        if (r > 0) {
          ms.push(res.ms); // the first read is dropped (cold caches)
          cpuSec += browserCpuSec(marker) - cpu0;
        }
      }
      const med = [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)];
      const cpuSecPerGB = cpuSec / ms.length / (total / 1e9);
      rows.push({ store, readMBps: total / 1e6 / (med / 1000), cpuSecPerGB, samplesMs: ms });
      console.log(
        `${store.padEnd(10)} ${(total / 1e6 / (med / 1000)).toFixed(0).padStart(6)} MB/s  ${cpuSecPerGB.toFixed(2).padStart(6)} CPU-s/GB  (median of ${ms.length}: ${ms.map((x) => x.toFixed(0)).join(', ')} ms)`,
      );
    }
  } finally {
    await ctx.close();
    await ctx.browser()?.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
  const out = resolve(values.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        benchmark: 'storage',
        at: new Date().toISOString(),
        loadavg: loadavg(),
        bytes: total,
        units: sizes.length,
        rows,
        context: incognito ? 'incognito' : 'persistent',
        method:
          "headless Chromium, all units read at once (Promise.all) into ArrayBuffers; median of runs after one dropped read; CPU = utime + stime of all the browser's processes (/proc) over the measured reads, per GB read",
      },
      null,
      1,
    ) + '\n',
  );
  console.log(`saved ${out}`);
  return 0;
}

runCliIfEntryPoint(import.meta.url, { program: 'bench:storage', usage: USAGE, main });
