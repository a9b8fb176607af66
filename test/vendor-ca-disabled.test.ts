import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { makeCa, makeEkCertificate, type NameSpec, type TestCa } from '../libs/ek-trust/src/testing/certificate-builder';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { runRacksealCli } from './support/cli-runner';
import { startControlPlane, type RunningProcess } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

// Issue 9 item 1 through the built control plane (real HTTP, row checks on its worker threads):
// a disabled vendor CA — intermediate or root — must refuse every CSV row that would chain through
// it, whether the row supplies the same certificate in ek_intermediates or a cross-signed copy of
// its key. Also the operator's friction around it: fingerprint prefixes (item 2 of the brief),
// write scopes that can read back (item 3), control characters in CA labels (items 4 and 8).

const FROM = new Date('2024-01-01T00:00:00Z');
const TO = new Date('2044-01-01T00:00:00Z');
const ec = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const name = (cn: string): NameSpec => [[['O', 'Disable Test']], [['CN', cn]]];

const rootKeys = ec();
const intermediateKeys = ec();
const root = makeCa({ subject: name('Root'), keys: rootKeys, notBefore: FROM, notAfter: TO });
const otherRoot = makeCa({ subject: name('Other Root'), keys: ec(), notBefore: FROM, notAfter: TO });
const intermediate = makeCa({ subject: name('Intermediate'), keys: intermediateKeys, issuer: root, notBefore: FROM, notAfter: TO, serial: 7 });
/** The intermediate's key certified by the other root: different DER, same SubjectPublicKeyInfo. */
const intermediateCross = makeCa({ subject: name('Intermediate'), keys: intermediateKeys, issuer: otherRoot, notBefore: FROM, notAfter: TO, serial: 8 });
/** The root's key certified by the other root. */
const rootCross = makeCa({ subject: name('Root'), keys: rootKeys, issuer: otherRoot, notBefore: FROM, notAfter: TO, serial: 9 });
const ekUnder = (issuer: TestCa): Buffer => makeEkCertificate({ issuer, publicKey: ec().publicKey, notBefore: FROM, notAfter: TO });

