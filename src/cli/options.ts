import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, EXIT } from './exit-codes.js';
import { errorMessage } from '../common/errors.js';
import { MAX_FLAG_VALUE_BYTES } from '../contract/index.js';

/**
 * Option values arrive as strings. These check only that a value is a number at all; the job
 * contract's schema judges the range where it has an opinion, so both speak with one voice.
 */

const usage = (option: string, value: string, what: string): CliError =>
  new CliError(EXIT.usage, `${option}: ${JSON.stringify(value)} is not ${what}`);

/** A decimal number such as 30 or 2.5 (a sign is allowed so the schema can name the range). */
export function parseNumber(option: string, value: string, what = 'a number'): number {
  if (!/^[-+]?\d+(\.\d+)?$/.test(value.trim())) throw usage(option, value, what);
  return Number(value);
}

export function parseInteger(option: string, value: string): number {
  if (!/^[-+]?\d+$/.test(value.trim())) throw usage(option, value, 'a whole number');
  // Past 2^53 a whole number is no longer one a double holds exactly.
  if (!Number.isSafeInteger(Number(value))) {
    throw new CliError(EXIT.usage, `${option}: must be at most ${Number.MAX_SAFE_INTEGER}`);
  }
  return Number(value);
}

/** A whole number of at least `min`, for options the schema does not cover. */
export function parseCount(option: string, value: string, min: number): number {
  const count = parseInteger(option, value);
  if (count < min) throw new CliError(EXIT.usage, `${option}: must be at least ${min}`);
  return count;
}

/** A number of seconds that may be 0, for waits the CLI itself does. */
export function parseWaitSeconds(option: string, value: string): number {
  const seconds = parseNumber(option, value, 'a number of seconds');
  if (seconds < 0) throw new CliError(EXIT.usage, `${option}: must not be negative`);
  return seconds;
}

/**
 * A comma-separated list of tool rules. Commas inside parentheses stay with their rule, so
 * `Bash(git log:*),Read` is two rules.
 */
export function parseList(value: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of value) {
    if (char === '(') depth++;
    if (char === ')') depth = Math.max(0, depth - 1);
    if (char === ',' && depth === 0) {
      items.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  items.push(current);
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

/**
 * A JSON value given inline (it starts with `{`) or as the path of a file holding it, relative
 * to `cwd`. Only that it is JSON is checked here; the job contract judges the rest.
 */
export function parseJsonOption(option: string, value: string, cwd: string): unknown {
  const inline = value.trimStart().startsWith('{');
  let text = value;
  if (!inline) {
    try {
      text = readJsonFile(resolve(cwd, value));
    } catch (error) {
      throw new CliError(EXIT.usage, `${option}: cannot read ${value}: ${errorMessage(error)}`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const what = inline ? 'the value' : value;
    throw new CliError(EXIT.usage, `${option}: ${what} is not JSON: ${errorMessage(error)}`);
  }
}

/** What a file of a JSON option may hold: far more than the job's bound, whitespace and all. */
const MAX_JSON_FILE_BYTES = 16 * MAX_FLAG_VALUE_BYTES;

/** A regular file's text, if it is no larger than MAX_JSON_FILE_BYTES; a FIFO is not waited on. */
function readJsonFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new Error('it is not a regular file');
    if (info.size > MAX_JSON_FILE_BYTES) {
      throw new Error(`it holds ${info.size} bytes, more than ${MAX_JSON_FILE_BYTES}`);
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
