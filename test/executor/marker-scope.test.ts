import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { markerConfinement } from '../../src/executor/confinement.js';
import { readProcStat } from '../../src/common/proc-stat.js';

const marker = { name: 'CLAUDEBOX_TEST_RUN', value: `scope-${process.pid}` };

/** A process that carries the marker, as every process of a run without a uid of its own does. */
function marked(): ChildProcess {
  return spawn('sleep', ['30'], {
    env: { PATH: process.env.PATH ?? '', [marker.name]: marker.value },
    stdio: 'ignore',
  });
}

const alive = (pid: number): boolean =>
  existsSync(`/proc/${pid}`) && readProcStat(pid)?.state !== 'Z';

describe('the processes of a run known by its marker', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const child of started.splice(0)) child.kill('SIGKILL');
  });

  it('are those started since the CLI: a sweep stops none older, whatever its environment holds', async () => {
    const older = marked();
    started.push(older);
    // A clock tick (10 ms) at least between the older process's start and the run's.
    await sleep(50);
    const confinement = markerConfinement(marker);
    const cli = marked();
    confinement.spawned?.(cli.pid ?? 0);
    const tool = marked();
    started.push(cli, tool);
    await sleep(50);

    const found = (await confinement.find(cli.pid ?? 0)).map(({ pid }) => pid);
    expect(found.sort((a, b) => a - b)).toEqual(
      [cli.pid ?? 0, tool.pid ?? 0].sort((a, b) => a - b),
    );
    expect(await confinement.sweep(undefined, 0)).toBe(2);
    await sleep(50);
    expect([cli, tool, older].map(({ pid }) => alive(pid ?? 0))).toEqual([false, false, true]);
  });
});
