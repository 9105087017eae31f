import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { findProcessesOfUid, signalProcesses, type ProcessRef } from '../executor/index.js';
import { IsolationError } from './errors.js';
import { removeLeft, takeBackHanded } from './handed-dirs.js';
import { ipcObjectsOf } from './host-ipc.js';
import { removeFilesOf } from './shared-temp.js';
import { removeHomesOf } from './homes.js';

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
/** The shell a signal as a uid is sent from, with its `kill` builtin, unless a Sender names one. */
export const SENDER_SHELL = '/bin/sh';

/** How a signal is sent as a uid: setpriv becomes the uid, then runs the shell. */
export interface Sender {
  readonly setpriv: string;
  readonly shell: string;
}

/**
 * Sends `signal` to every process of `uid` at once: kill(-1) from a process that is that uid,
 * alone in a session of its own, reaches exactly its processes, in one sweep of the kernel's
 * task list that a fork bomb cannot outrun. False when the sender did not get to send it: a
 * process of the uid stopped or killed it first (it is that uid's too), or it could not start.
 */
export function signalUid(
  uid: number,
  signal: 'TERM' | 'KILL' | 'STOP' | 'CONT',
  sender: Sender,
): Promise<boolean> {
  return new Promise((resolve) => {
    // The sender becomes the uid only after the worker's spawn returned (setpriv runs as root
    // first): a process of the uid can stop it, never the worker, whose spawn waits for the
    // exec. Node's own spawn with no pipes: execa's machinery cost the worker more than the
    // process did, at the end of every run isolated by its uid alone.
    const command = ['-c', `kill -${signal} -1`];
    const child = spawn(sender.setpriv, [...becomeUid(uid), sender.shell, ...command], {
      // A session of its own: the kernel lets SIGCONT through to every process of the sender's
      // session, whatever its uid, so a sender left in the worker's resumed whatever had been
      // stopped there (a job suspended in the worker's terminal, a stopped process of root's).
      detached: true,
      env: { PATH: '/usr/bin:/bin' },
      stdio: 'ignore',
      timeout: SENDER_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

/**
 * SIGKILL to every process of `uid` (see signalUid), from one sender after another until one
 * sends it: a process of the uid can stop or kill a sender before it sends, never after, as
 * the kill reaches that process too; root kills what it finds of the uid in between. Throws,
 * naming the uid, when none of KILL_TRIES got to.
 */
export async function killUid(uid: number, sender: Sender): Promise<void> {
  for (let tries = 0; tries < KILL_TRIES; tries++) {
    if (await signalUid(uid, 'KILL', sender)) return;
    // Something of the uid stopped the sender: root kills what /proc shows of the uid before the
    // next one, so a process that lives to stop senders does not outlast them all.
    await signalProcesses(await findProcessesOfUid(uid), 'SIGKILL');
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
export async function removeIpcOf(uid: number, setpriv: string): Promise<void> {
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
 * SIGTERM to every process of `uid`, then, past `graceMs`, SIGKILL until none is left: how many
 * it found at first, and whether the uid is clear of them now (false: a process of the uid
 * outlasted every kill, or kept stopping the kill's senders).
 */
export async function stopUid(
  uid: number,
  sender: Sender,
  graceMs: number,
  find: () => Promise<ProcessRef[]>,
): Promise<{ readonly found: number; readonly cleared: boolean }> {
  let found = await find();
  const count = found.length;
  if (graceMs > 0 && count > 0) {
    await signalUid(uid, 'TERM', sender);
    const deadline = Date.now() + graceMs;
    while (found.length > 0 && Date.now() < deadline) {
      await sleep(50);
      found = await find();
    }
  }
  // A process that forks and exits in a loop is gone from /proc by the time its status is
  // read, and so may be its child: a look that found nothing proves nothing. kill(-1) as the
  // uid reaches every process it has at once (a fork cannot outrun it), so it goes out
  // whatever /proc showed, and again while /proc shows one.
  try {
    for (let round = 0; round < 50; round++) {
      await killUid(uid, sender);
      // Once a kill(-1) as the uid got through, no process of it can run again, nor can one
      // start (only root starts them); but one forked after the look before it may be in an
      // uninterruptible wait (on a hung file system), which its SIGKILL ends only with the wait.
      // A sandbox started as root has processes of root's: the worker, their parent, stops them.
      if (found.length > 0) await signalProcesses(found, 'SIGKILL');
      found = await find();
      if (found.length === 0) return { found: count, cleared: true };
      await sleep(20);
    }
  } catch (error) {
    if (!(error instanceof IsolationError)) throw error;
  }
  return { found: count, cleared: false };
}

/**
 * Makes the `uid` of a dead worker's run, or of a run that could not be cleared as it ended,
 * free of that run: kills whatever still runs as it (kill(-1) as the uid, whatever a look in
 * /proc would find: it misses a process that forks and exits in a loop), makes sure nothing of
 * it is left, and removes what the run left in the shared temporary directories and System V
 * IPC, so a uid that is not leased has nothing there (see removeFilesOf). Throws when a process
 * of the uid is still there. Call it under the lease's claim, or holding the lease: nothing can
 * start as the uid meanwhile, as only root starts processes as another uid.
 */
export async function clearUid(
  uid: number,
  {
    sender,
    leaseDir,
    lease,
    workDir,
    homes,
  }: {
    readonly sender: Sender;
    /** The lease directory, and the id of the lease whose run is cleared away. */
    readonly leaseDir: string;
    readonly lease: string;
    readonly workDir?: string | undefined;
    /** Where runs' homes are (RUN_ROOT/homes): the uid's go, as none of its runs is left. */
    readonly homes?: string | undefined;
  },
): Promise<void> {
  const { cleared } = await stopUid(uid, sender, 0, () => findProcessesOfUid(uid));
  if (!cleared) {
    throw new IsolationError(
      `a process of uid ${uid} outlived every kill sent as that uid, or kept stopping their senders`,
    );
  }
  // What its run was handed and its box never took back: the uid's next run is another job's.
  takeBackHanded(leaseDir, uid, lease);
  await removeLeft(leaseDir, uid, lease);
  // A dead worker's run left its home: the uid's next run would remove it, however late.
  if (homes !== undefined) await removeHomesOf(homes, uid).catch(() => undefined);
  // Its run's working directory may still be the uid's: a job's next attempt goes on in it.
  await removeFilesOf(uid, { spare: workDir });
  await removeIpcOf(uid, sender.setpriv);
}
