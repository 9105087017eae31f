/**
 * What a workspace checkpoint costs: the time to read a checkout's change (git add, the file list
 * and the binary diff) after a tool edited one file, in repositories of 1,000 and 20,000 files.
 * claudebox's Checkout keeps the index git made at checkout, so git reads only files whose size
 * or mtime changed; the baseline reads the same change with a fresh index (read-tree of the
 * base, then add), which hashes every file, as a first look of any kind must.
 *
 *   npm run bench:checkpoints [-- --rounds 10]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Workspaces } from '../src/workspace/index.js';
import { git } from '../src/workspace/git.js';
import { makeRepository } from '../tools/demo/git-repository.js';
import { median } from './observe.js';

const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg === -1 ? 10 : Number(process.argv[roundsArg + 1]);
const FILE_BYTES = 2048;
const MAX_PATCH_BYTES = 16 * 1024 * 1024;

/** `count` files of FILE_BYTES in directories of 100. */
function* repositoryFiles(count: number): Generator<[string, string]> {
  for (let index = 0; index < count; index++) {
    const name = `dir-${Math.floor(index / 100)}/file-${index}.txt`;
    yield [name, `${index}\n`.padEnd(FILE_BYTES, 'x')];
  }
}

/** The same look with an index made afresh from the base: every file is read and hashed. */
async function freshLook(root: string, dir: string, cache: string, base: string): Promise<void> {
  const scratch = mkdtempSync(join(root, 'fresh-'));
  mkdirSync(join(scratch, 'objects'));
  const options = {
    gitDir: cache,
    workTree: dir,
    cwd: dir,
    env: {
      GIT_INDEX_FILE: join(scratch, 'index'),
      GIT_OBJECT_DIRECTORY: join(scratch, 'objects'),
      GIT_ALTERNATE_OBJECT_DIRECTORIES: join(cache, 'objects'),
    },
  };
  await git(['read-tree', base], options);
  await git(['add', '--all', '--', '.'], options);
  const diff = ['diff', '--cached', '--no-renames', '--no-ext-diff', '--no-textconv'];
  await git([...diff, '--name-status', '-z', base], options);
  await git([...diff, '--binary', base], options);
  rmSync(scratch, { recursive: true, force: true });
}

async function measure(root: string, files: number): Promise<{ kept: number; fresh: number }> {
  const source = await makeRepository(join(root, `repo-${files}`), repositoryFiles(files), 'files');
  const workspaces = await Workspaces.open({ dir: join(root, `workspaces-${files}`) });
  const checkout = await workspaces.checkout(`bench:${files}`, { source, ref: 'main' }, null);
  const cache = join(root, `workspaces-${files}`, 'cache');
  const [clone] = (await execa('ls', [cache])).stdout.split('\n').filter((n) => n.endsWith('.git'));
  const kept: number[] = [];
  const fresh: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // A tool edits one file, as an Edit would.
    writeFileSync(join(checkout.dir, 'dir-0', 'file-0.txt'), `edit ${round}\n`);
    let began = performance.now();
    await checkout.change({ maxPatchBytes: MAX_PATCH_BYTES });
    kept.push(performance.now() - began);
    began = performance.now();
    await freshLook(root, checkout.dir, join(cache, clone ?? ''), checkout.base);
    fresh.push(performance.now() - began);
  }
  await checkout.release(false);
  return { kept: median(kept), fresh: median(fresh) };
}

const root = mkdtempSync(join(tmpdir(), 'claudebox-bench-checkpoints-'));
try {
  console.log(`| repository | checkpoint, kept index | baseline: fresh index | ratio |`);
  console.log(`| --- | --- | --- | --- |`);
  for (const files of [1000, 20_000]) {
    const { kept, fresh } = await measure(root, files);
    const size = `${files.toLocaleString('en')} files of ${FILE_BYTES} bytes`;
    console.log(
      `| ${size} | ${kept.toFixed(1)} ms | ${fresh.toFixed(1)} ms | ${(kept / fresh).toFixed(2)}× |`,
    );
  }
  console.log(`\nMedians of ${ROUNDS} checkpoints, each after one file was edited.`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
