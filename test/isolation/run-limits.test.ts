import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  LIMITS_SHELL,
  limitsLauncher,
  ownProcessLimit,
  setUpRunLimits,
} from '../../src/isolation/run-limits.js';

const REPORT = 'grep "^Max processes" /proc/self/limits; cat /proc/self/oom_score_adj';

/**
 * What a process started behind `launcher` has, `shell` standing in for the launcher's own, and
 * `before` in front of it all (as root, so the launch starts as a run's does).
 */
function launchBehind(
  launcher: readonly string[],
  { shell, before = [] }: { shell?: string; before?: readonly string[] } = {},
) {
  const [own = '', ...args] = launcher;
  const command = [...before, shell ?? own, ...args, 'sh', '-c', REPORT];
  const { status, stdout, stderr } = spawnSync(command[0] ?? '', command.slice(1), {
    encoding: 'utf8',
  });
  const [processes = '', oomScoreAdj] = stdout.trim().split('\n');
  const [soft, hard] = processes.split(/\s+/).slice(2, 4);
  return { status, limits: { soft, hard, oomScoreAdj }, stdout, stderr };
}

describe('the limits a run is launched with', () => {
  it('cap its processes, soft and hard, and make it the OOM killer’s first pick', () => {
    const launcher = limitsLauncher(64);
    expect(launcher[0]).toBe(LIMITS_SHELL);
    expect(launchBehind(launcher).limits).toEqual({ soft: '64', hard: '64', oomScoreAdj: '1000' });
  });

  it.each(['dash', 'bash'])('are set by %s, whichever name it gives the process limit', (shell) => {
    expect(launchBehind(limitsLauncher(64), { shell }).limits).toEqual({
      soft: '64',
      hard: '64',
      oomScoreAdj: '1000',
    });
  });

  it('leave the processes uncapped at RUN_MAX_PROCESSES=0', () => {
    const own = launchBehind(['env']).limits;
    expect(launchBehind(limitsLauncher(0)).limits).toEqual({ ...own, oomScoreAdj: '1000' });
  });

  it('are at the worker’s own limit, soft and hard, when RUN_MAX_PROCESSES=0 is set up: none can raise it past what the kill starts under', () => {
    const own = ownProcessLimit();
    expect(own, 'the test run needs a limit of processes (ulimit -u)').not.toBeNull();
    const { argv } = setUpRunLimits(0, 1);
    expect(launchBehind(argv).limits).toMatchObject({ soft: String(own), hard: String(own) });
  });

  it.each(['dash', 'bash'])(
    'keep the run from starting, in %s, where the cap cannot be set, and say so',
    (shell) => {
      // A hard limit under the cap, which a root without CAP_SYS_RESOURCE cannot raise.
      const lowered = ['bash', '-c', 'ulimit -u 10 && exec "$@"', 'lowered'];
      const withoutResource = ['setpriv', '--bounding-set=-sys_resource', '--'];
      const launched = launchBehind(limitsLauncher(64), {
        shell,
        before: [...lowered, ...withoutResource],
      });
      expect(launched.status).toBe(126);
      expect(launched.stdout).toBe('');
      expect(launched.stderr).toContain(
        "claudebox-limits: cannot set the run's process limit (RLIMIT_NPROC) to 64",
      );
    },
  );

  it('take no function from the environment in the place of the builtins that set them', () => {
    const launched = launchBehind(limitsLauncher(64), {
      shell: 'bash',
      before: ['env', 'BASH_FUNC_ulimit%%=() { :; }', 'BASH_FUNC_echo%%=() { :; }'],
    });
    expect(launched.limits).toEqual({ soft: '64', hard: '64', oomScoreAdj: '1000' });
  });
});
