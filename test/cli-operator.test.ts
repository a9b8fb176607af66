/**
 * A new operator's path through the CLI (issue 9, "A new operator's friction"): a fresh database in
 * production without RACKSEAL_MASTER_KEY, the bootstrap token, then every server command against a
 * real control plane process, with RACKSEAL_SERVER / RACKSEAL_TOKEN instead of flags, and errors that
 * name the command.
 */
import { hashToken } from '@rackseal/api-tokens';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { makeCa } from '../libs/ek-trust/src/testing/certificate-builder';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { runRacksealCli } from './support/cli-runner';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

const MIGRATE_HINT = 'run `rackseal migrate` (or `npm run migrate` in a checkout) first';

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
}

async function tableNames(ds: DataSource): Promise<string[]> {
  const rows = (await ds.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)) as { table_name: string }[];
  return rows.map((r) => r.table_name);
}

describe('rackseal on a fresh database (production, no RACKSEAL_MASTER_KEY)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  // What an operator's shell holds: production, a database, and no master key (the CLI needs none).
  const env = (): NodeJS.ProcessEnv => ({ RACKSEAL_ENV: 'production', DATABASE_URL: db.url });

  beforeEach(async () => {
    db = await createTestDatabase({ migrate: false });
    ds = await openDataSource(db.url, 2);
  });

  afterEach(async () => {
    await ds.destroy();
    await db.drop();
  });

  it('audit verify refuses the unmigrated database with exit 2 naming the command to run, and creates nothing', async () => {
    const run = runRacksealCli(['audit', 'verify'], { env: env() });
    expect([run.status, run.stdout]).toEqual([2, '']);
    expect(run.stderr).toMatch(/^rackseal: PostgreSQL postgres@127\.0\.0\.1:5432\/\S+: the database is not migrated: \d+ migration\(s\) pending; /);
    expect(run.stderr).toContain(MIGRATE_HINT);
    expect(await tableNames(ds)).toEqual([]);
  });

  it('token create migrates it first (said on stderr), then issues the token: stored hashed, audited, verifiable', async () => {
    const run = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: env() });
    expect(run.stderr).not.toMatch(/RACKSEAL_MASTER_KEY|relation .* does not exist/);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^rks_[A-Za-z0-9_-]{43}\n$/);
    const token = run.stdout.trim();
    const [migrated, issued] = run.stderr.split('\n');
    expect(migrated).toMatch(/^migrated the database first: applied \d+ migration\(s\) \(Create/);
    expect(issued).toMatch(/^issued token [0-9a-f-]{36} "admin" with scopes admin; it is shown only once$/);
    const rows = (await ds.query('SELECT name, token_hash FROM api_tokens')) as { name: string; token_hash: Buffer }[];
    expect(rows.map((r) => [r.name, r.token_hash.equals(hashToken(token))])).toEqual([['admin', true]]);
    expect(await tableNames(ds)).toEqual(expect.arrayContaining(['api_tokens', 'audit_log', 'schema_migrations']));

    const again = runRacksealCli(['token', 'create', '--name', 'second', '--scope', 'audit:read'], { env: env() });
    expect(again.status).toBe(0);
    expect(again.stderr).not.toContain('migrated');

    const verify = runRacksealCli(['audit', 'verify'], { env: env() });
    expect([verify.status, verify.stderr]).toEqual([0, '']);
    // No sequencer has run (no worker here): both records are pending, the tree is still empty.
    expect(verify.stdout).toMatch(/^audit log intact: 0 records \(2 pending\), root e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, 0 checkpoints checked\n$/);
  });

  it('with MIGRATIONS_AT_BOOT=false token create refuses and names `rackseal migrate`, which then migrates once', async () => {
    const refused = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { ...env(), MIGRATIONS_AT_BOOT: 'false' } });
    expect([refused.status, refused.stdout]).toEqual([2, '']);
    expect(refused.stderr).toMatch(/^rackseal: PostgreSQL \S+: the database is not migrated: \d+ migration\(s\) pending \(MIGRATIONS_AT_BOOT=false: migrations are a separate step here\); /);
    expect(refused.stderr).toContain(MIGRATE_HINT);
    expect(await tableNames(ds)).toEqual([]);

    const migrate = runRacksealCli(['migrate'], { env: { ...env(), MIGRATIONS_AT_BOOT: 'false' } });
    expect([migrate.status, migrate.stderr]).toEqual([0, '']);
    expect(migrate.stdout).toMatch(/^migrations applied: Create\w+, /);
    const twice = runRacksealCli(['migrate'], { env: env() });
    expect([twice.status, twice.stdout]).toEqual([0, 'schema up to date: no migrations pending\n']);
    const created = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { ...env(), MIGRATIONS_AT_BOOT: 'false' } });
    expect(created.status).toBe(0);
  });

  it('validates only the database variables: a bad one is named (exit 2), the server-only ones are not read', () => {
    const run = runRacksealCli(['token', 'create', '--name', 'a', '--scope', 'admin'], { env: { ...env(), DATABASE_URL: 'mysql://x', PORT: 'abc', REDIS_URL: 'http://x', RACKSEAL_MASTER_KEY: 'short' } });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('rackseal: database settings: DATABASE_URL: must be a URL starting with postgres: or postgresql: (got "mysql://x")\n');
  });
});

