import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { IsolationError } from './errors.js';
import { ipcObjectsOf } from './host-ipc.js';
import { removeFilesOf } from './shared-temp.js';

/**
 * setpriv's arguments that make a process `uid`: no supplementary groups, no capabilities
 * now or ever (an empty bounding set and no_new_privs, so a setuid binary grants nothing),
 * and SIGKILL when its parent dies.
 */
export function becomeUid(uid: number): string[] {
  return [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    '--no-new-privs',
    '--bounding-set=-all',
    '--inh-caps=-all',
    '--pdeathsig=SIGKILL',
    '--',
  ];
}

/**
 * How long one sender of a signal as a uid may take: a process of that uid can stop the sender
 * (SIGSTOP) before it sends, and a stopped sender would hold the run's end forever.
 */
const SENDER_TIMEOUT_MS = 1000;
/** Senders killUid starts, one after another, before it gives up on the uid. */
const KILL_TRIES = 20;
/** What a signal as a uid is sent from: a shell's `kill` builtin. */
export const SENDER_SHELL = '/bin/sh';

/**
 * Sends `signal` to every process of `uid` at once: kill(-1) from a process that is that uid
 * reaches exactly its processes, in one sweep of the kernel's task list that a fork bomb
 * cannot outrun. False when the sender did not get to send it: a process of the uid stopped
 * or killed it first (it is that uid's too), or it could not start.
 */
export function signalUid(
  uid: number,
  signal: 'TERM' | 'KILL',
  shell = SENDER_SHELL,
): Promise<boolean> {
  return new Promise((resolve) => {
    // Node's own spawn, not setpriv through execa: a sender starts at the end of every run
    // isolated by its uid alone, and this way costs the worker a third as much CPU. Node drops
    // the supplementary groups and, switching from root, every capability; the shell runs
    // nothing but its builtin.
    const sender = spawn(shell, ['-c', `kill -${signal} -1`], {
      uid,
      gid: uid,
      env: { PATH: '/usr/bin:/bin' },
      stdio: 'ignore',
      timeout: SENDER_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    sender.once('error', () => resolve(false));
    sender.once('exit', (code) => resolve(code === 0));
  });
}

/**
 * SIGKILL to every process of `uid` (see signalUid), from one sender after another until one
 * sends it: a process of the uid can stop or kill a sender before it sends, never after, as
 * the kill reaches that process too. Throws, naming the uid, when none of KILL_TRIES got to.
 */
export async function killUid(uid: number, shell = SENDER_SHELL): Promise<void> {
  for (let tries = 0; tries < KILL_TRIES; tries++) {
    if (await signalUid(uid, 'KILL', shell)) return;
  }
  throw new IsolationError(
    `no kill sent as uid ${uid} got through: ${KILL_TRIES} senders were stopped or killed by processes of that uid first`,
  );
}

/**
 * Removes the System V IPC objects `uid` owns or created (see ipcObjectsOf); call it once
 * nothing runs as the uid. ipcrm runs as the uid itself, so the kernel lets it remove only
 * those, whatever became of an id meanwhile. Throws when one is still there after it.
 */
export async function removeIpcOf(uid: number): Promise<void> {
  const objects = ipcObjectsOf(uid);
  if (objects.length === 0) return;
  const ids = objects.flatMap(({ kind, id }) => [kind, id]);
  await execa('ipcrm', ids, {
    uid,
    gid: uid,
    reject: false,
    env: { PATH: '/usr/bin:/bin' },
    extendEnv: false,
    stdin: 'ignore',
  });
  const left = ipcObjectsOf(uid);
  if (left.length > 0) {
    const named = left.map(({ kind, id }) => `${kind} ${id}`).join(', ');
    throw new Error(`ipcrm left System V IPC objects of uid ${uid}: ${named}`);
  }
}

/**
 * Makes a dead worker's `uid` free of its run: kills whatever still runs as it (kill(-1) as the
 * uid, whatever a look in /proc would find: it misses a process that forks and exits in a loop)
 * and removes what the run left in the shared temporary directories and System V IPC, so a
 * uid that is not leased has nothing there (see removeFilesOf). Call it under the lease's
 * claim: nothing can start as the uid meanwhile, as only root starts processes as another uid.
 */
export async function clearUid(
  uid: number,
  {
    shell = SENDER_SHELL,
    workDir,
  }: { shell?: string | undefined; workDir?: string | undefined } = {},
): Promise<void> {
  await killUid(uid, shell);
  // Its run's working directory may still be the uid's: a job's next attempt goes on in it.
  await removeFilesOf(uid, { spare: workDir });
  await removeIpcOf(uid);
}
