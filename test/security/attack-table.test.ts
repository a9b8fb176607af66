/**
 * The attack table in one place (issue 15 item 3): every attack of the attestation, wrapping and
 * delivery issues and of the operator API, run against the real control plane (PostgreSQL, Redis,
 * swtpm, HTTPS with a locally made CA), each row asserted three ways — refused (the status and the
 * stable code), audited (the record found, or none by design and that asserted), and secrets
 * released: 0 (no node credential issued, no delivery acked, no token issued, no envelope or value
 * in the answer). The table is printed at the end. The suites that own each refusal go deeper
 * (test/attestation.test.ts, test/deliveries.test.ts, test/node-requests.test.ts,
 * test/operator-api.test.ts); this one proves they all hold together, including the rate limits
 * shared by two replicas and the TLS pinning of the agent and the CLI.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ApiTokens } from '@rackseal/api-tokens';
import { pinnedCaFetch } from '@rackseal/command-line/pinned-ca-fetch';
import { PcrPolicySource } from '@rackseal/attestation';
import { DeliveryProcessor } from '@rackseal/deliveries';
import { InventoryImporter } from '@rackseal/inventory';
import { MachinesRepository } from '@rackseal/machines';
import { DELIVERIES_ROUTE, deliveryAckRoute, type MailboxResponse, nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { Clock } from '@rackseal/platform';
import { marshalTpm2bPublic } from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import IORedis from 'ioredis';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { NodeApiClient, NodeApiRefusal, NodeApiUntrustedServerError } from '../../apps/agent/src/node-api/node-api-client';
import { pinServerCa } from '../../apps/agent/src/node-api/server-trust';
import { ServerClient } from '../../apps/cli/src/server-client';
import { ControlPlaneModule } from '../../apps/control-plane/src/control-plane.module';
import { createControlPlane } from '../../apps/control-plane/src/create-control-plane';
import { RateLimitAudit } from '../../apps/control-plane/src/hardening/rate-limit-audit';
import { configureHttpApp } from '../../apps/control-plane/src/http/configure-http-app';
import { JOB_HANDLER_PROVIDERS, WorkerModule } from '../../apps/worker/src/worker.module';
import { answer, type AgentSession, b64, withAgent } from '../support/attestation-agent';
import { runAgentCliAsync, runRacksealCliAsync } from '../support/cli-runner';
import { FRESH_SWTPM_POLICY, MovableClock, TestPolicies } from '../support/attestation-policies';
import { createTestDatabase, openDataSource, type TestDatabase } from '../support/database';
import { enroll, finishPath, START_PATH } from '../support/enrollment';
import { LocalCa } from '../support/local-ca';
import { createTestQueuePrefix, type TestQueuePrefix } from '../support/redis';
import { testServices } from '../support/services';
import { useSwtpms } from '../support/swtpm';
import { testConfig } from '../support/test-config';
import { openTestEnvelope, TestEnvelopeSealer } from '../support/test-envelope-sealer';
import { TlsTestCa } from '../support/tls-ca';

jest.setTimeout(240_000);

/** One row of the printed table. */
interface Row {
  readonly attack: string;
  readonly refused: string;
  readonly audited: string;
  readonly released: number;
}

/** Requests of one flood, all sent at once, split over the two replicas. */
const FLOOD = 40;

