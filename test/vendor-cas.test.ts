import type { INestApplication } from '@nestjs/common';
import { ApiTokens } from '@rackseal/api-tokens';
import { TrustStore, verifyCaChain, verifyEkChain } from '@rackseal/ek-trust';
import { loadTrustStore } from '@rackseal/vendor-cas';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { makeCa, makeEkCertificate } from '../libs/ek-trust/src/testing/certificate-builder';
import { createTestDatabase, type TestDatabase } from './support/database';
import { fixturePath } from './support/fixtures';
import { freePort } from './support/free-port';
import { runRacksealCliAsync } from './support/cli-runner';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

const FIXTURES = fixturePath('vendor-cas');
const FIXTURE_FILES = readdirSync(FIXTURES).sort();
/** libs/ek-trust/README.md "Fixture results". */
const ROOT_FILES = ['GS_TPM_RT', 'INF_ECC_010RT', 'INF_RSA_010RT', 'INTEL_RT', 'NTC1', 'NTC2', 'NUVO_0100', 'NUVO_1110', 'NUVO_1111', 'NUVO_2110', 'NUVO_2111'].map((n) => `${n}.pem`);
const DUPLICATE_FILES = ['IFX_RSA_01I.pem', 'IFX_RSA_02I.pem', 'IFX_RSA_03I.pem', 'IFX_RSA_04I.pem', 'IFX_RSA_05I.pem', 'IFX_RSA_08I.pem'];

const FROM = new Date('2024-01-01T00:00:00Z');
const TO = new Date('2044-01-01T00:00:00Z');
const localRoot = makeCa({ subject: [[['CN', 'Rackseal Test Vendor Root']]], keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }), notBefore: FROM, notAfter: TO });
const localIntermediate = makeCa({
  subject: [[['CN', 'Rackseal Test Vendor Intermediate']]],
  keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  issuer: localRoot,
  notBefore: FROM,
  notAfter: TO,
  serial: 7,
});
const ekCert = makeEkCertificate({ issuer: localIntermediate, publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, notBefore: FROM, notAfter: TO });

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
}

