import { TrustStore } from '@rackseal/ek-trust';
import { inProcessRowChecker, parseHeader, RowCheckerCrashError, WorkerRowChecker, type CsvRecordLike, type RowCheckContext } from '@rackseal/inventory';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { runRacksealCli } from './support/cli-runner';
import { DIST, startControlPlane, type RunningProcess } from './support/processes';
import { type RawResponse, RawUpload } from './support/raw-upload';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

const hash = (): string => randomBytes(32).toString('hex');
/** `count` valid rows (EK by hash only) with serials PREFIX-0…, one per line. */
const rows = (prefix: string, count: number): string => Array.from({ length: count }, (_, i) => `${prefix}-${i},${hash()}\n`).join('');

// Issue 9 items 2, 3, 4 (CSV), 7 and the CSV charset, against a built control plane (worker threads
// check the rows, as in production) on a small pool: 4 connections, at most 3 imports at once.
describe('inventory import limits (built control plane)', () => {
  const POOL = 4;
  const CAP = 3;
  // long enough for the test to look at the stalled uploads before they are cut off
  const IDLE_MS = 5000;
  // above the 20 MB of the 20,000-comma file, which must meet the per-record limit, not this one
  const MAX_FILE_BYTES = 24 * 1024 * 1024;
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let ds: DataSource;
  let proc: RunningProcess;
  let baseUrl: string;
  let token: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const issued = runRacksealCli(['token', 'create', '--name', 'importer', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(issued.status).toBe(0);
    token = issued.stdout.trim();
    ({ proc, baseUrl } = await startControlPlane(
      testEnv(db, prefix.prefix, {
        DATABASE_POOL_SIZE: String(POOL),
        INVENTORY_MAX_CONCURRENT_IMPORTS: String(CAP),
        INVENTORY_UPLOAD_IDLE_TIMEOUT_MS: String(IDLE_MS),
        INVENTORY_MAX_FILE_BYTES: String(MAX_FILE_BYTES),
      }),
    ));
  }, 60_000);

  afterAll(async () => {
    await proc?.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  const upload = (body: string | Buffer, query = '', contentType = 'text/csv'): Promise<RawResponse> => {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const raw = new RawUpload(baseUrl, `/v1/inventory/imports${query}`, {
      Authorization: `Bearer ${token}`,
      'Content-Type': contentType,
      'Content-Length': bytes.length,
    });
    void raw.send(bytes);
    return raw.response.finally(() => raw.socket.destroy());
  };
  const get = (path: string): Promise<Response> => fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const written = async (): Promise<{ machines: number; imports: number; audits: number }> => {
    const [counts] = (await ds.query(`
      SELECT (SELECT count(*)::int FROM machines) AS machines, (SELECT count(*)::int FROM inventory_imports) AS imports,
             (SELECT count(*)::int FROM audit_log WHERE action = 'inventory.imported') AS audits`)) as [{ machines: number; imports: number; audits: number }];
    return counts;
  };
  const idleInTransaction = async (): Promise<number> => {
    const [{ n }] = (await ds.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state = 'idle in transaction'`, [db.name])) as [
      { n: number },
    ];
    return n;
  };

  beforeEach(async () => {
    await ds.query('DELETE FROM machines');
    await ds.query('DELETE FROM inventory_imports');
  });

  it('item 2: 1000 rows of 20,000 commas are refused at line 2 naming the limit (dry run or not), nothing is written, and the next import works', async () => {
    const before = await written();
    const oom = `serial,ek_pub_hash\n${`${','.repeat(20000)}\n`.repeat(1000)}`;
    for (const query of ['?dryRun=true', '']) {
      const refused = await upload(oom, query);
      expect([query, refused.status]).toEqual([query, 400]);
      expect(JSON.parse(refused.body).message).toBe('line 2: more than 64 fields in one record (the limit per record); nothing was imported');
    }
    expect(await written()).toEqual(before);
    const next = await upload(`serial,ek_pub_hash\n${rows('AFTER', 3)}`);
    expect(next.status).toBe(200);
    expect(JSON.parse(next.body)).toMatchObject({ status: 'succeeded', counts: { rows: 3, created: 3 } });
    expect((await get('/health/ready')).status).toBe(200);
  });

  it('item 2: a record longer than 64 KiB and a file over INVENTORY_MAX_FILE_BYTES are refused (400 / 413) naming the limit', async () => {
    const before = await written();
    const long = await upload(`serial,ek_pub_hash\nA,${'x'.repeat(70 * 1024)}\n`);
    expect(long.status).toBe(400);
    expect(JSON.parse(long.body).message).toBe('line 2: record longer than 65536 characters (the limit per record); nothing was imported');
    expect(JSON.parse(long.body).code).toBe('inventory.invalid-file');
    // declared too large: refused before a byte is read
    const declared = new RawUpload(baseUrl, '/v1/inventory/imports', {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'text/csv',
      'Content-Length': MAX_FILE_BYTES + 1,
    });
    const tooLarge = await declared.response;
    declared.socket.destroy();
    expect(tooLarge.status).toBe(413);
    expect(JSON.parse(tooLarge.body).message).toBe('the file is larger than 25165824 bytes (Content-Length 25165825; the limit per file is INVENTORY_MAX_FILE_BYTES); nothing was read');
    // chunked, no length: refused where the limit is crossed
    // (blank lines: cheap to read, so only the byte count matters)
    const body = Buffer.from(`serial,ek_pub_hash\n${'\n'.repeat(MAX_FILE_BYTES)}`);
    expect(body.length).toBeGreaterThan(MAX_FILE_BYTES);
    const chunked = new RawUpload(baseUrl, '/v1/inventory/imports', { Authorization: `Bearer ${token}`, 'Content-Type': 'text/csv', 'Transfer-Encoding': 'chunked' });
    void chunked.send(Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]));
    const crossed = await chunked.response;
    chunked.socket.destroy();
    expect(crossed.status).toBe(413);
    expect(JSON.parse(crossed.body).message).toMatch(/^line \d+: the file is larger than 25165824 bytes \(INVENTORY_MAX_FILE_BYTES\); nothing was imported$/);
    expect(JSON.parse(crossed.body).code).toBe('inventory.too-large');
    expect(await written()).toEqual(before);
  });

  it('item 7: a 1 MB header of 150,000 unknown columns gets a small 400 naming the limit', async () => {
    const header = Array.from({ length: 150_000 }, (_, i) => `c${i}`).join(',');
    expect(header.length).toBeGreaterThan(1_000_000);
    const refused = await upload(`${header}\n`);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body).message).toBe('line 1: more than 64 fields in one record (the limit per record); nothing was imported');
    expect(refused.size).toBeLessThan(1024);
  });

  it('item 4: NUL and other control characters in cells are row problems naming the column (dry run too); ?fileName with NUL is a 400', async () => {
    const file = ['serial,hostname,group,ek_pub_hash', `SN\u0000A,,,${hash()}`, `SN-B,host\u001b[31m,,${hash()}`, `SN-C,,g\u0007,${hash()}`, `SN-D,,,${hash()}`].join('\n');
    for (const query of ['?dryRun=true&partial=true', '?partial=true']) {
      const response = await upload(file, query);
      expect([query, response.status]).toEqual([query, 200]);
      expect(JSON.parse(response.body).problems).toEqual([
        { line: 2, reason: 'control-character', message: 'serial contains a control character (U+0000 at character 3)', serial: 'SN\\u0000A' },
        { line: 3, reason: 'control-character', message: 'hostname contains a control character (U+001B at character 5)', serial: 'SN-B' },
        { line: 4, reason: 'control-character', message: 'group contains a control character (U+0007 at character 2)', serial: 'SN-C' },
      ]);
    }
    expect(await written()).toMatchObject({ machines: 1, imports: 1 });
    const before = await written();
    const badName = await upload(file, '?fileName=a%00b.csv');
    expect(badName.status).toBe(400);
    expect(JSON.parse(badName.body).message).toEqual(['fileName must not contain NUL bytes']);
    // Other control characters pass the HTTP layer's NUL check and are refused by the DTO itself.
    const escName = await upload(file, '?fileName=a%1B%5B2Jb.csv');
    expect(escName.status).toBe(400);
    expect(JSON.parse(escName.body).message).toEqual(['fileName must not contain control characters']);
    expect(await written()).toEqual(before);
  });

  it('charset: latin1 is refused with 415 naming it; utf-8 and us-ascii are read; invalid UTF-8 is a 400, never stored', async () => {
    const before = await written();
    const latin1 = await upload(Buffer.from(`serial,ek_pub_hash\nCAF\u00c9,${hash()}\n`, 'latin1'), '', 'text/csv; charset=latin1');
    expect(latin1.status).toBe(415);
    expect(JSON.parse(latin1.body).message).toBe('charset "latin1" is not supported: send the inventory as UTF-8 (Content-Type: text/csv; charset=utf-8)');
    for (const type of ['text/csv; charset=UTF-8', 'text/csv;charset="us-ascii"']) {
      expect([type, (await upload(`serial,ek_pub_hash\nOK-1,${hash()}\n`, '?dryRun=true', type)).status]).toEqual([type, 200]);
    }
    const invalid = await upload(Buffer.concat([Buffer.from(`serial,hostname,ek_pub_hash\nOK-2,,${hash()}\nBAD-`), Buffer.from([0xc9, 0x2c, 0x2c]), Buffer.from(`${hash()}\n`)]));
    expect(invalid.status).toBe(400);
    expect(JSON.parse(invalid.body).message).toBe('line 3: the file is not valid UTF-8; save it as UTF-8 ("CSV UTF-8" in a spreadsheet)');
    expect(await written()).toEqual(before);
  });

  it('item 3: stalled uploads hold at most the import cap of connections, health and other routes answer, the stalled ones are cut off after the idle timeout with nothing written', async () => {
    const before = await written();
    // More uploads than the pool has connections; each declares 20 MB, sends a header and 1500 rows
    // (past the first batch, so its transaction is open) and stalls.
    const stalled = Array.from({ length: POOL + 4 }, (_, i) => {
      const raw = new RawUpload(baseUrl, '/v1/inventory/imports', { Authorization: `Bearer ${token}`, 'Content-Type': 'text/csv', 'Content-Length': 20_000_000 });
      void raw.send(`serial,ek_pub_hash\n${rows(`STALL${i}`, 1500)}`);
      return raw;
    });
    const answers = new Map<RawUpload, RawResponse>();
    stalled.forEach((raw) => void raw.response.then((r) => answers.set(raw, r)));
    // Those over the cap are refused at once, before their body is read.
    while (answers.size < stalled.length - CAP) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const busy of answers.values()) {
      expect(busy.status).toBe(503);
      expect(busy.headers['retry-after']).toBe('5');
      expect(JSON.parse(busy.body).code).toBe('inventory.busy');
      expect(JSON.parse(busy.body).message).toBe('3 inventory import(s) are already running on this control plane (INVENTORY_MAX_CONCURRENT_IMPORTS); retry shortly');
    }
    // The admitted ones wait in open transactions: at most CAP connections are taken.
    while ((await idleInTransaction()) < CAP && answers.size < stalled.length) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(answers.size).toBe(stalled.length - CAP);
    expect(await idleInTransaction()).toBe(CAP);
    const ready = await get('/health/ready');
    expect(ready.status).toBe(200);
    const machines = await get('/v1/machines');
    expect(machines.status).toBe(200);
    // Then the idle timeout cuts each stalled upload off: 408, connection closed, transaction rolled back.
    const results = await Promise.all(stalled.map((raw) => raw.response));
    const timedOut = results.filter((r) => r.status === 408);
    expect(timedOut).toHaveLength(CAP);
    for (const r of timedOut) {
      // "no data", or "only N bytes" when the rows' last chunks fell in the window that ran out
      expect(JSON.parse(r.body).message).toMatch(
        new RegExp(`^the upload sent (no data for ${IDLE_MS} ms|only \\d+ bytes in ${IDLE_MS} ms) \\(INVENTORY_UPLOAD_IDLE_TIMEOUT_MS\\)`),
      );
      expect(r.headers.connection).toBe('close');
      expect(JSON.parse(r.body).code).toBe('inventory.upload-idle');
    }
    // the server closed them (the test never does)
    await Promise.all(stalled.map((raw) => raw.closed));
    expect(await idleInTransaction()).toBe(0);
    expect(await written()).toEqual(before);
    const next = await upload(`serial,ek_pub_hash\n${rows('NEXT', 2)}`);
    expect(JSON.parse(next.body)).toMatchObject({ status: 'succeeded', counts: { created: 2 } });
  }, 60_000);
  it('item 3: a trickling upload (a byte every 250 ms) is cut off like a stalled one: 408 naming the minimum rate, nothing written', async () => {
    const before = await written();
    const raw = new RawUpload(baseUrl, '/v1/inventory/imports', { Authorization: `Bearer ${token}`, 'Content-Type': 'text/csv', 'Content-Length': 20_000_000 });
    await raw.send(`serial,ek_pub_hash\n${rows('TRICKLE', 1500)}`);
    // Before the floor, each byte reset the idle timer: this upload held its slot for as long as it kept trickling.
    const trickle = setInterval(() => raw.socket.destroyed || raw.socket.write('x'), 250);
    try {
      const response = await raw.response;
      expect(response.status).toBe(408);
      expect(JSON.parse(response.body).message).toMatch(
        new RegExp(`^the upload sent only \\d+ bytes in ${IDLE_MS} ms \\(INVENTORY_UPLOAD_IDLE_TIMEOUT_MS\\), below the minimum of 1024 bytes/s; nothing was imported$`),
      );
    } finally {
      clearInterval(trickle);
    }
    await raw.closed;
    expect(await idleInTransaction()).toBe(0);
    expect(await written()).toEqual(before);
  }, 60_000);
});

describe('WorkerRowChecker', () => {
  it('item 2: a thread that dies (out of memory) fails only its batch with a clear error, is replaced, and the next check succeeds', async () => {
    // one thread, so the whole poisoned batch lands on it
    const checker = new WorkerRowChecker(1, join(DIST, 'libs/inventory/src/row-worker.js'));
    try {
      const columns = parseHeader(['serial', 'ek_pub_hash']);
      const ctx: RowCheckContext = { columns, store: new TrustStore(), now: new Date(), ekGraceDays: 0, caGraceDays: 0 };
      const good: CsvRecordLike[] = Array.from({ length: 10 }, (_, i) => ({ line: i + 2, fields: [`SN-${i}`, hash()] }));
      const expected = await inProcessRowChecker.check(good, ctx);
      expect(await checker.check(good, ctx)).toEqual(expected);
      const before = checker.threadIds;
      // Ten million fields (~80 MB of pointers) overflow a worker's 64 MB heap, as the 20,000-comma
      // file did: the importer can no longer send such a batch (the CSV reader's limits), so this
      // stands for any thread crash.
      const poison: CsvRecordLike[] = Array.from({ length: 10_000 }, (_, i) => ({ line: i + 2, fields: new Array<string>(1000).fill('') }));
      const crash = checker.check(poison, ctx);
      poison.length = 0;
      await expect(crash).rejects.toThrow(RowCheckerCrashError);
      await expect(crash).rejects.toThrow(/^an inventory row-check thread stopped while checking this import \(.*\); nothing was imported, and the thread has been replaced: retry$/);
      expect(checker.threadIds).toHaveLength(1);
      expect(checker.threadIds[0]).not.toBe(before[0]);
      expect(await checker.check(good, ctx)).toEqual(expected);
    } finally {
      await checker.close();
    }
  });
});
