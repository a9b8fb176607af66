import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Runtime integrity (issue 17), owned by libs/attestation:
 * - `runtime_policies`: each machine group's runtime policy, the Keylime JSON as imported (its
 *   SHA-256 names it in audit records), and its own mode (enforce: a violation quarantines; warn:
 *   it is recorded). Validated by libs/ima before it is written and when it is read.
 * - `machine_ima_states`: per machine, libs/ima's incremental state (next entry, PCR 10 so far, the
 *   boot it belongs to) and the last runtime verdict the operator API shows.
 * - `machine_ima_observed`: the files and digests of the entries each round verified this boot, one
 *   row per round (appended, so a round writes only its new entries; cleared when a round starts from
 *   entry 0), which `policy runtime set --from-machine` turns into an allowlist.
 */
export class RuntimeIntegrity1765900000000 implements MigrationInterface {
  name = 'RuntimeIntegrity1765900000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE runtime_policies (
        group_name  text        PRIMARY KEY CHECK (length(group_name) BETWEEN 1 AND 64),
        policy      text        NOT NULL,
        sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        mode        text        NOT NULL CHECK (mode IN ('enforce', 'warn')),
        updated_at  timestamptz NOT NULL,
        updated_by  text        NOT NULL
      )`);
    await db.query(`
      CREATE TABLE machine_ima_states (
        machine_id  uuid        PRIMARY KEY REFERENCES machines (id),
        state       jsonb       NOT NULL,
        verdict     jsonb,
        updated_at  timestamptz NOT NULL
      )`);
    await db.query(`
      CREATE TABLE machine_ima_observed (
        machine_id   uuid    NOT NULL REFERENCES machines (id),
        first_entry  bigint  NOT NULL CHECK (first_entry >= 0),
        boot_time    text    NOT NULL,
        digests      jsonb   NOT NULL,
        ima_buf      jsonb   NOT NULL,
        count        integer NOT NULL CHECK (count >= 0),
        truncated    boolean NOT NULL,
        PRIMARY KEY (machine_id, first_entry)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE machine_ima_observed');
    await db.query('DROP TABLE machine_ima_states');
    await db.query('DROP TABLE runtime_policies');
  }
}
