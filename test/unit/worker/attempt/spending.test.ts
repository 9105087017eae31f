import { describe, expect, it } from 'vitest';
import type { Spending } from '../../../../src/contract/index.js';
import type { SessionPlan } from '../../../../src/executor/index.js';
import {
  budgetLeft,
  budgetSpentMessage,
  spendingAfter,
  spendingAtStart,
} from '../../../../src/worker/attempt/spending.js';

const S1 = '11111111-1111-4111-8111-111111111111';
const S2 = '22222222-2222-4222-8222-222222222222';
const newSession: SessionPlan = { mode: 'new', sessionId: S1 };
const resumed: SessionPlan = { mode: 'resume', sessionId: S1 };
const reported = (costUsd: number | null, costSinceLastResultUsd: number | null = null) => ({
  costUsd,
  costSinceLastResultUsd,
  streamSessionId: S1,
});

/** Runs attempts one after another, as the run state carries the spending from one to the next. */
function attempts(...runs: [SessionPlan, ReturnType<typeof reported>][]): Spending | undefined {
  let spending: Spending | undefined;
  for (const [session, cost] of runs) {
    spending = spendingAfter(spendingAtStart(spending, session), session, cost);
  }
  return spending;
}

describe('what a job spends across attempts', () => {
  it('counts a first attempt’s whole cost, and of a resumed one only what it added to the session', () => {
    // total_cost_usd on --resume is the session's cumulative cost: 0.8 then 1.2.
    const spending = attempts([newSession, reported(0.8)], [resumed, reported(1.2)]);
    expect(spending).toEqual({ jobCostUsd: 1.2, sessionId: S1, sessionCostUsd: 1.2 });
    expect(attempts([newSession, reported(0.8)])?.jobCostUsd).toBe(0.8);
  });

  it('sums dollars to the millionth, as written, not as floats add up', () => {
    const fresh: SessionPlan = { mode: 'new', sessionId: S2 };
    const spending = attempts([newSession, reported(0.1)], [fresh, reported(0.2)]);
    expect(spending?.jobCostUsd).toBe(0.3);
  });

  it('counts what an attempt that died without a result line spent once the next one reports', () => {
    const died = attempts([newSession, reported(0.5)], [resumed, reported(null)]);
    expect(died).toEqual({ jobCostUsd: 0.5, sessionId: S1, sessionCostUsd: 0.5 });
    // The third attempt's total holds the second's turns, as far as the transcript kept them.
    const after = attempts(
      [newSession, reported(0.5)],
      [resumed, reported(null)],
      [resumed, reported(1.5)],
    );
    expect(after?.jobCostUsd).toBe(1.5);
  });

  it('knows a session the job started costs nothing before it, even when its first attempt died', () => {
    expect(attempts([newSession, reported(null)], [resumed, reported(0.4)])?.jobCostUsd).toBe(0.4);
  });

  it('in a session resumed from elsewhere, counts the cost since its last result, else the whole total', () => {
    const elsewhere: SessionPlan = { mode: 'resume', sessionId: S2 };
    expect(attempts([elsewhere, reported(2.4, 0.4)])?.jobCostUsd).toBe(0.4);
    expect(attempts([elsewhere, reported(2.4)])?.jobCostUsd).toBe(2.4);
    // From then on the session's cost is known.
    expect(attempts([elsewhere, reported(2.4, 0.4)], [elsewhere, reported(3)])?.jobCostUsd).toBe(1);
  });

  it('counts of a fork only what it spent, not what the session it copied had cost', () => {
    // The CLI's total for a fork of a $0.40 session: 0.40042, of which 0.00042 since the copy.
    const fork: SessionPlan = { mode: 'fork', from: S2, sessionId: S1 };
    expect(attempts([fork, reported(0.40042, 0.00042)])).toEqual({
      jobCostUsd: 0.00042,
      sessionId: S1,
      sessionCostUsd: 0.40042,
    });
    // Its retry resumes the fork, whose cost is known from then on.
    expect(attempts([fork, reported(0.40042, 0.00042)], [resumed, reported(0.5)])?.jobCostUsd).toBe(
      0.1,
    );
  });

  it('starts afresh when an attempt starts a new session', () => {
    const fresh: SessionPlan = { mode: 'new', sessionId: S2 };
    expect(attempts([newSession, reported(0.8)], [fresh, reported(0.3)])).toEqual({
      jobCostUsd: 1.1,
      sessionId: S2,
      sessionCostUsd: 0.3,
    });
  });

  it('is null until an attempt reports a cost', () => {
    expect(attempts([newSession, reported(null)])?.jobCostUsd).toBeNull();
  });
});

describe('what is left of a job’s budget', () => {
  it('is the budget less what the attempts spent, to a millionth of a dollar', () => {
    const spending = attempts([newSession, reported(0.8)]);
    expect(budgetLeft(1, spending)).toBe(0.2);
    expect(budgetLeft(1, undefined)).toBe(1);
    expect(budgetLeft(undefined, spending)).toBeNull();
    expect(budgetLeft(0.5, spending)).toBe(-0.3);
  });

  it('says what was spent of what when nothing is left', () => {
    expect(budgetSpentMessage(0.5, attempts([newSession, reported(0.8)]))).toBe(
      "budget spent: the job's attempts spent $0.8 of its maxBudgetUsd $0.5; no attempt starts with less than $0.01 left",
    );
  });
});
