import { randomUUID } from 'node:crypto';
import { storedEntryId, type ExecuteRequest, type RunState } from '../../contract/index.js';
import type { SessionPlan } from '../../executor/index.js';
import {
  lastEntryId,
  transcriptHoldsPrompt,
  transcriptSize,
  type SessionRef,
  type SessionStore,
  type TranscriptPlace,
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
  /** In a fork's transcript, the copied entry after which the job's own part begins. */
  readonly forkedAfter?: string;
  /** Bytes of the session the store held when the attempt restored it: shipping goes on there. */
  readonly shipFrom: number;
  /** Why the attempt does not continue the job's session, when it does not. */
  readonly note?: string;
}

/** The session a job's request asks for is not there: the attempt fails with this message. */
export class SessionNotFoundError extends Error {
  override readonly name = 'SessionNotFoundError';
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
  sessions: SessionStore | null,
  place: TranscriptPlace,
): Promise<AttemptPlan> {
  if (sessions === null) return planWithoutStore(request);
  // A fork's copy gets an id of its own up front, which every later attempt continues.
  const forkOf = request.forkSession === true ? request.resumeSessionId : undefined;
  const ref: SessionRef = {
    scope: request.sessionScope ?? '',
    sessionId:
      prior?.sessionId ??
      (forkOf === undefined ? request.resumeSessionId : undefined) ??
      randomUUID(),
  };
  const { sessionId } = ref;
  const asked = sessionId === request.resumeSessionId;
  const restored = await sessions.restore(ref, place);
  if (restored.kind === 'oversized') {
    const why = `session ${sessionId} grew past SESSION_MAX_BYTES (${restored.bytes} bytes) and was not kept`;
    if (asked && prior === null) throw new SessionNotFoundError(`session not found: ${why}`);
    return freshSession(
      request,
      randomUUID(),
      `${why}: this attempt starts a new session with the original prompt`,
    );
  }
  if (restored.kind === 'missing') {
    // Not forked yet (or the attempt that forked died before the copy was kept): fork now.
    if (forkOf !== undefined) return forkSession(request, forkOf, sessionId, sessions, place);
    if (asked) {
      const scope = request.sessionScope ? ` in scope ${request.sessionScope}` : '';
      throw new SessionNotFoundError(
        `session not found: ${sessionId}${scope} expired or was never stored`,
      );
    }
    return freshSession(request, sessionId);
  }
  return resumeSession(request, prior, sessionId, restored);
}

const originalPrompt = (request: ExecuteRequest) =>
  ({ prompt: request.prompt, promptKind: 'original' }) as const;

/** Portable sessions are off: every attempt starts afresh unless the request names a session. */
function planWithoutStore(request: ExecuteRequest): AttemptPlan {
  const sessionId = request.resumeSessionId ?? null;
  if (sessionId !== null && request.forkSession === true) {
    return {
      session: { mode: 'fork', from: sessionId, sessionId: null },
      sessionId: null,
      resumed: true,
      transcriptBaseline: 0,
      shipFrom: 0,
      ...originalPrompt(request),
    };
  }
  return {
    session: sessionId === null ? { mode: 'none' } : { mode: 'resume', sessionId },
    sessionId,
    resumed: sessionId !== null,
    transcriptBaseline: 0,
    shipFrom: 0,
    ...originalPrompt(request),
  };
}

function freshSession(request: ExecuteRequest, sessionId: string, note?: string): AttemptPlan {
  return {
    session: { mode: 'new', sessionId },
    sessionId,
    resumed: false,
    transcriptBaseline: 0,
    shipFrom: 0,
    ...originalPrompt(request),
    ...(note === undefined ? {} : { note }),
  };
}

/** A retry tells the session to go on once the transcript holds the job's prompt. */
async function resumeSession(
  request: ExecuteRequest,
  prior: RunState | null,
  sessionId: string,
  { path: transcript, stored }: { readonly path: string; readonly stored: number },
): Promise<AttemptPlan> {
  const transcriptBaseline = prior?.transcriptBaseline ?? (await transcriptSize(transcript));
  const forkedAfter = prior?.forkedAfter;
  const holdsPrompt =
    prior !== null &&
    (await transcriptHoldsPrompt(transcript, request.prompt, transcriptBaseline, forkedAfter));
  return {
    session: { mode: 'resume', sessionId },
    sessionId,
    resumed: true,
    transcriptBaseline,
    ...(forkedAfter === undefined ? {} : { forkedAfter }),
    shipFrom: stored,
    ...(holdsPrompt
      ? { prompt: continuationPrompt(prior.result), promptKind: 'continue' }
      : originalPrompt(request)),
  };
}

/** Continues a copy of the session the request names, under the job's own session id. */
async function forkSession(
  request: ExecuteRequest,
  from: string,
  sessionId: string,
  sessions: SessionStore,
  place: TranscriptPlace,
): Promise<AttemptPlan> {
  const original = await sessions.restore(
    { scope: request.sessionScope ?? '', sessionId: from },
    place,
  );
  if (original.kind !== 'found') {
    const scope = request.sessionScope ? ` in scope ${request.sessionScope}` : '';
    const why =
      original.kind === 'oversized' ? 'grew past SESSION_MAX_BYTES' : 'expired or was never stored';
    throw new SessionNotFoundError(`session not found: ${from}${scope} ${why}`);
  }
  // The fork is a transcript of its own, which the CLI writes from its start: the copy of the
  // original (in a form of its own, of another size), then the job's part.
  const forkedAfter = storedEntryId(await lastEntryId(original.path));
  return {
    session: { mode: 'fork', from, sessionId },
    sessionId,
    resumed: true,
    transcriptBaseline: 0,
    ...(forkedAfter === undefined ? {} : { forkedAfter }),
    shipFrom: 0,
    ...originalPrompt(request),
  };
}
