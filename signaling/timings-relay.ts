/**
 * Who hears a page's `report-timings`, and when (pure). Every page of the session shows the request's
 * timeline, so the server relays each report to every connection of the session. While a request runs,
 * though, its decode phases (step 1 and on: about ten per token per page) would reach each of the ring's
 * pages from every other one, in bursts as each page's batch fills. Traced on the equal lab's 0.4-core
 * devices (e2e/decode-trace.ts, a 256-token decode), a ring page's main thread received ~60 WebSocket
 * frames a second, and parsed, validated and reduced them on the CPU quota the ring waits on; with the
 * decode phases held, 10-20 a second during the decode (the output's text, acks), the rest at the end.
 * Per token, a ring device's CPU outside its inference worker was 2.0-2.4 ms with every report relayed
 * and 1.4-1.8 ms with no decode phase relayed (e2e/lab-cpu.ts, one run each, load 4.6 and 4.0), beside
 * 1.5-2.8 ms in the worker. So while the request runs, the ring's pages get the cold-start and prefill
 * phases (step 0: the live cold-start timeline) at once, and the other pages' decode phases when it ends;
 * every other connection (the host's view when it runs no stage, spare pages, a driver) gets
 * everything at once. A ring page's own decode phases are on its timeline already (it records them).
 */
import type { ServerMessageOf, TimingEntry } from '../core/protocol.ts';

type TimingsMessage = ServerMessageOf<'timings'>;

/** The most timings in one relayed message when held ones go out: the size a page may report in one. */
export const RELAY_CHUNK = 2048;

/** What goes now: to the ring (the request's stages), and to everyone else; what waits for the end. */
export interface RelaySplit {
  ring: TimingsMessage | null;
  others: TimingsMessage;
  held: TimingsMessage | null;
}

/** Splits one relayed report of a request that is still `running` (else it all goes to everyone now). */
export function splitRelay(message: TimingsMessage, running: boolean): RelaySplit {
  if (!running) return { ring: message, others: message, held: null };
  const now = message.timings.filter((t) => t.step === 0);
  const later = message.timings.filter((t) => t.step !== 0);
  return {
    ring: now.length ? { ...message, timings: now } : null,
    others: message,
    held: later.length ? { ...message, timings: later } : null,
  };
}

/** The held decode phases of one request, per reporting page and wire request id, in arrival order. */
export class HeldTimings {
  private readonly byKey = new Map<string, { base: Omit<TimingsMessage, 'timings'>; timings: TimingEntry[] }>();

  add(message: TimingsMessage): void {
    const key = `${message.peerId}\u0000${message.requestId}`;
    const { timings, ...base } = message;
    const held = this.byKey.get(key);
    if (held) {
      held.timings.push(...timings);
      held.base = base; // the latest clock bound
    } else this.byKey.set(key, { base, timings: [...timings] });
  }

  /** Everything held, as messages of at most RELAY_CHUNK timings; empties the hold. */
  drain(): TimingsMessage[] {
    const out: TimingsMessage[] = [];
    for (const { base, timings } of this.byKey.values())
      for (let i = 0; i < timings.length; i += RELAY_CHUNK)
        out.push({ ...base, timings: timings.slice(i, i + RELAY_CHUNK) });
    this.byKey.clear();
    return out;
  }
}
