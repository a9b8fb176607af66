import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Secrets and cluster CAs (issue 13 items 3-4, docs/decisions.md "Secrets and cluster CAs"), every
 * table owned by libs/secrets (ClusterCasRepository, SecretsRepository):
 *
 * - `cluster_cas`: at most one CA per kind (`tls`, created on first use or imported; `kubernetes`,
 *   imported only): its certificate in the clear and its private key (PKCS#8) sealed under the
 *   master key with `cluster-ca:<id>` as context.
 * - `secrets`: a definition — name, kind, target (a group or one machine), binding, parameters (SAN
 *   templates, validity, sizes; never material).
 * - `secret_versions`: numbered versions of a secret; an opaque secret's one value is sealed here
 *   (`secret-version:<id>`).
 * - `secret_materials`: a per-machine kind's material of one version for one machine (the private
 *   key or the random bytes, sealed with `secret-material:<id>`), with the public parts in the clear
 *   (certificate, kubelet.conf). Unique per (version, machine): creating it is a conditional insert,
 *   so two deliveries asking for it at once get one row.
 */
export class Secrets1765200000000 implements MigrationInterface {
  name = 'Secrets1765200000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE cluster_cas (
        id               uuid        PRIMARY KEY,
        kind             text        NOT NULL UNIQUE CHECK (kind IN ('tls', 'kubernetes')),
        origin           text        NOT NULL CHECK (origin IN ('created', 'imported')),
        certificate_pem  text        NOT NULL CHECK (length(certificate_pem) BETWEEN 1 AND 65536),
        fingerprint      text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
        subject          text        NOT NULL,
        key_algorithm    text        NOT NULL CHECK (key_algorithm ~ '^[a-z0-9-]{1,32}$'),
        not_before       timestamptz NOT NULL,
        not_after        timestamptz NOT NULL,
        key_sealed       bytea       NOT NULL,
        created_at       timestamptz NOT NULL,
        created_by       text        NOT NULL,
        CHECK (origin = 'imported' OR kind = 'tls')
      )`);
    await db.query(`
      CREATE TABLE secrets (
        id                 uuid        PRIMARY KEY,
        name               text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
        kind               text        NOT NULL CHECK (kind IN ('tls', 'disk', 'opaque', 'kubelet-client')),
        target_group       text,
        target_machine_id  uuid        REFERENCES machines (id),
        binding            text        NOT NULL CHECK (binding IN ('certified-key', 'pcr-sealed')),
        parameters         jsonb       NOT NULL,
        created_at         timestamptz NOT NULL,
        created_by         text        NOT NULL,
        CHECK ((target_group IS NULL) <> (target_machine_id IS NULL))
      )`);
    await db.query(`
      CREATE TABLE secret_versions (
        id            uuid        PRIMARY KEY,
        secret_id     uuid        NOT NULL REFERENCES secrets (id),
        version       integer     NOT NULL CHECK (version >= 1),
        value_sealed  bytea,
        created_at    timestamptz NOT NULL,
        created_by    text        NOT NULL,
        UNIQUE (secret_id, version)
      )`);
    await db.query(`
      CREATE TABLE secret_materials (
        id                  uuid        PRIMARY KEY,
        version_id          uuid        NOT NULL REFERENCES secret_versions (id),
        machine_id          uuid        NOT NULL REFERENCES machines (id),
        material_sealed     bytea       NOT NULL,
        certificate_pem     text,
        certificate_serial  text        CHECK (certificate_serial ~ '^[0-9a-f]{1,40}$'),
        not_after           timestamptz,
        kubelet_conf        text,
        created_at          timestamptz NOT NULL,
        UNIQUE (version_id, machine_id)
      )`);
    // A machine's materials (issue 14's deliveries look them up by machine).
    await db.query('CREATE INDEX secret_materials_machine ON secret_materials (machine_id)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE secret_materials');
    await db.query('DROP TABLE secret_versions');
    await db.query('DROP TABLE secrets');
    await db.query('DROP TABLE cluster_cas');
  }
}
