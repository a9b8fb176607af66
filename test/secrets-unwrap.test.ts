/**
 * Issue 13's end-to-end acceptance, on a real PostgreSQL and two swtpm machines: each machine attests
 * and certifies a decrypt key with its AK (machine A an RSA-2048 key, machine B a P-256 key); the
 * control plane creates a TLS key, a kubelet client credential, an opaque value and a disk key for
 * their group; every one of them, wrapped each way (`certified-key` to the machine's certified key,
 * `pcr-sealed` to its EK under the group's signed approvals), unwraps in the machine's own TPM to
 * exactly the bytes the control plane holds, and is refused on the other machine. The unwrapped TLS
 * and kubelet keys match their certificates, which verify against their CAs with `openssl verify`.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ApiTokens } from '@rackseal/api-tokens';
import { PcrApprovals } from '@rackseal/attestation';
import { MasterKeys, openEnvelope } from '@rackseal/envelope';
import { InventoryImporter } from '@rackseal/inventory';
import { nodeApiPath } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { secretMaterialContext, secretVersionValueContext } from '@rackseal/secrets';
import {
  CERTIFIED_DECRYPT_KEY_TEMPLATE,
  CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC,
  createCertifiedDecryptKey,
  ekPubHash,
  getEndorsementKey,
  type KeyBlob,
  marshalTpm2bPublic,
  openTransport,
  type RsaPublic,
  type EccPublic,
  type TPMT_PUBLIC,
  TpmClient,
  unmarshalTpmtPublic,
  withTpmScope,
} from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import { wrapToApprovedPcrPolicy, wrapToCertifiedKey } from '@rackseal/wrapping';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { NodeApiClient } from '../apps/agent/src/node-api/node-api-client';
import { unwrapEnvelope } from '../apps/agent/src/unwrap/unwrap-envelope';
import { EnvelopeRecipientError } from '../apps/agent/src/unwrap/unwrap-errors';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { b64, enrollHolding } from './support/enrollment';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(240_000);

const GROUP = 'workers';
const CHALLENGES = nodeApiPath('keys/challenges');
const KEYS = nodeApiPath('keys');

/** What the agent keeps after enrolling (its state dir), and what the control plane knows of the machine. */
interface Enrolled {
  readonly serial: string;
  readonly machineId: string;
  readonly tpm: SwtpmMachine;
  readonly credential: NodeCredential;
  readonly ekPublic: TPMT_PUBLIC;
  readonly ekPubHash: string;
  readonly keyBlob: KeyBlob;
  /** The certified key's public area as the control plane recorded it. */
  readonly certifiedPublic: TPMT_PUBLIC;
}

