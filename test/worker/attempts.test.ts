import { describe, expect, it } from 'vitest';
import {
  resultWithoutRun,
  type ExecuteEvent,
  type ExecuteResult,
  type RunState,
} from '../../src/contract/index.js';
import { countAttempts, type AttemptCounters } from '../../src/worker/attempt/attempts.js';

const jobId = 'job-1';

function counters(fields: {
  started: number;
  made?: number;
  stalled?: number;
  attempts?: number;
}): AttemptCounters {
  return {
    attemptsStarted: fields.started,
    attemptsMade: fields.made ?? 0,
    stalledCounter: fields.stalled ?? 0,
    opts: fields.attempts === undefined ? {} : { attempts: fields.attempts },
  };
}

function started(attempt: number, seq: number): ExecuteEvent {
  return {
    jobId,
    attempt,
    seq,
    type: 'started',
    timestamp: new Date().toISOString(),
    data: {
      pid: 1,
      sessionId: null,
      cwd: '/',
      resumed: false,
      prompt: 'original',
      args: [],
    },
  };
}

function result(attempt: number, retrying: boolean, lastSeq: number): ExecuteResult {
  const failure = retrying ? 'shutdown' : 'abandoned';
  return {
    ...resultWithoutRun({
      jobId,
      attempt,
      failure,
      error: failure,
      sessionId: null,
      retrying,
      startedAt: 0,
    }),
    lastSeq,
  };
}

function failed(attempt: number, retrying: boolean, seq: number): ExecuteEvent {
  return {
    jobId,
    attempt,
    seq,
    type: 'failed',
    timestamp: new Date().toISOString(),
    data: result(attempt, retrying, seq),
  };
}

function state(attempt: number, ended: ExecuteResult | null = null): RunState {
  return {
    attempt,
    sessionId: null,
    transcriptBaseline: 0,
    lastSeq: ended?.lastSeq ?? 0,
    pid: null,
    result: ended,
  };
}

describe('counting a job’s attempts', () => {
  it('starts a new job at attempt 1 with nothing to end', () => {
    expect(countAttempts(counters({ started: 1, attempts: 2 }), null, null)).toEqual({
      attempt: 1,
      abandoned: [],
      exhausted: false,
      allowed: 2,
      retryOnFailure: true,
    });
  });

  it('ends the attempt whose worker died, and counts its stall as spent', () => {
    const counted = countAttempts(
      counters({ started: 2, stalled: 1, attempts: 3 }),
      state(1),
      started(1, 1),
    );
    expect(counted).toMatchObject({ attempt: 2, abandoned: [1], exhausted: false });
    // One attempt stalled, this one would be the second of three: a failure is retried.
    expect(counted.retryOnFailure).toBe(true);
    const spentMore = countAttempts(
      counters({ started: 2, stalled: 1, attempts: 2 }),
      state(1),
      started(1, 1),
    );
    expect(spentMore).toMatchObject({ attempt: 2, abandoned: [1], retryOnFailure: false });
  });

  it('runs nothing when the abandoned attempt was the last one allowed', () => {
    const twice = countAttempts(
      counters({ started: 3, stalled: 2, attempts: 2 }),
      state(2),
      started(2, 3),
    );
    expect(twice).toEqual({
      attempt: 2,
      abandoned: [],
      exhausted: true,
      allowed: 2,
      retryOnFailure: false,
    });
    // Failures and stalls together: one failed run, then a stall.
    const mixed = countAttempts(
      counters({ started: 3, made: 1, stalled: 1, attempts: 2 }),
      state(2),
      started(2, 5),
    );
    expect(mixed).toMatchObject({ attempt: 2, exhausted: true });
  });

  it('ends an attempt whose worker died before it published anything', () => {
    // Attempt 1 was ended by attempt 2, whose worker died before its CLI started.
    const counted = countAttempts(
      counters({ started: 3, stalled: 2, attempts: 4 }),
      state(2),
      failed(1, true, 2),
    );
    expect(counted).toMatchObject({ attempt: 3, abandoned: [2], exhausted: false });
    // Nothing at all was recorded: only BullMQ counted the start.
    expect(countAttempts(counters({ started: 2, stalled: 1, attempts: 2 }), null, null)).toEqual({
      attempt: 2,
      abandoned: [1],
      exhausted: false,
      allowed: 2,
      retryOnFailure: false,
    });
    expect(countAttempts(counters({ started: 2, stalled: 1 }), null, null)).toMatchObject({
      attempt: 1,
      abandoned: [],
      exhausted: true,
    });
  });

  it('ends several unended attempts at once, oldest first', () => {
    const counted = countAttempts(
      counters({ started: 4, stalled: 3, attempts: 6 }),
      state(3),
      started(2, 4),
    );
    expect(counted).toMatchObject({ attempt: 4, abandoned: [2, 3], exhausted: false });
    const exhausted = countAttempts(
      counters({ started: 4, stalled: 3, attempts: 3 }),
      state(3),
      started(2, 4),
    );
    expect(exhausted).toMatchObject({ attempt: 3, abandoned: [2], exhausted: true });
  });

  it('does not count a shutdown requeue: its attempt ended and spent nothing', () => {
    const counted = countAttempts(
      counters({ started: 2, attempts: 1 }),
      state(1, result(1, true, 3)),
      failed(1, true, 3),
    );
    expect(counted).toEqual({
      attempt: 2,
      abandoned: [],
      exhausted: false,
      allowed: 1,
      retryOnFailure: false,
    });
  });

  it('goes on from the latest attempt when a job that ended for good is retried', () => {
    // Ended out of attempts at attempt 2 by a third start; queue tooling retries it.
    const ended = result(2, false, 4);
    const counted = countAttempts(
      counters({ started: 4, made: 1, stalled: 2, attempts: 2 }),
      state(2, ended),
      failed(2, false, 4),
    );
    expect(counted).toMatchObject({ attempt: 3, abandoned: [], exhausted: false });
    // Its history expired meanwhile: the run state alone says where it stands.
    expect(
      countAttempts(counters({ started: 4, made: 1, stalled: 2 }), state(2, ended), null),
    ).toMatchObject({ attempt: 3, abandoned: [], exhausted: false });
  });

  it('numbers a delayed retry after a 429 as the next attempt without spending one, and a 529’s as spent', () => {
    const limited: ExecuteResult = {
      ...result(1, true, 4),
      failure: 'rate-limited',
      retryAt: new Date().toISOString(),
    };
    // BullMQ counted the start but no attempt made: the job went to `delayed`, not `failed`.
    const after429 = countAttempts(
      counters({ started: 2, attempts: 2 }),
      { ...state(1, limited), rateLimit: { delays: 1, attemptsSpent: 0 } },
      failed(1, true, 4),
    );
    expect(after429).toMatchObject({ attempt: 2, abandoned: [], retryOnFailure: true });
    const after529 = countAttempts(
      counters({ started: 2, attempts: 2 }),
      { ...state(1, limited), rateLimit: { delays: 1, attemptsSpent: 1 } },
      failed(1, true, 4),
    );
    expect(after529).toMatchObject({ attempt: 2, abandoned: [], retryOnFailure: false });
  });
});
