import { readOrNothing } from '../common/paths.js';

/** A kernel setting of the host under which runs are less walled off than docs/security.md says. */
export interface WeakHostSetting {
  readonly name: string;
  readonly value: string;
  readonly why: string;
}

const WEAK_VALUES = [
  {
    name: 'fs.protected_hardlinks',
    weak: '0',
    why: 'a run can hard-link files it does not own, root’s too, into the directories it is handed',
  },
  {
    name: 'fs.suid_dumpable',
    weak: '1',
    why: 'a run can trace the sender of the kill that ends it, and keep it from sending',
  },
] as const;

/** The host's settings that weaken isolation by uid; `read` gives a setting's value, if readable. */
export function weakHostSettings(
  read: (name: string) => string | undefined = readSysctl,
): WeakHostSetting[] {
  return WEAK_VALUES.flatMap(({ name, weak, why }) => {
    const value = read(name);
    return value === weak ? [{ name, value, why }] : [];
  });
}

/** A kernel setting's value (`fs.suid_dumpable`), or undefined where it cannot be read. */
export function readSysctl(name: string): string | undefined {
  return readOrNothing(`/proc/sys/${name.replaceAll('.', '/')}`)?.trim();
}
