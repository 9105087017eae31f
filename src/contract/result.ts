import { z } from 'zod';

/** Why an attempt did not succeed; `null` when it did. */
export const FAILURE_KINDS = [
  'invalid-request', // the job data was rejected before anything ran
  'spawn-failed', // the CLI could not be started
  'cli-error', // the CLI reported an error (is_error) or ended without a result line
  'timeout', // the job's timeout elapsed and the run was stopped
  'cancelled', // somebody cancelled the job
  'shutdown', // the worker shut down; the job went back to the queue
  'abandoned', // the worker running this attempt died or lost the job
  'worker-error', // the worker itself could not go on (Redis refused a command, a file was unreadable)
  'session-not-found', // resumeSessionId names a session this job's scope does not hold (expired or never stored)
  'idle', // the run printed nothing for the job's idleTimeout and was stopped
  'budget', // the job's maxBudgetUsd is spent: the CLI stopped at its cap, or too little was left to start
  'no-structured-output', // jsonSchema was asked for and the run ended without a structured answer
  'invalid-structured-output', // the structured answer does not validate against jsonSchema
  'rate-limited', // the API answered 429 (rate limited) or 529 (overloaded) and the run ended on it
  'workspace-failed', // the job's workspace could not be made: the source could not be fetched, the ref does not exist
] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

/** What an attempt changed in its workspace, against the commit it started from. */
export const WorkspaceResultSchema = z.object({
  /** The commit the workspace was checked out at. */
  base: z.string(),
  /** Files the run changed, added and deleted, relative to the checkout. */
  changed: z.array(z.string()),
  added: z.array(z.string()),
  deleted: z.array(z.string()),
  /**
   * Paths left out of the three lists, which hold 32 KiB of paths at most: the patch has them
   * all. 0 in results of older workers.
   */
  pathsOmitted: z.int().nonnegative().default(0),
  /** Size of the whole patch (`git diff --binary` against base); read it with client.patch. */
  patchBytes: z.int().nonnegative(),
  /** The patch was over WORKSPACE_PATCH_MAX_BYTES: only a summary of it is stored. */
  patchTruncated: z.boolean(),
  /** With `workspace.commit`: the branch and commit in the worker's cached clone, else null. */
  branch: z.string().nullable(),
  commit: z.string().nullable(),
});

export type WorkspaceResult = z.infer<typeof WorkspaceResultSchema>;

/** What one attempt of an execute job produced: the job's return value, and terminal event data. */
export const ExecuteResultSchema = z.object({
  jobId: z.string(),
  attempt: z.int().positive(),
  success: z.boolean(),
  failure: z.enum(FAILURE_KINDS).nullable(),
  /** One line, null on success. */
  error: z.string().nullable(),
  /** The CLI's exit code; null when it never started or a signal ended it. */
  exitCode: z.int().nullable(),
  /** The signal that ended the CLI, if one did. */
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  cancelled: z.boolean(),
  /**
   * The CLI printed its result line but did not exit within RESULT_GRACE_SECONDS, so it was
   * stopped; the attempt is judged by that result line. Absent in results of older workers.
   */
  stoppedAfterResult: z.boolean().default(false),
  startedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
  sessionId: z.string().nullable(),
  /** True when this attempt continued an earlier session (a request's resumeSessionId or a retry). */
  resumed: z.boolean(),
  /** The `result` text of the CLI's result line, capped at MAX_OUTPUT_BYTES as `output` is. */
  finalOutput: z.string().nullable(),
  /** `finalOutput` was over MAX_OUTPUT_BYTES: its head and tail are kept. False in older results. */
  finalOutputTruncated: z.boolean().default(false),
  /** The CLI's stdout, capped at MAX_OUTPUT_BYTES keeping head and tail around a marker. */
  output: z.string(),
  outputTruncated: z.boolean(),
  outputBytes: z.number().nonnegative(),
  /** The result line's `subtype`: success, error_max_turns, error_during_execution, ... */
  resultSubtype: z.string().nullable(),
  /** The result line's `is_error`; null without a result line. */
  isError: z.boolean().nullable(),
  costUsd: z.number().nullable(),
  numTurns: z.int().nullable(),
  usage: z.record(z.string(), z.unknown()).nullable(),
  /** The result line's first permission denials, 16 KiB of them as JSON at most. */
  permissionDenials: z.array(z.unknown()),
  /** How many denials that left out. 0 in older results. */
  permissionDenialsOmitted: z.int().nonnegative().default(0),
  apiErrorStatus: z.int().nullable(),
  /**
   * What every attempt of this job spent so far, in dollars, as far as the CLI reported it;
   * null before any attempt reported a cost.
   */
  jobCostUsd: z.number().nonnegative().nullable(),
  /**
   * The result line's `structured_output` (the answer to a request's jsonSchema), or null (also
   * when over MAX_OUTPUT_BYTES as JSON: with a jsonSchema, the attempt then fails).
   */
  structuredOutput: z.unknown(),
  /** seq of the terminal event that carried this result: every event of the job up to here is 1..lastSeq. */
  lastSeq: z.int().nonnegative(),
  /** True when the queue will run another attempt of this job (attempts left, not cancelled). */
  retrying: z.boolean(),
  /**
   * When the queue runs the next attempt of a rate-limited job (the API's retry-after, or a
   * backoff); null when no such delayed retry follows.
   */
  retryAt: z.iso.datetime().nullable(),
  /** The change the attempt made in its workspace; null without a workspace (or before one was made). */
  workspace: WorkspaceResultSchema.nullable().default(null),
});

export type ExecuteResult = z.infer<typeof ExecuteResultSchema>;
