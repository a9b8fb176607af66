import type { Machine, MachinesRepository } from '@rackseal/machines';
import type { EntityManager } from 'typeorm';
import type { StoredSecret } from './secrets.repository';

/** Machines read per page when listing a group's attested machines. */
const MACHINE_PAGE = 500;

/**
 * The attested machines of a secret's target (its one machine, or its group's), read in the
 * caller's transaction `m` (a second pool connection taken while `m` holds one can wait for ever on
 * a small pool: docs/decisions.md "Issue 13 after the intruder pass") and locked FOR SHARE: a machine
 * read as attested stays attested until `m` ends, so the material made for it is not refused half-way
 * because its agent started a scheduled re-attestation (which waits for `m` instead).
 */
export async function attestedTargetsOf(machines: MachinesRepository, secret: Pick<StoredSecret, 'targetMachineId' | 'targetGroup'>, m: EntityManager): Promise<Machine[]> {
  if (secret.targetMachineId !== null) {
    const [machine] = await machines.list({ id: secret.targetMachineId, state: 'attested', limit: 1, lockForShare: true }, m);
    return machine === undefined ? [] : [machine];
  }
  const found: Machine[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await machines.list({ group: secret.targetGroup!, state: 'attested', after, limit: MACHINE_PAGE, lockForShare: true }, m);
    found.push(...page);
    if (page.length < MACHINE_PAGE) {
      return found;
    }
    after = page[page.length - 1]!.serial;
  }
}
