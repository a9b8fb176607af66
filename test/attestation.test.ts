/**
 * The enrollment protocol's server side (issue 12 items 1-2): POST /node/v1/attestations and
 * /node/v1/attestations/:id/finish on two control-plane instances over one real PostgreSQL, with the
 * agent played in-process on swtpm by libs/tpm2's operations (EK, AK, ActivateCredential, Quote).
 * Each refusal of the attack table asserts its code, its audit record, the machine's state and that
 * no node credential was issued.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { PcrPoliciesRepository, PcrPolicySource } from '@rackseal/attestation';
import { openEnvelope } from '@rackseal/envelope';
import { InventoryImporter } from '@rackseal/inventory';
import { MachinesRepository } from '@rackseal/machines';
import { FINISH_ATTESTATION_BODY_LIMIT_BYTES, nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { deriveNodeCredential } from '@rackseal/node-identity';
import { type PcrPolicy, PcrPolicyError, parsePcrPolicy } from '@rackseal/pcr-policy';
import { Clock } from '@rackseal/platform';
import {
  AK_TEMPLATE_RSA,
  ekPubHash,
  marshalEventLog,
  marshalTpm2bPublic,
  parseEventLog,
  parsePcrSelection,
  quotePcrs,
  replayEventLog,
  TPMA_OBJECT,
} from '@rackseal/tpm2';
import { parseVendorCaRef, VendorCas } from '@rackseal/vendor-cas';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { fixturePath } from './support/fixtures';
import { LocalCa } from './support/local-ca';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { type AgentSession, answer, b64, bootWith, withAgent } from './support/attestation-agent';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { FRESH_SWTPM_POLICY, MovableClock, SRTM, TestPolicies } from './support/attestation-policies';

jest.setTimeout(120_000);

const ZERO = '00'.repeat(32);
const START = nodeApiPath('attestations');

/**
 * A real firmware log (crypto-agile, SHA-256 only, PCRs 0-7, no StartupLocality: test/fixtures/SOURCES.md)
 * as a canary's: the policy set promoted from it carries it, and "booting" a swtpm means extending
 * its events' digests in log order.
 */
const CANARY_LOG = readFileSync(fixturePath('eventlogs', 'crypto_agile_eventlog'));

function canaryPolicy(): PcrPolicy {
  const replayed = replayEventLog(parseEventLog(CANARY_LOG)).banks.get('sha256')!;
  return parsePcrPolicy({
    bank: 'sha256',
    pcrs: SRTM,
    allowedSets: [
      {
        label: 'canary',
        values: Object.fromEntries(SRTM.map((pcr) => [pcr, replayed.get(pcr)!.toString('hex')])),
        promotedFrom: { machine: 'canary-01', at: '2026-12-01T00:00:00.000Z', eventLog: CANARY_LOG.toString('base64') },
      },
    ],
    mode: 'enforce',
  });
}

/** The canary's log with the SHA-256 digest of event `index` changed: another boot application. */
function logWithDigestChanged(index: number): Buffer {
  const log = parseEventLog(CANARY_LOG);
  const events = log.events.map((event, i) =>
    i !== index ? event : { ...event, digests: event.digests.map((d) => ({ ...d, digest: Buffer.from(d.digest.map((byte) => byte ^ 0xff)) })) },
  );
  return marshalEventLog({ specId: log.specId, events });
}

const finishPath = (id: string) => nodeApiPath(`attestations/${id}/finish`);


