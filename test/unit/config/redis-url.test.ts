import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactIn, redactUrl } from '../../../src/config/config.js';
import { parseRedisTarget } from '../../../src/config/redis-url.js';
import { hashTag, queueHashTag } from '../../../src/contract/index.js';

describe('REDIS_URL forms', () => {
  it('reads one Redis as ioredis does', () => {
    expect(parseRedisTarget('rediss://:pw@cache:6380/2')).toEqual({
      kind: 'node',
      url: 'rediss://:pw@cache:6380/2',
    });
  });

  it('reads a cluster from some of its nodes, with credentials and TLS', () => {
    expect(
      parseRedisTarget('rediss+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002'),
    ).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
  });

  it('reads sentinels, the master name and both passwords', () => {
    expect(
      parseRedisTarget('redis+sentinel://:primary@s1:26380,s2/mymaster?sentinelPassword=watch'),
    ).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
      ],
      masterName: 'mymaster',
      password: 'primary',
      sentinelPassword: 'watch',
      tls: false,
    });
  });

  it.each([
    ['redis+sentinel://s1:26379', 'ends with the master name'],
    ['redis+sentinel://s1:26379/', 'ends with the master name'],
    ['redis+cluster://a:7000/0', 'has no path'],
    ['redis+cluster://a:7000,,b:7001', 'none empty'],
    ['redis+cluster://a:notaport', '"a:notaport" is not a host:port address'],
    ['redis+cluster://a:7000?db=1', 'unknown query parameter db'],
    ['redis+mesh://a:7000', 'must be a redis:// or rediss:// URL, redis+cluster://'],
    ['redis://a:7000,b:7001', 'use redis+cluster:// for a cluster'],
    ['http://a:7000', 'must be a redis:// or rediss:// URL'],
    ['redis:127.0.0.1:6379', 'names no host: must be a redis:// or rediss:// URL'],
    ['redis:/127.0.0.1:6379', 'names no host: must be a redis:// or rediss:// URL'],
  ])('refuses %s, saying what is wrong', (value, message) => {
    expect(() => loadConfig({ REDIS_URL: value, QUEUE_PREFIX: '{cb}' })).toThrow(message);
  });

  it('keeps the passwords of the cluster and sentinel forms out of messages', () => {
    const url = 'redis+sentinel://app:hunter2@s1/mymaster?sentinelPassword=watchword';
    const redacted = redactIn(`auth failed for app with hunter2, then watchword (${url})`, url);
    expect(redacted).not.toMatch(/hunter2|watchword/);
    expect(() => loadConfig({ REDIS_URL: 'redis+sentinel://:hunter2@s1' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'redis+sentinel://:hunter2@s1' })).not.toThrow(/hunter2/);
  });
});

describe('hash slots on a cluster', () => {
  it("keeps out of a bad REDIS_URL's message a password holding '/', '?' or '#'", () => {
    for (const secret of ['Zm9v/YmFyc2VjcmV0', 'p#ssSECRET', 'p?ssSECRET']) {
      for (const url of [`redis://:${secret}@redis:6379`, `redis+sentinel://:${secret}@s1/m`]) {
        let message = '';
        try {
          loadConfig({ REDIS_URL: url, QUEUE_NAME: '' });
          message = redactUrl(url);
        } catch (error) {
          message = (error as Error).message;
        }
        expect(message).not.toContain(secret.slice(-6));
        expect(redactUrl(url)).not.toContain(secret.slice(-6));
      }
    }
  });

  it('takes the tag Redis hashes: the first {...} that is not empty', () => {
    expect(hashTag('{claudebox}:q:history:1')).toBe('claudebox');
    expect(hashTag('bull:{q}:wait')).toBe('q');
    expect(hashTag('{}:{q}:wait')).toBeNull();
    expect(hashTag('bull:q:wait')).toBeNull();
    expect(queueHashTag({ prefix: 'bull', queueName: '{jobs}' })).toBe('jobs');
    // A tag left open by the queue's part would close inside each job's key: not shared.
    expect(queueHashTag({ prefix: '{bull', queueName: 'q' })).toBeNull();
  });

  it('refuses a cluster whose queue keys would spread over slots, naming what to use', () => {
    const env = { REDIS_URL: 'redis+cluster://127.0.0.1:7000' };
    expect(() => loadConfig(env)).toThrow(
      'QUEUE_PREFIX="bull" with QUEUE_NAME="claudebox" has no hash tag: on a Redis Cluster every key of a queue must be in one hash slot; use a hash tag such as QUEUE_PREFIX={claudebox}',
    );
    expect(loadConfig({ ...env, QUEUE_PREFIX: '{claudebox}' }).QUEUE_PREFIX).toBe('{claudebox}');
    expect(loadConfig({ ...env, QUEUE_NAME: '{jobs}' }).QUEUE_NAME).toBe('{jobs}');
    // One Redis and Sentinel have every key on one node: any prefix will do.
    expect(loadConfig({ REDIS_URL: 'redis+sentinel://s1/m' }).QUEUE_PREFIX).toBe('bull');
  });

  it('reads EVENTS_PUBSUB, plain by default', () => {
    expect(loadConfig({}).EVENTS_PUBSUB).toBe('plain');
    expect(loadConfig({ EVENTS_PUBSUB: 'sharded' }).EVENTS_PUBSUB).toBe('sharded');
    expect(() => loadConfig({ EVENTS_PUBSUB: 'spublish' })).toThrow(
      'EVENTS_PUBSUB="spublish": must be plain or sharded',
    );
  });
});
