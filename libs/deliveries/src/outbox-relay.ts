import { hostname } from 'node:os';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { DELIVERY_JOBS, JobQueue, ROTATION_JOBS } from '@rackseal/jobs';
import { Clock } from '@rackseal/platform';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { DELIVERY_OUTBOX_CHANNEL, DeliveriesRepository } from './deliveries.repository';

/** Outbox rows relayed per transaction. */
const RELAY_BATCH = 500;
/** The fallback poll: a notification missed while the LISTEN connection was down waits at most this long. */
export const RELAY_POLL_MS = 5000;

/**
 * Moves `delivery_outbox` rows to BullMQ: in one transaction it locks a batch (FOR UPDATE SKIP
 * LOCKED, so two workers take disjoint rows), adds their `delivery.deliver` (or `delivery.prewrap`) jobs (deterministic ids:
 * a row relayed again after a crash between the add and the commit is the same job) and marks them
 * enqueued. Woken by the deciding transactions' NOTIFY (on a LISTEN connection of its own) and by a
 * poll every RELAY_POLL_MS, which also upserts the job schedulers of the reconciler and the rotation
 * check (a Redis that lost its data lost the schedules too).
 */
@Injectable()
export class OutboxRelay {
  private readonly logger = new Logger('OutboxRelay');
  private readonly name = `${hostname()}:${process.pid}`;
  private listener: Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveriesRepository,
    private readonly jobs: JobQueue,
    private readonly clock: Clock,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  start(): void {
    this.stopped = false;
    void this.listen();
    this.timer = setInterval(() => void this.tick(), RELAY_POLL_MS);
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
    await this.running;
  }

  /** Relays until the outbox has nothing left; concurrent wake-ups fold into one more pass. */
  wake(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          while ((await this.relayBatch()) === RELAY_BATCH && !this.stopped) {
            // a full batch: there may be more
          }
        } while (this.again && !this.stopped);
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'outbox relay pass failed; the next wake-up or poll tries again');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** One batch: answers how many rows it relayed. */
  async relayBatch(): Promise<number> {
    return this.dataSource.transaction(async (m) => {
      const rows = await this.deliveries.claimOutbox(RELAY_BATCH, m);
      if (rows.length === 0) {
        return 0;
      }
      // Each row names its job: a delivery's seal, or a pre-wrap's (issue 14 item 6).
      for (const job of [DELIVERY_JOBS.deliver, DELIVERY_JOBS.prewrap] as const) {
        const of = rows.filter((r) => r.job === job);
        if (of.length > 0) {
          await this.jobs.enqueueMany(
            job,
            of.map((r) => ({ deliveryId: r.deliveryId, generation: r.generation })),
          );
        }
      }
      await this.deliveries.markEnqueued(
        rows.map((r) => r.outboxId),
        this.name,
        this.clock.now(),
        m,
      );
      return rows.length;
    });
  }

  private async tick(): Promise<void> {
    if (this.stopped) {
      return;
    }
    try {
      await this.jobs.schedule(DELIVERY_JOBS.reconcile, this.config.deliveries.reconcileIntervalMs, { trigger: 'schedule' });
      await this.jobs.schedule(ROTATION_JOBS.check, this.config.deliveries.rotationCheckIntervalMs, { trigger: 'schedule' });
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not upsert the reconciler and rotation schedules; the next poll tries again');
    }
    if (this.listener === undefined) {
      void this.listen();
    }
    await this.wake();
  }

  private async listen(): Promise<void> {
    if (this.stopped || this.listener !== undefined) {
      return;
    }
    const client = new Client({ connectionString: this.config.database.url, application_name: 'rackseal-outbox-relay' });
    this.listener = client;
    client.on('notification', () => void this.wake());
    client.on('error', () => {
      // The poll reconnects; until then it relays what notifications would have announced.
      if (this.listener === client) {
        this.listener = undefined;
      }
      void client.end().catch(() => undefined);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${DELIVERY_OUTBOX_CHANNEL}`);
      if (this.stopped) {
        await client.end();
      }
    } catch {
      if (this.listener === client) {
        this.listener = undefined;
      }
      void client.end().catch(() => undefined);
    }
  }
}