describe('secrets wrapped to certified keys and approved PCR states unwrap in the right TPM (issue 13 end to end)', () => {
  const fixture = useSwtpms(2);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let baseUrl: string;
  let ds: DataSource;
  let admin: string;
  let dir: string;
  const machines: Enrolled[] = [];

  const api = (method: 'get' | 'post', path: string) => request(app.getHttpServer())[method](path).set('Authorization', `Bearer ${admin}`);
  const openssl = (args: string[]): string => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  function signed(credential: NodeCredential, path: string, body: unknown): request.Test {
    const bytes = Buffer.from(JSON.stringify(body));
    const headers = signNodeRequest({ credential, method: 'POST', path, body: bytes, now: new Date(), nonce: randomBytes(16) });
    return request(app.getHttpServer()).post(path).set(headers).set('Content-Type', 'application/json').send(bytes.toString('utf8'));
  }

  /** Attests the machine, then certifies a decrypt key of `template` with its AK as the agent does. */
  async function enrollWithKey(tpm: SwtpmMachine, serial: string, template: RsaPublic | EccPublic): Promise<Enrolled> {
    return enrollHolding(app, tpm, 'rsa-2048', async (agent, credential) => {
      const challenge = await signed(credential, CHALLENGES, {});
      expect(challenge.status).toBe(201);
      const key = await createCertifiedDecryptKey(agent.scope, agent.ak, Buffer.from(challenge.body.nonce as string, 'base64'), { keyTemplate: template });
      await agent.scope.flush(key.handle);
      const certified = await signed(credential, KEYS, { keyPublic: b64(marshalTpm2bPublic(key.public)), attest: b64(key.certification.attest.raw), signature: b64(key.certification.signatureBytes) });
      expect(certified.status).toBe(201);
      const [row] = (await ds.query('SELECT k.public_area, m.id AS machine_id FROM certified_keys k JOIN machines m ON m.id = k.machine_id WHERE m.serial = $1 AND k.retired_at IS NULL', [serial])) as {
        public_area: Buffer;
        machine_id: string;
      }[];
      const ekPublic = agent.ek.public;
      return { serial, machineId: row!.machine_id, tpm, credential, ekPublic, ekPubHash: ekPubHash(ekPublic), keyBlob: key.blob, certifiedPublic: unmarshalTpmtPublic(row!.public_area) };
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-unwrap-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const moduleRef = await Test.createTestingModule({
      imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent', RACKSEAL_MASTER_KEY: randomBytes(32).toString('hex') }))],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    admin = (await app.get(ApiTokens).issue('admin', ['admin'], 'test')).token;
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
    const csv = [
      'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash',
      `SN-A,,node-a,${GROUP},${b64(await fixture.at(0).rsaEkCertDer())},`,
      `SN-B,,node-b,${GROUP},${b64(await fixture.at(1).rsaEkCertDer())},`,
    ].join('\n');
    expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
    expect((await request(app.getHttpServer()).put(`/v1/groups/${GROUP}/policy`).set('Authorization', `Bearer ${admin}`).send(FRESH_SWTPM_POLICY)).status).toBe(200);
    machines.push(await enrollWithKey(fixture.at(0), 'SN-A', CERTIFIED_DECRYPT_KEY_TEMPLATE));
    machines.push(await enrollWithKey(fixture.at(1), 'SN-B', CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC));

    // A kubeadm-like Kubernetes CA, imported; the TLS CA is created on first use.
    const caKey = join(dir, 'k8s-ca.key');
    const caCert = join(dir, 'k8s-ca.crt');
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCert, '-subj', '/CN=kubernetes', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
    const imported = await api('post', '/v1/cas/kubernetes').send({ certificate: openssl(['x509', '-in', caCert]), privateKey: createPrivateKey(openssl(['pkey', '-in', caKey])).export({ type: 'pkcs8', format: 'pem' }).toString() });
    expect(imported.status).toBe(201);
    const create = async (body: Record<string, unknown>) => expect((await api('post', '/v1/secrets').send({ target: { group: GROUP }, ...body })).status).toBe(201);
    await create({ name: 'web', kind: 'tls', binding: 'certified-key', parameters: { sans: ['{hostname}.{group}.cluster.internal'] } });
    await create({ name: 'kubelet', kind: 'kubelet-client', binding: 'certified-key', parameters: { server: 'https://10.0.0.1:6443' } });
    await create({ name: 'join-token', kind: 'opaque', binding: 'pcr-sealed', value: randomBytes(48).toString('base64') });
    await create({ name: 'luks', kind: 'disk', binding: 'pcr-sealed', parameters: { size: 64 } });
  });

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The bytes the control plane holds for (secret, machine), opened under the master key: version 1. */
  async function heldBytes(secret: string, machineId: string): Promise<{ versionId: string; bytes: Buffer; certificatePem: string | null }> {
    const [version] = (await ds.query('SELECT v.id, v.value_sealed FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.name = $1 AND v.version = 1', [secret])) as {
      id: string;
      value_sealed: Buffer | null;
    }[];
    const keys = app.get(MasterKeys);
    if (version!.value_sealed !== null) {
      return { versionId: version!.id, bytes: openEnvelope(keys, secretVersionValueContext(version!.id), version!.value_sealed).reveal(), certificatePem: null };
    }
    const [material] = (await ds.query('SELECT id, material_sealed, certificate_pem FROM secret_materials WHERE version_id = $1 AND machine_id = $2', [version!.id, machineId])) as {
      id: string;
      material_sealed: Buffer;
      certificate_pem: string | null;
    }[];
    return { versionId: version!.id, bytes: openEnvelope(keys, secretMaterialContext(material!.id), material!.material_sealed).reveal(), certificatePem: material!.certificate_pem };
  }

  /** The control plane's side: the envelope of `bytes` for `machine`, one binding or the other. */
  async function wrapFor(machine: Enrolled, binding: 'certified-key' | 'pcr-sealed', bytes: Buffer, deliveryId: string): Promise<Buffer> {
    if (binding === 'certified-key') {
      return wrapToCertifiedKey(machine.certifiedPublic, bytes, { deliveryId, secretVersion: 1 });
    }
    const target = await app.get(PcrApprovals).sealingTarget(GROUP);
    return wrapToApprovedPcrPolicy({ ekPublic: machine.ekPublic, group: GROUP, epoch: target.epoch, signingKeyName: target.signingKeyName }, bytes, { deliveryId, secretVersion: 1 });
  }

  /** The agent's side: approvals asked with its node credential, the envelope opened in its TPM. */
  async function unwrapOn(machine: Enrolled, envelope: Buffer, keysOf: Enrolled = machine): Promise<Buffer> {
    const approvals = await new NodeApiClient({ serverUrl: baseUrl, attempts: 1 }).approvals(machine.credential);
    const client = new TpmClient(await openTransport(machine.tpm.device));
    try {
      return await unwrapEnvelope(client, envelope, { ekPubHash: keysOf.ekPubHash, certifiedKey: keysOf.keyBlob }, { approvals });
    } finally {
      await client.close();
    }
  }

  it.each([
    { secret: 'web', kind: 'tls' },
    { secret: 'kubelet', kind: 'kubelet-client' },
    { secret: 'join-token', kind: 'opaque' },
    { secret: 'luks', kind: 'disk' },
  ])('$kind ($secret): wrapped each way, unwraps on its machine to the exact bytes and is refused on the other', async ({ secret }) => {
    for (const [index, machine] of machines.entries()) {
      const other = machines[1 - index]!;
      const held = await heldBytes(secret, machine.machineId);
      expect(held.bytes.length).toBeGreaterThanOrEqual(32);
      for (const binding of ['certified-key', 'pcr-sealed'] as const) {
        const envelope = await wrapFor(machine, binding, held.bytes, randomUUID());
        expect(envelope.includes(held.bytes)).toBe(false);
        const unwrapped = await unwrapOn(machine, envelope);
        expect([machine.serial, binding, unwrapped.toString('hex')]).toEqual([machine.serial, binding, held.bytes.toString('hex')]);
        // The other machine, with its own keys: refused before its TPM is asked (the envelope names another recipient).
        await expect(unwrapOn(other, envelope)).rejects.toBeInstanceOf(EnvelopeRecipientError);
      }
    }
  });

  it.each([
    { secret: 'web', ca: 'tls' },
    { secret: 'kubelet', ca: 'kubernetes' },
  ])('$secret: the key unwrapped in the TPM matches its certificate, which verifies against the $ca CA (openssl)', async ({ secret, ca }) => {
    const caResponse = await api('get', `/v1/cas/${ca}/certificate`);
    expect(caResponse.status).toBe(200);
    const caPath = file(`${ca}-ca.pem`, caResponse.text);
    for (const machine of machines) {
      const held = await heldBytes(secret, machine.machineId);
      const unwrapped = await unwrapOn(machine, await wrapFor(machine, 'certified-key', held.bytes, randomUUID()));
      const certPath = file(`${secret}-${machine.serial}.pem`, held.certificatePem!);
      expect(openssl(['verify', '-CAfile', caPath, certPath]).trim()).toBe(`${certPath}: OK`);
      const fromKey = createPublicKey(createPrivateKey({ key: unwrapped, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'pem' }).toString();
      expect(openssl(['x509', '-in', certPath, '-noout', '-pubkey']).trim()).toBe(fromKey.trim());
    }
  });

  it('the certified keys are the machines\' own: A\'s is RSA-2048, B\'s P-256, each in the TPM that certified it', async () => {
    expect(machines.map((m) => m.certifiedPublic.type)).toEqual([0x0001, 0x0023]);
    // withTpmScope over B's TPM: its EK is the one the control plane wraps pcr-sealed envelopes to.
    const client = new TpmClient(await openTransport(machines[1]!.tpm.device));
    try {
      const hash = await withTpmScope(client, async (scope) => ekPubHash((await getEndorsementKey(scope, 'rsa-2048')).public));
      expect(hash).toBe(machines[1]!.ekPubHash);
    } finally {
      await client.close();
    }
  });
});
