import type { ExecuteRequest, WorkspaceRequest, WorkspaceResult } from '../../contract/index.js';
import { readPatch, storePatch } from '../../redis/patches.js';
import { type Checkout, type Change, GitError } from '../../workspace/index.js';
import type { JobContext } from './context.js';

export type OpenedWorkspace =
  | { readonly ok: true; readonly checkout: Checkout; readonly note: string | null }
  | { readonly ok: false; readonly reason: string };

/**
 * The job's checkout for this attempt: at the request's ref, or, after an earlier attempt, at
 * the commit that attempt started from with its stored change applied, so the files and a
 * resumed session agree.
 */
export async function openWorkspace(
  context: JobContext,
  jobId: string,
  jobKey: string,
  request: WorkspaceRequest,
): Promise<OpenedWorkspace> {
  if (context.workspaces === null) {
    return { ok: false, reason: 'this worker keeps no workspaces (WORKSPACE_SOURCES is empty)' };
  }
  const earlier = await readPatch(context.redis, context.address, jobId);
  const usable = earlier !== null && !earlier.truncated;
  const note =
    earlier?.truncated === true
      ? `the earlier attempt's change (${earlier.bytes} bytes) was over WORKSPACE_PATCH_MAX_BYTES and not kept: this attempt starts from ${earlier.base}`
      : null;
  try {
    const checkout = await context.workspaces.checkout(
      jobKey,
      earlier === null ? request : { ...request, ref: earlier.base },
      usable ? earlier.patch : null,
    );
    return { ok: true, checkout, note };
  } catch (error) {
    if (error instanceof GitError) return { ok: false, reason: error.message };
    throw error;
  }
}

/** The branch a job's change is committed on: its id, made a valid ref name. */
export function branchOf(jobId: string): string {
  return `claudebox/job-${jobId.replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

/**
 * What the attempt changed, its patch stored once in Redis (over the cap, a summary instead)
 * for as long as the job's history.
 */
export async function recordWorkspaceChange(
  context: JobContext,
  jobId: string,
  checkout: Checkout,
  request: ExecuteRequest,
): Promise<WorkspaceResult> {
  const branch = request.workspace?.commit === true ? branchOf(jobId) : null;
  const change = await checkout.change(branch);
  const truncated = await storePatch(
    context.redis,
    context.address,
    jobId,
    { base: change.base, patch: change.patch, summary: () => summaryOf(jobId, change, context) },
    { maxBytes: context.settings.patchMaxBytes, ttlSeconds: context.settings.eventsTtlSeconds },
  );
  return {
    base: change.base,
    changed: change.changed,
    added: change.added,
    deleted: change.deleted,
    patchBytes: change.patch.length,
    patchTruncated: truncated,
    branch: change.commit === null ? null : branch,
    commit: change.commit,
  };
}

function summaryOf(jobId: string, change: Change, context: JobContext): string {
  const lines = [
    `# The change of job ${jobId} is ${change.patch.length} bytes, over WORKSPACE_PATCH_MAX_BYTES=${context.settings.patchMaxBytes}: only this summary is kept.`,
    `# base ${change.base}`,
    ...change.added.map((path) => `A\t${path}`),
    ...change.changed.map((path) => `M\t${path}`),
    ...change.deleted.map((path) => `D\t${path}`),
  ];
  return `${lines.join('\n')}\n`;
}
