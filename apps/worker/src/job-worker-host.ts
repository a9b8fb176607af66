import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import {
  createRedisConnection,
  type RedisClient,
  InvalidJobPayloadError,
  JOB_CATALOG,
  type JobName,
  type QueueName,
  QUEUES,
  validateJobPayload,
} from '@rackseal/jobs';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { buildHandlerRegistry, type DiscoveredHandler } from './handler-registry';
import { JobHandlerDiscovery } from './job-handler-discovery';
import { WorkerMetrics } from './worker-metrics';

/**
 * Runs the BullMQ consumers: one Worker per queue, dispatching by job name. Created at bootstrap
 * (after the handler set is proven complete) and closed at shutdown. On SIGTERM running jobs get
 * WORKER_SHUTDOWN_GRACE_MS to finish; after that the worker lets go and the job's lock lapses, so
 * BullMQ's stalled-job check hands it to another worker. A job is never dropped.
 */
@Injectable()
export class JobWorkerHost implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('JobWorkerHost');
  private readonly workers: Worker[] = [];
  private readonly connections: RedisClient[] = [];
  private handlers = new Map<JobName, DiscoveredHandler>();

  constructor(
    private readonly discovery: JobHandlerDiscovery,
    private readonly metrics: WorkerMetrics,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  /**
   * The handler set is checked before any host's onApplicationBootstrap: a worker that refuses to
   * boot must not have started the outbox relay or the audit sequencer, whose timers and connections
   * would outlive the refused context.
   */
  onModuleInit(): void {
    this.handlers = buildHandlerRegistry(this.discovery.discover());
  }

  onApplicationBootstrap(): void {
    for (const queue of QUEUES) {
      this.workers.push(this.startWorker(queue));
    }
    this.logger.log({ queues: QUEUES, jobs: [...this.handlers.keys()] }, 'consuming queues');
  }

  private startWorker(queue: QueueName): Worker {
    const connection = createRedisConnection(this.config, 'queue-worker');
    this.connections.push(connection);
    const worker = new Worker(queue, (job) => this.run(job), {
      connection,
      prefix: this.config.redis.keyPrefix,
      concurrency: this.config.worker.concurrency,
      lockDuration: this.config.worker.lockDurationMs,
      stalledInterval: Math.max(1000, Math.floor(this.config.worker.lockDurationMs / 2)),
      autorun: true,
    });
    worker.on('failed', (job, error) =>
      this.logger.warn({ jobId: job?.id, job: job?.name, attempt: job?.attemptsMade, err: error.message }, 'job failed'),
    );
    worker.on('completed', (job) => this.logger.log({ jobId: job.id, job: job.name }, 'job completed'));
    worker.on('error', (error) => this.logger.error({ queue, err: error.message }, 'queue error'));
    return worker;
  }

  private async run(job: Job): Promise<unknown> {
    const name = job.name as JobName;
    const handler = this.handlers.get(name);
    if (handler === undefined || JOB_CATALOG[name] === undefined) {
      throw new UnrecoverableError(`no handler for job "${job.name}"`);
    }
    let payload: unknown;
    try {
      payload = validateJobPayload(name, job.data);
    } catch (error) {
      if (error instanceof InvalidJobPayloadError) {
        // Retrying cannot fix a malformed payload; fail it once, visibly.
        throw new UnrecoverableError(error.message);
      }
      throw error;
    }
    this.logger.log({ jobId: job.id, job: job.name, attempt: job.attemptsMade + 1 }, 'job started');
    const dueAt = job.attemptsMade === 0 ? job.timestamp + (job.opts.delay ?? 0) : undefined;
    return this.metrics.timeJob(job.name, dueAt, () => handler.run(payload, { jobId: job.id ?? '', attempt: job.attemptsMade + 1 }));
  }

  async onApplicationShutdown(signal?: string): Promise<void> {
    const grace = this.config.worker.shutdownGraceMs;
    this.logger.log({ signal, graceMs: grace }, 'stopping: no new jobs, waiting for running ones');
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.all(this.workers.map((w) => w.close())).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), grace);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) {
      this.logger.warn({ graceMs: grace }, 'running jobs outlived the grace period; leaving them to stalled-job recovery');
      await Promise.all(this.workers.map((w) => w.close(true)));
    }
    for (const connection of this.connections) {
      connection.disconnect();
    }
    this.logger.log('stopped');
  }
}
