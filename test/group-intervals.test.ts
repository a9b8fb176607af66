/**
 * Per-group attestation intervals (issue 12 item 7, "machines not attested within their group's
 * interval are flagged") on a real control plane and PostgreSQL, with two machines enrolled on
 * swtpm in two groups: `fast` (15 min, set with the CLI) and `slow` (2 h, set over HTTP), plus a
 * machine without a group that never attested (the fleet default, 24 h) and a revoked one. The
 * clock moves so that one group's machine is overdue and the other's is not, and each view must
 * say so: GET /node/v1/self's due time and `reattest`, GET /v1/machines?overdue=true and
 * `rackseal machines list --overdue`, and the per-group gauges of /metrics. Then the refusals
 * (out-of-range intervals, bad group names, scopes), each writing nothing, and the audit records of
 * every change.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { GroupAttestationInterval, GroupAttestationIntervalRemoval, GroupPolicy, Machine } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { PcrPolicySource } from '@rackseal/attestation';
import { InventoryImporter } from '@rackseal/inventory';
import { MachinesRepository } from '@rackseal/machines';
import { nodeApiPath } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { Clock } from '@rackseal/platform';
import { VendorCas } from '@rackseal/vendor-cas';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { FRESH_SWTPM_POLICY, MovableClock, TestPolicies } from './support/attestation-policies';
import { runRacksealCliAsync } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { b64, enroll } from './support/enrollment';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(120_000);

const SELF = nodeApiPath('self');
const MINUTE_MS = 60_000;
const FLEET_DEFAULT_S = 86_400;

describe('per-group attestation intervals (PUT /v1/groups/:group/interval, ?overdue=true, /metrics, GET /node/v1/self)', () => {
  const fixture = useSwtpms(1, { p256: true });
  const clock = new MovableClock();
  const policies = new TestPolicies();
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let baseUrl: string;
  let ds: DataSource;
  const tokens: Record<'admin' | 'policyRead' | 'policyWrite' | 'inventoryRead', { token: string; id: string }> = {} as never;
  const credential: Record<string, NodeCredential> = {};

  beforeAll(async () => {
    const tpm = fixture.at(0);
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
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    const issue = async (name: string, scope: string) => {
      const issued = await app.get(ApiTokens).issue(name, [scope], 'test');
      return { token: issued.token, id: issued.id };
    };
    tokens.admin = await issue('admin', 'admin');
    tokens.policyRead = await issue('policy-reader', 'policy:read');
    tokens.policyWrite = await issue('policy-writer', 'policy:write');
    tokens.inventoryRead = await issue('reader', 'inventory:read');

    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], {
      addedBy: 'test',
    });
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-FAST,,,fast,${b64(await tpm.rsaEkCertDer())},`, `SN-SLOW,,,slow,${b64(await tpm.p256EkCertDer())},`].join('\n');
    const summary = await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
    expect(summary).toMatchObject({ status: 'succeeded' });
    // Never attested and without a group (the fleet default), and a revoked machine of `fast` (never listed or counted).
    for (const [serial, group] of [['SN-LOOSE', null], ['SN-GONE', 'fast']] as const) {
      await ds.query(`INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, $3, $4, 'imported', now(), now())`, [
        randomUUID(),
        serial,
        group,
        randomBytes(32).toString('hex'),
      ]);
    }
    const gone = ((await ds.query("SELECT id FROM machines WHERE serial = 'SN-GONE'")) as { id: string }[])[0]!.id;
    await app.get(MachinesRepository).revoke(gone, { reason: 'decommissioned', actor: 'test' }, new Date());
    policies.byGroup.set('fast', FRESH_SWTPM_POLICY);
    policies.byGroup.set('slow', FRESH_SWTPM_POLICY);
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  const http = (method: 'get' | 'put' | 'delete', path: string, token = tokens.admin.token) => request(app.getHttpServer())[method](path).set('Authorization', `Bearer ${token}`);
  const cli = (...args: string[]) => runRacksealCliAsync([...args, '--server', baseUrl], { env: { RACKSEAL_TOKEN: tokens.admin.token } });
  const auditOf = async (action: string) =>
    (await ds.query('SELECT actor, subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY id', [action])) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[];
  const intervalAudits = async () => Number(((await ds.query("SELECT count(*)::int AS n FROM audit_log WHERE action LIKE 'policy.interval-%'")) as { n: number }[])[0]!.n);
  const storedIntervals = async () => (await ds.query('SELECT group_name, interval_seconds FROM group_attestation_intervals ORDER BY group_name')) as { group_name: string; interval_seconds: number }[];
  const lastAttested = async (serial: string) => ((await ds.query('SELECT last_attested_at FROM machines WHERE serial = $1', [serial])) as { last_attested_at: Date }[])[0]!.last_attested_at;

  const self = (serial: string) =>
    request(app.getHttpServer())
      .get(SELF)
      .set(signNodeRequest({ credential: credential[serial]!, method: 'GET', path: SELF, body: Buffer.alloc(0), now: clock.now(), nonce: randomBytes(16) }));
  const overdueSerials = async () => {
    const response = await http('get', '/v1/machines?overdue=true', tokens.inventoryRead.token);
    expect(response.status).toBe(200);
    return (response.body as Machine[]).map((m) => m.serial);
  };
  const machineGauges = async () => {
    const response = await request(app.getHttpServer()).get('/metrics');
    expect(response.status).toBe(200);
    return (response.text as string).split('\n').filter((l) => /^rackseal_(group_|machines_not_attested|machine_attestation)/.test(l));
  };

  it('sets the intervals: fast 15m with the CLI, slow 2 h over HTTP; each audited with the previous value; GET answers the fleet default for a group without one', async () => {
    const fresh = await http('get', '/v1/groups/fast/interval', tokens.policyRead.token);
    expect([fresh.status, fresh.body]).toEqual([
      200,
      { group: 'fast', attestationIntervalSeconds: FLEET_DEFAULT_S, source: 'fleet-default', fleetDefaultSeconds: FLEET_DEFAULT_S, updatedAt: null, updatedBy: null },
    ]);

    const run = await cli('policy', 'set', 'fast', '--interval', '15m');
    expect([run.status, run.stderr, run.stdout]).toEqual([0, '', 'set the attestation interval of group fast to 15m\n']);
    const put = await http('put', '/v1/groups/slow/interval', tokens.policyWrite.token).send({ attestationIntervalSeconds: 7200 });
    expect([put.status, put.body]).toEqual([
      200,
      { group: 'slow', attestationIntervalSeconds: 7200, source: 'group', fleetDefaultSeconds: FLEET_DEFAULT_S, updatedAt: expect.any(String), updatedBy: `token:${tokens.policyWrite.id}` },
    ]);
    expect(await storedIntervals()).toEqual([
      { group_name: 'fast', interval_seconds: 900 },
      { group_name: 'slow', interval_seconds: 7200 },
    ]);
    expect(await auditOf('policy.interval-set')).toEqual([
      { actor: `token:${tokens.admin.id}`, subject: 'group:fast', outcome: 'success', details: { group: 'fast', attestationIntervalSeconds: 900, previousSeconds: null, fleetDefaultSeconds: FLEET_DEFAULT_S } },
      { actor: `token:${tokens.policyWrite.id}`, subject: 'group:slow', outcome: 'success', details: { group: 'slow', attestationIntervalSeconds: 7200, previousSeconds: null, fleetDefaultSeconds: FLEET_DEFAULT_S } },
    ]);
  });

  it('GET /node/v1/self: each machine\'s next attestation is due after its own group\'s interval', async () => {
    for (const [serial, kind] of [['SN-FAST', 'rsa-2048'], ['SN-SLOW', 'ecc-p256']] as const) {
      const enrolled = await enroll(app, fixture.at(0), kind);
      expect(enrolled.status).toBe(200);
      credential[serial] = enrolled.credential;
    }
    for (const [serial, seconds] of [['SN-FAST', 900], ['SN-SLOW', 7200]] as const) {
      const last = await lastAttested(serial);
      const response = await self(serial);
      expect([response.status, response.body.lastAttestedAt, response.body.nextAttestationDue, response.body.reattest]).toEqual([
        200,
        last.toISOString(),
        new Date(last.getTime() + seconds * 1000).toISOString(),
        false,
      ]);
    }
    // Nothing overdue but the machine that never attested.
    expect(await overdueSerials()).toEqual(['SN-LOOSE']);
  });

  it('20 minutes later only the fast group\'s machine is overdue: self, the list filter (API and CLI) and the gauges agree', async () => {
    clock.offsetMs = 20 * MINUTE_MS;
    // A group with an interval and no machine yet is exported too (0 overdue).
    await http('put', '/v1/groups/spare/interval').send({ attestationIntervalSeconds: 60 }).expect(200);
    expect((await self('SN-FAST')).body.reattest).toBe(true);
    expect((await self('SN-SLOW')).body.reattest).toBe(false);

    expect(await overdueSerials()).toEqual(['SN-FAST', 'SN-LOOSE']);
    // Combined with the other filters, and paged like the rest of the list.
    expect((await http('get', '/v1/machines?overdue=true&group=fast').expect(200)).body.map((m: Machine) => m.serial)).toEqual(['SN-FAST']);
    expect((await http('get', '/v1/machines?overdue=true&limit=1').expect(200)).body.map((m: Machine) => m.serial)).toEqual(['SN-FAST']);
    expect((await http('get', '/v1/machines?overdue=true&after=SN-FAST').expect(200)).body.map((m: Machine) => m.serial)).toEqual(['SN-LOOSE']);
    // The "not attested since T" filter is unchanged: T just before both enrollments finds neither enrolled machine.
    const since = new Date(Math.min((await lastAttested('SN-FAST')).getTime(), (await lastAttested('SN-SLOW')).getTime()) - 1000).toISOString();
    expect((await http('get', `/v1/machines?notAttestedSince=${encodeURIComponent(since)}`).expect(200)).body.map((m: Machine) => m.serial)).toEqual(['SN-LOOSE']);

    const run = await cli('machines', 'list', '--overdue', '--json');
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect((JSON.parse(run.stdout) as Machine[]).map((m) => m.serial)).toEqual(['SN-FAST', 'SN-LOOSE']);

    expect(await machineGauges()).toEqual([
      'rackseal_machines_not_attested_within_interval{state="imported"} 1',
      'rackseal_machines_not_attested_within_interval{state="attesting"} 0',
      'rackseal_machines_not_attested_within_interval{state="attested"} 1',
      'rackseal_machines_not_attested_within_interval{state="quarantined"} 0',
      `rackseal_machine_attestation_interval_seconds ${FLEET_DEFAULT_S}`,
      'rackseal_group_machines_not_attested_within_interval{group=""} 1',
      'rackseal_group_machines_not_attested_within_interval{group="fast"} 1',
      'rackseal_group_machines_not_attested_within_interval{group="slow"} 0',
      'rackseal_group_machines_not_attested_within_interval{group="spare"} 0',
      `rackseal_group_attestation_interval_seconds{group=""} ${FLEET_DEFAULT_S}`,
      'rackseal_group_attestation_interval_seconds{group="fast"} 900',
      'rackseal_group_attestation_interval_seconds{group="slow"} 7200',
      'rackseal_group_attestation_interval_seconds{group="spare"} 60',
    ]);
  });

  it('3 hours later the slow group\'s machine is overdue too', async () => {
    clock.offsetMs = 3 * 60 * MINUTE_MS;
    expect((await self('SN-SLOW')).body.reattest).toBe(true);
    expect(await overdueSerials()).toEqual(['SN-FAST', 'SN-LOOSE', 'SN-SLOW']);
    expect(await machineGauges()).toContain('rackseal_group_machines_not_attested_within_interval{group="slow"} 1');
  });

  it('policy set --interval default puts slow back on the fleet default (audited once; a second time changes nothing); policy show prints the interval', async () => {
    const run = await cli('policy', 'set', 'slow', '--interval', 'default', '--json');
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect(JSON.parse(run.stdout)).toEqual({
      attestationInterval: { group: 'slow', attestationIntervalSeconds: FLEET_DEFAULT_S, source: 'fleet-default', fleetDefaultSeconds: FLEET_DEFAULT_S, updatedAt: null, updatedBy: null },
    });
    expect(await auditOf('policy.interval-removed')).toEqual([
      { actor: `token:${tokens.admin.id}`, subject: 'group:slow', outcome: 'success', details: { group: 'slow', previousSeconds: 7200, fleetDefaultSeconds: FLEET_DEFAULT_S } },
    ]);
    const again = await http('delete', '/v1/groups/slow/interval');
    expect([again.status, (again.body as GroupAttestationIntervalRemoval).changed]).toEqual([200, false]);
    expect(await auditOf('policy.interval-removed')).toHaveLength(1);
    // 3 hours is within the fleet default: slow is no longer overdue, and self's due time follows.
    expect(await overdueSerials()).toEqual(['SN-FAST', 'SN-LOOSE']);
    const last = await lastAttested('SN-SLOW');
    expect((await self('SN-SLOW')).body).toMatchObject({ nextAttestationDue: new Date(last.getTime() + FLEET_DEFAULT_S * 1000).toISOString(), reattest: false });

    // policy show: the interval line, then the policy; --json carries it beside the policy answer.
    await http('put', '/v1/groups/fast/policy').send(FRESH_SWTPM_POLICY).expect(200);
    const show = await cli('policy', 'show', 'fast');
    expect(show.status).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^attestation interval: 15m \\(the group's own, set \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ by token:${tokens.admin.id}; fleet default 1d\\)$`, 'm'));
    expect(show.stdout).toMatch(/^mode: +enforce/m);
    const json = JSON.parse((await cli('policy', 'show', 'fast', '--json')).stdout) as GroupPolicy & { attestationInterval: GroupAttestationInterval };
    expect([json.policy.mode, json.attestationInterval.attestationIntervalSeconds, json.attestationInterval.source]).toEqual(['enforce', 900, 'group']);
    // A group without a policy: the refusal as before, the interval still said (on stderr).
    const none = await cli('policy', 'show', 'slow');
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('attestation interval: 1d (the fleet default, MACHINE_ATTESTATION_INTERVAL_MS)');
    expect(none.stderr).toContain('group slow has no PCR policy');
  });

  describe('refusals: 400 with a code, nothing written or audited', () => {
    it.each([
      [{ attestationIntervalSeconds: 9 }, 'machine.invalid-interval'],
      [{ attestationIntervalSeconds: 31 * 86_400 + 1 }, 'machine.invalid-interval'],
      [{ attestationIntervalSeconds: 0 }, 'machine.invalid-interval'],
      [{ attestationIntervalSeconds: -60 }, 'machine.invalid-interval'],
      [{ attestationIntervalSeconds: 90.5 }, 'request.invalid'],
      [{ attestationIntervalSeconds: '900' }, 'request.invalid'],
      [{}, 'request.invalid'],
    ])('PUT %j → %s', async (body, code) => {
      const before = [await intervalAudits(), await storedIntervals()];
      const response = await http('put', '/v1/groups/fast/interval').send(body);
      expect([response.status, response.body.code]).toEqual([400, code]);
      expect(JSON.stringify(response.body.message)).toContain('attestationIntervalSeconds');
      expect([await intervalAudits(), await storedIntervals()]).toEqual(before);
    });

    it('the bounds themselves are accepted: 10 s and 31 days', async () => {
      for (const seconds of [10, 31 * 86_400, 900]) {
        expect((await http('put', '/v1/groups/fast/interval').send({ attestationIntervalSeconds: seconds })).body.attestationIntervalSeconds).toBe(seconds);
      }
      expect((await auditOf('policy.interval-set')).slice(-3).map((r) => [r.details.attestationIntervalSeconds, r.details.previousSeconds])).toEqual([
        [10, 900],
        [2_678_400, 10],
        [900, 2_678_400],
      ]);
    });

    it('a bad group name is machine.invalid-group on every method; overdue takes only true', async () => {
      const before = await intervalAudits();
      for (const method of ['get', 'put', 'delete'] as const) {
        const call = http(method, '/v1/groups/Not_A_Group/interval');
        const response = method === 'put' ? await call.send({ attestationIntervalSeconds: 900 }) : await call;
        expect([method, response.status, response.body.code]).toEqual([method, 400, 'machine.invalid-group']);
      }
      expect(await intervalAudits()).toBe(before);
      const wrong = await http('get', '/v1/machines?overdue=false');
      expect([wrong.status, wrong.body.code]).toEqual([400, 'request.invalid']);
      expect(JSON.stringify(wrong.body.message)).toContain('overdue takes only true');
    });

    it('the CLI: --interval 5s is the server\'s refusal (exit 2, naming the bounds); a non-duration is refused before any request', async () => {
      const before = [await intervalAudits(), await storedIntervals()];
      const low = await cli('policy', 'set', 'fast', '--interval', '5s');
      expect(low.status).toBe(2);
      expect(low.stderr).toContain('from 10 (10 s) to 2678400 (31 days)');
      const junk = await runRacksealCliAsync(['policy', 'set', 'fast', '--interval', 'soon', '--server', 'http://127.0.0.1:1'], { env: { RACKSEAL_TOKEN: tokens.admin.token } });
      expect(junk.status).toBe(2);
      expect(junk.stderr).toContain('--interval must be a duration');
      const neither = await cli('policy', 'set', 'fast');
      expect(neither.status).toBe(2);
      expect(neither.stderr).toContain('give --file (the PCR policy), --interval (the attestation interval) or both');
      expect([await intervalAudits(), await storedIntervals()]).toEqual(before);
    });

    it('scopes: policy:read reads but may not change; inventory:read may do neither', async () => {
      const before = await intervalAudits();
      expect((await http('get', '/v1/groups/fast/interval', tokens.policyRead.token)).status).toBe(200);
      const put = await http('put', '/v1/groups/fast/interval', tokens.policyRead.token).send({ attestationIntervalSeconds: 60 });
      expect([put.status, put.body.code]).toEqual([403, 'auth.forbidden']);
      const del = await http('delete', '/v1/groups/fast/interval', tokens.policyRead.token);
      expect([del.status, del.body.code]).toEqual([403, 'auth.forbidden']);
      const read = await http('get', '/v1/groups/fast/interval', tokens.inventoryRead.token);
      expect([read.status, read.body.code]).toEqual([403, 'auth.forbidden']);
      expect(await intervalAudits()).toBe(before);
      expect((await storedIntervals()).find((r) => r.group_name === 'fast')?.interval_seconds).toBe(900);
    });

    it('the table refuses an out-of-range row written by hand (the CHECK repeats the bounds)', async () => {
      await expect(ds.query("INSERT INTO group_attestation_intervals (group_name, interval_seconds, updated_at, updated_by) VALUES ('hand', 5, now(), 'psql')")).rejects.toThrow(/check constraint/);
    });
  });
});
