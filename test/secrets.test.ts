/**
 * Secrets and cluster CAs (issue 13 items 3-4) against a real control plane process and PostgreSQL,
 * with openssl as the oracle: every kind created for a group of attested machines and for one
 * machine; TLS and kubelet certificates verify against their CA and match their keys (opened from
 * the database with the test's master key, through the library's contexts); the kubelet certificate
 * has exactly its fields; refusals are 4xx with their code, audited, and write nothing; a pg_dump and
 * the control plane's log hold none of the material; a master-key rotation re-wraps every new row.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { AuditLog } from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import { EnvMasterKey, MasterKeys, openEnvelope } from '@rackseal/envelope';
import { MachinesRepository } from '@rackseal/machines';
import { rotateMasterKey, SEALED_COLUMNS } from '@rackseal/master-keys';
import { SystemClock } from '@rackseal/platform';
import { clusterCaKeyContext, secretMaterialContext, secretVersionValueContext } from '@rackseal/secrets';
import { load as parseYaml } from 'js-yaml';
import type { DataSource } from 'typeorm';
import { pollUntil } from './support/wait';
import { runRacksealCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { dumpDatabase, secretsFoundIn } from './support/secret-search';
import { testEnv } from './support/test-config';

const DAY_S = 86_400;

interface MaterialRow {
  id: string;
  serial: string;
  hostname: string;
  material_sealed: Buffer;
  certificate_pem: string | null;
  kubelet_conf: string | null;
}

describe('secrets and cluster CAs', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let cp: { proc: RunningProcess; baseUrl: string };
  let ds: DataSource;
  let admin: string;
  let dir: string;
  const masterKey = randomBytes(32);
  const keys = new EnvMasterKey(new SecretBytes(masterKey));
  const ids: Record<string, string> = {};
  /** Every secret byte string the suite made or uploaded, by a name for the report. */
  const secrets = new Map<string, Buffer>();

  const cli = (...args: string[]) => runRacksealCli(args, { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: admin } });

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> & { code?: string }; text: string; type: string | null }> {
    const response = await fetch(`${cp.baseUrl}/${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = {};
    }
    return { status: response.status, json, text, type: response.headers.get('content-type') };
  }

  async function machine(serial: string, group: string, attested: boolean): Promise<string> {
    const machines = new MachinesRepository(ds);
    const id = randomUUID();
    await ds.query(`INSERT INTO machines (id, serial, hostname, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'imported', now(), now())`, [
      id,
      serial,
      serial.toLowerCase(),
      group,
      randomBytes(32).toString('hex'),
    ]);
    if (attested) {
      const at = new Date();
      await ds.transaction(async (m) => {
        await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'registration started', actor: 'system:attestation' }, at, m);
        await machines.transition({ machineId: id, from: 'attesting', to: 'attested', reason: 'quote matched the policy', actor: 'system:attestation' }, at, m);
        await machines.recordAttested(id, at, m);
      });
    }
    return id;
  }

  async function materials(name: string, version = 1): Promise<MaterialRow[]> {
    return (await ds.query(
      `SELECT sm.id, m.serial, m.hostname, sm.material_sealed, sm.certificate_pem, sm.kubelet_conf FROM secret_materials sm
         JOIN secret_versions v ON v.id = sm.version_id JOIN secrets s ON s.id = v.secret_id JOIN machines m ON m.id = sm.machine_id
        WHERE s.name = $1 AND v.version = $2 ORDER BY m.serial`,
      [name, version],
    )) as MaterialRow[];
  }

  /** The material's bytes, opened as the library sealed them; remembered for the dump and log search. */
  function opened(row: MaterialRow, what: string): Buffer {
    const bytes = openEnvelope(keys, secretMaterialContext(row.id), row.material_sealed).reveal();
    secrets.set(`${what} ${row.serial}`, bytes);
    return bytes;
  }

  function openssl(args: string[]): string {
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  function file(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  /** The certificate's public key as openssl prints it equals the one of the opened private key (PKCS#8 DER). */
  function expectKeyMatches(certPath: string, pkcs8: Buffer): void {
    const fromCert = openssl(['x509', '-in', certPath, '-noout', '-pubkey']);
    const fromKey = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'pem' }).toString();
    expect(fromCert.trim()).toBe(fromKey.trim());
  }

  function validitySeconds(certPath: string): number {
    const out = openssl(['x509', '-in', certPath, '-noout', '-startdate', '-enddate']);
    const start = Date.parse(/notBefore=(.*)/.exec(out)![1]!);
    const end = Date.parse(/notAfter=(.*)/.exec(out)![1]!);
    return (end - start) / 1000;
  }

  async function secretCount(): Promise<number> {
    return ((await ds.query('SELECT (SELECT count(*) FROM secrets) + (SELECT count(*) FROM secret_versions) + (SELECT count(*) FROM secret_materials) AS n')) as { n: string }[]).map((r) => Number(r.n))[0]!;
  }

  async function lastAudit(action: string): Promise<{ outcome: string; details: Record<string, unknown> }> {
    const [row] = (await ds.query('SELECT outcome, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1', [action])) as { outcome: string; details: Record<string, unknown> }[];
    return row!;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-secrets-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(bootstrap.status).toBe(0);
    admin = bootstrap.stdout.trim();
    // info: the request lines are logged, so the log search below has something to search.
    cp = await startControlPlane(testEnv(db, prefix.prefix, { RACKSEAL_MASTER_KEY: masterKey.toString('hex'), LOG_LEVEL: 'info' }));
    ids.n1 = await machine('NODE-1', 'rack-a', true);
    ids.n2 = await machine('NODE-2', 'rack-a', true);
    ids.n3 = await machine('NODE-3', 'rack-a', false);
    ids.n9 = await machine('NODE-9', 'rack-b', true);
  });

  afterAll(async () => {
    await cp?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tls for a group: the TLS CA is created on first use; each attested machine\'s certificate verifies against it (openssl), has exactly the templated SANs, its key and the validity', async () => {
    expect((await api('GET', 'v1/cas/tls')).json.code).toBe('ca.not-found');
    const created = await api('POST', 'v1/secrets', { name: 'web', kind: 'tls', target: { group: 'rack-a' }, binding: 'certified-key', parameters: { sans: ['{hostname}.{group}.cluster.internal', '{serial}.nodes.example'] } });
    expect([created.status, created.json.kind, (created.json.latestVersion as { machines: number }).machines]).toEqual([201, 'tls', 2]);
    expect(created.json.parameters).toEqual({ sans: ['{hostname}.{group}.cluster.internal', '{serial}.nodes.example'], validityDays: 90, renewBeforeDays: 30, keyAlgorithm: 'ecdsa-p256' });

    const pem = await api('GET', 'v1/cas/tls/certificate');
    expect([pem.status, pem.type?.split(';')[0]]).toEqual([200, 'application/pem-certificate-chain']);
    const caPath = file('tls-ca.pem', pem.text);
    expect(openssl(['x509', '-in', caPath, '-noout', '-text'])).toMatch(/CA:TRUE[\s\S]*NIST CURVE: P-384|NIST CURVE: P-384[\s\S]*CA:TRUE/);
    const download = cli('ca', 'download', '--kind', 'tls');
    expect([download.status, download.stdout]).toEqual([0, pem.text]);
    expect((await lastAudit('ca.created')).details).toMatchObject({ kind: 'tls', keyAlgorithm: 'ecdsa-p384' });

    const rows = await materials('web');
    expect(rows.map((r) => r.serial)).toEqual(['NODE-1', 'NODE-2']);
    for (const row of rows) {
      const certPath = file(`web-${row.serial}.pem`, row.certificate_pem!);
      expect(openssl(['verify', '-CAfile', caPath, certPath]).trim()).toBe(`${certPath}: OK`);
      const sans = openssl(['x509', '-in', certPath, '-noout', '-ext', 'subjectAltName']);
      expect(sans.split('\n')[1]!.trim()).toBe(`DNS:${row.hostname}.rack-a.cluster.internal, DNS:${row.serial.toLowerCase()}.nodes.example`);
      expectKeyMatches(certPath, opened(row, 'web key'));
      expect(validitySeconds(certPath)).toBe(90 * DAY_S);
      expect(openssl(['x509', '-in', certPath, '-noout', '-ext', 'extendedKeyUsage'])).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    }
    const audit = await lastAudit('secret.created');
    expect(audit).toMatchObject({ outcome: 'success', details: { name: 'web', kind: 'tls', group: 'rack-a', machines: 2, version: 1 } });
  });

  it('tls for one machine, RSA-2048 and 10 days: verifies, keyEncipherment, key matches', async () => {
    const created = await api('POST', 'v1/secrets', {
      name: 'etcd-peer',
      kind: 'tls',
      target: { machine: 'NODE-9' },
      binding: 'pcr-sealed',
      parameters: { sans: ['{hostname}.etcd.internal'], validityDays: 10, renewBeforeDays: 3, keyAlgorithm: 'rsa-2048' },
    });
    expect([created.status, created.json.target]).toEqual([201, { group: null, machineId: ids.n9, serial: 'NODE-9' }]);
    const [row] = await materials('etcd-peer');
    const certPath = file('etcd-peer.pem', row!.certificate_pem!);
    expect(openssl(['verify', '-CAfile', join(dir, 'tls-ca.pem'), certPath]).trim()).toBe(`${certPath}: OK`);
    expect(openssl(['x509', '-in', certPath, '-noout', '-ext', 'keyUsage'])).toContain('Digital Signature, Key Encipherment');
    expect(openssl(['x509', '-in', certPath, '-noout', '-subject', '-nameopt', 'RFC2253']).trim()).toBe('subject=CN=node-9.etcd.internal');
    expect(validitySeconds(certPath)).toBe(10 * DAY_S);
    const key = opened(row!, 'etcd-peer key');
    expect(createPrivateKey({ key, format: 'der', type: 'pkcs8' }).asymmetricKeyDetails?.modulusLength).toBe(2048);
    expectKeyMatches(certPath, key);
  });

  it('disk: 64 bytes per attested machine of a group, 32 for one machine, each its own', async () => {
    expect((await api('POST', 'v1/secrets', { name: 'luks', kind: 'disk', target: { group: 'rack-a' }, binding: 'pcr-sealed', parameters: { size: 64 } })).status).toBe(201);
    expect((await api('POST', 'v1/secrets', { name: 'luks-9', kind: 'disk', target: { machine: ids.n9 }, binding: 'certified-key' })).status).toBe(201);
    const group = (await materials('luks')).map((r) => opened(r, 'luks'));
    expect(group.map((b) => b.length)).toEqual([64, 64]);
    expect(group[0]!.equals(group[1]!)).toBe(false);
    expect((await materials('luks-9')).map((r) => opened(r, 'luks-9').length)).toEqual([32]);
  });

  it('opaque: an uploaded value round-trips through the library\'s open; a generated one has its size; rotate makes version 2', async () => {
    const value = randomBytes(40);
    secrets.set('opaque uploaded', value);
    const created = await api('POST', 'v1/secrets', { name: 'join-token', kind: 'opaque', target: { group: 'rack-a' }, binding: 'certified-key', value: value.toString('base64') });
    expect([created.status, created.json.kind, JSON.stringify(created.json).includes(value.toString('base64'))]).toEqual([201, 'opaque', false]);
    const versionValue = async (name: string, version: number): Promise<Buffer> => {
      const [row] = (await ds.query('SELECT v.id, v.value_sealed FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.name = $1 AND v.version = $2', [name, version])) as {
        id: string;
        value_sealed: Buffer;
      }[];
      return openEnvelope(keys, secretVersionValueContext(row!.id), row!.value_sealed).reveal();
    };
    expect((await versionValue('join-token', 1)).equals(value)).toBe(true);
    expect((await api('POST', 'v1/secrets', { name: 'seed-9', kind: 'opaque', target: { machine: 'NODE-9' }, binding: 'pcr-sealed', parameters: { size: 48 } })).status).toBe(201);
    const generated = await versionValue('seed-9', 1);
    secrets.set('opaque generated', generated);
    expect(generated.length).toBe(48);

    const valueFile = file('value.bin', '');
    const next = randomBytes(24);
    writeFileSync(valueFile, next);
    secrets.set('opaque rotated', next);
    const rotated = cli('secrets', 'rotate', 'join-token', '--value-file', valueFile, '--no-wait');
    expect([rotated.status, rotated.stdout]).toEqual([0, 'rotated secret join-token (opaque, group rack-a): version 2, material for 0 machine(s)\n']);
    rmSync(valueFile);
    expect((await versionValue('join-token', 2)).equals(next)).toBe(true);
    expect((await versionValue('join-token', 1)).equals(value)).toBe(true);
  });

  it('kubelet-client: refused without a Kubernetes CA; after `ca import`, exactly CN system:node:<hostname>, O system:nodes, EKU clientAuth only, no SAN, verifying against the imported CA; kubelet.conf parses and names it', async () => {
    const before = await secretCount();
    const refused = await api('POST', 'v1/secrets', { name: 'kubelet', kind: 'kubelet-client', target: { group: 'rack-a' }, binding: 'certified-key', parameters: { server: 'https://10.0.0.1:6443' } });
    expect([refused.status, refused.json.code]).toEqual([409, 'secret.no-kubernetes-ca']);
    expect(await lastAudit('secret.created')).toMatchObject({ outcome: 'refused', details: { name: 'kubelet', kind: 'kubelet-client', code: 'secret.no-kubernetes-ca' } });
    expect(await secretCount()).toBe(before);

    // A kubeadm-like cluster CA (RSA-2048, cA, keyCertSign) made by openssl.
    const caKey = join(dir, 'k8s-ca.key');
    const caCert = join(dir, 'k8s-ca.crt');
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCert, '-subj', '/CN=kubernetes', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
    secrets.set('kubernetes CA key', createPrivateKey(readFileSync(caKey)).export({ type: 'pkcs8', format: 'der' }));
    const imported = cli('ca', 'import', '--kind', 'kubernetes', caCert, caKey);
    expect([imported.status, imported.stderr]).toEqual([0, '']);
    expect(imported.stdout).toMatch(/^imported the kubernetes CA CN=kubernetes \(SHA-256 [0-9a-f]{64}\)\n$/);
    const again = cli('ca', 'import', '--kind', 'kubernetes', caCert, caKey);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('the kubernetes CA exists already');
    expect(await lastAudit('ca.imported')).toMatchObject({ outcome: 'refused', details: { kind: 'kubernetes', code: 'ca.exists' } });
    rmSync(caKey);

    const created = await api('POST', 'v1/secrets', { name: 'kubelet', kind: 'kubelet-client', target: { group: 'rack-a' }, binding: 'certified-key', parameters: { server: 'https://10.0.0.1:6443' } });
    expect([created.status, (created.json.latestVersion as { machines: number }).machines]).toEqual([201, 2]);
    const caPem = readFileSync(caCert, 'utf8');
    for (const row of await materials('kubelet')) {
      const certPath = file(`kubelet-${row.serial}.pem`, row.certificate_pem!);
      expect(openssl(['verify', '-CAfile', caCert, certPath]).trim()).toBe(`${certPath}: OK`);
      // …and not against the TLS CA: the verification can fail.
      expect(() => openssl(['verify', '-CAfile', join(dir, 'tls-ca.pem'), certPath])).toThrow(/unable to get local issuer certificate/);
    }
    const rows = await materials('kubelet');
    for (const row of rows) {
      const certPath = join(dir, `kubelet-${row.serial}.pem`);
      expect(openssl(['x509', '-in', certPath, '-noout', '-subject', '-nameopt', 'RFC2253']).trim()).toBe(`subject=CN=system:node:${row.hostname},O=system:nodes`);
      const cert = new x509.X509Certificate(row.certificate_pem!);
      // Exactly: basic constraints (cA FALSE), key usage, EKU, authority key id — no subjectAltName.
      expect(cert.extensions.map((e) => e.type).sort()).toEqual(['2.5.29.15', '2.5.29.19', '2.5.29.35', '2.5.29.37']);
      expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
      expect(cert.getExtension(x509.KeyUsagesExtension)!.usages).toBe(x509.KeyUsageFlags.digitalSignature);
      expect(cert.getExtension(x509.BasicConstraintsExtension)!.ca).toBe(false);
      expect(openssl(['x509', '-in', certPath, '-noout', '-ext', 'extendedKeyUsage']).split('\n')[1]!.trim()).toBe('TLS Web Client Authentication');
      expectKeyMatches(certPath, opened(row, 'kubelet key'));

      const conf = parseYaml(row.kubelet_conf!) as {
        kind: string;
        clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[];
        users: { name: string; user: Record<string, string> }[];
        'current-context': string;
      };
      expect(conf.kind).toBe('Config');
      expect(conf.clusters[0]!.cluster.server).toBe('https://10.0.0.1:6443');
      expect(Buffer.from(conf.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString().trim()).toBe(new x509.X509Certificate(caPem).toString('pem').trim());
      expect(conf.users).toEqual([{ name: `system:node:${row.hostname}`, user: { 'client-certificate': '/var/lib/kubelet/pki/kubelet-client-current.pem', 'client-key': '/var/lib/kubelet/pki/kubelet-client-current.pem' } }]);
      expect(conf['current-context']).toBe(`system:node:${row.hostname}@kubernetes`);
    }
  });

  it('refusals: bad SAN template, unknown group or machine, duplicate name, bad binding — 4xx with the code, audited, nothing written', async () => {
    const cases: [unknown, number, string][] = [
      [{ name: 'bad-san', kind: 'tls', target: { group: 'rack-a' }, binding: 'certified-key', parameters: { sans: ['{hostname}.{rack}.internal'] } }, 400, 'secret.invalid-san-template'],
      [{ name: 'bad-san2', kind: 'tls', target: { group: 'rack-a' }, binding: 'certified-key', parameters: { sans: ['{hostname}_x.internal'] } }, 400, 'secret.invalid-san-template'],
      [{ name: 'nogroup', kind: 'disk', target: { group: 'rack-z' }, binding: 'certified-key' }, 404, 'secret.unknown-group'],
      [{ name: 'nomachine', kind: 'disk', target: { machine: 'NODE-404' }, binding: 'certified-key' }, 404, 'secret.unknown-machine'],
      [{ name: 'web', kind: 'disk', target: { group: 'rack-a' }, binding: 'certified-key' }, 409, 'secret.exists'],
      [{ name: 'badbind', kind: 'disk', target: { group: 'rack-a' }, binding: 'tpm-magic' }, 400, 'secret.invalid-binding'],
    ];
    for (const [body, status, code] of cases) {
      const before = await secretCount();
      const answer = await api('POST', 'v1/secrets', body);
      expect([(body as { name: string }).name, answer.status, answer.json.code]).toEqual([(body as { name: string }).name, status, code]);
      expect(await lastAudit('secret.created')).toMatchObject({ outcome: 'refused', details: { name: (body as { name: string }).name, code } });
      expect(await secretCount()).toBe(before);
    }
    const cliRefusal = cli('secrets', 'create', 'x', '--kind', 'tls', '--group', 'rack-a', '--binding', 'certified-key', '--san', '{nope}');
    expect(cliRefusal.status).toBe(2);
    expect(cliRefusal.stderr).toContain('unknown placeholder {nope}');
  });

  it('show, list and versions carry metadata only; rotate of a per-machine kind makes fresh material', async () => {
    const rotated = cli('secrets', 'rotate', 'luks', '--json');
    expect(rotated.status).toBe(0);
    expect((JSON.parse(rotated.stdout) as { latestVersion: { version: number; machines: number } }).latestVersion).toMatchObject({ version: 2, machines: 2 });
    const v2 = (await materials('luks', 2)).map((r) => opened(r, 'luks v2'));
    const v1 = (await materials('luks', 1)).map((r) => opened(r, 'luks'));
    expect(v2.some((b, i) => b.equals(v1[i]!))).toBe(false);
    const versions = cli('secrets', 'versions', 'luks', '--json');
    expect((JSON.parse(versions.stdout) as { version: number; materials: { serial: string }[] }[]).map((v) => [v.version, v.materials.map((m) => m.serial)])).toEqual([
      [2, ['NODE-1', 'NODE-2']],
      [1, ['NODE-1', 'NODE-2']],
    ]);
    const list = cli('secrets', 'list', '--json');
    expect((JSON.parse(list.stdout) as { name: string }[]).map((s) => s.name)).toEqual(['etcd-peer', 'join-token', 'kubelet', 'luks', 'luks-9', 'seed-9', 'web']);
    const show = cli('secrets', 'show', 'web');
    expect(show.stdout).toMatch(/^name: +web\n/);
    // Every answer: no secret byte in any rendering.
    expect(secretsFoundIn(Buffer.from(list.stdout + show.stdout + versions.stdout), secrets)).toEqual([]);
  });

  it('a pg_dump and the control plane\'s log hold none of the material, the uploaded values or the CA keys (raw, hex, base64)', async () => {
    // The CA keys, opened from the database as the library sealed them.
    for (const row of (await ds.query('SELECT id, kind, key_sealed FROM cluster_cas')) as { id: string; kind: string; key_sealed: Buffer }[]) {
      secrets.set(`${row.kind} CA key (stored)`, openEnvelope(keys, clusterCaKeyContext(row.id), row.key_sealed).reveal());
    }
    // 11 machine keys or disk keys, 3 opaque values, the imported key as read from its file and both CA keys as stored.
    expect(secrets.size).toBe(16);
    const dump = dumpDatabase(db.url);
    // The search finds what is stored in the clear (a certificate), so finding nothing below means something.
    const [cert] = (await ds.query('SELECT certificate_pem FROM secret_materials WHERE certificate_pem IS NOT NULL LIMIT 1')) as { certificate_pem: string }[];
    expect(dump.toString('latin1')).toContain(cert!.certificate_pem.split('\n')[1]!);
    expect(secretsFoundIn(dump, secrets)).toEqual([]);
    const log = Buffer.from(cp.proc.stdout + cp.proc.stderr);
    expect(log.toString()).toContain('/v1/secrets');
    expect(secretsFoundIn(log, secrets)).toEqual([]);
    const audit = Buffer.from(JSON.stringify(await ds.query('SELECT details FROM audit_log')));
    expect(secretsFoundIn(audit, secrets)).toEqual([]);
  });

  it('rackseal master-key rotate\'s registry covers the new sealed columns: every row moves to the new key and opens to the same bytes', async () => {
    const before = new Map<string, Buffer>();
    const read = async (): Promise<Map<string, { context: string; blob: Buffer }>> => {
      const out = new Map<string, { context: string; blob: Buffer }>();
      for (const r of (await ds.query('SELECT id, key_sealed FROM cluster_cas')) as { id: string; key_sealed: Buffer }[]) {out.set(`ca ${r.id}`, { context: clusterCaKeyContext(r.id), blob: r.key_sealed });}
      for (const r of (await ds.query('SELECT id, value_sealed FROM secret_versions WHERE value_sealed IS NOT NULL')) as { id: string; value_sealed: Buffer }[]) {out.set(`v ${r.id}`, { context: secretVersionValueContext(r.id), blob: r.value_sealed });}
      for (const r of (await ds.query('SELECT id, material_sealed FROM secret_materials')) as { id: string; material_sealed: Buffer }[]) {out.set(`m ${r.id}`, { context: secretMaterialContext(r.id), blob: r.material_sealed });}
      return out;
    };
    for (const [where, { context, blob }] of await read()) {
      before.set(where, openEnvelope(keys, context, blob).reveal());
    }
    expect(before.size).toBeGreaterThanOrEqual(15);
    const next = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const report = await rotateMasterKey(ds, new AuditLog(ds, new SystemClock()), SEALED_COLUMNS, new MasterKeys(next, [keys]), { batchSize: 4, actor: 'test:rotation' });
    expect(report.done).toBe(true);
    expect(report.columns.filter((c) => c.column.startsWith('cluster_cas') || c.column.startsWith('secret_')).reduce((n, c) => n + c.rewrapped, 0)).toBe(before.size);
    for (const [where, { context, blob }] of await read()) {
      expect(blob.subarray(1, 9).equals(next.kekId)).toBe(true);
      expect(openEnvelope(next, context, blob).reveal().equals(before.get(where)!)).toBe(true);
    }
  });
  it('a create while a target machine starts a re-attestation waits for it and leaves that machine out, instead of refusing half-way', async () => {
    // The re-attestation's state change, held uncommitted in a transaction of its own.
    const runner = ds.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    let created: Awaited<ReturnType<typeof api>> | undefined;
    try {
      await new MachinesRepository(ds).transition({ machineId: ids.n2!, from: 'attested', to: 'attesting', reason: 'scheduled re-attestation', actor: 'system:attestation' }, new Date(), runner.manager);
      const pending = api('POST', 'v1/secrets', { name: 'during-reattest', kind: 'disk', target: { group: 'rack-a' }, binding: 'certified-key' }).then((r) => (created = r));
      // The create locks the group's attested machines FOR SHARE: it waits on NODE-2's row.
      const waiting = await pollUntil(
        async () => (await ds.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR SHARE OF m%'`)) as { n: number }[],
        (rows) => rows[0]!.n > 0,
        20_000,
      );
      expect([waiting[0]!.n, created]).toEqual([1, undefined]);
      await runner.commitTransaction();
      await pending;
    } finally {
      if (runner.isTransactionActive) {
        await runner.rollbackTransaction();
      }
      await runner.release();
    }
    expect([created!.status, created!.json.code]).toEqual([201, undefined]);
    expect((await materials('during-reattest')).map((r) => r.serial)).toEqual(['NODE-1']);
    // NODE-2 attests again: back to attested for the tests that follow.
    await ds.transaction(async (m) => {
      await new MachinesRepository(ds).transition({ machineId: ids.n2!, from: 'attesting', to: 'attested', reason: 'quote matched the policy', actor: 'system:attestation' }, new Date(), m);
    });
  });
});
