import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Key certification (issue 13 item 1, docs/architecture.md §4.4), both tables owned by
 * libs/attestation's CertifiedKeysRepository:
 *
 * - `key_challenges`: the server nonces a machine asks for before a TPM2_Certify
 *   (`POST /node/v1/keys/challenges`), each bound to the machine and the credential that asked,
 *   with a deadline. `consumed_at` makes one single-use: the certify call sets it with a conditional
 *   UPDATE whichever replica serves it. Rows past their deadline are deleted when the same machine
 *   asks for its next challenge.
 * - `certified_keys`: each TPM-resident decrypt key a machine's AK certified, with the
 *   registration (whose AK signed) and node credential it was certified under, its TPMT_PUBLIC as
 *   the TPM marshalled it (its Name is nameAlg ‖ H(those bytes)), and when and why it was retired.
 *   At most one live key per machine (the partial unique index): a new certification retires the
 *   previous key in its transaction, and so does revoking the machine.
 */
export class CertifiedKeys1764900000000 implements MigrationInterface {
  name = 'CertifiedKeys1764900000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE key_challenges (
        nonce          bytea       PRIMARY KEY CHECK (length(nonce) = 32),
        machine_id     uuid        NOT NULL REFERENCES machines (id),
        credential_id  text        NOT NULL REFERENCES node_credentials (credential_id),
        created_at     timestamptz NOT NULL,
        deadline       timestamptz NOT NULL,
        consumed_at    timestamptz,
        CHECK (deadline > created_at)
      )`);
    // A machine's expired challenges, deleted when it asks for the next one.
    await db.query('CREATE INDEX key_challenges_machine ON key_challenges (machine_id, deadline)');
    await db.query(`
      CREATE TABLE certified_keys (
        id               uuid        PRIMARY KEY,
        machine_id       uuid        NOT NULL REFERENCES machines (id),
        registration_id  uuid        NOT NULL REFERENCES attestation_registrations (id),
        credential_id    text        NOT NULL REFERENCES node_credentials (credential_id),
        public_area      bytea       NOT NULL CHECK (length(public_area) BETWEEN 10 AND 1024),
        name             bytea       NOT NULL CHECK (length(name) BETWEEN 4 AND 66),
        algorithm        text        NOT NULL CHECK (algorithm ~ '^[a-z0-9-]{1,32}$'),
        created_at       timestamptz NOT NULL,
        retired_at       timestamptz,
        retired_reason   text        CHECK (retired_reason IN ('rotated', 'machine-revoked')),
        CHECK ((retired_at IS NULL) = (retired_reason IS NULL))
      )`);
    await db.query('CREATE UNIQUE INDEX certified_keys_live ON certified_keys (machine_id) WHERE retired_at IS NULL');
    // A machine's keys, newest first (GET /v1/machines/:ref/keys).
    await db.query('CREATE INDEX certified_keys_machine ON certified_keys (machine_id, created_at)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE certified_keys');
    await db.query('DROP TABLE key_challenges');
  }
}
