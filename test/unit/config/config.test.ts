import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactIn, redactUrl } from '../../../src/config/config.js';

// The isolation and job-limit settings have tests of their own in test/config/.
describe('loadConfig', () => {
  it('runs with no variables set, on the documented defaults', () => {
    expect(loadConfig({})).toMatchObject({
      REDIS_URL: 'redis://127.0.0.1:6379',
      QUEUE_NAME: 'claudebox',
      QUEUE_PREFIX: 'bull',
      CONCURRENCY: 1,
      DEFAULT_TIMEOUT_SECONDS: 3600,
      MAX_OUTPUT_BYTES: 64 * 1024,
      MAX_PROMPT_BYTES: 4 * 1024 * 1024,
      MAX_LINE_BYTES: 8 * 1024 * 1024,
      EVENT_BUFFER_BYTES: 64 * 1024 * 1024,
      QUEUE_EVENTS_MAX_BYTES: 64 * 1024 * 1024,
      HEALTH_HOST: '127.0.0.1',
      SESSION_STORE: 'redis',
      SESSION_SYNC_SECONDS: 0.25,
      CLAUDE_ENV: [],
    });
    const config = loadConfig({});
    // Unset, not 8080: only the default port gives way to a free one when it is taken.
    expect(config.HEALTH_PORT).toBeUndefined();
    expect(config.CLAUDE_BIN).toBeUndefined();
    expect(config.WORK_DIR).toBeUndefined();
  });

  it('reads numbers and lists from their text, and takes an empty variable as unset', () => {
    const config = loadConfig({
      CONCURRENCY: '4',
      SHUTDOWN_GRACE_SECONDS: '0',
      SESSION_SYNC_SECONDS: '1.5',
      HEALTH_PORT: '0',
      CLAUDE_ENV: ' GITHUB_TOKEN , NPM_TOKEN,, ',
      QUEUE_NAME: '',
      WORK_DIR: '',
    });
    expect(config).toMatchObject({
      CONCURRENCY: 4,
      SHUTDOWN_GRACE_SECONDS: 0,
      SESSION_SYNC_SECONDS: 1.5,
      HEALTH_PORT: 0,
      CLAUDE_ENV: ['GITHUB_TOKEN', 'NPM_TOKEN'],
      QUEUE_NAME: 'claudebox',
    });
    expect(config.WORK_DIR).toBeUndefined();
  });

  it('reads a number only as digits: blanks, hex and exponents are refused, naming the variable', () => {
    expect(() => loadConfig({ HEALTH_PORT: ' ' })).toThrow('HEALTH_PORT=" ": must be a number');
    expect(() => loadConfig({ HEALTH_PORT: '0x1F90' })).toThrow(
      'HEALTH_PORT="0x1F90": must be a number',
    );
    // A number, but not as a variable writes one: the message says which way.
    expect(() => loadConfig({ CONCURRENCY: '1e1' })).toThrow(
      'CONCURRENCY="1e1": must be a number in decimal digits (no exponent, no hex)',
    );
    expect(() => loadConfig({ SHUTDOWN_GRACE_SECONDS: '-1' })).toThrow(
      'SHUTDOWN_GRACE_SECONDS="-1": must not be negative',
    );
  });

  it('refuses a duration the worker times past a day, which a timer would take as 1 ms', () => {
    for (const name of [
      'SHUTDOWN_GRACE_SECONDS',
      'WORKSPACE_SWEEP_SECONDS',
      'LOCK_DURATION_SECONDS',
    ]) {
      expect(() => loadConfig({ [name]: '2200000' })).toThrow(
        `${name}="2200000": must be at most 86400 (a day)`,
      );
    }
  });

  it('ignores variables that are not settings', () => {
    expect(() => loadConfig({ PATH: '/usr/bin', CONCURRENCY_X: 'nonsense' })).not.toThrow();
  });

  it('names every bad variable and its value in one ConfigError', () => {
    let error: unknown;
    try {
      loadConfig({ CONCURRENCY: 'two', HEALTH_PORT: '70000', QUEUE_NAME: 'has space' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      'invalid configuration: QUEUE_NAME="has space": must be letters, digits, _ { } . or -; ' +
        'CONCURRENCY="two": must be a number in decimal digits (no exponent, no hex); HEALTH_PORT="70000": must be at most 65535',
    );
  });

  it.each([
    [{ CONCURRENCY: '1.5' }, 'CONCURRENCY="1.5": must be an integer'],
    [{ CONCURRENCY: '0' }, 'CONCURRENCY="0": must be at least 1'],
    [
      { CONCURRENCY: '99999999999999999999999' },
      'CONCURRENCY="99999999999999999999999": must be at most 9007199254740991',
    ],
    [{ LOCK_DURATION_SECONDS: '-1' }, 'LOCK_DURATION_SECONDS="-1": must be positive'],
    [{ LOCK_DURATION_SECONDS: '0.001' }, 'LOCK_DURATION_SECONDS="0.001": must be at least 1'],
    [
      { REDIS_URL: 'redis://redis:6379/abc' },
      'REDIS_URL="redis://redis:6379/abc": names a database that is no whole number',
    ],
    [
      { REDIS_URL: 'redis://redis:6379/?db=1.5' },
      'REDIS_URL="redis://redis:6379/?db=***": names a database that is no whole number',
    ],
    [
      { REDIS_URL: 'redis://:pa%zz@redis:6379' },
      'REDIS_URL="redis://:***@redis:6379": has a malformed %-escape',
    ],
    [{ REDIS_URL: 'redis://:pa#ss@redis:6379' }, '(with any of # / ? @ in a password %-escaped)'],
    [{ MAX_LINE_BYTES: '100' }, 'MAX_LINE_BYTES="100": must be at least 1024'],
    [{ EVENT_BUFFER_BYTES: '1000' }, 'EVENT_BUFFER_BYTES="1000": must be at least 1048576'],
    [{ SESSION_STORE: 'disk' }, 'SESSION_STORE="disk": must be redis or off'],
    [{ CLAUDE_ENV: 'GOOD,bad-name' }, 'CLAUDE_ENV="GOOD,bad-name": must be a comma-separated list'],
    [
      { REDIS_URL: 'http://redis:6379' },
      'REDIS_URL="http://redis:6379/": must be a redis:// or rediss:// URL',
    ],
    [{ CLAUDE_BIN: '   ' }, 'CLAUDE_BIN="   ": must not be empty'],
  ])('refuses %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('accepts rediss:// and never shows a Redis password in an error', () => {
    expect(loadConfig({ REDIS_URL: 'rediss://:pw@redis:6380/2' }).REDIS_URL).toBe(
      'rediss://:pw@redis:6380/2',
    );
    const bad = { REDIS_URL: 'http://user:hunter2@redis:6379' };
    expect(() => loadConfig(bad)).toThrow('REDIS_URL="http://***:***@redis:6379/"');
    expect(() => loadConfig(bad)).not.toThrow('hunter2');
  });
});

describe('redactUrl', () => {
  it.each([
    ['redis://default:s3cret@cache.internal:6379/1', 'redis://***:***@cache.internal:6379/1'],
    ['redis://:s3cret@cache.internal:6379', 'redis://:***@cache.internal:6379'],
    ['redis://s3cret@cache.internal:6379', 'redis://***@cache.internal:6379'],
    [
      'redis://cache.internal:6379/?password=s3cret&db=2',
      'redis://cache.internal:6379/?password=***&db=***',
    ],
    ['rediss://app:p%40ss@cache.internal:6380/0', 'rediss://***:***@cache.internal:6380/0'],
  ])('hides the user info and query values of %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });

  it('leaves a URL without credentials as it is', () => {
    expect(redactUrl('redis://cache.internal:6379')).toBe('redis://cache.internal:6379');
    expect(redactUrl('rediss://cache.internal:6380/3')).toBe('rediss://cache.internal:6380/3');
  });

  it('hides what could be credentials in a URL that does not parse', () => {
    expect(redactUrl('redis://user:s3cret@cache.internal:99999?password=other')).toBe(
      'redis://***@cache.internal:99999?***',
    );
    expect(redactUrl('not a url')).toBe('not a url');
  });
});

describe('redactIn', () => {
  const url = 'redis://app:p%40ss@cache.internal:6379/?password=s3cret2&db=4';

  it('replaces the URL and each credential wherever a message quotes them', () => {
    const message = `cannot use ${url}: AUTH app p@ss failed, then s3cret2 (db 4)`;
    expect(redactIn(message, url)).toBe(
      'cannot use redis://***:***@cache.internal:6379/?password=***&db=***: ' +
        'AUTH *** *** failed, then *** (db 4)',
    );
  });

  it('leaves a message that quotes nothing of the URL as it is', () => {
    expect(redactIn('connect ECONNREFUSED 127.0.0.1:6379', url)).toBe(
      'connect ECONNREFUSED 127.0.0.1:6379',
    );
  });
});
