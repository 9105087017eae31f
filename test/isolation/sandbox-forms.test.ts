import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_MARKER } from '../../src/executor/env.js';
import { runClaude, type RunLine } from '../../src/executor/run.js';
import { setUpIsolation, type IsolationSettings } from '../../src/isolation/index.js';
import { pidsOfUid } from '../support/processes.js';

const fixture = (name: string): string =>
  new URL(`../fixtures/bin/${name}`, import.meta.url).pathname;

const made: string[] = [];
const temporary = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A PATH whose bwrap refuses a user namespace (or, `always`, every namespace). */
function pathRefusingUserNamespaces(always = false): string {
  const bwrap = execFileSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).trim();
  const dir = temporary('claudebox-bwrap-');
  // setpriv, as the run's uid, starts it.
  chmodSync(dir, 0o755);
  const wrapper = join(dir, 'bwrap');
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      ...(always ? ['echo "bwrap: No permissions to create new namespace" >&2; exit 1'] : []),
      'for arg; do',
      '  [ "$arg" = --unshare-user ] && { echo "bwrap: No permissions to create new namespace" >&2; exit 1; }',
      'done',
      `exec ${bwrap} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  return `${dir}:${process.env.PATH ?? ''}`;
}

/** Isolation as a root worker sets it up, on uids no other test uses. */
function settings(uidBase: number, path = process.env.PATH): IsolationSettings {
  return {
    mode: 'required',
    namespaces: 'auto',
    runRoot: temporary('claudebox-runroot-'),
    uidBase,
    uidCount: 4,
    concurrency: 1,
    maxProcesses: 2048,
    workDir: temporary('claudebox-work-'),
    claudeBin: fixture('claude-success.mjs'),
    workerId: randomUUID(),
    path,
    sharedConfigDir: '/nonexistent/.claude',
  };
}

/** What a run says of itself: its uid, no_new_privs, capabilities, and its sandbox's init's uid. */
const SELF_REPORT = [
  'id -u',
  'grep -E "^(NoNewPrivs|CapEff|CapBnd):" /proc/self/status',
  'stat -c "init uid %u" /proc/1',
  'if unshare -U true 2>/dev/null; then echo "made a user namespace"; else echo "made no user namespace"; fi',
].join('; ');

async function runIn(isolationSettings: IsolationSettings) {
  const isolation = await setUpIsolation(isolationSettings);
  const runId = randomUUID();
  const cwd = join(isolationSettings.workDir, 'job');
  execFileSync('mkdir', [cwd]);
  const box = await isolation.open({ runId, cwd });
  const uid = box.isolation.uid;
  const lines: RunLine[] = [];
  try {
    await box.seal();
    const outcome = await runClaude({
      bin: '/bin/sh',
      args: ['-c', SELF_REPORT],
      cwd,
      env: { PATH: '/usr/bin:/bin', ...box.env },
      prompt: '',
      marker: { name: RUN_MARKER, value: runId },
      confinement: box.confinement,
      timeoutMs: 30_000,
      killGraceMs: 500,
      maxOutputBytes: 1024 * 1024,
      maxLineBytes: 1024 * 1024,
      onLine: (line) => void lines.push(line),
    });
    const said = lines.map((line) => line.text).join('\n');
    await box.close();
    const runGone = box.runGone;
    return { isolation, uid, outcome, said, runGone, launch: box.confinement?.command('cli', []) };
  } finally {
    await box.close();
    await isolation.close();
  }
}

/** The tools a launch goes through, in order, up to the run's own command. */
function commands(launch: { file: string; args: readonly string[] } | undefined): string[] {
  const tools = ['sh', 'setpriv', 'bwrap'];
  return [launch?.file ?? '', ...(launch?.args ?? [])]
    .map((arg) => arg.split('/').at(-1) ?? '')
    .filter((name) => tools.includes(name));
}

describe('a run’s sandbox', () => {
  it('is made by bwrap as the run’s uid, in a user namespace where the run can make no other', async () => {
    const { isolation, uid, outcome, said, launch, runGone } = await runIn(settings(67_300));
    expect(runGone).toBe(true);
    expect(isolation.summary.namespaces).toEqual(['pid', 'ipc', 'mount']);
    expect(isolation.warnings).toEqual([]);
    // The run's limits are set as root, then setpriv takes the uid and becomes bwrap: the
    // worker's own spawn never runs as the uid.
    expect(commands(launch)).toEqual(['sh', 'setpriv', 'bwrap']);
    expect(launch?.args.indexOf('--unshare-user')).toBeGreaterThan(
      launch?.args.indexOf(`--reuid=${uid}`) ?? Infinity,
    );
    expect(outcome.exitCode, said).toBe(0);
    expect(said.split('\n')).toEqual([
      String(uid),
      'CapEff:\t0000000000000000',
      'CapBnd:\t0000000000000000',
      'NoNewPrivs:\t1',
      `init uid ${uid}`,
      'made no user namespace',
    ]);
    expect(pidsOfUid(uid ?? -1)).toEqual([]);
  });

  it('is made by bwrap started as root, with setpriv inside, where a uid may not make a user namespace', async () => {
    const { isolation, uid, outcome, said, launch } = await runIn(
      settings(67_310, pathRefusingUserNamespaces()),
    );
    expect(isolation.summary.namespaces).toEqual(['pid', 'ipc', 'mount']);
    expect(isolation.warnings).toEqual([
      expect.stringMatching(
        /^bwrap could not make a run's namespaces as its uid \(bwrap: No permissions to create new namespace\): each run's sandbox starts as root/,
      ),
    ]);
    expect(commands(launch)).toEqual(['sh', 'bwrap', 'setpriv']);
    expect(launch?.args.find((arg) => arg.endsWith('/bwrap'))).toMatch(/claudebox-bwrap-/);
    expect(launch?.args).not.toContain('--unshare-user');
    expect(launch?.args).toContain(`--reuid=${uid}`);
    expect(outcome.exitCode, said).toBe(0);
    // bwrap's init is root's; the run, through setpriv, is its uid, with no way back.
    expect(said.split('\n').slice(0, 5)).toEqual([
      String(uid),
      'CapEff:\t0000000000000000',
      'CapBnd:\t0000000000000000',
      'NoNewPrivs:\t1',
      'init uid 0',
    ]);
    expect(pidsOfUid(uid ?? -1)).toEqual([]);
  });

  it('is none where bwrap can make no namespaces, and the worker says why', async () => {
    const isolation = await setUpIsolation(settings(67_320, pathRefusingUserNamespaces(true)));
    try {
      expect(isolation.summary.namespaces).toEqual([]);
      expect(isolation.warnings).toEqual([
        expect.stringMatching(
          /^bwrap could not make a run's namespaces \(bwrap: No permissions to create new namespace\): runs are walled off by their uid alone/,
        ),
      ]);
    } finally {
      await isolation.close();
    }
  });
});
