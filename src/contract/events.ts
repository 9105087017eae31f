import { z } from 'zod';
import { ExecuteResultSchema } from './result.js';

export const EVENT_TYPES = ['started', 'output', 'error', 'gap', 'completed', 'failed'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const TERMINAL_EVENT_TYPES: readonly EventType[] = ['completed', 'failed'];

const envelope = {
  jobId: z.string(),
  /** 1 for a job's first attempt; counts every start, including after a crash or a shutdown. */
  attempt: z.int().positive(),
  /** 1, 2, 3, ... strictly increasing over the whole job, across attempts. */
  seq: z.int().positive(),
  timestamp: z.iso.datetime({ precision: 3 }),
};

/** Set on a line that was not valid UTF-8: `content` then holds its bytes in base64. */
const lineData = z
  .object({
    /** The line went on past MAX_LINE_BYTES: the next event carries the rest of it. */
    partial: z.boolean().optional(),
    encoding: z.literal('base64').optional(),
  })
  .optional();

/** How a run is walled off from the worker and from other runs (see the security model). */
export const RunIsolationSchema = z.object({
  /** uid: a uid of its own, home of its own; off: the worker's own uid and home. */
  mode: z.enum(['uid', 'off']),
  uid: z.int().nullable(),
  /** Namespaces of its own on top of the uid, where the kernel allows them. */
  namespaces: z.array(z.enum(['pid', 'ipc', 'mount'])),
  /** Why a run is not isolated. */
  reason: z.string().optional(),
});
export type RunIsolation = z.infer<typeof RunIsolationSchema>;

export const StartedEventSchema = z.object({
  ...envelope,
  type: z.literal('started'),
  data: z.object({
    pid: z.int(),
    sessionId: z.string().nullable(),
    cwd: z.string(),
    /** This attempt continues a session: the request's resumeSessionId or an earlier attempt's. */
    resumed: z.boolean(),
    /** What the CLI was told: the request's prompt, or a note to continue after an interruption. */
    prompt: z.enum(['original', 'continue']),
    /** The CLI's arguments; the prompt goes on stdin and is not among them. */
    args: z.array(z.string()),
    /** Absent in events of workers older than run isolation. */
    isolation: RunIsolationSchema.optional(),
    /** Why this attempt did not resume the job's session (it grew too large to keep, say). */
    sessionNote: z.string().optional(),
  }),
});

export const OutputEventSchema = z.object({
  ...envelope,
  type: z.literal('output'),
  stream: z.literal('stdout'),
  content: z.string(),
  data: lineData,
});

export const ErrorEventSchema = z.object({
  ...envelope,
  type: z.literal('error'),
  stream: z.literal('stderr'),
  content: z.string(),
  data: lineData,
});

/**
 * Events that were lost, named by seq: dropped while Redis was unreachable and the worker's
 * buffer was full (buffer-overflow), refused by Redis (publish-failed), or already trimmed
 * from the history a replay asked for (trimmed; made up by the client, never published).
 */
export const GapEventSchema = z.object({
  ...envelope,
  type: z.literal('gap'),
  data: z.object({
    ranges: z.array(z.object({ from: z.int().positive(), to: z.int().positive() })),
    count: z.int().nonnegative(),
    reason: z.enum(['buffer-overflow', 'publish-failed', 'trimmed']),
  }),
});

export const CompletedEventSchema = z.object({
  ...envelope,
  type: z.literal('completed'),
  data: ExecuteResultSchema,
});

export const FailedEventSchema = z.object({
  ...envelope,
  type: z.literal('failed'),
  data: ExecuteResultSchema,
});

export const ExecuteEventSchema = z.discriminatedUnion('type', [
  StartedEventSchema,
  OutputEventSchema,
  ErrorEventSchema,
  GapEventSchema,
  CompletedEventSchema,
  FailedEventSchema,
]);

export type ExecuteEvent = z.infer<typeof ExecuteEventSchema>;
export type StartedEvent = z.infer<typeof StartedEventSchema>;
export type OutputEvent = z.infer<typeof OutputEventSchema>;
export type ErrorEvent = z.infer<typeof ErrorEventSchema>;
export type GapEvent = z.infer<typeof GapEventSchema>;
export type TerminalEvent =
  z.infer<typeof CompletedEventSchema> | z.infer<typeof FailedEventSchema>;

export function isTerminalEvent(event: ExecuteEvent): event is TerminalEvent {
  return event.type === 'completed' || event.type === 'failed';
}

/** The last event of a job's run: a terminal event after which no attempt follows on its own. */
export function isFinalEvent(event: ExecuteEvent): event is TerminalEvent {
  return isTerminalEvent(event) && !event.data.retrying;
}
