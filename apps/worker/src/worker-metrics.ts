import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { AuditLog, AuditSequencer } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { JobQueue } from '@rackseal/jobs';
import { MetricsRegistry, registerAuditGauges, registerQueueGauges } from '@rackseal/metrics';
import { Counter, type Histogram } from 'prom-client';

/** Seconds: a seal takes milliseconds, a reconcile pass over a large fleet seconds, a wait after a backoff minutes. */
const JOB_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The worker's registry, served by its METRICS_PORT listener (it has no HTTP API): its own job
 * timings, whether it holds the audit sequencer lock, and the fleet-wide queue depths (Redis) and
 * audit backlog (PostgreSQL), read at scrape time.
 */
@Injectable()
export class WorkerMetrics implements OnModuleInit {
  private readonly duration: Histogram<'job' | 'outcome'>;
  private readonly wait: Histogram<'job'>;

  constructor(
    private readonly metrics: MetricsRegistry,
    private readonly audit: AuditLog,
    private readonly sequencer: AuditSequencer,
    private readonly queue: JobQueue,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {
    this.duration = metrics.histogram(
      'rackseal_job_duration_seconds',
      'Job attempts run by this worker, by job name and outcome (completed, failed: a failed attempt is retried with backoff until its last).',
      ['job', 'outcome'],
      JOB_BUCKETS,
    );
    this.wait = metrics.histogram(
      'rackseal_job_wait_seconds',
      'How long a job waited between becoming due (enqueued, or its delay or backoff over) and this worker starting it, by job name.',
      ['job'],
      JOB_BUCKETS,
    );
  }

  onModuleInit(): void {
    registerAuditGauges(this.metrics, this.audit, this.config.audit.maxMergeDelayMs);
    registerQueueGauges(this.metrics, this.queue);
    const sequencer = this.sequencer;
    const active = this.metrics.gauge('rackseal_audit_sequencer_active', 'Whether this worker holds the audit sequencer lock (1): exactly one worker of the deployment should.');
    // Read when scraped: the lock can move between workers at any time.
    this.metrics.addSource({
      name: 'sequencer',
      refresh: () => {
        active.set(sequencer.isSequencer ? 1 : 0);
        return Promise.resolve();
      },
      clear: () => active.set(0),
    });
    // This worker's own sequencer work, copied from AuditSequencer.stats at each scrape.
    const stat = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [this.metrics.registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    stat('rackseal_audit_sequencer_integrated_records_total', 'Audit records this worker integrated into the tree while it held the sequencer lock.', () => sequencer.stats.integratedRecords);
    stat('rackseal_audit_sequencer_checkpoints_signed_total', 'Checkpoints this worker signed while it held the sequencer lock.', () => sequencer.stats.signedCheckpoints);
    stat('rackseal_audit_sequencer_failures_total', 'Failed sequencer attempts in this worker (each retried after a backoff; the error is logged).', () => sequencer.stats.failures);
  }

  /**
   * Times one attempt of a job. `dueAt` (ms since the epoch) is when a first attempt could have
   * started: its enqueue time plus its delay; a retry's due time (after its backoff) is not kept by
   * BullMQ, so retries are timed but add no wait.
   */
  async timeJob<T>(job: string, dueAt: number | undefined, run: () => Promise<T>): Promise<T> {
    if (dueAt !== undefined) {
      this.wait.observe({ job }, Math.max(0, Date.now() - dueAt) / 1000);
    }
    const end = this.duration.startTimer({ job });
    try {
      const result = await run();
      end({ outcome: 'completed' });
      return result;
    } catch (error) {
      end({ outcome: 'failed' });
      throw error;
    }
  }
}
