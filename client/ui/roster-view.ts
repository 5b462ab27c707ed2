/** The live roster: every peer, its measured profile, cache state and assignment. */
import type { RosterPeer } from '../../core/protocol.ts';
import { h } from './dom.ts';
import { formatBits, formatBytes, formatBytesPerSec, formatFlops, formatLayers } from './format.ts';

export function renderRoster(
  peers: readonly RosterPeer[],
  selfId: string | null,
  assignedUnitsOf: (peerId: string) => string[] | null,
): HTMLElement {
  if (peers.length === 0) return h('p.hint', {}, 'Nobody has joined yet.');
  const sorted = [...peers].sort(
    (a, b) => (a.assignment?.stageIndex ?? 1e9) - (b.assignment?.stageIndex ?? 1e9) || a.joinedAtMs - b.joinedAtMs,
  );
  return h(
    'div.roster',
    {},
    ...sorted.map((p) => {
      const prof = p.profile;
      const needed = assignedUnitsOf(p.peerId);
      const haveNeeded = needed ? needed.filter((u) => p.cachedUnits.includes(u)).length : null;
      const cacheText = needed
        ? `${haveNeeded}/${needed.length} units of its stage cached`
        : `${p.cachedUnits.length} units cached`;
      return h(
        'div.peer-card',
        {
          'data-peer': p.peerId,
          class: `peer-card${p.connected ? '' : ' peer-offline'}${p.peerId === selfId ? ' peer-self' : ''}`,
        },
        h(
          'div.peer-head',
          {},
          h('span.peer-name', {}, p.displayName),
          p.peerId === selfId ? h('span.badge', {}, 'you') : null,
          p.emulated ? h('span.badge.badge-emulated', {}, `emulated: ${p.emulated}`) : null,
          p.connected ? null : h('span.badge.badge-bad', {}, 'offline'),
          p.assignment
            ? h(
                'span.badge.badge-stage',
                {},
                `stage ${p.assignment.stageIndex + 1} · ${formatLayers(p.assignment.layers)}`,
              )
            : p.spare
              ? h('span.badge.badge-idle', {}, `spare · ${formatLayers(p.spare.layers)}`)
              : h('span.badge.badge-idle', {}, 'no stage'),
        ),
        prof
          ? h(
              'div.peer-figures',
              {},
              h('span', {}, prof.backend === 'webgpu' ? 'WebGPU' : 'wasm'),
              h('span', {}, formatFlops(prof.peakFlops)),
              h('span', {}, `read ${formatBytesPerSec(prof.readBytesPerSec)}`),
              h('span', {}, `↓${formatBits(prof.downlinkBitsPerSec)} ↑${formatBits(prof.uplinkBitsPerSec)}`),
              h('span', {}, `mem ${formatBytes(prof.memoryBytes)}`),
            )
          : h('div.peer-figures', {}, h('span.hint', {}, 'profiling…')),
        h('div.peer-cache', {}, needed && haveNeeded === needed.length ? `✓ ${cacheText}` : cacheText),
      );
    }),
  );
}
