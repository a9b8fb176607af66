/**
 * The machine lifecycle against real PostgreSQL (libs/machines, migration 1764200000000): a
 * transition is one conditional UPDATE that also writes its history row, so of two workers moving the
 * same machine from the same state exactly one wins and the other is told who got there first.
 */
import { randomUUID } from 'node:crypto';
import {
  MachineFailureRecordError,
  MachineNotFoundError,
  MachineRefError,
  MachinesRepository,
  MachineStateConflictError,
  MachineTransitionError,
  MachineTransitionReasonError,
  parseMachineRef,
} from '@rackseal/machines';
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
  async function importedMachine(options: { serial?: string; group?: string } = {}): Promise<string> {
    const id = randomUUID();
    const hash = randomUUID().replace(/-/g, '').padEnd(64, '0');
    await ds.query(
      `INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, $3, $4, 'imported', now(), now())`,
      [id, options.serial ?? `SN-${id}`, options.group ?? null, hash],
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

  describe('attestation record, revoke, filters and counts (issue 12 item 4)', () => {
    const T0 = new Date('2026-03-01T10:00:00.000Z');
    const later = (ms: number): Date => new Date(T0.getTime() + ms);

    /** A machine taken through imported → attesting → attested at `at`, as the attestation service does. */
    async function attestedMachine(at: Date, options: { serial?: string; group?: string } = {}): Promise<string> {
      const id = await importedMachine(options);
      await ds.transaction(async (m) => {
        await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'registration started', actor: 'system:attestation' }, at, m);
        await machines.transition({ machineId: id, from: 'attesting', to: 'attested', reason: 'quote matched policy', actor: 'system:attestation' }, at, m);
        await machines.recordAttested(id, at, m);
      });
      return id;
    }

    it('recordAttested sets the first attestation time once and moves the last one forward only', async () => {
      const id = await attestedMachine(T0);
      expect(await machines.findById(id)).toMatchObject({ firstAttestedAt: T0, lastAttestedAt: T0, lastFailure: null });
      await machines.recordAttested(id, later(60_000));
      expect(await machines.findById(id)).toMatchObject({ firstAttestedAt: T0, lastAttestedAt: later(60_000) });
      // Another replica with a clock a second behind: the last time does not go back, the first stays.
      await machines.recordAttested(id, later(59_000));
      expect(await machines.findById(id)).toMatchObject({ firstAttestedAt: T0, lastAttestedAt: later(60_000) });
      await expect(machines.recordAttested(randomUUID(), T0)).rejects.toBeInstanceOf(MachineNotFoundError);
    });

    it('recordFailure keeps the last failure with its explanation lines, made printable and bounded, and replaces the previous one', async () => {
      const id = await attestedMachine(T0);
      const registrationId = randomUUID();
      await machines.recordFailure(id, {
        at: later(1000),
        code: 'attestation.pcr-mismatch',
        reason: 'PCR 4 differs\nforged: line',
        explanation: ['PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs', 'event text \u001b[2J\u202eevil', '', '\ud800lone'],
        registrationId,
      });
      const failed = await machines.findById(id);
      expect(failed?.lastFailure).toEqual({
        at: later(1000),
        code: 'attestation.pcr-mismatch',
        reason: 'PCR 4 differs forged: line',
        explanation: ['PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs', 'event text  [2J evil', '\ufffdlone'],
        registrationId,
      });
      // The attestation times are untouched by a failure.
      expect(failed).toMatchObject({ firstAttestedAt: T0, lastAttestedAt: T0 });

      const many = Array.from({ length: 250 }, (_, i) => `line ${i} ${'x'.repeat(400)}`);
      await machines.recordFailure(id, { at: later(2000), code: 'attestation.event-log-mismatch', reason: 'r'.repeat(1500), explanation: many });
      const replaced = (await machines.findById(id))!.lastFailure!;
      expect(replaced.code).toBe('attestation.event-log-mismatch');
      expect(replaced.registrationId).toBeUndefined();
      expect(replaced.reason).toHaveLength(1000);
      expect(replaced.reason.endsWith('…')).toBe(true);
      expect(replaced.explanation).toHaveLength(200);
      expect(replaced.explanation.every((l) => l.length <= 300)).toBe(true);
      expect(replaced.explanation[199]).toBe('… 51 more lines');
    });

    it('recordFailure refuses a record the verifier built wrong, writing nothing', async () => {
      const id = await attestedMachine(T0);
      const good = { at: T0, code: 'attestation.nonce-stale', reason: 'stale', explanation: [] };
      for (const bad of [{ ...good, code: 'Not A Code' }, { ...good, at: new Date(Number.NaN) }, { ...good, registrationId: 'reg-1' }]) {
        await expect(machines.recordFailure(id, bad)).rejects.toBeInstanceOf(MachineFailureRecordError);
      }
      expect((await machines.findById(id))!.lastFailure).toBeNull();
      await expect(machines.recordFailure(randomUUID(), good)).rejects.toBeInstanceOf(MachineNotFoundError);
    });

    it('the schema refuses attestation times out of order and a failure without its fields', async () => {
      const id = await importedMachine();
      await expect(ds.query('UPDATE machines SET first_attested_at = now() WHERE id = $1', [id])).rejects.toMatchObject({ constraint: 'machines_attested_at_check' });
      await expect(ds.query(`UPDATE machines SET first_attested_at = now(), last_attested_at = now() - interval '1 s' WHERE id = $1`, [id])).rejects.toMatchObject({
        constraint: 'machines_attested_at_check',
      });
      await expect(ds.query(`UPDATE machines SET last_failure = '{"at":"x","code":"c","reason":"r"}' WHERE id = $1`, [id])).rejects.toMatchObject({
        constraint: 'machines_last_failure_check',
      });
      await expect(ds.query(`UPDATE machines SET last_failure = '[]' WHERE id = $1`, [id])).rejects.toMatchObject({ constraint: 'machines_last_failure_check' });
    });

    it('revoke works from every non-revoked state, records the transition, and a second revoke changes nothing', async () => {
      const imported = await importedMachine();
      const attested = await attestedMachine(T0);
      const attesting = await importedMachine();
      await machines.transition({ machineId: attesting, from: 'imported', to: 'attesting', reason: 'r', actor: 'a' }, T0);
      const quarantined = await importedMachine();
      await machines.transition({ machineId: quarantined, from: 'imported', to: 'attesting', reason: 'r', actor: 'a' }, T0);
      await machines.transition({ machineId: quarantined, from: 'attesting', to: 'quarantined', reason: 'PCR 4 differs', actor: 'a' }, T0);
      for (const [id, from] of [
        [imported, 'imported'],
        [attesting, 'attesting'],
        [attested, 'attested'],
        [quarantined, 'quarantined'],
      ] as const) {
        const first = await machines.revoke(id, { reason: ' decommissioned ', actor: 'token:ops' }, later(5000));
        expect(first).toMatchObject({ changed: true, from, machine: { id, state: 'revoked', updatedAt: later(5000) } });
        const again = await machines.revoke(id, { reason: 'again', actor: 'token:other' }, later(9000));
        expect(again).toMatchObject({ changed: false, machine: { id, state: 'revoked', updatedAt: later(5000) } });
        const history = await machines.history(id);
        expect(history.filter((t) => t.to === 'revoked').map(({ from: f, reason, actor }) => ({ from: f, reason, actor }))).toEqual([
          { from, reason: 'decommissioned', actor: 'token:ops' },
        ]);
      }
      await expect(machines.revoke(randomUUID(), { reason: 'r', actor: 'a' }, T0)).rejects.toBeInstanceOf(MachineNotFoundError);
      const untouched = await importedMachine();
      await expect(machines.revoke(untouched, { reason: '   ', actor: 'a' }, T0)).rejects.toBeInstanceOf(MachineTransitionReasonError);
      await expect(machines.revoke(untouched, { reason: 'x'.repeat(1001), actor: 'a' }, T0)).rejects.toBeInstanceOf(MachineTransitionReasonError);
      expect(await stateOf(untouched)).toBe('imported');
    });

    it('revoke racing an attestation that moves the machine re-reads its state and revokes from the new one', async () => {
      const id = await importedMachine();
      const runner = ds.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'registration', actor: 'system:attestation' }, T0, runner.manager);
      // The revoke reads `imported`, then waits on the row lock; after the commit its UPDATE matches nothing, and it tries again.
      const revoking = new MachinesRepository(other).revoke(id, { reason: 'stolen', actor: 'token:ops' }, later(1000));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await runner.commitTransaction();
      await runner.release();
      await expect(revoking).resolves.toMatchObject({ changed: true, from: 'attesting', machine: { state: 'revoked' } });
      expect((await machines.history(id)).map((t) => `${t.from}→${t.to}`)).toEqual(['imported→attesting', 'attesting→revoked']);
    });

    describe('list filters and counts', () => {
      let view: MachinesRepository;
      const group = `g-${randomUUID().slice(0, 8)}`;
      const ids: Record<string, string> = {};

      beforeAll(async () => {
        // A database of its own: counts over the whole table must see only these machines.
        view = machines;
        await ds.query('DELETE FROM machine_transitions');
        await ds.query('DELETE FROM machines');
        ids.fresh = await attestedMachine(later(3_600_000), { serial: 'F-1', group });
        ids.stale = await attestedMachine(T0, { serial: 'F-2', group });
        ids.never = await importedMachine({ serial: 'F-3', group });
        ids.quarantined = await attestedMachine(T0, { serial: 'F-4' });
        await machines.transition({ machineId: ids.quarantined, from: 'attested', to: 'attesting', reason: 'r', actor: 'a' }, later(1000));
        await machines.transition({ machineId: ids.quarantined, from: 'attesting', to: 'quarantined', reason: 'r', actor: 'a' }, later(1000));
        ids.revoked = await importedMachine({ serial: 'F-5', group });
        await machines.revoke(ids.revoked, { reason: 'gone', actor: 'a' }, T0);
      });

      const serials = (list: { serial: string }[]): string[] => list.map((m) => m.serial);

      it('filters by state and group, keeping keyset paging by serial', async () => {
        expect(serials(await view.list({ limit: 10 }))).toEqual(['F-1', 'F-2', 'F-3', 'F-4', 'F-5']);
        expect(serials(await view.list({ state: 'attested', limit: 10 }))).toEqual(['F-1', 'F-2']);
        expect(serials(await view.list({ group, limit: 10 }))).toEqual(['F-1', 'F-2', 'F-3', 'F-5']);
        expect(serials(await view.list({ group, state: 'revoked', limit: 10 }))).toEqual(['F-5']);
        expect(serials(await view.list({ group, after: 'F-1', limit: 2 }))).toEqual(['F-2', 'F-3']);
        expect(serials(await view.list({ group: 'no-such-group', limit: 10 }))).toEqual([]);
      });

      it('notAttestedSince: never attested or last attested before T, revoked left out', async () => {
        const T = later(1_800_000);
        expect(serials(await view.list({ notAttestedSince: T, limit: 10 }))).toEqual(['F-2', 'F-3', 'F-4']);
        expect(serials(await view.list({ notAttestedSince: T, state: 'attested', limit: 10 }))).toEqual(['F-2']);
        expect(serials(await view.list({ notAttestedSince: T, after: 'F-2', limit: 1 }))).toEqual(['F-3']);
        // T before every attestation: only the one that never attested.
        expect(serials(await view.list({ notAttestedSince: later(-1), limit: 10 }))).toEqual(['F-3']);
      });

      it('counts machines per state and those not attested since T, every state present', async () => {
        expect(await view.countByState()).toEqual({ imported: 1, attesting: 0, attested: 2, quarantined: 1, revoked: 1 });
        expect(await view.countNotAttestedSince(later(1_800_000))).toEqual({ imported: 1, attesting: 0, attested: 1, quarantined: 1, revoked: 0 });
        expect(await view.countNotAttestedSince(later(-1))).toEqual({ imported: 1, attesting: 0, attested: 0, quarantined: 0, revoked: 0 });
      });

      it('the liveness query can use the partial index machines_not_attested', async () => {
        await ds.query('SET enable_seqscan = off');
        try {
          const plan = JSON.stringify(
            await ds.query(`EXPLAIN SELECT count(*) FROM machines WHERE state <> 'revoked' AND (last_attested_at IS NULL OR last_attested_at < $1)`, [T0]),
          );
          expect(plan).toContain('machines_not_attested');
        } finally {
          await ds.query('SET enable_seqscan = on');
        }
      });

      it('finds a machine by id or serial; a reference that is neither is refused before the database', async () => {
        expect((await view.findByRef(parseMachineRef('F-4')))?.id).toBe(ids.quarantined);
        expect((await view.findByRef(parseMachineRef(ids.quarantined!.toUpperCase())))?.serial).toBe('F-4');
        expect(await view.findByRef(parseMachineRef('F-404'))).toBeUndefined();
        for (const bad of ['', ' F-4', 'a\u0000b', 'x'.repeat(129), '-F', "'; DROP TABLE machines; --"]) {
          expect(() => parseMachineRef(bad)).toThrow(MachineRefError);
        }
      });
    });
  });
});
