import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_CATALOG, type JobName, type JobPayload, type QueueName } from './job-catalog';
import { createRedisConnection } from './redis-connection';
import { validateJobPayload } from './validate-payload';

export interface EnqueuedJob {
  readonly id: string;
  readonly queue: QueueName;
}

/**
 * Puts jobs on their queues. Producers live in every process; consumers only in the worker.
 * Payloads are validated here, ids come from the catalog, so the same request enqueued twice is
 * one job.
 */
@Injectable()
export class JobQueue implements OnApplicationShutdown {
  private readonly queues = new Map<QueueName, Queue>();
  private connection: Redis | undefined;

  constructor(@Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig) {}

  async enqueue<N extends JobName>(name: N, payload: JobPayload<N>): Promise<EnqueuedJob> {
    const spec = JOB_CATALOG[name];
    const valid = validateJobPayload(name, payload);
    const id = spec.jobId(valid);
    await this.queue(spec.queue).add(name, { ...valid }, {
      jobId: id,
      attempts: spec.attempts,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 7 * 24 * 3600, count: 10000 },
      removeOnFail: false,
    });
    return { id, queue: spec.queue };
  }

  queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      this.connection ??= createRedisConnection(this.config, 'queue-producer');
      queue = new Queue(name, { connection: this.connection, prefix: this.config.redis.queuePrefix });
      this.queues.set(name, queue);
    }
    return queue;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.connection?.disconnect();
  }
}
