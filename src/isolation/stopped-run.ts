import { setTimeout as sleep } from 'node:timers/promises';
import { readProcFile, readProcStat } from '../common/proc-stat.js';
import { findProcessesOfUid, signalProcesses } from '../executor/index.js';
import { signalUid, type Sender } from './tools.js';

/** How long every process of the uid has to come to a stop once SIGSTOP is sent. */
const STOP_WAIT_MS = 5000;
/**
 * Senders of SIGSTOP tried one after another: on a busy machine one may not start within its
 * second; a run whose processes stop every sender only goes without checkpoints.
 */
const STOP_TRIES = 3;
const POLL_MS = 10;
/** Senders of SIGCONT tried one after another: a run must never stay stopped. */
const CONT_TRIES = 5;
/** States of a process that does nothing more: stopped, stopped by a tracer, a zombie, dead. */
const STILL = new Set(['T', 't', 'Z', 'X']);
/**
 * Where the kernel shows (in /proc/<pid>/wchan) a process waiting in vfork() for its child to
 * exec or end, by kernel version: uninterruptibly (state D), so it never shows stopped itself.
 */
const VFORK_WAIT = new Set(['kernel_clone', '_do_fork', 'do_fork', 'wait_for_vfork_done']);

/**
 * Whether a process in `state`, waiting at `wchan`, does nothing more while the run is stopped:
 * one waiting in vfork() goes on only once its child (a process of the run, which the stop
 * reached too) execs or ends. A shell such as dash vforks for each command it runs, so a run
 * stopped in that instant would otherwise never count as stopped.
 */
export function isStill(state: string, wchan: () => string | undefined): boolean {
  return STILL.has(state) || (state === 'D' && VFORK_WAIT.has(wchan()?.trim() ?? ''));
}

/**
 * Runs `step` while every process of `uid` is stopped, then lets them go on: for root's look at
 * directories the run owns, which the run must not change between two of root's calls (a
 * directory swapped for a link between git listing it and opening what is in it). Null, without
 * `step`, where they did not all stop: a process of the uid stopped the sender first, or one
 * is stuck in the kernel.
 */
export async function whileStopped<T>(
  uid: number,
  sender: Sender,
  step: () => Promise<T>,
): Promise<T | null> {
  try {
    if (!(await sendTries(uid, 'STOP', sender, STOP_TRIES))) return null;
    if (!(await allStill(uid))) return null;
    return await step();
  } finally {
    await resume(uid, sender);
  }
}

/**
 * SIGCONT to every process of `uid`: from senders as the uid, else from root to each process
 * /proc shows of it (a stopped process neither exits nor forks, so its pid stays its own).
 */
async function resume(uid: number, sender: Sender): Promise<void> {
  if (await sendTries(uid, 'CONT', sender, CONT_TRIES)) return;
  await signalProcesses(await findProcessesOfUid(uid), 'SIGCONT');
}

/** `signal` as the uid from one sender after another, up to `tries`: whether one sent it. */
async function sendTries(
  uid: number,
  signal: 'STOP' | 'CONT',
  sender: Sender,
  tries: number,
): Promise<boolean> {
  for (let tried = 0; tried < tries; tried++) {
    if (await signalUid(uid, signal, sender)) return true;
  }
  return false;
}

/** Whether every process of `uid` came to a stop; one mid-call stops only once it returns. */
async function allStill(uid: number): Promise<boolean> {
  const until = performance.now() + STOP_WAIT_MS;
  for (;;) {
    const moving = (await findProcessesOfUid(uid)).filter(
      ({ pid }) => !isStill(readProcStat(pid)?.state ?? 'X', () => readProcFile(pid, 'wchan')),
    );
    if (moving.length === 0) return true;
    if (performance.now() > until) return false;
    await sleep(POLL_MS);
  }
}
