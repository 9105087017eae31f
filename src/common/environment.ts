import { z } from 'zod';

/**
 * The variables of `names` the environment sets, as strings. An empty variable counts as not
 * set, as in most shells' `VAR= command`, so that a schema's default applies to it.
 */
export function variablesSet(
  names: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const set: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') set[name] = value;
  }
  return set;
}

/**
 * A number as a variable writes it, for z.preprocess: digits, with a sign and a fraction where
 * the schema allows them. z.coerce would also take ' ' (as 0), '0x1F90' and '1e3'; any other
 * string stays a string, which z.number refuses (NOT_DECIMAL: `1e9` is a number, but not so).
 */
export const NOT_DECIMAL = 'must be a number in decimal digits (no exponent, no hex)';

export function decimal(value: unknown): unknown {
  return typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
}

/** A whole number from `min` to `max`, as a variable writes it (see decimal). */
export const integer = (
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  maxMessage = `must be at most ${max}`,
) =>
  z.preprocess(
    decimal,
    z
      .number({ error: NOT_DECIMAL })
      // First, and alone: .int() calls a number past the safe integers no integer.
      .max(max, { error: maxMessage, abort: true })
      .int('must be an integer')
      .min(min, `must be at least ${min}`),
  );
