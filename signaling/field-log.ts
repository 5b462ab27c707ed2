/**
 * Field measurements: every profile a page reports is appended to a JSON-lines file, one record per
 * line, and can be downloaded as JSON or CSV (`/api/field-log.json`, `/api/field-log.csv`) by anyone
 * who can reach the server. So a record holds nothing that reaches a session or a person: no join code,
 * no peer id, no secret, no display name; only what the page measured, its user agent, the time, and
 * a random `pageKey` (made at join, used for nothing else) that tells one page's records apart.
 * Failover records (docs/failover.md) follow the same rule: page keys, times, the repair's mode and
 * outcome; no peer id, name or text.
 *
 * Bounded: the file rotates to `<file>.1` at `maxBytes` (so disk use stays under 2x that); downloads
 * stream line by line (never the whole file in memory) and at most `maxDownloads` run at once.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { z } from 'zod';
import { lossReasonSchema, profileReportSchema, type ProfileReport } from '../core/protocol.ts';
import { omit } from './omit.ts';

/** Rotate the file past this size. */
export const FIELD_LOG_MAX_BYTES = 16 * 1024 * 1024;
export const FIELD_LOG_MAX_DOWNLOADS = 2;

/** The profile as logged: the page's device name is left out (it may be the user's display name). */
export type LoggedProfile = Omit<ProfileReport, 'name'>;
const loggedProfileSchema = profileReportSchema.omit({ name: true });

/** One profile line of the log. */
export interface ProfileRecord {
  receivedAtMs: number;
  /** Random per page (16 hex digits), unrelated to its peer id. */
  pageKey: string;
  profile: LoggedProfile;
}

const pageKeySchema = z.string().regex(/^[0-9a-f]{16}$/);
/** One failover (a loss during a request and what became of it), anonymised. */
export const failoverRecordSchema = z.strictObject({
  receivedAtMs: z.number(),
  event: z.literal('failover'),
  /** 1 for the request's first loss, 2 for a loss during the first continuation, ... */
  attempt: z.int().min(1),
  reason: lossReasonSchema,
  /** Page keys of the lost pages and of the pages of the repaired pipeline. */
  lostPageKeys: z.array(pageKeySchema),
  repairPageKeys: z.array(pageKeySchema),
  mode: z.enum(['range', 'whole']).nullable(),
  /** Tokens replayed (prompt + generated before the loss). */
  replayTokens: z.int().min(0),
  /** Tokens generated before the loss. */
  tokensBefore: z.int().min(0),
  predictedResumeSec: z.number().nullable(),
  /** Loss detected -> first token of the continuation, ms (null unless recovered). */
  detectedToResumedMs: z.number().nullable(),
  outcome: z.enum(['recovered', 'impossible', 'timed-out', 'lost-again', 'cancelled', 'ended']),
});
export type FailoverRecord = z.infer<typeof failoverRecordSchema>;

/** One line of the log. */
export type FieldRecord = ProfileRecord | FailoverRecord;

/**
 * The public form of one stored line, or null. Only the known fields are copied out, so a line
 * written by an older server (which logged session codes and peer ids) is published without them.
 */
export function publicRecord(line: string): FieldRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null; // a torn line from a crash
  }
  if (typeof raw !== 'object' || raw === null) return null;
  if ((raw as { event?: unknown }).event === 'failover') {
    const failover = failoverRecordSchema.safeParse(raw);
    return failover.success ? failover.data : null;
  }
  const r = raw as { receivedAtMs?: unknown; pageKey?: unknown; profile?: unknown };
  if (typeof r.receivedAtMs !== 'number' || typeof r.profile !== 'object' || r.profile === null) return null;
  const profile = loggedProfileSchema.safeParse(omit(r.profile as Record<string, unknown>, 'name'));
  if (!profile.success) return null;
  const pageKey = typeof r.pageKey === 'string' && /^[0-9a-f]{16}$/.test(r.pageKey) ? r.pageKey : '';
  return { receivedAtMs: r.receivedAtMs, pageKey, profile: profile.data };
}

export class FieldLog {
  private chain: Promise<void> = Promise.resolve();
  private bytes = -1;
  private downloads = 0;

  constructor(
    readonly file: string,
    private readonly maxBytes = FIELD_LOG_MAX_BYTES,
    private readonly maxDownloads = FIELD_LOG_MAX_DOWNLOADS,
  ) {}

  get rotatedFile(): string {
    return `${this.file}.1`;
  }

