/** The one error type the client throws; `code` says which case it is. */
export class ClaudeboxError extends Error {
  override readonly name = 'ClaudeboxError';

  constructor(
    readonly code: 'invalid-request' | 'job-not-found' | 'result-timeout',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function jobNotFound(jobId: string, queueName: string): ClaudeboxError {
  return new ClaudeboxError('job-not-found', `job ${jobId} not found in queue ${queueName}`);
}
