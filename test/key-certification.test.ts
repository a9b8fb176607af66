/**
 * Key certification (issue 13 item 1) end to end on swtpm: machines enrolled by the in-process agent
 * (test/support/enrollment.ts) create decrypt keys under their storage primary, certify them with
 * the AK of their current attestation over a server challenge (TPM2_Certify) and send them to the
 * signed routes POST /node/v1/keys/challenges and POST /node/v1/keys. The happy path, rotation, and
 * each refusal of the issue — another machine's AK, a key that can sign, lacks fixedTPM or is
 * restricted, a stale or reused challenge, a Name that is not H(public), an attestation that is not
 * a certify, another machine's challenge — with its code, its `key.refused` audit record and no key
 * stored; revoking a machine retires its key; a quarantined machine cannot ask.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ApiTokens } from '@rackseal/api-tokens';
import { PcrPolicySource } from '@rackseal/attestation';
import { InventoryImporter } from '@rackseal/inventory';
import { MachineRevocations } from '@rackseal/machines';
import { KEY_CHALLENGES_ROUTE, KEYS_ROUTE, CURRENT_KEY_ROUTE, nodeApiPath } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { Clock } from '@rackseal/platform';
import {
  CERTIFIED_DECRYPT_KEY_TEMPLATE,
  createCertifiedDecryptKey,
  marshalTpm2bPublic,
  objectName,
  parsePcrSelection,
  quotePcrs,
  passwordAuth,
  type RsaPublic,
  TPM_ALG_ID,
  TPMA_OBJECT,
  tpm2Certify,
  unmarshalTpmtPublic,
} from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import type { AgentSession } from './support/attestation-agent';
import { FRESH_SWTPM_POLICY, MovableClock, TestPolicies } from './support/attestation-policies';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { b64, enroll, enrollHolding } from './support/enrollment';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(180_000);

const CHALLENGES = nodeApiPath(KEY_CHALLENGES_ROUTE);
const KEYS = nodeApiPath(KEYS_ROUTE);
const CURRENT = nodeApiPath(CURRENT_KEY_ROUTE);
/** testConfig's ATTESTATION_REGISTRATION_TTL_MS (the default), which a challenge lives for. */
const CHALLENGE_TTL_MS = 60_000;

/** CERTIFIED_DECRYPT_KEY_TEMPLATE with attributes changed: the keys the server must refuse. */
function variant(set: number, clear: number, changes: Partial<RsaPublic> = {}): RsaPublic {
  return { ...CERTIFIED_DECRYPT_KEY_TEMPLATE, ...changes, objectAttributes: (CERTIFIED_DECRYPT_KEY_TEMPLATE.objectAttributes | set) & ~clear };
}