const b64 = (der: Buffer): string => der.toString('base64');
const pem = (der: Buffer): string => `-----BEGIN CERTIFICATE-----\n${b64(der).replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;

type Json = Record<string, unknown>;

interface ImportBody {
  id: string | null;
  status: string;
  counts: { rows: number; valid: number; invalid: number; created: number };
  problems: { line: number; reason: string; serial?: string; message: string }[];
}

describe('a disabled vendor CA refuses every chain through it (built control plane, HTTP)', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let proc: RunningProcess;
  let baseUrl: string;
  let ds: DataSource;
  let admin: string;
  const fp: Record<'root' | 'otherRoot' | 'intermediate', string> = {} as never;

  const call = async (method: string, path: string, token: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: Json }> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': type }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const count = async (sql: string): Promise<number> => Number(((await ds.query(sql)) as { n: number }[])[0]!.n);
  const importRow = async (serial: string, ek: Buffer, intermediates: Buffer[]): Promise<{ status: number; body: ImportBody }> =>
    (await call('POST', '/v1/inventory/imports?fileName=disable.csv', admin, `serial,ek_cert,ek_intermediates\r\n${serial},${b64(ek)},${intermediates.map(b64).join(';')}\r\n`, 'text/csv')) as unknown as {
      status: number;
      body: ImportBody;
    };
  const lastImportAudit = async (): Promise<{ outcome: string; details: { importId: string; status: string; invalid: number } }> =>
    ((await ds.query(`SELECT outcome, details FROM audit_log WHERE action = 'inventory.imported' ORDER BY seq DESC LIMIT 1`)) as never[])[0]!;

  /** The row is refused as untrusted-chain/disabled-ca naming `disabledFp`; nothing lands; the import and its audit record say refused. */
  async function expectRefused(serial: string, ek: Buffer, intermediates: Buffer[], disabledFp: string): Promise<void> {
    const machinesBefore = await count('SELECT count(*)::int AS n FROM machines');
    const { status, body } = await importRow(serial, ek, intermediates);
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'refused', counts: { rows: 1, valid: 0, invalid: 1, created: 0 } });
    expect(body.problems).toEqual([{ line: 2, reason: 'untrusted-chain', serial, message: expect.stringMatching(/^disabled-ca: CA "O=Disable Test, CN=[A-Za-z ]+" /) }]);
    expect(body.problems[0]!.message).toContain(`disabled (${disabledFp})`);
    expect(await count('SELECT count(*)::int AS n FROM machines')).toBe(machinesBefore);
    expect(await lastImportAudit()).toMatchObject({ outcome: 'refused', details: { importId: body.id, status: 'refused', invalid: 1 } });
    const [record] = (await ds.query('SELECT status FROM inventory_imports WHERE id = $1', [body.id])) as { status: string }[];
    expect(record).toEqual({ status: 'refused' });
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ({ proc, baseUrl } = await startControlPlane(testEnv(db, prefix.prefix)));
    ds = await openDataSource(db.url);
    // The first token as an operator makes it: the bootstrap command, straight in PostgreSQL.
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url, RACKSEAL_ENV: 'test' } });
    expect([bootstrap.status, bootstrap.stdout]).toEqual([0, expect.stringMatching(/^rks_\S+\n$/)]);
    admin = bootstrap.stdout.trim();
    const added = await call('POST', '/v1/vendor-cas', admin, {
      files: [
        { name: 'root.pem', content: pem(root.der) },
        { name: 'other-root.pem', content: pem(otherRoot.der) },
        { name: 'intermediate.pem', content: pem(intermediate.der) },
      ],
    });
    expect(added.status).toBe(201);
    const bySource = new Map((added.body.results as { source: string; fingerprint: string }[]).map((r) => [r.source, r.fingerprint]));
    fp.root = bySource.get('root.pem')!;
    fp.otherRoot = bySource.get('other-root.pem')!;
    fp.intermediate = bySource.get('intermediate.pem')!;
  }, 60_000);

  afterAll(async () => {
    await proc?.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  it('baseline: with nothing disabled, rows chain through the stored intermediate or a cross-signed copy of it', async () => {
    const viaStore = await call('POST', '/v1/inventory/imports?dryRun=true', admin, `serial,ek_cert\nSN-B1,${b64(ekUnder(intermediate))}\n`, 'text/csv');
    expect(viaStore.body).toMatchObject({ status: 'succeeded', counts: { valid: 1, invalid: 0 } });
    const viaCopy = await call(
      'POST',
      '/v1/inventory/imports?dryRun=true',
      admin,
      `serial,ek_cert,ek_intermediates\nSN-B2,${b64(ekUnder(intermediate))},${b64(intermediateCross.der)}\n`,
      'text/csv',
    );
    expect(viaCopy.body).toMatchObject({ status: 'succeeded', counts: { valid: 1, invalid: 0 } });
  });

  it('a disabled intermediate (disabled by the 16-digit prefix `vendor-ca add` prints) refuses rows supplying it, or a cross-signed copy of its key', async () => {
    const disabled = await call('DELETE', `/v1/vendor-cas/${fp.intermediate.slice(0, 16).toUpperCase()}`, admin);
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ changed: true, ca: { fingerprint: fp.intermediate, enabled: false } });

    await expectRefused('SN-I1', ekUnder(intermediate), [], fp.intermediate);
    await expectRefused('SN-I2', ekUnder(intermediate), [intermediate.der], fp.intermediate);
    await expectRefused('SN-I3', ekUnder(intermediate), [intermediateCross.der], fp.intermediate);
    await expectRefused('SN-I4', ekUnder(intermediate), [intermediateCross.der, intermediate.der, root.der], fp.intermediate);

    expect((await call('POST', `/v1/vendor-cas/${fp.intermediate.slice(0, 8)}/enable`, admin)).body).toMatchObject({ changed: true, ca: { enabled: true } });
  });

  it('a disabled root refuses rows chaining to it, also when they supply it or a cross-signed copy of its key; enabled again, the row lands', async () => {
    expect((await call('DELETE', `/v1/vendor-cas/${fp.root.toUpperCase().replace(/(..)(?!$)/g, '$1:')}`, admin)).body).toMatchObject({ changed: true, ca: { kind: 'root', enabled: false } });
    const ek = ekUnder(intermediate);
    await expectRefused('SN-R1', ek, [], fp.root);
    await expectRefused('SN-R2', ek, [root.der], fp.root);
    await expectRefused('SN-R3', ek, [rootCross.der], fp.root);

    expect((await call('POST', `/v1/vendor-cas/${fp.root}/enable`, admin)).status).toBe(200);
    const landed = await importRow('SN-R4', ek, [rootCross.der]);
    expect(landed.body).toMatchObject({ status: 'succeeded', counts: { created: 1 } });
    expect(await count(`SELECT count(*)::int AS n FROM machines WHERE serial = 'SN-R4'`)).toBe(1);
  });

  it('fingerprint prefixes: unique resolves, ambiguous is a 409 listing the matches, unknown 404, short or non-hex 400 naming the parameter', async () => {
    const shown = await call('GET', `/v1/vendor-cas/${fp.otherRoot.slice(0, 12)}`, admin);
    expect([shown.status, shown.body.fingerprint]).toEqual([200, fp.otherRoot]);

    // Two rows whose fingerprints share 8 digits cannot be made by hashing; they are written here
    // directly (same DER as a stored CA: loadTrustStore would treat them as duplicates) and removed.
    const twins = ['deadbeef'.padEnd(64, '1'), 'deadbeef'.padEnd(64, '2')];
    for (const twin of twins) {
      await ds.query(
        `INSERT INTO vendor_cas (id, fingerprint, der, subject, issuer, serial, not_before, not_after, kind, is_anchor, enabled, source, added_at, added_by)
         SELECT gen_random_uuid(), $1, der, subject, issuer, serial, not_before, not_after, kind, is_anchor, enabled, 'twin', now(), 'test' FROM vendor_cas WHERE fingerprint = $2`,
        [twin, fp.otherRoot],
      );
    }
    try {
      const auditBefore = await count('SELECT count(*)::int AS n FROM audit_log');
      for (const [method, path] of [
        ['GET', '/v1/vendor-cas/DEADBEEF'],
        ['DELETE', '/v1/vendor-cas/deadbeef'],
        ['POST', '/v1/vendor-cas/de:ad:be:ef/enable'],
      ] as const) {
        const ambiguous = await call(method, path, admin);
        expect([method, ambiguous.status]).toEqual([method, 409]);
        expect(ambiguous.body.message).toBe(`fingerprint prefix deadbeef is ambiguous: it matches ${twins.join(', ')}; give more digits`);
      }
      const pin = await call('PATCH', '/v1/vendor-cas/deadbeef', admin, { anchor: true });
      expect(pin.status).toBe(409);
      expect((await call('DELETE', `/v1/vendor-cas/${twins[0]!.slice(0, 60)}`, admin)).body).toMatchObject({ changed: true, ca: { fingerprint: twins[0] } });
      expect(await count('SELECT count(*)::int AS n FROM audit_log')).toBe(auditBefore + 1);
    } finally {
      await ds.query('DELETE FROM vendor_cas WHERE fingerprint = ANY($1)', [twins]);
    }

    const unknown = await call('DELETE', '/v1/vendor-cas/0123456789abcdef', admin);
    expect([unknown.status, unknown.body.message]).toEqual([404, 'no vendor CA "0123456789abcdef"']);
    for (const bad of ['abcdef1', 'xyz', 'abc%00def0123', '%1B%5B31mabcdef0123']) {
      const refused = await call('DELETE', `/v1/vendor-cas/${bad}`, admin);
      expect([bad, refused.status]).toEqual([bad, 400]);
      // A NUL byte is refused for every route by the HTTP layer before the route looks at it.
      expect(refused.body.message).toEqual(
        bad.includes('%00')
          ? ['fingerprint must not contain NUL bytes']
          : expect.stringMatching(/^fingerprint ".*" is neither a SHA-256 fingerprint \(64 hex digits, or a unique prefix of at least 8\) nor a CA id \(uuid\)$/),
      );
      expect(String(refused.body.message)).not.toMatch(/\p{Cc}/u);
    }
  });

  it('X:write implies X:read for vendor CAs and inventory; read never implies write; nothing else is implied', async () => {
    const issue = async (scope: string): Promise<string> => {
      const issued = await call('POST', '/v1/tokens', admin, { name: `only-${scope.replace(':', '-')}`, scopes: [scope] });
      expect(issued.status).toBe(201);
      return issued.body.token as string;
    };
    const caWriter = await issue('vendor-ca:write');
    const inventoryWriter = await issue('inventory:write');
    const caReader = await issue('vendor-ca:read');
    const listed = await call('GET', '/v1/vendor-cas', caWriter);
    expect(listed.status).toBe(200);
    expect((listed.body as unknown as { fingerprint: string }[]).map((c) => c.fingerprint)).toEqual(expect.arrayContaining([fp.root, fp.intermediate]));
    expect((await call('GET', `/v1/vendor-cas/${fp.root.slice(0, 16)}`, caWriter)).status).toBe(200);
    expect((await call('GET', '/v1/machines', inventoryWriter)).status).toBe(200);
    const crossed = await call('GET', '/v1/machines', caWriter);
    expect([crossed.status, crossed.body.message]).toEqual([403, 'this token lacks the "inventory:read" scope']);
    expect((await call('GET', '/v1/audit', caWriter)).status).toBe(403);
    const readOnly = await call('DELETE', `/v1/vendor-cas/${fp.root}`, caReader);
    expect([readOnly.status, readOnly.body.message]).toEqual([403, 'this token lacks the "vendor-ca:write" scope']);
  });

  it('control characters in a CA label (file name or source) are a 400 naming the field; nothing is written', async () => {
    const casBefore = await count('SELECT count(*)::int AS n FROM vendor_cas');
    const auditBefore = await count('SELECT count(*)::int AS n FROM audit_log');
    const fresh = makeCa({ subject: name('Fresh'), keys: ec(), notBefore: FROM, notAfter: TO });
    const cases: [unknown, string][] = [
      // NUL: refused for every route by the HTTP layer, before the DTO's own check.
      [{ files: [{ name: 'ca\u0000.pem', content: pem(fresh.der) }] }, 'files.0.name must not contain NUL bytes'],
      [{ files: [{ name: 'ok.pem', content: pem(fresh.der) }, { name: '\u001b[2J\u001b[31mfake.pem', content: pem(fresh.der) }] }, 'files.1.name must not contain control characters'],
      [{ pem: pem(fresh.der), source: 'bundle.pem\nadded: everything' }, 'source must not contain control characters'],
      [{ pem: pem(fresh.der), source: 'evil\u202emep.exe' }, 'source must not contain control characters'],
    ];
    for (const [body, message] of cases) {
      const refused = await call('POST', '/v1/vendor-cas', admin, body);
      expect(refused.status).toBe(400);
      expect(refused.body.message).toEqual([expect.stringContaining(message)]);
    }
    expect(await count('SELECT count(*)::int AS n FROM vendor_cas')).toBe(casBefore);
    expect(await count('SELECT count(*)::int AS n FROM audit_log')).toBe(auditBefore);
  });
});
