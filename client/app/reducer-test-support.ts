/**
 * Fixtures shared by the page controller's reducer tests: wire messages as the coordinator sends them
 * (checked against the protocol schema, so a fixture cannot drift from the wire), the events that bring
 * a page to joined and ready, and a player that feeds events through `reduce`.
 */
import { serverMessageSchema, type ServerMessage, type ServerMessageOf } from '../../core/protocol.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import { testManifest, TINY_MODEL_WIDTHS } from '../../shards/test-manifest.ts';
import type { Effect } from './app-effects.ts';
import type { AppEvent } from './app-events.ts';
import { reduce } from './app-reducer.ts';
import { initialState, type AppState } from './app-state.ts';

/** The reducer's clock in every test (ms since the epoch). */
export const NOW = 1_700_000_000_000;
export const CODE = 'K7Q2MN0P';
/** This page's peer id. */
export const ME = 'peerAlpha1';
export const MODEL = { name: 'tiny', manifestUrl: '/models/tiny/manifest.json' };

/** A server message, validated by the protocol's own schema. */
export function wire<T extends ServerMessage['type']>(m: ServerMessageOf<T>): ServerMessageOf<T> {
  const parsed = serverMessageSchema.safeParse(m);
  if (!parsed.success) throw new Error(`fixture '${m.type}' does not match the protocol: ${parsed.error.message}`);
  return m;
}

/** A predicted stage of layers [start, end) with fixed, plausible times (s). */
export function stage(peerId: string, index: number, start: number, end: number, embeds: boolean, hasHead: boolean) {
  const common = { load: 0.1, wait: 0, comm: 0.01, compute: 0.2, startTime: 0, finishTime: 0.3 };
  return { stageIndex: index, peerId, displayName: peerId, layers: { start, end }, embeds, hasHead, ...common };
}

/** The coordinator's reply to this page's join of session CODE. */
export const joined = wire<'joined'>({
  type: 'joined',
  code: CODE,
  sessionName: "ann's session",
  peerId: ME,
  peerSecret: 'peersecret-0123456789abcdef',
  model: MODEL,
  peerjs: { path: '/peerjs', key: 'tandem', token: 'tok' },
  heartbeatIntervalMs: 5000,
  requestHeartbeatIntervalMs: 1000,
  heartbeatTimeoutMs: 30000,
  serverTimeMs: NOW,
  roster: [],
});

/** The manifest of a tiny fp32 model of `layers` layers, no units listed. */
export const tinyManifest = (layers: number): ModelManifest =>
  testManifest({ name: 'tiny', dtype: 'fp32', config: { num_hidden_layers: layers, ...TINY_MODEL_WIDTHS }, units: [] });

export const server = (message: ServerMessage): AppEvent => ({ type: 'server', message });

/** The page opened with `search` in a secure context on 127.0.0.1:8080, nothing stored. */
export function opened(search: string, more: Partial<Extract<AppEvent, { type: 'page-opened' }>> = {}): AppEvent {
  return {
    type: 'page-opened',
    search,
    secureContext: true,
    host: '127.0.0.1:8080',
    storedName: null,
    fallbackName: 'Device 123',
    savedHost: null,
    ...more,
  };
}

/** Opened with ?join, connected and joined. */
export const JOINED: AppEvent[] = [
  opened(`?join=${CODE}&name=ann`),
  { type: 'connected', seconds: 0.01 },
  { type: 'join-replied', joined, seconds: 0.02 },
];

/** Joined, with `manifest` in and the cache swept. */
export const readyWith = (manifest: ModelManifest): AppEvent[] => [
  ...JOINED,
  { type: 'manifest-loaded', manifest, seconds: 0.03 },
  { type: 'cache-swept' },
];

/** Feeds the events in order; returns the final state and the effects of every event, in order. */
export function play(events: readonly AppEvent[], from: AppState = initialState()) {
  let state = from;
  const effects: Effect[][] = [];
  for (const e of events) {
    const r = reduce(state, e, NOW);
    state = r.state;
    effects.push([...r.effects]);
  }
  return { state, effects, last: effects.at(-1) ?? [] };
}
