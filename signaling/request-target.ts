/**
 * The request target of an HTTP request, parsed without ever throwing: anything that is not an
 * origin-form path ('/x?y') is null, and the caller answers 400. `new URL('//x:99999', base)` throws
 * (and '//host/p' would be read as an authority), so a target must start with exactly one '/'.
 */
export interface RequestTarget {
  /** Decoded-by-URL pathname ('/a/b'), normalised by WHATWG URL rules. */
  pathname: string;
  /** The path as sent, still percent-encoded, without the query (routes that check encodings use it). */
  rawPath: string;
  searchParams: URLSearchParams;
}

const BASE = 'http://tandem.invalid';

export function parseRequestTarget(raw: string | undefined): RequestTarget | null {
  if (raw === undefined || raw.length === 0 || raw.length > 8192) return null;
  if (raw[0] !== '/' || raw[1] === '/' || raw[1] === '\\') return null;
  let url: URL;
  try {
    url = new URL(BASE + raw);
  } catch {
    return null;
  }
  if (url.origin !== BASE) return null;
  const q = raw.indexOf('?');
  return { pathname: url.pathname, rawPath: q < 0 ? raw : raw.slice(0, q), searchParams: url.searchParams };
}
