import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import {
  LAUNCHER_INPUT_FD,
  LAUNCHER_REPORT_FD,
  markerConfinement,
  type Confinement,
} from './confinement.js';
import type { Marker } from './process-tree.js';
import type { RunPauses } from './run-pauses.js';
import { RunOutput, type RunLine } from './run-output.js';
import { createStopper, stopRequestOf, type RunStopper, type StopCause } from './stop-run.js';
import type { StreamSummary } from './stream-summary.js';
import { errorMessage } from '../common/errors.js';
import { doneWithin } from '../common/time.js';

export type { RunLine } from './run-output.js';

export interface RunSpec {
  readonly bin: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Written to the CLI's stdin, which is then closed. */
  readonly prompt: string;
  /** The environment entry every process of this run carries (see process-tree.ts). */
  readonly marker: Marker;
  /** How the run's processes are started and found; by default, by `marker`. */
  readonly confinement?: Confinement;
  readonly timeoutMs: number;
  /** Stop a run that prints nothing on stdout or stderr for this long; no limit when unset. */
  readonly idleTimeoutMs?: number;
  /** When the worker holds the run stopped: not counted as idle. */
  readonly pauses?: RunPauses;
  /** How long the CLI may go on after its result line before it is stopped (default 5 s). */
  readonly resultGraceMs?: number;
  /** How long the CLI gets to stop after SIGINT before everything of the run is SIGKILLed. */
  readonly killGraceMs: number;
  readonly maxOutputBytes: number;
  readonly maxLineBytes: number;
  readonly signal?: AbortSignal;
  readonly onSpawn?: (pid: number) => void;
  /** Called for every line; reading pauses while a returned promise is pending. */
  readonly onLine: (line: RunLine) => void | Promise<void>;
  readonly now?: () => number;
}

export interface RunOutcome {
  readonly pid: number | null;
  readonly startedAt: number;
  readonly durationMs: number;
  /** Set when the CLI could not be started at all. */
  readonly spawnError: string | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stoppedBy: StopCause | null;
  /** The message of a StopRequest, when one stopped the run. */
  readonly stopMessage: string | null;
  /** The CLI did not stop on SIGINT within the grace time and was killed. */
  readonly forced: boolean;
  readonly output: { readonly text: string; readonly truncated: boolean; readonly bytes: number };
  readonly summary: StreamSummary;
  readonly lastStderr: string | null;
  /** Processes of the run still alive after the CLI exited, which the executor then stopped. */
  readonly leftovers: number;
}

/** How often a sandboxed CLI's stdout is looked at, where its pipe cannot tell (see Confinement). */
const STDOUT_WATCH_MS = 500;
/** Time the pipes get to drain after every process of the run is gone. */
const DRAIN_MS = 2000;
/**
 * How long the end of the output may wait on whoever takes its lines (Redis writes that are
 * behind) once the run is gone: what is left in the pipes is the run's, its result line maybe.
 */
const DRAIN_BEHIND_MS = 60_000;
const DEFAULT_RESULT_GRACE_MS = 5000;

type Subprocess = ReturnType<typeof startCli>;
type ExitStatus = { readonly code: number | null; readonly signal: NodeJS.Signals | null };

/**
 * Runs the CLI once: prompt on stdin, every stdout/stderr line to `onLine`, under a timeout and
 * an abort signal. Whatever way the run ends, no process of it is left when this resolves.
 */
