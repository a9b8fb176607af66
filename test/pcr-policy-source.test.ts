/**
 * The stored PCR policy source reads through the attestation call's transaction (found by the
 * attestation benchmark: with the policy read on a second pool connection, as many concurrent calls
 * as the pool has connections each held one and waited for another, and every call answered 503
 * after the pool's connect timeout). On a one-connection pool, a read through the transaction is
 * the only read that can succeed at all, and it sees the transaction's own uncommitted write.
 */
import { PcrPoliciesRepository, StoredPcrPolicySource } from '@rackseal/attestation';
import type { DataSource } from 'typeorm';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';

describe('StoredPcrPolicySource inside a transaction', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url, 1);
  }, 60_000);

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('reads the group policy through the given manager, on a pool of one connection, seeing its uncommitted write', async () => {
    const repository = new PcrPoliciesRepository(ds);
    const source = new StoredPcrPolicySource(repository);
    const seen = await ds.transaction(async (m) => {
      await repository.put('workers', FRESH_SWTPM_POLICY, 'test', new Date(), m);
      return { workers: await source.policyFor('workers', m), none: await source.policyFor('storage', m), noGroup: await source.policyFor(null, m) };
    });
    expect(seen).toEqual({ workers: FRESH_SWTPM_POLICY, none: undefined, noGroup: undefined });
  });
});