describe('security: the attack table', () => {
  const fixture = useSwtpms(1, { p256: true });
  const clock = new MovableClock();
  const policies = new TestPolicies();
  const fleetKey = randomBytes(32);
  const secretValue = randomBytes(48);
  const table: Row[] = [];
  const apps: INestApplication[] = [];
  const floodReplicas: INestApplication[] = [];
  const addressReplicas: INestApplication[] = [];
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let floodPrefix: TestQueuePrefix;
  let addressPrefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let rogue: LocalCa;
  let rightCa: TlsTestCa;
  let wrongCa: TlsTestCa;
  let admin: string;
  let auditor: { token: string; id: string };
  let revokedToken: string;
  const credential: Record<'SN-RSA' | 'SN-P256', NodeCredential> = {} as never;
  const machineId: Record<'SN-RSA' | 'SN-P256', string> = {} as never;
  const unknownEkCert: { der?: Buffer } = {};
  const revokedEkCert: { der?: Buffer } = {};
  let delivery: { id: string; envelope: Buffer; ackProof: Buffer };

  /** An in-process control plane on the test database; `pfx` is its QUEUE_PREFIX (its Redis keys, rate buckets included). */
  async function startApp(pfx: string, extra: NodeJS.ProcessEnv = {}): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, pfx, { LOG_LEVEL: 'silent', ...extra }))] })
      .overrideProvider(Clock)
      .useValue(clock)
      .overrideProvider(PcrPolicySource)
      .useValue(policies)
      .compile();
    const created = moduleRef.createNestApplication({ bufferLogs: true });
    created.useLogger(created.get(Logger));
    configureHttpApp(created);
    await created.init();
    apps.push(created);
    return created;
  }

  beforeAll(async () => {
    const tpm = fixture.at(0);
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    floodPrefix = createTestQueuePrefix();
    addressPrefix = createTestQueuePrefix();
    [rogue, rightCa, wrongCa] = await Promise.all([LocalCa.create(), TlsTestCa.create(), TlsTestCa.create()]);
    app = await startApp(prefix.prefix);
    ds = await openDataSource(db.url);
    const tokens = app.get(ApiTokens);
    admin = (await tokens.issue('admin', ['admin'], 'test')).token;
    const issuedAuditor = await tokens.issue('auditor', ['audit:read'], 'test');
    auditor = { token: issuedAuditor.token, id: issuedAuditor.id };
    const revoked = await tokens.issue('leaver', ['admin'], 'test');
    await tokens.revoke(revoked.id, 'test');
    revokedToken = revoked.token;
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
    unknownEkCert.der = await fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    revokedEkCert.der = await fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const csv = [
      'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash',
      `SN-RSA,,rsa,workers,${b64(await tpm.rsaEkCertDer())},`,
      `SN-P256,,p256,workers,${b64(await tpm.p256EkCertDer())},`,
      `SN-REVOKED,,,workers,${b64(revokedEkCert.der)},`,
    ].join('\n');
    expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
    const revokedMachine = ((await ds.query(`SELECT id FROM machines WHERE serial = 'SN-REVOKED'`)) as { id: string }[])[0]!;
    await app.get(MachinesRepository).revoke(revokedMachine.id, { reason: 'decommissioned', actor: 'test' }, new Date());
    policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    for (const [serial, kind] of [['SN-RSA', 'rsa-2048'], ['SN-P256', 'ecc-p256']] as const) {
      const enrolled = await enroll(app, tpm, kind);
      expect(enrolled.status).toBe(200);
      credential[serial] = enrolled.credential;
      machineId[serial] = enrolled.body.machineId as string;
    }
    // One ready delivery for SN-RSA: the secret planned by the API, sealed by the worker's processor in process.
    const created = await operator('post', '/v1/secrets', admin).send({ name: 'attack-secret', kind: 'opaque', target: { machine: 'SN-RSA' }, binding: 'pcr-sealed', value: secretValue.toString('base64') });
    expect([created.status, created.body.code]).toEqual([201, undefined]);
    const [planned] = (await ds.query(`SELECT d.id FROM deliveries d JOIN secrets s ON s.id = d.secret_id WHERE s.name = 'attack-secret'`)) as { id: string }[];
    const worker = await Test.createTestingModule({ imports: [WorkerModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }), JOB_HANDLER_PROVIDERS, { sealer: new TestEnvelopeSealer(fleetKey) })] }).compile();
    try {
      expect(await worker.get(DeliveryProcessor).deliver(planned!.id, 1, false)).toBe('ready');
    } finally {
      await worker.close();
    }
    const [row] = (await ds.query('SELECT envelope FROM deliveries WHERE id = $1', [planned!.id])) as { envelope: Buffer }[];
    delivery = { id: planned!.id, envelope: row!.envelope, ackProof: openTestEnvelope(fleetKey, machineId['SN-RSA'], planned!.id, 1, row!.envelope).ackProof };
  }, 300_000);

  afterAll(async () => {
    if (table.length > 0) {
      const widths = [62, 48, 64];
      const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
      process.stdout.write(
        [
          '',
          'attack table (test/security/attack-table.test.ts)',
          line(['attack', 'refused (status, code)', 'audited', 'secrets released']),
          ...table.map((row) => line([row.attack, row.refused, row.audited, String(row.released)])),
          '',
        ].join('\n'),
      );
    }
    await Promise.all(apps.map((a) => a.close()));
    await ds?.destroy();
    await db?.drop();
    await Promise.all([prefix, floodPrefix, addressPrefix].map((p) => p?.clear()));
    await Promise.all([rogue, rightCa, wrongCa].map((ca) => ca?.remove()));
  });

  function operator(method: 'get' | 'post', path: string, token?: string, target: INestApplication = app): request.Test {
    const call = request(target.getHttpServer())[method](path);
    return token === undefined ? call : call.set('Authorization', `Bearer ${token}`);
  }

  /** A node request signed with `as`'s credential; `headers` replays a signature made earlier. */
  async function node(as: NodeCredential, method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string>) {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const signed = headers ?? signNodeRequest({ credential: as, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) });
    const call = request(app.getHttpServer())[method === 'GET' ? 'get' : 'post'](path).set(signed);
    return { signed, response: await (body === undefined ? call : call.set('Content-Type', 'application/json').send(bytes.toString('utf8'))) };
  }

  /**
   * What an attack could have released: node credentials issued, deliveries acknowledged (a machine
   * proved it holds the secret), operator tokens issued. Each row's delta must be 0.
   */
  async function releasedCount(): Promise<number> {
    const [row] = (await ds.query(
      `SELECT (SELECT count(*) FROM node_credentials) + (SELECT count(*) FROM deliveries WHERE state = 'acked') + (SELECT count(*) FROM api_tokens) AS n`,
    )) as { n: string }[];
    return Number(row!.n);
  }

  const auditCount = async () => Number(((await ds.query('SELECT count(*) AS n FROM audit_log')) as { n: string }[])[0]!.n);
  const lastAudit = async (action: string, where = 'TRUE', params: unknown[] = []) =>
    ((await ds.query(`SELECT actor, subject, outcome, details FROM audit_log WHERE action = $1 AND ${where} ORDER BY id DESC LIMIT 1`, [action, ...params])) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[])[0];

  /** The answer holds neither the secret nor its envelope (in any encoding the API uses). */
  function expectNothingLeaked(text: string): void {
    for (const bytes of [secretValue, delivery.envelope]) {
      expect(text.includes(bytes.toString('base64'))).toBe(false);
      expect(text.includes(bytes.toString('hex'))).toBe(false);
    }
  }

  /** Runs an attack that is answered over HTTP, and asserts and records its row. */
  async function attack(
    name: string,
    run: () => Promise<{ status: number; body: Record<string, unknown>; text: string }>,
    expected: { status: number; code: string },
    audited: (() => Promise<string>) | { none: string },
  ): Promise<void> {
    const releasedBefore = await releasedCount();
    const auditBefore = await auditCount();
    const answered = await run();
    expect({ name, status: answered.status, code: answered.body.code }).toEqual({ name, status: expected.status, code: expected.code });
    expectNothingLeaked(answered.text);
    let auditNote: string;
    if ('none' in audited) {
      // Not audited by design (a malformed request costs its sender nothing): no record at all.
      expect({ name, records: (await auditCount()) - auditBefore }).toEqual({ name, records: 0 });
      auditNote = `none (${audited.none})`;
    } else {
      auditNote = await audited();
    }
    const released = (await releasedCount()) - releasedBefore;
    expect({ name, released }).toEqual({ name, released: 0 });
    table.push({ attack: name, refused: `${expected.status} ${expected.code}`, audited: auditNote, released });
  }

  const asAnswer = (response: request.Response) => ({ status: response.status, body: (response.body ?? {}) as Record<string, unknown>, text: response.text ?? '' });

  /** The newest `action` record matches; its summary for the table. */
  async function recorded(action: string, match: Record<string, unknown>, where?: string, params?: unknown[]): Promise<string> {
    const record = await lastAudit(action, where, params);
    expect({ action, record }).toEqual({ action, record: expect.objectContaining(match) });
    return `${action} (${record!.actor})`;
  }

  // ── operator API ─────────────────────────────────────────────────────────────────────────────

  it('operator API: no token, a revoked token, a token without the scope', async () => {
    await attack('operator call without a token', async () => asAnswer(await operator('get', '/v1/machines')), { status: 401, code: 'auth.unauthenticated' }, () =>
      recorded('auth.refused', { outcome: 'refused', details: expect.objectContaining({ reason: 'unauthenticated', path: '/v1/machines' }) }),
    );
    await attack('revoked operator token', async () => asAnswer(await operator('get', '/v1/secrets', revokedToken)), { status: 401, code: 'auth.unauthenticated' }, () =>
      recorded('auth.refused', { details: expect.objectContaining({ reason: 'unauthenticated', path: '/v1/secrets' }) }),
    );
    await attack(
      'token without the scope (audit:read → secrets)',
      async () => asAnswer(await operator('post', '/v1/secrets', auditor.token).send({ name: 'stolen', kind: 'opaque', target: { machine: 'SN-RSA' }, value: 'AAAA' })),
      { status: 403, code: 'auth.forbidden' },
      () => recorded('auth.refused', { actor: `token:${auditor.id}`, details: expect.objectContaining({ reason: 'forbidden', scope: 'secrets:write' }) }),
    );
    // Tokens have no expiry in rackseal (docs/decisions.md): revocation is how a token ends, and it is the row above.
  });

  it('operator API: an oversized body, a NUL byte, JSON nested 100,000 deep', async () => {
    await attack(
      'oversized JSON body (2 MiB, limit 1 MiB)',
      async () => asAnswer(await operator('post', '/v1/tokens', admin).set('Content-Type', 'application/json').send(JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024), scopes: ['admin'] }))),
      { status: 413, code: 'request.too-large' },
      { none: 'input refused before any state' },
    );
    await attack('NUL byte in a query value', async () => asAnswer(await operator('get', '/v1/machines?after=%00', admin)), { status: 400, code: 'request.invalid' }, {
      none: 'input refused before any state',
    });
    await attack(
      'JSON nested 100,000 deep',
      async () => asAnswer(await operator('post', '/v1/tokens', admin).set('Content-Type', 'application/json').send('['.repeat(100_000) + ']'.repeat(100_000))),
      { status: 400, code: 'request.invalid' },
      { none: 'input refused before any state' },
    );
    await attack(
      'oversized node API body (enrollment start, 2 MiB)',
      async () => asAnswer(await request(app.getHttpServer()).post(START_PATH).set('Content-Type', 'application/json').send(JSON.stringify({ akPublic: 'A'.repeat(2 * 1024 * 1024) }))),
      { status: 413, code: 'request.too-large' },
      { none: 'input refused before any state' },
    );
  });

  // ── deliveries (node API, signed requests) ───────────────────────────────────────────────────

  it('deliveries: another machine\'s delivery, an ack without the proof, a made-up credential, a replayed request', async () => {
    // The other machine's mailbox does not list it.
    const mailbox = (await node(credential['SN-P256'], 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=0`)).response;
    expect((mailbox.body as MailboxResponse).deliveries.map((d) => d.id)).not.toContain(delivery.id);
    expectNothingLeaked(mailbox.text);
    const ackPath = nodeApiPath(deliveryAckRoute(delivery.id));
    await attack(
      "another machine acks this machine's delivery (with its proof)",
      async () => asAnswer((await node(credential['SN-P256'], 'POST', ackPath, { proof: delivery.ackProof.toString('base64') })).response),
      { status: 404, code: 'delivery.not-found' },
      () => recorded('delivery.ack-refused', { outcome: 'refused', details: expect.objectContaining({ code: 'delivery.not-found', machineId: machineId['SN-P256'] }) }),
    );
    await attack(
      'ack without the proof (32 random bytes)',
      async () => asAnswer((await node(credential['SN-RSA'], 'POST', ackPath, { proof: randomBytes(32).toString('base64') })).response),
      { status: 400, code: 'delivery.bad-proof' },
      () => recorded('delivery.ack-refused', { details: expect.objectContaining({ code: 'delivery.bad-proof', machineId: machineId['SN-RSA'] }) }),
    );
    const madeUp: NodeCredential = { ...credential['SN-RSA'], credentialId: randomBytes(16).toString('hex') };
    await attack(
      'made-up node credential',
      async () => asAnswer((await node(madeUp, 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=0`)).response),
      { status: 401, code: 'node.unknown-credential' },
      () => recorded('node.request-refused', { details: expect.objectContaining({ reason: 'unknown-credential' }) }),
    );
    const first = await node(credential['SN-RSA'], 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=0`);
    expect(first.response.status).toBe(200);
    await attack(
      'replayed signed request (same nonce)',
      async () => asAnswer((await node(credential['SN-RSA'], 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=0`, undefined, first.signed)).response),
      { status: 401, code: 'node.replayed' },
      () => recorded('node.request-refused', { details: expect.objectContaining({ reason: 'replayed' }) }),
    );
    // The delivery is still ready, for its own machine only.
    expect(((await ds.query('SELECT state FROM deliveries WHERE id = $1', [delivery.id])) as { state: string }[])[0]!.state).toBe('ready');
  });

  // ── attestation (enrollment) ─────────────────────────────────────────────────────────────────

  const post = (path: string, body: unknown) => request(app.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body as object);

  async function startFor(agent: AgentSession, certificate = agent.certificate): Promise<StartAttestationResponse> {
    const started = await post(START_PATH, { ekCertificate: b64(certificate), akPublic: agent.akPublic });
    expect(started.status).toBe(201);
    return started.body as StartAttestationResponse;
  }

  const attestationRefused = (code: string, serial?: string) => () =>
    recorded('attestation.refused', { outcome: 'refused', ...(serial === undefined ? {} : { subject: `machine:${serial}` }), details: expect.objectContaining({ code }) }, `details->>'code' = $2`, [code]);

  it('attestation: wrong EK, a rogue vendor\'s EK certificate, an EK not in the inventory, a revoked machine', async () => {
    const tpm = fixture.at(0);
    let p256Ek = '';
    await withAgent(tpm, 'ecc-p256', async (agent) => {
      p256Ek = b64(marshalTpm2bPublic(agent.ek.public));
    });
    await withAgent(tpm, 'rsa-2048', async (agent) => {
      await attack(
        'wrong EK (certificate of one EK, public of another)',
        async () => asAnswer(await post(START_PATH, { ekCertificate: b64(agent.certificate), ekPublic: p256Ek, akPublic: agent.akPublic })),
        { status: 400, code: 'attestation.ek-mismatch' },
        attestationRefused('attestation.ek-mismatch'),
      );
      const rogueCert = await rogue.issueEkCert(new X509Certificate(agent.certificate).publicKey);
      await attack(
        "EK certificate from a rogue CA (vendor's names)",
        async () => asAnswer(await post(START_PATH, { ekCertificate: b64(rogueCert), akPublic: agent.akPublic })),
        { status: 400, code: 'attestation.ek-untrusted' },
        attestationRefused('attestation.ek-untrusted', 'SN-RSA'),
      );
      await attack(
        'EK not in the inventory (genuine vendor certificate)',
        async () => asAnswer(await post(START_PATH, { ekCertificate: b64(unknownEkCert.der!), akPublic: agent.akPublic })),
        { status: 404, code: 'attestation.unknown-ek' },
        attestationRefused('attestation.unknown-ek'),
      );
      await attack(
        'revoked machine attests',
        async () => asAnswer(await post(START_PATH, { ekCertificate: b64(revokedEkCert.der!), akPublic: agent.akPublic })),
        { status: 409, code: 'attestation.machine-revoked' },
        attestationRefused('attestation.machine-revoked', 'SN-REVOKED'),
      );
    });
  });

  it('attestation: replayed nonce, forged quote, edited PCR values, expired registration', async () => {
    await withAgent(fixture.at(0), 'rsa-2048', async (agent) => {
      const earlier = await startFor(agent);
      const current = await startFor(agent);
      const replayed = await answer(agent, current, { nonce: Buffer.from(earlier.nonce, 'base64') });
      await attack(
        "replayed nonce (a quote over an earlier registration's nonce)",
        async () => asAnswer(await post(finishPath(current.registrationId), replayed.body)),
        { status: 400, code: 'attestation.nonce-mismatch' },
        attestationRefused('attestation.nonce-mismatch', 'SN-RSA'),
      );

      const forgedStart = await startFor(agent);
      const forged = (await answer(agent, forgedStart)).body;
      const signature = Buffer.from(forged.quote.signature, 'base64');
      signature[signature.length - 1]! ^= 0x01;
      await attack(
        'forged quote (signature changed)',
        async () => asAnswer(await post(finishPath(forgedStart.registrationId), { ...forged, quote: { ...forged.quote, signature: b64(signature) } })),
        { status: 400, code: 'attestation.quote-invalid' },
        attestationRefused('attestation.quote-invalid', 'SN-RSA'),
      );

      const editedStart = await startFor(agent);
      const edited = (await answer(agent, editedStart)).body;
      const values = Buffer.from(edited.pcrValues, 'base64');
      values[4 * 32]! ^= 0x01;
      await attack(
        'wrong PCRs (values edited after the quote)',
        async () => asAnswer(await post(finishPath(editedStart.registrationId), { ...edited, pcrValues: b64(values) })),
        { status: 400, code: 'attestation.pcr-values-mismatch' },
        attestationRefused('attestation.pcr-values-mismatch', 'SN-RSA'),
      );

      const lateStart = await startFor(agent);
      const late = (await answer(agent, lateStart)).body;
      clock.offsetMs = 61_000;
      try {
        await attack(
          'expired registration (finished after its deadline)',
          async () => asAnswer(await post(finishPath(lateStart.registrationId), late)),
          { status: 409, code: 'attestation.registration-expired' },
          attestationRefused('attestation.registration-expired', 'SN-RSA'),
        );
      } finally {
        clock.offsetMs = 0;
      }
    });
  });

  it('attestation: a boot state the policy does not allow (PCR 4 extended) quarantines, nothing issued', async () => {
    const tpm = fixture.at(0);
    await tpm.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
    try {
      await withAgent(tpm, 'rsa-2048', async (agent) => {
        const start = await startFor(agent);
        const { body } = await answer(agent, start);
        await attack('wrong PCRs (unapproved boot: PCR 4 extended)', async () => asAnswer(await post(finishPath(start.registrationId), body)), { status: 409, code: 'attestation.policy-mismatch' }, attestationRefused('attestation.policy-mismatch', 'SN-RSA'));
      });
      expect(((await ds.query(`SELECT state FROM machines WHERE serial = 'SN-RSA'`)) as { state: string }[])[0]!.state).toBe('quarantined');
      // A quarantined machine's credential no longer reaches its mailbox.
      await attack(
        "quarantined machine's credential polls its mailbox",
        async () => asAnswer((await node(credential['SN-RSA'], 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=0`)).response),
        { status: 401, code: 'node.machine-not-attested' },
        { none: 'the signature verified: the quarantine itself is the audited event (attestation.refused above)' },
      );
    } finally {
      await tpm.reboot();
    }
  });

  it('a revoked machine\'s credential is refused on the node API', async () => {
    // Through the operator API, as an operator would: the revocation ends the credential in its transaction.
    const revoked = await operator('post', '/v1/machines/SN-P256/revoke', admin).send({ reason: 'stolen' });
    expect([revoked.status, revoked.body.changed]).toEqual([200, true]);
    await attack(
      "revoked machine's node credential",
      async () => asAnswer((await node(credential['SN-P256'], 'GET', nodeApiPath('self'))).response),
      { status: 401, code: 'node.unknown-credential' },
      () => recorded('node.request-refused', { details: expect.objectContaining({ reason: 'unknown-credential' }) }),
    );
  });

  // ── rate limits (two replicas sharing Redis) ─────────────────────────────────────────────────

  /** Sends FLOOD requests at once, alternating between the replicas; the 429s' codes and Retry-After checked. */
  async function flood(replicas: INestApplication[], send: (target: INestApplication) => request.Test): Promise<{ ok: number; limited: number; byReplica: number[] }> {
    const answers = await Promise.all(Array.from({ length: FLOOD }, (_, i) => send(replicas[i % replicas.length]!).then((r) => ({ r, replica: i % replicas.length }))));
    const limited = answers.filter((a) => a.r.status === 429);
    for (const { r } of limited) {
      expect([r.body.code, Number(r.headers['retry-after']) >= 1, Number.isInteger(Number(r.headers['retry-after']))]).toEqual(['request.rate-limited', true, true]);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
    return {
      ok: answers.length - limited.length,
      limited: limited.length,
      byReplica: replicas.map((_, i) => limited.filter((a) => a.replica === i).length),
    };
  }

  /** The individual records of `actor` and the summaries' count after a flush: together, every refusal. */
  async function rateLimitRecords(replicas: INestApplication[], actor: string): Promise<{ individual: number; summarized: number }> {
    await Promise.all(replicas.map((r) => r.get(RateLimitAudit).flush()));
    const individual = Number(((await ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'request.rate-limited' AND actor = $1`, [actor])) as { n: string }[])[0]!.n);
    const summaries = (await ds.query(`SELECT details FROM audit_log WHERE action = 'request.rate-limited' AND actor = 'system:rate-limit'`)) as { details: { sources: { source: string; refused: number }[] } }[];
    const summarized = summaries.flatMap((s) => s.details.sources).filter((s) => s.source === actor).reduce((sum, s) => sum + s.refused, 0);
    return { individual, summarized };
  }

  it('rate limit per credential: a token flooding two replicas is refused 429 by both, audited once per replica plus a summary', async () => {
    // One request per second and a bucket of one, shared through Redis by both replicas.
    const env = { RATE_LIMIT_CREDENTIAL_PER_SECOND: '1', RATE_LIMIT_BURST_SECONDS: '1' };
    const replicas = [await startApp(floodPrefix.prefix, env), await startApp(floodPrefix.prefix, env)];
    floodReplicas.push(...replicas);
    const started = Date.now();
    const releasedBefore = await releasedCount();
    const result = await flood(replicas, (target) => operator('get', '/v1/audit?limit=1', auditor.token, target));
    // Not a timing assertion: the bound only loosens with time (one token per elapsed second, plus the bucket).
    const bound = 2 + Math.ceil((Date.now() - started) / 1000);
    expect(result.ok).toBeLessThanOrEqual(bound);
    expect(result.ok + result.limited).toBe(FLOOD);
    if (bound < FLOOD / 2 - 1) {
      // Fewer successes than either replica's share: each replica refused some, so they share the bucket.
      expect(result.byReplica.every((n) => n > 0)).toBe(true);
    }
    const records = await rateLimitRecords(replicas, `token:${auditor.id}`);
    // Aggregated: at most one record per replica for this source, the rest counted in the summaries.
    expect(records.individual).toBeGreaterThanOrEqual(1);
    expect(records.individual).toBeLessThanOrEqual(replicas.length);
    expect(records.individual + records.summarized).toBe(result.limited);
    // …and counted at once in each replica's /metrics.
    let counted = 0;
    for (const replica of replicas) {
      const text = (await request(replica.getHttpServer()).get('/metrics')).text;
      const line = text.split('\n').find((l) => l.startsWith('rackseal_audit_refusals_suppressed_total{action="request.rate-limited",kind="credential"} '));
      counted += line === undefined ? 0 : Number(line.split(' ')[1]);
    }
    expect(counted).toBe(records.summarized);
    expect((await releasedCount()) - releasedBefore).toBe(0);
    table.push({
      attack: `flood: ${FLOOD} calls of one token on 2 replicas`,
      refused: `429 request.rate-limited ×${result.limited}`,
      audited: `request.rate-limited ×${records.individual} + summary of ${records.summarized}`,
      released: 0,
    });
  });

  it('rate limit per address: an unauthenticated enrollment flood is refused 429 before its body is read', async () => {
    const env = { RATE_LIMIT_ADDRESS_PER_SECOND: '1', RATE_LIMIT_BURST_SECONDS: '1' };
    const replicas = [await startApp(addressPrefix.prefix, env), await startApp(addressPrefix.prefix, env)];
    addressReplicas.push(...replicas);
    const started = Date.now();
    const releasedBefore = await releasedCount();
    const result = await flood(replicas, (target) => request(target.getHttpServer()).post(START_PATH).set('Content-Type', 'application/json').send({ ekPublic: 'AAAA', akPublic: 'AAAA' }));
    expect(result.ok).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - started) / 1000));
    const records = await rateLimitRecords(replicas, 'address:127.0.0.1');
    expect(records.individual).toBeGreaterThanOrEqual(1);
    expect(records.individual).toBeLessThanOrEqual(replicas.length);
    expect(records.individual + records.summarized).toBe(result.limited);
    expect((await releasedCount()) - releasedBefore).toBe(0);
    table.push({
      attack: `flood: ${FLOOD} enrollment starts from one address`,
      refused: `429 request.rate-limited ×${result.limited}`,
      audited: `request.rate-limited ×${records.individual} + summary of ${records.summarized}`,
      released: 0,
    });
  });

  // ── TLS ──────────────────────────────────────────────────────────────────────────────────────

  it('TLS: plain HTTP to the HTTPS port gets no answer; the agent and the CLI refuse a server that does not chain to their pinned CA', async () => {
    const served = await rightCa.issueServer();
    const tlsApp = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent', TLS_CERT_FILE: served.certFile, TLS_KEY_FILE: served.keyFile }));
    apps.push(tlsApp);
    await tlsApp.listen(0, '127.0.0.1');
    const port = (tlsApp.getHttpServer().address() as { port: number }).port;
    const origin = `https://127.0.0.1:${port}`;
    const releasedBefore = await releasedCount();
    const auditBefore = await auditCount();

    // Plain HTTP, a token in clear: the TLS listener never answers it.
    const plain = await fetch(`http://127.0.0.1:${port}/v1/machines`, { headers: { authorization: `Bearer ${admin}` } }).then(
      (r) => ({ answered: r.status }),
      (error: Error & { cause?: { code?: string } }) => ({ failed: error.cause?.code ?? error.message }),
    );
    expect(plain).toEqual({ failed: expect.any(String) });
    table.push({ attack: 'plain HTTP to the HTTPS listener', refused: `no HTTP answer (${(plain as { failed: string }).failed})`, audited: 'none (never reaches HTTP)', released: 0 });

    // The agent: the wrong CA pinned → refused at the handshake, not retried; the right one → the server's own answer.
    pinServerCa(readFileSync(wrongCa.certFile, 'utf8'));
    const agent = new NodeApiClient({ serverUrl: origin, attempts: 3, baseDelayMs: 1 });
    const untrusted = await agent.send('GET', nodeApiPath('self')).catch((error: unknown) => error);
    expect(untrusted).toBeInstanceOf(NodeApiUntrustedServerError);
    expect((untrusted as Error).message).toMatch(/not trusted/);
    pinServerCa(readFileSync(rightCa.certFile, 'utf8'));
    const reached = await agent.send('GET', nodeApiPath('self')).catch((error: unknown) => error);
    expect([reached instanceof NodeApiRefusal, (reached as NodeApiRefusal).code]).toEqual([true, 'node.missing-credential']);
    table.push({ attack: 'agent pinned to another CA', refused: `TLS handshake (${(untrusted as Error).message.match(/\(([A-Z_]+)\)/)?.[1] ?? '?'})`, audited: 'none (nothing sent)', released: 0 });

    // The CLI, the same two ways.
    const cli = (ca: string) => ServerClient.fromOptions({ server: origin, token: admin, serverCa: ca }, 'machines list');
    const refused = await cli(wrongCa.certFile).get('v1/machines').catch((error: unknown) => error);
    expect((refused as Error).message).toMatch(/^machines list: https:\/\/127\.0\.0\.1:\d+ is not trusted: .*pinned CA/);
    const listed = await cli(rightCa.certFile).get<unknown[]>('v1/machines');
    expect(listed.status).toBe(200);
    table.push({ attack: 'CLI pinned to another CA', refused: 'TLS handshake (exit 2, "not trusted")', audited: 'none (nothing sent)', released: 0 });

    // Node's own fetch trusts the system CAs only, which do not include the test CA; over the pinned CA, answers carry HSTS.
    expect(await fetch(`${origin}/health/live`).then(() => 'answered', () => 'refused')).toBe('refused');
    const health = await pinnedCaFetch(readFileSync(rightCa.certFile, 'utf8'))(`${origin}/health/live`);
    expect([health.status, health.headers.get('strict-transport-security'), health.headers.get('x-content-type-options')]).toEqual([200, 'max-age=31536000', 'nosniff']);
    expect((await releasedCount()) - releasedBefore).toBe(0);
    expect((await auditCount()) - auditBefore).toBe(0);

    // The built programs, as an operator runs them: the agent's CA from agent.yaml, the CLI's from RACKSEAL_SERVER_CA.
    const dir = mkdtempSync(join(tmpdir(), 'rackseal-pinning-'));
    try {
      const enrollWith = (ca: string) => {
        const config = join(dir, `agent-${ca === rightCa.certFile ? 'right' : 'wrong'}.yaml`);
        writeFileSync(config, `server: ${origin}\nserverCa: ${ca}\n`);
        return runAgentCliAsync(['enroll', '--config', config, '--tpm', fixture.at(0).device, '--state-dir', join(dir, 'state'), '--event-log', 'none']);
      };
      const wrongAgent = await enrollWith(wrongCa.certFile);
      expect([wrongAgent.status, wrongAgent.stderr]).toEqual([2, expect.stringContaining('is not trusted')]);
      // The right CA reaches the server, which answers the enrollment itself (0 attested or 1 refused: not a TLS failure, 2).
      const rightAgent = await enrollWith(rightCa.certFile);
      expect({ status: rightAgent.status, stderr: rightAgent.stderr }).toEqual({ status: expect.any(Number), stderr: expect.not.stringContaining('not trusted') });
      expect([0, 1]).toContain(rightAgent.status);
      const cliEnv = (ca: string) => ({ env: { RACKSEAL_SERVER: origin, RACKSEAL_TOKEN: admin, RACKSEAL_SERVER_CA: ca } });
      const wrongCli = await runRacksealCliAsync(['machines', 'list', '--json'], cliEnv(wrongCa.certFile));
      expect([wrongCli.status, wrongCli.stderr]).toEqual([2, expect.stringContaining('is not trusted')]);
      const rightCli = await runRacksealCliAsync(['machines', 'list', '--json'], cliEnv(rightCa.certFile));
      expect([rightCli.status, rightCli.stderr]).toEqual([0, '']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every answer carries the security headers (a 200, a 401, a 404, a 413), HSTS only over TLS', async () => {
    const answers = await Promise.all([
      request(app.getHttpServer()).get('/health/live'),
      operator('get', '/v1/machines'),
      operator('get', '/v1/no-such-route', admin),
      operator('post', '/v1/tokens', admin).set('Content-Type', 'application/json').send(JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) })),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 401, 404, 413]);
    for (const answered of answers) {
      expect({
        nosniff: answered.headers['x-content-type-options'],
        cache: answered.headers['cache-control'],
        csp: answered.headers['content-security-policy'],
        referrer: answered.headers['referrer-policy'],
        frame: answered.headers['x-frame-options'],
        hsts: answered.headers['strict-transport-security'],
      }).toEqual({ nosniff: 'nosniff', cache: 'no-store', csp: "default-src 'none'; frame-ancestors 'none'", referrer: 'no-referrer', frame: 'DENY', hsts: undefined });
    }
  });

  it('every Redis key the control planes made is under its deployment\'s hash tag {QUEUE_PREFIX}: (Redis Cluster: one slot)', async () => {
    const redis = new IORedis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
    try {
      // Each deployment's first app (the main one, a flood replica of each limit): a request now, since
      // a bucket expires once it would be full again (seconds at these rates).
      const byPrefix = new Map<TestQueuePrefix, INestApplication>([
        [prefix, app],
        [floodPrefix, floodReplicas[0]!],
        [addressPrefix, addressReplicas[0]!],
      ]);
      for (const [p, target] of byPrefix) {
        await operator('get', '/v1/machines', admin, target);
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, found] = await redis.scan(cursor, 'MATCH', `*${p.prefix}*`, 'COUNT', 1000);
          cursor = next;
          keys.push(...found);
        } while (cursor !== '0');
        expect(keys.length).toBeGreaterThan(0);
        expect(keys.filter((key) => !key.startsWith(`${p.keyPrefix}:`))).toEqual([]);
        expect(keys.some((key) => key.startsWith(`${p.keyPrefix}:rate:`))).toBe(true);
      }
    } finally {
      redis.disconnect();
    }
  });
});
