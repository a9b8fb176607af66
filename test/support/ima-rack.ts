import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ApiTokens } from '@rackseal/api-tokens';
import { InventoryImporter } from '@rackseal/inventory';
import { VendorCas } from '@rackseal/vendor-cas';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../../apps/control-plane/src/http/configure-http-app';
import { b64 } from './attestation-agent';
import { FRESH_SWTPM_POLICY } from './attestation-policies';
import { createTestDatabase, openDataSource } from './database';
import { createTestQueuePrefix } from './redis';
import type { SwtpmFixture } from './swtpm';
import { testConfig } from './test-config';

export interface ImaRack<Scope extends string> {
  readonly app: INestApplication;
  readonly ds: DataSource;
  /** `admin`, and one token per scope asked for (named after it). */
  readonly tokens: Record<'admin' | Scope, string>;
  /** An operator API call as `token` (admin unless named), JSON. */
  readonly http: (method: 'get' | 'put' | 'post' | 'delete', path: string, token?: string) => request.Test;
  readonly close: () => Promise<void>;
}

/**
 * The runtime-integrity suites' control plane: in-process on a fresh database and queue prefix, the
 * swtpm fixture's vendor CAs trusted, the inventory holding SN-IMA (the fixture's first TPM) and
 * SN-SPARE in group `racks` (plus `extraRows`: `serial,group`, each with a spare EK), and `racks`
 * given the fresh-swtpm PCR policy.
 */
export async function startImaRack<Scope extends string>(fixture: SwtpmFixture, scopes: Record<Scope, string>, extraRows: readonly string[] = []): Promise<ImaRack<Scope>> {
  const db = await createTestDatabase();
  const prefix = createTestQueuePrefix();
  const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }))] }).compile();
  const app = moduleRef.createNestApplication({ bufferLogs: true });
  app.useLogger(app.get(Logger));
  configureHttpApp(app);
  await app.init();
  const ds = await openDataSource(db.url);
  const close = async () => {
    await app.close();
    await ds.destroy();
    await db.drop();
    await prefix.clear();
  };
  const issue = async (name: string, scope: string) => (await app.get(ApiTokens).issue(name, [scope], 'test')).token;
  const tokens = { admin: await issue('admin', 'admin') } as Record<'admin' | Scope, string>;
  for (const [name, scope] of Object.entries(scopes) as [Scope, string][]) {
    tokens[name] = await issue(name, scope);
  }
  const http = (method: 'get' | 'put' | 'post' | 'delete', path: string, token = tokens.admin) =>
    request(app.getHttpServer())[method](path).set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/json');
  await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
  const spare = async () => b64(await fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
  const extra = await Promise.all(extraRows.map(async (row) => `${row.split(',')[0]!},,,${row.split(',')[1]!},${await spare()},`));
  const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-IMA,,,racks,${b64(await fixture.at(0).rsaEkCertDer())},`, ...extra, `SN-SPARE,,,racks,${await spare()},`].join('\n');
  const imported = await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
  if (imported.status !== 'succeeded') {
    throw new Error(`the IMA rack's inventory did not import: ${JSON.stringify(imported)}`);
  }
  const pcr = await http('put', '/v1/groups/racks/policy').send({ ...FRESH_SWTPM_POLICY, pcrs: [...FRESH_SWTPM_POLICY.pcrs] });
  if (pcr.status !== 200) {
    throw new Error(`the racks PCR policy was refused: ${pcr.status} ${JSON.stringify(pcr.body)}`);
  }
  return { app, ds, tokens, http, close };
}
