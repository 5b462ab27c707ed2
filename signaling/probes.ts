/**
 * Link probes: a page measures its downlink and uplink to the AP.
 *   GET  /probe/down?bytes=N  -> N bytes of incompressible data (1 <= N <= maxBytes)
 *   POST /probe/up            -> reads the body (<= maxBytes), answers {"bytes": n, "seconds": s}
 * Sizes are bounded; an over-size upload is cut off with 413. Nothing is cached or stored.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './send-json.ts';

export const DEFAULT_PROBE_MAX_BYTES = 64 * 1024 * 1024;
const BLOCK = randomBytes(256 * 1024);

export function probeDown(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, maxBytes: number): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(res, 405, { error: 'use GET /probe/down?bytes=N' });
    return;
  }
  const text = query.get('bytes');
  const bytes = text !== null && /^\d{1,12}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > maxBytes) {
    sendJson(res, 400, { error: 'probe-size', message: `bytes must be an integer from 1 to ${maxBytes}` });
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': bytes,
    'Cache-Control': 'no-store',
    'Content-Encoding': 'identity',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let left = bytes;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, BLOCK.length);
      left -= n;
      const more = res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n));
      if (!more && left > 0) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => {
    left = 0;
  });
  pump();
}

export function probeUp(req: IncomingMessage, res: ServerResponse, maxBytes: number): void {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'use POST /probe/up with a body' });
    return;
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.setHeader('Connection', 'close');
    sendJson(res, 413, { error: 'probe-size', message: `upload probes are limited to ${maxBytes} bytes` });
    req.destroy();
    return;
  }
  const started = process.hrtime.bigint();
  let received = 0;
  let done = false;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBytes && !done) {
      done = true;
      res.setHeader('Connection', 'close');
      sendJson(res, 413, { error: 'probe-size', message: `upload probes are limited to ${maxBytes} bytes` });
      req.destroy();
    }
  });
  req.on('end', () => {
    if (done) return;
    done = true;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    sendJson(res, 200, { bytes: received, seconds });
  });
  req.on('error', () => {
    done = true;
  });
}