describe('attestation enrollment (node API)', () => {
  const fixture = useSwtpms(2, { p256: true });
  const clock = new MovableClock();
  const policies = new TestPolicies();
  let rogue: LocalCa;
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let apps: INestApplication[];
  let ds: DataSource;
  let intermediateFingerprint: string;
  let tpmA: SwtpmMachine;
  let tpmB: SwtpmMachine;
  const extraCert: Record<'revoked' | 'unknown', Buffer> = {} as never;

  /** A control plane on the test database; its policies are the test's unless `storedPolicies` (pcr_policies). */
  async function startApp(storedPolicies = false): Promise<INestApplication> {
    let builder = Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }))] })
      .overrideProvider(Clock)
      .useValue(clock);
    if (!storedPolicies) {
      builder = builder.overrideProvider(PcrPolicySource).useValue(policies);
    }
    const moduleRef = await builder.compile();
    const app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.init();
    return app;
  }

  beforeAll(async () => {
    tpmA = fixture.at(0);
    tpmB = fixture.at(1);
    rogue = await LocalCa.create();
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    apps = [await startApp(), await startApp(), await startApp(true)];
    ds = await openDataSource(db.url);
    const added = await apps[0]!.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], {
      addedBy: 'test',
    });
    intermediateFingerprint = added.results.find((r) => r.source === 'intermediate')!.fingerprint!;
    extraCert.revoked = await fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    extraCert.unknown = await fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const csv = [
      'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash',
      `SN-A-RSA,,,workers,${b64(await tpmA.rsaEkCertDer())},`,
      `SN-A-P256,,,workers,${b64(await tpmA.p256EkCertDer())},`,
      `SN-B-RSA,,,workers,${b64(await tpmB.rsaEkCertDer())},`,
      `SN-B-P256,,,storage,${b64(await tpmB.p256EkCertDer())},`,
      `SN-REVOKED,,,workers,${b64(extraCert.revoked)},`,
      // A cert-less inventory row (ekPubHash only): its agent attests with ekPublic.
      `SN-A-P384,,,workers,,${ekPubHash(new X509Certificate(await tpmA.eccEkCertDer()))}`,
    ].join('\n');
    const summary = await apps[0]!.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
    expect(summary).toMatchObject({ status: 'succeeded' });
    policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
  }, 180_000);

  afterAll(async () => {
    await Promise.all((apps ?? []).map((app) => app.close()));
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await rogue?.remove();
  });

  /** Node credentials issued before the test (plus those a test issues on purpose): a refusal adds none. */
  let issued = 0;
  const credentialCount = async () => Number(((await ds.query('SELECT count(*) AS n FROM node_credentials')) as { n: string }[])[0]!.n);
  beforeEach(async () => {
    issued = await credentialCount();
  });

  afterEach(async () => {
    clock.offsetMs = 0;
    // PCRs back to their reset values; transient objects gone.
    await tpmA.reboot();
    await tpmB.reboot();
  });

  const post = (app: number, path: string, body: unknown) => request(apps[app]!.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body as object);



  async function startFor(agent: AgentSession, app = 0, extra: Record<string, unknown> = {}): Promise<StartAttestationResponse> {
    const response = await post(app, START, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic, ...extra });
    expect([response.status, response.body]).toEqual([201, expect.objectContaining({ registrationId: expect.any(String) })]);
    return response.body as StartAttestationResponse;
  }

  const machine = async (serial: string) => ((await ds.query('SELECT id, state FROM machines WHERE serial = $1', [serial])) as { id: string; state: string }[])[0]!;
  const credentials = async (serial: string) =>
    (await ds.query('SELECT c.* FROM node_credentials c JOIN machines m ON m.id = c.machine_id WHERE m.serial = $1 ORDER BY c.created_at', [serial])) as {
      credential_id: string;
      key_sealed: Buffer;
      revoked_at: Date | null;
      registration_id: string;
    }[];
  const lastAudit = async (action: string) =>
    ((await ds.query('SELECT actor, action, subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1', [action])) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[])[0]!;

  /** A refusal: the code in the answer, the audit record, nothing issued. */
  async function expectRefused(response: request.Response, status: number, code: string, serial?: string): Promise<void> {
    expect([response.status, response.body.code]).toEqual([status, code]);
    const audit = await lastAudit('attestation.refused');
    expect(audit).toMatchObject({ outcome: 'refused', details: expect.objectContaining({ code }) });
    expect(await credentialCount()).toBe(issued);
    if (serial !== undefined) {
      expect(audit.subject).toBe(`machine:${serial}`);
      // …and kept as the machine's last failure (libs/machines recordFailure), with the same code.
      const [row] = (await ds.query('SELECT last_failure FROM machines WHERE serial = $1', [serial])) as { last_failure: { code: string; reason: string } }[];
      expect(row!.last_failure).toMatchObject({ code, reason: expect.any(String) });
    }
  }

  // ── happy paths ─────────────────────────────────────────────────────────────────────────────

  it.each([
    { kind: 'rsa-2048' as const, serial: 'SN-A-RSA', startOn: 0, finishOn: 1 },
    { kind: 'ecc-p256' as const, serial: 'SN-A-P256', startOn: 1, finishOn: 0 },
  ])('$kind EK: start on one replica, finish on the other → attested, audited, credential stored sealed', async ({ kind, serial, startOn, finishOn }) => {
    await withAgent(tpmA, kind, async (agent) => {
      const start = await startFor(agent, startOn);
      expect(start.pcrSelection).toEqual({ bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] });
      expect(Buffer.from(start.nonce, 'base64')).toHaveLength(32);
      expect(new Date(start.deadline).getTime() - Date.now()).toBeGreaterThan(50_000);
      expect((await machine(serial)).state).toBe('attesting');
      expect(await lastAudit('attestation.started')).toMatchObject({ subject: `machine:${serial}`, outcome: 'success', details: expect.objectContaining({ registrationId: start.registrationId }) });

      const { secret, body } = await answer(agent, start);
      const response = await post(finishOn, finishPath(start.registrationId), body);
      expect(response.status).toBe(200);
      issued += 1;
      const m = await machine(serial);
      const ekPubHash = (await ds.query('SELECT ek_pub_hash FROM machines WHERE serial = $1', [serial]))[0].ek_pub_hash as string;
      const expected = deriveNodeCredential(secret, { registrationId: start.registrationId, ekPubHash, akName: agent.ak.name });
      expect(response.body).toEqual({
        machineId: m.id,
        state: 'attested',
        credentialId: expected.credentialId,
        attestedAt: expect.any(String),
        policy: { decision: 'match', matchedSet: 'fresh swtpm', summary: [] },
      });
      expect(m.state).toBe('attested');
      const [times] = (await ds.query('SELECT first_attested_at, last_attested_at FROM machines WHERE id = $1', [m.id])) as { first_attested_at: Date; last_attested_at: Date }[];
      expect(times!.last_attested_at.toISOString()).toBe(response.body.attestedAt);
      expect(times!.first_attested_at).not.toBeNull();
      expect(await lastAudit('attestation.succeeded')).toMatchObject({ subject: `machine:${serial}`, details: expect.objectContaining({ credentialId: expected.credentialId }) });
      const [stored] = await credentials(serial);
      expect(stored!.credential_id).toBe(expected.credentialId);
      // Sealed: the key is not in the row, and it opens under the master key to the key the agent derives.
      expect(stored!.key_sealed.includes(expected.key.reveal())).toBe(false);
      const config = testConfig(db, prefix.prefix);
      expect(openEnvelope(config.masterKey.key!, `node-credential:${expected.credentialId}`, stored!.key_sealed).reveal()).toEqual(expected.key.reveal());

      // Replayed finish: refused, nothing more issued.
      const replay = await post(0, finishPath(start.registrationId), body);
      await expectRefused(replay, 409, 'attestation.registration-finished');
      expect(await credentials(serial)).toHaveLength(1);
    });
  });

  it('a cert-less inventory row attests with its EK public (P-384 EK: SHA-384 nameAlg, AES-256)', async () => {
    await withAgent(tpmA, 'ecc-p384', async (agent) => {
      const response = await post(0, START, { ekPublic: b64(marshalTpm2bPublic(agent.ek.public)), akPublic: agent.akPublic });
      expect(response.status).toBe(201);
      const start = response.body as StartAttestationResponse;
      const { body } = await answer(agent, start);
      const finished = await post(1, finishPath(start.registrationId), body);
      expect([finished.status, finished.body.state]).toEqual([200, 'attested']);
      issued += 1;
    });
  });

  it('the registration id in the finish URL is a UUID in any case (RFC 9562 §4): upper-cased, it finishes the registration', async () => {
    await withAgent(tpmA, 'ecc-p256', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      const upper = start.registrationId.toUpperCase();
      expect(upper).not.toBe(start.registrationId);
      const finished = await post(1, finishPath(upper), body);
      expect([finished.status, finished.body.state]).toEqual([200, 'attested']);
      issued += 1;
      expect(await lastAudit('attestation.succeeded')).toMatchObject({ subject: 'machine:SN-A-P256', details: expect.objectContaining({ registrationId: start.registrationId }) });
    });
  });

  it('a machine imported with an EK certificate must send it: ekPublic alone is refused', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const response = await post(0, START, { ekPublic: b64(marshalTpm2bPublic(agent.ek.public)), akPublic: agent.akPublic });
      await expectRefused(response, 400, 'attestation.ek-untrusted', 'SN-B-RSA');
      expect(response.body.message).toBe('machine SN-B-RSA was imported with an EK certificate: send it (ekCertificate)');
    });
  });

  it('two finishes of one registration racing on two replicas: exactly one is served', async () => {
    await withAgent(tpmA, 'rsa-2048', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      const answers = await Promise.all([post(0, finishPath(start.registrationId), body), post(1, finishPath(start.registrationId), body)]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
      expect(answers.find((a) => a.status === 409)!.body.code).toBe('attestation.registration-finished');
      issued += 1;
      expect(await credentialCount()).toBe(issued);
    });
  });

  it('re-attestation rotates the node credential: the new one replaces the previous', async () => {
    await withAgent(tpmA, 'rsa-2048', async (agent) => {
      const before = await credentials('SN-A-RSA');
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      expect((await post(1, finishPath(start.registrationId), body)).status).toBe(200);
      const after = await credentials('SN-A-RSA');
      expect(after).toHaveLength(before.length + 1);
      expect(after.filter((c) => c.revoked_at === null).map((c) => c.registration_id)).toEqual([start.registrationId]);
    });
  });

  // ── refusals at start ───────────────────────────────────────────────────────────────────────

  it('unknown EK: an EK certificate of the vendor CA that is not in the inventory', async () => {
    await withAgent(tpmA, 'rsa-2048', async (agent) => {
      const response = await post(0, START, { ekCertificate: b64(extraCert.unknown), akPublic: agent.akPublic });
      await expectRefused(response, 404, 'attestation.unknown-ek');
    });
  });

  it('EK certificate for the machine\'s key signed by a rogue CA with the same names', async () => {
    const rogueCert = await rogue.issueEkCert(new X509Certificate(await tpmA.rsaEkCertDer()).publicKey);
    expect(new X509Certificate(rogueCert).issuer).toBe(new X509Certificate(await tpmA.rsaEkCertDer()).issuer);
    await withAgent(tpmA, 'rsa-2048', async (agent) => {
      const response = await post(0, START, { ekCertificate: b64(rogueCert), akPublic: agent.akPublic });
      await expectRefused(response, 400, 'attestation.ek-untrusted', 'SN-A-RSA');
      expect(response.body.message).toMatch(/does not chain to an enabled vendor CA/);
    });
  });

  it('EK certificate ≠ EK public', async () => {
    let otherEk = '';
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      otherEk = b64(marshalTpm2bPublic(agent.ek.public));
    });
    await withAgent(tpmA, 'rsa-2048', async (agent) => {
      const stateBefore = (await machine('SN-A-RSA')).state;
      const response = await post(0, START, { ekCertificate: b64(agent.certificate), ekPublic: otherEk, akPublic: agent.akPublic });
      await expectRefused(response, 400, 'attestation.ek-mismatch');
      expect((await machine('SN-A-RSA')).state).toBe(stateBefore);
    });
  });

  it('disabled vendor CA: the chain through a disabled intermediate is refused, and passes again once enabled', async () => {
    const cas = apps[0]!.get(VendorCas);
    await cas.disable(parseVendorCaRef(intermediateFingerprint), 'test');
    try {
      await withAgent(tpmB, 'rsa-2048', async (agent) => {
        const response = await post(1, START, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
        await expectRefused(response, 400, 'attestation.ek-untrusted', 'SN-B-RSA');
        expect(response.body.message).toMatch(/disabled-ca/);
        expect((await machine('SN-B-RSA')).state).toBe('imported');
      });
    } finally {
      await cas.enable(parseVendorCaRef(intermediateFingerprint), 'test');
    }
  });

  it('revoked machine', async () => {
    const m = await machine('SN-REVOKED');
    await apps[0]!.get(MachinesRepository).revoke(m.id, { reason: 'decommissioned', actor: 'test' }, new Date());
    await withAgent(tpmA, 'rsa-2048', async (agent) => {
      const response = await post(0, START, { ekCertificate: b64(extraCert.revoked), akPublic: agent.akPublic });
      await expectRefused(response, 409, 'attestation.machine-revoked', 'SN-REVOKED');
    });
  });

  it.each([
    { label: 'not restricted', clear: TPMA_OBJECT.restricted, message: 'AK must have restricted set' },
    { label: 'not fixedTPM (nor fixedParent)', clear: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent, message: 'AK must have fixedTPM set' },
  ])('AK $label, created by the TPM, is refused at start', async ({ clear, message }) => {
    const template = { ...AK_TEMPLATE_RSA, objectAttributes: AK_TEMPLATE_RSA.objectAttributes & ~clear };
    await withAgent(
      tpmB,
      'rsa-2048',
      async (agent) => {
        const response = await post(0, START, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
        await expectRefused(response, 400, 'attestation.ak-rejected', 'SN-B-RSA');
        expect(response.body.message).toBe(message);
      },
      template,
    );
  });

  // ── refusals at finish ──────────────────────────────────────────────────────────────────────

  it('activation proof for another registration', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const first = await startFor(agent);
      const second = await startFor(agent, 1);
      const { body } = await answer(agent, second, { proofFor: first.registrationId });
      const response = await post(0, finishPath(second.registrationId), body);
      await expectRefused(response, 400, 'attestation.activation-failed', 'SN-B-RSA');
      // A crypto failure leaves the machine attesting (not quarantined): a network attacker's garbage decides nothing.
      expect((await machine('SN-B-RSA')).state).toBe('attesting');
      // The first registration was superseded by the second start: finishing it is refused too.
      const stale = await post(0, finishPath(first.registrationId), body);
      await expectRefused(stale, 409, 'attestation.registration-finished');
    });
  });

  it('expired registration (clock moved past the deadline)', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      clock.offsetMs = 61_000;
      const response = await post(1, finishPath(start.registrationId), body);
      await expectRefused(response, 409, 'attestation.registration-expired', 'SN-B-RSA');
      const [row] = (await ds.query('SELECT outcome, failure_code FROM attestation_registrations WHERE id = $1', [start.registrationId])) as { outcome: string; failure_code: string }[];
      expect(row).toEqual({ outcome: 'refused', failure_code: 'attestation.registration-expired' });
    });
  });

  it('stale nonce: a quote over an earlier registration\'s nonce', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const earlier = await startFor(agent);
      const start = await startFor(agent);
      const { body } = await answer(agent, start, { nonce: Buffer.from(earlier.nonce, 'base64') });
      const response = await post(0, finishPath(start.registrationId), body);
      await expectRefused(response, 400, 'attestation.nonce-mismatch', 'SN-B-RSA');
    });
  });

  it('quote from an AK of another TPM', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      // The same nonce and selection, quoted by an AK of TPM A.
      const foreign = await withAgent(tpmA, 'rsa-2048', async (other) => {
        const quote = await quotePcrs(other.scope, other.ak, parsePcrSelection('sha256:0,1,2,3,4,5,6,7'), Buffer.from(start.nonce, 'base64'));
        return { attest: b64(quote.message), signature: b64(quote.signatureBytes) };
      });
      const response = await post(0, finishPath(start.registrationId), { ...body, quote: foreign });
      await expectRefused(response, 400, 'attestation.quote-invalid', 'SN-B-RSA');
      expect(response.body.message).toMatch(/signature/);
    });
  });

  it('selection narrowed: a quote of PCRs 0-3 when 0-7 were asked for', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start, { selection: 'sha256:0,1,2,3' });
      const response = await post(0, finishPath(start.registrationId), body);
      await expectRefused(response, 400, 'attestation.selection-mismatch', 'SN-B-RSA');
    });
  });

  it('PCR values edited after the quote', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      const values = Buffer.from(body.pcrValues, 'base64');
      values.writeUInt8(values.readUInt8(4 * 32) ^ 1, 4 * 32);
      const response = await post(0, finishPath(start.registrationId), { ...body, pcrValues: b64(values) });
      await expectRefused(response, 400, 'attestation.pcr-values-mismatch', 'SN-B-RSA');
    });
  });

  it('an event log that does not replay to the quoted PCRs is refused', async () => {
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      const response = await post(0, finishPath(start.registrationId), { ...body, eventLog: b64(randomBytes(64)) });
      await expectRefused(response, 400, 'attestation.event-log-mismatch', 'SN-B-RSA');
    });
  });

  it('PCR extended after boot: enforce mode quarantines with the differing PCR named; nothing issued', async () => {
    await tpmB.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
    await withAgent(tpmB, 'rsa-2048', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      const response = await post(1, finishPath(start.registrationId), body);
      await expectRefused(response, 409, 'attestation.policy-mismatch', 'SN-B-RSA');
      expect(response.body.message).toEqual(expect.arrayContaining([expect.stringMatching(/PCR 4/)]));
      expect((await machine('SN-B-RSA')).state).toBe('quarantined');
      const [row] = (await ds.query('SELECT outcome, failure_explanation FROM attestation_registrations WHERE id = $1', [start.registrationId])) as {
        outcome: string;
        failure_explanation: { lines: string[]; measured: Record<string, string> };
      }[];
      expect(row!.outcome).toBe('quarantined');
      expect(row!.failure_explanation.lines.join('\n')).toMatch(/PCR 4/);
      expect(row!.failure_explanation.measured['4']).not.toBe(ZERO);
    });
  });

  describe('with a canary policy and event logs', () => {
    beforeEach(() => {
      policies.byGroup.set('workers', canaryPolicy());
    });
    afterEach(() => {
      policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    });

    it('a machine that booted what the canary booted, with its log, is attested against the canary set', async () => {
      await bootWith(tpmA, CANARY_LOG);
      await withAgent(tpmA, 'ecc-p256', async (agent) => {
        const start = await startFor(agent);
        const { body } = await answer(agent, start);
        const response = await post(1, finishPath(start.registrationId), { ...body, eventLog: b64(CANARY_LOG) });
        expect([response.status, response.body.policy]).toEqual([200, { decision: 'match', matchedSet: 'canary', summary: [] }]);
        issued += 1;
      });
    });

    it('PCR extended after boot, event log edited to hide it: refused, the log does not replay to the quote', async () => {
      await bootWith(tpmB, CANARY_LOG);
      await tpmB.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
      await withAgent(tpmB, 'rsa-2048', async (agent) => {
        const start = await startFor(agent);
        const { body } = await answer(agent, start);
        const response = await post(0, finishPath(start.registrationId), { ...body, eventLog: b64(CANARY_LOG) });
        await expectRefused(response, 400, 'attestation.event-log-mismatch', 'SN-B-RSA');
        expect(response.body.message).toEqual(['the event log does not replay to the quoted PCR values', expect.stringMatching(/^sha256 PCR 4: /)]);
        expect((await machine('SN-B-RSA')).state).toBe('attesting');
      });
    });

    it('another boot application (PCR 4 event #25 differs): quarantined, the diverging event named against the canary\'s log', async () => {
      const edited = logWithDigestChanged(25);
      await bootWith(tpmB, edited);
      await withAgent(tpmB, 'rsa-2048', async (agent) => {
        const start = await startFor(agent);
        const { body } = await answer(agent, start);
        const response = await post(0, finishPath(start.registrationId), { ...body, eventLog: b64(edited) });
        await expectRefused(response, 409, 'attestation.policy-mismatch', 'SN-B-RSA');
        expect(response.body.message).toEqual(expect.arrayContaining([expect.stringMatching(/^PCR 4: event #25 EV_EFI_BOOT_SERVICES_APPLICATION digest differs/)]));
        expect((await machine('SN-B-RSA')).state).toBe('quarantined');
        const [row] = (await ds.query('SELECT last_failure FROM machines WHERE serial = $1', ['SN-B-RSA'])) as { last_failure: { explanation: string[] } }[];
        expect(row!.last_failure.explanation).toEqual(expect.arrayContaining([expect.stringMatching(/^PCR 4: event #25 EV_EFI_BOOT_SERVICES_APPLICATION digest differs/)]));
      });
    });
  });

  it('warn mode: the drift is recorded and audited, the machine attested', async () => {
    policies.byGroup.set('workers', { ...FRESH_SWTPM_POLICY, mode: 'warn' });
    await tpmB.extendPcr(7, 'sha256', randomBytes(32).toString('hex'));
    try {
      await withAgent(tpmB, 'rsa-2048', async (agent) => {
        const start = await startFor(agent);
        const { body } = await answer(agent, start);
        const response = await post(0, finishPath(start.registrationId), body);
        expect(response.status).toBe(200);
        expect(response.body.policy).toMatchObject({ decision: 'mismatch', summary: expect.arrayContaining([expect.stringMatching(/PCR 7/)]) });
        expect((await machine('SN-B-RSA')).state).toBe('attested');
        expect((await lastAudit('attestation.succeeded')).details).toMatchObject({ decision: 'mismatch', drift: expect.arrayContaining([expect.stringMatching(/PCR 7/)]) });
      });
    } finally {
      policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    }
  });

  it('a group without a PCR policy: quarantined with attestation.no-policy, the measured values recorded', async () => {
    await withAgent(tpmB, 'ecc-p256', async (agent) => {
      const start = await startFor(agent);
      const { body } = await answer(agent, start);
      const response = await post(0, finishPath(start.registrationId), body);
      await expectRefused(response, 409, 'attestation.no-policy', 'SN-B-P256');
      expect((await machine('SN-B-P256')).state).toBe('quarantined');
      const [row] = (await ds.query('SELECT failure_explanation FROM attestation_registrations WHERE id = $1', [start.registrationId])) as {
        failure_explanation: { measured: Record<string, string> };
      }[];
      expect(row!.failure_explanation.measured).toEqual(Object.fromEntries([0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => [String(pcr), ZERO])));
    });
  });

  it('the control plane reads policies from pcr_policies: a stored policy attests its group, removing it quarantines again', async () => {
    const stored = apps[2]!.get(PcrPoliciesRepository);
    await expect(stored.put('storage', { ...FRESH_SWTPM_POLICY, mode: 'sometimes' }, 'test', new Date())).rejects.toThrow(PcrPolicyError);
    await stored.put('storage', FRESH_SWTPM_POLICY, 'test', new Date());
    expect((await stored.get('storage'))?.policy).toEqual(FRESH_SWTPM_POLICY);
    await withAgent(tpmB, 'ecc-p256', async (agent) => {
      const start = await startFor(agent, 2);
      const { body } = await answer(agent, start);
      const response = await post(2, finishPath(start.registrationId), body);
      expect([response.status, response.body.policy]).toEqual([200, { decision: 'match', matchedSet: 'fresh swtpm', summary: [] }]);
      issued += 1;
    });
    expect(await stored.remove('storage')).toBe(true);
    await withAgent(tpmB, 'ecc-p256', async (agent) => {
      const start = await startFor(agent, 2);
      const { body } = await answer(agent, start);
      await expectRefused(await post(2, finishPath(start.registrationId), body), 409, 'attestation.no-policy', 'SN-B-P256');
    });
  });

  it('unknown registration and malformed bodies are refused with their codes', async () => {
    const unknown = await post(0, finishPath('0190c0de-0000-7000-8000-000000000000'), {
      activationProof: b64(randomBytes(32)),
      quote: { attest: b64(randomBytes(10)), signature: b64(randomBytes(10)) },
      pcrValues: b64(randomBytes(32)),
    });
    await expectRefused(unknown, 404, 'attestation.unknown-registration');
    const noEk = await post(0, START, { akPublic: b64(randomBytes(40)) });
    await expectRefused(noEk, 400, 'attestation.malformed');
    const badAk = await post(0, START, { ekCertificate: b64(await tpmA.rsaEkCertDer()), akPublic: b64(randomBytes(40)) });
    await expectRefused(badAk, 400, 'attestation.malformed');
    expect(badAk.body.message).toMatch(/^akPublic is not a TPM2B_PUBLIC/);
  });

  it('the finish route takes a 1 MiB event log (its own body limit), refuses a larger log by name, and a larger body with 413', async () => {
    const body = {
      activationProof: b64(randomBytes(32)),
      quote: { attest: b64(randomBytes(10)), signature: b64(randomBytes(10)) },
      pcrValues: b64(randomBytes(32)),
      eventLog: b64(randomBytes(1024 * 1024)),
    };
    // Past the general 1 MB JSON limit, so only the route's own parser lets it reach the service.
    expect(JSON.stringify(body).length).toBeGreaterThan(1024 * 1024 + 300_000);
    const taken = await post(0, finishPath('0190c0de-0000-7000-8000-000000000001'), body);
    await expectRefused(taken, 404, 'attestation.unknown-registration');
    // The body limit has room for the IMA entries too (8 MiB): a log over its own 1 MiB is refused by the DTO, naming it.
    const largeLog = await post(0, finishPath('0190c0de-0000-7000-8000-000000000001'), { ...body, eventLog: b64(randomBytes(1536 * 1024)) });
    expect([largeLog.status, largeLog.body.code]).toEqual([400, 'request.invalid']);
    expect(JSON.stringify(largeLog.body.message)).toContain('eventLog');
    const tooLarge = await post(0, finishPath('0190c0de-0000-7000-8000-000000000001'), { ...body, eventLog: b64(randomBytes(FINISH_ATTESTATION_BODY_LIMIT_BYTES)) });
    expect([tooLarge.status, tooLarge.body.code]).toEqual([413, 'request.too-large']);
    // The start route keeps the general limit.
    const start = await post(0, START, { akPublic: b64(randomBytes(1024 * 1024)) });
    expect([start.status, start.body.code]).toEqual([413, 'request.too-large']);
  });

  it('a machine revoked between start and finish is refused at finish, nothing issued (last: SN-A-P384 stays revoked)', async () => {
    await withAgent(tpmA, 'ecc-p384', async (agent) => {
      const response = await post(0, START, { ekPublic: b64(marshalTpm2bPublic(agent.ek.public)), akPublic: agent.akPublic });
      const start = response.body as StartAttestationResponse;
      const { body } = await answer(agent, start);
      await apps[1]!.get(MachinesRepository).revoke((await machine('SN-A-P384')).id, { reason: 'stolen', actor: 'test' }, new Date());
      await expectRefused(await post(1, finishPath(start.registrationId), body), 409, 'attestation.machine-revoked', 'SN-A-P384');
      expect((await machine('SN-A-P384')).state).toBe('revoked');
    });
  });

  it('the node routes take no operator token and are not under the operator guard', async () => {
    const response = await post(0, START, { akPublic: 'AAAA' });
    expect(response.status).not.toBe(401);
  });
});
