import { execa } from 'execa';
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
 * Sends `signal` to every process of `uid` at once: kill(-1) from a process that is that uid
 * reaches exactly its processes, in one sweep of the kernel's task list that a fork bomb
 * cannot outrun.
 */
export async function signalUid(
  setpriv: string,
  uid: number,
  signal: 'TERM' | 'KILL',
): Promise<void> {
  await execa(setpriv, [...becomeUid(uid), '/bin/sh', '-c', `kill -${signal} -1`], {
    reject: false,
    env: { PATH: '/usr/bin:/bin' },
    extendEnv: false,
    stdin: 'ignore',
  });
}

/**
 * Removes the System V IPC objects `uid` owns or created (see ipcObjectsOf); call it once
 * nothing runs as the uid. ipcrm runs as the uid itself, so the kernel lets it remove only
 * those, whatever became of an id meanwhile. Throws when one is still there after it.
 */
export async function removeIpcOf(setpriv: string, uid: number): Promise<void> {
  const objects = ipcObjectsOf(uid);
  if (objects.length === 0) return;
  const ids = objects.flatMap(({ kind, id }) => [kind, id]);
  await execa(setpriv, [...becomeUid(uid), 'ipcrm', ...ids], {
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
export async function clearUid(setpriv: string, uid: number): Promise<void> {
  await signalUid(setpriv, uid, 'KILL');
  await removeFilesOf(uid);
  await removeIpcOf(setpriv, uid);
}
