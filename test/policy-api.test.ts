/**
 * PCR policies per machine group (issue 12 item 3): the operator API (GET/PUT/DELETE
 * /v1/groups/:group/policy, POST …/promote) and `rackseal policy set|show|promote`, against a real
 * PostgreSQL and machines attested in-process on swtpm (test/support/attestation-agent.ts). The
 * canary flow end to end: a group without a policy quarantines its canary and keeps its evidence;
 * promoting it lets it attest; a second machine whose PCR 4 was extended otherwise is quarantined
 * with the event that diverged, shown by the API and `machines show`; a `warn` policy attests it
 * with the drift recorded. Every refusal with its code and its audit record (or none).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { type GroupPolicy, type MachineDetail, POLICY_BODY_LIMIT_BYTES, type PolicyPromotion } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { InventoryImporter } from '@rackseal/inventory';
import { MachinesRepository } from '@rackseal/machines';
import { nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { EV, marshalEventLog, parseEventLog, replayEventLog } from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { answer, b64, bootWith, withAgent } from './support/attestation-agent';
import { runRacksealCliAsync } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { fixturePath } from './support/fixtures';
import { RawUpload } from './support/raw-upload';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(120_000);

/** A real firmware log (test/fixtures/SOURCES.md): what the canary's firmware measured. */
const CANARY_LOG = readFileSync(fixturePath('eventlogs', 'crypto_agile_eventlog'));
const SRTM = [0, 1, 2, 3, 4, 5, 6, 7];
const CANARY_VALUES = replayEventLog(parseEventLog(CANARY_LOG)).banks.get('sha256')!;
/** The first boot application measured into PCR 4: the second machine boots another one. */
const BOOT_APP = parseEventLog(CANARY_LOG).events.find((e) => e.pcrIndex === 4 && e.eventType === EV.EV_EFI_BOOT_SERVICES_APPLICATION)!;

/** The canary's log with the boot application's SHA-256 digest changed (another bootloader). */
function otherBootloaderLog(): Buffer {
  const log = parseEventLog(CANARY_LOG);
  const events = log.events.map((event) =>
    event.index !== BOOT_APP.index ? event : { ...event, digests: event.digests.map((d) => ({ ...d, digest: Buffer.from(d.digest.map((byte) => byte ^ 0xff)) })) },
  );
  return marshalEventLog({ specId: log.specId, events });
}

const START = nodeApiPath('attestations');
const finishPath = (id: string) => nodeApiPath(`attestations/${id}/finish`);
const EXPLANATION = `PCR 4: event #${BOOT_APP.index} EV_EFI_BOOT_SERVICES_APPLICATION digest differs`;

