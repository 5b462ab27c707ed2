/**
 * Model packages over HTTP: `GET /models/<name>/<file>` and `GET /api/models`.
 *
 * Only files the package's manifest names are served (manifest.json, unit blobs, tokenizer files), so
 * no request can reach a path outside the package folder, whatever its encoding. Strong ETags (the
 * unit's SHA-256 from the manifest, or a hash computed at load), single-range `Range` requests,
 * `If-None-Match` and `If-Range`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { TandemError } from '../core/errors.ts';
import { parseManifest, type ModelManifest } from '../shards/manifest.ts';

interface ServedFile {
  absPath: string;
  etag: string;
  contentType: string;
}

export interface ModelPackage {
  name: string;
  dir: string;
  manifest: ModelManifest;
  files: Map<string, ServedFile>;
  totalBytes: number;
}

const PLAIN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

async function sha256File(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/** Reads and validates a package folder; throws TandemError('model-package-invalid') with the reason. */
export async function loadModelPackage(dir: string): Promise<ModelPackage> {
  const absDir = path.resolve(dir);
  const manifestPath = path.join(absDir, 'manifest.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    throw new TandemError(
      'model-package-invalid',
      `cannot read ${manifestPath}: ${(error as Error).message}. Pass --model <folder holding manifest.json>.`,
      { cause: error },
    );
  }
  const manifest = parseManifest(json);
  const files = new Map<string, ServedFile>();
  files.set('manifest.json', {
    absPath: manifestPath,
    etag: `"${await sha256File(manifestPath)}"`,
    contentType: 'application/json',
  });
  let totalBytes = 0;
  for (const unit of manifest.units) {
    const absPath = path.join(absDir, unit.file);
    const info = await stat(absPath).catch(() => null);
    if (!info || info.size !== unit.bytes)
      throw new TandemError(
        'model-package-invalid',
        `unit ${unit.id}: ${absPath} is ${info ? `${info.size} bytes, the manifest says ${unit.bytes}` : 'missing'}. Re-create the package.`,
      );
    files.set(unit.file, { absPath, etag: `"${unit.sha256}"`, contentType: 'application/octet-stream' });
    totalBytes += unit.bytes;
  }
  for (const file of manifest.tokenizer.files) {
    const absPath = path.join(absDir, file);
    const etag = await sha256File(absPath).catch(() => null);
    if (etag === null)
      throw new TandemError('model-package-invalid', `tokenizer file ${absPath} is missing. Re-create the package.`);
    files.set(file, {
      absPath,
      etag: `"${etag}"`,
      contentType: file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    });
  }
  for (const name of files.keys())
    if (!PLAIN_NAME.test(name))
      throw new TandemError('model-package-invalid', `file name '${name}' in ${manifestPath} is not a plain file name`);
  return { name: manifest.name, dir: absDir, manifest, files, totalBytes };
}

export type ByteRange = { start: number; end: number }; // inclusive end, as in Content-Range

/**
 * Parses a Range header against a file size: a range, 'unsatisfiable', or null to send the whole
 * file (no header, several ranges, or a unit other than bytes).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return null;
  const [, first, last] = match;
  if (first === '' && last === '') return null;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return 'unsatisfiable';
  return { start, end };
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

export class ModelRoute {
  private readonly packages = new Map<string, ModelPackage>();

  constructor(packages: ModelPackage[]) {
    for (const p of packages) this.packages.set(p.name, p);
  }

  list(): {
    name: string;
    architecture: string;
    dtype: string;
    layers: number;
    totalBytes: number;
    manifestUrl: string;
  }[] {
    return [...this.packages.values()].map((p) => ({
      name: p.name,
      architecture: p.manifest.architecture,
      dtype: p.manifest.dtype,
      layers: p.manifest.config.num_hidden_layers,
      totalBytes: p.totalBytes,
      manifestUrl: `/models/${encodeURIComponent(p.name)}/manifest.json`,
    }));
  }

  /** Handles `/models/...` (rawPath is the URL path without the query, still percent-encoded). */
  async serve(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendText(res, 405, 'model packages are read-only: use GET or HEAD');
      return;
    }
    const segments = rawPath.replace(/^\/models\//, '').split('/');
    let decoded: string[];
    try {
      decoded = segments.map((s) => decodeURIComponent(s));
    } catch {
      sendText(res, 400, 'bad percent-encoding in the path');
      return;
    }
    // Exactly /models/<package>/<file>, both plain names: no '..', no separators, no NUL, whatever the encoding.
    if (decoded.length !== 2 || !decoded.every((s) => PLAIN_NAME.test(s))) {
      sendText(res, 404, 'not found: use /models/<package>/<file listed in its manifest>');
      return;
    }
    const [name, fileName] = decoded;
    const pkg = this.packages.get(name);
    const file = pkg?.files.get(fileName);
    if (!pkg || !file) {
      sendText(res, 404, `not found: no file '${fileName}' in package '${name}'`);
      return;
    }
    // Defence in depth: the file must sit directly in the package folder, also after symlinks are resolved.
    if (path.dirname(file.absPath) !== pkg.dir) {
      sendText(res, 404, 'not found');
      return;
    }
    const [realFile, realDir] = await Promise.all([
      realpath(file.absPath).catch(() => null),
      realpath(pkg.dir).catch(() => null),
    ]);
    if (realFile === null || realDir === null || path.dirname(realFile) !== realDir) {
      sendText(res, 404, 'not found');
      return;
    }

    const info = await stat(file.absPath).catch(() => null);
    if (!info) {
      sendText(res, 404, `the file of '${fileName}' disappeared from the package folder: restart the server`);
      return;
    }
    const size = info.size;
    const headers: Record<string, string | number> = {
      ETag: file.etag,
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-cache',
      'Content-Type': file.contentType,
    };
    const inm = req.headers['if-none-match'];
    if (inm && inm.split(',').some((t) => t.trim() === file.etag || t.trim() === '*')) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const ifRange = req.headers['if-range'];
    let range = parseRange(req.headers.range, size);
    if (ifRange !== undefined && ifRange !== file.etag) range = null;
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      res.end();
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    const length = size === 0 ? 0 : end - start + 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    headers['Content-Length'] = length;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    const stream = createReadStream(file.absPath, { start, end });
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  }
}
