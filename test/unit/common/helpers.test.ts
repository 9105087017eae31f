import { describe, expect, it } from 'vitest';
import { asError, errorMessage } from '../../../src/common/errors.js';
import { isInside } from '../../../src/common/paths.js';
import { doneWithin, withTimeout } from '../../../src/common/time.js';

describe('errorMessage and asError', () => {
  it('read an Error by its message and anything else thrown as text', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('plain string')).toBe('plain string');
    expect(errorMessage(42)).toBe('42');
    const error = new Error('same');
    expect(asError(error)).toBe(error);
    expect(asError({ toString: () => 'odd' }).message).toBe('odd');
  });
});

describe('isInside', () => {
  it('holds for the directory and what is below it, and not for a sibling or its parent', () => {
    expect(isInside('/work', '/work')).toBe(true);
    expect(isInside('/work/a/b', '/work')).toBe(true);
    expect(isInside('/work/..hidden', '/work')).toBe(true);
    expect(isInside('/workshop', '/work')).toBe(false);
    expect(isInside('/', '/work')).toBe(false);
    expect(isInside('/other/work', '/work')).toBe(false);
  });
});

describe('withTimeout and doneWithin', () => {
  const never = new Promise<never>(() => undefined);

  it('give the value in time, and say so when nothing answered', async () => {
    await expect(withTimeout(Promise.resolve(7), 1000)).resolves.toBe(7);
    await expect(withTimeout(never, 10)).rejects.toThrow('no answer within 10 ms');
    await expect(doneWithin(Promise.resolve(), 1000)).resolves.toBe(true);
    await expect(doneWithin(never, 10)).resolves.toBe(false);
    await expect(doneWithin(Promise.reject(new Error('no')), 1000)).resolves.toBe(false);
  });
});
