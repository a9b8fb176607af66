import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The machine lifecycle as one state machine (libs/machines, docs/architecture.md §3):
 *
 * - `machines.state` gains `attesting` (a registration is under way, §4.3).
 * - `machine_transitions` keeps every state change with its reason and actor, appended by the same
 *   statement that changes the state (MachinesRepository.transition), so a change never lacks its
 *   history. `seq` orders them; the import that creates a machine is recorded by
 *   `machines.import_id` and the import's audit record, not here, so the bulk path stays one INSERT.
 */
export class MachineTransitions1764200000000 implements MigrationInterface {
  name = 'MachineTransitions1764200000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      ALTER TABLE machines DROP CONSTRAINT machines_state_check,
        ADD CONSTRAINT machines_state_check CHECK (state IN ('imported', 'attesting', 'attested', 'quarantined', 'revoked'))`);
    await db.query(`
      CREATE TABLE machine_transitions (
        seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        machine_id  uuid        NOT NULL REFERENCES machines (id),
        from_state  text        NOT NULL CHECK (from_state IN ('imported', 'attesting', 'attested', 'quarantined')),
        to_state    text        NOT NULL CHECK (to_state IN ('attesting', 'attested', 'quarantined', 'revoked')),
        reason      text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
        actor       text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
        at          timestamptz NOT NULL,
        CHECK (from_state <> to_state)
      )`);
    await db.query('CREATE INDEX machine_transitions_machine ON machine_transitions (machine_id, seq)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE machine_transitions');
    // Refused (by the CHECK) while a machine is attesting: finish or revoke those first.
    await db.query(`
      ALTER TABLE machines DROP CONSTRAINT machines_state_check,
        ADD CONSTRAINT machines_state_check CHECK (state IN ('imported', 'attested', 'quarantined', 'revoked'))`);
  }
}
