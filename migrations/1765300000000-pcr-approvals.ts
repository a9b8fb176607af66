import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * PCR approvals (issue 13 item 5, docs/decisions.md "PCR approvals (issue 13 item 5)"), every table
 * owned by libs/attestation (PcrApprovalsRepository):
 *
 * - `pcr_signing_keys`: the control plane's PCR-approval signing key (one row, purpose
 *   `pcr-approval`, created on first use: the unique purpose makes a concurrent creator's insert a
 *   no-op): its TPM2B_PUBLIC for TPM2_LoadExternal, its Name (what sealed objects' PolicyAuthorize
 *   binds) and its private key (PKCS#8) sealed under the master key (`pcr-signing-key:<id>`).
 * - `pcr_approval_epochs`: each group's current approval epoch (a group without a row is at 1);
 *   bumped when a policy change withdraws an approved state.
 * - `pcr_approvals`: one signed approval per (group, epoch, approvedPolicy): the allowed set's
 *   label, the PolicyPCR digest and the TPMT_SIGNATURE over SHA-256(approvedPolicy ‖ policyRef).
 *   Approvals of older epochs are kept (history) and no longer served.
 */
export class PcrApprovals1765300000000 implements MigrationInterface {
  name = 'PcrApprovals1765300000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE pcr_signing_keys (
        id            uuid        PRIMARY KEY,
        purpose       text        NOT NULL UNIQUE CHECK (purpose = 'pcr-approval'),
        algorithm     text        NOT NULL CHECK (algorithm ~ '^[a-z0-9-]{1,32}$'),
        public_area   bytea       NOT NULL CHECK (length(public_area) BETWEEN 1 AND 1024),
        name          bytea       NOT NULL CHECK (length(name) = 34),
        key_sealed    bytea       NOT NULL,
        created_at    timestamptz NOT NULL,
        created_by    text        NOT NULL
      )`);
    await db.query(`
      CREATE TABLE pcr_approval_epochs (
        group_name  text        PRIMARY KEY,
        epoch       integer     NOT NULL CHECK (epoch >= 1),
        updated_at  timestamptz NOT NULL,
        updated_by  text        NOT NULL
      )`);
    await db.query(`
      CREATE TABLE pcr_approvals (
        id               uuid        PRIMARY KEY,
        group_name       text        NOT NULL,
        epoch            integer     NOT NULL CHECK (epoch >= 1),
        label            text        NOT NULL CHECK (length(label) BETWEEN 1 AND 64),
        approved_policy  bytea       NOT NULL CHECK (length(approved_policy) = 32),
        signature        bytea       NOT NULL,
        signing_key_id   uuid        NOT NULL REFERENCES pcr_signing_keys (id),
        signed_at        timestamptz NOT NULL,
        signed_by        text        NOT NULL,
        UNIQUE (group_name, epoch, approved_policy)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE pcr_approvals');
    await db.query('DROP TABLE pcr_approval_epochs');
    await db.query('DROP TABLE pcr_signing_keys');
  }
}
