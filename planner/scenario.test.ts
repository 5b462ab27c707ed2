import { describe, expect, it } from 'vitest';
import { TandemError } from '../core/errors.ts';
import { presetJson, presetScenario, PRESET_NAMES } from './presets.ts';
import { parseScenario, parseScenarioText, scenarioBaselineOptions, scenarioProblem } from './scenario.ts';

const valid = () => ({
  model: {
    num_hidden_layers: 28,
    hidden_size: 1024,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    intermediate_size: 3072,
    vocab_size: 151936,
    bytesPerParam: 2,
  },
  devices: [
    {
      name: 'laptop',
      peakTflops: 2,
      utilA: 0.5,
      utilB: 1e-3,
      readMBps: 800,
      memoryGB: 4,
      uplinkMbps: 300,
      downlinkMbps: 400,
    },
    {
      name: 'phone',
      peakTflops: 1,
      utilA: 0.6,
      utilB: 2e-3,
      readMBps: 500,
      memoryGB: 2,
      uplinkMbps: 100,
      downlinkMbps: 200,
    },
  ],
});

/** The TandemError a bad scenario throws. */
function errorOf(value: unknown): TandemError {
  try {
    parseScenario(value, 'test.json');
  } catch (err) {
    if (err instanceof TandemError) return err;
    throw err;
  }
  throw new Error('expected the scenario to be rejected');
}

describe('scenario files', () => {
  it('applies defaults and converts the paper units to SI', () => {
    const s = parseScenario(valid());
    expect(s.memoryModel).toBe('max');
    expect(s.embeddingAndHead).toBe(false);
    const p = scenarioProblem(s, 100);
    expect(p.devices[0]).toMatchObject({
      peakFlops: 2e12,
      readBytesPerSec: 800 * 2 ** 20,
      memoryBytes: 4 * 2 ** 30,
      uplinkBitsPerSec: 300e6,
      downlinkBitsPerSec: 400e6,
    });
    expect(p.tokens).toBe(100);
    expect(scenarioBaselineOptions(s)).toEqual({});
    expect(p.devices[0]).not.toHaveProperty('warmupSec');
  });

  it('takes the browser terms in scenario units (MB/s, s, ms)', () => {
    const v = valid();
    Object.assign(v.devices[0], {
      sessionCreateMBps: 200,
      sessionCreateFixedSec: 0.3,
      warmupSec: 1.2,
      linkLatencyMs: 5,
    });
    const p = scenarioProblem(parseScenario(v), 100);
    expect(p.devices[0]).toMatchObject({
      sessionCreateBytesPerSec: 200 * 2 ** 20,
      sessionCreateFixedSec: 0.3,
      warmupSec: 1.2,
      linkLatencySec: 0.005,
    });
    expect(errorOf({ ...v, devices: [{ ...v.devices[0], warmupSec: -1 }, v.devices[1]] }).message).toMatch(
      /devices\[0\]\.warmupSec/,
    );
  });

  it('takes a q4 package: float32 embedding and head bytes, and a device that holds them at its own scale', () => {
    const v = valid();
    Object.assign(v.model, { extrasBytesPerParam: 4 });
    Object.assign(v.devices[0], { extrasMemoryScale: 1 / 6.4 });
    const p = scenarioProblem(parseScenario(v), 100);
    expect(p.model.extrasBytesPerParam).toBe(4);
    expect(p.devices[0].extrasMemoryScale).toBe(1 / 6.4);
    expect(p.devices[1]).not.toHaveProperty('extrasMemoryScale');
    expect(errorOf({ ...v, devices: [{ ...v.devices[0], extrasMemoryScale: 0 }, v.devices[1]] }).message).toMatch(
      /devices\[0\]\.extrasMemoryScale/,
    );
  });

  it('presets are valid scenario files (round trip through JSON text)', () => {
    for (const name of PRESET_NAMES) {
      expect(parseScenarioText(JSON.stringify(presetJson(name)), name)).toEqual(presetScenario(name));
    }
    expect(scenarioBaselineOptions(presetScenario('csgo-paper'))).toEqual({ idealReadBytesPerSec: 6000 * 2 ** 20 });
    expect(() => presetScenario('nope')).toThrow(expect.objectContaining({ code: 'scenario-unknown' }));
  });

  it('rejects malformed files with a message naming the bad field', () => {
    const cases: [(s: ReturnType<typeof valid> & Record<string, unknown>) => void, RegExp][] = [
      [
        (s) => {
          delete (s.model as Partial<typeof s.model>).hidden_size;
        },
        /model\.hidden_size/,
      ],
      [
        (s) => {
          s.devices[1].readMBps = -5;
        },
        /devices\[1\]\.readMBps/,
      ],
      [
        (s) => {
          (s.devices[0] as Record<string, unknown>).peakTflops = '2';
        },
        /devices\[0\]\.peakTflops/,
      ],
      [
        (s) => {
          (s.devices[0] as Record<string, unknown>).readMbps = 5;
        },
        /devices\[0\].*readMbps/,
      ],
      [
        (s) => {
          s.devices[0].utilA = 2;
        },
        /devices\[0\]\.utilA/,
      ],
      [
        (s) => {
          delete (s.devices[1] as Partial<(typeof s.devices)[0]>).downlinkMbps;
        },
        /devices\[1\]\.downlinkMbps/,
      ],
      [
        (s) => {
          s.devices[1].name = 'laptop';
        },
        /devices\[1\]\.name: duplicate/,
      ],
      [
        (s) => {
          s.memoryModel = 'min';
        },
        /memoryModel/,
      ],
      [
        (s) => {
          s.tokens = [256, 0];
        },
        /tokens\[1\]/,
      ],
      [
        (s) => {
          s.devices = [];
        },
        /devices/,
      ],
      [
        (s) => {
          s.model.num_key_value_heads = 7;
        },
        /model\.num_key_value_heads: must divide/,
      ],
      [
        (s) => {
          const d = s.devices[0] as Record<string, unknown>;
          delete d.uplinkMbps;
          delete d.downlinkMbps;
          d.uplinkPowerDbm = 20;
          d.distanceM = 3;
        },
        /wireless: required/,
      ],
    ];
    for (const [mutate, msg] of cases) {
      const s = valid() as ReturnType<typeof valid> & Record<string, unknown>;
      mutate(s);
      const err = errorOf(s);
      expect(err.code).toBe('scenario-invalid');
      expect(err.message).toMatch(msg);
      expect(err.message).toMatch(/test\.json/);
    }
  });

  it('rejects non-JSON text and non-objects', () => {
    expect(() => parseScenarioText('{"model": ', 'x.json')).toThrow(
      expect.objectContaining({ code: 'scenario-invalid' }),
    );
    expect(errorOf([1, 2]).code).toBe('scenario-invalid');
  });

  it('derives link rates from the wireless model when given', () => {
    const s = presetScenario('csgo-table1');
    const p = scenarioProblem(s, 256);
    expect(p.devices[0].uplinkBitsPerSec / 1e9).toBeCloseTo(1.72, 2);
    // farther and weaker transmitters get slower uplinks
    expect(p.devices[3].uplinkBitsPerSec).toBeLessThan(p.devices[2].uplinkBitsPerSec);
  });
});