describe('PCR policy operator API and CLI (issue 12 item 3)', () => {
  const fixture = useSwtpms(2);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let baseUrl: string;
  let ds: DataSource;
  let tpmCanary: SwtpmMachine;
  let tpmSecond: SwtpmMachine;
  let work: string;
  const tokens: Record<'admin' | 'inventoryRead' | 'policyRead' | 'policyWrite', string> = {} as never;

  beforeAll(async () => {
    expect(BOOT_APP).toBeDefined();
    tpmCanary = fixture.at(0);
    tpmSecond = fixture.at(1);
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }))] }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    work = mkdtempSync(join(tmpdir(), 'rackseal-policy-'));
    const issue = async (name: string, scope: string) => (await app.get(ApiTokens).issue(name, [scope], 'test')).token;
    tokens.admin = await issue('admin', 'admin');
    tokens.inventoryRead = await issue('reader', 'inventory:read');
    tokens.policyRead = await issue('policy-reader', 'policy:read');
    tokens.policyWrite = await issue('policy-writer', 'policy:write');

    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
    const spare = () => fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const csv = [
      'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash',
      `SN-CANARY,,,racks,${b64(await tpmCanary.rsaEkCertDer())},`,
      `SN-SECOND,,,racks,${b64(await tpmSecond.rsaEkCertDer())},`,
      `SN-NEVER,,,racks,${b64(await spare())},`,
      `SN-REVOKED,,,racks,${b64(await spare())},`,
      `SN-OTHER,,,storage,${b64(await spare())},`,
    ].join('\n');
    const summary = await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
    expect(summary).toMatchObject({ status: 'succeeded' });
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    if (work !== undefined) {
      rmSync(work, { recursive: true, force: true });
    }
  });

  const http = (method: 'get' | 'put' | 'post' | 'delete', path: string, token = tokens.admin) => request(app.getHttpServer())[method](path).set('Authorization', `Bearer ${token}`);
  const cli = (...args: string[]) => runRacksealCliAsync([...args, '--server', baseUrl], { env: { RACKSEAL_TOKEN: tokens.admin } });
  const auditCount = async (action: string) => Number(((await ds.query('SELECT count(*) AS n FROM audit_log WHERE action = $1', [action])) as { n: string }[])[0]!.n);
  const lastAudit = async (action: string) =>
    ((await ds.query('SELECT actor, subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1', [action])) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[])[0]!;
  const stateOf = async (serial: string) => ((await ds.query('SELECT state FROM machines WHERE serial = $1', [serial])) as { state: string }[])[0]!.state;

  /** One whole attestation of the machine's RSA EK, sending `eventLog`: the finish answer. */
  async function attest(tpm: SwtpmMachine, eventLog: Buffer): Promise<request.Response> {
    return withAgent(tpm, 'rsa-2048', async (agent) => {
      const started = await request(app.getHttpServer()).post(START).set('Content-Type', 'application/json').send({ ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
      expect(started.status).toBe(201);
      const start = started.body as StartAttestationResponse;
      const { body } = await answer(agent, start);
      return request(app.getHttpServer()).post(finishPath(start.registrationId)).set('Content-Type', 'application/json').send({ ...body, eventLog: b64(eventLog) });
    });
  }

  /** Boots the swtpm afresh with the log's events, then attests sending that log. */
  async function bootAndAttest(tpm: SwtpmMachine, log: Buffer): Promise<request.Response> {
    await tpm.reboot();
    await bootWith(tpm, log);
    return attest(tpm, log);
  }

  // The tests run in order: each step of the canary flow builds on the one before.

  it('a group without a policy: the canary is quarantined (attestation.no-policy) and its evidence kept', async () => {
    expect((await http('get', '/v1/groups/racks/policy')).body).toMatchObject({ code: 'policy.not-found' });
    const response = await bootAndAttest(tpmCanary, CANARY_LOG);
    expect([response.status, response.body.code]).toEqual([409, 'attestation.no-policy']);
    expect(await stateOf('SN-CANARY')).toBe('quarantined');
    const [evidence] = (await ds.query(
      `SELECT e.pcr_bank, e.pcr_values, e.event_log, r.outcome FROM attestation_evidence e JOIN attestation_registrations r ON r.id = e.registration_id
       JOIN machines m ON m.id = e.machine_id WHERE m.serial = 'SN-CANARY'`,
    )) as { pcr_bank: string; pcr_values: Record<string, string>; event_log: Buffer; outcome: string }[];
    expect(evidence!.outcome).toBe('quarantined');
    expect(evidence!.pcr_bank).toBe('sha256');
    expect(evidence!.pcr_values).toEqual(Object.fromEntries(SRTM.map((pcr) => [String(pcr), CANARY_VALUES.get(pcr)!.toString('hex')])));
    expect(evidence!.event_log.equals(CANARY_LOG)).toBe(true);
  });

  it('a refused finish (a log that does not replay) keeps no evidence', async () => {
    const before = Number(((await ds.query('SELECT count(*) AS n FROM attestation_evidence')) as { n: string }[])[0]!.n);
    await tpmSecond.reboot();
    // The swtpm measured nothing: the canary's log does not replay to its quote.
    const response = await attest(tpmSecond, CANARY_LOG);
    expect([response.status, response.body.code]).toEqual([400, 'attestation.event-log-mismatch']);
    expect(Number(((await ds.query('SELECT count(*) AS n FROM attestation_evidence')) as { n: string }[])[0]!.n)).toBe(before);
  });

  it('promote over HTTP creates the policy from the canary\'s evidence, audited; the canary re-attests → attested', async () => {
    const response = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-CANARY', label: 'current' });
    expect(response.status).toBe(200);
    const promotion = response.body as PolicyPromotion;
    expect(promotion).toMatchObject({ created: true, replaced: false, label: 'current', machine: { serial: 'SN-CANARY' } });
    const policy = promotion.policy.policy;
    expect(policy).toEqual({
      bank: 'sha256',
      pcrs: SRTM,
      mode: 'enforce',
      allowedSets: [
        {
          label: 'current',
          values: Object.fromEntries(SRTM.map((pcr) => [String(pcr), CANARY_VALUES.get(pcr)!.toString('hex')])),
          promotedFrom: { machine: 'SN-CANARY', at: promotion.evidenceAt, eventLog: b64(CANARY_LOG) },
        },
      ],
    });
    expect(promotion.policy.digest).toBe(createHash('sha256').update(JSON.stringify(policy)).digest('hex'));
    const audit = await lastAudit('policy.promoted');
    expect(audit).toMatchObject({ outcome: 'success', subject: 'group:racks', details: expect.objectContaining({ label: 'current', serial: 'SN-CANARY', digest: promotion.policy.digest, created: true }) });
    expect(JSON.stringify(audit.details)).not.toContain(b64(CANARY_LOG).slice(0, 64));

    const again = await bootAndAttest(tpmCanary, CANARY_LOG);
    expect([again.status, again.body.state, again.body.policy]).toEqual([200, 'attested', { decision: 'match', matchedSet: 'current', summary: [] }]);
  });

  it('promote with the CLI replaces the set; policy show prints mode, bank, PCRs and the set\'s origin', async () => {
    const run = await cli('policy', 'promote', 'racks', '--machine', 'SN-CANARY', '--label', 'current');
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toContain('promoted machine SN-CANARY');
    expect(run.stdout).toContain('replaced set "current"');
    expect((await lastAudit('policy.promoted')).details).toMatchObject({ replaced: true, created: false });

    const show = await cli('policy', 'show', 'racks');
    expect(show.status).toBe(0);
    const pcr4 = CANARY_VALUES.get(4)!.toString('hex');
    expect(show.stdout).toMatch(/^mode: +enforce \(a mismatch quarantines\)$/m);
    expect(show.stdout).toMatch(/^bank: +sha256$/m);
    expect(show.stdout).toMatch(/^PCRs: +0,1,2,3,4,5,6,7$/m);
    expect(show.stdout).toContain(`  current: promoted from SN-CANARY at `);
    expect(show.stdout).toContain(`event log ${CANARY_LOG.length} bytes`);
    expect(show.stdout).toMatch(new RegExp(`^ {4}4 +${pcr4.slice(0, 8)}…${pcr4.slice(-4)}$`, 'm'));
    expect(show.stdout).not.toContain(pcr4);
  });

  it('a second machine whose PCR 4 was extended with another bootloader: quarantined, the diverging event shown by the API and machines show', async () => {
    const response = await bootAndAttest(tpmSecond, otherBootloaderLog());
    expect([response.status, response.body.code]).toEqual([409, 'attestation.policy-mismatch']);
    expect(await stateOf('SN-SECOND')).toBe('quarantined');

    const detail = (await http('get', '/v1/machines/SN-SECOND')).body as MachineDetail;
    expect(detail.lastFailure).toMatchObject({ code: 'attestation.policy-mismatch', explanation: expect.arrayContaining([expect.stringContaining(EXPLANATION)]) });

    const show = await cli('machines', 'show', 'SN-SECOND');
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('why it failed:');
    expect(show.stdout).toContain(`  ${EXPLANATION}`);
  });

  it('set/show round trip with the CLI, then warn mode: the second machine is attested with the drift recorded', async () => {
    const shown = await cli('policy', 'show', 'racks', '--json');
    const current = JSON.parse(shown.stdout) as GroupPolicy;
    const file = join(work, 'warn.json');
    writeFileSync(file, JSON.stringify({ ...current.policy, mode: 'warn' }));
    const set = await cli('policy', 'set', 'racks', '--file', file, '--json');
    expect([set.status, set.stderr]).toEqual([0, '']);
    const stored = JSON.parse(set.stdout) as GroupPolicy;
    expect(stored.policy).toEqual({ ...current.policy, mode: 'warn' });
    const again = JSON.parse((await cli('policy', 'show', 'racks', '--json')).stdout) as GroupPolicy;
    // show --json carries the group's attestation interval beside the policy answer (test/group-intervals.test.ts).
    expect(again).toEqual({ ...stored, attestationInterval: expect.objectContaining({ group: 'racks', source: 'fleet-default' }) });
    expect(await lastAudit('policy.set')).toMatchObject({ outcome: 'success', details: expect.objectContaining({ digest: stored.digest, previousDigest: current.digest, mode: 'warn' }) });

    const response = await bootAndAttest(tpmSecond, otherBootloaderLog());
    expect([response.status, response.body.state, response.body.policy.decision]).toEqual([200, 'attested', 'mismatch']);
    expect(response.body.policy.summary).toEqual(expect.arrayContaining([expect.stringContaining(EXPLANATION)]));
    expect(await stateOf('SN-SECOND')).toBe('attested');
    expect((await lastAudit('attestation.succeeded')).details).toMatchObject({ drift: expect.arrayContaining([expect.stringContaining(EXPLANATION)]) });
  });

  describe('refusals', () => {
    it('PUT: malformed JSON and refused fields are 400s naming the problem, nothing written or audited', async () => {
      const before = await auditCount('policy.set');
      const digest = ((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).digest;
      const raw = await http('put', '/v1/groups/racks/policy').set('Content-Type', 'application/json').send('{"bank":');
      expect([raw.status, raw.body.code]).toEqual([400, 'request.invalid']);
      const base = ((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).policy;
      const cases: [unknown, string][] = [
        [{ ...base, mode: 'enforced' }, 'mode'],
        [{ ...base, bank: 'SHA256' }, 'bank'],
        [{ ...base, colour: 'red' }, 'unknown field "colour"'],
        [{ ...base, allowedSets: [{ ...base.allowedSets[0]!, values: { ...base.allowedSets[0]!.values, '4': 'abcd' } }] }, 'allowedSets[0].values.4'],
        [{ ...base, allowedSets: [] }, 'allowedSets'],
      ];
      for (const [body, field] of cases) {
        const response = await http('put', '/v1/groups/racks/policy').send(body as object);
        expect([response.status, response.body.code, response.body.message]).toEqual([400, 'policy.invalid', expect.stringContaining(field)]);
      }
      const badGroup = await http('put', '/v1/groups/Racks!/policy').send(base);
      expect([badGroup.status, badGroup.body.code]).toEqual([400, 'policy.invalid-group']);
      expect(await auditCount('policy.set')).toBe(before);
      expect(((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).digest).toBe(digest);
    });

    it('PUT takes a body over the general 1 MB limit (canary logs); promote keeps that limit', async () => {
      const base = ((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).policy;
      const big = { ...base, allowedSets: [{ ...base.allowedSets[0]!, promotedFrom: { machine: 'SN-CANARY', at: '2026-12-01T00:00:00.000Z', eventLog: Buffer.alloc(1024 * 1024 + 1).toString('base64') } }] };
      const put = await http('put', '/v1/groups/racks/policy').send(big);
      // Read and refused by parsePcrPolicy (a log over 1 MiB), not by the body parser.
      expect([put.status, put.body.code, put.body.message]).toEqual([400, 'policy.invalid', expect.stringContaining('allowedSets[0].promotedFrom.eventLog')]);
      const promote = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-CANARY', label: 'x'.repeat(1024 * 1024 + 1) });
      expect([promote.status, promote.body.code]).toEqual([413, 'request.too-large']);
    });

    it('PUT reads its body only after the token: a 20 MB body without one is answered 401 before it is sent, with a read-only token 403', async () => {
      const before = await auditCount('policy.set');
      const digest = ((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).digest;
      const declared = 20 * 1024 * 1024;
      // The first 64 KiB of a policy whose canary log fills the rest; the other 19.9 MB are never sent.
      const head = Buffer.from(`{"bank":"sha256","pcrs":[0],"mode":"enforce","allowedSets":[{"label":"x","values":{"0":"${'0'.repeat(64)}"},"promotedFrom":{"machine":"m","at":"2026-12-01T00:00:00.000Z","eventLog":"${'A'.repeat(64 * 1024)}`);
      for (const [headers, status, code] of [
        [{}, 401, 'auth.unauthenticated'],
        [{ Authorization: 'Bearer rks_not-a-token' }, 401, 'auth.unauthenticated'],
        [{ Authorization: `Bearer ${tokens.policyRead}` }, 403, 'auth.forbidden'],
      ] as const) {
        const upload = new RawUpload(baseUrl, '/v1/groups/racks/policy', { ...headers, 'Content-Type': 'application/json', 'Content-Length': declared }, 'PUT');
        await upload.send(head);
        const answer = await upload.response;
        // Answered while the client still owes 20 MB: the server did not wait for the body.
        expect(upload.socket.destroyed).toBe(false);
        upload.socket.destroy();
        expect([answer.status, JSON.parse(answer.body).code]).toEqual([status, code]);
      }
      expect(await auditCount('policy.set')).toBe(before);
      expect(((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).digest).toBe(digest);
    }, 60_000);

    it('PUT over POLICY_BODY_LIMIT_BYTES is 413 request.too-large before a byte of the body is read', async () => {
      const upload = new RawUpload(baseUrl, '/v1/groups/racks/policy', { Authorization: `Bearer ${tokens.policyWrite}`, 'Content-Type': 'application/json', 'Content-Length': POLICY_BODY_LIMIT_BYTES + 1 }, 'PUT');
      const answer = await upload.response;
      upload.socket.destroy();
      expect([answer.status, JSON.parse(answer.body).code, JSON.parse(answer.body).message]).toEqual([413, 'request.too-large', 'request body is too large']);
    });

    it('GET of a group without a policy is 404 policy.not-found (API and CLI)', async () => {
      const response = await http('get', '/v1/groups/nobody/policy');
      expect([response.status, response.body.code]).toEqual([404, 'policy.not-found']);
      const run = await cli('policy', 'show', 'nobody');
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('group nobody has no PCR policy');
    });

    it('promote of a machine in another group, without evidence, revoked: 409s audited as refused; an unknown machine 404, not audited', async () => {
      await app.get(MachinesRepository).revoke(((await ds.query("SELECT id FROM machines WHERE serial = 'SN-REVOKED'")) as { id: string }[])[0]!.id, { reason: 'stolen', actor: 'test' }, new Date());
      for (const [machine, code] of [
        ['SN-OTHER', 'policy.machine-not-in-group'],
        ['SN-NEVER', 'policy.no-evidence'],
        ['SN-REVOKED', 'policy.machine-revoked'],
      ] as const) {
        const before = await auditCount('policy.promoted');
        const response = await http('post', '/v1/groups/racks/policy/promote').send({ machine, label: 'x' });
        expect([machine, response.status, response.body.code]).toEqual([machine, 409, code]);
        expect(await auditCount('policy.promoted')).toBe(before + 1);
        expect(await lastAudit('policy.promoted')).toMatchObject({ outcome: 'refused', details: expect.objectContaining({ code, serial: machine, label: 'x' }) });
      }
      const before = await auditCount('policy.promoted');
      const unknown = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-NOBODY', label: 'x' });
      expect([unknown.status, unknown.body.code]).toEqual([404, 'machine.not-found']);
      const badLabel = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-CANARY', label: ' padded ' });
      expect([badLabel.status, badLabel.body.code]).toEqual([400, 'policy.invalid']);
      expect(await auditCount('policy.promoted')).toBe(before);

      const run = await cli('policy', 'promote', 'racks', '--machine', 'SN-OTHER', '--label', 'x');
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('machine SN-OTHER is in group storage, not racks');
    });

    it('promote refuses another mode for an existing policy, and evidence of another bank', async () => {
      const conflict = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-CANARY', label: 'current', mode: 'enforce' });
      expect([conflict.status, conflict.body.code, conflict.body.message]).toEqual([409, 'policy.shape-conflict', expect.stringContaining('mode enforce')]);
      const previous = ((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).policy;
      const sha1 = { bank: 'sha1', pcrs: [0], mode: 'enforce', allowedSets: [{ label: 'old', values: { '0': '00'.repeat(20) } }] };
      expect((await http('put', '/v1/groups/racks/policy').send(sha1)).status).toBe(200);
      const bank = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-CANARY', label: 'current' });
      expect([bank.status, bank.body.code]).toEqual([409, 'policy.bank-mismatch']);
      expect(await lastAudit('policy.promoted')).toMatchObject({ outcome: 'refused', details: expect.objectContaining({ code: 'policy.bank-mismatch' }) });
      expect((await http('put', '/v1/groups/racks/policy').send(previous)).status).toBe(200);
    });

    it('scopes: policy:read reads, policy:write writes and reads; inventory:read does neither', async () => {
      const body = ((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).policy;
      expect((await http('get', '/v1/groups/racks/policy', tokens.policyRead)).status).toBe(200);
      expect((await http('get', '/v1/groups/racks/policy', tokens.policyWrite)).status).toBe(200);
      const denied = await http('get', '/v1/groups/racks/policy', tokens.inventoryRead);
      expect([denied.status, denied.body.code]).toEqual([403, 'auth.forbidden']);
      expect(denied.body.message).toContain('policy:read');
      const before = await auditCount('policy.set');
      const put = await http('put', '/v1/groups/racks/policy', tokens.policyRead).send(body);
      expect([put.status, put.body.code]).toEqual([403, 'auth.forbidden']);
      const promote = await http('post', '/v1/groups/racks/policy/promote', tokens.policyRead).send({ machine: 'SN-CANARY', label: 'current' });
      expect([promote.status, promote.body.code]).toEqual([403, 'auth.forbidden']);
      expect(await auditCount('policy.set')).toBe(before);
      expect((await http('put', '/v1/groups/racks/policy', tokens.policyWrite).send(body)).status).toBe(200);
      expect(await auditCount('policy.set')).toBe(before + 1);
    });

    it('the CLI refuses a --file that is not JSON before asking the server', async () => {
      const file = join(work, 'broken.json');
      writeFileSync(file, '{"bank":');
      const run = await cli('policy', 'set', 'racks', '--file', file);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('is not JSON');
    });

    it('concurrent promotions into one group both land (the group lock)', async () => {
      const labels = ['rollout-a', 'rollout-b', 'rollout-c', 'rollout-d'];
      const responses = await Promise.all(labels.map((label) => http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-CANARY', label })));
      expect(responses.map((r) => r.status)).toEqual(labels.map(() => 200));
      const sets = ((await http('get', '/v1/groups/racks/policy')).body as GroupPolicy).policy.allowedSets.map((set) => set.label);
      expect(sets).toEqual(expect.arrayContaining(labels));
    });

    it('DELETE removes the policy (audited) and a second DELETE is 404', async () => {
      const removed = await http('delete', '/v1/groups/racks/policy');
      expect([removed.status, removed.body]).toEqual([200, { group: 'racks', removed: true }]);
      expect(await lastAudit('policy.removed')).toMatchObject({ outcome: 'success', subject: 'group:racks' });
      const again = await http('delete', '/v1/groups/racks/policy');
      expect([again.status, again.body.code]).toEqual([404, 'policy.not-found']);
    });
  });
});
