/**
 * What an end-to-end benchmark reports: its goals (a figure against a target, met or not, or not
 * measured) and the JSON document it saves under bench/results/. Shared by bench.ts, api-bench.ts and
 * failover-bench.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CliOption } from '../core/cli.ts';

/** A bench CLI's --out flag: where its JSON goes. */
export function outOption(
  defaultPath: string,
  what = 'where the JSON goes',
): CliOption & { type: 'string'; default: string } {
  return { type: 'string', default: defaultPath, arg: 'FILE', help: `${what} (default ${defaultPath})` };
}

/** A bench CLI's --label flag, stored with its figures. */
export const LABEL_OPTION = {
  type: 'string',
  default: '',
  arg: 'TEXT',
  help: 'stored with the figures (e.g. before, after)',
} as const satisfies CliOption;

/** A bench CLI's --preset flag: the seeded model it runs (model-fixture.ts), realistic unless asked. */
export const PRESET_OPTION = {
  type: 'string',
  default: 'realistic',
  arg: 'P',
  help: 'seeded model: realistic, demo or tiny (default realistic)',
} as const satisfies CliOption;

export interface Goal {
  name: string;
  /** null: not measured (the part was skipped or could not run). */
  value: number | null;
  /** e.g. '<= 50' */
  target: string;
  met: boolean | null;
}

/** The goal `value op bound`; not measured when value is null or undefined. */
export function goal(name: string, value: number | null | undefined, op: '<=' | '>=' | '=', bound: number): Goal {
  const v = value ?? null;
  const met = v === null ? null : op === '<=' ? v <= bound : op === '>=' ? v >= bound : v === bound;
  return { name, value: v, target: `${op} ${bound}`, met };
}

/** The goal `num / den op bound`; not measured without both figures (or with den <= 0). */
export function ratioGoal(
  name: string,
  num: number | null | undefined,
  den: number | null | undefined,
  op: '<=' | '>=',
  bound: number,
): Goal {
  return goal(name, num != null && den != null && den > 0 ? num / den : null, op, bound);
}

/** Writes `doc` as indented JSON to `file` (folders made as needed); returns the absolute path. */
export function writeBenchJson(file: string, doc: unknown): string {
  const path = resolve(file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(doc, null, 1) + '\n');
  return path;
}
