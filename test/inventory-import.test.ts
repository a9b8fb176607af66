import type { INestApplication } from '@nestjs/common';
import { ApiTokens } from '@rackseal/api-tokens';
import { inspectEkCertificate } from '@rackseal/ek-trust';
import { AuditLog } from '@rackseal/audit';
import { InventoryImporter, WorkerRowChecker, type ImportOptions, type ImportSummary } from '@rackseal/inventory';
import { Clock } from '@rackseal/platform';
import { loadTrustStore } from '@rackseal/vendor-cas';
import { VendorCas } from '@rackseal/vendor-cas';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { LocalCa } from './support/local-ca';
import { runRacksealCliAsync } from './support/cli-runner';
import { DIST } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

const HEADER = 'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash';

/** Builds a CSV from rows of raw (already escaped) text, noting the line each row starts on. */
class CsvFile {
  private readonly parts: string[] = [];
  private line = 1;
  readonly lines = new Map<string, number>();

  constructor(
    header = HEADER,
    private readonly eol = '\r\n',
    bom = true,
  ) {
    this.parts.push(`${bom ? '\uFEFF' : ''}${header}${eol}`);
    this.line = 2;
  }

  row(label: string, raw: string): this {
    this.lines.set(label, this.line);
    this.parts.push(`${raw}${this.eol}`);
    this.line += (raw.match(/\r\n|\r|\n/g) ?? []).length + 1;
    return this;
  }

  at(label: string): number {
    const line = this.lines.get(label);
    if (line === undefined) {
      throw new Error(`no row ${label}`);
    }
    return line;
  }

  toString(): string {
    return this.parts.join('');
  }
}

/** Feeds the file in small pieces so records and UTF-8 sequences cross chunk boundaries. */
function chunked(text: string, size = 97): Readable {
  const bytes = Buffer.from(text, 'utf8');
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    pieces.push(bytes.subarray(i, i + size));
  }
  return Readable.from(pieces);
}

