import { describe, expect, it } from 'vitest';
import type { Confinement } from '../../../src/executor/confinement.js';
import { createStopper } from '../../../src/executor/stop-run.js';

/** A confinement with nothing in it: these tests are about when the stop says it is over. */
const empty: Confinement = {
  command: (file, args) => ({ file, args: [...args] }),
  find: () => Promise.resolve([]),
  cli: () => Promise.resolve(null),
  sweep: () => Promise.resolve(0),
};

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe('stopping a run', () => {
  it('is not over while its SIGINT is still on the way, even when the CLI exited first', async () => {
    // The CLI is found through /proc by the run's uid: a slow scan must end before the run does,
    // or it could find and interrupt whichever run holds that uid next.
    const sent = deferred();
    let interrupted = false;
    const stopper = createStopper({
      pid: 4242,
      confinement: empty,
      killGraceMs: 500,
      interrupt: () => sent.promise.then(() => void (interrupted = true)),
      exited: Promise.resolve(),
    });
    void stopper.stop('stdout-closed', null);
    let over = false;
    const finished = stopper.close().then(() => void (over = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(over).toBe(false);
    sent.resolve();
    await finished;
    expect(interrupted).toBe(true);
    expect(stopper.forced).toBe(false);
  });

  it('sends nothing for a stop asked for after the run ended', async () => {
    // A result line read while the pipes drain arms the after-result stop late; by the time it
    // fires, the run's uid may be another run's.
    let interrupts = 0;
    let lookups = 0;
    const stopper = createStopper({
      pid: 4242,
      confinement: {
        ...empty,
        find: () => {
          lookups++;
          return Promise.resolve([]);
        },
      },
      killGraceMs: 0,
      interrupt: () => {
        interrupts++;
        return Promise.resolve();
      },
      exited: Promise.resolve(),
    });
    await stopper.close();
    await stopper.stop('after-result', null);
    await stopper.stop('timeout', null);
    expect({ interrupts, lookups, cause: stopper.cause }).toEqual({
      interrupts: 0,
      lookups: 0,
      cause: null,
    });
  });

  it('still ends when sending the SIGINT failed', async () => {
    const stopper = createStopper({
      pid: 4242,
      confinement: empty,
      killGraceMs: 500,
      interrupt: () => Promise.reject(new Error('no such process')),
      exited: Promise.resolve(),
    });
    await stopper.stop('cancelled', 'by the test');
    expect(stopper.cause).toBe('cancelled');
    expect(stopper.message).toBe('by the test');
  });
});
