import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { parseExecuteRequest, type ExecuteRequest } from '../contract/index.js';

export interface JobLimits {
  /** The real path of WORK_DIR: every run happens in it or below it. */
  readonly workDir: string;
  readonly maxPromptBytes: number;
}

export type ValidJob =
  | { readonly ok: true; readonly request: ExecuteRequest; readonly cwd: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Everything that makes job data unusable, in one line naming each bad field: the contract's
 * schema first, then what only this machine can tell (prompt size cap, the working directory).
 */
export async function validateJob(data: unknown, limits: JobLimits): Promise<ValidJob> {
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
  const cwd = await resolveWorkingDir(request.workingDir, limits.workDir);
  if (!cwd.ok) problems.push(`workingDir: ${cwd.reason}`);

  if (problems.length > 0 || !cwd.ok) return { ok: false, reason: problems.join('; ') };
  return { ok: true, request, cwd: cwd.path };
}

type Resolved = { ok: true; path: string } | { ok: false; reason: string };

/** The real path of a job's working directory, which must be WORK_DIR or inside it. */
async function resolveWorkingDir(
  workingDir: string | undefined,
  workDir: string,
): Promise<Resolved> {
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
  if (!(await stat(real)).isDirectory()) {
    return { ok: false, reason: `${JSON.stringify(workingDir)} is not a directory` };
  }
  return { ok: true, path: real };
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel));
}
