import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Deliveries and their outbox (issue 14 items 1-2, docs/decisions.md "Deliveries and the mailbox"),
 * both owned by libs/deliveries (DeliveriesRepository):
 *
 * - `deliveries`: one per (secret version, machine). The state moves only by conditional updates
 *   (`… WHERE id = $1 AND state = 'pending' RETURNING`), so of two workers or two acks exactly one
 *   changes it. The envelope is there only while the delivery is ready (the agent's copy is what
 *   counts once acked); the ack proof only as its SHA-256. `last_error` is a code, never a message.
 * - `delivery_outbox`: the job each decision asks for, written in the decision's transaction; the
 *   worker's relay moves it to BullMQ and marks it enqueued, so a job exists if and only if its
 *   decision committed. One row per (delivery, generation): an operator's retry is a new generation.
 */
export class Deliveries1765500000000 implements MigrationInterface {
  name = 'Deliveries1765500000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE deliveries (
        id              uuid        PRIMARY KEY,
        secret_id       uuid        NOT NULL REFERENCES secrets (id),
        version_id      uuid        NOT NULL REFERENCES secret_versions (id),
        machine_id      uuid        NOT NULL REFERENCES machines (id),
        binding         text        NOT NULL CHECK (binding IN ('certified-key', 'pcr-sealed')),
        state           text        NOT NULL CHECK (state IN ('pending', 'ready', 'acked', 'failed', 'cancelled', 'expired')),
        generation      integer     NOT NULL DEFAULT 1 CHECK (generation >= 1),
        envelope        bytea,
        ack_proof_hash  bytea       CHECK (length(ack_proof_hash) = 32),
        attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error      text        CHECK (last_error ~ '^[a-z][a-z0-9-]*\\.[a-z0-9.-]{1,64}$'),
        created_at      timestamptz NOT NULL,
        ready_at        timestamptz,
        acked_at        timestamptz,
        expires_at      timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL,
        UNIQUE (version_id, machine_id),
        CHECK ((state = 'ready') = (envelope IS NOT NULL)),
        CHECK (state NOT IN ('ready', 'acked') OR (ack_proof_hash IS NOT NULL AND ready_at IS NOT NULL)),
        CHECK (state <> 'pending' OR (ack_proof_hash IS NULL AND ready_at IS NULL)),
        CHECK ((state = 'acked') = (acked_at IS NOT NULL))
      )`);
    // The mailbox: a machine's ready deliveries.
    await db.query(`CREATE INDEX deliveries_ready_by_machine ON deliveries (machine_id) WHERE state = 'ready'`);
    // The reconciler: pending ones (jobs to rebuild) and live ones past their expiry.
    await db.query(`CREATE INDEX deliveries_pending ON deliveries (id) WHERE state = 'pending'`);
    await db.query(`CREATE INDEX deliveries_live_expiry ON deliveries (expires_at) WHERE state IN ('pending', 'ready')`);
    // The operator's filters (keyset by id within each).
    await db.query('CREATE INDEX deliveries_state_id ON deliveries (state, id)');
    await db.query('CREATE INDEX deliveries_machine_id ON deliveries (machine_id, id)');
    await db.query('CREATE INDEX deliveries_secret_id ON deliveries (secret_id, id)');
    await db.query(`
      CREATE TABLE delivery_outbox (
        id           bigserial   PRIMARY KEY,
        delivery_id  uuid        NOT NULL REFERENCES deliveries (id),
        generation   integer     NOT NULL CHECK (generation >= 1),
        created_at   timestamptz NOT NULL,
        enqueued_at  timestamptz,
        enqueued_by  text,
        UNIQUE (delivery_id, generation),
        CHECK ((enqueued_at IS NULL) = (enqueued_by IS NULL))
      )`);
    await db.query('CREATE INDEX delivery_outbox_unsent ON delivery_outbox (id) WHERE enqueued_at IS NULL');
    await db.query('CREATE INDEX delivery_outbox_sent ON delivery_outbox (enqueued_at) WHERE enqueued_at IS NOT NULL');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE delivery_outbox');
    await db.query('DROP TABLE deliveries');
  }
}
