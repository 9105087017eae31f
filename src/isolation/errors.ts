/**
 * Run isolation cannot be set up, a run's box cannot be made, or a run's uid cannot be cleared
 * of its processes: the message says why.
 */
export class IsolationError extends Error {
  override readonly name = 'IsolationError';
}

/**
 * A directory of the run is another run's now, going on or being stopped: two runs cannot work
 * in one directory at the same time.
 */
export class DirectoryInUseError extends IsolationError {}
