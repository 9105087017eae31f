import { doneWithin } from '../common/time.js';
import type { Confinement } from './confinement.js';
import { signalProcesses } from './process-tree.js';

/** Abort a run with this as the signal's reason to say why; anything else counts as cancelled. */
export interface StopRequest {
  /** cancelled: somebody asked; shutdown: the worker is going; abandoned: the job is no longer ours. */
  readonly cause: 'cancelled' | 'shutdown' | 'abandoned';
  readonly message: string;
}

/**
 * Why the executor stopped a run before it ended by itself. idle: it printed nothing for the
 * job's idleTimeout; after-result: it printed its result line but did not exit.
 */
export type StopCause =
  'timeout' | 'stdout-closed' | 'idle' | 'after-result' | StopRequest['cause'];

const STOP_CAUSES: readonly string[] = ['cancelled', 'shutdown', 'abandoned'];

/**
 * Whoever cancels wants the run gone now, and a CLI that closed its stdout, went silent or
 * already printed its result has nothing more to say: the CLI answers SIGINT within a fraction
 * of a second, so these wait at most this long before they kill, whatever KILL_GRACE_SECONDS
 * says.
 */
const SHORT_GRACE_MS = 1000;

function graceFor(cause: StopCause, killGraceMs: number): number {
  switch (cause) {
    // The job is another worker's now: every moment this run goes on, it may run twice.
    case 'abandoned':
      return 0;
    case 'cancelled':
    case 'stdout-closed':
    case 'idle':
    case 'after-result':
      return Math.min(killGraceMs, SHORT_GRACE_MS);
    case 'timeout':
    case 'shutdown':
      return killGraceMs;
  }
}

export interface RunStopper {
  /** Stops the run; a later call (a timeout during a cancel, say) joins the first. */
  stop(cause: StopCause, message: string | null): Promise<void>;
  /**
   * The CLI exited: no stop may begin from now on, and this resolves once one that began is
   * over. A timer or a line read while the pipes drain must not signal the run's processes
   * afterwards: they are found by the run's uid, which the next run gets once this one ends.
   */
  close(): Promise<void>;
  readonly cause: StopCause | null;
  readonly message: string | null;
  /** The CLI did not stop on SIGINT within its grace time and was killed. */
  readonly forced: boolean;
}

/**
 * Politely first: on SIGINT the CLI stops its running tool and prints a result line. Past the
 * grace time, SIGKILL to every process of the run, collected while the CLI still lives, so
 * that descendants are found by parent id as well as by marker.
 */
export function createStopper(run: {
  readonly pid: number;
  readonly confinement: Confinement;
  readonly killGraceMs: number;
  /** Sends SIGINT to the CLI; resolves once it is sent (finding the CLI may take a /proc scan). */
  readonly interrupt: () => Promise<void>;
  readonly exited: Promise<unknown>;
  /** Whether the CLI printed its result line already. */
  readonly answered?: () => boolean;
}): RunStopper {
  let cause: StopCause | null = null;
  let message: string | null = null;
  let forced = false;
  let done: Promise<void> | null = null;
  let over = false;
  return {
    stop(why, text) {
      if (done) return done;
      if (over) return Promise.resolve();
      // Its work is done and said: a timeout, cancel or shutdown that comes after the result line
      // stops what is left, and the result line says how the run went. Not so for a run that
      // is no longer ours, whose end nobody records.
      const answered = why !== 'abandoned' && run.answered?.() === true;
      cause = answered ? 'after-result' : why;
      message = answered ? null : text;
      done = (async () => {
        // Awaited, even when the CLI exits first: a run is over only once no signal of its is
        // still on the way. Its uid goes to the next run when it ends, and a SIGINT that looked
        // the CLI up by that uid afterwards would stop the next run's CLI instead.
        const interrupting = run.interrupt().catch(() => undefined);
        const stoppedInTime = await doneWithin(run.exited, graceFor(why, run.killGraceMs));
        await interrupting;
        if (stoppedInTime) return;
        forced = true;
        // The process the worker started first (the CLI, or the sandbox around it), so that the
        // run ends killed by SIGKILL whichever way the rest of it goes down; then all the rest.
        const found = await run.confinement.find(run.pid);
        const first = ({ pid }: { pid: number }): boolean => pid === run.pid;
        await signalProcesses(found.filter(first), 'SIGKILL');
        await signalProcesses(
          found.filter((ref) => !first(ref)),
          'SIGKILL',
        );
      })();
      return done;
    },
    close: () => {
      over = true;
      return done ?? Promise.resolve();
    },
    get cause() {
      return cause;
    },
    get message() {
      return message;
    },
    get forced() {
      return forced;
    },
  };
}

/** The stop an abort signal's reason asks for (a bare abort counts as a cancel). */
export function stopRequestOf(reason: unknown): {
  cause: StopRequest['cause'];
  message: string | null;
} {
  if (isStopRequest(reason)) return reason;
  if (reason instanceof Error) return { cause: 'cancelled', message: reason.message };
  return { cause: 'cancelled', message: typeof reason === 'string' ? reason : null };
}

function isStopRequest(value: unknown): value is StopRequest {
  return (
    typeof value === 'object' &&
    value !== null &&
    'cause' in value &&
    typeof value.cause === 'string' &&
    STOP_CAUSES.includes(value.cause) &&
    'message' in value &&
    typeof value.message === 'string'
  );
}