describe('rackseal server commands against a control plane', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let cp: { proc: RunningProcess; baseUrl: string };
  let admin: string;
  let dir: string;
  const root = makeCa({ subject: [[['CN', 'CLI Test Root']]], keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }), notBefore: new Date('2024-01-01'), notAfter: new Date('2044-01-01') });
  const intermediate = makeCa({ subject: [[['CN', 'CLI Test Intermediate']]], keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }), issuer: root, notBefore: new Date('2024-01-01'), notAfter: new Date('2044-01-01'), serial: 3 });
  const intermediateFp = createHash('sha256').update(intermediate.der).digest('hex');

  /** The operator's shell after `export RACKSEAL_SERVER=… RACKSEAL_TOKEN=…`: no flags. */
  const cli = (...args: string[]) => runRacksealCli(args, { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: admin } });
  const cliAs = (token: string, ...args: string[]) => runRacksealCli(args, { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: token } });

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    prefix = createTestQueuePrefix();
    dir = await mkdtemp(join(tmpdir(), 'rackseal-cli-'));
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(bootstrap.status).toBe(0);
    admin = bootstrap.stdout.trim();
    cp = await startControlPlane(testEnv(db, prefix.prefix));
  });

  afterAll(async () => {
    await cp.proc.stop();
    await rm(dir, { recursive: true, force: true });
    await db.drop();
    await prefix.clear();
  });

  it('takes the server from RACKSEAL_SERVER; with neither it names both; --server wins over the variable', () => {
    const none = runRacksealCli(['machines', 'list'], { env: { RACKSEAL_TOKEN: admin } });
    expect([none.status, none.stdout, none.stderr]).toEqual([2, '', 'rackseal: no control plane given: pass --server URL or set RACKSEAL_SERVER\n']);
    const badEnv = runRacksealCli(['machines', 'list'], { env: { RACKSEAL_SERVER: 'localhost:8080', RACKSEAL_TOKEN: admin } });
    expect(badEnv.stderr).toBe('rackseal: RACKSEAL_SERVER "localhost:8080" must be an http:// or https:// URL\n');
    const flagWins = runRacksealCli(['machines', 'list', '--server', cp.baseUrl], { env: { RACKSEAL_SERVER: 'http://127.0.0.1:1', RACKSEAL_TOKEN: admin } });
    expect([flagWins.status, flagWins.stderr]).toEqual([0, '']);
    const noToken = runRacksealCli(['machines', 'list'], { env: { RACKSEAL_SERVER: cp.baseUrl } });
    expect([noToken.status, noToken.stderr]).toEqual([2, 'rackseal: an operator token is required: --token T or RACKSEAL_TOKEN\n']);
  });

  it('refuses a token holding a line break or control character without echoing it (fetch quoted the whole header)', () => {
    for (const bad of [`${admin}\nX-Injected: 1`, `${admin.slice(0, 10)}\u0001${admin.slice(10)}`, `ä${admin}`, `${admin} ${admin}`]) {
      const run = cliAs(bad, 'machines', 'list');
      expect([run.status, run.stdout]).toEqual([2, '']);
      expect(run.stderr).toBe(
        'rackseal: the operator token (--token or RACKSEAL_TOKEN) holds a character no token has (a line break, control character, space or non-ASCII); check how it was pasted\n',
      );
      expect(run.stderr.includes(admin.slice(4, 20))).toBe(false);
    }
    // Surrounding whitespace (a pasted line end) is not part of the token.
    expect(cliAs(`  ${admin}\r\n`, 'machines', 'list').status).toBe(0);
  });

  it('token create --server issues through the API; token list shows both; token revoke ends one (401 after), audited', () => {
    const created = cli('token', 'create', '--server', '--name', 'importer', '--scope', 'inventory:write', 'inventory:read');
    expect(created.status).toBe(0);
    expect(created.stderr).toMatch(/^issued token ([0-9a-f-]{36}) "importer" with scopes inventory:read, inventory:write; it is shown only once\n$/);
    const importer = created.stdout.trim();
    const id = /issued token ([0-9a-f-]{36})/.exec(created.stderr)![1]!;

    const listed = cli('token', 'list', '--json');
    expect(listed.status).toBe(0);
    const tokens = JSON.parse(listed.stdout) as { id: string; name: string; createdBy: string; revokedAt: string | null }[];
    expect(tokens.map((t) => [t.name, t.revokedAt])).toEqual([['admin', null], ['importer', null]]);
    expect(tokens[1]!.createdBy).toMatch(/^token:/);
    expect(listed.stdout).not.toContain(importer.slice(4));
    const table = cli('token', 'list');
    expect(table.stdout).toMatch(/^ID +NAME +SCOPES +CREATED +BY +LAST USED +STATE\n/);
    expect(table.stdout).toMatch(new RegExp(`^${id} +importer +inventory:read,inventory:write +\\d{4}-\\d\\d-\\d\\d +token:\\S+ +never +active$`, 'm'));
    expect(table.stdout).toMatch(/\n2 token\(s\)\n$/);

    expect(cliAs(importer, 'machines', 'list').status).toBe(0);
    const revoked = cli('token', 'revoke', id);
    expect([revoked.status, revoked.stdout, revoked.stderr]).toEqual([0, `revoked token ${id}\n`, '']);
    const after = cliAs(importer, 'machines', 'list');
    expect([after.status, after.stderr]).toEqual([2, 'rackseal: machines list: the server refused the token (401): it is missing, unknown or revoked\n']);
    const twice = cli('token', 'revoke', id);
    expect([twice.status, twice.stderr]).toEqual([2, `rackseal: token revoke: no active token ${id}\n`]);
    const pasted = cli('token', 'revoke', importer);
    expect(pasted.status).toBe(2);
    expect(pasted.stderr).not.toContain(importer.slice(4));
    expect(pasted.stderr).toMatch(/^rackseal: token revoke: .*not a token id/);
    expect(JSON.parse(cli('token', 'list', '--json').stdout)[1]).toMatchObject({ name: 'importer', revokedAt: expect.any(String) });
  });

  it('vendor-ca anchor / unanchor pin and unpin an intermediate; errors name the command, not the HTTP call', async () => {
    // The intermediate alone: its root is absent, so only pinning it lets chains end there.
    await writeFile(join(dir, 'intermediate.pem'), pem(intermediate.der));
    const added = cli('vendor-ca', 'add', join(dir, 'intermediate.pem'));
    expect(added.status).toBe(0);
    expect(added.stdout).toMatch(/^added +intermediate +[0-9a-f]{16} .*does not chain yet/m);

    const anchored = cli('vendor-ca', 'anchor', intermediateFp);
    expect([anchored.status, anchored.stderr]).toEqual([0, '']);
    expect(anchored.stdout).toBe(`anchored: ${intermediateFp} intermediate "CN=CLI Test Intermediate"\n`);
    expect(cli('vendor-ca', 'anchor', intermediateFp).stdout).toBe(`already an anchor: ${intermediateFp} intermediate "CN=CLI Test Intermediate"\n`);
    expect(JSON.parse(cli('vendor-ca', 'list', '--json').stdout)).toEqual([expect.objectContaining({ fingerprint: intermediateFp, anchor: true })]);
    const unanchored = cli('vendor-ca', 'unanchor', intermediateFp, '--json');
    expect(JSON.parse(unanchored.stdout)).toMatchObject({ changed: true, ca: { fingerprint: intermediateFp, anchor: false } });

    const unknown = cli('vendor-ca', 'disable', 'ab'.repeat(32));
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^rackseal: vendor-ca disable: no vendor CA /);
    expect(unknown.stderr).not.toMatch(/DELETE|\/v1\//);
    const reader = cli('token', 'create', '--server', '--name', 'reader', '--scope', 'audit:read').stdout.trim();
    const forbidden = cliAs(reader, 'vendor-ca', 'anchor', intermediateFp);
    expect([forbidden.status, forbidden.stderr]).toEqual([2, 'rackseal: vendor-ca anchor: forbidden (403): this token lacks the "vendor-ca:write" scope\n']);
  });

  // Needs the server routes to resolve a unique hex prefix (>= 8 digits) of a fingerprint.
  it('vendor-ca disable / enable take the 16-hex prefix that `add` prints; an unknown prefix is refused naming it', () => {
    const prefix16 = intermediateFp.slice(0, 16);
    const disabled = cli('vendor-ca', 'disable', prefix16);
    expect([disabled.status, disabled.stderr]).toEqual([0, '']);
    expect(disabled.stdout).toBe(`disabled: ${intermediateFp} intermediate "CN=CLI Test Intermediate"\n`);
    const enabled = cli('vendor-ca', 'enable', intermediateFp.slice(0, 8));
    expect(enabled.stdout).toBe(`enabled: ${intermediateFp} intermediate "CN=CLI Test Intermediate"\n`);
    const other = intermediateFp.startsWith('0123abcd') ? 'fedcba98' : '0123abcd';
    const none = cli('vendor-ca', 'disable', other);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(new RegExp(`^rackseal: vendor-ca disable: .*${other}`));
  });

  it('inventory import, then inventory show ID reports it; machines list pages by serial with --after, --limit, --group', async () => {
    const csv = join(dir, 'fleet.csv');
    const serials = ['SN-01', 'SN-02', 'SN-03', 'SN-04', 'SN-05'];
    await writeFile(csv, `serial,hostname,group,ek_pub_hash\n${serials.map((s, i) => `${s},node${i},${i < 3 ? 'rack-a' : 'rack-b'},${randomBytes(32).toString('hex')}`).join('\n')}\nSN-BAD,x,rack-a,nothex\n`);
    const imported = cli('inventory', 'import', csv, '--partial');
    expect(imported.status).toBe(1);
    const id = /\(import ([0-9a-f-]{36})\)/.exec(imported.stdout)![1]!;

    const shown = cli('inventory', 'show', id);
    expect([shown.status, shown.stderr]).toEqual([0, '']);
    expect(shown.stdout).toMatch(/^import of "fleet\.csv" by token:\S+, \S+ – \S+\npartially imported: the good rows landed, the refused rows did not \(import [0-9a-f-]{36}\)\n/);
    expect(shown.stdout).toMatch(/^ {2}created +5$/m);
    expect(shown.stdout).toMatch(/^ {2}line 7 \(serial "SN-BAD"\): invalid-ek-pub-hash: /m);
    expect(JSON.parse(cli('inventory', 'show', id, '--json').stdout)).toMatchObject({ id, status: 'partial', fileName: 'fleet.csv', counts: { rows: 6, created: 5, invalid: 1 } });
    const missing = cli('inventory', 'show', '00000000-0000-4000-8000-000000000000');
    expect([missing.status, missing.stderr]).toEqual([2, 'rackseal: inventory show: no inventory import 00000000-0000-4000-8000-000000000000\n']);
    expect(cli('inventory', 'show', 'nope').stderr).toBe('rackseal: inventory show: "nope" is not an import id (a UUID, as `inventory import` prints it)\n');

    const page1 = cli('machines', 'list', '--limit', '2');
    expect(page1.status).toBe(0);
    expect(page1.stdout).toMatch(/^SERIAL +HOSTNAME +ASSET TAG +GROUP +STATE +LAST ATTESTED +EK PUB HASH +IMPORTED\nSN-01 +node0 +- +rack-a +imported +never +[0-9a-f]{16} +\d{4}-\d\d-\d\d\nSN-02 /);
    expect(page1.stdout).toMatch(/\n2 machine\(s\); more: --after "SN-02"\n$/);
    const page2 = JSON.parse(cli('machines', 'list', '--after', 'SN-02', '--limit', '2', '--json').stdout) as { serial: string }[];
    expect(page2.map((m) => m.serial)).toEqual(['SN-03', 'SN-04']);
    const rackB = JSON.parse(cli('machines', 'list', '--group', 'rack-b', '--json').stdout) as { serial: string; group: string }[];
    expect(rackB.map((m) => [m.serial, m.group])).toEqual([['SN-04', 'rack-b'], ['SN-05', 'rack-b']]);
    expect(cli('machines', 'list').stdout).toMatch(/\n5 machine\(s\)\n$/);

    const badLimit = cli('machines', 'list', '--limit', '0');
    expect(badLimit.status).toBe(2);
    expect(badLimit.stderr).toContain('--limit must be a whole number from 1 to 1000.');
    const badGroup = cli('machines', 'list', '--group', 'Bad Group');
    expect(badGroup.status).toBe(2);
    expect(badGroup.stderr).toMatch(/^rackseal: machines list: group must/);
  });

  it('audit list pages in append order with --after ID/--limit (pending records: no seq yet); audit verify --server asks the control plane', () => {
    const all = JSON.parse(cli('audit', 'list', '--json', '--limit', '1000').stdout) as { id: number; seq: number | null; action: string; leafHash: string | null }[];
    expect(all.length).toBeGreaterThanOrEqual(3);
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort((x, y) => x - y));
    // No worker runs here, so nothing is sequenced: every record is pending.
    expect(all[0]).toMatchObject({ action: 'token.issued', seq: null, leafHash: null });

    const page = cli('audit', 'list', '--after', String(all[0]!.id), '--limit', '2');
    expect(page.status).toBe(0);
    const lines = page.stdout.split('\n');
    expect(lines[0]).toMatch(/^ID +SEQ +RECORDED +ACTOR +ACTION +SUBJECT +OUTCOME +DETAILS$/);
    expect(lines[1]).toMatch(new RegExp(`^${all[1]!.id} +pending +\\S+ +\\S+ +${all[1]!.action} `));
    expect(lines[2]).toMatch(new RegExp(`^${all[2]!.id} +pending `));
    expect(lines[3]).toBe(`2 record(s); more: --after ${all[2]!.id}`);
    expect(cli('audit', 'list', '--after', 'x').stderr).toContain('--after must be a whole number');

    const verify = cli('audit', 'verify', '--server');
    expect([verify.status, verify.stderr]).toEqual([0, '']);
    expect(verify.stdout).toMatch(/^audit log intact: 0 records \(\d+ pending\), root [0-9a-f]{64}, 0 checkpoints checked\n$/);
    const json = JSON.parse(cli('audit', 'verify', '--server', cp.baseUrl, '--json').stdout) as { ok: boolean };
    expect(json).toMatchObject({ ok: true });
    // Without --server it is the database path, whatever RACKSEAL_SERVER says: no DATABASE_URL here, so the default one is tried.
    const dbPath = runRacksealCli(['audit', 'verify'], { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: admin, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' } });
    expect([dbPath.status, dbPath.stderr]).toEqual([2, expect.stringMatching(/^rackseal: PostgreSQL postgres@127\.0\.0\.1:1\/none: cannot connect: /)]);
  });

  it('refuses what would change the route or leak a password, and prints server text with control characters escaped', async () => {
    for (const [arg, what] of [['..', 'a fingerprint'], ['.', 'a fingerprint'], ['', 'a fingerprint']] as const) {
      const run = cli('vendor-ca', 'disable', arg);
      expect([arg, run.status, run.stderr]).toEqual([arg, 2, `rackseal: vendor-ca disable: ${JSON.stringify(arg)} is not ${what}\n`]);
    }
    const withPassword = runRacksealCli(['machines', 'list', '--server', cp.baseUrl.replace('http://', 'http://ops:hunter2@')], { env: { RACKSEAL_TOKEN: admin } });
    expect([withPassword.status, withPassword.stderr]).toEqual([2, 'rackseal: --server must not contain a user name or password (the operator token goes in --token or RACKSEAL_TOKEN)\n']);
    const dbToken = runRacksealCli(['token', 'create', '--name', 'x', '--scope', 'admin', '--token', admin], { env: { DATABASE_URL: db.url } });
    expect(dbToken.status).toBe(2);
    expect(dbToken.stderr).not.toContain(admin);

    // File names become a CA's source and an import's file name: whether the server refuses or stores
    // them, no escape sequence reaches the terminal raw.
    const evil = join(dir, 'evil\x1b[2J\x1b[31m\r.pem');
    const other = makeCa({ subject: [[['CN', 'Evil\x1b[5m Root']]], keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }), notBefore: new Date('2024-01-01'), notAfter: new Date('2044-01-01') });
    await writeFile(evil, pem(other.der));
    const csv = join(dir, 'evil\x1b[31m.csv');
    await writeFile(csv, `serial,hostname,group,ek_pub_hash\nSN-EVIL,evil,rack-c,${randomBytes(32).toString('hex')}\n`);
    const imported = cli('inventory', 'import', csv);
    const id = /\(import ([0-9a-f-]{36})\)/.exec(imported.stdout)?.[1];
    const subjectOnly = join(dir, 'evil-subject.pem');
    await writeFile(subjectOnly, pem(other.der));
    const runs = [cli('vendor-ca', 'add', evil), cli('vendor-ca', 'add', subjectOnly), cli('vendor-ca', 'list', '--all'), cli('audit', 'list', '--limit', '1000'), imported, ...(id === undefined ? [] : [cli('inventory', 'show', id)])];
    for (const run of runs) {
      expect([run.status! <= 2, run.stdout.includes('\x1b'), run.stderr.includes('\x1b'), run.stdout.includes('\r')]).toEqual([true, false, false, false]);
    }
    expect(runs[1]!.status).toBe(0);
    expect(runs[2]!.stdout).toMatch(/CN=Evil\S+ Root/);
    // The server refuses such a label (naming the command); a server that stored it would get it shown escaped.
    if (runs[0]!.status === 0) {
      expect(runs[0]!.stdout).toContain('evil\\x1b[2J\\x1b[31m\\x0d.pem');
    }
  });
});
