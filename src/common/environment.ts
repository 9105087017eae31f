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
