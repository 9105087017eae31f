/**
 * What REDIS_URL names: one Redis (`redis://`, `rediss://`, as ioredis reads them), a Redis
 * Cluster (`redis+cluster://[user:password@]host:port[,host:port...]`, any nodes of it), or a
 * primary managed by Sentinel
 * (`redis+sentinel://[user:password@]host:port[,host:port...]/masterName[?sentinelPassword=...]`,
 * the sentinels' addresses). The `rediss+` forms use TLS. Parsed here only, so the worker, the
 * client, the CLI and the gateway read one address the same way.
 */

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'node'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly RedisNode[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisNode[];
      readonly masterName: string;
      readonly username?: string;
      readonly password?: string;
      readonly sentinelPassword?: string;
      readonly tls: boolean;
    };

export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

const FORMS =
  'a redis:// or rediss:// URL, redis+cluster://host:port[,host:port...] or redis+sentinel://host:port[,host:port...]/masterName';

/** scheme, user info, host list, path, query. */
const MULTI =
  /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/;

/** The target `value` names, or a RedisUrlError saying what is wrong with it (never a secret). */
export function parseRedisTarget(value: string): RedisTarget {
  const multi = MULTI.exec(value);
  if (multi === null) {
    if (/^rediss?\+/i.test(value)) throw new RedisUrlError(`must be ${FORMS}`);
    return { kind: 'node', url: singleUrl(value) };
  }
  const [, scheme = '', kind = '', userInfo, hosts = '', path = '', query = ''] = multi;
  const credentials = userInfo === undefined ? {} : parseUserInfo(userInfo);
  const params = new URLSearchParams(query);
  const tls = scheme === 'rediss';
  if (kind === 'cluster') {
    if (path !== '' && path !== '/') {
      throw new RedisUrlError(
        'a redis+cluster:// address has no path (a cluster has no databases)',
      );
    }
    checkParams(params, []);
    return { kind: 'cluster', nodes: parseNodes(hosts, 6379), ...credentials, tls };
  }
  checkParams(params, ['sentinelPassword']);
  const masterName = decode(path.replace(/^\//, ''));
  if (masterName === '' || masterName.includes('/')) {
    throw new RedisUrlError(
      'a redis+sentinel:// address ends with the master name, e.g. redis+sentinel://127.0.0.1:26379/mymaster',
    );
  }
  const sentinelPassword = params.get('sentinelPassword');
  return {
    kind: 'sentinel',
    sentinels: parseNodes(hosts, 26379),
    masterName,
    ...credentials,
    ...(sentinelPassword === null ? {} : { sentinelPassword }),
    tls,
  };
}

/** Every credential in `value`, to keep out of logs and messages. */
export function redisSecrets(value: string): string[] {
  let target: RedisTarget;
  try {
    target = parseRedisTarget(value);
  } catch {
    return [];
  }
  if (target.kind === 'node') return [];
  const sentinel = target.kind === 'sentinel' ? [target.sentinelPassword] : [];
  return [target.username, target.password, ...sentinel].filter(
    (secret): secret is string => secret !== undefined && secret !== '',
  );
}

function singleUrl(value: string): string {
  if (/^rediss?:\/\/[^/?#]*,/i.test(value)) {
    throw new RedisUrlError(
      'names several hosts: use redis+cluster:// for a cluster or redis+sentinel:// for sentinels',
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // A password's `#`, `/`, `?` or `@` would end it early.
    const escaping = value.includes('@') ? ' (with any of # / ? @ in a password %-escaped)' : '';
    throw new RedisUrlError(`must be ${FORMS}${escaping}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new RedisUrlError(`must be ${FORMS}`);
  }
  // `redis:127.0.0.1:6379` parses, as a path with no host.
  if (url.hostname === '') {
    throw new RedisUrlError(`names no host: must be ${FORMS}`);
  }
  decode(url.username);
  decode(url.password);
  // ioredis would send SELECT NaN for a database that is no number, and take 1.5 for 1.
  const databases = [url.pathname.replace(/^\//, ''), url.searchParams.get('db') ?? ''];
  if (databases.some((db) => db !== '' && !/^\d+$/.test(db))) {
    throw new RedisUrlError(
      'names a database that is no whole number: the path, or ?db=, is its number, e.g. redis://127.0.0.1:6379/0',
    );
  }
  return value;
}

function parseUserInfo(userInfo: string): { username?: string; password?: string } {
  const colon = userInfo.indexOf(':');
  const username = decode(colon < 0 ? userInfo : userInfo.slice(0, colon));
  const password = colon < 0 ? undefined : decode(userInfo.slice(colon + 1));
  return {
    ...(username === '' ? {} : { username }),
    ...(password === undefined || password === '' ? {} : { password }),
  };
}

function parseNodes(hosts: string, defaultPort: number): RedisNode[] {
  const parts = hosts.split(',').map((part) => part.trim());
  if (parts.some((part) => part === '')) {
    throw new RedisUrlError('needs host:port addresses separated by commas, none empty');
  }
  return parts.map((part) => {
    let url: URL;
    try {
      url = new URL(`redis://${part}`);
    } catch {
      throw new RedisUrlError(`${JSON.stringify(part)} is not a host:port address`);
    }
    if (url.pathname !== '' || url.username !== '' || url.search !== '') {
      throw new RedisUrlError(`${JSON.stringify(part)} is not a host:port address`);
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    return { host, port: url.port === '' ? defaultPort : Number(url.port) };
  });
}

function checkParams(params: URLSearchParams, known: readonly string[]): void {
  const unknown = [...params.keys()].filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    const allowed = known.length === 0 ? 'none is read' : `only ${known.join(', ')} is read`;
    // A name is quoted only where it looks like one: a password holding '?' puts its rest here.
    const named = unknown.map((key) => (/^[A-Za-z][\w-]{0,63}$/.test(key) ? key : '(not a name)'));
    throw new RedisUrlError(`unknown query parameter ${named.join(', ')} (${allowed})`);
  }
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RedisUrlError('has a malformed %-escape');
  }
}
