/**
 * The machine groups API behind the dashboard's groups view (issue 16): GET /v1/groups, GET
 * /v1/groups/:group and GET /v1/groups/:group/policy/promote-preview, against a real PostgreSQL and
 * machines attested in-process on swtpm (test/support/groups-fleet.ts: a canary promoted, three
 * machines quarantined with PCR 4 differing, two of them booting the same other bootloader). Exact
 * counts, the preview's differing PCRs and recovery count, and that the promotion then does what the
 * preview said (the machines it counted attest, the other stays quarantined). Every refusal with its
 * code; reads write no audit record and change nothing.
 */
import type { INestApplication } from '@nestjs/common';
import type { GroupDetail, GroupSummary, PromotePreview } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { attestOnce, CANARY_LOG, LOG_B, LOG_C, seedGroupsFleet, sha256Values, SRTM } from './support/groups-fleet';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(120_000);

const NO_MACHINES = { imported: 0, attesting: 0, attested: 0, quarantined: 0, revoked: 0 };

describe('machine groups API (issue 16, groups view)', () => {
  const fixture = useSwtpms(4);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  const tokens: Record<'admin' | 'policyRead' | 'inventoryRead', { id: string; token: string }> = {} as never;
  let fleetDefaultSeconds: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.listen(0, '127.0.0.1');
    ds = await openDataSource(db.url);
    tokens.admin = await app.get(ApiTokens).issue('admin', ['admin'], 'test');
    tokens.policyRead = await app.get(ApiTokens).issue('policy-reader', ['policy:read'], 'test');
    tokens.inventoryRead = await app.get(ApiTokens).issue('inventory-reader', ['inventory:read'], 'test');
    await seedGroupsFleet(app, fixture, tokens.admin.token);
    fleetDefaultSeconds = ((await http('get', '/v1/groups/racks/interval')).body as { fleetDefaultSeconds: number }).fleetDefaultSeconds;
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  const http = (method: 'get' | 'put' | 'post', path: string, token: string | null = tokens.admin.token) => {
    const r = request(app.getHttpServer())[method](path);
    return token === null ? r : r.set('Authorization', `Bearer ${token}`);
  };
  const auditRows = async () => ((await ds.query('SELECT count(*)::int AS n FROM audit_log')) as { n: number }[])[0]!.n;
  const policyDigest = async () => ((await http('get', '/v1/groups/racks/policy')).body as { digest: string }).digest;
  const preview = (machine: string, group = 'racks', token = tokens.policyRead.token) => http('get', `/v1/groups/${group}/policy/promote-preview?machine=${encodeURIComponent(machine)}`, token);

  it('lists every group with its machines per state, failing, policy shape and interval', async () => {
    const listed = await http('get', '/v1/groups', tokens.policyRead.token);
    expect(listed.status).toBe(200);
    expect(listed.body as GroupSummary[]).toEqual([
      { group: 'lab', machinesByState: { ...NO_MACHINES, imported: 1 }, failing: 0, policy: null, attestationIntervalSeconds: fleetDefaultSeconds, intervalSource: 'fleet-default' },
      {
        group: 'racks',
        machinesByState: { ...NO_MACHINES, imported: 1, attested: 1, quarantined: 3 },
        failing: 3,
        policy: { mode: 'enforce', bank: 'sha256', pcrs: SRTM, allowedSets: 1 },
        attestationIntervalSeconds: fleetDefaultSeconds,
        intervalSource: 'fleet-default',
      },
    ]);
  });

  it('shows a group with its failing machines and the PCRs each differs in from the nearest set', async () => {
    const shown = await http('get', '/v1/groups/racks', tokens.policyRead.token);
    expect(shown.status).toBe(200);
    const detail = shown.body as GroupDetail;
    expect(detail.failing).toBe(3);
    expect(detail.failingMachines.map((m) => [m.serial, m.state, m.lastFailure?.code, m.evidenceBank, m.comparison])).toEqual([
      ['SN-B1', 'quarantined', 'attestation.policy-mismatch', 'sha256', { nearestSet: 'current', differingPcrs: [4] }],
      ['SN-B2', 'quarantined', 'attestation.policy-mismatch', 'sha256', { nearestSet: 'current', differingPcrs: [4] }],
      ['SN-C', 'quarantined', 'attestation.policy-mismatch', 'sha256', { nearestSet: 'current', differingPcrs: [4] }],
    ]);
    const lab = (await http('get', '/v1/groups/lab', tokens.policyRead.token)).body as GroupDetail;
    expect([lab.policy, lab.failingMachines]).toEqual([null, []]);
  });

  it('previews a promotion: the new values, PCR 4 differing from the allowed set, 2 of 3 failing machines recovered; writes nothing', async () => {
    const before = [await auditRows(), await policyDigest()];
    const answer = await preview('SN-B1');
    expect(answer.status).toBe(200);
    const p = answer.body as PromotePreview;
    expect(p).toMatchObject({
      group: 'racks',
      machine: { serial: 'SN-B1', state: 'quarantined' },
      evidence: { bank: 'sha256' },
      policyExists: true,
      mode: 'enforce',
      bank: 'sha256',
      pcrs: SRTM,
      values: sha256Values(LOG_B),
      sameAsSet: null,
      newPcrValues: [4],
      comparedSets: [{ label: 'current', differingPcrs: [4] }],
      recovers: { count: 2, serials: ['SN-B1', 'SN-B2'], failingCompared: 3 },
    });
    // The machine by id answers the same; the canary's own values are the current set: nothing new, nobody recovered.
    expect(((await preview(p.machine.id)).body as PromotePreview).recovers.count).toBe(2);
    const canary = (await preview('SN-CANARY')).body as PromotePreview;
    expect([canary.sameAsSet, canary.newPcrValues, canary.values, canary.recovers]).toEqual(['current', [], sha256Values(CANARY_LOG), { count: 0, serials: [], failingCompared: 3 }]);
    const c = (await preview('SN-C')).body as PromotePreview;
    expect([c.values['4'], c.recovers]).toEqual([sha256Values(LOG_C)['4'], { count: 1, serials: ['SN-C'], failingCompared: 3 }]);
    expect([await auditRows(), await policyDigest()]).toEqual(before);
  });

  it('refuses a preview as the promotion would, with clear codes, and audits nothing', async () => {
    const before = await auditRows();
    const cases: [string, string, string, number, string][] = [
      ['unknown group', 'nowhere', 'SN-B1', 404, 'policy.group-not-found'],
      ['not a group name', 'Bad_Group!', 'SN-B1', 400, 'policy.invalid-group'],
      ['unknown machine', 'racks', 'SN-NOBODY', 404, 'machine.not-found'],
      ['machine of another group', 'racks', 'SN-LAB', 409, 'policy.machine-not-in-group'],
      ['machine of this group asked in another', 'lab', 'SN-B1', 409, 'policy.machine-not-in-group'],
      ['no verified quote', 'racks', 'SN-NEVER', 409, 'policy.no-evidence'],
    ];
    for (const [what, group, machine, status, code] of cases) {
      const refused = await preview(machine, group);
      expect([what, refused.status, refused.body.code]).toEqual([what, status, code]);
    }
    const noMachine = await http('get', '/v1/groups/racks/policy/promote-preview', tokens.policyRead.token);
    expect([noMachine.status, noMachine.body.code]).toEqual([400, 'request.invalid']);
    const unknownGroup = await http('get', '/v1/groups/nowhere', tokens.policyRead.token);
    expect([unknownGroup.status, unknownGroup.body.code]).toEqual([404, 'policy.group-not-found']);
    // Reads refused by the domain: no record (as promote's input refusals).
    expect(await auditRows()).toBe(before);
    // Scopes: policy:read, whatever else the token holds; none is 401. The guard's refusals are audited (auth.refused), naming the token and the scope.
    for (const path of ['/v1/groups', '/v1/groups/racks', '/v1/groups/racks/policy/promote-preview']) {
      const forbidden = await http('get', `${path}?machine=SN-B1`, tokens.inventoryRead.token);
      expect([path, forbidden.status, forbidden.body.message]).toEqual([path, 403, 'this token lacks the "policy:read" scope']);
      expect([path, (await http('get', path, null)).status]).toEqual([path, 401]);
    }
    const refusals = (await ds.query("SELECT actor, details->>'path' AS path, details->>'scope' AS scope FROM audit_log WHERE action = 'auth.refused' AND details->>'reason' = 'forbidden' ORDER BY id")) as {
      actor: string;
      path: string;
      scope: string;
    }[];
    expect(refusals).toEqual(
      ['/v1/groups', '/v1/groups/racks', '/v1/groups/racks/policy/promote-preview'].map((path) => ({ actor: `token:${tokens.inventoryRead.id}`, path, scope: 'policy:read' })),
    );
    expect(await auditRows()).toBe(before + 6);
  });

  it('a policy:read token may preview but not promote: 403, nothing changed', async () => {
    const digest = await policyDigest();
    const refused = await http('post', '/v1/groups/racks/policy/promote', tokens.policyRead.token).send({ machine: 'SN-B1', label: 'bootloader-b' });
    expect([refused.status, refused.body.message]).toEqual([403, 'this token lacks the "policy:write" scope']);
    expect(await policyDigest()).toBe(digest);
    expect(await ds.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'policy.promoted' AND actor = $1", [`token:${tokens.policyRead.id}`])).toEqual([{ n: 0 }]);
  });

  it('the promotion does what the preview said: the two machines it counted attest, the third stays quarantined', async () => {
    const promoted = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-B1', label: 'bootloader-b' });
    expect(promoted.status).toBe(200);
    expect((await attestOnce(app, fixture.at(1), LOG_B)).body.state).toBe('attested');
    expect((await attestOnce(app, fixture.at(2), LOG_B)).body.state).toBe('attested');
    expect((await attestOnce(app, fixture.at(3), LOG_C)).body.code).toBe('attestation.policy-mismatch');
    const detail = (await http('get', '/v1/groups/racks')).body as GroupDetail;
    expect([detail.machinesByState, detail.failing, detail.policy?.allowedSets]).toEqual([{ ...NO_MACHINES, imported: 1, attested: 3, quarantined: 1 }, 1, 2]);
    // SN-C now compared with both sets: PCR 4 differs from each, the first in the policy's order named.
    expect(detail.failingMachines.map((m) => [m.serial, m.comparison])).toEqual([['SN-C', { nearestSet: 'current', differingPcrs: [4] }]]);
    const c = (await preview('SN-C')).body as PromotePreview;
    expect([c.comparedSets, c.newPcrValues, c.recovers.count]).toEqual([
      [
        { label: 'current', differingPcrs: [4] },
        { label: 'bootloader-b', differingPcrs: [4] },
      ],
      [4],
      1,
    ]);
  });

  it('a policy of another bank, or with a PCR the quote lacks: the preview and the promotion refuse with the same code', async () => {
    const current = sha256Values(CANARY_LOG);
    const policies: [string, object, string][] = [
      ['sha1 bank', { bank: 'sha1', pcrs: [0], mode: 'enforce', allowedSets: [{ label: 'sha1', values: { '0': 'ab'.repeat(20) } }] }, 'policy.bank-mismatch'],
      ['PCR 10 too', { bank: 'sha256', pcrs: [...SRTM, 10], mode: 'enforce', allowedSets: [{ label: 'ten', values: { ...current, '10': 'cd'.repeat(32) } }] }, 'policy.evidence-incomplete'],
    ];
    for (const [what, policy, code] of policies) {
      expect([what, (await http('put', '/v1/groups/racks/policy').send(policy)).status]).toEqual([what, 200]);
      const previewed = await preview('SN-C');
      const promoted = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-C', label: 'c' });
      expect([what, previewed.status, previewed.body.code, promoted.status, promoted.body.code]).toEqual([what, 409, code, 409, code]);
    }
    // Back to the sets the promotion made, for the next test.
    const restored = { bank: 'sha256', pcrs: SRTM, mode: 'enforce', allowedSets: [{ label: 'current', values: current }, { label: 'bootloader-b', values: sha256Values(LOG_B) }] };
    expect((await http('put', '/v1/groups/racks/policy').send(restored)).status).toBe(200);
  });

  it('a promotion naming the previewed quote is refused (409 policy.evidence-changed, audited) once the canary attested again; two at once make one set', async () => {
    const shown = (await preview('SN-C')).body as PromotePreview;
    // The canary reboots into another bootloader and attests between the preview and the confirmation.
    expect((await attestOnce(app, fixture.at(3), LOG_B)).body.state).toBe('attested');
    const digest = await policyDigest();
    const stale = await http('post', '/v1/groups/racks/policy/promote').send({ machine: 'SN-C', label: 'c', registrationId: shown.evidence.registrationId });
    expect([stale.status, stale.body.code]).toEqual([409, 'policy.evidence-changed']);
    expect(await policyDigest()).toBe(digest);
    const [refusal] = (await ds.query("SELECT details FROM audit_log WHERE action = 'policy.promoted' AND outcome = 'refused' ORDER BY id DESC LIMIT 1")) as { details: Record<string, unknown> }[];
    expect(refusal?.details).toMatchObject({ label: 'c', serial: 'SN-C', code: 'policy.evidence-changed' });

    const fresh = (await preview('SN-C')).body as PromotePreview;
    expect(fresh.evidence.registrationId).not.toBe(shown.evidence.registrationId);
    const body = { machine: 'SN-C', label: 'c', registrationId: fresh.evidence.registrationId };
    const both = await Promise.all([http('post', '/v1/groups/racks/policy/promote').send(body), http('post', '/v1/groups/racks/policy/promote').send(body)]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both.map((r) => (r.body as { replaced: boolean }).replaced).sort()).toEqual([false, true]);
    const sets = ((await http('get', '/v1/groups/racks/policy')).body as { policy: { allowedSets: { label: string }[] } }).policy.allowedSets.map((set) => set.label);
    expect(sets).toEqual(['current', 'bootloader-b', 'c']);
  });

  it('a revoked machine is refused; a group known only by its own interval is listed', async () => {
    expect((await http('post', '/v1/machines/SN-C/revoke').send({ reason: 'test' })).status).toBe(200);
    const revoked = await preview('SN-C');
    expect([revoked.status, revoked.body.code]).toEqual([409, 'policy.machine-revoked']);
    expect((await http('put', '/v1/groups/edge/interval').send({ attestationIntervalSeconds: 900 })).status).toBe(200);
    const listed = (await http('get', '/v1/groups')).body as GroupSummary[];
    expect(listed.map((g) => g.group)).toEqual(['edge', 'lab', 'racks']);
    expect(listed[0]).toEqual({ group: 'edge', machinesByState: NO_MACHINES, failing: 0, policy: null, attestationIntervalSeconds: 900, intervalSource: 'group' });
    expect(listed[2]).toMatchObject({ machinesByState: { ...NO_MACHINES, imported: 1, attested: 3, revoked: 1 }, failing: 0 });
    const edge = await http('get', '/v1/groups/edge');
    expect([edge.status, (edge.body as GroupDetail).failingMachines]).toEqual([200, []]);
  });
});
