const KiB = 1024;

/**
 * The largest entry a job writes to BullMQ's event stream: its ExecuteResult (a completed job's
 * `completed` entry, a failed one's last `progress`). Its output and its final text are capped
 * at maxOutputBytes each, which JSON escaping may double (stream-json is full of quotes), its
 * structured answer at maxOutputBytes as JSON (see ResultCaps); 64 KiB is left for the rest:
 * the usage and permission denials (16 KiB each at most) and the figures. Every other entry the
 * worker causes is smaller.
 */
export function largestQueueEventBytes(maxOutputBytes: number): number {
  return 5 * maxOutputBytes + 64 * KiB;
}

/**
 * The entry count that keeps BullMQ's event stream within `maxBytes`: BullMQ trims that stream
 * by length only (`streams.events.maxLen`), so the byte budget becomes a length here.
 */
export function queueEventsMaxLen(maxBytes: number, maxOutputBytes: number): number {
  return Math.max(1, Math.floor(maxBytes / largestQueueEventBytes(maxOutputBytes)));
}
