import { describe, expect, it } from 'vitest';
import { labPeers } from './profiles.ts';

describe('labPeers', () => {
  it('gives each of K equal devices 1.6/K core, 100/100 Mbit/s links and a 16 MiB/s read cap', () => {
    const peers = labPeers('equal', 4, 100e6);
    expect(peers.map((p) => p.name)).toEqual(['equal-1', 'equal-2', 'equal-3', 'equal-4']);
    for (const p of peers) {
      // 1.6 / 4 = 0.4 core
      expect(p.device).toEqual({ cores: 0.4, uplinkMbps: 100, downlinkMbps: 100 });
      expect(JSON.parse(p.emulate!)).toEqual({
        label: 'lab: 0.4 core, 100/100 Mbit/s, read<=16 MiB/s',
        compute: 1,
        readMBps: 16,
      });
    }
  });

  it('leaves the storage read uncapped with readCap: false, and keeps the CPU share and the links', () => {
    const peers = labPeers('equal', 3, 100e6, { readCap: false });
    for (const p of peers) {
      // 1.6 / 3 = 0.533... -> 0.53 core
      expect(p.device).toEqual({ cores: 0.53, uplinkMbps: 100, downlinkMbps: 100 });
      expect(JSON.parse(p.emulate!)).toEqual({ label: 'lab: 0.53 core, 100/100 Mbit/s, read uncapped', compute: 1 });
    }
  });
});
