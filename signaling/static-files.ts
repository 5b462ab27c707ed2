/**
 * The built page (dist/client) over HTTP. Paths are decoded, normalised and must stay inside the
 * root, and so must the file they resolve to after symlinks (realpath); dot-files are never served. Unknown extension-less paths fall back to index.html (the page
 * reads its own URL parameters). Hashed Vite assets are cached for a year, everything else revalidates.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
  '.webmanifest': 'application/manifest+json',
};

export class StaticFiles {
  readonly root: string;
  private realRoot: Promise<string> | null = null;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Whether `file`, symlinks resolved, lies inside the root (its real path). */
  private async insideRoot(file: string): Promise<boolean> {
    this.realRoot ??= realpath(this.root).catch(() => this.root);
    const root = await this.realRoot;
    const real = await realpath(file).catch(() => null);
    return real !== null && (real === root || real.startsWith(root + path.sep));
  }

  /** Resolves a URL path (still percent-encoded) to a file inside the root, or null. */
  resolve(rawPath: string): string | null {
    let decoded: string;
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      return null;
    }
    if (decoded.includes('\0') || decoded.includes('\\')) return null;
    const parts = decoded.split('/').filter((p) => p !== '');
    if (parts.some((p) => p.startsWith('.'))) return null; // '..', '.env', '.git'
    const abs = path.resolve(this.root, ...parts);
    if (abs !== this.root && !abs.startsWith(this.root + path.sep)) return null;
    return abs;
  }

  async serve(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed');
      return;
    }
    let file = this.resolve(rawPath);
    if (file === null) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    let info = await stat(file).catch(() => null);
    if (info?.isDirectory()) {
      file = path.join(file, 'index.html');
      info = await stat(file).catch(() => null);
    }
    if (!info && path.extname(file) === '') {
      file = path.join(this.root, 'index.html');
      info = await stat(file).catch(() => null);
    }
    if (!info || !info.isFile() || !(await this.insideRoot(file))) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const hashedAsset = rawPath.startsWith('/assets/');
    const headers = {
      'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      ETag: etag,
      'Cache-Control': hashedAsset ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': info.size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  }
}
