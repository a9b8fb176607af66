import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An index for MachinesRepository.otherWithHostname: before issuing a certificate that names a
 * machine's hostname (a tls SAN from `{hostname}`, a kubelet client's `system:node:<hostname>`),
 * libs/secrets asks whether another machine that is not revoked has it (docs/decisions.md "Issue 13
 * after the intruder pass"). Asked once per machine of a group's secret, so it must not scan the fleet.
 */
export class MachinesLiveHostname1765400000000 implements MigrationInterface {
  name = 'MachinesLiveHostname1765400000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`CREATE INDEX machines_live_hostname ON machines (hostname) WHERE state <> 'revoked' AND hostname IS NOT NULL`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP INDEX machines_live_hostname');
  }
}
