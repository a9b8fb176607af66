import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { testServices } from './services';

export interface TestQueuePrefix {
  /** The QUEUE_PREFIX value of the file's processes. */
  readonly prefix: string;
  /** `{prefix}`: the Redis key prefix (a Cluster hash tag) their queues and channels live under (config.redis.keyPrefix). */
  readonly keyPrefix: string;
  /** Deletes every key under the prefix. */
  clear(): Promise<void>;
}

/** A BullMQ prefix of its own for one test file, so suites running in parallel never share a queue. */
export function createTestQueuePrefix(): TestQueuePrefix {
  const prefix = `rackseal-test-${Date.now()}-${randomBytes(4).toString('hex')}`;
  const keyPrefix = `{${prefix}}`;
  return {
    prefix,
    keyPrefix,
    clear: async () => {
      const client = new IORedis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
      try {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) {
            await client.del(...keys);
          }
        } while (cursor !== '0');
      } finally {
        client.disconnect();
      }
    },
  };
}
