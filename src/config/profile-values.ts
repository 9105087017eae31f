/**
 * Secrets in a profile are references, `${env:NAME}`, to the worker's environment, filled in
 * when a run starts: the profiles file holds none, and job data never does.
 */
export const SECRET_SYNTAX = '${env:NAME}';

const REFERENCE = /\$\{env:([^}]*)\}/g;
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** What is wrong with the references in one string of a profile, for the file's check. */
export function secretProblems(text: string, forbidden: readonly string[]): string[] {
  const problems: string[] = [];
  for (const match of text.matchAll(REFERENCE)) {
    const name = match[1] ?? '';
    if (!VARIABLE.test(name)) {
      problems.push(`${JSON.stringify(match[0])} does not name an environment variable`);
    } else if (forbidden.includes(name)) {
      problems.push(`${match[0]} is the worker's own secret and is never handed to a run`);
    }
  }
  if (text.replace(REFERENCE, '').includes('${env:')) {
    problems.push(`an unclosed reference: write ${SECRET_SYNTAX}`);
  }
  return problems;
}

/** A profile part with every reference filled in, or the variables that are not set. */
export type Filled<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly missing: readonly string[] };

/**
 * Replaces every `${env:NAME}` in the strings of a JSON value (keys are left alone) with the
 * variable's value from `env`. A variable that is not set, or empty, is missing: a run with a
 * blank token would fail later and more obscurely.
 */
export function fillSecrets<T>(
  value: T,
  env: Readonly<Record<string, string | undefined>>,
): Filled<T> {
  const missing = new Set<string>();
  const fill = (node: unknown): unknown => {
    if (typeof node === 'string') {
      return node.replace(REFERENCE, (_reference, name: string) => {
        const found = env[name];
        if (found === undefined || found === '') missing.add(name);
        return found ?? '';
      });
    }
    if (Array.isArray(node)) return node.map(fill);
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, fill(item)]));
    }
    return node;
  };
  const filled = fill(value) as T;
  return missing.size > 0
    ? { ok: false, missing: [...missing].sort() }
    : { ok: true, value: filled };
}

/** Every variable a JSON value refers to, for the worker's start-up warning. */
export function referencedVariables(value: unknown): string[] {
  const names = new Set<string>();
  for (const match of JSON.stringify(value ?? null).matchAll(REFERENCE)) {
    if (match[1] !== undefined) names.add(match[1]);
  }
  return [...names].sort();
}
