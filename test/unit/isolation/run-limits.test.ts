import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkProcessCap,
  ownProcessLimit,
  pidRoomOfHost,
  pidRoomWarning,
} from '../../../src/isolation/run-limits.js';

describe('the warning that runs could take every pid of the host', () => {
  const roomy = [
    { name: 'kernel.pid_max', value: 4194304 },
    { name: 'kernel.threads-max', value: 192735 },
  ];

  it('is given where CONCURRENCY runs at the cap reach the tightest limit on pids', () => {
    expect(pidRoomWarning(100, 2048, roomy, 96367)).toBe(
      'CONCURRENCY=100 runs of RUN_MAX_PROCESSES=2048 processes each could take every pid the worker has (kernel.threads-max is 192735), and then the worker could not start one: lower RUN_MAX_PROCESSES',
    );
    const container = [...roomy, { name: "the worker's cgroup's pids.max", value: 8192 }];
    expect(pidRoomWarning(4, 2048, container, 96367)).toContain(
      "(the worker's cgroup's pids.max is 8192)",
    );
  });

  it('is not given where they stay below every limit', () => {
    expect(pidRoomWarning(8, 2048, roomy, 96367)).toBeNull();
    expect(pidRoomWarning(15, 2048, [{ name: 'kernel.pid_max', value: 32768 }], null)).toBeNull();
  });

  it('counts runs at the worker’s own limit, which they inherit, at RUN_MAX_PROCESSES=0', () => {
    expect(pidRoomWarning(3, 0, roomy, 96367)).toContain(
      "runs of the worker's own limit of 96367 processes each",
    );
    expect(pidRoomWarning(1, 0, roomy, 1000)).toBeNull();
    expect(pidRoomWarning(1, 0, roomy, null)).toMatch(
      /^RUN_MAX_PROCESSES=0 and the worker has no limit of processes/,
    );
  });

  it('is not given where no limit on pids can be read', () => {
    expect(pidRoomWarning(1000, 2048, [], 96367)).toBeNull();
  });
});

describe('the limits on pids the worker’s runs share with it', () => {
  const files =
    (values: Record<string, string>) =>
    (path: string): string | undefined =>
      values[path];

  it('are the kernel’s and the pids.max of the worker’s cgroup, v1 or v2, where set', () => {
    const kernel = {
      '/proc/sys/kernel/pid_max': '32768\n',
      '/proc/sys/kernel/threads-max': '192735\n',
    };
    expect(
      pidRoomOfHost(
        files({
          ...kernel,
          '/proc/self/cgroup': '8:pids:/docker/abc\n0::/\n',
          '/sys/fs/cgroup/pids/docker/abc/pids.max': '8192\n',
        }),
      ),
    ).toEqual([
      { name: 'kernel.pid_max', value: 32768 },
      { name: 'kernel.threads-max', value: 192735 },
      { name: "the worker's cgroup's pids.max", value: 8192 },
    ]);
    expect(
      pidRoomOfHost(
        files({
          ...kernel,
          '/proc/self/cgroup': '0::/system.slice/worker.service\n',
          '/sys/fs/cgroup/system.slice/worker.service/pids.max': '4096\n',
        }),
      ).at(-1),
    ).toEqual({ name: "the worker's cgroup's pids.max", value: 4096 });
    // A container's cgroup mounted at the top of the controller's hierarchy (no cgroup
    // namespace), and a hierarchy of several controllers.
    expect(
      pidRoomOfHost(
        files({
          ...kernel,
          '/proc/self/cgroup': '5:cpu,pids:/docker/abc\n',
          '/sys/fs/cgroup/cpu,pids/pids.max': '2048\n',
        }),
      ).at(-1),
    ).toEqual({ name: "the worker's cgroup's pids.max", value: 2048 });
    // No limit set: pids.max says "max".
    expect(
      pidRoomOfHost(
        files({ ...kernel, '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/pids.max': 'max\n' }),
      ),
    ).toHaveLength(2);
  });

  it('include this host’s pid_max, as a real read gives it', () => {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    expect(pidRoomOfHost()).toContainEqual({ name: 'kernel.pid_max', value: pidMax });
  });
});

describe('RUN_MAX_PROCESSES against the worker’s own limit of processes', () => {
  it('is refused over it, naming both: the kill that ends a run could not start', () => {
    expect(() => checkProcessCap(100_000, 96367)).toThrow(
      "RUN_MAX_PROCESSES=100000 is over the worker's own limit of processes (96367, its RLIMIT_NPROC)",
    );
  });

  it('is taken at or under it, at 0, and where the worker has no limit', () => {
    for (const [cap, own] of [
      [96367, 96367],
      [2048, 96367],
      [0, 10],
      [100_000, null],
    ] as const) {
      expect(() => checkProcessCap(cap, own)).not.toThrow();
    }
  });

  it('is read from the worker’s /proc/self/limits', () => {
    const limits = (soft: string) => () =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax processes             ${soft}                96367                processes\n`;
    expect(ownProcessLimit(limits('4000'))).toBe(4000);
    expect(ownProcessLimit(limits('unlimited'))).toBeNull();
  });
});
