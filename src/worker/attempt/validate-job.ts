import { realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseExecuteRequest, type ExecuteRequest } from '../../contract/index.js';
import type { JobSettings } from './context.js';
import { isInside } from '../../common/paths.js';
import { sourceRefusal } from '../../workspace/index.js';
import { UnreadableData } from '../../redis/readable-job.js';

/** What validating a job takes: some of the job settings, and where it works with isolation. */
export type JobLimits = Pick<
  JobSettings,
  | 'workDir'
  | 'maxPromptBytes'
  | 'maxTimeoutSeconds'
  | 'allowedPermissionModes'
  | 'profiles'
  | 'workspaceSources'
  | 'workspaceDir'
> & {
  /**
   * Under run isolation, the job's own directory for when it names none, and WORK_DIR itself,
   * which every job shares, is no working directory. Null when runs are not isolated.
   */
  readonly scratchDir: string | null;
  /** Under run isolation, RUN_ROOT (see Isolation.runRoot); null when runs are not isolated. */
  readonly runRoot: string | null;
};

export type ValidJob =
  | { readonly ok: true; readonly request: ExecuteRequest; readonly cwd: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Everything that makes job data unusable, in one line naming each bad field: the contract's
 * schema first, then what only this machine can tell (prompt size cap, the working directory).
 */
export async function validateJob(data: unknown, limits: JobLimits): Promise<ValidJob> {
  if (data instanceof UnreadableData) return { ok: false, reason: data.reason };
  const parsed = parseExecuteRequest(data);
  if (!parsed.ok) return parsed;
  const { request } = parsed;
  const problems: string[] = [];

  const promptBytes = Buffer.byteLength(request.prompt, 'utf8');
  if (promptBytes > limits.maxPromptBytes) {
    problems.push(
      `prompt: is ${promptBytes} bytes, over the limit of ${limits.maxPromptBytes} (MAX_PROMPT_BYTES)`,
    );
  }
  if (request.timeout !== undefined && request.timeout > limits.maxTimeoutSeconds) {
    problems.push(
      `timeout: ${request.timeout} seconds is over the limit of ${limits.maxTimeoutSeconds} (MAX_TIMEOUT_SECONDS)`,
    );
  }
  const mode = request.permissionMode;
  if (mode !== undefined && !limits.allowedPermissionModes.includes(mode)) {
    problems.push(
      `permissionMode: ${mode} is not allowed on this worker (ALLOWED_PERMISSION_MODES=${limits.allowedPermissionModes.join(',')})`,
    );
  }
  if (request.profile !== undefined && !limits.profiles.has(request.profile)) {
    problems.push(`profile: ${unknownProfile(request.profile, limits.profiles)}`);
  }
  if (request.workspace !== undefined) {
    const refused = await sourceRefusal(request.workspace.source, limits.workspaceSources);
    if (refused !== null) problems.push(`workspace.source: ${refused}`);
  }
  const cwd = await resolveWorkingDir(request.workingDir, limits);
  if (!cwd.ok) problems.push(`workingDir: ${cwd.reason}`);
  if (
    cwd.ok &&
    request.workingDir !== undefined &&
    limits.scratchDir !== null &&
    cwd.path === limits.workDir
  ) {
    problems.push(
      `workingDir: ${JSON.stringify(request.workingDir)} is WORK_DIR itself, which every job shares; with run isolation a job works in a directory inside it (or, naming none, in one of its own)`,
    );
  }

  if (problems.length > 0 || !cwd.ok) return { ok: false, reason: problems.join('; ') };
  // A job with a workspace works in its checkout; the caller makes either once the job is valid.
  const scratch =
    request.workingDir === undefined && request.workspace === undefined ? limits.scratchDir : null;
  const workingDir = scratch ?? cwd.path;
  const addDirs = await resolveAddDirs(request.addDirs, limits);
  if (!addDirs.ok) return addDirs;
  const nested = limits.scratchDir === null ? null : nesting(request, workingDir, addDirs.paths);
  if (nested !== null) return { ok: false, reason: nested };
  // The CLI gets the directories as real paths: it runs elsewhere than WORK_DIR.
  const resolved = addDirs.paths === undefined ? request : { ...request, addDirs: addDirs.paths };
  return { ok: true, request: resolved, cwd: workingDir };
}

/**
 * Each of `addDirs` must resolve inside WORK_DIR as `workingDir` must; with run isolation not to
 * WORK_DIR itself, which every job shares (the run's uid is handed each directory for the run).
 */
async function resolveAddDirs(
  addDirs: readonly string[] | undefined,
  limits: JobLimits,
): Promise<{ ok: true; paths: string[] | undefined } | { ok: false; reason: string }> {
  if (addDirs === undefined) return { ok: true, paths: undefined };
  const problems: string[] = [];
  const paths: string[] = [];
  for (const dir of addDirs) {
    const resolved = await resolveWorkingDir(dir, limits);
    if (!resolved.ok) problems.push(`addDirs: ${resolved.reason}`);
    else if (limits.scratchDir !== null && resolved.path === limits.workDir) {
      problems.push(
        `addDirs: ${JSON.stringify(dir)} is WORK_DIR itself, which every job shares; with run isolation name a directory inside it`,
      );
    } else paths.push(resolved.path);
  }
  return problems.length > 0 ? { ok: false, reason: problems.join('; ') } : { ok: true, paths };
}

/**
 * With run isolation, each directory handed to a run is taken back on its own, by its path: one
 * inside another could be swapped for a link by the run first, and its taking back (or the
 * next attempt's handing over) would then reach wherever that link points.
 */
function nesting(
  request: ExecuteRequest,
  workingDir: string,
  addDirs: readonly string[] | undefined,
): string | null {
  const named = request.addDirs ?? [];
  const handed = (addDirs ?? []).map((path, index) => ({
    name: `addDirs ${JSON.stringify(named[index] ?? '')}`,
    path,
  }));
  // Without a workingDir a job works in a directory of its own, with a workspace in its checkout:
  // both outside where addDirs may be.
  if (request.workingDir !== undefined && request.workspace === undefined) {
    handed.unshift({ name: `workingDir ${JSON.stringify(request.workingDir)}`, path: workingDir });
  }
  for (const [index, dir] of handed.entries()) {
    for (const other of handed.slice(index + 1)) {
      if (isInside(other.path, dir.path) || isInside(dir.path, other.path)) {
        return `${other.name} and ${dir.name} are one inside the other; with run isolation the directories of a run must be apart`;
      }
    }
  }
  return null;
}

function unknownProfile(name: string, profiles: JobLimits['profiles']): string {
  const known = [...profiles.keys()].sort();
  return known.length === 0
    ? `${JSON.stringify(name)} is not a profile of this worker, which has none (PROFILES_FILE)`
    : `${JSON.stringify(name)} is not a profile of this worker (known: ${known.join(', ')})`;
}

type Resolved = { ok: true; path: string } | { ok: false; reason: string };

/**
 * The real path of a job's working directory, which must be WORK_DIR or inside it, and not in
 * WORKSPACE_DIR, where other jobs' checkouts are (see keptFromRuns too).
 */
async function resolveWorkingDir(
  workingDir: string | undefined,
  limits: Pick<JobLimits, 'workDir' | 'workspaceDir' | 'runRoot'>,
): Promise<Resolved> {
  const { workDir, workspaceDir } = limits;
  if (workingDir === undefined) return { ok: true, path: workDir };
  const wanted = resolve(workDir, workingDir);
  let real: string;
  try {
    // Symlinks resolved: a link inside WORK_DIR that points out of it is out of it.
    real = await realpath(wanted);
  } catch {
    return {
      ok: false,
      reason: `${JSON.stringify(workingDir)} does not exist (looked for ${wanted})`,
    };
  }
  if (!isInside(real, workDir)) {
    return {
      ok: false,
      reason: `${JSON.stringify(workingDir)} resolves to ${real}, outside WORK_DIR ${workDir}`,
    };
  }
  if (isInside(real, workspaceDir)) {
    return {
      ok: false,
      reason: `${JSON.stringify(workingDir)} is in WORKSPACE_DIR ${workspaceDir}, where jobs' workspaces are kept`,
    };
  }
  const kept = keptFromRuns(real, limits);
  if (kept !== null) return { ok: false, reason: `${JSON.stringify(workingDir)} ${kept}` };
  if (!(await stat(real)).isDirectory()) {
    return { ok: false, reason: `${JSON.stringify(workingDir)} is not a directory` };
  }
  return { ok: true, path: real };
}

/**
 * Under run isolation, why a run may not be handed `real`, or null: a run is handed what is
 * root's in its directories, so one holding WORKSPACE_DIR would get the cached clones that later
 * jobs check out, and one in or holding RUN_ROOT other runs' homes and scratch directories, the
 * uid leases and the shell that kills runs. Where WORK_DIR holds either, jobs may still name its
 * other directories.
 */
function keptFromRuns(
  real: string,
  { workDir, workspaceDir, runRoot }: Pick<JobLimits, 'workDir' | 'workspaceDir' | 'runRoot'>,
): string | null {
  // WORK_DIR itself is refused as such under isolation, naming it.
  if (runRoot === null || real === workDir) return null;
  if (isInside(workspaceDir, real)) {
    return `holds WORKSPACE_DIR ${workspaceDir}, where jobs' workspaces are kept; with run isolation a run would be handed it`;
  }
  const where = isInside(real, runRoot) ? 'is in' : isInside(runRoot, real) ? 'holds' : null;
  if (where === null) return null;
  return `${where} RUN_ROOT ${runRoot}, where runs' homes and the worker's uid leases are; with run isolation a run would be handed it`;
}
