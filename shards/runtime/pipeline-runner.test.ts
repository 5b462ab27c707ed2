/**
 * The Node pipeline runner against implementations it shares no generation code with:
 * transformers.js `generate()` (greedy) on the export-full model, offline, and the fp64 reference.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportFull } from '../export-full.ts';
import type { Architecture, PackageDType } from '../manifest.ts';
import { PackageReader } from '../package-reader.ts';
import { parseSplit, PipelineRunner } from './pipeline-runner.ts';
import { ReferenceModel } from '../reference-forward.ts';
import { removeTestPackages, testPackage, testTempDir } from '../stage-test-packages.ts';

afterAll(() => removeTestPackages());

const PROMPT = [11, 200, 37, 5, 380, 91, 64, 2];
const NEW_TOKENS = 10;

/** Greedy continuation by transformers.js from the export-full folder, with no network. */
async function transformersGreedy(exportDir: string, prompt: number[], maxNewTokens: number): Promise<number[]> {
  const { AutoModelForCausalLM, env, Tensor } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = dirname(exportDir) + '/';
  const model = await AutoModelForCausalLM.from_pretrained(basename(exportDir), { dtype: 'fp32', device: 'cpu' });
  try {
    const input_ids = new Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]);
    const attention_mask = new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    const out = (await model.generate({
      input_ids,
      attention_mask,
      max_new_tokens: maxNewTokens,
      do_sample: false,
    })) as InstanceType<typeof Tensor>;
    return Array.from(out.data as BigInt64Array, Number).slice(prompt.length);
  } finally {
    await model.dispose();
  }
}

describe('pipeline runner greedy tokens == transformers.js generate() on export-full == fp64 reference', () => {
  const cases: { arch: Architecture; tied: boolean; split: string; dtype: PackageDType }[] = [
    { arch: 'qwen3', tied: true, split: '1-2,3-4', dtype: 'fp32' },
    { arch: 'qwen2', tied: false, split: '1,2-3,4', dtype: 'fp32' },
    { arch: 'llama', tied: false, split: '1-3,4', dtype: 'fp32' },
    { arch: 'qwen3', tied: true, split: '1,2-4', dtype: 'q4' },
  ];
  for (const { arch, tied, split, dtype } of cases) {
    it(`${arch} ${tied ? 'tied' : 'untied'} ${dtype}, split ${split}, node and wasm`, async () => {
      const pkg = await testPackage(arch, tied, dtype);
      const manifest = pkg.reader.manifest;
      const reference = new ReferenceModel(manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT, NEW_TOKENS);

      const exportDir = join(testTempDir('export'), `${arch}-${dtype}-export`);
      await exportFull(pkg.dir, exportDir);
      const expected = await transformersGreedy(exportDir, PROMPT, NEW_TOKENS);
      expect(expected).toHaveLength(NEW_TOKENS);
      expect(expected).toEqual(reference);

      for (const backend of ['node', 'wasm'] as const) {
        const runner = await PipelineRunner.open(pkg.reader, {
          split: parseSplit(split, 4),
          backend,
          maxPositions: 64,
        });
        try {
          const result = await runner.generate(PROMPT, { maxNewTokens: NEW_TOKENS, stopTokens: [] });
          expect(result.tokens).toEqual(expected);
          expect(result.stopReason).toBe('max-new-tokens');
          const stages = runner.stageReports();
          expect(stages.map((s) => s.layers)).toEqual(split.split(','));
          expect(result.timings.wireBytes).toBeGreaterThan(0);
        } finally {
          await runner.release();
        }
      }
    });
  }

  it('float16 hidden states on the wire still give the greedy tokens of this model', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT, 6);
    const runner = await PipelineRunner.open(pkg.reader, {
      split: parseSplit('1-2,3-4', 4),
      backend: 'node',
      wire: 'float16',
      maxPositions: 64,
    });
    try {
      const result = await runner.generate(PROMPT, { maxNewTokens: 6, stopTokens: [] });
      expect(result.tokens).toEqual(reference);
    } finally {
      await runner.release();
    }
  });

  it('stops at an end-of-sequence token', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT, 4);
    const runner = await PipelineRunner.open(pkg.reader, { backend: 'node', maxPositions: 64 });
    try {
      const result = await runner.generate(PROMPT, { maxNewTokens: 10, stopTokens: [reference[2]] });
      expect(result.stopReason).toBe('eos');
      expect(result.tokens).toEqual(reference.slice(0, reference.indexOf(reference[2]) + 1));
    } finally {
      await runner.release();
    }
  });
});

describe('pipeline runner input checks', () => {
  it('parses 1-based inclusive splits and rejects gaps, overlaps and short covers', () => {
    expect(parseSplit('1-4,5-9,10-16', 16)).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 9 },
      { start: 9, end: 16 },
    ]);
    expect(parseSplit('1,2-3,4', 4)).toEqual([
      { start: 0, end: 1 },
      { start: 1, end: 3 },
      { start: 3, end: 4 },
    ]);
    for (const bad of ['1-2,4', '1-3,3-4', '1-3', '0-4', '2-1,2-4', 'a-b', '1-5']) {
      expect(() => parseSplit(bad, 4)).toThrow(expect.objectContaining({ code: 'split-invalid' }));
    }
  });

  it('refuses a tampered unit blob (SHA-256) before running anything', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const dir = join(testTempDir('tamper'), 'pkg');
    cpSync(pkg.dir, dir, { recursive: true });
    const file = join(dir, 'layer.2.bin');
    const bytes = readFileSync(file);
    bytes[100] = bytes[100] ^ 1;
    writeFileSync(file, bytes);
    await expect(
      PipelineRunner.open(PackageReader.open(dir), { split: parseSplit('1-2,3-4', 4) }),
    ).rejects.toMatchObject({ code: 'shard-hash-mismatch' });
  });

  it('rejects an empty prompt, a context past the RoPE tables and out-of-vocabulary ids', async () => {
    const pkg = await testPackage('llama', false, 'fp32');
    const runner = await PipelineRunner.open(pkg.reader, { backend: 'node', maxPositions: 64 });
    try {
      await expect(runner.generate([], { maxNewTokens: 2 })).rejects.toMatchObject({ code: 'prompt-empty' });
      await expect(runner.generate(PROMPT, { maxNewTokens: 64 })).rejects.toMatchObject({ code: 'context-too-long' });
      await expect(runner.generate([1, 384], { maxNewTokens: 2 })).rejects.toMatchObject({
        code: 'token-out-of-range',
      });
    } finally {
      await runner.release();
    }
  });
});
