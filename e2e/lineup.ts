/**
 * The pages a demo or bench run opens: a device-lab line-up where the lab can run here, else (loudly)
 * the paper-shaped pages of one browser with DevTools CPU throttling.
 */
import { TandemError } from '../core/errors.ts';
import { labSupport } from './lab.ts';
import { LAB_LINEUPS, labPeers, paperPeers, type LabLineup } from './profiles.ts';
import type { PeerSpec } from './tandem-page.ts';

export function lineupPeers(lab: string, count: number, modelBytes: number, log: (line: string) => void): PeerSpec[] {
  if (lab === 'off') return paperPeers(count);
  if (!(LAB_LINEUPS as readonly string[]).includes(lab))
    throw new TandemError('cli-usage', `unknown lab line-up '${lab}'`);
  const support = labSupport();
  if (!support.ok) {
    const line = '!'.repeat(100);
    log(
      `${line}\n!!! NO DEVICE LAB: ${support.reason}\n!!! Falling back to one browser with DevTools CPU throttling: pages contend for the same cores and links.\n${line}`,
    );
    return paperPeers(count);
  }
  return labPeers(lab as LabLineup, count, modelBytes);
}
