/**
 * Whether the page's backend computes a stage right at a prompt's size, before the page offers it for
 * stages. The compute sweep checks its probe once at 3 rows, and that passed on Chromium's SwiftShader
 * WebGPU, where a stage's prefill is wrong from 32 rows on: the layer probe at 64 rows came out 0.2 off
 * (relative), while a MatMul-block probe at 64 rows was right. A GPU driver can have such a bug too, and a
 * page that computes a stage wrong corrupts every page's answer. So real stage layers (the profile's layer
 * probe, 6 MiB) run one prefill of STAGE_CHECK_ROWS rows against the fp64 reference.
 */
import type { StageBackend, StageRuntime, StageSession } from '../../shards/runtime/stage-runtime.ts';
import { layerSweepProbe, PROFILE_LAYER_PROBE } from './layer-probe.ts';
import type { SweepProbe } from './sweep-probe.ts';

/** Rows of the check's prefill: above SwiftShader's 32, within the layer probe's 256 positions. */
export const STAGE_CHECK_ROWS = 64;
/** Largest accepted max |runtime - reference| / max |reference| (fp32 kernels against fp64). */
export const STAGE_CHECK_TOLERANCE = 1e-3;

/**
 * Runs `probe` (default: the profile's two stage layers) once at `rows` on `backend`. Null when the output
 * is right; else what went wrong, in words (a session that cannot be created or run counts as wrong).
 */
export async function checkStagePrefill(
  runtime: StageRuntime,
  backend: StageBackend,
  rows = STAGE_CHECK_ROWS,
  probe: SweepProbe = layerSweepProbe(PROFILE_LAYER_PROBE.shape, backend, PROFILE_LAYER_PROBE.maxPositions),
): Promise<string | null> {
  let session: StageSession | null = null;
  const name = backend === 'webgpu' ? 'WebGPU' : backend;
  try {
    session = await runtime.createSession({ ...probe.session, backend });
    const error = probe.checkError(rows, await session.run(probe.feeds(rows), probe.runOptions));
    if (error <= STAGE_CHECK_TOLERANCE) return null;
    return `${name} computed a ${rows}-row prefill of real stage layers wrong (relative error ${error.toExponential(1)} against the fp64 reference).`;
  } catch (e) {
    return `${name} could not run real stage layers (${e instanceof Error ? e.message : String(e)}).`;
  } finally {
    await session?.release().catch(() => undefined);
  }
}
