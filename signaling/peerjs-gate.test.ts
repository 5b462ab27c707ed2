import { describe, expect, it } from 'vitest';
import { parsePeerJsQuery } from './peerjs-gate.ts';

const GOOD = 'id=abcd1234&token=AAAAAAAAAAAAAAAAAAAA&key=peerjs';

describe('the PeerJS upgrade query', () => {
  it('accepts exactly one id, token and key (and PeerJS own version)', () => {
    expect(parsePeerJsQuery(new URLSearchParams(`${GOOD}&version=1.5.5`))).toEqual({
      ok: true,
      id: 'abcd1234',
      token: 'AAAAAAAAAAAAAAAAAAAA',
      key: 'peerjs',
    });
  });

  // Regression: parameters named like Object's own members once reached Object.prototype (a TypeError).
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
    'rejects a parameter named %s without throwing',
    (name) => {
      expect(parsePeerJsQuery(new URLSearchParams(`${GOOD}&${name}=x`))).toEqual({
        ok: false,
        reason: `unexpected parameter '${name}'`,
      });
    },
  );

  it('rejects a repeated id (the PeerJS server would register the last one)', () => {
    expect(parsePeerJsQuery(new URLSearchParams(`${GOOD}&id=other123`))).toEqual({
      ok: false,
      reason: "parameter 'id' given more than once",
    });
  });
});
