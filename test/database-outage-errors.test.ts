/**
 * What a transaction sees when PostgreSQL cuts its connection between two of its queries (an
 * immediate shutdown, a crash, an administrator's pg_terminate_backend), made for real: TypeORM's
 * query runner releases itself on its client's `error` event, and the transaction's next query
 * throws one of TypeORM's released-runner errors instead of a pg error. The control plane must answer that
 * 503 database.unavailable (the client retries), not a 500: the `500 internal` once seen during
 * test/delivery-faults.test.ts's PostgreSQL outage had this cause (the worker's audit sequencer
 * logs the same error during that outage).
 */
import { type DataSource, type EntityManager, QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';
import { isDatabaseUnavailable } from '../apps/control-plane/src/http/database-unavailable';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { pollUntil } from './support/wait';

describe('a connection cut inside a transaction', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let killer: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    ds = await openDataSource(db.url, 2);
    killer = await openDataSource(db.url, 1);
  });

  afterAll(async () => {
    await ds?.destroy();
    await killer?.destroy();
    await db?.drop();
  });

  /** A transaction that has its own connection terminated by another, waits until TypeORM saw it, then runs `next`: what it failed with. */
  async function cutBetweenQueries(next: (manager: EntityManager) => Promise<unknown>): Promise<unknown> {
    return ds
      .transaction(async (manager) => {
        const [own] = (await manager.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
        const [cut] = (await killer.query('SELECT pg_terminate_backend($1) AS terminated', [own!.pid])) as { terminated: boolean }[];
        expect(cut!.terminated).toBe(true);
        // The server's FATAL reaches the client as an `error` event: TypeORM releases the runner then.
        expect(await pollUntil(async () => manager.queryRunner!.isReleased, (released) => released, 10_000, 20)).toBe(true);
        await next(manager);
      })
      .then(
        () => 'committed',
        (error: unknown) => error,
      );
  }

  it.each([
    ['a query builder (what the repositories use)', QueryRunnerAlreadyReleasedError, (manager: EntityManager) => manager.createQueryBuilder().select('1', 'one').from('pg_class', 'c').limit(1).getRawMany()],
    ["the manager's own query", QueryRunnerProviderAlreadyReleasedError, (manager: EntityManager) => manager.query('SELECT 1')],
  ])('the next query through %s fails with TypeORM\'s released-runner error, which the control plane answers 503 database.unavailable', async (_how, expected, next) => {
    const failure = await cutBetweenQueries(next);
    expect(failure).toBeInstanceOf(expected);
    expect(isDatabaseUnavailable(failure)).toBe(true);
    // The pool recovers by itself: the next transaction gets a fresh connection.
    expect(await ds.transaction((manager) => manager.query('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
  });
});
