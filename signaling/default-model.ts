/**
 * The embedded default model package, made on first start (no download): a seeded random checkpoint
 * of the shards 'demo' preset (Qwen3 layout, real Qwen3 tokenizer), converted to an fp32 package.
 * Kept under .tandem/ (git-ignored) and reused afterwards.
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { convertCheckpoint } from '../shards/convert.ts';
import { writeModel } from '../shards/make-model.ts';

export const DEFAULT_PACKAGE_NAME = 'tandem-demo';

/** Returns the package folder, making the checkpoint and the package when missing. */
export async function ensureDefaultPackage(dataDir: string, log: (line: string) => void): Promise<string> {
  const packageDir = path.join(dataDir, 'models', DEFAULT_PACKAGE_NAME);
  // convertCheckpoint writes manifest.json last: its presence means a complete package.
  if (existsSync(path.join(packageDir, 'manifest.json'))) return packageDir;
  const checkpointDir = path.join(dataDir, 'checkpoints', 'demo');
  if (!existsSync(path.join(checkpointDir, 'model.safetensors'))) {
    log(`making the default demo checkpoint in ${checkpointDir} (seeded random weights, once)...`);
    // Written aside and renamed, so an interrupted start never leaves a half checkpoint behind.
    const partial = `${checkpointDir}.partial`;
    await rm(partial, { recursive: true, force: true });
    await rm(checkpointDir, { recursive: true, force: true });
    writeModel(partial, { preset: 'demo' });
    await rename(partial, checkpointDir);
  }
  log(`converting it to the package ${packageDir}...`);
  await convertCheckpoint(checkpointDir, packageDir, { name: DEFAULT_PACKAGE_NAME, dtype: 'fp32' });
  return packageDir;
}
