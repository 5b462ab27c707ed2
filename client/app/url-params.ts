/**
 * URL parameters for people and for automation (pure):
 *   ?join=CODE        join that session at once
 *   ?host=1           create a session at once (automation; a person presses "Create session")
 *   ?name=NAME        the device name shown to others
 *   ?emulate=...      a preset or JSON (see profiler/emulation.ts)
 *   ?backend=wasm     force onnxruntime-web's wasm backend (also 'webgpu'); default: auto
 *   ?warm=1           warm mode: on assignment the page downloads its units AND loads its stage (reads
 *                     them, creates the session), so a request finds it loaded; default: cold (the stage
 *                     loads when the request starts, the case the planner optimises)
 *   ?hold=5,9         fault injection: the stage holds after 5 (then 9) generated tokens until released
 *                     through window.tandem.holds (see app/hold-points.ts); ?hold= arms none yet
 *   ?ring=main        run the stage and its frame links on the main thread (default 'worker': in the
 *                     inference worker, where the browser can transfer data channels; else main)
 *   ?parts=on         load the stage in parts, each part's session created while the next is read
 *                     (also 'off', or a count 2-8: up to that many parts of any size, for tests and
 *                     trials); default auto: in parts where the profile found a second core for the reads
 *                     (shards/runtime/stage-parts.ts, profiler/parallel-load.ts)
 */
import { TandemError } from '../../core/errors.ts';
import { parseEmulation, type Emulation } from '../profiler/emulation.ts';
import { joinCodeSchema } from '../../core/protocol.ts';

export type BackendChoice = 'auto' | 'webgpu' | 'wasm';

export interface PageParams {
  join: string | null;
  host: boolean;
  name: string | null;
  emulation: Emulation | null;
  backend: BackendChoice;
  /** ?warm=1: load the stage at plan time, not at the request's start */
  warm: boolean;
  /** ?hold= token counts; null without the parameter (then the stage never waits for a hold) */
  holdAt: number[] | null;
  /** ?ring=: where the stage and its frame links run (stage-runner.ts) */
  ring: RingPlace;
  /** ?parts=: whether the stage loads in parts */
  parts: PartsChoice;
}

export type PartsChoice = 'auto' | 'on' | 'off' | number;

export type RingPlace = 'worker' | 'main';

const MAX_NAME = 40;

/**
 * Normalises a typed or scanned join code (Crockford base32, see core/protocol.ts): upper case,
 * spaces and dashes dropped, and the look-alikes people type mapped as Crockford does (O -> 0,
 * I and L -> 1). Returns null when the result cannot be a code.
 */
export function normaliseJoinCode(raw: string): string | null {
  const code = raw
    .toUpperCase()
    .replace(/[\s-]+/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  return joinCodeSchema.safeParse(code).success ? code : null;
}

/** A readable name: trimmed, control characters dropped, at most 40 characters. */
export function normaliseName(raw: string): string {
  return raw
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .trim()
    .slice(0, MAX_NAME);
}

export function parsePageParams(search: string): PageParams {
  const q = new URLSearchParams(search);
  const rawJoin = q.get('join');
  let join: string | null = null;
  if (rawJoin !== null && rawJoin.trim() !== '') {
    join = normaliseJoinCode(rawJoin);
    if (join === null) {
      throw new TandemError(
        'join-code-invalid',
        `?join=${rawJoin} is not a join code (8 letters and digits); check the link or type the code shown on the host's screen.`,
      );
    }
  }
  const rawBackend = (q.get('backend') ?? 'auto').trim().toLowerCase();
  if (rawBackend !== 'auto' && rawBackend !== 'webgpu' && rawBackend !== 'wasm') {
    throw new TandemError(
      'backend-invalid',
      `?backend=${rawBackend} is unknown; use wasm, webgpu or leave it out for automatic choice.`,
    );
  }
  const rawRing = (q.get('ring') ?? 'worker').trim().toLowerCase();
  if (rawRing !== 'worker' && rawRing !== 'main') {
    throw new TandemError(
      'ring-invalid',
      `?ring=${rawRing} is unknown; use main, worker or leave it out (worker where the browser allows it).`,
    );
  }
  const rawParts = (q.get('parts') ?? 'auto').trim().toLowerCase();
  const partCount = /^[2-8]$/.test(rawParts) ? Number(rawParts) : null;
  if (rawParts !== 'auto' && rawParts !== 'on' && rawParts !== 'off' && partCount === null) {
    throw new TandemError(
      'parts-invalid',
      `?parts=${rawParts} is unknown; use on, off, a count from 2 to 8, or leave it out (in parts where this device reads and creates at once).`,
    );
  }
  const rawName = q.get('name');
  const name = rawName === null ? null : normaliseName(rawName) || null;
  const flag = (key: string) => ['1', 'true', 'yes'].includes((q.get(key) ?? '').trim().toLowerCase());
  return {
    join,
    host: flag('host'),
    warm: flag('warm'),
    name,
    emulation: parseEmulation(q.get('emulate')),
    backend: rawBackend,
    holdAt: parseHoldCounts(q.get('hold')),
    ring: rawRing,
    parts: partCount ?? (rawParts as 'auto' | 'on' | 'off'),
  };
}

const MAX_HOLDS = 16;

/** `?hold=5,9`: distinct non-negative token counts. */
function parseHoldCounts(raw: string | null): number[] | null {
  if (raw === null) return null;
  if (raw.trim() === '') return [];
  const parts = raw.split(',').map((p) => p.trim());
  const counts = parts.map(Number);
  if (parts.length > MAX_HOLDS || counts.some((n, i) => parts[i] === '' || !Number.isInteger(n) || n < 0)) {
    throw new TandemError(
      'hold-invalid',
      `?hold=${raw} is not a list of token counts (e.g. ?hold=5 or ?hold=5,9, at most ${MAX_HOLDS}); remove it to run normally.`,
    );
  }
  return [...new Set(counts)];
}

/** The join link a host shows: the page's own URL with only ?join=CODE. */
export function joinLink(pageUrl: string, code: string): string {
  const url = new URL(pageUrl);
  url.search = '';
  url.hash = '';
  url.searchParams.set('join', code);
  return url.toString();
}
