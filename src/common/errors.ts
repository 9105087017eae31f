/** What a caught value says: an Error's message, or the value as text (a throw can throw anything). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A caught value as an Error, for APIs and loggers that want one. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
