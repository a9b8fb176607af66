import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each machine group's own attestation interval (issue 12 item 7), owned by libs/machines'
 * GroupIntervalsRepository: a group without a row is held to MACHINE_ATTESTATION_INTERVAL_MS. Its
 * own table rather than a column of `pcr_policies`: a group needs a liveness interval whether or
 * not it has a PCR policy, removing a policy must not reset it, and the liveness queries of
 * libs/machines join it (docs/decisions.md, "Per-group attestation intervals").
 *
 * `group_name` is not a foreign key: groups exist only as the `group_name` of machines (and of
 * policies), so an interval may be set before the inventory import that brings the group's machines.
 * The bounds repeat the API contract's (10 s – 31 days) so a hand-written row cannot stop liveness.
 */
export class GroupAttestationIntervals1764800000000 implements MigrationInterface {
  name = 'GroupAttestationIntervals1764800000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE group_attestation_intervals (
        group_name        text        PRIMARY KEY CHECK (group_name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
        interval_seconds  integer     NOT NULL CHECK (interval_seconds BETWEEN 10 AND 2678400),
        updated_at        timestamptz NOT NULL,
        updated_by        text        NOT NULL
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE group_attestation_intervals');
  }
}
