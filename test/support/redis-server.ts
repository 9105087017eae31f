/** The tests' Redis: a private redis-server on a free port, never the developer's 6379. */
export {
  findFreePort,
  startPrivateRedis as startRedisServer,
  type PrivateRedis as RedisServer,
} from '../../tools/demo/private-redis.js';
