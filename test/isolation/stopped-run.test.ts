import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { readProcFile, readProcStat } from '../../src/common/proc-stat.js';
import { isStill, whileStopped } from '../../src/isolation/stopped-run.js';
import { becomeUid, SENDER_SHELL } from '../../src/isolation/tools.js';
import { eventually } from '../support/processes.js';

/** A uid no other test's runs use. */
const UID = 63_522;
const SETPRIV = '/usr/bin/setpriv';
const sender = { setpriv: SETPRIV, shell: SENDER_SHELL };

/**
 * Whether the process does nothing now: stopped (T), or, where the stop came as its shell
 * vforked a command, waiting in vfork() on its stopped child (D).
 */
const stillNow = (pid: number): boolean =>
  isStill(readProcStat(pid)?.state ?? 'gone', () => readProcFile(pid, 'wchan'));

describe('a run stopped while root looks at its directories', () => {
  let dir: string;
  let beating: ReturnType<typeof spawn> | undefined;

  afterEach(() => {
    beating?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** A process of UID that appends to a file every 10 ms, for ever. */
  async function heartbeat(): Promise<{ pid: number; size: () => number }> {
    dir = mkdtempSync(join(tmpdir(), 'claudebox-stopped-run-'));
    chmodSync(dir, 0o777);
    const file = join(dir, 'beats');
    const beat = `while :; do echo x >> ${file}; sleep 0.01; done`;
    beating = spawn(SETPRIV, [...becomeUid(UID), '/bin/sh', '-c', beat], { stdio: 'ignore' });
    const size = (): number => {
      try {
        return statSync(file).size;
      } catch {
        return 0;
      }
    };
    expect(await eventually(() => size() > 0, 5000)).toBe(true);
    return { pid: beating.pid ?? 0, size };
  }

  it('stops every process of its uid for the step, then lets them go on', async () => {
    const { pid, size } = await heartbeat();
    const seen = await whileStopped(UID, sender, async () => {
      const before = size();
      await sleep(300);
      return { before, after: size(), still: stillNow(pid) };
    });
    expect(seen).toMatchObject({ still: true });
    expect(seen?.after).toBe(seen?.before);
    const resumedAt = size();
    expect(await eventually(() => size() > resumedAt, 5000)).toBe(true);
    expect(readProcStat(pid)?.state).not.toBe('T');
  });

  it("resumes only its uid's processes, not another's stopped in the worker's session", async () => {
    const { pid } = await heartbeat();
    // Root's, in this process's session: as an operator's job suspended in the worker's terminal.
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      other.kill('SIGSTOP');
      const otherPid = other.pid ?? 0;
      expect(await eventually(() => readProcStat(otherPid)?.state === 'T', 5000)).toBe(true);
      expect(await whileStopped(UID, sender, () => Promise.resolve(stillNow(pid)))).toBe(true);
      expect(await eventually(() => !stillNow(pid), 5000)).toBe(true);
      expect(readProcStat(otherPid)?.state).toBe('T');
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('skips the step where the uid could not be stopped, leaving its processes going', async () => {
    const { pid, size } = await heartbeat();
    let ran = false;
    // A sender that never gets to send, as when a process of the uid stops it first.
    const stopped = await whileStopped(UID, { setpriv: SETPRIV, shell: '/bin/false' }, () => {
      ran = true;
      return Promise.resolve('looked');
    });
    expect(stopped).toBeNull();
    expect(ran).toBe(false);
    const at = size();
    expect(await eventually(() => size() > at, 5000)).toBe(true);
    expect(readProcStat(pid)?.state).not.toBe('T');
  });

  it('lets the processes go on even where no sender of SIGCONT gets through', async () => {
    const { pid, size } = await heartbeat();
    // A shell that sends SIGSTOP as asked, but never SIGCONT.
    const shell = join(dir, 'no-cont');
    writeFileSync(shell, '#!/bin/sh\ncase "$2" in *CONT*) exit 1 ;; esac\nexec /bin/sh "$@"\n');
    chmodSync(shell, 0o755);
    const still = await whileStopped(UID, { setpriv: SETPRIV, shell }, () =>
      Promise.resolve(stillNow(pid)),
    );
    expect(still).toBe(true);
    const at = size();
    expect(await eventually(() => size() > at, 5000)).toBe(true);
    expect(readProcStat(pid)?.state).not.toBe('T');
  });
});
