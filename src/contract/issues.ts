import type { z } from 'zod';

/**
 * One line naming every bad field: `prompt: must not be empty; foo: unknown field`.
 * Used as a failed job's reason and as the message of a rejected enqueue.
 */
export function describeIssues(error: z.ZodError): string {
  const parts: string[] = [];
  let length = 0;
  let more = 0;
  const add = (part: string): void => {
    // A problem can quote its value, which may be long: cut, so that the others fit too.
    const cut = part.length > MAX_ISSUE_CHARS ? `${part.slice(0, MAX_ISSUE_CHARS - 3)}...` : part;
    if (parts.length < MAX_NAMED_ISSUES && length + cut.length <= MAX_NAMED_CHARS) {
      parts.push(cut);
      length += cut.length + 2;
    } else more++;
  };
  for (const issue of error.issues) {
    const where = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      // Counted, not each named: data can hold millions of them.
      for (const key of issue.keys.slice(0, MAX_NAMED_ISSUES)) {
        add(`${where ? `${where}.` : ''}${key}: unknown field`);
      }
      more += Math.max(0, issue.keys.length - MAX_NAMED_ISSUES);
    } else if (issue.code === 'invalid_type' && where === '') {
      add(`job data: must be a JSON object, got ${describeValue(issue.input)}`);
    } else {
      add(`${where || 'job data'}: ${issue.message}`);
    }
  }
  return more === 0 ? parts.join('; ') : `${parts.join('; ')}; and ${more} more`;
}

/** Problems a reason names one by one; past them it counts. */
const MAX_NAMED_ISSUES = 20;
/**
 * How long a problem and the ones named together may be: with the count after them, a reason
 * stays within the 1,000 characters a failed job's error keeps.
 */
const MAX_ISSUE_CHARS = 160;
const MAX_NAMED_CHARS = 900;

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
