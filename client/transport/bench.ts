/**
 * Frame codec and link-layer figures in Node: encode + reassemble throughput of hidden-state frames
 * (decode-step, prefill and large prefill sizes, float32 and float16 on the wire), and one-way delivery
 * through the loopback transport (FrameLink: send queue, back-pressure, strict reassembly).
 * Medians of timed repetitions after warm-up runs. Writes bench/results/frame-codec.json.
 *
 *   npx tsx client/transport/bench.ts [--reps 15]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { encodeFrame, FrameAssembler, frameToFloat32, hiddenFrame, type Frame } from '../../core/frame-codec.ts';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';

const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 15;
const WARMUP = 3;
const H = 1024; // Qwen3-0.6B hidden size

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(fn: () => unknown): Promise<number> {
  // fn may return a promise: awaited
  for (let i = 0; i < WARMUP; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

const rows: Record<string, unknown>[] = [];
for (const tokens of [1, 128, 1024]) {
  const data = new Float32Array(tokens * H).map((_, i) => Math.sin(i));
  for (const wire of ['float32', 'float16'] as const) {
    let chunks = 0;
    let bytes = 0;
    const codecMs = await timeIt(() => {
      const msgs = encodeFrame(hiddenFrame(1, 0, data, [1, tokens, H], wire));
      chunks = msgs.length;
      bytes = msgs.reduce((s, m) => s + m.byteLength, 0);
      const asm = new FrameAssembler();
      let out: Frame | null = null;
      for (const m of msgs) out = asm.push(m) ?? out;
      return frameToFloat32(out!);
    });
    const net = new LoopbackNetwork();
    const a = net.createTransport('benchA');
    const b = net.createTransport('benchB');
    await a.connect('benchB');
    let resolveNext: (() => void) | null = null;
    b.onFrame(() => resolveNext?.());
    const loopbackMs = await timeIt(async () => {
      const got = new Promise<void>((r) => (resolveNext = r));
      await a.send('benchB', hiddenFrame(1, 0, data, [1, tokens, H], wire));
      await got;
    });
    a.close();
    b.close();
    const row = {
      tokens,
      hidden: H,
      wire,
      payloadBytes: data.byteLength / (wire === 'float16' ? 2 : 1),
      wireBytes: bytes,
      chunks,
      encodeDecodeMs: Number(codecMs.toFixed(3)),
      encodeDecodeMBps: Number((data.byteLength / 1e6 / (codecMs / 1000)).toFixed(1)),
      loopbackOneWayMs: Number(loopbackMs.toFixed(3)),
    };
    rows.push(row);
    console.log(
      `${String(tokens).padStart(5)} tokens x ${H} ${wire.padEnd(7)}  ${String(chunks).padStart(2)} chunk(s)  codec ${row.encodeDecodeMs.toFixed(3).padStart(8)} ms (${String(row.encodeDecodeMBps).padStart(7)} MB/s of fp32 states)  loopback one-way ${row.loopbackOneWayMs.toFixed(3).padStart(8)} ms`,
    );
  }
}

const result = {
  bench: 'frame-codec',
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  method: `median of ${REPS} runs after ${WARMUP} warm-up runs; codec = encodeFrame (<= 256 KiB chunks, header CRC) + FrameAssembler + frameToFloat32; loopback = LoopbackNetwork send -> onFrame (macrotask delivery, no bandwidth limit)`,
  rows,
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/frame-codec.json', JSON.stringify(result, null, 2) + '\n');
console.log('wrote bench/results/frame-codec.json');
