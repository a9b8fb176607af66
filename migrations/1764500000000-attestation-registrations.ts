import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The enrollment protocol's state (libs/attestation, docs/architecture.md §4.3), both tables owned by
 * libs/attestation's repository:
 *
 * - `attestation_registrations`: one row per start call, holding everything the finish call checks
 *   together — the EK, the AK and its Name, the nonce, the PCR selection and the deadline — so no
 *   check is made against another record's data (Keylime PYSEC-2022-184). The credential secret is
 *   stored sealed (libs/envelope, context `attestation-registration:<id>`). `finished_at` makes a
 *   registration single-use: the finish call sets it with a conditional UPDATE, whichever replica
 *   serves it. `outcome` and the failure columns say how it ended.
 * - `node_credentials`: the node credential each successful attestation derives, its key sealed
 *   (context `node-credential:<credential_id>`); a machine has at most one live (revoked_at NULL).
 * - `pcr_policies`: each machine group's PCR policy (libs/pcr-policy's JSON shape, validated by
 *   parsePcrPolicy on write and again on read), which the finish call evaluates.
 */
export class AttestationRegistrations1764500000000 implements MigrationInterface {
  name = 'AttestationRegistrations1764500000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE attestation_registrations (
        id              uuid        PRIMARY KEY,
        machine_id      uuid        NOT NULL REFERENCES machines (id),
        previous_state  text        NOT NULL CHECK (previous_state IN ('imported', 'attested', 'quarantined')),
        ek_pub_hash     text        NOT NULL CHECK (ek_pub_hash ~ '^[0-9a-f]{64}$'),
        ek_public       bytea       NOT NULL CHECK (length(ek_public) <= 1024),
        ak_public       bytea       NOT NULL CHECK (length(ak_public) <= 1024),
        ak_name         bytea       NOT NULL CHECK (length(ak_name) BETWEEN 4 AND 66),
        secret_sealed   bytea       NOT NULL CHECK (length(secret_sealed) <= 512),
        nonce           bytea       NOT NULL CHECK (length(nonce) = 32),
        pcr_bank        text        NOT NULL CHECK (length(pcr_bank) BETWEEN 1 AND 16),
        pcrs            smallint[]  NOT NULL,
        created_at      timestamptz NOT NULL,
        deadline        timestamptz NOT NULL,
        finished_at     timestamptz,
        outcome         text        CHECK (outcome IN ('attested', 'quarantined', 'refused', 'superseded')),
        failure_code    text        CHECK (length(failure_code) <= 100),
        failure_reason  text        CHECK (length(failure_reason) <= 2000),
        failure_explanation jsonb,
        CHECK (deadline > created_at),
        CHECK ((finished_at IS NULL) = (outcome IS NULL))
      )`);
    // The open registrations of a machine (a new start supersedes them) and the history per machine.
    await db.query('CREATE INDEX attestation_registrations_machine ON attestation_registrations (machine_id, created_at)');
    await db.query(`
      CREATE TABLE node_credentials (
        credential_id   text        PRIMARY KEY CHECK (credential_id ~ '^[0-9a-f]{32}$'),
        machine_id      uuid        NOT NULL REFERENCES machines (id),
        registration_id uuid        NOT NULL UNIQUE REFERENCES attestation_registrations (id),
        key_sealed      bytea       NOT NULL CHECK (length(key_sealed) <= 512),
        created_at      timestamptz NOT NULL,
        revoked_at      timestamptz
      )`);
    await db.query('CREATE UNIQUE INDEX node_credentials_live ON node_credentials (machine_id) WHERE revoked_at IS NULL');
    await db.query(`
      CREATE TABLE pcr_policies (
        group_name  text        PRIMARY KEY CHECK (length(group_name) BETWEEN 1 AND 64),
        policy      jsonb       NOT NULL,
        updated_at  timestamptz NOT NULL,
        updated_by  text        NOT NULL CHECK (length(updated_by) BETWEEN 1 AND 200)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE pcr_policies');
    await db.query('DROP TABLE node_credentials');
    await db.query('DROP TABLE attestation_registrations');
  }
}
