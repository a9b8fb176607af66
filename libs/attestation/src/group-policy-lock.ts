import type { EntityManager } from 'typeorm';

/**
 * Serialises the changes of one group's policy and of its approvals (a promotion reads the policy,
 * adds a set and writes it back, then signs the approvals of the result; a group without a row has
 * nothing to lock with FOR UPDATE). Transaction-scoped.
 */
export async function lockGroupPolicy(group: string, m: EntityManager): Promise<void> {
  await m.query("SELECT pg_advisory_xact_lock(hashtextextended('pcr_policies:' || $1, 0))", [group]);
}
