/**
 * PCR approvals, the control plane's side (issue 13 item 5), against a real PostgreSQL and swtpm:
 * every policy change signs one approval per allowed set in the group's epoch; the signature
 * verifies in the TPM (TPM2_LoadExternal into the owner hierarchy + TPM2_VerifySignature) and a real
 * object sealed to PolicyAuthorize(signing key, policyRef) opens with it while the TPM's PCRs match
 * the approved set; a promote approves a new state and the *same* envelope then opens on the
 * machine in that state; a set removed bumps the epoch, re-signs the rest under the new policyRef and
 * the older epoch's envelope no longer opens. GET /node/v1/approvals answers the caller's group only
 * (also through the agent's NodeApiClient.approvals) and refuses unauthenticated, revoked and
 * quarantined callers; GET /v1/groups/:group/approvals with
 * and without its scope; `rackseal policy approvals`; the signing key's private key is in no pg_dump
 * in clear; `master-key rotate` re-wraps it and approvals are still signed afterwards.
 */
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { GroupApprovals } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { PcrApprovals, PcrApprovalsRepository, PcrPoliciesRepository, pcrSigningKeyContext, signApprovalDigest } from '@rackseal/attestation';
import { AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { EnvMasterKey, MasterKeys, openEnvelope } from '@rackseal/envelope';
import { InventoryImporter } from '@rackseal/inventory';
import { rotateMasterKey, SEALED_COLUMNS } from '@rackseal/master-keys';
import { APPROVALS_ROUTE, type ApprovalsResponse, nodeApiPath, type PcrApproval } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { approvalDigest, approvalPolicyRef, approvedPcrPolicy, parsePcrPolicy, type PcrPolicy, policySelection, sealedObjectAuthPolicy } from '@rackseal/pcr-policy';
import { CryptoRandomSource, SystemClock } from '@rackseal/platform';
import {
  createImportBlob,
  type EndorsementKey,
  getEndorsementKey,
  marshalTpmtSignature,
  objectName,
  openTransport,
  TPM_ALG_ID,
  TPM_RH,
  TPM_ST_TICKET,
  TPMA_OBJECT,
  tpm2LoadExternal,
  tpm2VerifySignature,
  TpmClient,
  TpmError,
  type TpmScope,
  type TPMT_TK,
  unmarshalTpm2bPublic,
  unmarshalTpmtSignature,
  unsealImportedBlob,
  verifyTpmSignature,
  publicKeyFromTpmt,
  withTpmScope,
  type SealedImportBlob,
} from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { NodeApiClient } from '../apps/agent/src/node-api/node-api-client';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { FRESH_SWTPM_POLICY, SRTM } from './support/attestation-policies';
import { runRacksealCliAsync } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { b64, enroll } from './support/enrollment';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { dumpDatabase, secretsFoundIn } from './support/secret-search';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(180_000);

const APPROVALS = nodeApiPath(APPROVALS_ROUTE);
const zeros = (): Record<string, string> => Object.fromEntries(SRTM.map((pcr) => [String(pcr), '00'.repeat(32)]));
const randomSet = (label: string) => ({ label, values: Object.fromEntries(SRTM.map((pcr) => [String(pcr), randomBytes(32).toString('hex')])) });
const FRESH = FRESH_SWTPM_POLICY.allowedSets[0]!.label;

describe('PCR approvals (issue 13 item 5)', () => {
  const fixture = useSwtpms(2);
  const masterKey = randomBytes(32);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let baseUrl: string;
  let ds: DataSource;
  let tpmA: SwtpmMachine;
  let tpmB: SwtpmMachine;
  const credential: Record<string, NodeCredential> = {};
  const tokens: Record<'admin' | 'policyRead' | 'inventoryRead', string> = {} as never;
  /** The policy of group workers as the tests last set it. */
  let workers: PcrPolicy;
  /** Sealed on B under epoch 1 before B's state was approved. */
  let blobB: SealedImportBlob;
  /** Sealed on A under epoch 1. */
  let blobA: SealedImportBlob;
  const dataA = randomBytes(32);
  const dataB = randomBytes(32);

  beforeAll(async () => {
    tpmA = fixture.at(0);
    tpmB = fixture.at(1);
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const moduleRef = await Test.createTestingModule({
      imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent', RACKSEAL_MASTER_KEY: masterKey.toString('hex') }))],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    const issue = async (name: string, scope: string) => (await app.get(ApiTokens).issue(name, [scope], 'test')).token;
    tokens.admin = await issue('admin', 'admin');
    tokens.policyRead = await issue('policy-reader', 'policy:read');
    tokens.inventoryRead = await issue('reader', 'inventory:read');
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], {
      addedBy: 'test',
    });
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-A,,,workers,${b64(await tpmA.rsaEkCertDer())},`, `SN-B,,,workers,${b64(await tpmB.rsaEkCertDer())},`].join('\n');
    const summary = await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
    expect(summary).toMatchObject({ status: 'succeeded' });
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  /** An operator request with `token` (admin by default; null: none). */
  const http = (method: 'get' | 'put' | 'post' | 'delete', path: string, token: string | null = tokens.admin) => {
    const r = request(app.getHttpServer())[method](path);
    return token === null ? r : r.set('Authorization', `Bearer ${token}`);
  };
  const nodeGet = (cred: NodeCredential) =>
    request(app.getHttpServer())
      .get(APPROVALS)
      .set(signNodeRequest({ credential: cred, method: 'GET', path: APPROVALS, body: Buffer.alloc(0), now: new Date(), nonce: randomBytes(16) }));
  const auditCount = async (action: string) => Number(((await ds.query('SELECT count(*) AS n FROM audit_log WHERE action = $1', [action])) as { n: string }[])[0]!.n);
  const lastAudit = async (action: string) =>
    ((await ds.query('SELECT actor, subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1', [action])) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[])[0]!;
  const rows = async (epoch?: number) =>
    (await ds.query(`SELECT epoch, label, encode(approved_policy, 'hex') AS approved FROM pcr_approvals WHERE group_name = 'workers' ${epoch === undefined ? '' : `AND epoch = ${epoch}`} ORDER BY epoch, signed_at, label`)) as {
      epoch: number;
      label: string;
      approved: string;
    }[];
  const operatorView = async (group = 'workers'): Promise<GroupApprovals> => {
    const response = await http('get', `/v1/groups/${group}/approvals`, tokens.policyRead);
    expect(response.status).toBe(200);
    return response.body as GroupApprovals;
  };
  const setPolicy = async (policy: unknown) => {
    const response = await http('put', '/v1/groups/workers/policy').send(policy as object);
    expect(response.status).toBe(200);
    workers = parsePcrPolicy(policy);
  };
  const approvalOf = (view: ApprovalsResponse, label: string): PcrApproval => view.approvals.find((a) => a.label === label)!;
  /** The signing key's private key, opened as a test oracle with the master key the app was given. */
  const signingPrivateKey = async (keys: MasterKeys | EnvMasterKey = new EnvMasterKey(new SecretBytes(masterKey))): Promise<SecretBytes> => {
    const [row] = (await ds.query('SELECT id, key_sealed FROM pcr_signing_keys')) as { id: string; key_sealed: Buffer }[];
    return openEnvelope(keys, pcrSigningKeyContext(row!.id), row!.key_sealed);
  };

  async function onTpm<T>(tpm: SwtpmMachine, work: (scope: TpmScope, ek: EndorsementKey) => Promise<T>): Promise<T> {
    const client = new TpmClient(await openTransport(tpm.device));
    try {
      return await withTpmScope(client, async (scope) => work(scope, await getEndorsementKey(scope, 'rsa-2048')));
    } finally {
      await client.close();
    }
  }

  /** LoadExternal(signing key, TPM_RH_OWNER) + VerifySignature(aHash, signature): the ticket PolicyAuthorize needs. */
  async function verifyInTpm(scope: TpmScope, view: ApprovalsResponse, approval: PcrApproval, signature: Buffer = Buffer.from(approval.signature, 'base64')): Promise<TPMT_TK> {
    const publicArea = unmarshalTpm2bPublic(Buffer.from(view.signingKeyPublic, 'base64'));
    const signer = await tpm2LoadExternal(scope.client, publicArea, TPM_RH.TPM_RH_OWNER);
    scope.track(signer.objectHandle);
    expect(signer.name.toString('hex')).toBe(view.signingKeyName);
    const aHash = approvalDigest(Buffer.from(approval.approvedPolicy, 'hex'), Buffer.from(view.policyRef, 'hex'));
    try {
      return await tpm2VerifySignature(scope.client, signer.objectHandle, aHash, unmarshalTpmtSignature(signature));
    } finally {
      await scope.flush(signer.objectHandle);
    }
  }

  /** The agent's sequence: PolicyPCR over the group's selection, then PolicyAuthorize with the approval, then Unseal. */
  async function unsealWith(tpm: SwtpmMachine, blob: SealedImportBlob, view: ApprovalsResponse, approval: PcrApproval): Promise<Buffer> {
    return onTpm(tpm, async (scope, ek) => {
      const checkTicket = await verifyInTpm(scope, view, approval);
      return unsealImportedBlob(scope, ek, blob, policySelection(view), {
        authorize: { approvedPolicy: Buffer.from(approval.approvedPolicy, 'hex'), policyRef: Buffer.from(view.policyRef, 'hex'), keySign: Buffer.from(view.signingKeyName, 'hex'), checkTicket },
      });
    });
  }

  const sealFor = async (tpm: SwtpmMachine, view: ApprovalsResponse, data: Buffer): Promise<SealedImportBlob> =>
    onTpm(tpm, async (_, ek) => createImportBlob(ek.public, data, { authPolicy: sealedObjectAuthPolicy(Buffer.from(view.signingKeyName, 'hex'), Buffer.from(view.policyRef, 'hex')) }));

  const tpmErrorName = (error: unknown): string => (error instanceof TpmError ? error.rc.name : `not a TpmError: ${String(error)}`);

  it('policy set signs one approval per allowed set in epoch 1, creating the signing key once: a public-only RSA-2048 RSASSA-SHA256 signing key whose Name is H(public)', async () => {
    await setPolicy({ ...FRESH_SWTPM_POLICY, allowedSets: [{ label: FRESH, values: zeros() }, randomSet('kernel-b')] });
    expect((await rows()).map((r) => [r.epoch, r.label])).toEqual([
      [1, FRESH],
      [1, 'kernel-b'],
    ]);
    expect(await auditCount('pcr-approvals.key-created')).toBe(1);
    const signedAudit = await lastAudit('pcr-approvals.signed');
    expect(signedAudit).toMatchObject({ outcome: 'success', subject: 'group:workers', details: { group: 'workers', epoch: 1, labels: [FRESH, 'kernel-b'], count: 2, kept: 0 } });

    const view = await operatorView();
    expect(view).toMatchObject({ group: 'workers', epoch: 1, policyRef: approvalPolicyRef('workers', 1).toString('hex'), bank: 'sha256', pcrs: SRTM });
    const pub = unmarshalTpm2bPublic(Buffer.from(view.signingKeyPublic, 'base64'));
    expect(pub.type).toBe(TPM_ALG_ID.TPM_ALG_RSA);
    expect(pub.nameAlg).toBe(TPM_ALG_ID.TPM_ALG_SHA256);
    expect(pub.objectAttributes).toBe(TPMA_OBJECT.sign | TPMA_OBJECT.userWithAuth);
    expect(pub.type === TPM_ALG_ID.TPM_ALG_RSA && pub.parameters).toMatchObject({ keyBits: 2048, scheme: { scheme: TPM_ALG_ID.TPM_ALG_RSASSA, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 } });
    expect(objectName(pub).toString('hex')).toBe(view.signingKeyName);
    expect(signedAudit.details.signingKeyName).toBe(view.signingKeyName);

    // The same policy set again signs nothing (idempotent): the approvals are kept.
    await setPolicy(workers);
    expect(await auditCount('pcr-approvals.signed')).toBe(1);
    expect((await rows()).length).toBe(2);
  });

  it('the TPM verifies an approval (LoadExternal owner + VerifySignature → a TPM_ST_VERIFIED owner ticket) and a sealed object opens with it; a signature over SHA-256(aHash) is TPM_RC_SIGNATURE', async () => {
    const view = await operatorView();
    const approval = approvalOf(view, FRESH);
    const ticket = await onTpm(tpmA, (scope) => verifyInTpm(scope, view, approval));
    expect({ tag: ticket.tag, hierarchy: ticket.hierarchy }).toEqual({ tag: TPM_ST_TICKET.TPM_ST_VERIFIED, hierarchy: TPM_RH.TPM_RH_OWNER });

    // The pitfall, shown to be one: crypto.sign('sha256', aHash) signs SHA-256(aHash), which the TPM refuses.
    const key = createPrivateKey({ key: (await signingPrivateKey()).reveal(), format: 'der', type: 'pkcs8' });
    const aHash = approvalDigest(Buffer.from(approval.approvedPolicy, 'hex'), Buffer.from(view.policyRef, 'hex'));
    const hashedAgain = marshalTpmtSignature({ sigAlg: TPM_ALG_ID.TPM_ALG_RSASSA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, sig: sign('sha256', aHash, key) } });
    expect(tpmErrorName(await onTpm(tpmA, (scope) => verifyInTpm(scope, view, approval, hashedAgain)).catch((e: unknown) => e))).toBe('TPM_RC_SIGNATURE');
    // …while the stored approval is signApprovalDigest over aHash itself (RSASSA-PKCS1-v1_5 is deterministic).
    expect(marshalTpmtSignature(signApprovalDigest(await signingPrivateKey(), aHash)).toString('base64')).toBe(approval.signature);

    blobA = await sealFor(tpmA, view, dataA);
    expect((await unsealWith(tpmA, blobA, view, approval)).equals(dataA)).toBe(true);
    // The other set's approval verifies, but it approves other PCR values: PolicyAuthorize refuses it.
    expect(tpmErrorName(await unsealWith(tpmA, blobA, view, approvalOf(view, 'kernel-b')).catch((e: unknown) => e))).toMatch(/^TPM_RC_(VALUE|POLICY_FAIL)$/);
  });

  it('GET /node/v1/approvals answers the attested caller its group\'s approvals (the operator view without signedAt); a quarantined caller is refused approval.machine-quarantined, audited', async () => {
    const a = await enroll(app, tpmA, 'rsa-2048');
    const b = await enroll(app, tpmB, 'rsa-2048');
    expect([a.status, b.status]).toEqual([200, 200]);
    credential.A = a.credential;
    credential.B = b.credential;
    const response = await nodeGet(credential.A!);
    expect(response.status).toBe(200);
    const view = await operatorView();
    expect(response.body).toEqual({ ...view, approvals: view.approvals.map(({ label, approvedPolicy, signature }) => ({ label, approvedPolicy, signature })) });

    // B boots something else: its re-attestation quarantines it; its credential is still live.
    await tpmB.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
    const again = await enroll(app, tpmB, 'rsa-2048');
    expect([again.status, again.body.code]).toEqual([409, 'attestation.policy-mismatch']);
    const before = await auditCount('pcr-approvals.refused');
    const refused = await nodeGet(credential.B!);
    expect([refused.status, refused.body.code]).toEqual([409, 'approval.machine-quarantined']);
    expect(refused.body.approvals).toBeUndefined();
    expect(await auditCount('pcr-approvals.refused')).toBe(before + 1);
    const machineB = ((await ds.query("SELECT id FROM machines WHERE serial = 'SN-B'")) as { id: string }[])[0]!.id;
    expect(await lastAudit('pcr-approvals.refused')).toMatchObject({
      actor: `node-credential:${credential.B!.credentialId}`,
      subject: `machine:${machineB}`,
      outcome: 'refused',
      details: { code: 'approval.machine-quarantined', state: 'quarantined', group: 'workers' },
    });

    // An envelope sealed now for B (epoch 1) does not open: no approval covers B's state.
    blobB = await sealFor(tpmB, view, dataB);
    expect(tpmErrorName(await unsealWith(tpmB, blobB, view, approvalOf(view, FRESH)).catch((e: unknown) => e))).toMatch(/^TPM_RC_(VALUE|POLICY_FAIL)$/);
  });

  it('promote adds an approval in the same epoch: the same envelope then opens on the machine in the promoted state, without re-wrapping', async () => {
    const response = await http('post', '/v1/groups/workers/policy/promote').send({ machine: 'SN-B', label: 'kernel-c' });
    expect(response.status).toBe(200);
    workers = parsePcrPolicy(response.body.policy.policy);
    expect((await rows()).map((r) => [r.epoch, r.label])).toEqual([
      [1, FRESH],
      [1, 'kernel-b'],
      [1, 'kernel-c'],
    ]);
    expect(await lastAudit('pcr-approvals.signed')).toMatchObject({ details: { epoch: 1, labels: ['kernel-c'], count: 1, kept: 2 } });
    expect(await auditCount('pcr-approvals.epoch-bumped')).toBe(0);
    const view = await operatorView();
    expect((await unsealWith(tpmB, blobB, view, approvalOf(view, 'kernel-c'))).equals(dataB)).toBe(true);
  });

  it('removing a set bumps the epoch: the remaining sets are signed anew under the new policyRef, the old epoch is no longer served and its envelopes no longer open', async () => {
    const before = await operatorView();
    await setPolicy({ ...workers, allowedSets: workers.allowedSets.filter((s) => s.label !== 'kernel-b') });
    expect(await lastAudit('pcr-approvals.epoch-bumped')).toMatchObject({
      subject: 'group:workers',
      details: { group: 'workers', fromEpoch: 1, toEpoch: 2, withdrawn: ['kernel-b'], remaining: [FRESH, 'kernel-c'] },
    });
    expect((await rows(2)).map((r) => r.label)).toEqual([FRESH, 'kernel-c']);
    const view = await operatorView();
    expect(view).toMatchObject({ epoch: 2, policyRef: approvalPolicyRef('workers', 2).toString('hex'), signingKeyName: before.signingKeyName });
    expect(view.approvals.map((a) => a.label)).toEqual([FRESH, 'kernel-c']);
    // Same states, new signatures: the epoch-1 ones are not served.
    expect(view.approvals.map((a) => a.approvedPolicy)).toEqual([approvalOf(before, FRESH).approvedPolicy, approvalOf(before, 'kernel-c').approvedPolicy]);
    expect(view.approvals.some((a) => before.approvals.some((old) => old.signature === a.signature))).toBe(false);
    expect((await nodeGet(credential.A!)).body).toMatchObject({ epoch: 2, approvals: [{ label: FRESH }, { label: 'kernel-c' }] });
    expect(await app.get(PcrApprovals).currentEpoch('workers')).toBe(2);
    const target = await app.get(PcrApprovals).sealingTarget('workers');
    expect({ epoch: target.epoch, policyRef: target.policyRef.toString('hex'), name: target.signingKeyName.toString('hex') }).toEqual({ epoch: 2, policyRef: view.policyRef, name: view.signingKeyName });

    // The epoch-1 envelope on A: the epoch-2 approval of its very state does not open it (another policyRef).
    expect(tpmErrorName(await unsealWith(tpmA, blobA, view, approvalOf(view, FRESH)).catch((e: unknown) => e))).toBe('TPM_RC_POLICY_FAIL');
    // Re-wrapped to epoch 2, it opens.
    const rewrapped = await sealFor(tpmA, view, dataA);
    expect((await unsealWith(tpmA, rewrapped, view, approvalOf(view, FRESH))).equals(dataA)).toBe(true);
  });

  it('the node route answers only the caller\'s group; an unauthenticated call is node.missing-credential; a revoked machine\'s credential is node.unknown-credential, audited', async () => {
    const storage = await http('put', '/v1/groups/storage/policy').send({ ...FRESH_SWTPM_POLICY, allowedSets: [randomSet('storage-1')] });
    expect(storage.status).toBe(200);
    const own = await nodeGet(credential.A!);
    expect(own.body.group).toBe('workers');
    expect(own.body.approvals.map((a: PcrApproval) => a.label)).not.toContain('storage-1');
    // The agent's client asks the same route, signed, and gets the same answer; B (quarantined) is refused by code.
    const agentApi = new NodeApiClient({ serverUrl: baseUrl, attempts: 1 });
    expect(await agentApi.approvals(credential.A!)).toEqual(own.body);
    await expect(agentApi.approvals(credential.B!)).rejects.toMatchObject({ status: 409, code: 'approval.machine-quarantined' });

    const refusals = await auditCount('node.request-refused');
    const anonymous = await request(app.getHttpServer()).get(APPROVALS);
    expect([anonymous.status, anonymous.body.code]).toEqual([401, 'node.missing-credential']);
    expect(anonymous.body.approvals).toBeUndefined();
    expect(await auditCount('node.request-refused')).toBe(refusals);

    expect((await http('post', '/v1/machines/SN-A/revoke').send({ reason: 'decommissioned' })).status).toBe(200);
    const revoked = await nodeGet(credential.A!);
    expect([revoked.status, revoked.body.code]).toEqual([401, 'node.unknown-credential']);
    expect(revoked.body.approvals).toBeUndefined();
    expect(await auditCount('node.request-refused')).toBe(refusals + 1);
    expect(await lastAudit('node.request-refused')).toMatchObject({ outcome: 'refused', details: { reason: 'unknown-credential', path: APPROVALS } });
  });

  it('GET /v1/groups/:group/approvals needs policy:read; a bad group is approval.invalid-group; a group without a policy has no approvals at epoch 1; `rackseal policy approvals` prints them', async () => {
    expect((await http('get', '/v1/groups/workers/approvals', tokens.inventoryRead)).status).toBe(403);
    expect((await http('get', '/v1/groups/workers/approvals', null)).status).toBe(401);
    const bad = await http('get', '/v1/groups/Not_A_Group/approvals', tokens.policyRead);
    expect([bad.status, bad.body.code]).toEqual([400, 'approval.invalid-group']);
    const empty = await operatorView('no-policy-yet');
    expect(empty).toMatchObject({ group: 'no-policy-yet', epoch: 1, bank: 'sha256', pcrs: [], approvals: [] });

    const view = await operatorView();
    const json = await runRacksealCliAsync(['policy', 'approvals', 'workers', '--json', '--server', baseUrl], { env: { RACKSEAL_TOKEN: tokens.policyRead } });
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(view);
    const text = await runRacksealCliAsync(['policy', 'approvals', 'workers', '--server', baseUrl], { env: { RACKSEAL_TOKEN: tokens.policyRead } });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^epoch:\s+2$/m);
    expect(text.stdout).toMatch(new RegExp(`^signing key:\\s+${view.signingKeyName}$`, 'm'));
    expect(text.stdout).toMatch(/^selection:\s+sha256:0,1,2,3,4,5,6,7$/m);
    expect(text.stdout).toContain('approvals (2):');
    for (const a of view.approvals) {
      expect(text.stdout).toMatch(new RegExp(`${a.label}\\s+${a.approvedPolicy}`));
    }
    expect(text.stdout).not.toContain(view.approvals[0]!.signature);
  });

  it('deleting the policy withdraws every approval (epoch bump, nothing signed)', async () => {
    expect((await http('delete', '/v1/groups/storage/policy')).status).toBe(200);
    expect(await lastAudit('pcr-approvals.epoch-bumped')).toMatchObject({ details: { group: 'storage', fromEpoch: 1, toEpoch: 2, withdrawn: ['storage-1'], remaining: [] } });
    expect(await operatorView('storage')).toMatchObject({ epoch: 2, approvals: [], pcrs: [] });
  });

  it('policy approve adds a stated set signed in the current epoch; policy withdraw removes one and moves the epoch on; the only set, bad values and a group without a policy are refused, changing nothing', async () => {
    const cli = (...args: string[]) => runRacksealCliAsync([...args, '--server', baseUrl], { env: { RACKSEAL_TOKEN: tokens.admin } });
    expect((await http('put', '/v1/groups/edge/policy').send({ ...FRESH_SWTPM_POLICY, allowedSets: [randomSet('edge-1')] })).status).toBe(200);
    const predicted = randomSet('edge-2');
    const valuesFile = `${tpmA.dir}/edge-2.json`;
    await writeFile(valuesFile, JSON.stringify(predicted.values));
    const approved = await cli('policy', 'approve', 'edge', '--label', 'edge-2', '--values', valuesFile, '--json');
    expect([approved.status, approved.stderr]).toEqual([0, '']);
    expect(JSON.parse(approved.stdout)).toMatchObject({ label: 'edge-2', replaced: false, approvalEpoch: 1, policy: { group: 'edge', policy: { allowedSets: [{ label: 'edge-1' }, { label: 'edge-2', values: predicted.values }] } } });
    expect(await lastAudit('policy.approved')).toMatchObject({ subject: 'group:edge', outcome: 'success', details: { group: 'edge', label: 'edge-2', approvalEpoch: 1, epochBumped: false, sets: ['edge-1', 'edge-2'] } });
    const epoch1 = await operatorView('edge');
    expect(epoch1.approvals.map((a) => [a.label, a.approvedPolicy])).toEqual([
      ['edge-1', expect.any(String)],
      ['edge-2', approvedPcrPolicy(FRESH_SWTPM_POLICY, predicted).toString('hex')],
    ]);

    const withdrawn = await cli('policy', 'withdraw', 'edge', '--label', 'edge-1');
    expect([withdrawn.status, withdrawn.stderr]).toEqual([0, '']);
    expect(withdrawn.stdout).toMatch(/^withdrew set "edge-1" in group edge \(approval epoch 2\)$/m);
    expect(await lastAudit('policy.withdrawn')).toMatchObject({ details: { group: 'edge', label: 'edge-1', approvalEpoch: 2, epochBumped: true, sets: ['edge-2'] } });
    const epoch2 = await operatorView('edge');
    expect({ epoch: epoch2.epoch, labels: epoch2.approvals.map((a) => a.label) }).toEqual({ epoch: 2, labels: ['edge-2'] });

    const policyBefore = (await http('get', '/v1/groups/edge/policy')).body as { digest: string };
    const only = await cli('policy', 'withdraw', 'edge', '--label', 'edge-2');
    expect([only.status, only.stdout]).toEqual([2, '']);
    expect(only.stderr).toBe('rackseal: policy withdraw: label: "edge-2" is the policy\'s only set: a policy allows at least one state (remove the whole policy to allow none)\n');
    const unknown = await http('delete', '/v1/groups/edge/policy/sets/nope');
    expect([unknown.status, unknown.body.code]).toEqual([400, 'policy.invalid']);
    const wrongPcrs = await http('post', '/v1/groups/edge/policy/sets').send({ label: 'edge-3', values: { '0': '00'.repeat(32) } });
    expect([wrongPcrs.status, wrongPcrs.body.code]).toEqual([400, 'policy.invalid']);
    const notObject = await http('post', '/v1/groups/edge/policy/sets').send({ label: 'edge-3', values: 'abc' });
    expect(notObject.status).toBe(400);
    expect(((await http('get', '/v1/groups/edge/policy')).body as { digest: string }).digest).toBe(policyBefore.digest);
    expect((await operatorView('edge')).epoch).toBe(2);
    const none = await http('post', '/v1/groups/nothing-here/policy/sets').send(predicted);
    expect([none.status, none.body.code]).toEqual([404, 'policy.not-found']);
    expect((await http('post', '/v1/groups/edge/policy/sets', tokens.policyRead).send(predicted)).status).toBe(403);
  });

  it('the signing key\'s private key is in no pg_dump in clear (raw, hex, base64), nor in any audit record', async () => {
    const der = (await signingPrivateKey()).reveal();
    const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
    const named = new Map([
      ['pkcs8', der],
      ['d', Buffer.from(jwk.d!, 'base64url')],
      ['p', Buffer.from(jwk.p!, 'base64url')],
    ]);
    expect(secretsFoundIn(dumpDatabase(db.url), named)).toEqual([]);
    const audit = Buffer.from(JSON.stringify(await ds.query('SELECT details FROM audit_log')));
    expect(secretsFoundIn(audit, named)).toEqual([]);
  });

  it('master-key rotate re-wraps the signing key: a process holding only the new key signs approvals the TPM accepts', async () => {
    const der = (await signingPrivateKey()).reveal();
    const old = new EnvMasterKey(new SecretBytes(masterKey));
    const next = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const report = await rotateMasterKey(ds, new AuditLog(ds, new SystemClock()), SEALED_COLUMNS, new MasterKeys(next, [old]), { batchSize: 10, actor: 'test:rotation' });
    expect(report.done).toBe(true);
    expect(report.columns.find((c) => c.column === 'pcr_signing_keys.key_sealed')).toMatchObject({ rewrapped: 1 });
    expect((await signingPrivateKey(next)).reveal().equals(der)).toBe(true);
    await expect(signingPrivateKey(old)).rejects.toThrow();

    const clock = new SystemClock();
    const approvals = new PcrApprovals(ds, new PcrApprovalsRepository(ds), new PcrPoliciesRepository(ds), new AuditLog(ds, clock), new MasterKeys(next), clock, new CryptoRandomSource(), new SuppressedAuditRecords());
    const added = parsePcrPolicy({ ...workers, allowedSets: [...workers.allowedSets, randomSet('kernel-d')] });
    const change = await ds.transaction(async (m) => {
      await new PcrPoliciesRepository(ds).put('workers', added, 'test', new Date(), m);
      return approvals.reconcile('workers', added, 'test', m);
    });
    expect(change).toEqual({ epoch: 2, bumped: false, signed: ['kernel-d'] });
    const view = await approvals.show('workers');
    const wire = { ...view, approvals: view.approvals.map(({ label, approvedPolicy, signature }) => ({ label, approvedPolicy, signature })) };
    const approval = approvalOf(wire, 'kernel-d');
    const ticket = await onTpm(tpmB, (scope) => verifyInTpm(scope, wire, approval));
    expect(ticket.tag).toBe(TPM_ST_TICKET.TPM_ST_VERIFIED);
    // And in software, as an independent check: RSASSA-SHA256 over approvedPolicy ‖ policyRef is the signature over aHash.
    const pub = unmarshalTpm2bPublic(Buffer.from(view.signingKeyPublic, 'base64'));
    const message = Buffer.concat([Buffer.from(approval.approvedPolicy, 'hex'), Buffer.from(view.policyRef, 'hex')]);
    expect(verifyTpmSignature(publicKeyFromTpmt(pub), message, unmarshalTpmtSignature(Buffer.from(approval.signature, 'base64')))).toEqual({ ok: true });
  });
});
