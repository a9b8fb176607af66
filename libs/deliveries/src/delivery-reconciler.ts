import { Inject, Injectable, Logger } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { DELIVERY_JOBS, JobQueue } from '@rackseal/jobs';
import { Clock } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';
import { DELIVERIES_SYSTEM_ACTOR } from './delivery-planner';
import { OutboxRelay } from './outbox-relay';
import { VersionRetirement } from './version-retirement';

const PAGE = 1000;
/** Enqueued outbox rows are kept this long (what the operator can still see of a relay), then pruned. */
const OUTBOX_RETENTION_MS = 24 * 3600 * 1000;

export interface ReconcileReport {
  readonly relayed: number;
  readonly requeued: number;
  readonly expired: number;
  readonly cancelled: number;
  readonly pruned: number;
  /** Versions whose retirement an ack's process left undone (stopped after the ack's commit). */
  readonly retired: number;
}

/**
 * The `delivery.reconcile` job (a BullMQ job scheduler: one schedule however many workers). PostgreSQL
 * is the truth and Redis a cache of it: the job of every pending delivery whose outbox row was
 * relayed more than one interval ago is added again — a no-op while the job exists (its id is
 * deterministic), a rebuilt job when Redis lost it; leftover outbox rows are relayed; deliveries past
 * expires_at expire (`delivery.expired`, one record per batch); live deliveries of retired versions
 * that a retirement skipped are cancelled; a retirement an ack left undone (its process stopped after
 * the ack's commit) is done; old relayed outbox rows are pruned.
 */
@Injectable()
export class DeliveryReconciler {
  private readonly logger = new Logger('DeliveryReconciler');

  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveriesRepository,
    private readonly relay: OutboxRelay,
    private readonly jobs: JobQueue,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly retirement: VersionRetirement,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  async run(): Promise<ReconcileReport> {
    let relayed = 0;
    for (let n = await this.relay.relayBatch(); n > 0; n = await this.relay.relayBatch()) {
      relayed += n;
    }
    const now = this.clock.now();
    const enqueuedBefore = new Date(now.getTime() - this.config.deliveries.reconcileIntervalMs);
    let requeued = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.deliveries.pendingRounds(after, enqueuedBefore, PAGE);
      for (const job of [DELIVERY_JOBS.deliver, DELIVERY_JOBS.prewrap] as const) {
        await this.jobs.enqueueMany(job, page.filter((r) => r.job === job).map((r) => ({ deliveryId: r.deliveryId, generation: r.generation })));
      }
      requeued += page.length;
      if (page.length < PAGE) {
        break;
      }
      after = page[page.length - 1]!.deliveryId;
    }
    let expired = 0;
    for (;;) {
      const batch = await this.dataSource.transaction(async (m) => {
        const rows = await this.deliveries.expire(now, PAGE, m);
        if (rows.length > 0) {
          await this.audit.append(
            { actor: DELIVERIES_SYSTEM_ACTOR, action: 'delivery.expired', subject: 'deliveries', outcome: 'success', details: { count: rows.length, deliveryIds: rows.map((r) => r.id) } },
            m,
          );
        }
        return rows.length;
      });
      expired += batch;
      if (batch < PAGE) {
        break;
      }
    }
    // Before the cancellation below: a retirement done here cancels what it can, the rest follows.
    const retired = await this.retirement.sweep(now, PAGE);
    // Live deliveries of retired versions a retirement skipped (an old version's ack was in flight).
    const cancelled = await this.dataSource.transaction(async (m) => {
      const ids = await this.deliveries.cancelRetired(now, PAGE, m);
      if (ids.length > 0) {
        await this.audit.append(
          { actor: DELIVERIES_SYSTEM_ACTOR, action: 'delivery.cancelled', subject: 'deliveries', outcome: 'success', details: { reason: 'version retired', count: ids.length, deliveryIds: ids } },
          m,
        );
      }
      return ids.length;
    });
    const pruned = await this.deliveries.pruneOutbox(new Date(now.getTime() - OUTBOX_RETENTION_MS));
    const report = { relayed, requeued, expired, cancelled, pruned, retired };
    this.logger.log(report, 'deliveries reconciled');
    return report;
  }
}
