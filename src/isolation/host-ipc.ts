import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A System V IPC object: ipcrm's option for its kind, and its id. */
export interface IpcObject {
  readonly kind: '-m' | '-q' | '-s';
  readonly id: string;
}

/** /proc/sysvipc's tables: each one's id column, and ipcrm's option for what it lists. */
const TABLES = [
  ['shm', 'shmid', '-m'],
  ['msg', 'msqid', '-q'],
  ['sem', 'semid', '-s'],
] as const;

/**
 * The System V shared memory segments, message queues and semaphore sets of the worker's IPC
 * namespace that `uid` owns or created. They outlive every process: a run without an IPC
 * namespace of its own could leave one behind, readable by the uid's next run. Its creator
 * stays in `cuid` whoever it hands the object over to.
 */
export function ipcObjectsOf(uid: number, sysvipc = '/proc/sysvipc'): IpcObject[] {
  const found: IpcObject[] = [];
  for (const [table, idColumn, kind] of TABLES) {
    const [header, ...rows] = readTable(join(sysvipc, table));
    if (header === undefined) continue;
    const idAt = header.indexOf(idColumn);
    const uidAt = header.indexOf('uid');
    const cuidAt = header.indexOf('cuid');
    const permsAt = header.indexOf('perms');
    for (const row of rows) {
      const id = row[idAt];
      if (id === undefined || (Number(row[uidAt]) !== uid && Number(row[cuidAt]) !== uid)) continue;
      // A segment removed while still attached (SHM_DEST, in octal perms) goes with its last
      // attachment: a process that is dying, or another uid's, which removing cannot hurry.
      if ((parseInt(row[permsAt] ?? '0', 8) & SHM_DEST) !== 0) continue;
      found.push({ kind, id });
    }
  }
  return found;
}

/** The mode bit of a shared memory segment removed while still attached. */
const SHM_DEST = 0o1000;

/** A table's rows as columns; none where the kernel has no System V IPC. */
function readTable(path: string): string[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.trim().split(/\s+/));
}
