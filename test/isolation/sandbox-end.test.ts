import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_MARKER } from '../../src/executor/env.js';
import { childrenOf } from '../../src/executor/process-tree.js';
import { runClaude, type RunLine } from '../../src/executor/run.js';
import { sandboxInit, uidConfinement } from '../../src/isolation/uid-confinement.js';
import { isAlive, pidsOfUid } from '../support/processes.js';

const standIn = new URL('../fixtures/bin/sandbox-stand-in.sh', import.meta.url).pathname;
/** A uid no other test's runs use. */
const UID = 63_517;

const records = mkdtempSync(join(tmpdir(), 'claudebox-sandbox-end-'));
afterAll(() => rmSync(records, { recursive: true, force: true }));

/** Runs `script` as UID behind the sandbox stand-in in `mode`; what it left, as it returned. */
async function runBehind(mode: 'linger' | 'silent' | 'leaderless', script: string) {
  const record = join(records, `${mode}-init-pid`);
  const lines: RunLine[] = [];
  const runId = randomUUID();
  const outcome = await runClaude({
    bin: '/bin/sh',
    args: ['-c', script],
    cwd: tmpdir(),
    env: { PATH: '/usr/bin:/bin' },
    prompt: '',
    marker: { name: RUN_MARKER, value: runId },
    confinement: uidConfinement({
      uid: UID,
      setpriv: '/usr/bin/setpriv',
      sandbox: {
        argv: [standIn, mode, record, ...(mode === 'leaderless' ? [String(UID)] : [])],
        asRunUid: false,
      },
    }),
    timeoutMs: 30_000,
    killGraceMs: 500,
    maxOutputBytes: 1024 * 1024,
    maxLineBytes: 1024 * 1024,
    onLine: (line) => void lines.push(line),
  });
  const init = mode === 'silent' ? null : Number(readFileSync(record, 'utf8'));
  const initAlive = init === null ? null : isAlive(init);
  return { outcome, lines, init, initAlive, uidLeft: pidsOfUid(UID) };
}

describe('the end of a sandboxed run', () => {
  it('is known by its init, whose pid bwrap’s own report gives', async () => {
    const bwrap = spawn(
      'bwrap',
      ['--info-fd', '3', '--die-with-parent', '--unshare-pid', '--ro-bind', '/', '/', 'sleep', '5'],
      { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] },
    );
    try {
      const init = await sandboxInit(bwrap.stdio[3] as Readable);
      expect(init, 'bwrap reported no init: is bubblewrap (bwrap) installed?').not.toBeNull();
      expect(childrenOf(bwrap.pid ?? 0)).toEqual([init?.pid]);
      expect(init?.startTime).toMatch(/^\d+$/);
    } finally {
      bwrap.kill('SIGKILL');
    }
  });

  it('comes only once the sandbox’s init is gone, which the kernel lets end after every process of its namespace', async () => {
    const { outcome, init, initAlive, uidLeft } = await runBehind('linger', 'exit 0');
    expect(outcome.exitCode).toBe(0);
    expect(init).toBeGreaterThan(0);
    expect(initAlive).toBe(false);
    expect(uidLeft).toEqual([]);
  });

  it('does not come while the init lives on in a thread of its own, its first thread a zombie (as a run can make it by ptrace)', async () => {
    const { outcome, init, initAlive, uidLeft } = await runBehind('leaderless', 'exit 0');
    expect(outcome.exitCode).toBe(0);
    expect(init).toBeGreaterThan(0);
    expect(initAlive).toBe(false);
    expect(uidLeft).toEqual([]);
  });

  it('comes, where the sandbox reports no init, once every process of the run’s uid is stopped', async () => {
    const { outcome, lines, uidLeft } = await runBehind(
      'silent',
      'sleep 10 </dev/null >/dev/null 2>&1 & echo $!',
    );
    expect(outcome.exitCode).toBe(0);
    const leftover = Number(lines.find((line) => line.stream === 'stdout')?.text);
    expect(leftover).toBeGreaterThan(0);
    expect(isAlive(leftover)).toBe(false);
    expect(outcome.leftovers).toBe(1);
    expect(uidLeft).toEqual([]);
  });
});
