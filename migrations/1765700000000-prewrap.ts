import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Pre-wrapped disk keys (issue 14 item 6, docs/decisions.md "Pre-wrapped disk keys"), on
 * libs/deliveries' tables (DeliveriesRepository):
 *
 * - `deliveries.state` gains `prewrap-pending` (planned by an import, its job sealing the disk key to
 *   the inventory's EK) and `prewrapped` (sealed, the envelope kept for the operator's export until
 *   the machine attests). A prewrapped row holds its envelope like a ready one; neither has an ack
 *   proof (nobody acks a pre-wrap: the normal delivery it becomes at attestation is acked).
 * - `delivery_outbox.job`: which job a round asks for, `delivery.deliver` or `delivery.prewrap`.
 */
export class Prewrap1765700000000 implements MigrationInterface {
  name = 'Prewrap1765700000000';

  async up(db: QueryRunner): Promise<void> {
    // The CHECKs of migration 1765500000000 were left unnamed: found by what they say.
    const checks = (await db.query(
      `SELECT conname FROM pg_constraint WHERE conrelid = 'deliveries'::regclass AND contype = 'c'
          AND (pg_get_constraintdef(oid) LIKE '%''expired''%' OR pg_get_constraintdef(oid) LIKE '%envelope IS NOT NULL%')`,
    )) as { conname: string }[];
    if (checks.length !== 2) {
      throw new Error(`migration 1765700000000: expected the state and envelope checks of deliveries, found ${checks.length}`);
    }
    for (const { conname } of checks) {
      await db.query(`ALTER TABLE deliveries DROP CONSTRAINT "${conname}"`);
    }
    await db.query(`ALTER TABLE deliveries ADD CONSTRAINT deliveries_state CHECK (state IN ('pending', 'ready', 'acked', 'failed', 'cancelled', 'expired', 'prewrap-pending', 'prewrapped'))`);
    await db.query(`ALTER TABLE deliveries ADD CONSTRAINT deliveries_envelope CHECK ((state IN ('ready', 'prewrapped')) = (envelope IS NOT NULL))`);
    await db.query(`ALTER TABLE deliveries ADD CONSTRAINT deliveries_prewrap_unproven CHECK (state NOT IN ('prewrap-pending', 'prewrapped') OR (ack_proof_hash IS NULL AND acked_at IS NULL))`);
    // The export (a machine's pre-wraps) and the attestation that turns them into deliveries.
    await db.query(`CREATE INDEX deliveries_prewraps_by_machine ON deliveries (machine_id) WHERE state IN ('prewrap-pending', 'prewrapped')`);
    await db.query(`ALTER TABLE delivery_outbox ADD COLUMN job text NOT NULL DEFAULT 'delivery.deliver' CHECK (job IN ('delivery.deliver', 'delivery.prewrap'))`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('ALTER TABLE delivery_outbox DROP COLUMN job');
    await db.query('DROP INDEX deliveries_prewraps_by_machine');
    await db.query(`DELETE FROM delivery_outbox WHERE delivery_id IN (SELECT id FROM deliveries WHERE state IN ('prewrap-pending', 'prewrapped'))`);
    await db.query(`DELETE FROM deliveries WHERE state IN ('prewrap-pending', 'prewrapped')`);
    await db.query('ALTER TABLE deliveries DROP CONSTRAINT deliveries_prewrap_unproven, DROP CONSTRAINT deliveries_envelope, DROP CONSTRAINT deliveries_state');
    await db.query(`ALTER TABLE deliveries ADD CHECK (state IN ('pending', 'ready', 'acked', 'failed', 'cancelled', 'expired'))`);
    await db.query(`ALTER TABLE deliveries ADD CHECK ((state = 'ready') = (envelope IS NOT NULL))`);
  }
}