export async function runClaude(spec: RunSpec): Promise<RunOutcome> {
  const now = spec.now ?? Date.now;
  const startedAt = now();
  const output = new RunOutput(spec, spec.onLine);
  const confinement = spec.confinement ?? markerConfinement(spec.marker);
  const outcome = (pid: number | null, end: RunEnd): RunOutcome => ({
    pid,
    startedAt,
    // The wall clock may step back during a run: a duration is never negative.
    durationMs: Math.max(0, now() - startedAt),
    output: output.stdout,
    summary: output.summary,
    lastStderr: output.lastStderr,
    ...end,
  });
  const launched = launch(spec, confinement);
  if ('failure' in launched) {
    const spawnError = describeSpawnError(await launched.failure, spec);
    return outcome(null, { ...NEVER_RAN, spawnError });
  }
  const { subprocess, pid, settled } = launched;
  confinement.spawned?.(pid);
  spec.onSpawn?.(pid);

  const exited = new Promise<ExitStatus>((resolve) => {
    subprocess.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const stopper = createStopper({
    pid,
    confinement,
    killGraceMs: spec.killGraceMs,
    interrupt: () => interruptCli(confinement, pid, subprocess),
    exited,
    answered: () => output.summary.resultLine !== null,
  });
  const reading = [
    // Pipes, as startCli asks for them.
    output.read(subprocess.stdout as Readable, 'stdout'),
    output.read(subprocess.stderr as Readable, 'stderr'),
  ];
  const unwatch = [
    watchTimeoutAndAbort(spec, stopper),
    watchProgress(spec, output, stopper),
    watchStdoutClosed({ pid, confinement, exited, stopper, graceMs: spec.killGraceMs }, reading[0]),
  ];

  const status = await exited;
  for (const stopWatching of unwatch) stopWatching();
  await stopper.close();
  // The CLI is gone, and so is the run: whatever of it is left is killed at once (in a sandbox
  // of its own, the kernel does that, and the sweep waits for it), so nothing but the CLI
  // itself had the last word on its stdout.
  const leftovers = await confinement.sweep(undefined, 0, status.signal === null);
  // A run whose job is no longer ours has nothing of it written any more (see Attempt.end).
  await drain(subprocess, reading, output, stopper.cause === 'abandoned');
  await settled;
  return outcome(pid, {
    spawnError: null,
    exitCode: status.code,
    signal: status.signal,
    stoppedBy: stopper.cause,
    stopMessage: stopper.message,
    forced: stopper.forced,
    leftovers,
  });
}

/** The part of an outcome that says how the run ended. */
type RunEnd = Pick<
  RunOutcome,
  'spawnError' | 'exitCode' | 'signal' | 'stoppedBy' | 'stopMessage' | 'forced' | 'leftovers'
>;

const NEVER_RAN: Omit<RunEnd, 'spawnError'> = {
  exitCode: null,
  signal: null,
  stoppedBy: null,
  stopMessage: null,
  forced: false,
  leftovers: 0,
};

/**
 * Starts the CLI: the subprocess, its pid, and a promise settled once every stdio stream of it
 * closed; or what kept it from starting.
 */
function launch(
  spec: RunSpec,
  confinement: Confinement,
):
  | { readonly subprocess: Subprocess; readonly pid: number; readonly settled: Promise<unknown> }
  | { readonly failure: Promise<unknown> } {
  let subprocess: Subprocess;
  try {
    subprocess = startCli(spec, confinement);
  } catch (error) {
    // What spawn refuses before it forks (an argument list too long, a NUL in one) it throws.
    return { failure: Promise.resolve(error) };
  }
  const settled = new Promise<unknown>((resolve) => {
    subprocess.on('error', resolve);
    subprocess.once('close', () => resolve(undefined));
  });
  const { pid } = subprocess;
  return pid === undefined ? { failure: settled } : { subprocess, pid, settled };
}

/**
 * Starts the CLI with Node's own spawn: execa's machinery for a process cost the worker about
 * 4 ms of CPU more a run, and a run needs none of it (its output is read line by line here).
 */
function startCli(spec: RunSpec, confinement: Confinement) {
  const command = confinement.command(spec.bin, spec.args);
  const subprocess = spawn(command.file, command.args, {
    cwd: spec.cwd,
    env: spec.env,
    // Its own process group: a Ctrl-C meant for the worker must not reach the run, which the
    // worker stops on its own terms during a graceful shutdown.
    detached: true,
    // stdin, stdout, stderr, the launcher's report at LAUNCHER_REPORT_FD (3) when it has one,
    // and its input at LAUNCHER_INPUT_FD (4) when it takes one.
    stdio: [
      'pipe',
      'pipe',
      'pipe',
      confinement.launcherReport ? 'pipe' : 'ignore',
      ...(command.input === undefined ? [] : ['pipe' as const]),
    ],
  });
  const input = subprocess.stdio[LAUNCHER_INPUT_FD] as Writable | null | undefined;
  // A launcher that failed before it read its input closes the pipe under the write: no error.
  input?.on('error', () => undefined);
  input?.end(command.input);
  // Null where spawn failed early (out of file descriptors): its 'error' then says why.
  const stdin = subprocess.stdin;
  // A CLI that exits without reading its prompt closes the pipe under the write: no error.
  stdin?.on('error', () => undefined);
  stdin?.end(spec.prompt);
  // Opened only where the confinement reads it (stdio above).
  const report = subprocess.stdio[LAUNCHER_REPORT_FD];
  if (report) confinement.launcherReport?.(report as Readable);
  return subprocess;
}

/** Stops the run at its timeout or when the caller aborts; returns how to stop watching. */
function watchTimeoutAndAbort(spec: RunSpec, stopper: RunStopper): () => void {
  const timer = setTimeout(() => void stopper.stop('timeout', null), spec.timeoutMs);
  const onAbort = (): void => {
    const request = stopRequestOf(spec.signal?.reason);
    void stopper.stop(request.cause, request.message);
  };
  if (spec.signal?.aborted) onAbort();
  else spec.signal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    clearTimeout(timer);
    spec.signal?.removeEventListener('abort', onAbort);
  };
}

/**
 * A run that goes silent for the idle timeout is stopped; so is a CLI that printed its result
 * line and then does not exit (it happens with stream-json runs), after a short grace, instead
 * of holding the job until its timeout. Returns how to stop watching.
 */
function watchProgress(spec: RunSpec, output: RunOutput, stopper: RunStopper): () => void {
  let watching = true;
  const idleMs = spec.idleTimeoutMs;
  const stopIdle = (): void => {
    void stopper.stop('idle', `it printed nothing for ${(idleMs ?? 0) / 1000}s`);
  };
  let idle = idleMs === undefined ? undefined : setTimeout(stopIdle, idleMs);
  let afterResult: NodeJS.Timeout | undefined;
  let waiting = false;
  let paused = spec.pauses?.paused ?? false;
  if (paused) clearTimeout(idle);
  const rearm = (ms: number): void => {
    clearTimeout(idle);
    idle = paused ? idle : setTimeout(stopIdle, ms);
  };
  // The idle time starts again once the worker lets the run go on.
  const stopListening = spec.pauses?.listen((pausedNow) => {
    paused = pausedNow;
    if (!watching || idle === undefined || idleMs === undefined) return;
    if (pausedNow) clearTimeout(idle);
    else rearm(idleMs);
  });
  output.watch({
    activity: () => {
      if (!watching || idle === undefined || idleMs === undefined || paused) return;
      if (waiting) rearm(idleMs);
      else idle.refresh();
      waiting = false;
    },
    // The CLI waits out an API's retry-after in silence: that wait is not idleness.
    retryWait: (delayMs) => {
      if (!watching || idle === undefined || idleMs === undefined) return;
      rearm(delayMs + idleMs);
      waiting = true;
    },
    result: () => {
      // A result line read while the pipes drain comes after the run ended: nothing to stop.
      if (!watching) return;
      clearTimeout(idle);
      idle = undefined;
      afterResult = setTimeout(() => {
        void stopper.stop('after-result', null);
      }, spec.resultGraceMs ?? DEFAULT_RESULT_GRACE_MS);
    },
  });
  return () => {
    watching = false;
    stopListening?.();
    clearTimeout(idle);
    clearTimeout(afterResult);
  };
}

/**
 * A CLI that closes stdout but keeps running would otherwise hang the job until its timeout: it
 * gets the grace time to exit, then is stopped. Returns how to stop watching.
 */
function watchStdoutClosed(
  run: {
    readonly pid: number;
    readonly confinement: Confinement;
    readonly exited: Promise<unknown>;
    readonly stopper: RunStopper;
    readonly graceMs: number;
  },
  stdoutRead: Promise<void> | undefined,
): () => void {
  let closed = false;
  const onClosed = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const exitedSoon = await doneWithin(run.exited, run.graceMs);
    if (!exitedSoon) await run.stopper.stop('stdout-closed', null);
  };
  stdoutRead
    ?.then(onClosed)
    // A stdout destroyed while draining (an escaped process held it open) ends this way.
    .catch(() => undefined);
  const { confinement } = run;
  if (!confinement.stdoutClosed) return () => undefined;
  const timer = setInterval(() => {
    void confinement
      .stdoutClosed?.(run.pid)
      .then((isClosed) => (isClosed ? onClosed() : undefined));
  }, STDOUT_WATCH_MS);
  return () => clearInterval(timer);
}

