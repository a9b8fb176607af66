import type { RacksealConfig } from '@rackseal/config';
import IORedis, { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';

export type RedisPurpose = 'queue-producer' | 'queue-worker' | 'health' | 'publisher' | 'subscriber' | 'rate-limiter';

/** What createRedisConnection returns: one Redis, or a Redis Cluster client (REDIS_CLUSTER_NODES). */
export type RedisClient = Redis | Cluster;

/** Capped backoff between connection attempts, for one Redis and for a cluster's seed nodes alike. */
const reconnectDelay = (attempt: number): number => Math.min(attempt * 200, 2000);

/** Per purpose; `enableOfflineQueue` is the cluster client's own in cluster mode (ioredis always queues on a cluster's node connections). */
const BY_PURPOSE: Record<RedisPurpose, RedisOptions> = {
  'queue-worker': { maxRetriesPerRequest: null, enableReadyCheck: false },
  'queue-producer': { maxRetriesPerRequest: 1, enableOfflineQueue: false },
  health: { maxRetriesPerRequest: 0, connectTimeout: 2000 },
  publisher: { maxRetriesPerRequest: 1 },
  subscriber: { maxRetriesPerRequest: null },
  'rate-limiter': { maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: 500 },
};

/**
 * ioredis clients from the validated REDIS_URL (or REDIS_CLUSTER_NODES), tuned per purpose:
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
export function createRedisConnection(config: Pick<RacksealConfig, 'redis'>, purpose: RedisPurpose): RedisClient {
  const client = config.redis.clusterNodes === null ? single(config.redis.url, purpose) : cluster(config.redis.url, config.redis.clusterNodes, purpose);
  // Connection errors are reported through readiness and job failures; an unhandled 'error' event would crash.
  client.on('error', () => undefined);
  return client;
}

function single(url: string, purpose: RedisPurpose): Redis {
  return new IORedis(url, { connectionName: `rackseal:${purpose}`, retryStrategy: reconnectDelay, lazyConnect: false, ...BY_PURPOSE[purpose] });
}

/**
 * A Redis Cluster client (docs/guide/hardening.md "Redis keys and Redis Cluster"): it learns the
 * slot map from the seed nodes, follows MOVED and ASK redirections and refreshes the map after a
 * failover. Every rackseal key sits in the one slot of `{QUEUE_PREFIX}`, so BullMQ's multi-key
 * scripts and the rate limiter's script run on the node owning it. From REDIS_URL only the scheme
 * (rediss: is TLS), user name and password apply, to every node.
 */
function cluster(url: string, seeds: readonly { host: string; port: number }[], purpose: RedisPurpose): Cluster {
  const parsed = new URL(url);
  const { enableOfflineQueue, ...perNode } = BY_PURPOSE[purpose];
  const redisOptions: ClusterOptions['redisOptions'] = {
    connectionName: `rackseal:${purpose}`,
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    ...perNode,
  };
  return new Cluster(
    seeds.map(({ host, port }) => ({ host, port })),
    {
      redisOptions,
      // Seeds unreachable (the whole cluster down): try again, as a single client does; never give up.
      clusterRetryStrategy: reconnectDelay,
      enableOfflineQueue: enableOfflineQueue ?? true,
      lazyConnect: false,
    },
  );
}
