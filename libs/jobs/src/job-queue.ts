import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { Queue } from 'bullmq';
import { JOB_CATALOG, type JobName, type JobPayload, type QueueName, QUEUES } from './job-catalog';
import { createRedisConnection, type RedisClient } from './redis-connection';
import { validateJobPayload } from './validate-payload';

/** The BullMQ job states the queue-depth gauges report. */
export const JOB_COUNT_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const;
export type JobCountState = (typeof JOB_COUNT_STATES)[number];

export interface EnqueuedJob {
  readonly id: string;
  readonly queue: QueueName;
}

function jobOptions(spec: (typeof JOB_CATALOG)[JobName]): { attempts: number; backoff: { type: 'exponential'; delay: number }; removeOnComplete: { age: number; count: number }; removeOnFail: false } {
  return {
    attempts: spec.attempts,
    backoff: { type: 'exponential', delay: 'backoffMs' in spec ? spec.backoffMs : 1000 },
    removeOnComplete: { age: 7 * 24 * 3600, count: 10000 },
    removeOnFail: false,
  };
}

/**
 * Puts jobs on their queues. Producers live in every process; consumers only in the worker.
 * Payloads are validated here, ids come from the catalog, so the same request enqueued twice is
 * one job.
 */
@Injectable()
export class JobQueue implements OnApplicationShutdown {
  private readonly queues = new Map<QueueName, Queue>();
  private connection: RedisClient | undefined;

  constructor(@Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig) {}

  async enqueue<N extends JobName>(name: N, payload: JobPayload<N>): Promise<EnqueuedJob> {
    return (await this.enqueueMany(name, [payload]))[0]!;
  }

  /**
   * Several jobs of one name in one round trip (BullMQ addBulk, a MULTI). A job whose id exists
   * already, in whatever state, stays as it is: enqueueing again is harmless.
   */
  async enqueueMany<N extends JobName>(name: N, payloads: readonly JobPayload<N>[]): Promise<EnqueuedJob[]> {
    const spec: (typeof JOB_CATALOG)[JobName] = JOB_CATALOG[name];
    const jobs = payloads.map((payload) => {
      const valid = validateJobPayload(name, payload);
      return { name, data: { ...valid }, opts: { jobId: (spec.jobId as (p: JobPayload<N>) => string)(valid), ...jobOptions(spec) } };
    });
    if (jobs.length > 0) {
      await this.queue(spec.queue).addBulk(jobs);
    }
    return jobs.map((j) => ({ id: j.opts.jobId, queue: spec.queue }));
  }

  /**
   * A BullMQ job scheduler (upsertJobScheduler): one job every `everyMs`, however many processes
   * upsert the same scheduler id (the id is the job's name: one schedule per job).
   */
  async schedule<N extends JobName>(name: N, everyMs: number, payload: JobPayload<N>): Promise<void> {
    const spec: (typeof JOB_CATALOG)[JobName] = JOB_CATALOG[name];
    const valid = validateJobPayload(name, payload);
    await this.queue(spec.queue).upsertJobScheduler(name, { every: everyMs }, { name, data: { ...valid }, opts: jobOptions(spec) });
  }

  /**
   * Jobs per queue and BullMQ state (waiting, active, delayed, prioritized, waiting-children, failed,
   * completed; completed ones are kept a week): the queue-depth gauges of /metrics. Read from Redis, so
   * the same for every process.
   */
  async jobCounts(): Promise<Record<QueueName, Record<JobCountState, number>>> {
    const entries = await Promise.all(
      QUEUES.map(async (name) => [name, (await this.queue(name).getJobCounts(...JOB_COUNT_STATES)) as Record<JobCountState, number>] as const),
    );
    return Object.fromEntries(entries) as Record<QueueName, Record<JobCountState, number>>;
  }

  queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      this.connection ??= createRedisConnection(this.config, 'queue-producer');
      queue = new Queue(name, { connection: this.connection, prefix: this.config.redis.keyPrefix });
      this.queues.set(name, queue);
    }
    return queue;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.connection?.disconnect();
  }
}