/**
 * Every writer of the pipes is gone now, so they reach their end; a process that escaped the
 * sweep (another user's, say) must not hold the job forever.
 */
async function drain(
  subprocess: Subprocess,
  reading: readonly Promise<void>[],
  output: RunOutput,
  abandoned: boolean,
): Promise<void> {
  const all = Promise.allSettled(reading);
  const giveUpAt = performance.now() + (abandoned ? 0 : DRAIN_BEHIND_MS);
  while (!(await doneWithin(all, DRAIN_MS))) {
    // Reading waits on Redis, not on a pipe held open by an escaped process.
    if (output.waitingOnConsumer && performance.now() < giveUpAt) continue;
    // The launcher's report too, where it has one: 'close' waits for every stream it opened.
    for (const stream of subprocess.stdio.slice(1)) stream?.destroy();
    return;
  }
}

/** SIGINT to the CLI itself, wherever the confinement put it (a sandbox may stand between). */
async function interruptCli(
  confinement: Confinement,
  launched: number,
  subprocess: { kill(signal: NodeJS.Signals): boolean },
): Promise<void> {
  const cli = await confinement.cli(launched);
  if (cli === launched || cli === null) {
    subprocess.kill('SIGINT');
    return;
  }
  try {
    process.kill(cli, 'SIGINT');
  } catch {
    // Gone already: the stop then finds nothing left to wait for.
  }
}

function describeSpawnError(failure: unknown, spec: RunSpec): string {
  const code =
    typeof failure === 'object' && failure !== null && 'code' in failure ? failure.code : undefined;
  // spawn reports a missing working directory as ENOENT too; say which one is missing.
  if (code === 'ENOENT' && !existsSync(spec.cwd)) {
    return `could not start claude: working directory ${spec.cwd} does not exist`;
  }
  if (code === 'ENOENT') return `could not start claude: ${spec.bin} does not exist`;
  if (code === 'EACCES') return `could not start claude: ${spec.bin} is not executable`;
  const message = errorMessage(failure).split('\n')[0];
  return `could not start claude at ${spec.bin}: ${message}`;
}
