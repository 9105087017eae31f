import type { Logger } from 'pino';
import type { WriteFence } from '../../redis/write-fence.js';
import type { SessionRef, SessionStore, TranscriptPlace } from './sessions.js';

export interface SessionSync {
  /**
   * Stops shipping, after one last ship of whatever the transcript grew by unless `lastShip` is
   * false (the job is another attempt's now, which goes on from what the store holds).
   */
  stop(lastShip?: boolean): Promise<void>;
}

/**
 * Ships the session transcript while the run goes on: every SESSION_SYNC_SECONDS whatever the CLI
 * appended goes to the store, so a worker that dies loses at most that much of the conversation.
 * A transcript past SESSION_MAX_BYTES stops being shipped, with one warning and a note in the
 * attempt's events.
 */
export function startSessionSync(
  sessions: SessionStore | null,
  syncMs: number,
  /** The session the run continues, and the bytes of it its transcript held as the CLI started. */
  session: { readonly ref: SessionRef; readonly from: number } | null,
  place: TranscriptPlace,
  log: Logger,
  note: (text: string) => void,
  /** The attempt's hold on the job, where it has one: see WriteFence. */
  fence?: WriteFence,
): SessionSync | null {
  if (!sessions || session === null) return null;
  const { ref } = session;
  const shipper = sessions.shipper(ref, place, session.from, fence);
  let warned = false;
  let failing = false;
  const ship = async (): Promise<void> => {
    try {
      await shipper.ship();
      failing = false;
    } catch (error) {
      // One line per outage, not one per tick: the next tick sends what this one could not.
      if (!failing)
        log.warn({ err: error, sessionId: ref.sessionId }, 'could not save the session transcript');
      failing = true;
    }
    // A fenced shipper's job is another attempt's now, which says how its session goes.
    if (shipper.stopped !== null && shipper.stopped !== 'fenced' && !warned) {
      warned = true;
      const why =
        shipper.stopped === 'oversized'
          ? `the session transcript grew past SESSION_MAX_BYTES (${sessions.maxBytes} bytes): it is no longer saved, and a retry starts a new session`
          : 'another run wrote more of this session than this one has: its transcript is no longer saved';
      log.warn({ sessionId: ref.sessionId }, why);
      note(`claudebox: ${why}`);
    }
  };
  // One ship at a time: a tick that finds one under way is skipped, not queued behind it (a ship
  // slower than the ticks would queue more of them than the run's end could ever wait out).
  let shipping: Promise<void> | null = null;
  const timer = setInterval(() => {
    shipping ??= ship().finally(() => {
      shipping = null;
    });
  }, syncMs);
  let stopped: Promise<void> | null = null;
  return {
    stop: (lastShip = true) =>
      (stopped ??= (async () => {
        clearInterval(timer);
        await shipping;
        if (lastShip) await ship();
      })()),
  };
}
