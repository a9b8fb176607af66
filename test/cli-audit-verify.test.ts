import { AuditLog } from '@rackseal/audit';
import { SystemClock } from '@rackseal/platform';
import type { DataSource } from 'typeorm';
import { asSuperuser, createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { runRacksealCli } from './support/cli-runner';

// `rackseal audit verify` reads the chain straight from PostgreSQL: 0 intact, 1 tampered, 2 unusable.
describe('rackseal audit verify', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
    const audit = new AuditLog(ds, new SystemClock());
    for (let i = 0; i < 3; i += 1) {
      await audit.append({ actor: 'system:test', action: 'test.event', subject: `s${i}`, outcome: 'success', details: { i } });
    }
  });

  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  const cli = (databaseUrl: string, ...args: string[]) => runRacksealCli(['audit', 'verify', ...args], { env: { DATABASE_URL: databaseUrl } });

  it('exits 0 and names the head on an intact chain', () => {
    const run = cli(db.url);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^audit chain intact: 3 records, head [0-9a-f]{64}\n$/);
    const json = cli(db.url, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, records: 3, headSeq: 3 });
  });

  it('exits 1 naming the record when its recorded_at moved by one microsecond, 0 once it is back', async () => {
    await asSuperuser(ds, `UPDATE audit_log SET recorded_at = recorded_at + interval '1 microsecond' WHERE seq = 3`);
    const run = cli(db.url);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('audit chain broken at record 3: record 3 was modified after it was written\n');
    expect(JSON.parse(cli(db.url, '--json').stdout)).toEqual({
      ok: false,
      records: 2,
      problem: { kind: 'content-mismatch', seq: 3, message: 'record 3 was modified after it was written' },
    });
    await asSuperuser(ds, `UPDATE audit_log SET recorded_at = recorded_at - interval '1 microsecond' WHERE seq = 3`);
    expect(cli(db.url).status).toBe(0);
  });

  it('exits 1 naming the record when a record was edited', async () => {
    await asSuperuser(ds, `UPDATE audit_log SET subject = 'forged' WHERE seq = 2`);
    const run = cli(db.url);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('audit chain broken at record 2: record 2 was modified after it was written\n');
  });

  it('exits 2 when the database cannot be reached or the URL is invalid', () => {
    const unreachable = cli('postgres://postgres@127.0.0.1:1/nothing');
    expect(unreachable.status).toBe(2);
    expect(unreachable.stderr).toBe('rackseal: PostgreSQL postgres@127.0.0.1:1/nothing: cannot connect: connect ECONNREFUSED 127.0.0.1:1\n');
    const invalid = cli('mysql://x');
    expect(invalid.status).toBe(2);
    expect(invalid.stderr).toMatch(/DATABASE_URL: must be a URL starting with postgres: or postgresql:/);
  });
});
