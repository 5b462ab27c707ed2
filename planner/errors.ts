// TandemError moved to the shared core; this re-export keeps older imports working.
export { TandemError } from '../core/errors.ts';
