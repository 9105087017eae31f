import { describe, expect, it } from 'vitest';
import { isStill } from '../../../src/isolation/stopped-run.js';

describe('a process of a stopped run that does nothing more', () => {
  it('is one stopped, traced, a zombie or gone', () => {
    for (const state of ['T', 't', 'Z', 'X']) expect(isStill(state, () => undefined)).toBe(true);
    for (const state of ['R', 'S', 'I']) expect(isStill(state, () => 'kernel_clone\n')).toBe(false);
  });

  it('is one waiting in vfork() for its stopped child, as the kernel names that wait', () => {
    // /proc/<pid>/wchan of `sh` vforking `sleep`, its child stopped before the exec (kernel 6.18).
    expect(isStill('D', () => 'kernel_clone')).toBe(true);
    expect(isStill('D', () => '_do_fork')).toBe(true);
  });

  it('is not one waiting uninterruptibly on anything else (the disk, a lock)', () => {
    expect(isStill('D', () => 'folio_wait_bit_common')).toBe(false);
    expect(isStill('D', () => undefined)).toBe(false);
  });
});