  /** Queue one record; appends are serialised so lines never interleave. */
  append(record: FieldRecord): Promise<void> {
    const line = JSON.stringify(record) + '\n';
    const size = Buffer.byteLength(line);
    this.chain = this.chain
      .then(async () => {
        if (this.bytes < 0) {
          await mkdir(path.dirname(this.file), { recursive: true });
          this.bytes = (await stat(this.file).catch(() => null))?.size ?? 0;
        }
        if (this.bytes > 0 && this.bytes + size > this.maxBytes) {
          await rename(this.file, this.rotatedFile);
          this.bytes = 0;
        }
        await appendFile(this.file, line);
        this.bytes += size;
      })
      .catch((error: unknown) => {
        console.warn(`field log: cannot append to ${this.file}: ${(error as Error).message}`);
      });
    return this.chain;
  }

  /** Waits for queued appends (tests, shutdown). */
  flush(): Promise<void> {
    return this.chain;
  }

  /** Claims a download slot; false when `maxDownloads` already run (answer 503). Release with `endDownload`. */
  beginDownload(): boolean {
    if (this.downloads >= this.maxDownloads) return false;
    this.downloads += 1;
    return true;
  }

  endDownload(): void {
    this.downloads = Math.max(0, this.downloads - 1);
  }

  /** Every public record, oldest first (the rotated file, then the current one), one at a time. */
  async *records(): AsyncGenerator<FieldRecord> {
    await this.chain;
    for (const file of [this.rotatedFile, this.file]) {
      const input = createReadStream(file, { encoding: 'utf8' });
      const opened = await new Promise<boolean>((resolve) => {
        input.once('open', () => resolve(true));
        input.once('error', () => resolve(false));
      });
      if (!opened) continue;
      const lines = createInterface({ input, crlfDelay: Infinity });
      try {
        for await (const line of lines) {
          if (line.trim() === '') continue;
          const record = publicRecord(line);
          if (record) yield record;
        }
      } finally {
        lines.close();
        input.destroy();
      }
    }
  }

  /** Every public record in memory (tests; downloads use `writeJson` / `writeCsv`). */
  async readAll(): Promise<FieldRecord[]> {
    const out: FieldRecord[] = [];
    for await (const r of this.records()) out.push(r);
    return out;
  }

  /** Streams the records as one JSON array to `out`, honouring back-pressure; stops when `gone` aborts. */
  async writeJson(out: Writable, gone: AbortSignal): Promise<void> {
    let first = true;
    await write(out, '[', gone);
    for await (const r of this.records()) {
      await write(out, (first ? '\n' : ',\n') + JSON.stringify(r), gone);
      first = false;
    }
    await write(out, '\n]\n', gone);
  }

  /** Streams the profile records as CSV to `out` (failover records are in the JSON download only). */
  async writeCsv(out: Writable, gone: AbortSignal): Promise<void> {
    await write(out, CSV_COLUMNS.join(',') + '\n', gone);
    for await (const r of this.records()) if (!('event' in r)) await write(out, csvRow(r) + '\n', gone);
  }
}

/** Writes and waits for 'drain' when the stream's buffer is full; rejects once the reader went away (`gone`). */
async function write(out: Writable, text: string, gone: AbortSignal): Promise<void> {
  if (gone.aborted) throw new Error('the download was closed by the client');
  if (!out.write(text)) await once(out, 'drain', { signal: gone });
}

export const CSV_COLUMNS = [
  'receivedAt',
  'pageKey',
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

/** What a CSV cell holds: a profile's figures, flags and texts (null/undefined = empty cell). */
type CsvValue = string | number | boolean | null | undefined;

function csvCell(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV row; the sweep is `tokens|size:flops` pairs joined by ';'. */
export function csvRow(r: ProfileRecord): string {
  const p = r.profile;
  const row: Record<(typeof CSV_COLUMNS)[number], CsvValue> = {
    receivedAt: new Date(r.receivedAtMs).toISOString(),
    pageKey: r.pageKey,
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
    gpuMaxBufferSize: p.gpu?.limits['maxBufferSize'],
    gpuShaderF16: p.gpu ? p.gpu.features.includes('shader-f16') : undefined,
    sweep: p.sweep.map((s) => `${s.tokens ?? s.size}:${s.flops}`).join(';'),
    userAgent: p.userAgent,
  };
  return CSV_COLUMNS.map((c) => csvCell(row[c])).join(',');
}
