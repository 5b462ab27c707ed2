/**
 * The accumulator of one reduction (app-reducer.ts): the state so far and the effects so far, with the
 * steps every handler needs (a banner, a report to the server). Local to one `reduce` call, so the
 * reducer stays pure; plus the copy-on-write helpers for the state's maps and sets.
 */
import { TandemError } from '../../core/errors.ts';
import type { Effect } from './app-effects.ts';
import type { AppState } from './app-state.ts';

export interface Reduction {
  readonly state: AppState;
  readonly effects: readonly Effect[];
}

export function asTandemError(e: unknown, fallbackCode: string): TandemError {
  if (e instanceof TandemError) return e;
  return new TandemError(fallbackCode, e instanceof Error ? e.message : String(e), { cause: e });
}

/** The protocol's error code and unit id shapes: anything else is reported as 'unexpected' / left out. */
const CODE_SHAPE = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const UNIT_SHAPE = /^(embed|head|layer\.\d+)$/;

/**
 * The state and effects of one event while it is being reduced: a local accumulator, so the
 * reducer's handlers read as steps. Nothing outside it is changed.
 */
export class Step {
  readonly effects: Effect[] = [];
  constructor(
    public state: AppState,
    readonly nowMs: number,
  ) {}

  set(patch: Partial<AppState>): void {
    this.state = { ...this.state, ...patch };
  }

  emit(...effects: Effect[]): void {
    this.effects.push(...effects);
  }

  /** A banner (the same one is not stacked twice) and a console line. */
  error(e: unknown, source: string, fallbackCode = 'unexpected', level: 'error' | 'warning' = 'error'): TandemError {
    const err = asTandemError(e, fallbackCode);
    const last = this.state.errors.at(-1);
    if (!(last && last.code === err.code && last.message === err.message && !last.dismissed)) {
      const entry = { level, code: err.code, message: err.message, source, atMs: this.nowMs, dismissed: false };
      this.set({ errors: [...this.state.errors, entry] });
    }
    this.emit({ type: 'log', text: `[tandem] ${source}: ${err.code}: ${err.message}` });
    return err;
  }

  /** Tells the server about a session-relevant failure too (best effort: a failed send is dropped). */
  report(err: TandemError, requestId: number | null, unitId?: string | null): void {
    if (!this.state.peerId) return;
    this.emit({
      type: 'send',
      source: null,
      message: {
        type: 'report-error',
        requestId,
        code: CODE_SHAPE.test(err.code) ? err.code.slice(0, 64) : 'unexpected',
        message: err.message.slice(0, 2000),
        ...(unitId && UNIT_SHAPE.test(unitId) ? { unitId } : {}),
      },
    });
  }

  result(): Reduction {
    return { state: this.state, effects: this.effects };
  }
}

// ------------------------------------------------------------------------------------------------
// copy-on-write helpers

export function withEntry<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  const next = new Map(map);
  next.set(key, value);
  return next;
}

export function withMember<T>(set: ReadonlySet<T>, value: T): ReadonlySet<T> {
  if (set.has(value)) return set;
  const next = new Set(set);
  next.add(value);
  return next;
}