describe('key certification (POST /node/v1/keys)', () => {
  const fixture = useSwtpms(2);
  const clock = new MovableClock();
  const policies = new TestPolicies();
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let readToken: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }))] })
      .overrideProvider(Clock)
      .useValue(clock)
      .overrideProvider(PcrPolicySource)
      .useValue(policies)
      .compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.init();
    ds = await openDataSource(db.url);
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], {
      addedBy: 'test',
    });
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-A,,,workers,${b64(await fixture.at(0).rsaEkCertDer())},`, `SN-B,,,workers,${b64(await fixture.at(1).rsaEkCertDer())},`].join('\n');
    const summary = await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
    expect(summary).toMatchObject({ status: 'succeeded' });
    policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    readToken = (await app.get(ApiTokens).issue('reader', ['inventory:read'], 'test')).token;
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  afterEach(() => {
    clock.offsetMs = 0;
  });

  /** A signed request with `credential` (JSON body bytes exactly as signed). */
  function signed(credential: NodeCredential, method: 'GET' | 'POST', path: string, body?: unknown): request.Test {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const headers = signNodeRequest({ credential, method, path, body: bytes, now: clock.now(), nonce: randomBytes(16) });
    const server = request(app.getHttpServer());
    const req = method === 'GET' ? server.get(path) : server.post(path);
    return body === undefined ? req.set(headers) : req.set(headers).set('Content-Type', 'application/json').send(bytes.toString('utf8'));
  }

  async function challenge(credential: NodeCredential): Promise<Buffer> {
    const response = await signed(credential, 'POST', CHALLENGES, {});
    expect(response.status).toBe(201);
    expect(Date.parse(response.body.deadline as string) - clock.now().getTime()).toBeLessThanOrEqual(CHALLENGE_TTL_MS);
    return Buffer.from(response.body.nonce as string, 'base64');
  }

  /** A key of `template` created in the agent's TPM and certified by its AK over `nonce`: the certify body. */
  async function certifiedKey(agent: AgentSession, nonce: Buffer, template?: RsaPublic, keep = false) {
    const key = await createCertifiedDecryptKey(agent.scope, agent.ak, nonce, template === undefined ? {} : { keyTemplate: template });
    if (!keep) {
      // swtpm holds 3 transient objects: with the EK and the AK loaded, one key at a time.
      await agent.scope.flush(key.handle);
    }
    return {
      key,
      body: { keyPublic: b64(marshalTpm2bPublic(key.public)), attest: b64(key.certification.attest.raw), signature: b64(key.certification.signatureBytes) },
    };
  }

  const machineId = async (serial: string) => ((await ds.query('SELECT id FROM machines WHERE serial = $1', [serial])) as { id: string }[])[0]!.id;
  const keyRows = async (serial: string) =>
    (await ds.query('SELECT k.* FROM certified_keys k JOIN machines m ON m.id = k.machine_id WHERE m.serial = $1 ORDER BY k.created_at', [serial])) as {
      id: string;
      registration_id: string;
      public_area: Buffer;
      name: Buffer;
      algorithm: string;
      retired_at: Date | null;
      retired_reason: string | null;
    }[];
  const keyCount = async () => Number(((await ds.query('SELECT count(*) AS n FROM certified_keys')) as { n: string }[])[0]!.n);
  const lastAudit = async (action: string) =>
    ((await ds.query('SELECT actor, subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1', [action])) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[])[0];
  const auditCount = async (action: string) => Number(((await ds.query('SELECT count(*) AS n FROM audit_log WHERE action = $1', [action])) as { n: string }[])[0]!.n);

  /** The refusal: status and code, one more `key.refused` record naming it, and no key stored. */
  async function expectRefused(send: () => Promise<request.Response>, status: number, code: string): Promise<Record<string, unknown>> {
    const keysBefore = await keyCount();
    const refusalsBefore = await auditCount('key.refused');
    const response = await send();
    expect([response.status, response.body.code]).toEqual([status, code]);
    expect(await keyCount()).toBe(keysBefore);
    expect(await auditCount('key.refused')).toBe(refusalsBefore + 1);
    const record = (await lastAudit('key.refused'))!;
    expect([record.outcome, record.details.code, record.details.reason]).toEqual(['refused', code, response.body.message]);
    return record.details;
  }

  // ── accepted ────────────────────────────────────────────────────────────────────────────────

  it("an RSA-2048 key certified by the machine's AK is stored, audited, listed for the operator and answered as current; the certify attestation names it", async () => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      expect((await signed(credential, 'GET', CURRENT)).body.code).toBe('key.none');
      const nonce = await challenge(credential);
      const { key, body } = await certifiedKey(agent, nonce);
      const response = await signed(credential, 'POST', KEYS, body);
      expect(response.status).toBe(201);
      const name = objectName(key.public).toString('hex');
      expect(response.body).toEqual({ keyId: expect.any(String), name, algorithm: 'rsa-2048', certifiedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T.*Z$/) });
      expect(key.name.toString('hex')).toBe(name);

      const rows = await keyRows('SN-A');
      const registration = ((await ds.query('SELECT registration_id FROM node_credentials WHERE credential_id = $1', [credential.credentialId])) as { registration_id: string }[])[0]!;
      expect(rows).toHaveLength(1);
      expect(rows[0]!.public_area.equals(key.public.raw)).toBe(true);
      expect(unmarshalTpmtPublic(rows[0]!.public_area).objectAttributes).toBe(CERTIFIED_DECRYPT_KEY_TEMPLATE.objectAttributes);
      expect([rows[0]!.id, rows[0]!.name.toString('hex'), rows[0]!.algorithm, rows[0]!.registration_id, rows[0]!.retired_at]).toEqual([
        response.body.keyId,
        name,
        'rsa-2048',
        registration.registration_id,
        null,
      ]);
      const audit = (await lastAudit('key.certified'))!;
      expect(audit).toEqual({
        actor: `node-credential:${credential.credentialId}`,
        subject: `machine:${await machineId('SN-A')}`,
        outcome: 'success',
        details: { serial: 'SN-A', keyId: response.body.keyId, keyName: name, algorithm: 'rsa-2048', registrationId: registration.registration_id },
      });

      const listed = await request(app.getHttpServer()).get('/v1/machines/SN-A/keys').set('Authorization', `Bearer ${readToken}`);
      expect(listed.status).toBe(200);
      expect(listed.body).toEqual([
        {
          id: response.body.keyId,
          machineId: await machineId('SN-A'),
          name,
          algorithm: 'rsa-2048',
          publicArea: key.public.raw.toString('base64'),
          registrationId: registration.registration_id,
          credentialId: credential.credentialId,
          certifiedAt: response.body.certifiedAt,
          retiredAt: null,
          retiredReason: null,
        },
      ]);
      expect((await signed(credential, 'GET', CURRENT)).body).toEqual(response.body);

      // The same request again: the challenge is spent.
      const details = await expectRefused(() => signed(credential, 'POST', KEYS, body), 409, 'key.nonce-reused');
      expect(details.keyName).toBe(name);
    });
  });

  it('a new certified key rotates the old one out (retired `rotated`, audited key.retired); the same key again with a fresh challenge stays, unchanged', async () => {
    const [first] = await keyRows('SN-A');
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const { key, body } = await certifiedKey(agent, await challenge(credential), undefined, true);
      const response = await signed(credential, 'POST', KEYS, body);
      expect([response.status, response.body.retiredKeyId]).toEqual([201, first!.id]);
      const rows = await keyRows('SN-A');
      expect(rows.map((r) => [r.id, r.retired_reason, r.retired_at === null])).toEqual([
        [first!.id, 'rotated', false],
        [response.body.keyId, null, true],
      ]);
      expect((await lastAudit('key.retired'))!.details).toEqual({ keyId: first!.id, keyName: first!.name.toString('hex'), reason: 'rotated', replacedBy: response.body.keyId });
      expect((await lastAudit('key.certified'))!.details).toMatchObject({ keyId: response.body.keyId, retiredKeyId: first!.id });

      // The same key, certified again over a new challenge (an agent retrying after a lost answer).
      const again = await tpm2Certify(agent.scope.client, { handle: key.handle, auth: passwordAuth() }, { handle: agent.ak.handle, auth: passwordAuth() }, await challenge(credential));
      const repeated = await signed(credential, 'POST', KEYS, { ...body, attest: b64(again.attest.raw), signature: b64(again.signatureBytes) });
      expect([repeated.status, repeated.body.keyId, repeated.body.retiredKeyId]).toEqual([201, response.body.keyId, undefined]);
      expect(await keyRows('SN-A')).toHaveLength(2);
      expect((await lastAudit('key.certified'))!.details).toMatchObject({ keyId: response.body.keyId, unchanged: true });

      const listed = await request(app.getHttpServer()).get('/v1/machines/SN-A/keys').set('Authorization', `Bearer ${readToken}`);
      expect((listed.body as { id: string; retiredReason: string | null }[]).map((k) => [k.id, k.retiredReason])).toEqual([
        [response.body.keyId, null],
        [first!.id, 'rotated'],
      ]);
    });
  });

  // ── refused ─────────────────────────────────────────────────────────────────────────────────

  it("a key certified by another machine's AK (over this machine's challenge) is refused key.wrong-ak", async () => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (_agentA, credentialA) => {
      const nonce = await challenge(credentialA);
      await enrollHolding(app, fixture.at(1), 'rsa-2048', async (agentB) => {
        const { body } = await certifiedKey(agentB, nonce);
        const details = await expectRefused(() => signed(credentialA, 'POST', KEYS, body), 400, 'key.wrong-ak');
        expect(details.serial).toBe('SN-A');
      });
    });
  });

  it.each([
    ['that can sign', 'key.attributes', 'sign', () => variant(TPMA_OBJECT.sign, 0)],
    ['without fixedTPM (nor fixedParent)', 'key.attributes', 'fixedTPM', () => variant(0, TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent)],
    [
      'that is restricted (a storage key)',
      'key.attributes',
      'restricted',
      () =>
        variant(TPMA_OBJECT.restricted, 0, {
          parameters: { ...CERTIFIED_DECRYPT_KEY_TEMPLATE.parameters, symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_AES, keyBits: 128, mode: TPM_ALG_ID.TPM_ALG_CFB } },
        }),
    ],
    ['of RSA-1024', 'key.weak', 'RSA-1024', () => variant(0, 0, { parameters: { ...CERTIFIED_DECRYPT_KEY_TEMPLATE.parameters, keyBits: 1024 } })],
  ] as const)('a key %s, truly certified by the AK over a fresh challenge, is refused %s', async (_what, code, named, template) => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const { body } = await certifiedKey(agent, await challenge(credential), template());
      const details = await expectRefused(() => signed(credential, 'POST', KEYS, body), 400, code);
      expect(details.reason).toContain(named);
    });
  });

  it('a challenge past its deadline is refused key.nonce-expired (movable clock)', async () => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const { body } = await certifiedKey(agent, await challenge(credential));
      clock.offsetMs = CHALLENGE_TTL_MS + 1000;
      await expectRefused(() => signed(credential, 'POST', KEYS, body), 409, 'key.nonce-expired');
    });
  });

  it("another machine's challenge is refused key.nonce-unknown, named in the record only, and stays the other machine's", async () => {
    const otherNonce = await enrollHolding(app, fixture.at(1), 'rsa-2048', async (_agent, credentialB) => challenge(credentialB));
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const { body } = await certifiedKey(agent, otherNonce);
      const details = await expectRefused(() => signed(credential, 'POST', KEYS, body), 400, 'key.nonce-unknown');
      expect(details.challengeOf).toBe(`machine:${await machineId('SN-B')}`);
      const [row] = (await ds.query('SELECT consumed_at FROM key_challenges WHERE nonce = $1', [otherNonce])) as { consumed_at: Date | null }[];
      expect(row).toEqual({ consumed_at: null });

      // A nonce the server never issued.
      const { body: made } = await certifiedKey(agent, randomBytes(32));
      await expectRefused(() => signed(credential, 'POST', KEYS, made), 400, 'key.nonce-unknown');
    });
  });

  it('a certify whose Name is not H(the public area sent) is refused key.name-mismatch', async () => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const nonce = await challenge(credential);
      const { body } = await certifiedKey(agent, nonce);
      const { body: other } = await certifiedKey(agent, randomBytes(32));
      await expectRefused(() => signed(credential, 'POST', KEYS, { ...body, keyPublic: other.keyPublic }), 400, 'key.name-mismatch');
    });
  });

  it('an attestation that is not a TPM_ST_ATTEST_CERTIFY (a quote by the same AK over the challenge) is refused key.not-certify', async () => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const nonce = await challenge(credential);
      const { body } = await certifiedKey(agent, randomBytes(32));
      const quote = await quotePcrs(agent.scope, agent.ak, parsePcrSelection('sha256:0'), nonce);
      await expectRefused(() => signed(credential, 'POST', KEYS, { ...body, attest: b64(quote.message), signature: b64(quote.signatureBytes) }), 400, 'key.not-certify');
    });
  });

  it('a body that is not JSON is refused by the guard before anything is decided (401 node.malformed, nothing audited as key.refused)', async () => {
    const credential = await enrollHolding(app, fixture.at(0), 'rsa-2048', async (_agent, c) => c);
    const bytes = Buffer.from('{}');
    const headers = signNodeRequest({ credential, method: 'POST', path: KEYS, body: bytes, now: clock.now(), nonce: randomBytes(16) });
    const before = await auditCount('key.refused');
    const response = await request(app.getHttpServer()).post(KEYS).set(headers).set('Content-Type', 'text/plain').send('{}');
    expect([response.status, response.body.code]).toEqual([401, 'node.malformed']);
    expect(await auditCount('key.refused')).toBe(before);
  });

  it('a public area that does not parse is refused key.malformed', async () => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const { body } = await certifiedKey(agent, await challenge(credential));
      await expectRefused(() => signed(credential, 'POST', KEYS, { ...body, keyPublic: b64(Buffer.from([0, 4, 1, 2, 3, 4])) }), 400, 'key.malformed');
    });
  });

  it('trailing bytes after the TPM2B_PUBLIC, the TPMS_ATTEST or the TPMT_SIGNATURE are refused key.malformed without spending the challenge; two certifications racing on that one challenge: one is stored, the other key.nonce-reused', async () => {
    await enrollHolding(app, fixture.at(0), 'rsa-2048', async (agent, credential) => {
      const { body } = await certifiedKey(agent, await challenge(credential));
      const trailing = (field: string) => b64(Buffer.concat([Buffer.from(field, 'base64'), Buffer.from([0])]));
      for (const name of ['keyPublic', 'attest', 'signature'] as const) {
        const details = await expectRefused(() => signed(credential, 'POST', KEYS, { ...body, [name]: trailing(body[name]) }), 400, 'key.malformed');
        expect(details.reason).toContain('1 trailing byte(s)');
      }
      const keysBefore = await keyCount();
      const raced = await Promise.all([signed(credential, 'POST', KEYS, body), signed(credential, 'POST', KEYS, body)]);
      expect(raced.map((r) => r.body.code ?? r.status).sort()).toEqual([201, 'key.nonce-reused']);
      expect(await keyCount()).toBe(keysBefore + 1);
    });
  });

  // ── the machine's state ─────────────────────────────────────────────────────────────────────

  it('revoking a machine retires its key (machine-revoked, audited key.retired) and its credential asks nothing more', async () => {
    const credential = await enrollHolding(app, fixture.at(1), 'rsa-2048', async (agent, credentialB) => {
      const response = await signed(credentialB, 'POST', KEYS, (await certifiedKey(agent, await challenge(credentialB))).body);
      expect(response.status).toBe(201);
      return credentialB;
    });
    const [live] = await keyRows('SN-B');
    expect(live!.retired_at).toBeNull();
    await app.get(MachineRevocations).revoke({ serial: 'SN-B' }, { reason: 'stolen', actor: 'test' });
    const [retired] = await keyRows('SN-B');
    expect([retired!.id, retired!.retired_reason, retired!.retired_at !== null]).toEqual([live!.id, 'machine-revoked', true]);
    expect(await lastAudit('key.retired')).toEqual({
      actor: 'system:machine-revocation',
      subject: `machine:${await machineId('SN-B')}`,
      outcome: 'success',
      details: { keyId: live!.id, keyName: live!.name.toString('hex'), reason: 'machine-revoked' },
    });
    const asked = await signed(credential, 'POST', CHALLENGES, {});
    expect([asked.status, asked.body.code]).toEqual([401, 'node.unknown-credential']);
  });

  it('a quarantined machine cannot ask for a challenge (its node credential does not authenticate it)', async () => {
    const credential = await enrollHolding(app, fixture.at(0), 'rsa-2048', async (_agent, c) => c);
    await fixture.at(0).extendPcr(7, 'sha256', 'ab'.repeat(32));
    try {
      const refused = await enroll(app, fixture.at(0), 'rsa-2048');
      expect([refused.status, refused.body.code]).toEqual([409, 'attestation.policy-mismatch']);
      const asked = await signed(credential, 'POST', CHALLENGES, {});
      expect([asked.status, asked.body.code]).toEqual([401, 'node.machine-not-attested']);
    } finally {
      await fixture.at(0).reboot();
    }
  });
});