interface Cli {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Async: the control plane runs in this process, so a blocking spawnSync would deadlock it. */
function runCli(...args: string[]): Promise<Cli> {
  return runRacksealCliAsync(args);
}

interface Harness {
  db: TestDatabase;
  app: INestApplication;
  ds: DataSource;
  baseUrl: string;
  admin: string;
  token(scopes: string[]): Promise<string>;
  count(sql: string): Promise<number>;
  close(): Promise<void>;
}

async function startHarness(prefix: TestQueuePrefix): Promise<Harness> {
  const db = await createTestDatabase();
  const app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const ds = app.get(DataSource);
  const tokens = app.get(ApiTokens);
  const token = async (scopes: string[]) => (await tokens.issue(`t-${scopes.join('-')}`, scopes, 'test:setup')).token;
  return {
    db,
    app,
    ds,
    baseUrl: `http://127.0.0.1:${port}`,
    admin: await token(['admin']),
    token,
    count: async (sql: string) => Number(((await ds.query(sql)) as { n: number }[])[0]!.n),
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
}

const countCas = 'SELECT count(*)::int AS n FROM vendor_cas';
const countAudit = 'SELECT count(*)::int AS n FROM audit_log';
/** The newest audit record's id: records appended later have larger ids. */
const lastAuditId = 'SELECT COALESCE(max(id), 0)::int AS n FROM audit_log';

describe('vendor CA trust store (API, CLI, loadTrustStore)', () => {
  let prefix: TestQueuePrefix;
  let h: Harness;

  beforeAll(async () => {
    prefix = createTestQueuePrefix();
    h = await startHarness(prefix);
  });

  afterAll(async () => {
    await h.close();
    await prefix.clear();
  });

  const http = () => request(h.app.getHttpServer());
  const post = (body: unknown, token = h.admin) => http().post('/v1/vendor-cas').set('Authorization', `Bearer ${token}`).send(body as object);

  it('needs vendor-ca:read to list and vendor-ca:write to change; 403 names the scope and writes nothing', async () => {
    const reader = await h.token(['vendor-ca:read']);
    const auditor = await h.token(['audit:read']);
    const body = { pem: pem(localRoot.der) };
    const refused = await post(body, reader);
    expect(refused.status).toBe(403);
    expect(refused.body.message).toBe('this token lacks the "vendor-ca:write" scope');
    expect((await http().get('/v1/vendor-cas').set('Authorization', `Bearer ${auditor}`)).body.message).toBe('this token lacks the "vendor-ca:read" scope');
    expect((await http().get('/v1/vendor-cas').set('Authorization', `Bearer ${reader}`)).status).toBe(200);
    const fp = '0'.repeat(64);
    expect((await http().delete(`/v1/vendor-cas/${fp}`).set('Authorization', `Bearer ${reader}`)).status).toBe(403);
    expect((await http().post(`/v1/vendor-cas/${fp}/enable`).set('Authorization', `Bearer ${reader}`)).status).toBe(403);
    expect((await http().get('/v1/vendor-cas')).status).toBe(401);
    expect(await h.count(countCas)).toBe(0);
  });

  it('refuses malformed input with a 400 naming the problem, and writes nothing (not even the good certificates of the call)', async () => {
    const good = readFileSync(join(FIXTURES, 'GS_TPM_RT.pem'), 'utf8');
    const gsDer = readFileSync(join(FIXTURES, 'GS_TPM_RT.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s/g, '');
    const truncated = Buffer.from(gsDer, 'base64').subarray(0, 300);
    const auditBefore = await h.count(countAudit);
    const cases: [unknown, RegExp][] = [
      [{ pem: 'hello world' }, /not DER, PEM or base64 DER/],
      [{ pem: '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' }, /PEM block #1 is not valid base64/],
      [{ pem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, /no CERTIFICATE block/],
      [{ pem: `${good}${pem(truncated)}` }, /^"pem": truncated or malformed DER: Certificate at offset 0: length \d+ runs past the end/],
      [{ files: [{ name: 'GS_TPM_RT.pem', content: good }, { name: 'bad.der', content: 'not*base64' }] }, /file "bad.der": content is neither PEM nor base64/],
      [{ files: [{ name: 'GS_TPM_RT.pem', content: good }, { name: 'cut.der', content: truncated.toString('base64') }] }, /"cut.der": truncated or malformed DER/],
      [{ files: [{ name: 'zeros.der', content: Buffer.alloc(64).toString('base64') }] }, /"zeros.der": not DER, PEM or base64 DER/],
      [{ pem: good, files: [{ name: 'a', content: good }] }, /exactly one of "pem".*or "files"/],
      [{}, /exactly one of "pem"/],
      [{ pem: good, extra: 1 }, /property extra should not exist/],
      [{ files: [] }, /files must contain at least 1 elements/],
      [{ files: Array.from({ length: 201 }, (_, i) => ({ name: `f${i}`, content: 'AAAA' })) }, /files must contain no more than 200 elements/],
      [{ files: [{ name: 'big.pem', content: 'A'.repeat(70_000) }] }, /content must be shorter than or equal to 65536 characters/],
      [{ pem: 42 }, /pem must be a string/],
    ];
    for (const [body, message] of cases) {
      const response = await post(body);
      expect([JSON.stringify(body).slice(0, 80), response.status]).toEqual([JSON.stringify(body).slice(0, 80), 400]);
      const text = Array.isArray(response.body.message) ? response.body.message.join('; ') : response.body.message;
      expect(text).toMatch(message);
    }
    const notARef = await http().delete('/v1/vendor-cas/not-a-fingerprint').set('Authorization', `Bearer ${h.admin}`);
    expect(notARef.status).toBe(400);
    expect(notARef.body.code).toBe('vendor-ca.invalid-input');
    expect(await h.count(countCas)).toBe(0);
    expect(await h.count(countAudit)).toBe(auditBefore);
  });

  it('loads all 51 fixture files through the API: 45 CAs, 11 roots, 6 reported as duplicates; one audit record with fingerprints and no certificate bytes', async () => {
    const idBefore = await h.count(lastAuditId);
    const files = FIXTURE_FILES.map((name) => ({ name, content: readFileSync(join(FIXTURES, name)).toString('base64') }));
    expect(files).toHaveLength(51);
    const response = await post({ files });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ added: 45, duplicate: 6, rejected: 0 });
    const results = response.body.results as { status: string; source: string; kind: string; fingerprint: string; duplicateOf?: string; chain?: { ok: boolean; reason?: string; anchor?: string } }[];
    expect(results).toHaveLength(51);
    expect(results.filter((r) => r.status === 'duplicate').map((r) => [r.source, r.duplicateOf])).toEqual(DUPLICATE_FILES.map((f) => [f, 'upload']));
    expect(results.filter((r) => r.kind === 'root').map((r) => r.source)).toEqual(ROOT_FILES);
    // Intermediate→root pairs present in the fixtures chain (README "Fixture results"), checked now.
    const chainOf = (file: string) => results.find((r) => r.source === file)!.chain;
    expect(chainOf('INTEL_I.pem')).toMatchObject({ ok: true, anchor: expect.stringContaining('Intel') });
    expect(chainOf('STM_RSA_RT.pem')).toMatchObject({ ok: true });
    expect(chainOf('IFX_RSA_RT.pem')).toMatchObject({ ok: false, reason: 'untrusted-root' });

    expect(await h.count(countCas)).toBe(45);
    expect(await h.count(`SELECT count(*)::int AS n FROM vendor_cas WHERE kind = 'root' AND is_anchor`)).toBe(11);
    expect(await h.count(`SELECT count(*)::int AS n FROM vendor_cas WHERE kind = 'intermediate' AND NOT is_anchor`)).toBe(34);

    // Same counts as libs/ek-trust reports from the files.
    const reference = TrustStore.from(FIXTURE_FILES.map((f) => readFileSync(join(FIXTURES, f)))).store;
    const store = await loadTrustStore(h.ds);
    expect([store.roots().length, store.intermediates().length]).toEqual([reference.roots().length, reference.intermediates().length]);
    expect(store.entries().map((e) => e.fingerprint).sort()).toEqual(reference.entries().map((e) => e.fingerprint).sort());

    const audit = (await h.ds.query(`SELECT actor, action, outcome, details FROM audit_log WHERE id > $1 ORDER BY id`, [idBefore])) as {
      actor: string;
      action: string;
      outcome: string;
      details: { added: { fingerprint: string }[]; duplicates: number; rejected: unknown[] };
    }[];
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'vendor-ca.added', outcome: 'success', actor: expect.stringMatching(/^token:/) });
    expect(audit[0]!.details.added.map((a) => a.fingerprint).sort()).toEqual(reference.entries().map((e) => e.fingerprint).sort());
    expect(audit[0]!.details).toMatchObject({ duplicates: 6, rejected: [] });
    const gsBase64 = readFileSync(join(FIXTURES, 'GS_TPM_RT.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s/g, '');
    expect(JSON.stringify(audit)).not.toContain(gsBase64.slice(100, 140));
    expect(JSON.stringify(audit)).not.toMatch(/BEGIN CERTIFICATE|\\x30/);

    const list = await http().get('/v1/vendor-cas').set('Authorization', `Bearer ${h.admin}`);
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(45);
    expect(list.body[0]).toMatchObject({ kind: 'root', anchor: true, enabled: true, source: expect.any(String), fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(list.body)).not.toMatch(/"der"/);
  });

  it('re-adding through the CLI is a no-op: every certificate a duplicate, exit 0, no new audit record', async () => {
    const auditBefore = await h.count(countAudit);
    const run = await runCli('vendor-ca', 'add', '--server', h.baseUrl, '--token', h.admin, FIXTURES);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/\n51 certificates: 0 added, 51 duplicate, 0 rejected\n$/);
    expect(run.stdout.split('\n').filter((l) => l.startsWith('duplicate'))).toHaveLength(51);
    expect(await h.count(countCas)).toBe(45);
    expect(await h.count(countAudit)).toBe(auditBefore);

    const again = await post({ pem: FIXTURE_FILES.map((f) => readFileSync(join(FIXTURES, f), 'utf8')).join('\n') });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ added: 0, duplicate: 51, rejected: 0 });
    expect(await h.count(countAudit)).toBe(auditBefore);
  });

  it('a leaf EK certificate uploaded as a CA is rejected with its reason; the rest of the call is added (CLI exit 1)', async () => {
    const idBefore = await h.count(lastAuditId);
    const response = await post({ pem: `${pem(localRoot.der)}${pem(ekCert)}`, source: 'mixed.pem' });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ added: 1, duplicate: 0, rejected: 1 });
    expect(response.body.results[0]).toMatchObject({ status: 'added', kind: 'root', anchor: true, source: 'mixed.pem', position: 1 });
    expect(response.body.results[1]).toMatchObject({ status: 'rejected', reason: 'not-a-ca', position: 2, message: expect.stringMatching(/is not a CA certificate \(basicConstraints cA is not TRUE\)/) });
    expect(await h.count(countCas)).toBe(46);
    const [audit] = (await h.ds.query(`SELECT outcome, details FROM audit_log WHERE id > $1`, [idBefore])) as { outcome: string; details: { rejected: { reason: string; fingerprint: string }[] } }[];
    expect(audit).toMatchObject({ outcome: 'success', details: { rejected: [{ reason: 'not-a-ca', fingerprint: response.body.results[1].fingerprint }] } });

    // The CLI: the same leaf next to a new CA → the CA lands, the table names the reason, exit 1.
    const dir = await mkdtemp(join(tmpdir(), 'rackseal-vca-'));
    await writeFile(join(dir, 'ek.der'), ekCert);
    await writeFile(join(dir, 'intermediate.pem'), pem(localIntermediate.der));
    const run = await runCli('vendor-ca', 'add', '--server', h.baseUrl, '--token', h.admin, dir);
    await rm(dir, { recursive: true, force: true });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^rejected .* ek\.der .*not-a-ca: /m);
    expect(run.stdout).toMatch(/^added +intermediate .* intermediate\.pem .*chains to "CN=Rackseal Test Vendor Root"/m);
    expect(run.stdout).toMatch(/2 certificates: 1 added, 0 duplicate, 1 rejected\n$/);
    expect(await h.count(countCas)).toBe(47);
  });

