import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `attestation_evidence` (libs/attestation owns it): what a machine measured, kept from each finish
 * call that got as far as a verified quote and a replaying event log — registrations that ended
 * `attested` or `quarantined`, never `refused` ones, whose values nothing vouches for. `policy
 * promote` turns a canary's latest evidence into an allowed set (docs/architecture.md §4.3): the
 * quoted PCR values (index → lowercase hex, the registration's bank) and the raw TCG event log the
 * agent sent (at most 1 MiB, the node API's limit), so later mismatches can be explained event by
 * event against it. Written in the finish transaction, one row per registration.
 */
export class AttestationEvidence1764600000000 implements MigrationInterface {
  name = 'AttestationEvidence1764600000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE attestation_evidence (
        registration_id uuid        PRIMARY KEY REFERENCES attestation_registrations (id),
        machine_id      uuid        NOT NULL REFERENCES machines (id),
        recorded_at     timestamptz NOT NULL,
        pcr_bank        text        NOT NULL CHECK (length(pcr_bank) BETWEEN 1 AND 16),
        pcr_values      jsonb       NOT NULL CHECK (jsonb_typeof(pcr_values) = 'object'),
        event_log       bytea       CHECK (length(event_log) <= 1048576)
      )`);
    // A machine's latest evidence (policy promote).
    await db.query('CREATE INDEX attestation_evidence_machine ON attestation_evidence (machine_id, recorded_at DESC)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE attestation_evidence');
  }
}
