import type { RacksealConfig } from '@rackseal/config';
import IORedis, { type Redis, type RedisOptions } from 'ioredis';

export type RedisPurpose = 'queue-producer' | 'queue-worker' | 'health' | 'publisher' | 'subscriber' | 'rate-limiter';

/**
 * ioredis clients from the validated REDIS_URL, tuned per purpose:
 * - BullMQ workers block on Redis and must never give up a command (maxRetriesPerRequest: null);
 * - producers fail fast when Redis is down so an HTTP request gets an error, not a hang;
 * - a publisher queues a command until its first connection is up (its caller bounds the wait); a subscriber (a connection in subscriber mode, which
 *   ioredis subscribes again after each reconnection) never gives up a command;
 * - the rate limiter never waits for Redis: no offline queue, no retry, a short command timeout (the
 *   control plane lets a request through when the limiter cannot answer: apps/control-plane/src/hardening);
 * - the health probe queues a command only until the next (re)connection attempt settles, so a
 *   probe right after boot waits for the first connection and a probe while Redis is down fails fast.
 * Every client keeps reconnecting with capped backoff, so service returns by itself when Redis does.
 */
export function createRedisConnection(config: Pick<RacksealConfig, 'redis'>, purpose: RedisPurpose): Redis {
  const base: RedisOptions = {
    connectionName: `rackseal:${purpose}`,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    lazyConnect: false,
  };
  const byPurpose: Record<RedisPurpose, RedisOptions> = {
    'queue-worker': { maxRetriesPerRequest: null, enableReadyCheck: false },
    'queue-producer': { maxRetriesPerRequest: 1, enableOfflineQueue: false },
    health: { maxRetriesPerRequest: 0, connectTimeout: 2000 },
    publisher: { maxRetriesPerRequest: 1 },
    subscriber: { maxRetriesPerRequest: null },
    'rate-limiter': { maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: 500 },
  };
  const client = new IORedis(config.redis.url, { ...base, ...byPurpose[purpose] });
  // Connection errors are reported through readiness and job failures; an unhandled 'error' event would crash.
  client.on('error', () => undefined);
  return client;
}
