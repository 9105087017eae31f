import { setFlagsFromString } from 'node:v8';

/**
 * How far the worker's old generation may grow past what survived a full collection before V8
 * collects again, in percent. V8 picks that factor itself from how fast the program allocated
 * against how fast it collects, up to 4× on a machine with a few GiB of memory, and a worker that
 * was waiting for jobs at its last collection gets a large one. A run then printing long lines as
 * fast as it can fills that room with the Buffers of lines on their way to Redis, freed only by a
 * full collection: the worker's RSS grew by about 90 MB during a 1 GiB run, and by about 45 MB
 * at 75%, with the same events/s and jobs/s (docs/scaling.md).
 */
const HEAP_GROWING_PERCENT = 75;

const FLAG = /^--heap[-_]growing[-_]percent\b/;

/**
 * Sets the worker's heap growth (V8 reads it whenever it sets the next limit) unless node was
 * started with a `--heap-growing-percent` of its own, which then stands. Says whether it set it.
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => FLAG.test(arg))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
