/**
 * Pre-wrapped disk keys (issue 14 item 6) on real PostgreSQL, Redis, swtpm and cryptsetup: an
 * inventory import plans a pre-wrap of a pcr-sealed disk secret for a swtpm machine of a group with
 * a PCR policy, the worker (in-process, with the product's envelope sealer) wraps it to the
 * inventory EK, `rackseal machines prewrapped --out` exports it, and the built `rackseal-agent unlock
 * --prewrapped` formats a blank image file with the key unsealed offline — no enrollment ever done —
 * and prints it; the image opens with it. The machine then enrolls, and its pre-wrap becomes its
 * delivery of the same version: the mailbox's envelope holds the same key, the agent's install
 * changes nothing, the ack confirms it. Refusals: a group without a policy, a row with only its
 * ek_pub_hash, a revoked machine, an attested one, a device that is not blank.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { ApiTokens } from '@rackseal/api-tokens';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { InventoryImporter } from '@rackseal/inventory';
import { type ApprovalsResponse, APPROVALS_ROUTE, DELIVERIES_ROUTE, deliveryAckRoute, type MailboxResponse, nodeApiPath, parseDeliveryPayload, parsePrewrappedDiskKey } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { openTransport, TpmClient } from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import { parseEnvelope } from '@rackseal/wrapping';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { parseAgentConfig } from '../apps/agent/src/install/agent-config';
import { install } from '../apps/agent/src/install/install';
import { readRacksealToken } from '../apps/agent/src/install/luks-token';
import { unwrapDelivery } from '../apps/agent/src/unwrap/unwrap-envelope';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { JOB_HANDLER_PROVIDERS, WorkerModule } from '../apps/worker/src/worker.module';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { AGENT_ENTRY, runRacksealCliAsync } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { b64, enroll } from './support/enrollment';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { repoRoot } from './support/repo-root';
import { renderings } from './support/secret-search';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { pollUntil } from './support/wait';

jest.setTimeout(240_000);

interface DeliveryRow {
  id: string;
  serial: string;
  secret: string;
  version: number;
  state: string;
  generation: number;
  envelope: Buffer | null;
  last_error: string | null;
}

describe('pre-wrapped disk keys (issue 14 item 6)', () => {
  const fixture = useSwtpms(2, { p256: true });
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let worker: INestApplicationContext;
  let baseUrl: string;
  let ds: DataSource;
  let admin: string;
  let root: string;

  const operator = (method: 'get' | 'post' | 'put', path: string) => request(app.getHttpServer())[method](path).set('Authorization', `Bearer ${admin}`);
  const cli = (...args: string[]) => runRacksealCliAsync([...args, '--server', baseUrl], { env: { RACKSEAL_TOKEN: admin }, timeoutMs: 60_000 });

  async function importCsv(rows: string[]): Promise<void> {
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', ...rows].join('\n');
    expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
  }

  const deliveries = async (): Promise<DeliveryRow[]> =>
    (await ds.query(
      `SELECT d.id, m.serial, s.name AS secret, v.version, d.state, d.generation, d.envelope, d.last_error FROM deliveries d
         JOIN machines m ON m.id = d.machine_id JOIN secrets s ON s.id = d.secret_id JOIN secret_versions v ON v.id = d.version_id ORDER BY m.serial, s.name`,
    )) as DeliveryRow[];
  const deliveryOf = async (serial: string) => (await deliveries()).find((d) => d.serial === serial);
  const auditOf = async (action: string, about = '') =>
    (await ds.query(`SELECT actor, outcome, details FROM audit_log WHERE action = $1 AND details::text LIKE $2 ORDER BY id`, [action, `%${about}%`])) as {
      actor: string;
      outcome: string;
      details: Record<string, unknown>;
    }[];
  const materials = async (serial: string) =>
    (await ds.query('SELECT sm.id FROM secret_materials sm JOIN machines m ON m.id = sm.machine_id WHERE m.serial = $1', [serial])) as { id: string }[];

  /** The built agent with binary stdout and an empty TMPDIR; no config, no state dir (a machine never enrolled). */
  function agent(args: readonly string[]): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
    const tmp = mkdtempSync(join(root, 'tmp-'));
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [AGENT_ENTRY, ...args, '--state-dir', join(root, 'no-state-dir'), '--config', join(root, 'no-config.yaml')], {
        cwd: repoRoot(),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.once('error', reject);
      child.once('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    });
  }

  function blankImage(name: string): string {
    const image = join(root, name);
    writeFileSync(image, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '20M', image]);
    return image;
  }

  const opens = (image: string, key: Buffer): number | null => spawnSync('cryptsetup', ['open', '--test-passphrase', '--key-file=-', image], { input: key, stdio: ['pipe', 'ignore', 'ignore'] }).status;

  function signed(credential: NodeCredential, method: 'GET' | 'POST', path: string, body?: unknown) {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const headers = signNodeRequest({ credential, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) });
    const call = method === 'GET' ? request(app.getHttpServer()).get(path) : request(app.getHttpServer()).post(path);
    for (const [name, value] of Object.entries(headers)) {
      call.set(name, value);
    }
    return body === undefined ? call : call.set('Content-Type', 'application/json').send(bytes.toString('utf8'));
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'rackseal-prewrap-'));
    writeFileSync(join(root, 'no-config.yaml'), '{}\n');
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const config = testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' });
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(config)] }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.listen(0, '127.0.0.1');
    baseUrl = await app.getUrl();
    worker = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, JOB_HANDLER_PROVIDERS), { logger: false });
    await worker.init();
    ds = await openDataSource(db.url);
    admin = (await app.get(ApiTokens).issue('admin', ['admin'], 'test')).token;
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
  }, 240_000);

  afterAll(async () => {
    await worker?.close();
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    if (root !== undefined) {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('an import pre-wraps the disk key to the inventory EK; the first boot formats a blank disk with it offline; attestation then delivers the same key and the ack confirms it', async () => {
    const [tpm, other] = [fixture.at(0), fixture.at(1)];
    // The groups exist once a machine is in them: a row known by its hash only, and one in a group without a policy.
    await importCsv([`SN-HASH,,hash,workers,,${'ab'.repeat(32)}`, `SN-NOPOL,,nopol,nopolicy,${b64(await tpm.p256EkCertDer())},`]);
    expect((await operator('put', '/v1/groups/workers/policy').send(FRESH_SWTPM_POLICY)).status).toBe(200);
    for (const [name, group] of [['root-disk', 'workers'], ['nopol-disk', 'nopolicy']]) {
      const created = await operator('post', '/v1/secrets').send({ name, kind: 'disk', target: { group }, binding: 'pcr-sealed' });
      expect([created.status, created.body.code]).toEqual([201, undefined]);
    }
    // Neither could be pre-wrapped, each refusal recorded with its reason.
    expect(await deliveries()).toEqual([]);
    const refusedAtCreate = (await auditOf('delivery.prewrap-refused')).map((r) => [r.outcome, r.details.noPolicy, r.details.noEkCertificate, r.details.noEkCertificateSerials, r.details.noPolicyGroups]);
    expect(refusedAtCreate).toEqual([
      ['refused', 0, 1, ['SN-HASH'], []],
      ['refused', 1, 0, [], ['nopolicy']],
    ]);

    // The import of two machines of the policy group plans their pre-wraps in its transaction, no key yet.
    await importCsv([`SN-A,,node-a,workers,${b64(await tpm.rsaEkCertDer())},`, `SN-R,,node-r,workers,${b64(await other.rsaEkCertDer())},`]);
    expect((await auditOf('delivery.prewrap-planned', 'inventory.imported')).map((r) => [r.actor, r.details.prewraps])).toEqual([['test', 2]]);
    // The worker seals them (the job makes the key, once per machine, audited).
    const sealed = await pollUntil(deliveries, (rows) => rows.length === 2 && rows.every((r) => r.state === 'prewrapped'), 60_000);
    expect(sealed.map((r) => [r.serial, r.secret, r.version, r.state, r.generation, r.envelope !== null])).toEqual([
      ['SN-A', 'root-disk', 1, 'prewrapped', 1, true],
      ['SN-R', 'root-disk', 1, 'prewrapped', 1, true],
    ]);
    expect((await auditOf('secret.material-prewrapped')).map((r) => r.details.serial).sort()).toEqual(['SN-A', 'SN-R']);
    const [materialBefore] = await materials('SN-A');
    // A repeated import plans nothing twice.
    await importCsv([`SN-A,,node-a,workers,${b64(await tpm.rsaEkCertDer())},`]);
    expect(await deliveries()).toHaveLength(2);

    // The operator exports the provisioning file.
    const file = join(root, 'sn-a.prewrap.json');
    const exported = await cli('machines', 'prewrapped', 'SN-A', '--out', file);
    expect([exported.status, exported.stderr]).toEqual([0, expect.stringContaining('wrote the pre-wrapped root-disk v1 of machine SN-A')]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const provisioning = parsePrewrappedDiskKey(readFileSync(file, 'utf8'));
    expect(provisioning).toMatchObject({ secret: 'root-disk', version: 1, generation: 1, deliveryId: sealed[0]!.id, machine: { serial: 'SN-A' }, approvals: { group: 'workers', epoch: 1 } });
    expect(Buffer.from(provisioning.envelope, 'base64').equals(sealed[0]!.envelope!)).toBe(true);
    expect((await auditOf('delivery.prewrap-exported', 'SN-A')).map((r) => [r.outcome, r.details.prewraps])).toEqual([['success', 1]]);

    // First boot, no network, never enrolled: a disk that holds something is refused and left as it was.
    const used = blankImage('used.img');
    const garbage = randomBytes(4096);
    writeFileSync(used, garbage, { flag: 'r+' });
    const refusedFormat = await agent(['unlock', '--device', used, '--prewrapped', file, '--tpm', tpm.device]);
    expect([refusedFormat.status, refusedFormat.stdout.length]).toEqual([1, 0]);
    expect(refusedFormat.stderr).toMatch(/not LUKS2 and not blank/);
    expect(readFileSync(used).subarray(0, 4096).equals(garbage)).toBe(true);

    // A blank disk is formatted with the unsealed key and given its token; the key is printed and opens it.
    const image = blankImage('disk.img');
    const first = await agent(['unlock', '--device', image, '--prewrapped', file, '--tpm', tpm.device]);
    expect([first.status, first.stderr]).toEqual([0, '']);
    const key = first.stdout;
    expect(key).toHaveLength(32);
    expect(opens(image, key)).toBe(0);
    expect(opens(image, randomBytes(32))).not.toBe(0);
    const token = await readRacksealToken(image);
    expect(token).toMatchObject({ secret: 'root-disk', keyslot: 0, generation: 1, retiring: [] });
    expect(token!.envelope!.equals(sealed[0]!.envelope!)).toBe(true);
    // Later boots unlock from the header like any rackseal disk, with or without the file.
    for (const args of [['unlock', '--device', image], ['unlock', '--device', image, '--prewrapped', file]]) {
      const again = await agent([...args, '--tpm', tpm.device]);
      expect([again.status, again.stderr, again.stdout.equals(key)]).toEqual([0, '', true]);
    }
    // The other machine's TPM cannot open this machine's pre-wrap.
    const elsewhere = await agent(['unlock', '--device', blankImage('other.img'), '--prewrapped', file, '--tpm', other.device]);
    expect([elsewhere.status, elsewhere.stdout.length]).toEqual([1, 0]);

    // The machine enrolls: its pre-wrap becomes its delivery of the same version, same id, a new round.
    const enrolled = await enroll(app, tpm, 'rsa-2048');
    expect(enrolled.status).toBe(200);
    const ready = await pollUntil(async () => (await deliveryOf('SN-A'))!, (d) => d.state === 'ready', 60_000);
    expect([ready.id, ready.version, ready.generation]).toEqual([sealed[0]!.id, 1, 2]);
    expect(await materials('SN-A')).toEqual([materialBefore]);
    expect((await auditOf('delivery.planned', 'machine.attested')).map((r) => r.details.prewrapsConfirmed)).toEqual([1]);

    const box = (await signed(enrolled.credential, 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=0`)).body as MailboxResponse;
    expect(box.deliveries.map((d) => [d.id, d.secret, d.version])).toEqual([[ready.id, 'root-disk', 1]]);
    const approvals = (await signed(enrolled.credential, 'GET', nodeApiPath(APPROVALS_ROUTE))).body as ApprovalsResponse;
    const envelope = Buffer.from(box.deliveries[0]!.envelope, 'base64');
    const client = new TpmClient(await openTransport(tpm.device));
    let payload: Buffer;
    let ackProof: Buffer;
    try {
      ({ payload, ackProof } = await unwrapDelivery(client, envelope, { ekPubHash: provisioning.machine.ekPubHash }, { approvals }));
    } finally {
      await client.close();
    }
    const delivered = parseDeliveryPayload(payload, (b) => new SecretBytes(b));
    expect(delivered.kind === 'disk' && delivered.key.reveal().equals(key) && delivered.generation === 1).toBe(true);
    // The agent's install of it changes nothing: the disk already holds that generation.
    const config = parseAgentConfig({ installs: { 'root-disk': { kind: 'disk', device: image } } }, 'agent.yaml');
    const report = await install({ name: 'root-disk', kind: 'disk', version: 1, deliveryId: ready.id, payload: delivered, envelope }, config);
    expect(report.disk?.changed).toBe(false);
    expect(opens(image, key)).toBe(0);
    // The ack confirms it, with the proof the agent computes from the content key it unsealed.
    const acked = await signed(enrolled.credential, 'POST', nodeApiPath(deliveryAckRoute(ready.id)), { proof: ackProof.toString('base64') });
    expect([acked.status, acked.body.state]).toEqual([200, 'acked']);
    expect((await deliveryOf('SN-A'))!.state).toBe('acked');

    // Refusals, each audited with its code: attested, hash only, no policy, revoked.
    const attested = await operator('get', '/v1/machines/SN-A/prewrapped');
    expect([attested.status, attested.body.code, attested.body.message]).toEqual([409, 'delivery.no-prewrap', expect.stringMatching(/attested/)]);
    const hashOnly = await cli('machines', 'prewrapped', 'SN-HASH', '--out', join(root, 'hash.json'));
    expect(hashOnly.status).not.toBe(0);
    expect(hashOnly.stderr).toMatch(/machine SN-HASH was imported with its ek_pub_hash only: a hash is no key to wrap to/);
    const noPolicy = await operator('get', '/v1/machines/SN-NOPOL/prewrapped');
    expect([noPolicy.status, noPolicy.body.code, noPolicy.body.message]).toEqual([409, 'delivery.no-prewrap', expect.stringMatching(/group nopolicy has no PCR policy/)]);
    expect((await operator('post', '/v1/machines/SN-R/revoke').send({ reason: 'stolen in transit' })).status).toBe(200);
    const cancelled = (await deliveryOf('SN-R'))!;
    expect([cancelled.state, cancelled.envelope]).toEqual(['cancelled', null]);
    const revoked = await operator('get', '/v1/machines/SN-R/prewrapped');
    expect([revoked.status, revoked.body.code, revoked.body.message]).toEqual([409, 'delivery.no-prewrap', expect.stringMatching(/revoked/)]);
    expect((await auditOf('delivery.prewrap-exported')).map((r) => [r.details.serial, r.outcome, r.details.code ?? null])).toEqual([
      ['SN-A', 'success', null],
      ['SN-A', 'refused', 'delivery.no-prewrap'],
      ['SN-HASH', 'refused', 'delivery.no-prewrap'],
      ['SN-NOPOL', 'refused', 'delivery.no-prewrap'],
      ['SN-R', 'refused', 'delivery.no-prewrap'],
    ]);
    expect(await materials('SN-NOPOL')).toEqual([]);
    expect(await materials('SN-HASH')).toEqual([]);

    // No key in the audit log, any answer's table, or the provisioning file.
    const everything = Buffer.concat([
      Buffer.from(JSON.stringify(await ds.query('SELECT action, details FROM audit_log'))),
      Buffer.from(JSON.stringify(await ds.query('SELECT id, state, last_error FROM deliveries'))),
      readFileSync(file),
    ]);
    expect(everything.includes(key)).toBe(false);
    for (const text of renderings(key)) {
      expect(everything.includes(Buffer.from(text))).toBe(false);
    }
  });

  it('an epoch bump seals pre-wraps again as pre-wraps at the new epoch (an ECC EK too); a provisioning file that is not one is refused', async () => {
    await importCsv([`SN-B,,node-b,workers,${b64(await fixture.at(1).p256EkCertDer())},`]);
    const first = await pollUntil(async () => (await deliveryOf('SN-B'))!, (d) => d?.state === 'prewrapped', 60_000);
    expect(parseEnvelope(first.envelope!).transport).toMatchObject({ binding: 'pcr-sealed', group: 'workers', epoch: 1 });
    const values = Object.fromEntries(FRESH_SWTPM_POLICY.pcrs.map((pcr) => [String(pcr), 'aa'.repeat(32)]));
    expect((await operator('post', '/v1/groups/workers/policy/sets').send({ label: 'next', values })).status).toBe(200);
    expect((await request(app.getHttpServer()).delete('/v1/groups/workers/policy/sets/next').set('Authorization', `Bearer ${admin}`)).status).toBe(200);
    const again = await pollUntil(async () => (await deliveryOf('SN-B'))!, (d) => d.state === 'prewrapped' && d.generation === 2, 60_000);
    expect([again.id, again.state, again.generation]).toEqual([first.id, 'prewrapped', 2]);
    expect(parseEnvelope(again.envelope!).transport).toMatchObject({ epoch: 2 });
    const exported = await operator('get', '/v1/machines/SN-B/prewrapped');
    expect([exported.status, exported.body.prewraps[0].approvals.epoch, exported.body.prewraps[0].envelope]).toEqual([200, 2, again.envelope!.toString('base64')]);

    const bad = join(root, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...exported.body.prewraps[0], extra: 1 }));
    const image = blankImage('untouched.img');
    const refused = await agent(['unlock', '--device', image, '--prewrapped', bad, '--tpm', fixture.at(1).device]);
    expect([refused.status, refused.stdout.length]).toEqual([1, 0]);
    expect(refused.stderr).toMatch(/pre-wrapped disk key file: "extra" is not a field of the file/);
    expect(readFileSync(image).every((b) => b === 0)).toBe(true);
  });
});
