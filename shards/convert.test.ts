import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Architecture, ModelManifest, PackageDType } from './manifest.ts';
import { convertCheckpoint } from './convert.ts';
import { writeModel, type CheckpointDType } from './make-model.ts';
import { PackageReader } from './package-reader.ts';
import { readFloatTensor, tensorBytes } from './package-layout.ts';
import { dequantizeQ4 } from './quantize.ts';
import {
  decodeToFloat32,
  encodeSafetensors,
  encodeSafetensorsIndex,
  float16BitsToNumber,
  numberToFloat16Bits,
  parseSafetensors,
} from './safetensors.ts';

const root = mkdtempSync(join(tmpdir(), 'tandem-convert-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const small = { vocab_size: 320 };

function readCheckpoint(dir: string): Map<string, { shape: number[]; data: Float32Array }> {
  const st = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of st.header.tensors.values())
    out.set(t.name, { shape: t.shape, data: Float32Array.from(decodeToFloat32(t.dtype, st.data(t.name))) });
  return out;
}

/** Contract name -> HF name and whether it is a matmul weight stored transposed. */
function expectedTensors(
  m: ModelManifest,
  tied: boolean,
): Map<string, { unit: string; source: string; matmul: boolean }> {
  const map = new Map<string, { unit: string; source: string; matmul: boolean }>();
  map.set('embed/embed_tokens.weight', { unit: 'embed', source: 'model.embed_tokens.weight', matmul: false });
  for (let i = 0; i < m.config.num_hidden_layers; i++) {
    const u = `layer.${i}`;
    const add = (name: string, source: string, matmul: boolean) =>
      map.set(`${u}/${name}`, { unit: u, source: `model.layers.${i}.${source}`, matmul });
    add('input_layernorm.weight', 'input_layernorm.weight', false);
    add('post_attention_layernorm.weight', 'post_attention_layernorm.weight', false);
    for (const p of ['q', 'k', 'v', 'o']) add(`${p}_proj.weight`, `self_attn.${p}_proj.weight`, true);
    for (const p of ['gate', 'up', 'down']) add(`${p}_proj.weight`, `mlp.${p}_proj.weight`, true);
    if (m.architecture === 'qwen2')
      for (const p of ['q', 'k', 'v']) add(`${p}_proj.bias`, `self_attn.${p}_proj.bias`, false);
    if (m.architecture === 'qwen3')
      for (const p of ['q', 'k']) add(`${p}_norm.weight`, `self_attn.${p}_norm.weight`, false);
  }
  map.set('head/norm.weight', { unit: 'head', source: 'model.norm.weight', matmul: false });
  map.set('head/lm_head.weight', {
    unit: 'head',
    source: tied ? 'model.embed_tokens.weight' : 'lm_head.weight',
    matmul: true,
  });
  return map;
}

async function checkPackage(ckDir: string, pkgDir: string, dtype: PackageDType, tied: boolean): Promise<void> {
  const ck = readCheckpoint(ckDir);
  const reader = PackageReader.open(pkgDir);
  const m = reader.manifest;
  expect(m.dtype).toBe(dtype);
  const expected = expectedTensors(m, tied);
  const seen = new Set<string>();
  for (const unit of m.units) {
    const bytes = await reader.readUnit(unit);
    for (const t of unit.tensors) {
      const key = `${unit.id}/${t.name.replace(/\.(qweight|scales)$/, '.weight')}`;
      const exp = expected.get(key);
      expect(exp, `unexpected tensor ${unit.id}/${t.name}`).toBeDefined();
      seen.add(key);
      const src = ck.get(exp!.source)!;
      if (t.name.endsWith('.scales')) continue; // checked with its qweight
      if (t.dtype === 'uint4') {
        // q4: [out, in] in HF orientation, within half a quantisation step of the checkpoint
        const [out, inp] = src.shape as [number, number];
        expect(t.shape).toEqual([out, inp]);
        const scales = readFloatTensor(unit, bytes, t.name.replace('.qweight', '.scales')).data;
        const deq = dequantizeQ4({ qweight: tensorBytes(unit, bytes, t.name), scales }, out, inp);
        let worst = 0;
        for (let i = 0; i < out * inp; i++)
          worst = Math.max(worst, Math.abs(deq[i] - src.data[i]) - scales[Math.floor(i / 32)] / 2);
        expect(worst).toBeLessThanOrEqual(1e-6);
        continue;
      }
      const got = readFloatTensor(unit, bytes, t.name);
      const round = (v: number) => (t.dtype === 'float16' ? float16BitsToNumber(numberToFloat16Bits(v)) : v);
      if (exp!.matmul) {
        // stored [in, out] = the checkpoint's [out, in] transposed
        const [out, inp] = src.shape as [number, number];
        expect(got.shape).toEqual([inp, out]);
        let bad = 0;
        for (let o = 0; o < out; o++)
          for (let i = 0; i < inp; i++) if (got.data[i * out + o] !== round(src.data[o * inp + i])) bad++;
        expect(bad, `${unit.id}/${t.name}`).toBe(0);
      } else {
        expect(got.shape).toEqual(src.shape);
        expect(t.dtype).toBe(t.name === 'embed_tokens.weight' && dtype === 'fp16' ? 'float16' : 'float32');
        let bad = 0;
        for (let i = 0; i < src.data.length; i++) if (got.data[i] !== round(src.data[i])) bad++;
        expect(bad, `${unit.id}/${t.name}`).toBe(0);
      }
    }
  }
  expect([...expected.keys()].filter((k) => !seen.has(k))).toEqual([]);
}

/** Expects `p` to reject with a TandemError of `code` whose message contains `text`. */
async function expectRejection(p: Promise<unknown>, code: string, text: string): Promise<void> {
  await expect(p).rejects.toMatchObject({ code });
  await expect(p).rejects.toThrow(text);
}
describe('convert', () => {
  const combos: [Architecture, boolean, CheckpointDType][] = [
    ['qwen3', true, 'bf16'],
    ['qwen3', false, 'fp32'],
    ['qwen2', true, 'fp16'],
    ['qwen2', false, 'bf16'],
    ['llama', true, 'fp32'],
    ['llama', false, 'fp16'],
  ];
  for (const [arch, tied, ckDtype] of combos) {
    it(`${arch} ${tied ? 'tied' : 'untied'} (${ckDtype} checkpoint) -> fp32 package equal to the checkpoint (transposed)`, async () => {
      const ck = join(root, `${arch}-${tied}-${ckDtype}`);
      writeModel(ck, { preset: 'tiny', arch, tied, dtype: ckDtype, overrides: small });
      const pkg = join(root, `${arch}-${tied}-${ckDtype}-pkg`);
      const { manifest } = await convertCheckpoint(ck, pkg, { dtype: 'fp32' });
      expect(manifest.architecture).toBe(arch);
      expect(manifest.name).toBe(`${arch}-${tied}-${ckDtype}-pkg`);
      expect(manifest.tokenizer.files).toEqual(['tokenizer.json', 'tokenizer_config.json']);
      expect(manifest.generation).toMatchObject({ eos_token_id: [151645, 151643] });
      for (const f of manifest.tokenizer.files)
        expect(readFileSync(join(pkg, f)).equals(readFileSync(join(ck, f)))).toBe(true);
      for (const u of manifest.units) for (const t of u.tensors) expect(t.offset % 64).toBe(0);
      await checkPackage(ck, pkg, 'fp32', tied);
    });
  }

  it('fp16 and q4 packages hold the checkpoint rounded to fp16 / quantised within half a step', async () => {
    const ck = join(root, 'qwen3-true-bf16');
    for (const dtype of ['fp16', 'q4'] as const) {
      const pkg = join(root, `q3-${dtype}`);
      await convertCheckpoint(ck, pkg, { dtype, name: `q3-${dtype}` });
      await checkPackage(ck, pkg, dtype, true);
    }
  });

  it('reads a sharded checkpoint (model.safetensors.index.json) into the same package', async () => {
    const ck = join(root, 'llama-false-fp16');
    const sharded = join(root, 'sharded');
    writeModel(sharded, { preset: 'tiny', arch: 'llama', tied: false, dtype: 'fp16', overrides: small });
    const st = parseSafetensors(new Uint8Array(readFileSync(join(sharded, 'model.safetensors'))));
    rmSync(join(sharded, 'model.safetensors'));
    const names = [...st.header.tensors.keys()];
    const weightMap = new Map<string, string>();
    const parts = [names.slice(0, 20), names.slice(20)];
    parts.forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      const tensors = part.map((n) => ({
        name: n,
        dtype: st.header.tensors.get(n)!.dtype,
        shape: st.header.tensors.get(n)!.shape,
        data: st.data(n),
      }));
      writeFileSync(join(sharded, file), encodeSafetensors(tensors.reverse()));
      for (const n of part) weightMap.set(n, file);
    });
    writeFileSync(join(sharded, 'model.safetensors.index.json'), encodeSafetensorsIndex(weightMap, 0));
    const a = await convertCheckpoint(ck, join(root, 'one-file-pkg'), { name: 'p' });
    const b = await convertCheckpoint(sharded, join(root, 'sharded-pkg'), { name: 'p' });
    expect(b.manifest.units.map((u) => u.sha256)).toEqual(a.manifest.units.map((u) => u.sha256));
  });

  it('rejects an unknown architecture, a missing tensor and a misshapen tensor, naming them, without writing a manifest', async () => {
    const ck = join(root, 'broken');
    writeModel(ck, { preset: 'tiny', arch: 'qwen3', overrides: small });
    const configPath = join(ck, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;

    writeFileSync(configPath, JSON.stringify({ ...config, architectures: ['MistralForCausalLM'] }));
    await expectRejection(
      convertCheckpoint(ck, join(root, 'broken-a')),
      'architecture-unsupported',
      'MistralForCausalLM',
    );

    writeFileSync(configPath, JSON.stringify({ ...config, intermediate_size: 96 }));
    await expectRejection(
      convertCheckpoint(ck, join(root, 'broken-b')),
      'tensor-shape-mismatch',
      'model.layers.0.mlp.gate_proj.weight',
    );
    expect(existsSync(join(root, 'broken-b'))).toBe(false); // checked before writing anything

    writeFileSync(configPath, JSON.stringify(config));
    const stPath = join(ck, 'model.safetensors');
    const st = parseSafetensors(new Uint8Array(readFileSync(stPath)));
    const keep = [...st.header.tensors.values()].filter((t) => t.name !== 'model.layers.2.self_attn.k_norm.weight');
    writeFileSync(
      stPath,
      encodeSafetensors(
        keep.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: st.data(t.name).slice() })),
      ),
    );
    await expectRejection(
      convertCheckpoint(ck, join(root, 'broken-c')),
      'tensor-missing',
      'model.layers.2.self_attn.k_norm.weight',
    );
    expect(existsSync(join(root, 'broken-c'))).toBe(false);

    // q4 needs whole 32-value blocks along every matmul input
    writeFileSync(stPath, readFileSync(join(root, 'qwen3-true-bf16', 'model.safetensors')));
    await convertCheckpoint(ck, join(root, 'ok'), { dtype: 'fp32' });
    const odd = join(root, 'odd');
    writeModel(odd, { preset: 'tiny', overrides: { ...small, intermediate_size: 72 } });
    await expectRejection(convertCheckpoint(odd, join(root, 'odd-q4'), { dtype: 'q4' }), 'q4-shape', 'down_proj');
    expect(existsSync(join(root, 'odd-q4'))).toBe(false);

    truncateSync(stPath, 1000);
    await expect(convertCheckpoint(ck, join(root, 'broken-d'))).rejects.toMatchObject({
      code: 'safetensors-malformed',
    });
  });

  it('package reader rejects a tampered or truncated unit blob', async () => {
    const pkg = join(root, 'qwen3-true-bf16-pkg');
    const reader = PackageReader.open(pkg);
    await reader.verifyAll();
    const unit = reader.manifest.units[2];
    const path = join(pkg, unit.file);
    const original = readFileSync(path);
    const tampered = Buffer.from(original);
    tampered[100] ^= 0x10;
    writeFileSync(path, tampered);
    await expectRejection(reader.readUnit(unit.id), 'shard-hash-mismatch', unit.file);
    writeFileSync(path, original.subarray(0, original.length - 64));
    await expect(reader.readUnit(unit.id)).rejects.toMatchObject({ code: 'shard-truncated' });
    writeFileSync(path, original);
    await expect(reader.readUnit(unit.id)).resolves.toHaveLength(unit.bytes);
  });
});
