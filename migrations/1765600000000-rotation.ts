import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rotation and revocation (issue 14 items 5-7, docs/decisions.md "Rotation and revocation"), on
 * libs/secrets' tables (SecretsRepository):
 *
 * - `secret_versions.value_origin`: how an opaque version's value came to be, `generated` or
 *   `uploaded` — a revocation regenerates a generated value and can only flag an uploaded one (the
 *   server cannot invent the operator's value). Null for per-machine kinds, and for opaque versions
 *   written before this migration (treated as uploaded: regenerating a value someone typed would
 *   break whatever uses it).
 * - `secret_versions.retired_at`: set once every delivery of a newer version was acked; a retired
 *   version's live deliveries are cancelled and it is never delivered again.
 * - `secrets.rotation_required_at` / `rotation_required_reason`: a shared uploaded value a revoked
 *   machine held, waiting for the operator's `rackseal secrets rotate NAME --value-file`; cleared by
 *   the next version.
 */
export class Rotation1765600000000 implements MigrationInterface {
  name = 'Rotation1765600000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE secret_versions ADD COLUMN value_origin text CHECK (value_origin IN ('generated', 'uploaded'))`);
    await db.query('ALTER TABLE secret_versions ADD COLUMN retired_at timestamptz');
    await db.query('ALTER TABLE secrets ADD COLUMN rotation_required_at timestamptz');
    await db.query(`ALTER TABLE secrets ADD COLUMN rotation_required_reason text CHECK (length(rotation_required_reason) BETWEEN 1 AND 500)`);
    await db.query('ALTER TABLE secrets ADD CONSTRAINT secrets_rotation_required_reason CHECK ((rotation_required_at IS NULL) = (rotation_required_reason IS NULL))');
    // Revocation: a machine's deliveries by state (the held shared secrets, the live ones to cancel).
    await db.query('CREATE INDEX deliveries_by_version_state ON deliveries (version_id, state)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP INDEX deliveries_by_version_state');
    await db.query('ALTER TABLE secrets DROP CONSTRAINT secrets_rotation_required_reason');
    await db.query('ALTER TABLE secrets DROP COLUMN rotation_required_reason');
    await db.query('ALTER TABLE secrets DROP COLUMN rotation_required_at');
    await db.query('ALTER TABLE secret_versions DROP COLUMN retired_at');
    await db.query('ALTER TABLE secret_versions DROP COLUMN value_origin');
  }
}
