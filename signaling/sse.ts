/** Server-sent events on a Node response: the headers, one `data:` event per JSON object, `[DONE]`. */
import type { ServerResponse } from 'node:http';

export function openEventStream(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, {
    ...headers,
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // nginx and similar proxies would otherwise buffer the stream
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  // one event per token: Nagle would hold small writes back
  res.socket?.setNoDelay(true);
}

export function sendEvent(res: ServerResponse, data: unknown): void {
  if (!res.writableEnded) res.write(`data: ${JSON.stringify(data)}\n\n`);
}

export function endEventStream(res: ServerResponse): void {
  if (!res.writableEnded) res.end('data: [DONE]\n\n');
}
