/**
 * Run isolation cannot be set up, a run's box cannot be made, or a run's uid cannot be cleared
 * of its processes: the message says why.
 */
export class IsolationError extends Error {
  override readonly name = 'IsolationError';
}
