import { type ScratchQueuePrefix, scratchQueuePrefix } from '../../demo/support/queue-prefix';
import { testServices } from './services';

export type TestQueuePrefix = ScratchQueuePrefix;

/** A BullMQ prefix of its own for one test file, so suites running in parallel never share a queue. */
export function createTestQueuePrefix(): TestQueuePrefix {
  return scratchQueuePrefix(testServices().redisUrl, 'rackseal-test');
}
