import { z } from 'zod';

/** A message on the control channel (`<QUEUE_NAME>:control`) that every worker listens to. */
export const CancelMessageSchema = z.object({
  type: z.literal('cancel'),
  jobId: z.string().min(1),
  reason: z.string(),
});

export type CancelMessage = z.infer<typeof CancelMessageSchema>;

/** The cancellation marker a client leaves at `cancelKey(...)`, so a late worker sees it too. */
export const CancelMarkerSchema = z.object({
  reason: z.string(),
  at: z.iso.datetime(),
});

export type CancelMarker = z.infer<typeof CancelMarkerSchema>;

/** How long a cancellation marker is kept: a waiting job cancelled now fails when a worker takes it. */
export const CANCEL_MARKER_TTL_SECONDS = 7 * 24 * 3600;
