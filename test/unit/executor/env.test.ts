import { describe, expect, it } from 'vitest';
import {
  buildChildEnv,
  JOB_VARIABLE,
  RUN_MARKER,
  WORKER_MARKER,
} from '../../../src/executor/env.js';

const identity = { workerId: 'worker-1', runId: 'run-1', jobId: 'job-1' };

describe('buildChildEnv', () => {
  it("passes the allow-listed variables and none of the worker's own", () => {
    const env = buildChildEnv(
      {
        PATH: '/usr/bin',
        HOME: '/home/run',
        LANG: 'C.UTF-8',
        HTTPS_PROXY: 'http://proxy:3128',
        AWS_REGION: 'eu-west-1',
        REDIS_URL: 'redis://:secret@redis:6379',
        QUEUE_NAME: 'jobs',
        NODE_OPTIONS: '--require /tmp/evil.js',
        GITHUB_TOKEN: 'ghp_x',
      },
      [],
      identity,
    );
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/run',
      LANG: 'C.UTF-8',
      HTTPS_PROXY: 'http://proxy:3128',
      AWS_REGION: 'eu-west-1',
      [WORKER_MARKER]: 'worker-1',
      [RUN_MARKER]: 'run-1',
      [JOB_VARIABLE]: 'job-1',
    });
  });

  it('passes variables by prefix only when the name starts with it', () => {
    const env = buildChildEnv(
      {
        ANTHROPIC_API_KEY: 'sk-ant',
        CLAUDE_CODE_USE_BEDROCK: '1',
        LC_ALL: 'C',
        VERTEX_REGION_CLAUDE_4_0_OPUS: 'us-east5',
        MY_ANTHROPIC_KEY: 'no',
        XCLAUDE_CODE_X: 'no',
      },
      [],
      identity,
    );
    expect(Object.keys(env).sort()).toEqual(
      [
        'ANTHROPIC_API_KEY',
        'CLAUDE_CODE_USE_BEDROCK',
        'LC_ALL',
        'VERTEX_REGION_CLAUDE_4_0_OPUS',
        WORKER_MARKER,
        RUN_MARKER,
        JOB_VARIABLE,
      ].sort(),
    );
  });

  it("passes the operator's extra names (CLAUDE_ENV), and skips unset ones", () => {
    const env = buildChildEnv(
      { GITHUB_TOKEN: 'ghp_x', NPM_TOKEN: undefined, OTHER: 'no' },
      ['GITHUB_TOKEN', 'NPM_TOKEN'],
      identity,
    );
    expect(env.GITHUB_TOKEN).toBe('ghp_x');
    expect('NPM_TOKEN' in env).toBe(false);
    expect('OTHER' in env).toBe(false);
  });

  it("sets the run markers itself, whatever the worker's environment held", () => {
    const env = buildChildEnv(
      { [RUN_MARKER]: 'forged', [JOB_VARIABLE]: 'forged', [WORKER_MARKER]: 'forged' },
      [RUN_MARKER, JOB_VARIABLE, WORKER_MARKER],
      identity,
    );
    expect(env).toEqual({
      [WORKER_MARKER]: 'worker-1',
      [RUN_MARKER]: 'run-1',
      [JOB_VARIABLE]: 'job-1',
    });
  });
});
