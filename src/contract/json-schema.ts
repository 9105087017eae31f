import { Ajv, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import { errorMessage } from '../common/errors.js';

/** ajv-formats is CommonJS: its plugin is the module's `default` under NodeNext. */
const addFormats = formatsModule.default;

/** How many schema violations an error message names. */
const NAMED_VIOLATIONS = 3;

/**
 * ajv's options for a job's jsonSchema, wherever it is compiled (ajv-formats added). Without
 * `inlineRefs: false`, ajv copies a definition's code to every `$ref` to it: a schema of 12 KB
 * whose definition 300 refs name took 5 s and 700 MB to compile, and one of 47 KB ran the
 * worker out of memory. A ref is a call instead, and the code grows with the schema alone.
 */
export const SCHEMA_CHECKER_OPTIONS = {
  allErrors: true,
  logger: false,
  inlineRefs: false,
} as const;

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
  const ajv = new Ajv(SCHEMA_CHECKER_OPTIONS);
  addFormats(ajv);
  try {
    return { ok: true, validate: ajv.compile(schema) };
  } catch (error) {
    return { ok: false, reason: errorMessage(error) };
  }
}

/** What a violation of a schema is named by: ajv's ErrorObject, or a copy of its two fields. */
export interface SchemaViolation {
  readonly instancePath: string;
  readonly message?: string | undefined;
}

/** The first violations in one line (`/a must be integer; must have required property 'b'`). */
export function describeViolations(errors: readonly SchemaViolation[]): string {
  const named = errors.slice(0, NAMED_VIOLATIONS).map((error) => {
    const where = error.instancePath === '' ? '' : `${error.instancePath} `;
    return `${where}${error.message ?? 'is invalid'}`;
  });
  const more = errors.length - named.length;
  return named.join('; ') + (more > 0 ? ` (and ${more} more)` : '');
}
