import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openUidBox } from '../../src/isolation/box.js';
import { IsolationError } from '../../src/isolation/errors.js';
import { uidConfinement } from '../../src/isolation/uid-confinement.js';

/** A uid no other test's runs use. */
const UID = 63_521;
/** A sender of kill(-1) as the uid that never gets to send it, as if a process of the uid stopped it. */
const NEVER_SENDS = '/bin/false';
const SETPRIV = '/usr/bin/setpriv';

const roots: string[] = [];
afterAll(() => roots.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('the uid of a run that ended', () => {
  it('counts as clear once a kill sent as it got through, with nothing of it left', async () => {
    const confinement = uidConfinement({ uid: UID, setpriv: SETPRIV, sandbox: null });
    await confinement.sweep(undefined, 0);
    expect(confinement.cleared).toBe(true);
  });

  it('does not count as clear when no kill sent as it got through', async () => {
    const confinement = uidConfinement({
      uid: UID,
      setpriv: SETPRIV,
      sandbox: null,
      senderShell: NEVER_SENDS,
    });
    await confinement.sweep(undefined, 0);
    expect(confinement.cleared).toBe(false);
  });

  it('stays out of the pool then: closing the box fails, naming the uid, and keeps its lease', async () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-uid-clearing-'));
    roots.push(root);
    const [runRoot, workDir] = [join(root, 'run'), join(root, 'work')];
    const cwd = join(workDir, 'job');
    for (const dir of [join(runRoot, 'homes'), cwd]) mkdirSync(dir, { recursive: true });
    let released = 0;
    const box = await openUidBox({
      lease: {
        uid: UID,
        release: () => {
          released++;
          return Promise.resolve();
        },
      },
      setpriv: SETPRIV,
      senderShell: NEVER_SENDS,
      runRoot,
      workRoot: workDir,
      workDir,
      runId: randomUUID(),
      cwd,
      addDirs: [],
      mayTake: () => true,
      sandbox: null,
      namespaces: [],
    });
    const closing = box.close();
    await expect(closing).rejects.toThrow(IsolationError);
    await expect(closing).rejects.toThrow(`uid ${UID}`);
    expect(released).toBe(0);
  });
});
