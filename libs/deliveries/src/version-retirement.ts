import { Injectable, Logger } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { SecretsRepository } from '@rackseal/secrets';
import { DataSource, type EntityManager } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';
import { DELIVERIES_SYSTEM_ACTOR } from './delivery-planner';

/**
 * Old versions retire when every target acked the new one (issue 14 item 5), decided right after the
 * commit of the ack batch that completes it, in a short transaction of its own
 * (`afterCommittedAck`): each batch checks after its commit, so of two batches committing at once
 * the one that committed last sees both; the version's row is locked (only when nothing unfinished
 * was seen) and the older versions retired by a conditional update, so two checks retire once.
 * A process that stops between the commit and the check leaves it to `sweep` (the reconciler). "Every target" is every delivery of
 * the version: none left pending, ready or failed (cancelled and expired ones are machines revoked
 * or gone silent, which must not hold a rotation open; a failed one may still be retried). The
 * versions before it are retired (`secret_versions.retired_at`) and their live deliveries cancelled:
 * their machines hold the newer one. Audited `secret.versions-retired`.
 */
@Injectable()
export class VersionRetirement {
  private readonly logger = new Logger('VersionRetirement');

  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveriesRepository,
    private readonly secrets: SecretsRepository,
    private readonly audit: AuditLog,
  ) {}

  /**
   * After an ack batch that acked deliveries of `versionId` committed: most batches are not the
   * last and stop at the lock-free EXISTS; the last one (or two) retire in a transaction. A failure
   * is logged, not thrown — the acks are committed and answered; the reconciler's sweep retires.
   */
  async afterCommittedAck(versionId: string, at: Date): Promise<void> {
    try {
      if (await this.deliveries.hasUnfinished(versionId, this.dataSource.manager)) {
        return;
      }
      await this.dataSource.transaction((m) => this.afterAck(versionId, at, m));
    } catch (error) {
      this.logger.warn({ versionId, error: error instanceof Error ? error.name : 'unknown' }, 'retirement check after an ack failed: the reconciler retries it');
    }
  }

  /**
   * Up to `limit` versions an ack completed whose retirement did not happen (the process stopped
   * after the ack's commit): each checked as the ack would have. Answers how many retired something.
   */
  async sweep(at: Date, limit: number): Promise<number> {
    let retired = 0;
    for (const versionId of await this.deliveries.retirableVersions(limit)) {
      if (await this.dataSource.transaction((m) => this.afterAck(versionId, at, m))) {
        retired += 1;
      }
    }
    return retired;
  }

  /** The check itself, in `m`'s transaction; answers whether it retired versions. */
  async afterAck(versionId: string, at: Date, m: EntityManager): Promise<boolean> {
    const version = await this.secrets.lockVersion(versionId, m);
    if (version === undefined || version.retiredAt !== null || version.version === 1) {
      return false;
    }
    if (await this.deliveries.hasUnfinished(versionId, m)) {
      return false;
    }
    const retired = await this.secrets.retireOlder(version.secretId, version.version, at, m);
    if (retired.length === 0) {
      return false;
    }
    const cancelled = await this.deliveries.cancelForVersions(
      retired.map((v) => v.id),
      at,
      m,
    );
    await this.audit.append(
      {
        actor: DELIVERIES_SYSTEM_ACTOR,
        action: 'secret.versions-retired',
        subject: `secret-version:${version.id}`,
        outcome: 'success',
        details: { id: version.secretId, version: version.version, retired: retired.map((v) => v.version), cancelledDeliveries: cancelled.length },
      },
      m,
    );
    return true;
  }
}
