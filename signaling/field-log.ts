/**
 * Field measurements: every profile a page reports is appended to a JSON-lines file, one record per
 * line, and can be downloaded as JSON or CSV (`/api/field-log.json`, `/api/field-log.csv`). A record
 * holds only what the page measured, its user agent, the time, and random session/peer ids.
 */
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FieldRecord } from './coordinator.ts';

/** Stop appending past this size (bounded disk use); the server keeps running. */
export const FIELD_LOG_MAX_BYTES = 64 * 1024 * 1024;

export class FieldLog {
  private chain: Promise<void> = Promise.resolve();
  private bytes = -1;
  private full = false;

  constructor(
    readonly file: string,
    private readonly maxBytes = FIELD_LOG_MAX_BYTES,
  ) {}

  /** Queue one record; appends are serialised so lines never interleave. */
  append(record: FieldRecord): Promise<void> {
    const line = JSON.stringify(record) + '\n';
    this.chain = this.chain.then(async () => {
      if (this.bytes < 0) {
        await mkdir(path.dirname(this.file), { recursive: true });
        this.bytes = (await stat(this.file).catch(() => null))?.size ?? 0;
      }
      if (this.bytes + line.length > this.maxBytes) {
        if (!this.full) console.warn(`field log ${this.file} reached ${this.maxBytes} bytes: new profiles are not logged`);
        this.full = true;
        return;
      }
      await appendFile(this.file, line);
      this.bytes += Buffer.byteLength(line);
    }).catch((error: unknown) => {
      console.warn(`field log: cannot append to ${this.file}: ${(error as Error).message}`);
    });
    return this.chain;
  }

  /** Every well-formed record (a torn last line is skipped). */
  async readAll(): Promise<FieldRecord[]> {
    await this.chain;
    const text = await readFile(this.file, 'utf8').catch(() => '');
    const records: FieldRecord[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        records.push(JSON.parse(line) as FieldRecord);
      } catch {
        // a partial line from a crash: skip it
      }
    }
    return records;
  }
}

export const CSV_COLUMNS = [
  'receivedAt',
  'sessionCode',
  'peerId',
  'name',
  'emulated',
  'backend',
  'peakFlops',
  'utilA',
  'utilB',
  'fitRmsError',
  'readBytesPerSec',
  'uplinkBitsPerSec',
  'downlinkBitsPerSec',
  'memoryBytes',
  'gpuVendor',
  'gpuArchitecture',
  'gpuIsFallback',
  'gpuMaxBufferSize',
  'gpuShaderF16',
  'sweep',
  'userAgent',
] as const;

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV with one row per profile; the sweep is `tokens|size:flops` pairs joined by ';'. */
export function fieldRecordsToCsv(records: readonly FieldRecord[]): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const r of records) {
    const p = r.profile;
    const row: Record<(typeof CSV_COLUMNS)[number], unknown> = {
      receivedAt: new Date(r.receivedAtMs).toISOString(),
      sessionCode: r.sessionCode,
      peerId: r.peerId,
      name: p.name,
      emulated: p.emulated,
      backend: p.backend,
      peakFlops: p.peakFlops,
      utilA: p.utilA,
      utilB: p.utilB,
      fitRmsError: p.fitRmsError,
      readBytesPerSec: p.readBytesPerSec,
      uplinkBitsPerSec: p.uplinkBitsPerSec,
      downlinkBitsPerSec: p.downlinkBitsPerSec,
      memoryBytes: p.memoryBytes,
      gpuVendor: p.gpu?.vendor,
      gpuArchitecture: p.gpu?.architecture,
      gpuIsFallback: p.gpu?.isFallbackAdapter,
      gpuMaxBufferSize: p.gpu?.limits.maxBufferSize,
      gpuShaderF16: p.gpu ? p.gpu.features.includes('shader-f16') : undefined,
      sweep: p.sweep.map((s) => `${s.tokens ?? s.size}:${s.flops}`).join(';'),
      userAgent: p.userAgent,
    };
    rows.push(CSV_COLUMNS.map((c) => csvCell(row[c])).join(','));
  }
  return rows.join('\n') + '\n';
}
