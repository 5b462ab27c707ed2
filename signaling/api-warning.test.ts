/**
 * `npm start` (signaling/main.ts) as a person runs it: listening beyond loopback without --api-key
 * prints a warning about the API; with a key, or on loopback, it does not.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticPackage } from './test-support.ts';

let dir: string;

/** Starts the server, collects its output until it is up, stops it; returns the output. */
function startOutput(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      path.resolve('node_modules/.bin/tsx'),
      [
        'signaling/main.ts',
        '--port',
        '0',
        '--no-build',
        '--model',
        path.join(dir, 'pkg'),
        '--data',
        path.join(dir, 'data'),
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ctrl-C stops the server.')) child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', () =>
      out.includes('Ctrl-C stops the server.') ? resolve(out) : reject(new Error(`the server did not start:\n${out}`)),
    );
  });
}

describe('npm start and the API key', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tandem-api-warn-'));
    await writeSyntheticPackage(path.join(dir, 'pkg'), { layers: 2 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('warns when the API listens beyond loopback without a key, not with one or on loopback', async () => {
    const [open, keyed, loopback] = await Promise.all([
      startOutput(['--host', '0.0.0.0']),
      startOutput(['--host', '0.0.0.0', '--api-key', 'a-long-enough-key']),
      startOutput(['--host', '127.0.0.1']),
    ]);
    expect(open).toMatch(/warning: the API listens on 0\.0\.0\.0 without --api-key/);
    expect(keyed).not.toMatch(/without --api-key/);
    expect(keyed).toMatch(/\/v1 \(OpenAI-compatible; docs\/api\.md\), key required/);
    expect(loopback).not.toMatch(/without --api-key/);
  }, 120_000);
});
