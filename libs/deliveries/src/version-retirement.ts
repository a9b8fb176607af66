import { Injectable } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { SecretsRepository } from '@rackseal/secrets';
import type { EntityManager } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';
import { DELIVERIES_SYSTEM_ACTOR } from './delivery-planner';

/**
 * Old versions retire when every target acked the new one (issue 14 item 5), decided in the
 * transaction of the ack that completes it: the version's row is locked first, so of two acks
 * committing at once the later one sees the other's and retires. "Every target" is every delivery of
 * the version: none left pending, ready or failed (cancelled and expired ones are machines revoked
 * or gone silent, which must not hold a rotation open; a failed one may still be retried). The
 * versions before it are retired (`secret_versions.retired_at`) and their live deliveries cancelled:
 * their machines hold the newer one. Audited `secret.versions-retired`.
 */
@Injectable()
export class VersionRetirement {
  constructor(
    private readonly deliveries: DeliveriesRepository,
    private readonly secrets: SecretsRepository,
    private readonly audit: AuditLog,
  ) {}

  async afterAck(versionId: string, at: Date, m: EntityManager): Promise<void> {
    const version = await this.secrets.lockVersion(versionId, m);
    if (version === undefined || version.retiredAt !== null || version.version === 1) {
      return;
    }
    if (await this.deliveries.hasUnfinished(versionId, m)) {
      return;
    }
    const retired = await this.secrets.retireOlder(version.secretId, version.version, at, m);
    if (retired.length === 0) {
      return;
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
  }
}