  it('disabling a CA marks it disabled in loadTrustStore (an EK chaining only through it is refused as disabled-ca, naming it); enabling restores it; both audited', async () => {
    const now = new Date('2025-06-01T00:00:00Z');
    const intermediateFp = (await loadTrustStore(h.ds)).entries().find((e) => e.certificate.subject.text.includes('Rackseal Test Vendor Intermediate'))!.fingerprint;
    expect(verifyEkChain(ekCert, { store: await loadTrustStore(h.ds), now, ekGraceDays: 0 })).toMatchObject({ ok: true });

    const idBefore = await h.count(lastAuditId);
    const disabled = await runCli('vendor-ca', 'disable', '--server', h.baseUrl, '--token', h.admin, intermediateFp.toUpperCase().replace(/(..)(?!$)/g, '$1:'));
    expect([disabled.status, disabled.stderr]).toEqual([0, '']);
    expect(disabled.stdout).toBe(`disabled: ${intermediateFp} intermediate "CN=Rackseal Test Vendor Intermediate"\n`);
    const store = await loadTrustStore(h.ds);
    // Loaded, marked disabled: the chain builder must know it to refuse it when a request supplies it.
    expect(store.get(intermediateFp)).toMatchObject({ enabled: false });
    expect(store.entries().filter((e) => e.enabled)).toHaveLength(46);
    expect(verifyEkChain(ekCert, { store, now, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'disabled-ca', disabledCa: { fingerprint: intermediateFp } });
    expect(verifyEkChain(ekCert, { store, extraIntermediates: [localIntermediate.der], now, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'disabled-ca', disabledCa: { fingerprint: intermediateFp } });
    // Re-uploading a disabled CA does not re-enable it, and is no change.
    expect((await post({ pem: pem(localIntermediate.der) })).body.results[0]).toMatchObject({ status: 'duplicate', enabled: false });
    // Disabling twice is no change; unknown is 404.
    const twice = await http().delete(`/v1/vendor-cas/${intermediateFp}`).set('Authorization', `Bearer ${h.admin}`);
    expect(twice.body).toMatchObject({ changed: false, ca: { enabled: false, disabledBy: expect.stringMatching(/^token:/) } });
    const missing = await http().delete(`/v1/vendor-cas/${'ab'.repeat(32)}`).set('Authorization', `Bearer ${h.admin}`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ statusCode: 404, error: 'Not Found', code: 'vendor-ca.not-found', message: `no vendor CA "${'ab'.repeat(32)}"`, requestId: expect.any(String) });
    const unknown = await runCli('vendor-ca', 'disable', '--server', h.baseUrl, '--token', h.admin, 'ab'.repeat(32));
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^rackseal: vendor-ca disable: no vendor CA/);

    const listed = await runCli('vendor-ca', 'list', '--server', h.baseUrl, '--token', h.admin, '--json');
    expect((JSON.parse(listed.stdout) as unknown[]).length).toBe(46);
    const all = await runCli('vendor-ca', 'list', '--server', h.baseUrl, '--token', h.admin, '--all');
    expect(all.stdout).toMatch(new RegExp(`^${intermediateFp} +intermediate +DISABLED`, 'm'));
    expect(all.stdout).toMatch(/\n47 vendor CA\(s\)\n$/);

    const enabled = await runCli('vendor-ca', 'enable', '--server', h.baseUrl, '--token', h.admin, intermediateFp);
    expect(enabled.status).toBe(0);
    expect(verifyEkChain(ekCert, { store: await loadTrustStore(h.ds), now, ekGraceDays: 0 })).toMatchObject({ ok: true });

    const audit = (await h.ds.query(`SELECT action, subject, details FROM audit_log WHERE id > $1 ORDER BY id`, [idBefore])) as { action: string; subject: string; details: { fingerprint: string } }[];
    expect(audit.map((a) => [a.action, a.subject, a.details.fingerprint])).toEqual([
      ['vendor-ca.disabled', `vendor-ca:${intermediateFp}`, intermediateFp],
      ['vendor-ca.enabled', `vendor-ca:${intermediateFp}`, intermediateFp],
    ]);
  });

