/**
 * Reading a model package from a folder in Node: the manifest (validated) and unit blobs verified
 * against their SHA-256 (TandemError 'shard-hash-mismatch' / 'shard-truncated' on tamper or truncation).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TandemError } from '../core/errors.ts';
import { getUnit, parseManifest, verifyUnit, type ModelManifest, type UnitEntry } from './manifest.ts';

export class PackageReader {
  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
  ) {}

  /** Open the package in `dir` (reads and validates manifest.json). */
  static open(dir: string): PackageReader {
    const path = join(dir, 'manifest.json');
    if (!existsSync(path)) {
      throw new TandemError(
        'package-missing',
        `No manifest.json in ${dir}; build a package with \`npm run shards -- convert <checkpoint> --out ${dir}\`.`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (cause) {
      throw new TandemError('manifest-invalid', `${path} is not valid JSON: ${(cause as Error).message}`, { cause });
    }
    return new PackageReader(dir, parseManifest(json));
  }

  /** The bytes of a unit, verified against the manifest's size and SHA-256. */
  async readUnit(unit: UnitEntry | string): Promise<Uint8Array> {
    const entry = typeof unit === 'string' ? getUnit(this.manifest, unit) : unit;
    const path = join(this.dir, entry.file);
    if (!existsSync(path))
      throw new TandemError('shard-missing', `Unit '${entry.id}' file ${path} is missing; re-convert the package.`);
    const buf = readFileSync(path);
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    await verifyUnit(entry, bytes);
    return bytes;
  }

  /** Read and verify every unit (e.g. after a download or before serving). */
  async verifyAll(): Promise<void> {
    for (const u of this.manifest.units) await this.readUnit(u);
  }

  /** Path of a tokenizer or unit file inside the package. */
  path(file: string): string {
    return join(this.dir, file);
  }
}
