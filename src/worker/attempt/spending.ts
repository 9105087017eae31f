import type { Spending } from '../../contract/index.js';
import type { SessionPlan } from '../../executor/index.js';

/**
 * No attempt starts with less than this left of a job's maxBudgetUsd: a cap that small stops
 * the CLI after its first model call anyway, so the attempt could only spend without finishing.
 */
export const MIN_ATTEMPT_BUDGET_USD = 0.01;

/** What an attempt may spend: what is left of the job's budget, or null when it has none. */
export function budgetLeft(
  maxBudgetUsd: number | undefined,
  spending: Spending | undefined,
): number | null {
  if (maxBudgetUsd === undefined) return null;
  return roundToMicros(maxBudgetUsd - (spending?.jobCostUsd ?? 0));
}

/** Dollars to a millionth, so that sums of floats (0.19999999999999996) read as written. */
export function roundToMicros(usd: number): number {
  return Number(usd.toFixed(6));
}

/** Why an attempt does not start: the job's budget is spent. */
export function budgetSpentMessage(maxBudgetUsd: number, spending: Spending | undefined): string {
  const spent = roundToMicros(spending?.jobCostUsd ?? 0);
  return (
    `budget spent: the job's attempts spent $${spent} of its maxBudgetUsd $${maxBudgetUsd}; ` +
    `no attempt starts with less than $${MIN_ATTEMPT_BUDGET_USD} left`
  );
}

/**
 * The spending as an attempt starts: a session the job starts itself has cost nothing yet, so
 * a later attempt that resumes it after this one died knows where its cost began.
 */
export function spendingAtStart(before: Spending | undefined, session: SessionPlan): Spending {
  const jobCostUsd = before?.jobCostUsd ?? null;
  if (session.mode === 'new')
    return { jobCostUsd, sessionId: session.sessionId, sessionCostUsd: 0 };
  return before ?? { jobCostUsd, sessionId: null, sessionCostUsd: null };
}

/** What the CLI said the run cost: its result line's total_cost_usd and the cost since the last. */
export interface ReportedCost {
  readonly costUsd: number | null;
  readonly costSinceLastResultUsd: number | null;
  /** The session the run reported (the CLI's own pick when the worker fixed none). */
  readonly streamSessionId: string | null;
}

/**
 * The spending once an attempt ended. Its spend is its total_cost_usd less the session's cost
 * before it (0 for a session it started). When that is unknown (a session resumed from
 * elsewhere) the CLI's cost since the session's previous result line stands in, else the whole
 * total: a budget had better count too much than too little. An attempt without a reported
 * cost (it died before its result line) adds nothing, and the session's cost stays where it
 * was: the next attempt that resumes the session reports a total that includes what this one
 * spent, as far as the transcript kept it, so its spend is counted then.
 */
export function spendingAfter(
  atStart: Spending,
  session: SessionPlan,
  reported: ReportedCost,
): Spending {
  const total = reported.costUsd;
  if (total === null) return atStart;
  const baseline = baselineOf(atStart, session);
  const spent =
    baseline === null ? (reported.costSinceLastResultUsd ?? total) : Math.max(0, total - baseline);
  return {
    jobCostUsd: roundToMicros((atStart.jobCostUsd ?? 0) + spent),
    sessionId: session.mode === 'none' ? reported.streamSessionId : session.sessionId,
    sessionCostUsd: total,
  };
}

/**
 * The session's cumulative cost before the attempt: null when the job never saw it. A fork's
 * total includes what the session it copied cost, which this job did not spend.
 */
function baselineOf(atStart: Spending, session: SessionPlan): number | null {
  if (session.mode === 'new' || session.mode === 'none') return 0;
  if (session.mode === 'fork') return null;
  return atStart.sessionId === session.sessionId ? atStart.sessionCostUsd : null;
}