  it('pins an intermediate as an anchor (IFX_RSA_RT, whose VeriSign root is absent) so its intermediates chain', async () => {
    const store = await loadTrustStore(h.ds);
    const ifxRoot = store.entries().find((e) => e.label === 'IFX_RSA_RT.pem')!;
    expect(ifxRoot).toMatchObject({ kind: 'intermediate', anchor: false });
    const pinned = await http().patch(`/v1/vendor-cas/${ifxRoot.fingerprint}`).set('Authorization', `Bearer ${h.admin}`).send({ anchor: true });
    expect(pinned.status).toBe(200);
    expect(pinned.body).toMatchObject({ changed: true, ca: { anchor: true } });
    const pinnedStore = await loadTrustStore(h.ds);
    expect(pinnedStore.get(ifxRoot.fingerprint)).toMatchObject({ anchor: true });
    const ifx1 = readFileSync(join(FIXTURES, 'IFX1.pem'));
    const at = new Date('2024-06-01T00:00:00Z');
    expect(verifyCaChain(ifx1, { store, now: at })).toMatchObject({ ok: false, reason: 'untrusted-root' });
    const chained = verifyCaChain(ifx1, { store: pinnedStore, now: at });
    expect(chained.ok && chained.chain[chained.chain.length - 1]!.fingerprint).toBe(ifxRoot.fingerprint);
    const root = store.roots()[0]!;
    const unpinRoot = await http().patch(`/v1/vendor-cas/${root.fingerprint}`).set('Authorization', `Bearer ${h.admin}`).send({ anchor: false });
    expect(unpinRoot.status).toBe(400);
    expect(unpinRoot.body.message).toMatch(/roots are always anchors/);
  });

