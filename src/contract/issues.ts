import type { z } from 'zod';

/**
 * One line naming every bad field: `prompt: must not be empty; foo: unknown field`.
 * Used as a failed job's reason and as the message of a rejected enqueue.
 */
export function describeIssues(error: z.ZodError): string {
  const parts = error.issues.flatMap((issue) => {
    const where = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${where ? `${where}.` : ''}${key}: unknown field`);
    }
    if (issue.code === 'invalid_type' && where === '') {
      return [`job data: must be a JSON object, got ${describeValue(issue.input)}`];
    }
    return [`${where || 'job data'}: ${issue.message}`];
  });
  return parts.join('; ');
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
