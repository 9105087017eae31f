import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecuteRequest, WorkspaceRequest, WorkspaceResult } from '../../contract/index.js';
import { readPatch, storePatch, type PatchStored } from '../../redis/patches.js';
import type { WriteFence } from '../../redis/write-fence.js';
import { type Checkout, type Change, GitError, type Hold } from '../../workspace/index.js';
import { mustBeOutOfReach } from '../../isolation/index.js';
import { listedPaths, summaryLines } from './changed-paths.js';
import type { JobContext } from './context.js';

export type OpenedWorkspace =
  | { readonly ok: true; readonly checkout: Checkout; readonly note: string | null }
  | { readonly ok: false; readonly reason: string; readonly unreachable: boolean };

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
  /** Stops a clone or fetch: the attempt is stopping. */
  signal?: AbortSignal,
): Promise<OpenedWorkspace> {
  if (context.workspaces === null) {
    return {
      ok: false,
      reason: 'this worker keeps no workspaces (WORKSPACE_SOURCES is empty)',
      unreachable: false,
    };
  }
  const earlier = await readPatch(context.redis, context.address, jobId);
  const usable = earlier !== null && !earlier.truncated;
  const note =
    earlier?.truncated === true
      ? `the earlier attempt's change (${earlier.bytes} bytes) was over WORKSPACE_PATCH_MAX_BYTES and not kept: this attempt starts from ${earlier.base}`
      : null;
  // A run of an earlier attempt, its uid set aside or its worker dead, may still be in the
  // checkout: it is not replaced then.
  const dir = context.workspaces.checkoutDir(jobKey);
  await mustBeOutOfReach([dir], (dirs) => context.isolation.unclearedReaching(dirs));
  try {
    const checkout = await context.workspaces.checkout(
      jobKey,
      earlier === null ? request : { ...request, ref: earlier.base },
      usable ? earlier.patch : null,
      signal,
    );
    return { ok: true, checkout, note };
  } catch (error) {
    if (error instanceof GitError) {
      return { ok: false, reason: error.message, unreachable: error.unreachable };
    }
    throw error;
  }
}

/** The longest job id a branch is named after as it is (a ref's file name is 255 bytes at most). */
const PLAIN_ID_CHARS = 200;

/**
 * The branch a job's change is committed on: `claudebox/job-<id>`. An id with other characters
 * than a ref name may hold, or longer than PLAIN_ID_CHARS, has them made `-`, is cut there, and
 * gets `.<hash of the id>`, which no plain id has: two jobs never share a branch.
 */
export function branchOf(jobId: string): string {
  const plain = jobId.replace(/[^A-Za-z0-9_-]/g, '-');
  if (plain === jobId && jobId.length <= PLAIN_ID_CHARS) return `claudebox/job-${jobId}`;
  const hash = createHash('sha256').update(jobId).digest('hex').slice(0, 12);
  return `claudebox/job-${plain.slice(0, PLAIN_ID_CHARS)}.${hash}`;
}

/**
 * What the attempt changed, its patch stored once in Redis (over the cap, a summary instead)
 * for as long as the job's history; null where the job is another attempt's now (`fence`), whose
 * patch this one must not replace.
 */
export async function recordWorkspaceChange(
  context: JobContext,
  jobId: string,
  checkout: Checkout,
  request: ExecuteRequest,
  fence?: WriteFence,
): Promise<WorkspaceResult | null> {
  const branch = request.workspace?.commit === true ? branchOf(jobId) : null;
  const change = await checkout.change({ branch, maxPatchBytes: context.settings.patchMaxBytes });
  const ttlSeconds = context.settings.eventsTtlSeconds;
  const stored = await storeChange(context, jobId, change, ttlSeconds, fence);
  if (stored === 'fenced') return null;
  return {
    base: change.base,
    ...listedPaths(change),
    patchBytes: change.patchBytes,
    patchTruncated: stored === 'truncated',
    branch: change.commit === null ? null : branch,
    commit: change.commit,
  };
}

