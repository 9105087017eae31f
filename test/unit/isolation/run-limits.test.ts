import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IsolationError } from '../../../src/isolation/errors.js';
import {
  limitsLauncher,
  oomFloorWarning,
  pidRoomWarning,
} from '../../../src/isolation/run-limits.js';

const host =
  (values: Record<string, string>) =>
  (name: string): string | undefined =>
    values[name];

/** A PATH holding only the named tools of /usr/bin. */
function pathWith(...tools: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'claudebox-path-'));
  for (const tool of tools) symlinkSync(`/usr/bin/${tool}`, join(dir, tool));
  return dir;
}

describe('the limits a run is launched with', () => {
  it('cap its processes and make it the OOM killer’s first pick', async () => {
    const path = pathWith('prlimit', 'choom');
    expect(await limitsLauncher(64, path)).toEqual([
      join(path, 'prlimit'),
      '--nproc=64:64',
      '--',
      join(path, 'choom'),
      '-n',
      '1000',
      '--',
    ]);
  });

  it('leave the processes uncapped at RUN_MAX_PROCESSES=0', async () => {
    const path = pathWith('prlimit', 'choom');
    expect(await limitsLauncher(0, path)).toEqual([join(path, 'choom'), '-n', '1000', '--']);
  });

  it.each([
    ['prlimit', 'choom'],
    ['choom', 'prlimit'],
  ])('cannot be set without %s, and say what to install', async (missing, present) => {
    const launched = limitsLauncher(64, pathWith(present));
    await expect(launched).rejects.toThrow(IsolationError);
    await expect(launched).rejects.toThrow(`${missing} is not on PATH (install util-linux)`);
  });
});

describe('the warning that runs could take every pid of the host', () => {
  const roomy = host({ 'kernel.pid_max': '4194304', 'kernel.threads-max': '192735' });

  it('is given where CONCURRENCY runs at the cap reach the fewer of pid_max and threads-max', () => {
    expect(pidRoomWarning(100, 2048, roomy)).toBe(
      'CONCURRENCY=100 runs of RUN_MAX_PROCESSES=2048 processes each could take every pid of the host (kernel.threads-max is 192735), and then the worker could not start one: lower RUN_MAX_PROCESSES',
    );
    expect(pidRoomWarning(16, 2048, host({ 'kernel.pid_max': '32768' }))).toContain(
      '(kernel.pid_max is 32768)',
    );
  });

  it('is not given where they stay below both', () => {
    expect(pidRoomWarning(8, 2048, roomy)).toBeNull();
    expect(pidRoomWarning(15, 2048, host({ 'kernel.pid_max': '32768' }))).toBeNull();
  });

  it('is given where runs are not capped at all', () => {
    expect(pidRoomWarning(1, 0, roomy)).toMatch(/^RUN_MAX_PROCESSES=0: a run may start processes/);
  });

  it('is not given where the host’s limits cannot be read', () => {
    expect(pidRoomWarning(1000, 2048, host({}))).toBeNull();
  });
});

describe('the warning that a run can take its OOM score adjustment back', () => {
  const status = (effective: string): string =>
    `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${effective}\nCapBnd:\t${effective}\n`;

  it('is given where the worker lacks CAP_SYS_RESOURCE', () => {
    expect(oomFloorWarning(status('000001fffeffffff'))).toMatch(
      /^the worker lacks CAP_SYS_RESOURCE: a run's processes can lower their OOM score adjustment/,
    );
    // Docker's default capabilities.
    expect(oomFloorWarning(status('00000000a80425fb'))).not.toBeNull();
  });

  it('is not given where the worker has it', () => {
    expect(oomFloorWarning(status('000001ffffffffff'))).toBeNull();
    expect(oomFloorWarning(status('0000000001000000'))).toBeNull();
  });

  it('is not given where the worker’s capabilities cannot be read', () => {
    expect(oomFloorWarning('')).toBeNull();
  });
});
