/**
 * The runtime verdict on the dashboard (issue 17): a machine of a group with a runtime policy in
 * warn mode attests (in-process on swtpm) with a file its allowlist lacks; its page in Debian's
 * Chromium (playwright-core) shows the "Runtime integrity (IMA)" section — fails, warn mode, the
 * entries checked — and the failed entry's file, digest and rule, as GET …/evidence has them.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { ApiTokens } from '@rackseal/api-tokens';
import { buildImaEntry, entryExtend, type ImaEntry, marshalBinaryEntry } from '@rackseal/ima';
import { InventoryImporter } from '@rackseal/inventory';
import { nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { VendorCas } from '@rackseal/vendor-cas';
import { type Browser, chromium } from 'playwright-core';
import request from 'supertest';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { answer, b64, withAgent } from './support/attestation-agent';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { createTestDatabase, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(180_000);

const CHROMIUM = { executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] };
const sha256 = (text: string) => createHash('sha256').update(text).digest();
const file = (path: string, index: number): ImaEntry => buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(path), name: path }, index);

describe('the runtime verdict on the machine page (issue 17)', () => {
  const fixture = useSwtpms(1);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let baseUrl: string;
  let browser: Browser;
  let viewer: string;
  const list = [file('/usr/bin/bash', 0), file('/usr/bin/evil', 1)];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    const admin = (await app.get(ApiTokens).issue('admin', ['admin'], 'test')).token;
    viewer = (await app.get(ApiTokens).issue('viewer', ['inventory:read', 'policy:read'], 'test')).token;
    const tpm = fixture.at(0);
    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
    const csv = `serial,asset_tag,hostname,group,ek_cert,ek_pub_hash\nSN-RUNTIME,,,racks,${b64(await tpm.rsaEkCertDer())},\n`;
    expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(csv)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
    const http = (method: 'put', path: string, body: object) => request(app.getHttpServer())[method](path).set('Authorization', `Bearer ${admin}`).send(body);
    expect((await http('put', '/v1/groups/racks/policy', { ...FRESH_SWTPM_POLICY, pcrs: [...FRESH_SWTPM_POLICY.pcrs] })).status).toBe(200);
    const runtime = { meta: { version: 1 }, digests: { '/usr/bin/bash': [sha256('/usr/bin/bash').toString('hex')] } };
    expect((await http('put', '/v1/groups/racks/runtime-policy', { policy: runtime, mode: 'warn' })).status).toBe(200);
    for (const entry of list) {
      await tpm.extendPcr(10, 'sha256', entryExtend(entry, { bank: 'sha256' }).extend.toString('hex'));
    }
    const finished = await withAgent(tpm, 'rsa-2048', async (agent) => {
      const started = await request(app.getHttpServer()).post(nodeApiPath('attestations')).set('Content-Type', 'application/json').send({ ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
      const start = started.body as StartAttestationResponse;
      const { body } = await answer(agent, start);
      const ima = { firstEntry: 0, entries: b64(Buffer.concat(list.map(marshalBinaryEntry))) };
      return request(app.getHttpServer()).post(nodeApiPath(`attestations/${start.registrationId}/finish`)).set('Content-Type', 'application/json').send({ ...body, ima });
    });
    expect([finished.status, finished.body.ima?.decision]).toEqual([200, 'fail']);
    browser = await chromium.launch(CHROMIUM);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.drop();
    await prefix?.clear();
  });

  it('shows the verdict and the failed entry: file, digest, rule', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${baseUrl}/ui/`);
    await page.getByLabel('Operator token').fill(viewer);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Fleet overview' }).waitFor();
    await page.goto(`${baseUrl}/ui/#/machines/SN-RUNTIME`);
    await page.getByRole('heading', { level: 2, name: 'Runtime integrity (IMA)' }).waitFor();
    const section = page.getByRole('region', { name: 'Runtime integrity (IMA)' });
    const text = await section.textContent();
    expect(text).toContain('≠ fails the runtime policy (mode warn');
    expect(text).toContain('Recorded only (warn mode): the machine stays attested.');
    const row = page.getByRole('table', { name: /Failed entries \(1\)/ }).getByRole('row').nth(1);
    expect(await row.getByRole('cell').allTextContents()).toEqual(['1', '/usr/bin/evil', `sha256:${sha256('/usr/bin/evil').toString('hex')}`, 'not-in-allowlist (digests)']);
    await context.close();
  });
});
