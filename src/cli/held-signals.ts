/** SIGTERM and SIGINT as they came while held, in order. */
export interface HeldSignals {
  readonly signals: readonly NodeJS.Signals[];
  /** Stops holding: from now on the signals go to whoever listens (or end the process). */
  release(): void;
}

/**
 * Holds SIGTERM and SIGINT from now on: a worker must not die of one while its code loads and
 * it starts (it shuts down as asked once started, taking no job). Light on purpose: it is taken
 * before the worker's code is loaded.
 */
export function holdSignals(): HeldSignals {
  const signals: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals): void => void signals.push(signal);
  process.on('SIGTERM', hold);
  process.on('SIGINT', hold);
  return {
    signals,
    release: () => {
      process.off('SIGTERM', hold);
      process.off('SIGINT', hold);
    },
  };
}
