/** Run isolation cannot be set up, or a run's box cannot be made: the message says why. */
export class IsolationError extends Error {
  override readonly name = 'IsolationError';
}
