/**
 * Issue 10 item 6: the commands that talk to PostgreSQL directly (`token create`, `audit verify`,
 * `migrate`) fail one way (apps/cli/src/database.ts withDatabase): exit 2, one line
 * `rackseal: PostgreSQL <user@host:port/database>: <problem>` or `rackseal: database settings: …`,
 * never a stack trace, never the password of DATABASE_URL.
 */
import { runRacksealCli } from './support/cli-runner';
import { asSuperuser, createTestDatabase, openDataSource } from './support/database';

const COMMANDS: readonly (readonly string[])[] = [
  ['token', 'create', '--name', 'admin', '--scope', 'admin'],
  ['audit', 'verify'],
  ['migrate'],
];

const PASSWORD = 'hunter2-s3cret';

/** Runs a database command with exactly this DATABASE_URL; asserts what every failure shares. */
function failing(command: readonly string[], databaseUrl: string): string {
  const run = runRacksealCli(command, { env: { DATABASE_URL: databaseUrl } });
  expect([run.status, run.stdout]).toEqual([2, '']);
  expect(run.stderr).not.toContain(PASSWORD);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr.endsWith('\n') && run.stderr.split('\n').length).toBe(2);
  return run.stderr;
}

describe('database commands report every database problem one way', () => {
  it.each(COMMANDS.map((c) => [c.join(' '), c] as const))('%s: an unreachable server is named without the password', (_, command) => {
    expect(failing(command, `postgres://ops:${PASSWORD}@127.0.0.1:1/rackseal`)).toBe('rackseal: PostgreSQL ops@127.0.0.1:1/rackseal: cannot connect: connect ECONNREFUSED 127.0.0.1:1\n');
  });

  it('a password in the query string is not shown either', () => {
    expect(failing(['audit', 'verify'], `postgres://postgres@127.0.0.1:1/rackseal?password=${PASSWORD}&sslmode=disable`)).toBe(
      'rackseal: PostgreSQL postgres@127.0.0.1:1/rackseal: cannot connect: connect ECONNREFUSED 127.0.0.1:1\n',
    );
  });

  it('a missing database is named', () => {
    expect(failing(['migrate'], `postgres://postgres:${PASSWORD}@127.0.0.1:5432/rackseal_no_such_database`)).toBe(
      'rackseal: PostgreSQL postgres@127.0.0.1:5432/rackseal_no_such_database: cannot connect: database "rackseal_no_such_database" does not exist\n',
    );
  });

  it.each([
    ['a wrong scheme', `mysql://ops:${PASSWORD}@db.internal/rackseal`, 'must be a URL starting with postgres: or postgresql: (got "mysql://ops:***@db.internal/rackseal")'],
    ['a URL missing its //', `postgres:ops:${PASSWORD}@db.internal/rackseal`, 'must name a host (got "postgres:***@db.internal/rackseal")'],
  ])('a bad DATABASE_URL (%s) is a settings problem naming the variable, the password masked', (_, url, reason) => {
    for (const command of COMMANDS) {
      expect(failing(command, url)).toBe(`rackseal: database settings: DATABASE_URL: ${reason}\n`);
    }
  });

  it('a failure while the command runs names PostgreSQL and the cause, and nothing was written', async () => {
    const db = await createTestDatabase({ migrate: true });
    const ds = await openDataSource(db.url);
    try {
      // A schema damaged behind the CLI's back: the migrations are recorded, the audit table is gone.
      await asSuperuser(ds, 'DROP TABLE audit_log CASCADE');
      const url = new URL(db.url);
      url.password = PASSWORD; // trust authentication: ignored by the server, and must not be shown
      const target = `${url.username}@${url.hostname}:${url.port === '' ? '5432' : url.port}${url.pathname}`;
      expect(failing(['audit', 'verify'], url.toString())).toBe(`rackseal: PostgreSQL ${target}: the command failed: relation "audit_log" does not exist\n`);
      expect(failing(['token', 'create', '--name', 'admin', '--scope', 'admin'], url.toString())).toMatch(new RegExp(`^rackseal: PostgreSQL ${target}: the command failed: `));
      expect(await ds.query('SELECT count(*)::int AS n FROM api_tokens')).toEqual([{ n: 0 }]);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});
