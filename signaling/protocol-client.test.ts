/**
 * The shared protocol client (core/protocol-client.ts) on Node's `ws` against the real server on
 * loopback: replies by ref, the server's error codes, broadcasts awaited with next/take, and the
 * server's close rejecting a pending wait.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { rejectionCode } from '../core/rejection-code.ts';
import { coordinatorUrl, ProtocolClient } from '../core/protocol-client.ts';
import type { TandemServer } from './http-server.ts';
import { sampleProfile, startTestServer } from './test-support.ts';

let dir: string;
// undefined when beforeAll failed before starting it
let server: TandemServer | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tandem-protocol-client-'));
  ({ server } = await startTestServer(dir, { layers: 4, gateway: { joinDeadlineMs: 1500 } }));
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function connect(): Promise<ProtocolClient> {
  return ProtocolClient.connect(coordinatorUrl(server!.url), (url) => new WebSocket(url));
}

describe('ProtocolClient on ws against the server', () => {
  it('creates, joins and sees the roster grow; next looks, take consumes', async () => {
    const host = await connect();
    const page = await connect();
    const created = await host.request({ type: 'create-session', name: 'protocol client' }, 'session-created');
    expect(created.code).toMatch(/^[0-9A-Z]{8}$/);
    const joined = await page.request({ type: 'join', code: created.code, displayName: 'page' }, 'joined');
    const mark = page.log.length;
    await page.request({ type: 'profile', profile: sampleProfile(1) }, 'ack');
    // the host is told of the profiled peer by a roster broadcast (no ref)
    const profiled = await host.next('roster', (r) =>
      r.peers.some((p) => p.peerId === joined.peerId && p.profile !== null),
    );
    expect(profiled.code).toBe(created.code);
    // one roster for the join, one for the profile: take hands them out oldest first; next still sees them
    const rosters = host.log.filter((m) => m.type === 'roster');
    expect(rosters.length).toBeGreaterThanOrEqual(2);
    expect(await host.take('roster')).toBe(rosters[0]);
    expect(await host.take('roster')).toBe(rosters[1]);
    expect(await host.next('roster')).toBe(rosters[0]);
    expect((await page.next('roster', () => true, 10_000, mark)).code).toBe(created.code);
    host.close();
    page.close();
  });

  it("rejects with the server's error code; exchange returns the error reply itself", async () => {
    const c = await connect();
    expect(await rejectionCode(c.request({ type: 'join', code: '00000000', displayName: 'x' }, 'joined'))).toBe(
      'session-not-found',
    );
    const reply = await c.exchange({ type: 'join', code: 'lower', displayName: 'x' }, { check: false });
    expect(reply).toMatchObject({ type: 'error', code: 'bad-message', inReplyTo: 'join' });
    expect(await rejectionCode(c.request({ type: 'leave' }, 'ack'))).toBe('not-joined');
    c.close();
  });

  it('rejects a pending wait with server-gone when the server closes the socket (4002: never joined)', async () => {
    const c = await connect();
    const never = c.next('session-ended', () => true, 60_000);
    expect(await rejectionCode(never)).toBe('server-gone');
    expect(c.closeInfo?.code).toBe(4002);
    expect(c.isOpen).toBe(false);
  });
});
