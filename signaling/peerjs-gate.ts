/**
 * Who may register with the PeerJS server at /peerjs: only a page the coordinator admitted, under its
 * own peer id, holding its PeerJS token. The token is HMAC-SHA256(server key, peer id), handed to the
 * page in its `joined` message only, so nobody else (another member reading the roster, a stranger on
 * the LAN) can register, squat or take over that id. The query must carry exactly one `id`, `token`
 * and `key`: PeerJS reads the last of repeated parameters, a naive gate the first.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type PeerJsQuery = { ok: true; id: string; token: string; key: string } | { ok: false; reason: string };

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;
const ID_SHAPE = /^[A-Za-z0-9]{4,64}$/;

/** Reads the PeerJS upgrade query: exactly one id, token and key, each well formed; nothing else but PeerJS's `version`. */
export function parsePeerJsQuery(search: URLSearchParams): PeerJsQuery {
  // No prototype: a parameter named 'constructor' or '__proto__' must not find Object's own members.
  const values: Partial<Record<string, string[]>> = Object.create(null) as Partial<Record<string, string[]>>;
  for (const [name, value] of search) (values[name] ??= []).push(value);
  for (const name of Object.keys(values))
    if (name !== 'id' && name !== 'token' && name !== 'key' && name !== 'version')
      return { ok: false, reason: `unexpected parameter '${name.slice(0, 32)}'` };
  for (const name of ['id', 'token', 'key', 'version'])
    if ((values[name]?.length ?? 0) > 1) return { ok: false, reason: `parameter '${name}' given more than once` };
  const id = values['id']?.[0];
  const token = values['token']?.[0];
  const key = values['key']?.[0];
  if (id === undefined || token === undefined || key === undefined)
    return { ok: false, reason: 'id, token and key are required' };
  if (!ID_SHAPE.test(id)) return { ok: false, reason: 'malformed id' };
  if (!TOKEN_SHAPE.test(token)) return { ok: false, reason: 'malformed token' };
  return { ok: true, id, token, key };
}

/** PeerJS tokens of this server run: derived from a random key that never leaves the process. */
export class PeerTokens {
  private readonly key: Buffer;

  constructor(key: Uint8Array = randomBytes(32)) {
    this.key = Buffer.from(key);
  }

  /** base64url of HMAC-SHA256(key, 'peerjs:' + peerId): 43 URL-safe characters. */
  tokenFor(peerId: string): string {
    return createHmac('sha256', this.key).update(`peerjs:${peerId}`).digest('base64url');
  }

  /** Constant-time check of a presented token. */
  check(peerId: string, token: string): boolean {
    const want = Buffer.from(this.tokenFor(peerId));
    const got = Buffer.from(token);
    return got.length === want.length && timingSafeEqual(got, want);
  }
}
