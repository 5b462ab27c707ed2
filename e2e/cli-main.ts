/**
 * Runs a CLI's `main` when its file is the process entry point (not when a test imports it), and
 * turns a TandemError into `error [code]: message` with exit status 1.
 */
import { pathToFileURL } from 'node:url';
import { TandemError } from '../planner/errors.ts';

export function runIfEntryPoint(moduleUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof TandemError) console.error(`error [${e.code}]: ${e.message}`);
      else console.error(e);
      process.exit(1);
    },
  );
}
