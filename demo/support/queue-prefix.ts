import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';

/** A BullMQ prefix (QUEUE_PREFIX) of one run's own, so runs sharing a Redis never share a queue. */
export interface ScratchQueuePrefix {
  /** The QUEUE_PREFIX value of the run's processes. */
  readonly prefix: string;
  /** `{prefix}`: the Redis key prefix (a Cluster hash tag) their queues, channels and rate buckets live under (config.redis.keyPrefix). */
  readonly keyPrefix: string;
  /** Deletes every key under the prefix. */
  clear(): Promise<void>;
  /** How many keys are under the prefix now (0 once cleared). */
  count(): Promise<number>;
}

export function scratchQueuePrefix(redisUrl: string, label: string): ScratchQueuePrefix {
  const prefix = `${label}-${Date.now()}-${randomBytes(4).toString('hex')}`;
  const keyPrefix = `{${prefix}}`;
  /** Runs `fn` on every batch of keys under the prefix (SCAN, never KEYS: Redis stays responsive). */
  const eachBatch = async (fn: (client: IORedis, keys: string[]) => Promise<unknown>): Promise<void> => {
    const client = new IORedis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) {
          await fn(client, keys);
        }
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  };
  return {
    prefix,
    keyPrefix,
    clear: () => eachBatch((client, keys) => client.del(...keys)),
    count: async () => {
      let n = 0;
      await eachBatch((_client, keys) => Promise.resolve((n += keys.length)));
      return n;
    },
  };
}
