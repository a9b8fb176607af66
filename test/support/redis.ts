import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { testServices } from './services';

export interface TestQueuePrefix {
  readonly prefix: string;
  /** Deletes every key under the prefix. */
  clear(): Promise<void>;
}

/** A BullMQ prefix of its own for one test file, so suites running in parallel never share a queue. */
export function createTestQueuePrefix(): TestQueuePrefix {
  const prefix = `rackseal-test-${Date.now()}-${randomBytes(4).toString('hex')}`;
  return {
    prefix,
    clear: async () => {
      const client = new IORedis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
      try {
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
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
