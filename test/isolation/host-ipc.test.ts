import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ipcObjectsOf, type IpcObject } from '../../src/isolation/host-ipc.js';
import { removeFilesOf } from '../../src/isolation/shared-temp.js';
import { becomeUid, removeIpcOf } from '../../src/isolation/tools.js';
import { waitFor } from '../support/worker.js';

/** Uids no other test's runs use. */
const UID = 64_311;
const OTHER = 64_312;
const SETPRIV = '/usr/bin/setpriv';

const made: IpcObject[] = [];
afterAll(() => {
  for (const { kind, id } of made) {
    try {
      execFileSync('ipcrm', [kind, id], { stdio: 'ignore' });
    } catch {
      // Removed by the test itself.
    }
  }
});

/** Makes a System V object of `kind` (ipcmk's -M, -Q or -S) as `uid`; gives back ipcrm's name for it. */
function make(kind: '-M' | '-Q' | '-S', uid: number): IpcObject {
  const args = kind === '-Q' ? [kind] : [kind, '64'];
  const said = execFileSync(SETPRIV, [...becomeUid(uid), 'ipcmk', ...args], { encoding: 'utf8' });
  const id = /id: (\d+)/.exec(said)?.[1];
  if (id === undefined) throw new Error(`ipcmk said ${said}`);
  const object: IpcObject = { kind: kind === '-M' ? '-m' : kind === '-Q' ? '-q' : '-s', id };
  made.push(object);
  return object;
}

describe('System V IPC a run without an IPC namespace of its own leaves', () => {
  it('is removed: every object of its uid, none of another uid or of root', async () => {
    const own = [make('-M', UID), make('-Q', UID), make('-S', UID)];
    const others = [make('-M', OTHER), make('-Q', 0)];
    expect(ipcObjectsOf(UID)).toEqual(own);
    await removeIpcOf(UID, SETPRIV);
    expect(ipcObjectsOf(UID)).toEqual([]);
    expect([...ipcObjectsOf(OTHER), ...ipcObjectsOf(0)]).toEqual(expect.arrayContaining(others));
  });

  it('counts as its uid’s when the uid created it and handed it over to another', () => {
    const dir = mkdtempSync(join(tmpdir(), 'claudebox-sysvipc-'));
    writeFileSync(
      join(dir, 'shm'),
      [
        '       key      shmid perms    size  cpid  lpid nattch   uid   gid  cuid  cgid',
        `         0         17   600      64   100   100      0 ${OTHER} ${OTHER} ${UID} ${UID}`,
        `         0         18   600      64   100   100      0 ${OTHER} ${OTHER} ${OTHER} ${OTHER}`,
      ].join('\n'),
    );
    expect(ipcObjectsOf(UID, dir)).toEqual([{ kind: '-m', id: '17' }]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a POSIX message queue a run without an IPC namespace of its own leaves', () => {
  it('is removed with what its uid left in the shared temporary directories', async () => {
    // The queues of the host's IPC namespace, mounted where only a mount namespace of its own
    // sees them (the host here has no /dev/mqueue; Docker mounts one in every container).
    const mountPoint = mkdtempSync(join(tmpdir(), 'claudebox-mqueue-'));
    const queue = `claudebox-left-${process.pid}`;
    const holder = spawn(
      'unshare',
      [
        '--mount',
        '--propagation=private',
        '/bin/sh',
        '-c',
        `mount -t mqueue none "$1" && ${SETPRIV} ${becomeUid(UID).join(' ')} touch "$1/$2" && touch "$1/$2-root" && exec sleep 60`,
        'sh',
        mountPoint,
        queue,
      ],
      { stdio: 'ignore' },
    );
    try {
      const seen = join(`/proc/${holder.pid}/root`, mountPoint);
      const made = (): true | undefined =>
        readdirSync(seen).includes(`${queue}-root`) ? true : undefined;
      await waitFor('the queues', made, 5000);
      await removeFilesOf(UID, { dirs: [seen] });
      expect(readdirSync(seen).filter((name) => name.startsWith(queue))).toEqual([`${queue}-root`]);
      rmSync(join(seen, `${queue}-root`));
    } finally {
      holder.kill('SIGKILL');
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });
});
