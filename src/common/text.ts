/**
 * Each line break, with the whitespace around it, becomes one space. The text may be a run's (a
 * result or stderr line of megabytes). The plain pattern tries again from every space of a long
 * run of them, which takes hours on a few MiB of spaces; starting only where whitespace starts
 * keeps the work in step with the text's length.
 */
export function flattenLines(text: string): string {
  return text.replace(/(?<!\s)\s*\n\s*/g, ' ');
}
