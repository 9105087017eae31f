import { describe, expect, it } from 'vitest';
import {
  choosePolicy,
  decideOnInterrupt,
  Interrupts,
  type DecideOptions,
} from '../../src/cli/interrupt.js';
import type { Terminal } from '../../src/cli/io.js';
import { fakeIo } from './support.js';

/** A terminal whose user answers `answer` (null: presses Ctrl-C; undefined: never answers). */
function fakeTerminal(answer: string | null | undefined) {
  const asked: string[] = [];
  let closed = false;
  const terminal: Terminal = {
    ask: (question) => {
      asked.push(question);
      return answer === undefined ? new Promise(() => undefined) : Promise.resolve(answer);
    },
    close: () => {
      closed = true;
    },
  };
  return { terminal, asked, closed: () => closed };
}

const never = (): Promise<void> => new Promise(() => undefined);

function options(overrides: Partial<DecideOptions>): DecideOptions {
  return {
    jobId: '42',
    policy: 'ask',
    withoutTerminal: 'cancel',
    openTerminal: () => null,
    nextInterrupt: never,
    ...overrides,
  };
}

describe('what Ctrl-C does to the job', () => {
  it('asks at a terminal unless told otherwise, else does what the command does by default', () => {
    expect(choosePolicy(undefined, true, 'cancel')).toBe('ask');
    expect(choosePolicy(undefined, false, 'cancel')).toBe('cancel');
    expect(choosePolicy(undefined, false, 'detach')).toBe('detach');
    expect(choosePolicy('detach', true, 'cancel')).toBe('detach');
    expect(choosePolicy('ask', false, 'detach')).toBe('ask');
  });

  it('cancels or detaches as told, without asking', async () => {
    const { terminal, asked } = fakeTerminal('y');
    expect(
      await decideOnInterrupt(options({ policy: 'cancel', openTerminal: () => terminal })),
    ).toBe('cancel');
    expect(
      await decideOnInterrupt(options({ policy: 'detach', openTerminal: () => terminal })),
    ).toBe('detach');
    expect(asked).toEqual([]);
  });

  it('asks whether to cancel the job too, and cancels only on yes', async () => {
    for (const [answer, decision] of [
      ['y', 'cancel'],
      ['YES ', 'cancel'],
      ['', 'detach'],
      ['n', 'detach'],
      ['maybe', 'detach'],
    ] as const) {
      const { terminal, asked, closed } = fakeTerminal(answer);
      expect(await decideOnInterrupt(options({ openTerminal: () => terminal }))).toBe(decision);
      expect(asked).toEqual(['Cancel job 42 too? [y/N] ']);
      expect(closed()).toBe(true);
    }
  });

  it('takes Ctrl-C at the question, or a second interrupt while it waits, as cancel', async () => {
    const atQuestion = fakeTerminal(null);
    expect(await decideOnInterrupt(options({ openTerminal: () => atQuestion.terminal }))).toBe(
      'cancel',
    );
    const waiting = fakeTerminal(undefined);
    const decided = decideOnInterrupt(
      options({ openTerminal: () => waiting.terminal, nextInterrupt: () => Promise.resolve() }),
    );
    expect(await decided).toBe('cancel');
    expect(waiting.closed()).toBe(true);
  });

  it('falls back to the command default when there is no terminal to ask at', async () => {
    expect(await decideOnInterrupt(options({ withoutTerminal: 'detach' }))).toBe('detach');
    expect(await decideOnInterrupt(options({ withoutTerminal: 'cancel' }))).toBe('cancel');
  });

  it('counts interrupts, aborts at the first, wakes waiters at the next, and lets go', async () => {
    const io = fakeIo({});
    const interrupts = new Interrupts(io);
    expect(interrupts.signal.aborted).toBe(false);
    io.interrupt();
    expect(interrupts.signal.aborted).toBe(true);
    const next = interrupts.next();
    io.interrupt();
    await next;
    expect(interrupts.count).toBe(2);
    interrupts.dispose();
    expect(io.handlers()).toBe(0);
  });
});
