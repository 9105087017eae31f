import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { branchOf } from '../../../../src/worker/attempt/workspace-step.js';
import { oneCommitRepository } from '../../../support/git.js';

const root = mkdtempSync(join(tmpdir(), 'claudebox-branch-name-'));
const repo = oneCommitRepository(root);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Makes the branch in a real repository, as the worker's commit does; throws where git cannot. */
const made = (branch: string): string => {
  execFileSync('git', ['-C', repo, 'update-ref', `refs/heads/${branch}`, 'HEAD'], {
    stdio: 'pipe',
  });
  return branch;
};

describe("the branch a job's change is committed on", () => {
  it('is claudebox/job-<id> for an id of letters, digits, _ and -', () => {
    expect(made(branchOf('job_42-b'))).toBe('claudebox/job-job_42-b');
  });

  it('is one of its own for each of ids that differ only in characters a branch cannot hold', () => {
    const ids = ['a-b', 'a.b', 'a/b', 'a b', 'a:b'];
    const branches = ids.map((id) => made(branchOf(id)));
    expect(new Set(branches).size).toBe(ids.length);
    expect(branches[0]).toBe('claudebox/job-a-b');
    expect(branches[1]).toMatch(/^claudebox\/job-a-b\.[0-9a-f]{12}$/);
  });

  it('is one git can make for the longest job id, and differs for two that share 200 characters', () => {
    const long = 'j'.repeat(256);
    const other = `${'j'.repeat(255)}k`;
    expect(made(branchOf(long))).not.toBe(made(branchOf(other)));
    expect(branchOf('j'.repeat(200))).toBe(`claudebox/job-${'j'.repeat(200)}`);
  });
});