const pem = (der: Buffer): string => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----`;
const nvHeader = (der: Buffer): Buffer => Buffer.concat([Buffer.from([0x10, 0x01, 0x00, der.length >> 8, der.length & 0xff]), der]);
const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;

interface MachineRow {
  serial: string;
  asset_tag: string | null;
  hostname: string | null;
  group_name: string | null;
  ek_pub_hash: string;
  ek_cert: Buffer | null;
  state: string;
  updated_at: Date;
}

describe('inventory import (CSV)', () => {
  const fixture = useSwtpms(1);
  let rogue: LocalCa;
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let importer: InventoryImporter;
  let writer: string;
  let reader: string;
  let baseUrl: string;
  let dir: string;
  const certs: Record<'rsa' | 'ecc' | 'third' | 'fourth' | 'fifth' | 'rogue', Buffer> = {} as never;
  const hashOf = (der: Buffer): string => inspectEkCertificate(der).ekPubHash;
  const PUB_HASH_ONLY = randomBytes(32).toString('hex');

  beforeAll(async () => {
    rogue = await LocalCa.create();
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    importer = app.get(InventoryImporter);
    const tokens = app.get(ApiTokens);
    writer = (await tokens.issue('writer', ['inventory:write', 'inventory:read'], 'test')).token;
    reader = (await tokens.issue('reader', ['inventory:read'], 'test')).token;
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem() }, { content: await fixture.ca.intermediateCertPem() }], { addedBy: 'test' });
    certs.rsa = await fixture.at(0).rsaEkCertDer();
    certs.ecc = await fixture.at(0).eccEkCertDer();
    certs.third = await fixture.ca.issueEkCert(ecKey());
    certs.fourth = await fixture.ca.issueEkCert(ecKey());
    certs.fifth = await fixture.ca.issueEkCert(ecKey());
    certs.rogue = await rogue.issueEkCert(ecKey());
    dir = await mkdtemp(join(tmpdir(), 'rackseal-inventory-'));
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await rogue?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await ds.query('DELETE FROM machines');
    await ds.query('DELETE FROM inventory_imports');
  });

  const run = (csv: string | CsvFile, options: Partial<ImportOptions> = {}): Promise<ImportSummary> =>
    importer.import(chunked(csv.toString()), { actor: 'test', fileName: 'inventory.csv', ...options });
  const machines = async (): Promise<MachineRow[]> => (await ds.query('SELECT * FROM machines ORDER BY serial')) as MachineRow[];

  /** Good rows (in every shape a vendor sends) mixed with every kind of bad one. */
  function mixedFile(): CsvFile {
    const truncated = certs.third.subarray(0, 200).toString('base64');
    return new CsvFile()
      .row('rsa', `SN-001,AT-1,Node1.rack1,workers,${certs.rsa.toString('base64')},`)
      .row('ecc-nv', `SN-002,AT-2,node2.rack1,,${nvHeader(certs.ecc).toString('base64')},`)
      .row('pem', `SN-003,"AT-3",node3,workers,"${pem(certs.third)}",${hashOf(certs.third)}`)
      .row('hash-only', `SN-004,,node4,storage,,${PUB_HASH_ONLY.toUpperCase()}`)
      .row('bad-base64', `SN-005,AT-5,node5,workers,not!!base64,`)
      .row('truncated', `SN-006,AT-6,node6,workers,${truncated},`)
      .row('columns', `SN-007,AT-7,node7,workers`)
      .row('quote', `SN-008,AT"8,node8,workers,,${PUB_HASH_ONLY}`)
      .row('sql', `"'; DROP TABLE machines; --",AT-9,node9,workers,${certs.fourth.toString('base64')},`)
      .row('formula', `SN-010,AT-10,"=cmd|' /C calc'!A0",workers,${certs.fourth.toString('base64')},`)
      .row('rogue', `SN-011,AT-11,node11,workers,${certs.rogue.toString('base64')},`)
      .row('dup-ek', `SN-012,AT-12,node12,workers,${pem(certs.rsa).replace(/\n/g, '')},`)
      .row('dup-serial', `SN-002,AT-13,node13,workers,${certs.fifth.toString('base64')},`)
      .row('bad-hash', `SN-014,AT-14,node14,workers,,abc123`)
      .row('no-ek', `SN-015,AT-15,node15,workers,,`)
      .row('mismatch', `SN-016,AT-16,node16,workers,${certs.fifth.toString('base64')},${hashOf(certs.fourth)}`)
      .row('group', `SN-017,AT-17,node17,Bad Group,,${randomBytes(32).toString('hex')}`);
  }
  const GOOD = ['SN-001', 'SN-002', 'SN-003', 'SN-004'];

  function expectedProblems(file: CsvFile): unknown[] {
    return [
      { line: file.at('bad-base64'), reason: 'bad-cert', serial: 'SN-005', message: 'ek_cert: not DER, PEM or base64 DER' },
      { line: file.at('truncated'), reason: 'bad-cert', serial: 'SN-006', message: expect.stringMatching(/^ek_cert: /) },
      { line: file.at('columns'), reason: 'bad-csv', serial: 'SN-007', message: 'expected 6 fields, found 4' },
      { line: file.at('quote'), reason: 'bad-csv', serial: 'SN-008', message: 'a quote inside an unquoted field (field 2); quote the whole field and double the quote' },
      { line: file.at('sql'), reason: 'invalid-serial', serial: "'; DROP TABLE machines; --", message: expect.stringMatching(/^serial "'; DROP TABLE machines; --" must be 1-128 characters/) },
      { line: file.at('formula'), reason: 'invalid-hostname', serial: 'SN-010', message: `hostname "=cmd|' /c calc'!a0" is not an RFC 1123 host name` },
      { line: file.at('rogue'), reason: 'untrusted-chain', serial: 'SN-011', message: expect.stringMatching(/^signature-invalid: /) },
      { line: file.at('dup-ek'), reason: 'duplicate-ek-in-file', serial: 'SN-012', message: `the same EK is on line ${file.at('rsa')}` },
      { line: file.at('dup-serial'), reason: 'duplicate-serial-in-file', serial: 'SN-002', message: `the same serial is on line ${file.at('ecc-nv')}` },
      { line: file.at('bad-hash'), reason: 'invalid-ek-pub-hash', serial: 'SN-014', message: 'ek_pub_hash must be 64 hexadecimal digits (SHA-256 of the EK public key)' },
      { line: file.at('no-ek'), reason: 'missing-ek', serial: 'SN-015', message: 'the row has neither ek_cert nor ek_pub_hash' },
      { line: file.at('mismatch'), reason: 'ek-pub-hash-mismatch', serial: 'SN-016', message: `ek_pub_hash does not match the certificate's EK (${hashOf(certs.fifth)})` },
      { line: file.at('group'), reason: 'invalid-group', serial: 'SN-017', message: expect.stringMatching(/^group "Bad Group" must be 1-63 characters/) },
    ];
  }

  it('reports every bad row with its line and reason; atomic by default, so nothing lands', async () => {
    const file = mixedFile();
    const summary = await run(file, { defaultGroup: 'default' });
    expect(summary.problems).toEqual(expectedProblems(file));
    expect(summary).toMatchObject({
      status: 'refused',
      dryRun: false,
      partial: false,
      counts: { rows: 17, valid: 4, invalid: 13, created: 0, updated: 0, unchanged: 0 },
      problemsTruncated: false,
    });
    // The PEM row spans lines: the rows after it are counted from where they really start.
    expect(file.at('hash-only')).toBeGreaterThan(file.at('pem') + 5);
    expect(await machines()).toEqual([]);
    const [record] = (await ds.query('SELECT status, rows_total, rows_invalid, started_by FROM inventory_imports')) as unknown[];
    expect(record).toEqual({ status: 'refused', rows_total: 17, rows_invalid: 13, started_by: 'test' });
    const audit = (await ds.query(`SELECT actor, outcome, details FROM audit_log WHERE action = 'inventory.imported' AND subject = $1`, [`inventory-import:${summary.id}`])) as unknown[];
    expect(audit).toEqual([
      {
        actor: 'test',
        outcome: 'refused',
        details: { importId: summary.id, fileName: 'inventory.csv', status: 'refused', partial: false, rows: 17, valid: 4, invalid: 13, created: 0, updated: 0, unchanged: 0 },
      },
    ]);
    // The machines table is still there, and the audit record holds no certificate bytes.
    expect(JSON.stringify(audit)).not.toContain(certs.rsa.toString('base64').slice(0, 40));
  });

  it('dry run: validates everything, writes nothing (no machines, no import record, no audit record)', async () => {
    const auditBefore = (await ds.query('SELECT count(*)::int AS n FROM audit_log')) as [{ n: number }];
    const file = mixedFile();
    const summary = await run(file, { dryRun: true, partial: true, defaultGroup: 'default' });
    expect(summary).toMatchObject({ id: null, status: 'partial', dryRun: true, counts: { rows: 17, valid: 4, invalid: 13, created: 4, updated: 0, unchanged: 0 } });
    expect(summary.problems).toEqual(expectedProblems(file));
    expect(await machines()).toEqual([]);
    expect(await ds.query('SELECT * FROM inventory_imports')).toEqual([]);
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_log')).toEqual(auditBefore);
  });

  it('partial: exactly the good rows land; re-import is a no-op; a changed hostname updates only that row', async () => {
    const file = mixedFile();
    const first = await run(file, { partial: true, defaultGroup: 'default' });
    expect(first).toMatchObject({ status: 'partial', counts: { valid: 4, invalid: 13, created: 4, updated: 0, unchanged: 0 } });
    const rows = await machines();
    expect(rows.map((r) => [r.serial, r.asset_tag, r.hostname, r.group_name, r.ek_pub_hash, r.ek_cert?.length ?? null, r.state])).toEqual([
      ['SN-001', 'AT-1', 'node1.rack1', 'workers', hashOf(certs.rsa), certs.rsa.length, 'imported'],
      ['SN-002', 'AT-2', 'node2.rack1', 'default', hashOf(certs.ecc), certs.ecc.length, 'imported'],
      ['SN-003', 'AT-3', 'node3', 'workers', hashOf(certs.third), certs.third.length, 'imported'],
      ['SN-004', null, 'node4', 'storage', PUB_HASH_ONLY, null, 'imported'],
    ]);
    // the NV header is gone: the stored certificate is the DER itself
    expect(rows[1]!.ek_cert!.equals(certs.ecc)).toBe(true);

    const again = await run(file, { partial: true, defaultGroup: 'default' });
    expect(again).toMatchObject({ status: 'partial', counts: { created: 0, updated: 0, unchanged: 4 } });
    expect(await machines()).toEqual(rows);

    const changed = file.toString().replace('SN-003,"AT-3",node3,workers', 'SN-003,"AT-3",node3-new,workers');
    const third = await run(changed, { partial: true, defaultGroup: 'default' });
    expect(third).toMatchObject({ counts: { created: 0, updated: 1, unchanged: 3 } });
    // The import records carry the counts landing reported, import by import.
    const recorded = (await ds.query(
      'SELECT rows_created, rows_updated, rows_unchanged FROM inventory_imports WHERE id = ANY($1) ORDER BY created_at',
      [[first.id, again.id, third.id]],
    )) as { rows_created: number; rows_updated: number; rows_unchanged: number }[];
    expect(recorded.map((r) => [r.rows_created, r.rows_updated, r.rows_unchanged])).toEqual([[4, 0, 0], [0, 0, 4], [0, 1, 3]]);
    const after = await machines();
    expect(after.map((r) => r.hostname)).toEqual(['node1.rack1', 'node2.rack1', 'node3-new', 'node4']);
    expect(after[2]!.updated_at.getTime()).toBeGreaterThan(rows[2]!.updated_at.getTime());
    expect([0, 1, 3].map((i) => after[i]!.updated_at.getTime())).toEqual([0, 1, 3].map((i) => rows[i]!.updated_at.getTime()));
  });

  it('refuses an EK already bound to another serial and a serial already bound to another EK', async () => {
    const good = new CsvFile('serial,ek_cert,ek_pub_hash', '\n', false).row('a', `SN-A,${certs.rsa.toString('base64')},`).row('b', `SN-B,,${PUB_HASH_ONLY}`);
    expect(await run(good)).toMatchObject({ status: 'succeeded', counts: { rows: 2, created: 2 } });
    const conflicting = new CsvFile('serial,ek_cert,ek_pub_hash', '\n', false)
      .row('moved', `SN-C,${certs.rsa.toString('base64')},`)
      .row('replaced', `SN-B,${certs.ecc.toString('base64')},`)
      .row('fine', `SN-D,${certs.third.toString('base64')},`);
    const summary = await run(conflicting);
    expect(summary.problems).toEqual([
      { line: 2, serial: 'SN-C', reason: 'ek-bound-to-other-serial', message: `this EK (${hashOf(certs.rsa)}) is already bound to machine serial SN-A` },
      { line: 3, serial: 'SN-B', reason: 'serial-bound-to-other-ek', message: `serial is already bound to another EK (${PUB_HASH_ONLY}); a replaced TPM needs the machine revoked first` },
    ]);
    expect(summary.status).toBe('refused');
    expect((await machines()).map((r) => r.serial)).toEqual(['SN-A', 'SN-B']);
  });

  it('refuses an unusable header or an empty file as a whole', async () => {
    await expect(run('serial,hostnme,ek_cert\n')).rejects.toMatchObject({ problems: ['unknown column "hostnme" (known: serial, asset_tag, hostname, group, ek_cert, ek_pub_hash, ek_intermediates)'] });
    await expect(run('asset_tag,hostname\n')).rejects.toMatchObject({
      problems: ['missing column "serial"', 'missing column "ek_cert" or "ek_pub_hash" (one is required)'],
    });
    await expect(run('')).rejects.toThrow(/the file is empty/);
    expect(await ds.query('SELECT * FROM inventory_imports')).toEqual([]);
  });

  it('worker threads (compiled build) give the same report and rows as in-process checks', async () => {
    const checker = new WorkerRowChecker(2, join(DIST, 'libs/inventory/src/row-worker.js'));
    try {
      const pooled = new InventoryImporter(ds, app.get(AuditLog), app.get(Clock), { loadTrustStore, ekGraceDays: 0, rowChecker: checker, batchSize: 3 });
      const file = mixedFile();
      const options = { actor: 'test', fileName: 'inventory.csv', partial: true, defaultGroup: 'default' };
      const inProcess = await run(file, { ...options, dryRun: true });
      const viaWorkers = await pooled.import(chunked(file.toString()), { ...options, dryRun: true });
      expect({ ...viaWorkers, startedAt: 0, finishedAt: 0 }).toEqual({ ...inProcess, startedAt: 0, finishedAt: 0 });
      await pooled.import(chunked(file.toString()), options);
      const rows = await machines();
      expect(rows.map((r) => r.serial)).toEqual(GOOD);
      expect(rows[0]!.ek_cert!.equals(certs.rsa)).toBe(true);
    } finally {
      await checker.close();
    }
  });

  it('lists at most maxListedProblems problems (in line order) and says so; the counts have them all', async () => {
    const capped = new InventoryImporter(ds, app.get(AuditLog), app.get(Clock), { loadTrustStore, ekGraceDays: 0, maxListedProblems: 2, batchSize: 4 });
    const file = mixedFile();
    const summary = await capped.import(chunked(file.toString()), { actor: 'test', partial: true, defaultGroup: 'default' });
    expect(summary).toMatchObject({ status: 'partial', problemsTruncated: true, counts: { valid: 4, invalid: 13, created: 4 } });
    expect(summary.problems.map((p) => p.line)).toEqual([file.at('bad-base64'), file.at('truncated')]);
    const [record] = (await ds.query('SELECT problems, problems_truncated FROM inventory_imports WHERE id = $1', [summary.id])) as { problems: unknown[]; problems_truncated: boolean }[];
    expect(record).toEqual({ problems: JSON.parse(JSON.stringify(summary.problems)), problems_truncated: true });
  });

  describe('HTTP', () => {
    const http = () => request(app.getHttpServer());

    it('POST /v1/inventory/imports streams text/csv; GET the import and the machines', async () => {
      const file = mixedFile();
      const response = await http()
        .post('/v1/inventory/imports?partial=true&group=default&fileName=rack1.csv')
        .set('authorization', `Bearer ${writer}`)
        .set('content-type', 'text/csv')
        .send(file.toString());
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'partial', fileName: 'rack1.csv', counts: { created: 4, invalid: 13 } });
      expect(response.body.problems).toEqual(expectedProblems(file));
      const record = await http().get(`/v1/inventory/imports/${response.body.id}`).set('authorization', `Bearer ${reader}`);
      expect(record.status).toBe(200);
      expect(record.body).toMatchObject({ id: response.body.id, status: 'partial', startedBy: expect.stringMatching(/^token:/), counts: response.body.counts });
      expect(record.body.problems).toEqual(JSON.parse(JSON.stringify(response.body.problems)));
      const list = await http().get('/v1/machines?limit=2').set('authorization', `Bearer ${reader}`);
      expect(list.body.map((m: { serial: string }) => m.serial)).toEqual(['SN-001', 'SN-002']);
      const next = await http().get('/v1/machines?after=SN-002').set('authorization', `Bearer ${reader}`);
      expect(next.body.map((m: { serial: string }) => m.serial)).toEqual(['SN-003', 'SN-004']);
    });

    it('answers 4xx, never 500: scope, media type, header, query, unknown import', async () => {
      const post = (token: string, type: string, body: string, query = '') =>
        http().post(`/v1/inventory/imports${query}`).set('authorization', `Bearer ${token}`).set('content-type', type).send(body);
      expect((await post(reader, 'text/csv', 'serial,ek_pub_hash\n')).status).toBe(403);
      expect((await http().post('/v1/inventory/imports').set('content-type', 'text/csv').send('x')).status).toBe(401);
      expect((await post(writer, 'application/json', '{}')).status).toBe(415);
      const badHeader = await post(writer, 'text/csv', 'serial,colour\n');
      expect(badHeader.status).toBe(400);
      expect(badHeader.body.message).toEqual(expect.arrayContaining([expect.stringMatching(/unknown column "colour"/)]));
      expect((await post(writer, 'text/csv', 'serial,ek_pub_hash\n', '?dryRun=yes')).status).toBe(400);
      expect((await post(writer, 'text/csv', 'serial,ek_pub_hash\n', '?group=Bad%20Group')).status).toBe(400);
      expect((await http().get('/v1/inventory/imports/00000000-0000-4000-8000-000000000000').set('authorization', `Bearer ${reader}`)).status).toBe(404);
      expect((await http().get('/v1/inventory/imports/nope').set('authorization', `Bearer ${reader}`)).status).toBe(400);
      expect(await machines()).toEqual([]);
    });
  });

  describe('CLI rackseal inventory import', () => {
    const cli = (...args: string[]) => runRacksealCliAsync(['inventory', 'import', ...args]);

    it('imports a good file (exit 0), refuses a mixed one listing each line (exit 1), dry-run and partial flags', async () => {
      const mixed = join(dir, 'mixed.csv');
      await writeFile(mixed, mixedFile().toString());
      const refused = await cli(mixed, '--group', 'default', '--server', baseUrl, '--token', writer);
      expect(refused.status).toBe(1);
      expect(refused.stdout).toContain('refused: nothing was imported');
      const file = mixedFile();
      expect(refused.stdout).toContain(`line ${file.at('rogue')} (serial "SN-011"): untrusted-chain: signature-invalid`);
      expect(refused.stdout).toContain(`line ${file.at('sql')} (serial "'; DROP TABLE machines; --"): invalid-serial`);
      expect(refused.stdout).toMatch(/refused\s+13\n/);
      expect(await machines()).toEqual([]);

      const dry = await cli(mixed, '--dry-run', '--partial', '--group', 'default', '--server', baseUrl, '--token', writer);
      expect(dry.status).toBe(1);
      expect(dry.stdout).toContain('dry run (--partial)');
      expect(await machines()).toEqual([]);

      const partial = await cli(mixed, '--partial', '--group', 'default', '--server', baseUrl, '--token', writer, '--json');
      expect(partial.status).toBe(1);
      expect(JSON.parse(partial.stdout)).toMatchObject({ status: 'partial', counts: { created: 4 } });
      expect((await machines()).map((r) => r.serial)).toEqual(GOOD);

      const good = join(dir, 'good.csv');
      await writeFile(good, `serial,hostname,ek_cert\nSN-100,node100,${certs.fifth.toString('base64')}\n`);
      const ok = await cli(good, '--server', baseUrl, '--token', writer);
      expect(ok).toMatchObject({ status: 0, stderr: '' });
      expect(ok.stdout).toMatch(/^imported \(import [0-9a-f-]{36}\)\n {2}rows +1\n/);
      const reimport = await cli(good, '--server', baseUrl, '--token', writer);
      expect(reimport.stdout).toMatch(/unchanged +1/);
    });

    it('streams a multi-megabyte file in many chunks through HTTP and lands every row', async () => {
      const big = join(dir, 'big.csv');
      const lines = ['serial,hostname,group,ek_pub_hash'];
      for (let i = 0; i < 30_000; i++) {
        lines.push(`BULK-${i},bulk${i}.rack,bulk,${randomBytes(32).toString('hex')}`);
      }
      await writeFile(big, `${lines.join('\r\n')}\r\n`);
      const result = await cli(big, '--server', baseUrl, '--token', writer, '--json');
      expect(result.status).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ status: 'succeeded', counts: { rows: 30_000, valid: 30_000, created: 30_000 } });
      expect(await ds.query(`SELECT count(*)::int AS n FROM machines WHERE group_name = 'bulk'`)).toEqual([{ n: 30_000 }]);
    });

    it('exit 2 for usage, a missing file, a refused token or an unreachable server', async () => {
      const good = join(dir, 'good2.csv');
      await writeFile(good, 'serial,ek_pub_hash\n');
      expect((await cli(join(dir, 'missing.csv'), '--server', baseUrl, '--token', writer)).status).toBe(2);
      expect((await cli(good, '--token', writer)).status).toBe(2);
      const forbidden = await cli(good, '--server', baseUrl, '--token', reader);
      expect(forbidden.status).toBe(2);
      expect(forbidden.stderr).toContain('inventory:write');
      expect((await cli(good, '--server', baseUrl, '--token', `rks_${'A'.repeat(43)}`)).status).toBe(2);
      const unreachable = await cli(good, '--server', 'http://127.0.0.1:1', '--token', writer);
      expect(unreachable.status).toBe(2);
      expect(unreachable.stderr).toContain('cannot reach');
    });
  });
});
