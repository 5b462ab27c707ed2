/**
 * `npm run shards -- export-full <package> --out <dir>`: writes the package as one whole-model ONNX in
 * the transformers.js layout, so `AutoModelForCausalLM.from_pretrained` + `generate()` run it offline:
 *
 *   <dir>/config.json               Hugging Face config (+ "transformers.js_config" when weights are external)
 *   <dir>/generation_config.json    if the package has one
 *   <dir>/tokenizer.json, ...       the package's tokenizer files
 *   <dir>/onnx/model.onnx           the graph (weights inline, or ...)
 *   <dir>/onnx/model.onnx_data      (... here, for models too large to inline)
 */
import { closeSync, copyFileSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseCliArgs, usageError } from '../core/cli.ts';
import { buildFullModel, FULL_MODEL_DATA_FILE, type FullModelOptions } from './full-graph.ts';
import type { UnitEntry } from './manifest.ts';
import { PackageReader } from './package-reader.ts';

export interface ExportResult {
  modelBytes: number;
  dataBytes: number;
  files: string[];
}

export async function exportFull(
  packageDir: string,
  outDir: string,
  opts: FullModelOptions = {},
): Promise<ExportResult> {
  const reader = PackageReader.open(packageDir);
  const { manifest } = reader;
  const blobs = new Map<string, Uint8Array>();
  for (const u of manifest.units) blobs.set(u.id, await reader.readUnit(u)); // verifies SHA-256
  const full = buildFullModel(manifest, (u: UnitEntry) => blobs.get(u.id)!, opts);

  mkdirSync(join(outDir, 'onnx'), { recursive: true });
  const files: string[] = [];
  const write = (name: string, data: string | Uint8Array) => {
    writeFileSync(join(outDir, name), data);
    files.push(name);
  };
  write('onnx/model.onnx', full.model);
  if (full.dataChunks.length > 0) {
    const fd = openSync(join(outDir, 'onnx', FULL_MODEL_DATA_FILE), 'w');
    try {
      for (const chunk of full.dataChunks) writeSync(fd, chunk);
    } finally {
      closeSync(fd);
    }
    files.push(`onnx/${FULL_MODEL_DATA_FILE}`);
  }
  const config: Record<string, unknown> = {
    ...manifest.config,
    model_type: manifest.config['model_type'] ?? manifest.architecture,
  };
  if (full.dataChunks.length > 0) config['transformers.js_config'] = { use_external_data_format: true };
  write('config.json', JSON.stringify(config, null, 2) + '\n');
  if (manifest.generation) write('generation_config.json', JSON.stringify(manifest.generation, null, 2) + '\n');
  for (const f of manifest.tokenizer.files) {
    copyFileSync(reader.path(f), join(outDir, f));
    files.push(f);
  }
  return { modelBytes: full.model.byteLength, dataBytes: full.dataBytes, files };
}

/** The `export-full` entry of `npm run shards` (registered in cli.ts's COMMANDS table). */
export const exportFullCommand = {
  usage: 'export-full <package dir> --out <dir> [--weights auto|inline|external] [--max-positions N]',
  summary: 'write the whole model as one ONNX in the transformers.js layout (onnx/model.onnx + config + tokenizer)',
  async run(args: string[]): Promise<void> {
    const { values, positionals } = parseCliArgs({
      args,
      options: {
        out: { type: 'string' },
        weights: { type: 'string', default: 'auto' },
        'max-positions': { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length !== 1 || !values.out)
      throw usageError('export-full needs one package folder and --out <dir>.');
    const weights = values.weights;
    if (weights !== 'auto' && weights !== 'inline' && weights !== 'external')
      throw usageError(`--weights must be auto, inline or external, not '${weights}'.`);
    const maxPositions = values['max-positions'] === undefined ? undefined : Number(values['max-positions']);
    if (maxPositions !== undefined && !(Number.isInteger(maxPositions) && maxPositions > 0))
      throw usageError(`--max-positions must be a positive integer, not '${values['max-positions']}'.`);
    const started = performance.now();
    const r = await exportFull(positionals[0], values.out, { weights, maxPositions });
    console.log(
      `wrote ${values.out}: onnx/model.onnx ${(r.modelBytes / 1e6).toFixed(1)} MB` +
        (r.dataBytes ? ` + onnx/${FULL_MODEL_DATA_FILE} ${(r.dataBytes / 1e6).toFixed(1)} MB` : ' (weights inline)') +
        `, ${r.files.length} files in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  },
};