/** Stores the change as the job's patch, the one a retry starts from. */
function storeChange(
  context: JobContext,
  jobId: string,
  change: Change,
  ttlSeconds: number,
  fence: WriteFence | undefined,
): Promise<PatchStored> {
  return storePatch(
    context.redis,
    context.address,
    jobId,
    {
      base: change.base,
      bytes: change.patchBytes,
      patch: change.patch,
      summary: () => summaryOf(jobId, change, context),
    },
    { maxBytes: context.settings.patchMaxBytes, ttlSeconds },
    fence,
  );
}

/**
 * How long a git command of a checkpoint may take. The run is stopped while git reads its files:
 * a look that long (a FIFO the run left where git opens a file, a huge file to hash) is given up
 * rather than hold the run; the attempt's last look, after the run, gets LOOK_TIMEOUT_MS.
 */
const CHECKPOINT_TIMEOUT_MS = 30_000;
/** Checkpoints tried in a row before waiting for the next tool to finish, and how far apart. */
const CHECKPOINT_TRIES = 3;
const CHECKPOINT_RETRY_MS = 1000;

/**
 * The change so far, stored as the job's patch while the run goes on, after each tool the CLI
 * reports done: a worker that dies mid-run then loses at most the files changed since the last
 * tool finished. One at a time; requests that come meanwhile make one more, not one each.
 */
export class WorkspaceCheckpoints {
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(
    private readonly context: JobContext,
    private readonly jobId: string,
    private readonly checkout: Checkout,
    /** The patch must outlive the run, as the history does. */
    private readonly ttlSeconds: number,
    private readonly log: JobContext['logger'],
    /** The run goes on meanwhile: git reads its files with it stopped (see RunBox). */
    private readonly hold: Hold,
    /** Once it no longer holds, the job is another attempt's: no checkpoint is taken after. */
    private readonly fence?: WriteFence,
  ) {}

  /** A tool finished: take a checkpoint now, or right after the one under way. */
  request(): void {
    if (this.closed) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  /** No more checkpoints; resolves once the one under way is stored. */
  async close(): Promise<void> {
    this.closed = true;
    this.again = false;
    await this.running;
  }

  private async loop(): Promise<void> {
    let failed = 0;
    do {
      this.again = false;
      if (await this.checkpoint()) failed = 0;
      else if (++failed < CHECKPOINT_TRIES && !this.closed) {
        // No other tool may finish for long (a slow step): a checkpoint that could not be taken
        // (the run not stopped in time on a busy machine) is tried again shortly.
        await sleep(CHECKPOINT_RETRY_MS);
        this.again = true;
      }
    } while (this.wantedAgain());
  }

  /** A method, not a field read: it changes while a checkpoint is taken. */
  private wantedAgain(): boolean {
    return this.again && !this.closed;
  }

  /** Whether the checkpoint was stored. */
  private async checkpoint(): Promise<boolean> {
    const began = this.context.now();
    try {
      const change = await this.checkout.change({
        maxPatchBytes: this.context.settings.patchMaxBytes,
        hold: this.hold,
        timeoutMs: CHECKPOINT_TIMEOUT_MS,
      });
      const stored = await storeChange(
        this.context,
        this.jobId,
        change,
        this.ttlSeconds,
        this.fence,
      );
      if (stored === 'fenced') {
        this.closed = true;
        this.log.info("the job is another attempt's now: its workspace takes no more checkpoints");
        return true;
      }
      this.context.onCheckpoint?.((this.context.now() - began) / 1000);
      return true;
    } catch (error) {
      // The run goes on; the next checkpoint, or the attempt's end, stores the change.
      this.log.warn({ err: error }, "could not store a checkpoint of the job's workspace");
      return false;
    }
  }
}

function summaryOf(jobId: string, change: Change, context: JobContext): string {
  const lines = [
    `# The change of job ${jobId} is ${change.patchBytes} bytes, over WORKSPACE_PATCH_MAX_BYTES=${context.settings.patchMaxBytes}: only this summary is kept.`,
    `# base ${change.base}`,
    ...summaryLines(change, context.settings.patchMaxBytes),
  ];
  return `${lines.join('\n')}\n`;
}
