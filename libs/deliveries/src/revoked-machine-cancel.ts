import type { DataSource, EntityManager } from 'typeorm';
import type { DeliveriesRepository } from './deliveries.repository';

/**
 * A job's delivery or pre-wrap whose machine is gone or revoked by the time the job runs
 * (RevokedMachineDeliveries cancels the live ones at the revoke; a job already queued may still
 * come): cancelled instead of sealed, in one transaction with its `delivery.cancelled` record, which
 * `audit` appends. Safe to run twice: the cancel is conditional, and only the run that changed the
 * row audits.
 */
export async function cancelForRevokedMachine(dataSource: DataSource, deliveries: DeliveriesRepository, deliveryId: string, at: Date, audit: (m: EntityManager) => Promise<void>): Promise<'cancelled' | 'no-op'> {
  const cancelled = await dataSource.transaction(async (m) => {
    const row = await deliveries.cancel(deliveryId, at, m);
    if (row !== undefined) {
      await audit(m);
    }
    return row;
  });
  return cancelled === undefined ? 'no-op' : 'cancelled';
}