  it('the CLI reports usage problems, a wrong token and an unreachable server with exit 2', async () => {
    const noToken = await runCli('vendor-ca', 'list', '--server', h.baseUrl);
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toMatch(/an operator token is required/);
    const badToken = await runCli('vendor-ca', 'list', '--server', h.baseUrl, '--token', `rks_${'A'.repeat(43)}`);
    expect(badToken.status).toBe(2);
    expect(badToken.stderr).toMatch(/refused the token \(401\)/);
    const reader = await h.token(['audit:read']);
    const forbidden = await runCli('vendor-ca', 'add', '--server', h.baseUrl, '--token', reader, join(FIXTURES, 'GS_TPM_RT.pem'));
    expect(forbidden.status).toBe(2);
    expect(forbidden.stderr).toMatch(/^rackseal: vendor-ca add: forbidden \(403\): this token lacks the "vendor-ca:write" scope/);
    const closed = await freePort();
    const unreachable = await runCli('vendor-ca', 'list', '--server', `http://127.0.0.1:${closed}`, '--token', h.admin);
    expect(unreachable.status).toBe(2);
    expect(unreachable.stderr).toBe(`rackseal: vendor-ca list: cannot reach http://127.0.0.1:${closed}: ECONNREFUSED\n`);
    const notUrl = await runCli('vendor-ca', 'list', '--server', 'localhost:8080', '--token', h.admin);
    expect([notUrl.status, notUrl.stderr]).toEqual([2, 'rackseal: --server "localhost:8080" must be an http:// or https:// URL\n']);
    const missing = await runCli('vendor-ca', 'add', '--server', h.baseUrl, '--token', h.admin, '/nonexistent/ca.pem');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read certificate path "\/nonexistent\/ca.pem": ENOENT/);
  });
});

