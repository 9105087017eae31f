import { randomUUID } from 'node:crypto';
import type { ExecuteRequest, RunState } from '../contract/index.js';
import type { SessionPlan } from '../executor/index.js';
import {
  transcriptHoldsPrompt,
  transcriptSize,
  type TranscriptPlace,
  type TranscriptStore,
} from './sessions.js';

export interface AttemptPlan {
  readonly session: SessionPlan;
  /** The session this job's attempts continue; null when the CLI picks (sessions off). */
  readonly sessionId: string | null;
  readonly resumed: boolean;
  /** What goes on the CLI's stdin. */
  readonly prompt: string;
  readonly promptKind: 'original' | 'continue';
  readonly transcriptBaseline: number;
}

/** What a retry says instead of repeating the prompt into a session that already holds it. */
export function continuationPrompt(previous: RunState['result']): string {
  const why = previous?.error ? ` (it ended with: ${previous.error})` : '';
  return (
    `The previous attempt at this task was interrupted before it finished${why}. ` +
    'Continue the task from where it stopped; do not redo work that is already done.'
  );
}

/**
 * Decides how an attempt uses Claude sessions. The first attempt fixes the session id up front
 * (`--session-id`) so that every later attempt, on any worker, resumes that same session: with
 * the original prompt if the transcript does not hold it yet (the first attempt died before the
 * CLI wrote it), else with a short note to continue.
 */
export async function planAttempt(
  request: ExecuteRequest,
  prior: RunState | null,
  sessions: TranscriptStore | null,
  place: TranscriptPlace,
): Promise<AttemptPlan> {
  const original = { prompt: request.prompt, promptKind: 'original' } as const;
  if (sessions === null) {
    // Portable sessions are off: every attempt starts afresh unless the request names a session.
    return request.resumeSessionId
      ? {
          session: { mode: 'resume', sessionId: request.resumeSessionId },
          sessionId: request.resumeSessionId,
          resumed: true,
          transcriptBaseline: 0,
          ...original,
        }
      : {
          session: { mode: 'none' },
          sessionId: null,
          resumed: false,
          transcriptBaseline: 0,
          ...original,
        };
  }

  const sessionId = prior?.sessionId ?? request.resumeSessionId ?? randomUUID();
  const transcript = await sessions.restore(sessionId, place);
  const transcriptBaseline = prior?.transcriptBaseline ?? (await transcriptSize(transcript));
  // A session named by the request is resumed even when no transcript is found: the CLI then
  // answers "No conversation found", which is the truth the caller needs to hear.
  if (transcript === null && sessionId !== request.resumeSessionId) {
    return {
      session: { mode: 'new', sessionId },
      sessionId,
      resumed: false,
      transcriptBaseline,
      ...original,
    };
  }
  const holdsPrompt =
    prior !== null &&
    transcript !== null &&
    (await transcriptHoldsPrompt(transcript, request.prompt, transcriptBaseline));
  return {
    session: { mode: 'resume', sessionId },
    sessionId,
    resumed: true,
    transcriptBaseline,
    ...(holdsPrompt
      ? { prompt: continuationPrompt(prior.result), promptKind: 'continue' }
      : original),
  };
}
