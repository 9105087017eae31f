import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { decodeLine, LineSplitter, type RawLine } from './lines.js';
import { OutputCapture } from './output-capture.js';
import { markerConfinement, type Confinement } from './confinement.js';
import type { Marker } from './process-tree.js';
import { createStopper, stopRequestOf, type StopCause } from './stop-run.js';
import { StreamSummary } from './stream-summary.js';
import { errorMessage } from '../common/errors.js';

export interface RunLine {
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
  /** The line was not valid UTF-8 and `text` holds its bytes in base64. */
  readonly encoding?: 'base64';
  /** The line went past the line limit and continues in the next RunLine. */
  readonly partial: boolean;
}

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
 * Runs the CLI once: prompt on stdin, every stdout/stderr line to `onLine`, under a timeout and
 * an abort signal. Whatever way the run ends, no process of it is left when this resolves.
 */
export async function runClaude(spec: RunSpec): Promise<RunOutcome> {
  const now = spec.now ?? Date.now;
  const startedAt = now();
  const summary = new StreamSummary();
  const capture = new OutputCapture(spec.maxOutputBytes);
  let lastStderr: string | null = null;

  const confinement = spec.confinement ?? markerConfinement(spec.marker);
  const command = confinement.command(spec.bin, spec.args);
  const subprocess = execa(command.file, command.args, {
    cwd: spec.cwd,
    env: spec.env,
    extendEnv: false,
    input: spec.prompt,
    buffer: false,
    reject: false,
    // Its own process group: a Ctrl-C meant for the worker must not reach the run, which the
    // worker stops on its own terms during a graceful shutdown.
    detached: true,
    forceKillAfterDelay: false,
  });
  // Resolved once every stdio stream of the subprocess closed; execa reports the spawn error.
  const settled = subprocess.then(
    (result) => result,
    (error: unknown) => error,
  );
  const pid = subprocess.pid ?? null;
  if (pid === null) {
    const failure = await settled;
    return {
      pid,
      startedAt,
      durationMs: now() - startedAt,
      spawnError: describeSpawnError(failure, spec),
      exitCode: null,
      signal: null,
      stoppedBy: null,
      stopMessage: null,
      forced: false,
      output: { text: '', truncated: false, bytes: 0 },
      summary,
      lastStderr,
      leftovers: 0,
    };
  }
  spec.onSpawn?.(pid);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    subprocess.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });

  const stopper = createStopper({
    pid,
    confinement,
    killGraceMs: spec.killGraceMs,
    interrupt: () => void interruptCli(confinement, pid, subprocess),
    exited,
  });
  const timer = setTimeout(() => void stopper.stop('timeout', null), spec.timeoutMs);
  const onAbort = (): void => {
    const request = stopRequestOf(spec.signal?.reason);
    void stopper.stop(request.cause, request.message);
  };
  if (spec.signal?.aborted) onAbort();
  else spec.signal?.addEventListener('abort', onAbort, { once: true });

  const emit = async (stream: 'stdout' | 'stderr', raw: RawLine): Promise<void> => {
    const decoded = decodeLine(raw.bytes);
    if (stream === 'stdout') {
      if (raw.partial) summary.observePartial();
      else summary.observe(decoded.text, decoded.encoding);
    } else if (!raw.partial && decoded.encoding === undefined) {
      lastStderr = decoded.text;
    }
    await spec.onLine({ stream, partial: raw.partial, ...decoded });
  };
  const read = async (stream: Readable, kind: 'stdout' | 'stderr'): Promise<void> => {
    const splitter = new LineSplitter(spec.maxLineBytes);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (kind === 'stdout') capture.add(chunk);
      for (const line of splitter.push(chunk)) await emit(kind, line);
    }
    for (const line of splitter.end()) await emit(kind, line);
  };
  const stdoutDone = read(subprocess.stdout, 'stdout');
  const stderrDone = read(subprocess.stderr, 'stderr');

  // A CLI that closes stdout but keeps running would otherwise hang the job until its timeout.
  let stdoutClosed = false;
  const onStdoutClosed = async (): Promise<void> => {
    if (stdoutClosed) return;
    stdoutClosed = true;
    const exitedSoon = await Promise.race([
      exited.then(() => true),
      sleep(spec.killGraceMs).then(() => false),
    ]);
    if (!exitedSoon) await stopper.stop('stdout-closed', null);
  };
  stdoutDone
    .then(onStdoutClosed)
    // A stdout destroyed below (an escaped process held it open) ends this way: nothing to do.
    .catch(() => undefined);
  const closedWatch = confinement.stdoutClosed
    ? setInterval(() => {
        void confinement
          .stdoutClosed?.(pid)
          .then((closed) => (closed ? onStdoutClosed() : undefined));
      }, STDOUT_WATCH_MS)
    : undefined;

  const status = await exited;
  clearTimeout(timer);
  clearInterval(closedWatch);
  spec.signal?.removeEventListener('abort', onAbort);
  await stopper.finished();
  // The CLI is gone, and so is the run: whatever of it is left is killed at once, so nothing
  // but the CLI itself had the last word on its stdout.
  const leftovers = await confinement.sweep(undefined, 0);

  // Every writer of the pipes is gone now, so they reach their end; a process that escaped
  // the sweep (another user's, say) must not hold the job forever.
  const drained = await Promise.race([
    Promise.allSettled([stdoutDone, stderrDone]).then(() => true),
    sleep(DRAIN_MS).then(() => false),
  ]);
  if (!drained) {
    subprocess.stdout.destroy();
    subprocess.stderr.destroy();
  }
  await settled;

  return {
    pid,
    startedAt,
    durationMs: now() - startedAt,
    spawnError: null,
    exitCode: status.code,
    signal: status.signal,
    stoppedBy: stopper.cause,
    stopMessage: stopper.message,
    forced: stopper.forced,
    output: { text: capture.text(), truncated: capture.truncated, bytes: capture.bytes },
    summary,
    lastStderr,
    leftovers,
  };
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