describe('vendor CA directory upload through the CLI, from an empty trust store', () => {
  let prefix: TestQueuePrefix;
  let h: Harness;

  beforeAll(async () => {
    prefix = createTestQueuePrefix();
    h = await startHarness(prefix);
  });

  afterAll(async () => {
    await h.close();
    await prefix.clear();
  });

  it('rackseal vendor-ca add DIR loads all 51 files: 45 added (11 roots), 6 duplicates, exit 0, one audit record', async () => {
    const auditBefore = await h.count(countAudit);
    const run = await runCli('vendor-ca', 'add', '--server', h.baseUrl, '--token', h.admin, '--json', FIXTURES);
    expect([run.status, run.stderr]).toEqual([0, '']);
    const out = JSON.parse(run.stdout) as { added: number; duplicate: number; rejected: number; results: { status: string; kind: string; source: string }[] };
    expect(out).toMatchObject({ added: 45, duplicate: 6, rejected: 0 });
    expect(out.results.map((r) => r.source)).toEqual(FIXTURE_FILES);
    expect(out.results.filter((r) => r.status === 'duplicate').map((r) => r.source)).toEqual(DUPLICATE_FILES);
    expect(out.results.filter((r) => r.status === 'added' && r.kind === 'root').map((r) => r.source)).toEqual(ROOT_FILES);
    expect(await h.count(countCas)).toBe(45);
    expect(await h.count(`SELECT count(*)::int AS n FROM vendor_cas WHERE kind = 'root'`)).toBe(11);
    expect(await h.count(countAudit)).toBe(auditBefore + 1);
    const store = await loadTrustStore(h.ds);
    expect([store.roots().length, store.intermediates().length]).toEqual([11, 34]);

    const table = await runCli('vendor-ca', 'list', '--server', h.baseUrl, '--token', h.admin);
    expect(table.status).toBe(0);
    expect(table.stdout.split('\n').filter((l) => / root +anchor /.test(l))).toHaveLength(11);
    expect(table.stdout).toMatch(/\n45 vendor CA\(s\)\n$/);
  });
});
