/**
 * Secrets and cluster CAs after the intruder pass (issue 13; docs/decisions.md "Issue 13 after the
 * intruder pass"), against a real control plane process, PostgreSQL and openssl:
 * - a create or rotate reads the target's machines through its own transaction: on a pool of one
 *   connection it completes (it waited for a second connection forever, then answered 503);
 * - two live machines sharing a hostname get no certificate naming it (a {hostname} SAN, a kubelet
 *   client's system:node:<hostname>), refused `secret.machine-unfit`, audited, nothing written;
 *   once the other is revoked it is issued;
 * - an expired CA is refused at import; a certificate never outlives its CA (notAfter clamped), and
 *   a CA that expired meanwhile issues nothing (`secret.ca-expired`);
 * - what held: racing rotates, creates and CA imports; a secrets:read token on write routes; every
 *   answer, the audit log and the control plane's log searched for the material and the CA keys.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { SecretBytes } from '@rackseal/config';
import { EnvMasterKey, openEnvelope } from '@rackseal/envelope';
import { MachinesRepository } from '@rackseal/machines';
import { clusterCaKeyContext, secretMaterialContext } from '@rackseal/secrets';
import type { DataSource } from 'typeorm';
import { runRacksealCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { secretsFoundIn } from './support/secret-search';
import { testEnv } from './support/test-config';

jest.setTimeout(120_000);

interface Answer {
  status: number;
  json: Record<string, unknown> & { code?: string; message?: string };
  text: string;
}

describe('secrets and cluster CAs after the intruder pass', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let cp: { proc: RunningProcess; baseUrl: string };
  let ds: DataSource;
  let admin: string;
  let reader: string;
  let dir: string;
  const masterKey = randomBytes(32);
  const keys = new EnvMasterKey(new SecretBytes(masterKey));
  /** Every secret the suite made or uploaded, for the searches at the end. */
  const secrets = new Map<string, Buffer>();
  /** Every answer's body, searched at the end too. */
  const answers: string[] = [];

  async function api(method: string, path: string, body?: unknown, token = admin, baseUrl = cp.baseUrl): Promise<Answer> {
    const response = await fetch(`${baseUrl}/${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    answers.push(text);
    let json: Answer['json'] = {};
    try {
      json = JSON.parse(text) as Answer['json'];
    } catch {
      json = {};
    }
    return { status: response.status, json, text };
  }

  async function machine(serial: string, hostname: string, group: string): Promise<string> {
    const machines = new MachinesRepository(ds);
    const id = randomUUID();
    await ds.query(`INSERT INTO machines (id, serial, hostname, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'imported', now(), now())`, [
      id,
      serial,
      hostname,
      group,
      randomBytes(32).toString('hex'),
    ]);
    const at = new Date();
    await ds.transaction(async (m) => {
      await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'registration started', actor: 'system:attestation' }, at, m);
      await machines.transition({ machineId: id, from: 'attesting', to: 'attested', reason: 'quote matched the policy', actor: 'system:attestation' }, at, m);
      await machines.recordAttested(id, at, m);
    });
    return id;
  }

  function openssl(args: string[]): string {
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** A self-signed CA by openssl: cA, keyCertSign; `days` -1 makes one that expired a second ago. */
  function opensslCa(name: string, days: number, subject = `/CN=${name}`): { cert: string; key: string; certPath: string; keyPath: string } {
    const keyPath = join(dir, `${name}.key`);
    const certPath = join(dir, `${name}.crt`);
    const csr = join(dir, `${name}.csr`);
    const ext = join(dir, `${name}.ext`);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
    openssl(['req', '-new', '-key', keyPath, '-utf8', '-subj', subject, '-out', csr]);
    writeFileSync(ext, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    openssl(['x509', '-req', '-in', csr, '-signkey', keyPath, '-days', String(days), '-extfile', ext, '-out', certPath]);
    const key = readFileSync(keyPath, 'utf8');
    secrets.set(`${name} CA key`, createPrivateKey(key).export({ type: 'pkcs8', format: 'der' }));
    return { cert: readFileSync(certPath, 'utf8'), key, certPath, keyPath };
  }

  const count = async (table: string): Promise<number> => Number(((await ds.query(`SELECT count(*) AS n FROM ${table}`)) as { n: string }[])[0]!.n);
  const written = async (): Promise<number[]> => [await count('secrets'), await count('secret_versions'), await count('secret_materials'), await count('cluster_cas')];
  const lastAudit = async (action: string): Promise<{ outcome: string; details: Record<string, unknown> }> =>
    ((await ds.query('SELECT outcome, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1', [action])) as { outcome: string; details: Record<string, unknown> }[])[0]!;

  /** The refusal: status and code, audited with that code, nothing written. */
  async function expectRefused(send: () => Promise<Answer>, status: number, code: string, action: string): Promise<Answer> {
    const before = await written();
    const answer = await send();
    expect([answer.status, answer.json.code]).toEqual([status, code]);
    expect(await lastAudit(action)).toMatchObject({ outcome: 'refused', details: { code, reason: answer.json.message } });
    expect(await written()).toEqual(before);
    return answer;
  }

  const materialRows = async (name: string): Promise<{ id: string; serial: string; material_sealed: Buffer; certificate_pem: string | null }[]> =>
    (await ds.query(
      `SELECT sm.id, m.serial, sm.material_sealed, sm.certificate_pem FROM secret_materials sm JOIN secret_versions v ON v.id = sm.version_id
         JOIN secrets s ON s.id = v.secret_id JOIN machines m ON m.id = sm.machine_id WHERE s.name = $1 ORDER BY m.serial, v.version`,
      [name],
    )) as { id: string; serial: string; material_sealed: Buffer; certificate_pem: string | null }[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-secrets-intruder-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const token = (scope: string) => runRacksealCli(['token', 'create', '--name', scope.replace(':', '-'), '--scope', scope], { env: { DATABASE_URL: db.url } }).stdout.trim();
    admin = token('admin');
    reader = token('secrets:read');
    cp = await startControlPlane(testEnv(db, prefix.prefix, { RACKSEAL_MASTER_KEY: masterKey.toString('hex'), LOG_LEVEL: 'info' }));
    await machine('A-1', 'node-a1', 'rack-a');
    await machine('A-2', 'node-a2', 'rack-a');
    // B-1 and B-2 share a hostname: an inventory mistake, or a writer of the inventory at work.
    await machine('B-1', 'node-b', 'rack-b');
    await machine('B-2', 'node-b', 'rack-b');
  });

  afterAll(async () => {
    await cp?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a create and a rotate complete on a control plane with a pool of one connection: the target\'s machines are read in the call\'s transaction', async () => {
    const small = await startControlPlane(testEnv(db, prefix.prefix, { RACKSEAL_MASTER_KEY: masterKey.toString('hex'), DATABASE_POOL_SIZE: '1' }));
    try {
      const created = await api('POST', 'v1/secrets', { name: 'pool-one', kind: 'disk', target: { group: 'rack-a' }, binding: 'certified-key' }, admin, small.baseUrl);
      expect([created.status, created.json.code, (created.json.latestVersion as { machines?: number } | undefined)?.machines]).toEqual([201, undefined, 2]);
      const rotated = await api('POST', 'v1/secrets/pool-one/versions', {}, admin, small.baseUrl);
      expect([rotated.status, (rotated.json.latestVersion as { version?: number } | undefined)?.version]).toEqual([201, 2]);
    } finally {
      await small.proc.stop();
    }
    for (const row of await materialRows('pool-one')) {
      secrets.set(`pool-one ${row.serial} ${row.id}`, openEnvelope(keys, secretMaterialContext(row.id), row.material_sealed).reveal());
    }
  });

  it('an expired CA is refused at import (ca.invalid, audited, nothing written); a certificate ends at its CA\'s notAfter at the latest; a CA expired meanwhile issues nothing (secret.ca-expired)', async () => {
    const expired = opensslCa('expired', -1);
    const refused = await expectRefused(() => api('POST', 'v1/cas/tls', { certificate: expired.cert, privateKey: expired.key }), 400, 'ca.invalid', 'ca.imported');
    expect(refused.json.message).toMatch(/^certificate is not valid now: notBefore \S+, notAfter \S+$/);

    const shortLived = opensslCa('short-lived', 3);
    expect((await api('POST', 'v1/cas/tls', { certificate: shortLived.cert, privateKey: shortLived.key })).status).toBe(201);
    const created = await api('POST', 'v1/secrets', { name: 'web-a', kind: 'tls', target: { group: 'rack-a' }, binding: 'certified-key', parameters: { sans: ['{hostname}.rack-a.cluster.internal'], validityDays: 90 } });
    expect(created.status).toBe(201);
    const caNotAfter = new x509.X509Certificate(shortLived.cert).notAfter;
    for (const row of await materialRows('web-a')) {
      const certPath = join(dir, `web-a-${row.serial}.pem`);
      writeFileSync(certPath, row.certificate_pem!);
      expect(openssl(['verify', '-CAfile', shortLived.certPath, certPath]).trim()).toBe(`${certPath}: OK`);
      expect(new x509.X509Certificate(row.certificate_pem!).notAfter.toISOString()).toBe(caNotAfter.toISOString());
      secrets.set(`web-a ${row.serial}`, openEnvelope(keys, secretMaterialContext(row.id), row.material_sealed).reveal());
    }

    // The CA's certificate as stored replaced by one of the same key that expired (the days went by).
    const sameKeyExpired = join(dir, 'same-key-expired.crt');
    openssl(['x509', '-req', '-in', join(dir, 'short-lived.csr'), '-signkey', shortLived.keyPath, '-days', '-1', '-extfile', join(dir, 'short-lived.ext'), '-out', sameKeyExpired]);
    await ds.query(`UPDATE cluster_cas SET certificate_pem = $1 WHERE kind = 'tls'`, [readFileSync(sameKeyExpired, 'utf8')]);
    const rotate = await expectRefused(() => api('POST', 'v1/secrets/web-a/versions', {}), 409, 'secret.ca-expired', 'secret.rotated');
    expect(rotate.json.message).toMatch(/^the CA CN=short-lived expired at \S+: it issues no certificate$/);
    await ds.query(`UPDATE cluster_cas SET certificate_pem = $1 WHERE kind = 'tls'`, [shortLived.cert]);
  });

  it('two live machines sharing a hostname: no {hostname} certificate and no kubelet client for either (machine-unfit, audited, nothing written); other templates are fine; once one is revoked the other gets it', async () => {
    const tls = { name: 'web-b', kind: 'tls', target: { group: 'rack-b' }, binding: 'certified-key', parameters: { sans: ['{hostname}.rack-b.cluster.internal'] } };
    const refused = await expectRefused(() => api('POST', 'v1/secrets', tls), 409, 'secret.machine-unfit', 'secret.created');
    expect(refused.json.message).toBe(
      'machine B-1 shares its hostname node-b with machine B-2 (attested): a certificate of web-b naming it would name both; give each its own hostname in the inventory, or revoke the one replaced',
    );
    // One machine as the target is refused too: the other one is still live.
    await expectRefused(() => api('POST', 'v1/secrets', { ...tls, name: 'web-b2', target: { machine: 'B-2' } }), 409, 'secret.machine-unfit', 'secret.created');

    const k8s = opensslCa('kubernetes', 365);
    expect((await api('POST', 'v1/cas/kubernetes', { certificate: k8s.cert, privateKey: k8s.key })).status).toBe(201);
    const kubelet = { name: 'kubelet-b', kind: 'kubelet-client', target: { group: 'rack-b' }, binding: 'certified-key', parameters: { server: 'https://10.0.0.1:6443' } };
    await expectRefused(() => api('POST', 'v1/secrets', kubelet), 409, 'secret.machine-unfit', 'secret.created');

    // Names that do not come from the hostname are each machine's own: issued.
    const bySerial = await api('POST', 'v1/secrets', { ...tls, name: 'web-b-serial', parameters: { sans: ['{serial}.rack-b.cluster.internal'] } });
    expect([bySerial.status, (bySerial.json.latestVersion as { machines: number }).machines]).toEqual([201, 2]);

    expect((await api('POST', 'v1/machines/B-2/revoke', { reason: 'replaced by B-1' })).status).toBe(200);
    const afterRevoke = await api('POST', 'v1/secrets', kubelet);
    expect([afterRevoke.status, (afterRevoke.json.latestVersion as { machines: number }).machines]).toEqual([201, 1]);
    const [row] = await materialRows('kubelet-b');
    expect(row!.serial).toBe('B-1');
    expect(new x509.X509Certificate(row!.certificate_pem!).subject).toBe('O=system:nodes, CN=system:node:node-b');
    secrets.set('kubelet-b key', openEnvelope(keys, secretMaterialContext(row!.id), row!.material_sealed).reveal());
  });

  it('the CLI shows an imported CA\'s subject with its bidi override and escape sequence escaped', async () => {
    const bidi = opensslCa('bidi', 30, '/CN=evil\u202egnp.exe\u001b[2J');
    // The kubernetes CA exists and is never replaced: removed by SQL, as a new deployment would.
    await ds.query(`DELETE FROM cluster_cas WHERE kind = 'kubernetes'`);
    expect((await api('POST', 'v1/cas/kubernetes', { certificate: bidi.cert, privateKey: bidi.key })).status).toBe(201);
    const show = runRacksealCli(['ca', 'show', '--kind', 'kubernetes'], { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: reader } });
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('subject:     CN=evil\\u{202E}gnp.exe\\x1b[2J\n');
    expect([show.stdout.includes('\u202e'), show.stdout.includes('\u001b')]).toEqual([false, false]);
  });

  it('held: racing rotates get distinct versions; racing creates of one name and racing CA imports of one kind, one winner and the rest refused', async () => {
    const rotates = await Promise.all([0, 1, 2, 3].map(() => api('POST', 'v1/secrets/pool-one/versions', {})));
    expect(rotates.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(rotates.map((r) => (r.json.latestVersion as { version: number }).version).sort()).toEqual([3, 4, 5, 6]);
    const creates = await Promise.all([0, 1, 2].map(() => api('POST', 'v1/secrets', { name: 'racer', kind: 'disk', target: { group: 'rack-a' }, binding: 'pcr-sealed' })));
    expect(creates.map((r) => r.json.code ?? r.status).sort()).toEqual([201, 'secret.exists', 'secret.exists']);
    await ds.query(`DELETE FROM cluster_cas WHERE kind = 'kubernetes'`);
    const ca = opensslCa('raced', 30);
    const imports = await Promise.all([0, 1, 2].map(() => api('POST', 'v1/cas/kubernetes', { certificate: ca.cert, privateKey: ca.key })));
    expect(imports.map((r) => r.json.code ?? r.status).sort()).toEqual([201, 'ca.exists', 'ca.exists']);
    for (const row of await materialRows('pool-one')) {
      secrets.set(`pool-one ${row.serial} ${row.id}`, openEnvelope(keys, secretMaterialContext(row.id), row.material_sealed).reveal());
    }
  });

  it('racing rotates from one page state (fromVersion, as the dashboard sends it): one rotates, the others 409 secret.version-changed, audited, nothing more written', async () => {
    const latest = ((await api('GET', 'v1/secrets/pool-one')).json.latestVersion as { version: number }).version;
    for (const fromVersion of [0, -1, 1.5, String(latest), null, 2 ** 53]) {
      const bad = await api('POST', 'v1/secrets/pool-one/versions', { fromVersion });
      expect([fromVersion, bad.status, bad.json.code, bad.json.message]).toEqual([fromVersion, 400, 'secret.invalid', 'fromVersion must be a whole number from 1']);
    }
    const before = await written();
    const rotates = await Promise.all([0, 1, 2].map(() => api('POST', 'v1/secrets/pool-one/versions', { fromVersion: latest })));
    expect(rotates.map((r) => r.json.code ?? r.status).sort()).toEqual([201, 'secret.version-changed', 'secret.version-changed']);
    const refusal = rotates.find((r) => r.status === 409)!;
    expect(refusal.json.message).toBe(`pool-one is at version ${latest + 1}, not ${latest}: another rotation got there first; nothing rotated`);
    const refusals = (await ds.query("SELECT details FROM audit_log WHERE action = 'secret.rotated' AND outcome = 'refused' AND details->>'code' = 'secret.version-changed'")) as unknown[];
    expect(refusals).toHaveLength(2);
    const [secretsBefore, versionsBefore, materialsBefore, casBefore] = before;
    // One version more, with one material per machine of rack-a (2), and nothing else.
    expect(await written()).toEqual([secretsBefore, versionsBefore! + 1, materialsBefore! + 2, casBefore]);
    for (const row of await materialRows('pool-one')) {
      secrets.set(`pool-one ${row.serial} ${row.id}`, openEnvelope(keys, secretMaterialContext(row.id), row.material_sealed).reveal());
    }
  });

  it('held: a secrets:read token is refused every write route (403 naming secrets:write) and reads metadata only', async () => {
    for (const [method, path, body] of [
      ['POST', 'v1/secrets', { name: 'ro', kind: 'disk', target: { group: 'rack-a' }, binding: 'certified-key' }],
      ['POST', 'v1/secrets/pool-one/versions', {}],
      ['POST', 'v1/cas/tls', { certificate: 'x', privateKey: 'y' }],
    ] as const) {
      const answer = await api(method, path, body, reader);
      expect([path, answer.status, answer.json.code, answer.json.message]).toEqual([path, 403, 'auth.forbidden', 'this token lacks the "secrets:write" scope']);
    }
    for (const path of ['v1/secrets', 'v1/secrets/pool-one', 'v1/secrets/pool-one/versions', 'v1/secrets/web-a/versions', 'v1/cas/tls', 'v1/cas/kubernetes', 'v1/cas/tls/certificate']) {
      expect([path, (await api('GET', path, undefined, reader)).status]).toEqual([path, 200]);
    }
  });

  it('held: no answer, audit record or log line of the suite holds a material, an uploaded value or a CA key (raw, hex, base64)', async () => {
    for (const row of (await ds.query('SELECT id, kind, key_sealed FROM cluster_cas')) as { id: string; kind: string; key_sealed: Buffer }[]) {
      secrets.set(`${row.kind} CA key (stored)`, openEnvelope(keys, clusterCaKeyContext(row.id), row.key_sealed).reveal());
    }
    expect(secrets.size).toBeGreaterThanOrEqual(20);
    expect(secretsFoundIn(Buffer.from(answers.join('\n')), secrets)).toEqual([]);
    expect(secretsFoundIn(Buffer.from(JSON.stringify(await ds.query('SELECT details FROM audit_log'))), secrets)).toEqual([]);
    const log = Buffer.from(cp.proc.stdout + cp.proc.stderr);
    expect(log.toString()).toContain('/v1/secrets');
    expect(secretsFoundIn(log, secrets)).toEqual([]);
    // The PEM bodies of the imported keys as uploaded, line by line.
    for (const name of ['kubernetes', 'short-lived', 'bidi', 'raced', 'expired']) {
      const lines = readFileSync(join(dir, `${name}.key`), 'utf8').split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
      expect([name, lines.filter((l) => log.toString().includes(l) || answers.some((a) => a.includes(l)))]).toEqual([name, []]);
    }
  });
});
