/**
 * chooseBackend (ort-web.ts) against stand-in navigator.gpu objects: which backend a stage gets for what
 * the browser offers. Whether fp16 packages really run without 'shader-f16' is checked on real adapters
 * by shards/stage-graph.webgpu.test.ts (SwiftShader) and e2e/webgpu-node-check.ts (a GPU).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chooseBackend, distrustWebGpu } from './ort-web.ts';

function adapter(features: string[], isFallbackAdapter = false) {
  return {
    features: new Set(features),
    info: { vendor: 'acme', architecture: 'x', description: 'Acme GPU', isFallbackAdapter },
    limits: {},
  };
}

function offer(gpu: unknown): void {
  vi.stubGlobal('navigator', gpu === undefined ? {} : { gpu });
}

describe('chooseBackend', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    distrustWebGpu(null);
  });

  it("leaves stages to wasm once the profile's stage check found WebGPU wrong, unless ?backend=webgpu insists", async () => {
    offer({ requestAdapter: () => Promise.resolve(adapter([])) });
    const wrong = 'WebGPU computed a 64-row prefill of real stage layers wrong (relative error 2.0e-1).';
    distrustWebGpu(wrong);
    const auto = await chooseBackend('fp32', undefined, false);
    expect(auto).toMatchObject({ backend: 'wasm', reason: expect.stringContaining(wrong) as unknown });
    const forced = await chooseBackend('fp32', 'webgpu', false);
    expect(forced.backend).toBe('webgpu');
    expect(forced.reason).toContain(`Asked for although ${wrong}`);
    // a later profile that finds it right trusts it again
    distrustWebGpu(null);
    expect((await chooseBackend('fp32', undefined, false)).backend).toBe('webgpu');
  });

  it('runs an fp16 package on WebGPU without shader-f16 (its weights are cast to fp32 at load)', async () => {
    offer({ requestAdapter: () => Promise.resolve(adapter([])) });
    const choice = await chooseBackend('fp16', undefined, false);
    expect(choice.backend).toBe('webgpu');
    expect(choice.reason).toContain("no 'shader-f16' needed");
    expect(choice.adapter?.shaderF16).toBe(false);
  });

  it('says so when the adapter has shader-f16', async () => {
    offer({ requestAdapter: () => Promise.resolve(adapter(['shader-f16'])) });
    const choice = await chooseBackend('fp16', undefined, false);
    expect(choice.backend).toBe('webgpu');
    expect(choice.adapter?.shaderF16).toBe(true);
    expect(choice.reason).not.toContain('needed');
  });

  it('falls back to wasm, with the reason, when there is no adapter or no WebGPU', async () => {
    offer({ requestAdapter: () => Promise.resolve(null) });
    expect(await chooseBackend('fp32', undefined, false)).toMatchObject({
      backend: 'wasm',
      reason: expect.stringContaining('no WebGPU adapter') as unknown,
    });
    offer(undefined);
    expect((await chooseBackend('fp32', undefined, false)).reason).toContain('navigator.gpu is missing');
  });

  it('leaves a software fallback adapter to an explicit ?backend=webgpu', async () => {
    offer({ requestAdapter: () => Promise.resolve(adapter([], true)) });
    const auto = await chooseBackend('fp32', undefined, false);
    expect(auto.backend).toBe('wasm');
    expect(auto.reason).toContain('software fallback');
    expect(auto.adapter?.isFallbackAdapter).toBe(true);
    const forced = await chooseBackend('fp32', 'webgpu', false);
    expect(forced.backend).toBe('webgpu');
    expect(forced.reason).toContain('wrong from 32-token prompts');
    // older browsers have no GPUAdapterInfo and put the flag on the adapter itself
    const old = { features: new Set<string>(), limits: {}, isFallbackAdapter: true };
    offer({ requestAdapter: () => Promise.resolve(old) });
    const choice = await chooseBackend('fp32', undefined, false);
    expect(choice.backend).toBe('wasm');
    expect(choice.reason).toContain('(unnamed)');
  });

  it('falls back to wasm when asking for an adapter fails', async () => {
    offer({ requestAdapter: () => Promise.reject(new Error('GPU process crashed')) });
    const choice = await chooseBackend('fp32', undefined, false);
    expect(choice.backend).toBe('wasm');
    expect(choice.reason).toContain('GPU process crashed');
  });

  it('refuses a forced WebGPU that cannot work, and honours a forced wasm', async () => {
    offer({ requestAdapter: () => Promise.resolve(null) });
    await expect(chooseBackend('fp32', 'webgpu', false)).rejects.toMatchObject({ code: 'webgpu-unavailable' });
    offer({ requestAdapter: () => Promise.resolve(adapter(['shader-f16'])) });
    expect((await chooseBackend('fp16', 'wasm', false)).backend).toBe('wasm');
  });
});
