/**
 * The audit records of refused enrollment calls (intruder pass, issue 12): a refusal that names no
 * machine of the inventory (unknown EK, malformed body, unknown registration) costs its sender
 * nothing, so it is audited within a per-process budget (per source and in total) and the next
 * record counts those left out; a refusal of a known machine's attestation is always audited and
 * kept on the machine. Every refusal is answered with its code either way. Software keys play the
 * TPM: no refusal here gets as far as a quote. The clock stands still, so the windows are the test's.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { UNIDENTIFIED_REFUSAL_AUDIT_LIMITS } from '@rackseal/attestation';
import { InventoryImporter } from '@rackseal/inventory';
import { nodeApiPath } from '@rackseal/node-api-contracts';
import { Clock } from '@rackseal/platform';
import { AK_TEMPLATE_ECC, ekPubHash, ekPublicFromKey, marshalTpm2bPublic, TPMA_OBJECT, tpmtPublicFromKey } from '@rackseal/tpm2';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

jest.setTimeout(120_000);

const START = nodeApiPath('attestations');
const finishPath = (id: string) => nodeApiPath(`attestations/${id}/finish`);

/** A clock that moves only when the test moves it. */
class StillClock extends Clock {
  at = Date.parse('2026-12-01T10:00:00.000Z');
  now(): Date {
    return new Date(this.at);
  }
}

const b64 = (bytes: Buffer) => bytes.toString('base64');
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
const ekPublicOf = (key = p256()) => b64(marshalTpm2bPublic(ekPublicFromKey(key)));
const akPublic = b64(marshalTpm2bPublic(tpmtPublicFromKey(p256(), AK_TEMPLATE_ECC)));
const unrestrictedAk = b64(marshalTpm2bPublic({ ...tpmtPublicFromKey(p256(), AK_TEMPLATE_ECC), objectAttributes: AK_TEMPLATE_ECC.objectAttributes & ~TPMA_OBJECT.restricted }));

describe('attestation refusals and the audit log (node API)', () => {
  const clock = new StillClock();
  const knownEk = p256();
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }))] })
      .overrideProvider(Clock)
      .useValue(clock)
      .compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.init();
    ds = await openDataSource(db.url);
    // A cert-less inventory row: its agent attests with ekPublic.
    const csv = `serial,group,ek_pub_hash\nSN-KNOWN,workers,${ekPubHash(knownEk)}\n`;
    expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(csv)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
  });

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  const post = (path: string, body: string | object) => request(app.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body);
  const refusals = async (code: string) =>
    (await ds.query(`SELECT actor, subject, details FROM audit_log WHERE action = 'attestation.refused' AND details->>'code' = $1 ORDER BY id`, [code])) as {
      actor: string;
      subject: string;
      details: Record<string, unknown>;
    }[];
  const metric = async (code: string) => {
    const text = (await request(app.getHttpServer()).get('/metrics')).text;
    const line = text.split('\n').find((l) => l.startsWith(`rackseal_audit_refusals_suppressed_total{action="attestation.refused",kind="${code}"} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };

  it('500 starts with an unknown EK: 500 answers 404 attestation.unknown-ek, the budget of records, then one counting the rest', async () => {
    const { perSource, perWindow, windowMs } = UNIDENTIFIED_REFUSAL_AUDIT_LIMITS;
    expect(perSource).toBeLessThan(perWindow);
    for (let i = 0; i < 500; i++) {
      const response = await post(START, { ekPublic: ekPublicOf(), akPublic });
      expect([i, response.status, response.body.code]).toEqual([i, 404, 'attestation.unknown-ek']);
    }
    // All from one address: its budget, not the process's.
    const recorded = await refusals('attestation.unknown-ek');
    expect(recorded).toHaveLength(perSource);
    expect(recorded.every((r) => r.details.suppressed === undefined && /^machine:[0-9a-f]{64}$/.test(r.actor))).toBe(true);
    expect(await metric('attestation.unknown-ek')).toBe(500 - perSource);

    // The next window: the first record says how many were left out before it.
    clock.at += windowMs;
    const next = await post(START, { ekPublic: ekPublicOf(), akPublic });
    expect([next.status, next.body.code]).toEqual([404, 'attestation.unknown-ek']);
    const after = await refusals('attestation.unknown-ek');
    expect(after).toHaveLength(perSource + 1);
    expect(after.at(-1)!.details).toMatchObject({ step: 'start', code: 'attestation.unknown-ek', suppressed: 500 - perSource });
  });

  it('malformed bodies and unknown registrations have a budget each; every one is answered with its code', async () => {
    const { perSource } = UNIDENTIFIED_REFUSAL_AUDIT_LIMITS;
    for (let i = 0; i < 3 * perSource; i++) {
      const malformed = await post(START, { ekPublic: ekPublicOf(), akPublic: b64(Buffer.alloc(40, 1)) });
      expect([malformed.status, malformed.body.code]).toEqual([400, 'attestation.malformed']);
      const unknown = await post(finishPath(randomUUID()), { activationProof: b64(Buffer.alloc(32)), quote: { attest: 'AA==', signature: 'AA==' }, pcrValues: 'AA==' });
      expect([unknown.status, unknown.body.code]).toEqual([404, 'attestation.unknown-registration']);
    }
    expect(await refusals('attestation.malformed')).toHaveLength(perSource);
    expect(await refusals('attestation.unknown-registration')).toHaveLength(perSource);
    expect(await metric('attestation.malformed')).toBe(2 * perSource);
  });

  it('a known machine\'s refused attestations are all audited and kept on the machine, however many', async () => {
    const { perWindow } = UNIDENTIFIED_REFUSAL_AUDIT_LIMITS;
    const count = perWindow + 10;
    for (let i = 0; i < count; i++) {
      const response = await post(START, { ekPublic: ekPublicOf(knownEk), akPublic: unrestrictedAk });
      expect([i, response.status, response.body.code]).toEqual([i, 400, 'attestation.ak-rejected']);
    }
    const recorded = await refusals('attestation.ak-rejected');
    expect(recorded).toHaveLength(count);
    expect(recorded.every((r) => r.subject === 'machine:SN-KNOWN')).toBe(true);
    const [row] = (await ds.query(`SELECT last_failure FROM machines WHERE serial = 'SN-KNOWN'`)) as { last_failure: { code: string } }[];
    expect(row!.last_failure).toMatchObject({ code: 'attestation.ak-rejected' });
    expect(await metric('attestation.ak-rejected')).toBe(0);
  });

  it.each(['null', '[]', '"x"', '42'])('a start with the JSON body %s: 400 request.invalid, the request body must be a JSON object', async (body) => {
    const response = await post(START, body);
    expect([response.status, response.body.code, response.body.message]).toEqual([400, 'request.invalid', 'the request body must be a JSON object']);
  });
});
