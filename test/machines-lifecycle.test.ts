/**
 * The machine lifecycle against real PostgreSQL (libs/machines, migration 1764200000000): a
 * transition is one conditional UPDATE that also writes its history row, so of two workers moving the
 * same machine from the same state exactly one wins and the other is told who got there first.
 */
import { randomUUID } from 'node:crypto';
import { MachineNotFoundError, MachinesRepository, MachineStateConflictError, MachineTransitionError, MachineTransitionReasonError } from '@rackseal/machines';
import type { DataSource } from 'typeorm';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';

describe('machines lifecycle (libs/machines)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let other: DataSource;
  let machines: MachinesRepository;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
    other = await openDataSource(db.url);
    machines = new MachinesRepository(ds);
  });

  afterAll(async () => {
    await other?.destroy();
    await ds?.destroy();
    await db?.drop();
  });

  /** A fresh machine in state `imported` (as an import leaves it). */
  async function importedMachine(): Promise<string> {
    const id = randomUUID();
    const hash = randomUUID().replace(/-/g, '').padEnd(64, '0');
    await ds.query(
      `INSERT INTO machines (id, serial, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, $3, 'imported', now(), now())`,
      [id, `SN-${id}`, hash],
    );
    return id;
  }

  async function stateOf(id: string): Promise<string> {
    const [row] = (await ds.query('SELECT state FROM machines WHERE id = $1', [id])) as { state: string }[];
    return row!.state;
  }

  async function transitionsOf(id: string): Promise<number> {
    const [row] = (await ds.query('SELECT count(*)::int AS n FROM machine_transitions WHERE machine_id = $1', [id])) as { n: number }[];
    return row!.n;
  }

  it('moves a machine and records the transition with its reason and actor', async () => {
    const id = await importedMachine();
    const at = new Date('2026-03-01T10:00:00.000Z');
    const moved = await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'registration 42 started', actor: 'system:test' }, at);
    expect(moved).toMatchObject({ id, state: 'attesting', updatedAt: at });
    const attested = await machines.transition({ machineId: id, from: 'attesting', to: 'attested', reason: 'quote matched policy web-v3', actor: 'system:test' }, at);
    expect(attested.state).toBe('attested');
    expect(await stateOf(id)).toBe('attested');
    const history = await machines.history(id);
    expect(history.map(({ from, to, reason, actor }) => ({ from, to, reason, actor }))).toEqual([
      { from: 'imported', to: 'attesting', reason: 'registration 42 started', actor: 'system:test' },
      { from: 'attesting', to: 'attested', reason: 'quote matched policy web-v3', actor: 'system:test' },
    ]);
    expect(history[0]!.seq).toBeLessThan(history[1]!.seq);
    expect((await machines.findByEkPubHash(moved.ekPubHash))?.state).toBe('attested');
  });

  it('lets exactly one of two concurrent transitions from the same state win (the loser waits on the row lock, then matches nothing)', async () => {
    const id = await importedMachine();
    // The first worker's transition is applied but not yet committed when the second one starts.
    const runner = ds.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    const first = await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'worker A', actor: 'worker:a' }, new Date(), runner.manager);
    expect(first.state).toBe('attesting');
    const second = new MachinesRepository(other).transition({ machineId: id, from: 'imported', to: 'revoked', reason: 'worker B', actor: 'worker:b' }, new Date());
    let secondSettled = false;
    void second.then(
      () => (secondSettled = true),
      () => (secondSettled = true),
    );
    // Blocked on the row lock while A's transaction is open.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(secondSettled).toBe(false);
    await runner.commitTransaction();
    await runner.release();
    await expect(second).rejects.toBeInstanceOf(MachineStateConflictError);
    await expect(second).rejects.toMatchObject({
      machineId: id,
      expected: 'imported',
      actual: 'attesting',
      to: 'revoked',
      message: `machine ${id} is attesting, not imported: it was not moved to revoked`,
    });
    expect(await stateOf(id)).toBe('attesting');
    expect((await machines.history(id)).map((t) => t.actor)).toEqual(['worker:a']);
  });

  it('of eight workers racing on separate connections, exactly one applies the transition', async () => {
    const id = await importedMachine();
    const pools = await Promise.all(Array.from({ length: 4 }, () => openDataSource(db.url, 2)));
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          new MachinesRepository(pools[i % pools.length]!).transition(
            { machineId: id, from: 'imported', to: 'attesting', reason: `worker ${i}`, actor: `worker:${i}` },
            new Date(),
          ),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(7);
      expect(lost.every((r) => r.reason instanceof MachineStateConflictError)).toBe(true);
      expect(await transitionsOf(id)).toBe(1);
    } finally {
      await Promise.all(pools.map((p) => p.destroy()));
    }
  });

  it('refuses an illegal transition, a missing machine and an empty reason, writing nothing', async () => {
    const id = await importedMachine();
    await expect(machines.transition({ machineId: id, from: 'imported', to: 'attested', reason: 'skip attestation', actor: 'x' }, new Date())).rejects.toEqual(
      new MachineTransitionError('imported', 'attested'),
    );
    await expect(machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: '  ', actor: 'x' }, new Date())).rejects.toBeInstanceOf(
      MachineTransitionReasonError,
    );
    const missing = randomUUID();
    await expect(machines.transition({ machineId: missing, from: 'imported', to: 'attesting', reason: 'r', actor: 'x' }, new Date())).rejects.toEqual(
      new MachineNotFoundError(missing),
    );
    expect(await stateOf(id)).toBe('imported');
    expect(await transitionsOf(id)).toBe(0);
  });

  it('refuses a transition whose caller saw a stale state, even when the edge itself is legal', async () => {
    const id = await importedMachine();
    await machines.transition({ machineId: id, from: 'imported', to: 'revoked', reason: 'decommissioned', actor: 'token:ops' }, new Date());
    await expect(machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'late registration', actor: 'worker:1' }, new Date())).rejects.toMatchObject({
      name: 'MachineStateConflictError',
      actual: 'revoked',
    });
    expect(await stateOf(id)).toBe('revoked');
    expect(await transitionsOf(id)).toBe(1);
  });

  it('the schema holds the same rules: unknown states and self-transitions are refused by CHECKs', async () => {
    const id = await importedMachine();
    await expect(ds.query(`UPDATE machines SET state = 'deleted' WHERE id = $1`, [id])).rejects.toMatchObject({ constraint: 'machines_state_check' });
    await expect(
      ds.query(`INSERT INTO machine_transitions (machine_id, from_state, to_state, reason, actor, at) VALUES ($1, 'attested', 'attested', 'r', 'a', now())`, [id]),
    ).rejects.toMatchObject({ constraint: 'machine_transitions_check' });
  });
});
