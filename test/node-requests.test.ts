/**
 * Signed node requests after enrollment (issue 12 item 5): GET /node/v1/self behind NodeRequestGuard,
 * on two control-plane replicas over one real PostgreSQL, with machines enrolled by the in-process
 * agent on swtpm (test/support/enrollment.ts). Each row of the attack table — no credential,
 * another machine's credential, a replay (to the other replica), a stale timestamp, a changed body,
 * a revoked or quarantined machine, a rotated credential — asserts its 401 code and, for the
 * security-relevant ones, the audit record.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { NodeRequestNonces, PcrPoliciesRepository, PcrPolicySource } from '@rackseal/attestation';
import { ApiTokens } from '@rackseal/api-tokens';
import { MachineRevocations } from '@rackseal/machines';
import { CURRENT_KEY_ROUTE, nodeApiPath } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { Clock } from '@rackseal/platform';
import { VendorCas } from '@rackseal/vendor-cas';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { InventoryImporter } from '@rackseal/inventory';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { b64, enroll, START_PATH, withAgent } from './support/enrollment';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { FRESH_SWTPM_POLICY, MovableClock, TestPolicies } from './support/attestation-policies';

jest.setTimeout(120_000);

const SELF = nodeApiPath('self');
const CURRENT_KEY = nodeApiPath(CURRENT_KEY_ROUTE);
const DAY_MS = 86_400_000;

describe('signed node requests (NodeRequestGuard, GET /node/v1/self)', () => {
  const fixture = useSwtpms(1, { p256: true });
  const clock = new MovableClock();
  const policies = new TestPolicies();
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let apps: INestApplication[];
  let ds: DataSource;
  /** The credentials the agents derived, by serial. */
  const credential: Record<string, NodeCredential> = {};

  async function startApp(): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }))] })
      .overrideProvider(Clock)
      .useValue(clock)
      .overrideProvider(PcrPolicySource)
      .useValue(policies)
      .compile();
    const app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.init();
    return app;
  }

  beforeAll(async () => {
    const tpm = fixture.at(0);
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    apps = [await startApp(), await startApp()];
    ds = await openDataSource(db.url);
    await apps[0]!.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], {
      addedBy: 'test',
    });
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-RSA,,,workers,${b64(await tpm.rsaEkCertDer())},`, `SN-P256,,,workers,${b64(await tpm.p256EkCertDer())},`].join('\n');
    const summary = await apps[0]!.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
    expect(summary).toMatchObject({ status: 'succeeded' });
    policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    for (const [serial, kind] of [['SN-RSA', 'rsa-2048'], ['SN-P256', 'ecc-p256']] as const) {
      const enrolled = await enroll(apps[0]!, tpm, kind);
      expect([enrolled.status, enrolled.body.credentialId]).toEqual([200, enrolled.credential.credentialId]);
      credential[serial] = enrolled.credential;
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all((apps ?? []).map((app) => app.close()));
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  afterEach(async () => {
    clock.offsetMs = 0;
    policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    await fixture.at(0).reboot();
  });

  interface Signed {
    credential?: NodeCredential;
    method?: string;
    path?: string;
    body?: Buffer;
    now?: Date;
    nonce?: Buffer;
  }
  const sign = (s: Signed = {}) =>
    signNodeRequest({
      credential: s.credential ?? credential['SN-RSA']!,
      method: s.method ?? 'GET',
      path: s.path ?? SELF,
      body: s.body ?? Buffer.alloc(0),
      now: s.now ?? clock.now(),
      nonce: s.nonce ?? randomBytes(16),
    });
  const getSelf = (headers: Record<string, string>, app = 0) => request(apps[app]!.getHttpServer()).get(SELF).set(headers);

  const machine = async (serial: string) =>
    ((await ds.query('SELECT id, state, last_attested_at FROM machines WHERE serial = $1', [serial])) as { id: string; state: string; last_attested_at: Date }[])[0]!;
  const auditCount = async () => Number(((await ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'node.request-refused'`)) as { n: string }[])[0]!.n);
  const lastRefusalAudit = async () =>
    ((await ds.query(`SELECT actor, subject, outcome, details FROM audit_log WHERE action = 'node.request-refused' ORDER BY id DESC LIMIT 1`)) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[])[0];

  /** A 401 with its code and the scheme to use; audited (one more node.request-refused record) or not. */
  async function expectRefused(response: request.Response, code: string, audited: boolean, before: number): Promise<void> {
    expect([response.status, response.body.code]).toEqual([401, code]);
    expect(response.headers['www-authenticate']).toBe('RackSeal-HMAC-SHA256');
    expect(await auditCount()).toBe(before + (audited ? 1 : 0));
  }

  // ── accepted ────────────────────────────────────────────────────────────────────────────────

  it('a signed GET /node/v1/self answers the calling machine, on either replica; the nonce is stored until timestamp + 300 s', async () => {
    const m = await machine('SN-RSA');
    const now = clock.now();
    const nonce = randomBytes(16);
    for (const [app, n] of [[0, nonce], [1, randomBytes(16)]] as const) {
      const response = await getSelf(sign({ now, nonce: n }), app);
      expect([response.status, response.body]).toEqual([
        200,
        {
          machineId: m.id,
          serial: 'SN-RSA',
          group: 'workers',
          state: 'attested',
          lastAttestedAt: m.last_attested_at.toISOString(),
          nextAttestationDue: new Date(m.last_attested_at.getTime() + DAY_MS).toISOString(),
          reattest: false,
        },
      ]);
    }
    const [row] = (await ds.query('SELECT credential_id, expires_at FROM node_request_nonces WHERE nonce = $1', [nonce])) as { credential_id: string; expires_at: Date }[];
    expect(row).toEqual({ credential_id: credential['SN-RSA']!.credentialId, expires_at: new Date((Math.floor(now.getTime() / 1000) + 300) * 1000) });
  });

  it('reattest turns true once the interval since the last attestation has passed', async () => {
    clock.offsetMs = DAY_MS + 1000;
    const response = await getSelf(sign());
    expect([response.status, response.body.reattest]).toEqual([200, true]);
  });

  it('a machine attesting again (registration open) still calls with its credential: state attesting', async () => {
    await withAgent(fixture.at(0), 'rsa-2048', async (agent) => {
      const started = await request(apps[0]!.getHttpServer()).post(START_PATH).set('Content-Type', 'application/json').send({ ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
      expect(started.status).toBe(201);
      const response = await getSelf(sign());
      expect([response.status, response.body.state]).toEqual([200, 'attesting']);
    });
  });

  // ── refused ─────────────────────────────────────────────────────────────────────────────────

  it('no credential → node.missing-credential (also with an operator bearer token); not audited', async () => {
    const before = await auditCount();
    await expectRefused(await request(apps[0]!.getHttpServer()).get(SELF), 'node.missing-credential', false, before);
    await expectRefused(await getSelf({ authorization: `Bearer rks_${'A'.repeat(43)}` }), 'node.missing-credential', false, before);
  });

  it('another machine\'s credential ID with this machine\'s key → node.bad-signature, audited with the credential\'s machine, no header echoed', async () => {
    const before = await auditCount();
    const forged = { credentialId: credential['SN-P256']!.credentialId, key: credential['SN-RSA']!.key };
    const headers = sign({ credential: forged });
    await expectRefused(await getSelf(headers), 'node.bad-signature', true, before);
    const audit = await lastRefusalAudit();
    expect(audit).toEqual({
      actor: `node-credential:${forged.credentialId}`,
      subject: `machine:${(await machine('SN-P256')).id}`,
      outcome: 'refused',
      details: { reason: 'bad-signature', method: 'GET', path: SELF },
    });
    const signature = /Signature=([^,]+)$/.exec(headers.authorization!)![1]!;
    expect(JSON.stringify(audit)).not.toContain(signature);
  });

  it('a made-up credential ID → node.unknown-credential, audited without a machine', async () => {
    const before = await auditCount();
    const madeUp = { credentialId: randomBytes(16).toString('hex'), key: credential['SN-RSA']!.key };
    await expectRefused(await getSelf(sign({ credential: madeUp })), 'node.unknown-credential', true, before);
    expect(await lastRefusalAudit()).toMatchObject({ actor: `node-credential:${madeUp.credentialId}`, subject: '', details: { reason: 'unknown-credential' } });
  });

  it('the same request again, on the other replica → node.replayed, audited', async () => {
    const headers = sign();
    expect((await getSelf(headers, 0)).status).toBe(200);
    const before = await auditCount();
    await expectRefused(await getSelf(headers, 1), 'node.replayed', true, before);
    expect(await lastRefusalAudit()).toMatchObject({ subject: `machine:${(await machine('SN-RSA')).id}`, details: { reason: 'replayed' } });
    await expectRefused(await getSelf(headers, 0), 'node.replayed', true, before + 1);
  });

  it('a timestamp 301 s behind or ahead of the server\'s clock → node.stale; 299 s passes', async () => {
    const before = await auditCount();
    // The server's clock stands still, so a slow request (a loaded CI machine) cannot move the boundary.
    clock.frozenAtMs = Date.now();
    try {
      const now = clock.now().getTime();
      await expectRefused(await getSelf(sign({ now: new Date(now - 301_000) })), 'node.stale', false, before);
      await expectRefused(await getSelf(sign({ now: new Date(now + 301_000) })), 'node.stale', false, before);
      expect((await getSelf(sign({ now: new Date(now - 299_000) }))).status).toBe(200);
      expect((await getSelf(sign({ now: new Date(now + 299_000) }))).status).toBe(200);
    } finally {
      clock.frozenAtMs = undefined;
    }
  });

  it('a changed body: the signed digest → node.body-digest-mismatch; the new body\'s digest → node.bad-signature', async () => {
    const signed = sign({ body: Buffer.from('{"a":1}') });
    const before = await auditCount();
    const send = (headers: Record<string, string>) => getSelf(headers).set('Content-Type', 'application/json').send('{"a":2}');
    await expectRefused(await send(signed), 'node.body-digest-mismatch', false, before);
    const other = sign({ body: Buffer.from('{"a":2}') });
    await expectRefused(await send({ ...signed, 'content-digest': other['content-digest']! }), 'node.bad-signature', true, before);
    // The body as signed passes: the signature covers the bytes, whitespace and all.
    expect((await getSelf(sign({ body: Buffer.from('{ "a" : 1 }') })).set('Content-Type', 'application/json').send('{ "a" : 1 }')).status).toBe(200);
  });

  it('a body the JSON parser did not read (another Content-Type) → node.malformed', async () => {
    const before = await auditCount();
    const response = await getSelf(sign({ body: Buffer.from('a=1') })).set('Content-Type', 'text/plain').send('a=1');
    await expectRefused(response, 'node.malformed', false, before);
    expect(response.body.message).toBe('a signed node request sends its body as Content-Type: application/json');
  });

  it('two Authorization headers → node.malformed, even when both are valid', async () => {
    const headers = sign();
    const before = await auditCount();
    const response = await request(apps[0]!.getHttpServer())
      .get(SELF)
      .set('Content-Digest', headers['content-digest']!)
      .set('Authorization', [headers.authorization!, sign().authorization!] as unknown as string);
    await expectRefused(response, 'node.malformed', false, before);
    expect(response.body.message).toBe('the authorization header is given more than once');
  });

  it('re-attestation rotates the credential: the old one is node.unknown-credential, the new one works', async () => {
    const old = credential['SN-RSA']!;
    const enrolled = await enroll(apps[1]!, fixture.at(0), 'rsa-2048');
    expect(enrolled.status).toBe(200);
    expect(enrolled.credential.credentialId).not.toBe(old.credentialId);
    credential['SN-RSA'] = enrolled.credential;
    const before = await auditCount();
    await expectRefused(await getSelf(sign({ credential: old })), 'node.unknown-credential', true, before);
    expect((await getSelf(sign({ credential: enrolled.credential }))).status).toBe(200);
  });

  it('a quarantined machine\'s credential → node.machine-not-attested (after its signature verified) on every route but /self, which says quarantined and asks again once the group\'s policy changed; attested again, it works', async () => {
    policies.byGroup.delete('workers');
    const quarantined = await enroll(apps[0]!, fixture.at(0), 'rsa-2048');
    expect([quarantined.status, quarantined.body.code]).toEqual([409, 'attestation.no-policy']);
    expect((await machine('SN-RSA')).state).toBe('quarantined');
    const before = await auditCount();
    const response = await request(apps[0]!.getHttpServer()).get(CURRENT_KEY).set(sign({ path: CURRENT_KEY }));
    await expectRefused(response, 'node.machine-not-attested', false, before);
    expect(response.body.message).toMatch(/is quarantined: its node credential authenticates only an attested machine; attest again$/);
    // A wrong signature under the same credential is still bad-signature: the state is told only to the key's holder.
    const forged = { credentialId: credential['SN-RSA']!.credentialId, key: credential['SN-P256']!.key };
    await expectRefused(await getSelf(sign({ credential: forged })), 'node.bad-signature', true, before);

    // /self takes the quarantined machine's credential: quarantined, not asked again by its interval
    // (a day later, still no), asked again once the group's stored policy changed after the quarantine.
    const self = await getSelf(sign());
    expect([self.status, self.body.state, self.body.reattest]).toEqual([200, 'quarantined', false]);
    clock.offsetMs += 2 * DAY_MS;
    expect((await getSelf(sign())).body).toMatchObject({ state: 'quarantined', reattest: false });
    await new PcrPoliciesRepository(ds).put('workers', FRESH_SWTPM_POLICY, 'test', clock.now());
    expect((await getSelf(sign())).body).toMatchObject({ state: 'quarantined', reattest: true });
    await ds.query('DELETE FROM pcr_policies');
    clock.offsetMs -= 2 * DAY_MS;

    policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    const again = await enroll(apps[0]!, fixture.at(0), 'rsa-2048');
    expect(again.status).toBe(200);
    credential['SN-RSA'] = again.credential;
    expect((await getSelf(sign())).status).toBe(200);
  });

  it('expired nonces are deleted in bounded batches by the inserts; live ones stay', async () => {
    const id = credential['SN-RSA']!.credentialId;
    const now = clock.now();
    await ds.query('DELETE FROM node_request_nonces');
    for (let i = 0; i < 5; i++) {
      await ds.query('INSERT INTO node_request_nonces (credential_id, nonce, expires_at) VALUES ($1, $2, $3)', [id, randomBytes(16), new Date(now.getTime() - 1000 - i)]);
    }
    const nonces = new NodeRequestNonces(ds, clock, 2);
    const live = randomBytes(16);
    expect(await nonces.remember(id, live, new Date(now.getTime() + 60_000))).toBe(true);
    expect(Number((await ds.query('SELECT count(*) AS n FROM node_request_nonces'))[0].n)).toBe(6);
    // The second insert runs the cleanup: the 5 expired rows go, the 2 live ones stay.
    expect(await nonces.remember(id, randomBytes(16), new Date(now.getTime() + 60_000))).toBe(true);
    expect(Number((await ds.query('SELECT count(*) AS n FROM node_request_nonces'))[0].n)).toBe(2);
    expect(await nonces.remember(id, live, new Date(now.getTime() + 60_000))).toBe(false);
  });

  it('an operator\'s POST /v1/machines/:ref/reattest: self says reattest until the next successful attestation; audited once; revoked machines refused', async () => {
    const { token } = await apps[0]!.get(ApiTokens).issue('writer', ['inventory:write'], 'test');
    const ask = (ref: string) => request(apps[1]!.getHttpServer()).post(`/v1/machines/${ref}/reattest`).set('Authorization', `Bearer ${token}`);
    expect((await getSelf(sign())).body.reattest).toBe(false);
    const first = await ask('SN-RSA');
    const m = await machine('SN-RSA');
    expect([first.status, first.body]).toEqual([200, { machineId: m.id, serial: 'SN-RSA', requestedAt: expect.any(String) }]);
    // A second request while one is pending keeps the first, with no second record.
    const second = await ask(m.id);
    expect([second.status, second.body.requestedAt]).toEqual([200, first.body.requestedAt]);
    const records = (await ds.query(`SELECT actor, subject, details FROM audit_log WHERE action = 'machine.reattest-requested'`)) as { actor: string; subject: string; details: unknown }[];
    expect(records).toEqual([{ actor: expect.stringMatching(/^token:/), subject: `machine:${m.id}`, details: { serial: 'SN-RSA', state: m.state } }]);
    expect((await getSelf(sign())).body.reattest).toBe(true);

    const again = await enroll(apps[0]!, fixture.at(0), 'rsa-2048');
    expect(again.status).toBe(200);
    credential['SN-RSA'] = again.credential;
    expect((await getSelf(sign())).body.reattest).toBe(false);
    expect((await ask('SN-NONE')).body.code).toBe('machine.not-found');
  });

  it('revoke (last: SN-P256 stays revoked) ends the machine\'s credential in the same transaction → node.unknown-credential', async () => {
    const p256 = credential['SN-P256']!;
    expect((await getSelf(sign({ credential: p256 }))).status).toBe(200);
    const result = await apps[1]!.get(MachineRevocations).revoke({ serial: 'SN-P256' }, { reason: 'stolen', actor: 'test' });
    expect(result.changed).toBe(true);
    const [row] = (await ds.query('SELECT revoked_at FROM node_credentials WHERE credential_id = $1', [p256.credentialId])) as { revoked_at: Date | null }[];
    expect(row!.revoked_at).toEqual(result.machine.updatedAt);
    const before = await auditCount();
    await expectRefused(await getSelf(sign({ credential: p256 })), 'node.unknown-credential', true, before);
    // …and it is never asked to re-attest again.
    const { token } = await apps[0]!.get(ApiTokens).issue('writer-2', ['inventory:write'], 'test');
    const asked = await request(apps[0]!.getHttpServer()).post('/v1/machines/SN-P256/reattest').set('Authorization', `Bearer ${token}`);
    expect([asked.status, asked.body.code, asked.body.message]).toEqual([409, 'machine.illegal-transition', 'a machine cannot go from revoked to attesting']);
  });
});
