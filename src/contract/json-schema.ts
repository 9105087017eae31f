import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import { errorMessage } from '../common/errors.js';

/** ajv-formats is CommonJS: its plugin is the module's `default` under NodeNext. */
const addFormats = formatsModule.default;

/** How many schema violations an error message names. */
const NAMED_VIOLATIONS = 3;

export type CompiledSchema =
  | { readonly ok: true; readonly validate: ValidateFunction }
  | { readonly ok: false; readonly reason: string };

/**
 * Compiles a JSON Schema the way the pinned CLI does (draft-07, strict: an unknown keyword is
 * refused), so a schema the CLI would refuse is refused before a run. Unlike the CLI, which
 * ignores `format`, the formats of ajv-formats are checked (an unknown format is refused).
 * A fresh instance each time: ajv caches every schema it compiles, and two jobs may use one
 * `$id` for different schemas.
 */
export function compileJsonSchema(schema: Readonly<Record<string, unknown>>): CompiledSchema {
  const ajv = new Ajv({ allErrors: true, logger: false });
  addFormats(ajv);
  try {
    return { ok: true, validate: ajv.compile(schema) };
  } catch (error) {
    return { ok: false, reason: errorMessage(error) };
  }
}

/**
 * Checks a value against a schema: null when it is valid, else the first violations in one
 * line (`/a must be integer; must have required property 'b'`).
 */
export function schemaViolations(
  schema: Readonly<Record<string, unknown>>,
  value: unknown,
): string | null {
  const compiled = compileJsonSchema(schema);
  if (!compiled.ok) return `the schema does not compile: ${compiled.reason}`;
  if (compiled.validate(value)) return null;
  return describeViolations(compiled.validate.errors ?? []);
}

function describeViolations(errors: readonly ErrorObject[]): string {
  const named = errors.slice(0, NAMED_VIOLATIONS).map((error) => {
    const where = error.instancePath === '' ? '' : `${error.instancePath} `;
    return `${where}${error.message ?? 'is invalid'}`;
  });
  const more = errors.length - named.length;
  return named.join('; ') + (more > 0 ? ` (and ${more} more)` : '');
}
