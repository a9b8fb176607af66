import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `machine_ima_observed.bytes`: what each round's kept digests take as policy JSON, so the server
 * keeps at most OBSERVED_BYTES_LIMIT per machine and boot (libs/attestation runtime-integrity-check)
 * besides at most 100,000 digests — 100,000 paths of 4 KiB were 400 MB per machine, and a capture
 * no policy could hold. Rows written before count 0: the boot's next round from entry 0 rewrites them.
 */
export class MachineImaObservedBytes1765910000000 implements MigrationInterface {
  name = 'MachineImaObservedBytes1765910000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query('ALTER TABLE machine_ima_observed ADD COLUMN bytes bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('ALTER TABLE machine_ima_observed DROP COLUMN bytes');
  }
}
