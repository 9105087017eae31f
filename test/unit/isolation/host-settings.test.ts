import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readSysctl, weakHostSettings } from '../../../src/isolation/host-settings.js';

const host =
  (values: Record<string, string>) =>
  (name: string): string | undefined =>
    values[name];

describe('the host settings that weaken isolation by uid', () => {
  it('are named with their value and why, where hard links are unprotected or setuid processes dumpable', () => {
    const weak = weakHostSettings(host({ 'fs.protected_hardlinks': '0', 'fs.suid_dumpable': '1' }));
    expect(weak.map(({ name, value }) => `${name}=${value}`)).toEqual([
      'fs.protected_hardlinks=0',
      'fs.suid_dumpable=1',
    ]);
    expect(weak[1]?.why).toContain('trace the sender');
  });

  it('are none on a host with the kernel defaults, or with core dumps readable by root only', () => {
    expect(
      weakHostSettings(host({ 'fs.protected_hardlinks': '1', 'fs.suid_dumpable': '0' })),
    ).toEqual([]);
    expect(
      weakHostSettings(host({ 'fs.protected_hardlinks': '1', 'fs.suid_dumpable': '2' })),
    ).toEqual([]);
  });

  it('are none where a setting cannot be read (a kernel without it)', () => {
    expect(weakHostSettings(host({}))).toEqual([]);
  });

  it('are read from /proc/sys, a missing one as unreadable', () => {
    const suidDumpable = readFileSync('/proc/sys/fs/suid_dumpable', 'utf8').trim();
    expect(readSysctl('fs.suid_dumpable')).toBe(suidDumpable);
    expect(readSysctl('fs.no_such_setting')).toBeUndefined();
  });
});
