import type { CliIo, Terminal } from './io.js';

/**
 * Ctrl-C while following a job stops the following; whether the job stops too is decided here,
 * so that no run is left behind by accident and none is cancelled by accident either.
 */

export const INTERRUPT_POLICIES = ['ask', 'cancel', 'detach'] as const;
export type InterruptPolicy = (typeof INTERRUPT_POLICIES)[number];
export type InterruptDecision = 'cancel' | 'detach';

/** Ctrl-C presses from the moment a command starts watching for them. */
export class Interrupts {
  private readonly controller = new AbortController();
  private waiters: (() => void)[] = [];
  private readonly stopWatching: () => void;
  count = 0;

  constructor(io: Pick<CliIo, 'onInterrupt'>) {
    this.stopWatching = io.onInterrupt(() => {
      this.count++;
      this.controller.abort();
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Aborted at the first Ctrl-C. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Resolves at the next Ctrl-C from now on. */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ctrl-C ends the process again, as it does by default. */
  dispose(): void {
    this.stopWatching();
  }
}

/**
 * The policy in force: the one asked for, else a question when somebody is at a terminal,
 * else the command's own default (`run` cancels the job it started; `events` did not start
 * the job and leaves it alone).
 */
export function choosePolicy(
  asked: InterruptPolicy | undefined,
  interactive: boolean,
  commandDefault: InterruptDecision,
): InterruptPolicy {
  return asked ?? (interactive ? 'ask' : commandDefault);
}

export interface DecideOptions {
  readonly jobId: string;
  readonly policy: InterruptPolicy;
  /** What `ask` means when there is no terminal to ask on. */
  readonly withoutTerminal: InterruptDecision;
  readonly openTerminal: () => Terminal | null;
  /** Resolves at the next Ctrl-C. */
  readonly nextInterrupt: () => Promise<void>;
}

/** What to do with the job after a Ctrl-C. A second Ctrl-C during the question means cancel. */
export async function decideOnInterrupt(options: DecideOptions): Promise<InterruptDecision> {
  if (options.policy !== 'ask') return options.policy;
  const terminal = options.openTerminal();
  if (terminal === null) return options.withoutTerminal;
  try {
    const answer = await Promise.race([
      terminal.ask(`Cancel job ${options.jobId} too? [y/N] `),
      options.nextInterrupt().then(() => null),
    ]);
    if (answer === null) return 'cancel';
    return /^\s*y(es)?\s*$/i.test(answer) ? 'cancel' : 'detach';
  } finally {
    terminal.close();
  }
}
