import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What an operator reads about a machine's attestations (libs/machines, docs/architecture.md §3, §4.8):
 *
 * - `first_attested_at`, `last_attested_at`: the first and the latest successful attestation, set
 *   together (MachinesRepository.recordAttested), so one is null exactly when the other is.
 * - `last_failure`: the latest refused attestation as `{ at, code, reason, explanation[], registrationId? }`
 *   (MachinesRepository.recordFailure); kept after a later success, so a flapping machine shows why.
 * - `machines_not_attested`: "not attested since T" (`last_attested_at IS NULL OR last_attested_at < T`,
 *   revoked machines left out) is the fleet liveness query behind GET /v1/machines?notAttestedSince=
 *   and /metrics (issue 12 item 7). A partial index on last_attested_at serves both arms of the OR
 *   (a btree finds NULLs too) and leaves revoked machines, which are never attested again, out of it.
 */
export class MachineAttestationRecord1764400000000 implements MigrationInterface {
  name = 'MachineAttestationRecord1764400000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      ALTER TABLE machines
        ADD COLUMN first_attested_at timestamptz,
        ADD COLUMN last_attested_at  timestamptz,
        ADD COLUMN last_failure      jsonb,
        ADD CONSTRAINT machines_attested_at_check CHECK (
          (first_attested_at IS NULL) = (last_attested_at IS NULL) AND first_attested_at <= last_attested_at),
        ADD CONSTRAINT machines_last_failure_check CHECK (
          jsonb_typeof(last_failure) = 'object'
          AND last_failure ?& array['at', 'code', 'reason', 'explanation']
          AND jsonb_typeof(last_failure -> 'at') = 'string'
          AND jsonb_typeof(last_failure -> 'code') = 'string'
          AND jsonb_typeof(last_failure -> 'reason') = 'string'
          AND jsonb_typeof(last_failure -> 'explanation') = 'array'
          AND length(last_failure::text) <= 65536)`);
    await db.query(`CREATE INDEX machines_not_attested ON machines (last_attested_at NULLS FIRST) WHERE state <> 'revoked'`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP INDEX machines_not_attested');
    await db.query(`
      ALTER TABLE machines
        DROP CONSTRAINT machines_last_failure_check,
        DROP CONSTRAINT machines_attested_at_check,
        DROP COLUMN last_failure,
        DROP COLUMN last_attested_at,
        DROP COLUMN first_attested_at`);
  }
}
