/**
 * HTTPS for phones: browsers expose WebGPU only in secure contexts, and a LAN IP over plain HTTP is
 * not one. Either a given certificate and key (--cert/--key), or a self-signed one generated on first
 * use (no download) into a local folder and reused while the machine's addresses stay the same.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from 'selfsigned';
import { TandemError } from '../core/errors.ts';

export interface TlsFiles {
  cert: string;
  key: string;
  /** Where they came from, for the start-up message. */
  source: string;
}

export async function loadTls(certPath: string, keyPath: string): Promise<TlsFiles> {
  try {
    return {
      cert: await readFile(certPath, 'utf8'),
      key: await readFile(keyPath, 'utf8'),
      source: `${certPath} + ${keyPath}`,
    };
  } catch (error) {
    throw new TandemError(
      'tls-files',
      `cannot read the certificate or key (${(error as Error).message}): check --cert and --key`,
      { cause: error },
    );
  }
}

/** A self-signed certificate for localhost and the given IPs, made once and kept in `dir`. */
export async function selfSignedTls(dir: string, ips: string[]): Promise<TlsFiles> {
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const metaPath = path.join(dir, 'names.json');
  const names = ['localhost', '127.0.0.1', ...ips].filter((v, i, a) => a.indexOf(v) === i).sort();
  if (existsSync(certPath) && existsSync(keyPath) && existsSync(metaPath)) {
    const kept = JSON.parse(await readFile(metaPath, 'utf8')) as string[];
    if (JSON.stringify(kept) === JSON.stringify(names))
      return { ...(await loadTls(certPath, keyPath)), source: `self-signed, kept in ${dir}` };
  }
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: 'Tandem access point' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 24 * 3600_000),
    notAfterDate: new Date(now.getTime() + 365 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((n) =>
          /^[\d.]+$|:/.test(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n },
        ),
      },
    ],
  });
  await mkdir(dir, { recursive: true });
  await writeFile(keyPath, pems.private, { mode: 0o600 });
  await writeFile(certPath, pems.cert);
  await writeFile(metaPath, JSON.stringify(names));
  return { cert: pems.cert, key: pems.private, source: `self-signed, generated into ${dir}` };
}
