/**
 * The pkcs11 master-key provider in the control plane (issue 13 item 2): a control plane whose
 * MASTER_KEY_PROVIDER is pkcs11 on SoftHSM2 enrolls a machine on swtpm; the registration secret and
 * the node credential it seals carry the token key's KEK ID and open only there, and the signed node
 * call that opens the credential works. A control plane whose key is missing does not start.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { PcrPolicySource } from '@rackseal/attestation';
import { SecretBytes } from '@rackseal/config';
import { EnvelopeKeyMismatchError, EnvMasterKey, MasterKeys, openEnvelope } from '@rackseal/envelope';
import { InventoryImporter } from '@rackseal/inventory';
import { MasterKeyUnavailableError, Pkcs11MasterKey, Pkcs11Token } from '@rackseal/master-keys';
import { nodeApiPath } from '@rackseal/node-api-contracts';
import { signNodeRequest } from '@rackseal/node-identity';
import { VendorCas } from '@rackseal/vendor-cas';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { FRESH_SWTPM_POLICY, TestPolicies } from './support/attestation-policies';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { b64, enroll } from './support/enrollment';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { createSoftHsmToken, type SoftHsmToken } from './support/softhsm';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(120_000);

describe('a control plane with MASTER_KEY_PROVIDER=pkcs11', () => {
  const fixture = useSwtpms(1);
  const policies = new TestPolicies();
  let softhsm: SoftHsmToken;
  let token: Pkcs11Token;
  let key: Pkcs11MasterKey;
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let ds: DataSource;
  let app: INestApplication | undefined;

  async function startApp(keyLabel: string): Promise<INestApplication> {
    const config = testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent', ...softhsm.env(keyLabel) });
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(config)] })
      .overrideProvider(PcrPolicySource)
      .useValue(policies)
      .compile();
    const started = moduleRef.createNestApplication({ bufferLogs: true });
    started.useLogger(started.get(Logger));
    configureHttpApp(started);
    await started.init();
    return started;
  }

  beforeAll(async () => {
    softhsm = await createSoftHsmToken();
    token = Pkcs11Token.open(softhsm.settings);
    key = Pkcs11MasterKey.create(token, 'control-plane-key');
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url);
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    token?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await softhsm?.remove();
  });

  it('refuses to start when the key label names no key on the token', async () => {
    await expect(startApp('no-such-key')).rejects.toThrow(
      new MasterKeyUnavailableError(`the PKCS#11 token "${softhsm.tokenLabel}" has no key labelled "no-such-key" (create it once with \`rackseal master-key init\`)`),
    );
  });

  it('enrolls a machine: its secrets are sealed under the token key, open only there, and the credential signs node calls', async () => {
    app = await startApp('control-plane-key');
    const tpm = fixture.at(0);
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], {
      addedBy: 'test',
    });
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-HSM,,,workers,${b64(await tpm.rsaEkCertDer())},`].join('\n');
    expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
    policies.byGroup.set('workers', FRESH_SWTPM_POLICY);

    const enrolled = await enroll(app, tpm, 'rsa-2048');
    expect([enrolled.status, enrolled.body.state]).toEqual([200, 'attested']);
    const [registration] = (await ds.query('SELECT id, secret_sealed FROM attestation_registrations')) as { id: string; secret_sealed: Buffer }[];
    const [credential] = (await ds.query('SELECT credential_id, key_sealed FROM node_credentials')) as { credential_id: string; key_sealed: Buffer }[];
    for (const blob of [registration!.secret_sealed, credential!.key_sealed]) {
      expect(blob.subarray(1, 9).equals(key.kekId)).toBe(true);
    }
    const opened = openEnvelope(key, `node-credential:${credential!.credential_id}`, credential!.key_sealed);
    expect(opened.reveal().equals(enrolled.credential.key.reveal())).toBe(true);
    // Not under the env key the deployment would otherwise have used (the development key).
    const envKeys = new MasterKeys(new EnvMasterKey(new SecretBytes(testConfig(db, prefix.prefix).masterKey.key!.reveal())));
    expect(() => openEnvelope(envKeys, `node-credential:${credential!.credential_id}`, credential!.key_sealed)).toThrow(EnvelopeKeyMismatchError);

    const self = nodeApiPath('self');
    const headers = signNodeRequest({ credential: enrolled.credential, method: 'GET', path: self, body: Buffer.alloc(0), now: new Date(), nonce: randomBytes(16) });
    const response = await request(app.getHttpServer()).get(self).set(headers);
    expect([response.status, response.body.serial, response.body.state]).toEqual([200, 'SN-HSM', 'attested']);
  });
});
