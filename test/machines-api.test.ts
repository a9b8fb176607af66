/**
 * The machines surface of the operator API (issue 12 items 4 and 7) on a real control plane and
 * PostgreSQL: GET /v1/machines with its filters, GET /v1/machines/:ref with attestation times, last
 * failure and history, POST /v1/machines/:ref/revoke (idempotent, audited in the same transaction),
 * scope refusals, bad input, and the machine gauges of /metrics.
 */
import type { INestApplication } from '@nestjs/common';
import { MachinesRepository } from '@rackseal/machines';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { runRacksealCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

const HOUR = 3_600_000;

describe('operator API: machines (GET /v1/machines, GET /v1/machines/:ref, POST /v1/machines/:ref/revoke)', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let machines: MachinesRepository;
  let admin: string;
  let reader: string;
  let readerId: string;
  let writer: string;
  let writerId: string;
  let auditor: string;
  const ids: Record<'fresh' | 'stale' | 'never' | 'quarantined', string> = { fresh: '', stale: '', never: '', quarantined: '' };
  const now = Date.now();
  const registrationId = randomUUID();

  const http = () => request(app.getHttpServer());
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });

  async function insertMachine(serial: string, group: string | null): Promise<string> {
    const id = randomUUID();
    await ds.query(`INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, $3, $4, 'imported', now(), now())`, [
      id,
      serial,
      group,
      randomUUID().replace(/-/g, '').padEnd(64, 'a'),
    ]);
    return id;
  }

  async function attest(id: string, at: Date): Promise<void> {
    await ds.transaction(async (m) => {
      await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'registration started', actor: 'system:attestation' }, at, m);
      await machines.transition({ machineId: id, from: 'attesting', to: 'attested', reason: 'quote matched the policy of rack-a', actor: 'system:attestation' }, at, m);
      await machines.recordAttested(id, at, m);
    });
  }

  async function issue(name: string, scopes: string[]): Promise<{ token: string; id: string }> {
    const created = await http().post('/v1/tokens').set(as(admin)).send({ name, scopes });
    expect(created.status).toBe(201);
    return created.body as { token: string; id: string };
  }

  const counts = async () =>
    (
      (await ds.query(
        `SELECT (SELECT count(*)::int FROM machine_transitions) AS transitions, (SELECT count(*)::int FROM audit_log WHERE action = 'machine.revoked') AS revoked`,
      )) as { transitions: number; revoked: number }[]
    )[0]!;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.init();
    ds = await openDataSource(db.url);
    machines = new MachinesRepository(ds);
    const run = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(run.status).toBe(0);
    admin = run.stdout.trim();
    ({ token: reader, id: readerId } = await issue('reader', ['inventory:read']));
    ({ token: writer, id: writerId } = await issue('writer', ['inventory:write']));
    ({ token: auditor } = await issue('auditor', ['audit:read']));

    ids.fresh = await insertMachine('M-1', 'rack-a');
    await attest(ids.fresh, new Date(now - HOUR));
    ids.stale = await insertMachine('M-2', 'rack-a');
    await attest(ids.stale, new Date(now - 48 * HOUR));
    ids.never = await insertMachine('M-3', 'rack-b');
    ids.quarantined = await insertMachine('M-4', 'rack-b');
    await attest(ids.quarantined, new Date(now - 30 * HOUR));
    await ds.transaction(async (m) => {
      const at = new Date(now - 2 * HOUR);
      await machines.transition({ machineId: ids.quarantined, from: 'attested', to: 'attesting', reason: 're-attestation', actor: 'system:attestation' }, at, m);
      await machines.transition({ machineId: ids.quarantined, from: 'attesting', to: 'quarantined', reason: 'PCR 4 differs from the policy of rack-b', actor: 'system:attestation' }, at, m);
      await machines.recordFailure(
        ids.quarantined,
        {
          at,
          code: 'attestation.pcr-mismatch',
          reason: 'PCR 4 differs from the policy of rack-b',
          explanation: ['PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs', 'PCR 4: event #13 EV_SEPARATOR missing'],
          registrationId,
        },
        m,
      );
    });
  });

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  const serials = (body: { serial: string }[]): string[] => body.map((m) => m.serial);

  describe('GET /v1/machines', () => {
    it('lists by serial with the attestation record of each machine', async () => {
      const res = await http().get('/v1/machines').set(as(reader));
      expect(res.status).toBe(200);
      expect(serials(res.body)).toEqual(['M-1', 'M-2', 'M-3', 'M-4']);
      expect(res.body[0]).toMatchObject({
        id: ids.fresh,
        state: 'attested',
        group: 'rack-a',
        firstAttestedAt: new Date(now - HOUR).toISOString(),
        lastAttestedAt: new Date(now - HOUR).toISOString(),
        lastFailure: null,
      });
      expect(res.body[2]).toMatchObject({ state: 'imported', firstAttestedAt: null, lastAttestedAt: null, lastFailure: null });
      expect(res.body[3].lastFailure).toEqual({
        at: new Date(now - 2 * HOUR).toISOString(),
        code: 'attestation.pcr-mismatch',
        reason: 'PCR 4 differs from the policy of rack-a'.replace('rack-a', 'rack-b'),
        explanation: ['PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs', 'PCR 4: event #13 EV_SEPARATOR missing'],
        registrationId,
      });
    });

    it('filters by state, group and notAttestedSince, and pages with after/limit', async () => {
      const get = async (query: Record<string, string>) => {
        const res = await http().get('/v1/machines').query(query).set(as(reader));
        expect([query, res.status]).toEqual([query, 200]);
        return serials(res.body);
      };
      expect(await get({ state: 'attested' })).toEqual(['M-1', 'M-2']);
      expect(await get({ group: 'rack-b' })).toEqual(['M-3', 'M-4']);
      expect(await get({ state: 'quarantined', group: 'rack-b' })).toEqual(['M-4']);
      const dayAgo = new Date(now - 24 * HOUR).toISOString();
      expect(await get({ notAttestedSince: dayAgo })).toEqual(['M-2', 'M-3', 'M-4']);
      expect(await get({ notAttestedSince: dayAgo, state: 'attested' })).toEqual(['M-2']);
      expect(await get({ notAttestedSince: dayAgo, after: 'M-2', limit: '1' })).toEqual(['M-3']);
      // Any offset is one instant: the same filter written in +02:00.
      const local = new Date(now - 24 * HOUR + 2 * HOUR).toISOString().replace(/\.\d+Z$/, '+02:00');
      expect(await get({ notAttestedSince: local })).toEqual(['M-2', 'M-3', 'M-4']);
    });

    it.each([
      ['state', 'bogus', 'state must be one of the following values: imported, attesting, attested, quarantined, revoked'],
      ['notAttestedSince', 'yesterday', 'notAttestedSince must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T10:00:00Z'],
      ['notAttestedSince', '2026-03-01T10:00:00', 'notAttestedSince must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T10:00:00Z'],
      ['notAttestedSince', '2026-02-30T10:00:00Z', 'notAttestedSince must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T10:00:00Z'],
      ['notAttestedSince', '1772359200000', 'notAttestedSince must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T10:00:00Z'],
      ['group', 'Rack A', 'group must be 1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -'],
      ['limit', '0', 'limit must be an integer from 1 to 1000'],
    ])('refuses ?%s=%s with 400 naming the field', async (name, value, message) => {
      const res = await http().get('/v1/machines').query({ [name]: value }).set(as(reader));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'request.invalid', message: [message] });
    });
  });

  describe('GET /v1/machines/:ref', () => {
    it('shows a machine by id or serial with its lifecycle times, last failure and history', async () => {
      const byId = await http().get(`/v1/machines/${ids.quarantined}`).set(as(reader));
      expect(byId.status).toBe(200);
      const bySerial = await http().get('/v1/machines/M-4').set(as(reader));
      expect(bySerial.body).toEqual(byId.body);
      expect(byId.body).toMatchObject({
        id: ids.quarantined,
        serial: 'M-4',
        state: 'quarantined',
        firstAttestedAt: new Date(now - 30 * HOUR).toISOString(),
        lastAttestedAt: new Date(now - 30 * HOUR).toISOString(),
        lastFailure: { code: 'attestation.pcr-mismatch', registrationId },
      });
      expect(byId.body.history.map(({ from, to, reason, actor }: Record<string, string>) => `${from}→${to} ${actor}: ${reason}`)).toEqual([
        'imported→attesting system:attestation: registration started',
        'attesting→attested system:attestation: quote matched the policy of rack-a',
        'attested→attesting system:attestation: re-attestation',
        'attesting→quarantined system:attestation: PCR 4 differs from the policy of rack-b',
      ]);
      expect(byId.body.history[3]).toMatchObject({ seq: expect.any(Number), at: new Date(now - 2 * HOUR).toISOString() });
      // A UUID in capitals is the same id.
      expect((await http().get(`/v1/machines/${ids.quarantined.toUpperCase()}`).set(as(reader))).body.id).toBe(ids.quarantined);
    });

    it('answers 404 for an unknown id or serial and 400 for text that is neither', async () => {
      const unknownId = randomUUID();
      const missing = await http().get(`/v1/machines/${unknownId}`).set(as(reader));
      expect([missing.status, missing.body.code, missing.body.message]).toEqual([404, 'machine.not-found', `no machine ${unknownId}`]);
      expect((await http().get('/v1/machines/M-404').set(as(reader))).body).toMatchObject({ statusCode: 404, code: 'machine.not-found', message: 'no machine M-404' });
      // NUL never gets this far: the global guard refuses it in any parameter (request.invalid).
      const nul = await http().get('/v1/machines/M%001').set(as(reader));
      expect([nul.status, nul.body.code]).toEqual([400, 'request.invalid']);
      for (const bad of ['%20M-1', 'M%1B1', '-M1', 'x'.repeat(129), '%E2%80%AEM-1', '..%2F..%2Fetc']) {
        const res = await http().get(`/v1/machines/${bad}`).set(as(reader));
        expect([bad, res.status, res.body.code]).toEqual([bad, 400, 'machine.invalid-ref']);
        expect(res.body.message).toMatch(/ is neither a machine id \(UUID\) nor a serial/);
      }
    });
  });

  describe('POST /v1/machines/:ref/revoke', () => {
    it('revokes with the reason in the history and an audit record naming the token; a second revoke is 200 changed:false and writes nothing', async () => {
      const before = await counts();
      const res = await http().post(`/v1/machines/${ids.stale}/revoke`).set(as(writer)).send({ reason: 'motherboard replaced' });
      expect(res.status).toBe(200);
      expect(res.body.changed).toBe(true);
      expect(res.body.machine).toMatchObject({ id: ids.stale, serial: 'M-2', state: 'revoked' });
      expect(res.body.machine.history.at(-1)).toMatchObject({ from: 'attested', to: 'revoked', reason: 'motherboard replaced', actor: `token:${writerId}` });
      const audit = (await ds.query(`SELECT actor, action, subject, outcome, details FROM audit_log WHERE action = 'machine.revoked'`)) as unknown[];
      expect(audit).toEqual([
        {
          actor: `token:${writerId}`,
          action: 'machine.revoked',
          subject: `machine:${ids.stale}`,
          outcome: 'success',
          details: { serial: 'M-2', ekPubHash: expect.stringMatching(/^[0-9a-f]{64}$/), from: 'attested', reason: 'motherboard replaced' },
        },
      ]);
      expect(await counts()).toEqual({ transitions: before.transitions + 1, revoked: before.revoked + 1 });

      const again = await http().post('/v1/machines/M-2/revoke').set(as(admin)).send({ reason: 'again' });
      expect(again.status).toBe(200);
      expect(again.body.changed).toBe(false);
      expect(again.body.machine.history.filter((t: { to: string }) => t.to === 'revoked')).toEqual([expect.objectContaining({ reason: 'motherboard replaced', actor: `token:${writerId}` })]);
      expect(await counts()).toEqual({ transitions: before.transitions + 1, revoked: before.revoked + 1 });

      // A revoked machine is not "not attested": the liveness filter leaves it out.
      const live = await http().get('/v1/machines').query({ notAttestedSince: new Date(now - 24 * HOUR).toISOString() }).set(as(reader));
      expect(serials(live.body)).toEqual(['M-3', 'M-4']);
    });

    it('answers 404 for an unknown machine and 400 for a bad reference or reason, writing nothing', async () => {
      const before = await counts();
      const unknownId = randomUUID();
      const missing = await http().post(`/v1/machines/${unknownId}/revoke`).set(as(writer)).send({ reason: 'gone' });
      expect([missing.status, missing.body.code, missing.body.message]).toEqual([404, 'machine.not-found', `no machine ${unknownId}`]);
      expect((await http().post('/v1/machines/M%1B/revoke').set(as(writer)).send({ reason: 'gone' })).body.code).toBe('machine.invalid-ref');
      for (const [body, message] of [
        [{}, 'reason must be a string'],
        [{ reason: '' }, 'reason must be longer than or equal to 1 characters'],
        [{ reason: '   ' }, 'reason must not be blank'],
        [{ reason: 'x'.repeat(1001) }, 'reason must be shorter than or equal to 1000 characters'],
        [{ reason: 'stolen\u001b[2J' }, 'reason must not contain control characters (found U+001B)'],
        [{ reason: 'line\nbreak' }, 'reason must not contain control characters (found U+000A)'],
        [{ reason: 'ok', extra: 1 }, 'property extra should not exist'],
      ] as const) {
        const res = await http().post(`/v1/machines/${ids.never}/revoke`).set(as(writer)).send(body);
        expect([body, res.status, res.body.code]).toEqual([body, 400, 'request.invalid']);
        expect(res.body.message).toContain(message);
      }
      expect(await counts()).toEqual(before);
      expect((await machines.findById(ids.never))?.state).toBe('imported');
    });

    it('a failed audit append rolls the revocation back: the machine keeps its state and history', async () => {
      await ds.query(`
        CREATE FUNCTION test_refuse_revoked_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'test: audit append refused'; END $$`);
      await ds.query(`CREATE TRIGGER test_refuse_revoked_audit BEFORE INSERT ON audit_log FOR EACH ROW WHEN (NEW.action = 'machine.revoked') EXECUTE FUNCTION test_refuse_revoked_audit()`);
      try {
        const before = await counts();
        const res = await http().post(`/v1/machines/${ids.never}/revoke`).set(as(writer)).send({ reason: 'decommissioned' });
        expect(res.status).toBe(500);
        expect(res.body).toMatchObject({ code: 'internal', errorId: expect.any(String) });
        expect(await counts()).toEqual(before);
        expect((await machines.findById(ids.never))?.state).toBe('imported');
        expect(await machines.history(ids.never)).toEqual([]);
      } finally {
        await ds.query('DROP TRIGGER test_refuse_revoked_audit ON audit_log');
        await ds.query('DROP FUNCTION test_refuse_revoked_audit()');
      }
    });
  });

  describe('request bodies (intruder pass, issue 12)', () => {
    const reattests = async () =>
      (
        (await ds.query(
          `SELECT (SELECT count(*)::int FROM audit_log WHERE action = 'machine.reattest-requested') AS audited, (SELECT reattest_requested_at FROM machines WHERE id = $1) AS pending`,
          [ids.fresh],
        )) as { audited: number; pending: Date | null }[]
      )[0]!;

    it('POST /v1/machines/:ref/reattest takes no body: a field, an array or text is 400 writing nothing; none or {} is served', async () => {
      const before = await reattests();
      expect(before.pending).toBeNull();
      const reattest = () => http().post(`/v1/machines/${ids.fresh}/reattest`).set(as(writer));
      for (const [type, body] of [
        ['application/json', '{"now":true}'],
        ['application/json', '[]'],
        ['application/x-www-form-urlencoded', 'now=1'],
        ['text/plain', 'please'],
      ] as const) {
        const res = await reattest().set('Content-Type', type).send(body);
        expect([body, res.status, res.body.code]).toEqual([body, 400, 'request.invalid']);
        expect(res.body.message).toMatch(/^(this operation takes no request body: send none \(or \{\}\)|the request body must be a JSON object)$/);
      }
      expect(await reattests()).toEqual(before);
      const empty = await reattest().send({});
      expect([empty.status, empty.body.machineId]).toEqual([200, ids.fresh]);
      const none = await reattest();
      expect(none.status).toBe(200);
      expect((await reattests()).audited).toBe(before.audited + 1);
    });

    it.each(['null', '[]', '"x"', '42'])('revoke with the JSON body %s: 400 request.invalid, the request body must be a JSON object', async (body) => {
      const before = await counts();
      const res = await http().post(`/v1/machines/${ids.never}/revoke`).set(as(writer)).set('Content-Type', 'application/json').send(body);
      expect([res.status, res.body.code, res.body.message]).toEqual([400, 'request.invalid', 'the request body must be a JSON object']);
      expect(await counts()).toEqual(before);
    });
  });

  it('scopes: inventory:read lists and shows but may not revoke; other scopes may do neither', async () => {
    expect((await http().get('/v1/machines').set(as(reader))).status).toBe(200);
    const revoke = await http().post(`/v1/machines/${ids.never}/revoke`).set(as(reader)).send({ reason: 'r' });
    expect([revoke.status, revoke.body.code, revoke.body.message]).toEqual([403, 'auth.forbidden', 'this token lacks the "inventory:write" scope']);
    for (const call of [http().get('/v1/machines'), http().get(`/v1/machines/${ids.never}`)]) {
      const res = await call.set(as(auditor));
      expect([res.status, res.body.message]).toEqual([403, 'this token lacks the "inventory:read" scope']);
    }
    expect((await http().get('/v1/machines').set(as(`${reader}x`))).status).toBe(401);
    expect((await http().post(`/v1/machines/${ids.never}/revoke`).send({ reason: 'r' })).status).toBe(401);
    expect((await machines.findById(ids.never))?.state).toBe('imported');
    expect(readerId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('/metrics: machines per state and those not attested within MACHINE_ATTESTATION_INTERVAL_MS (24 h by default)', async () => {
    const res = await http().get('/metrics');
    expect(res.status).toBe(200);
    const lines = (res.text as string).split('\n');
    const machineLines = lines.filter((l) => l.startsWith('rackseal_machine'));
    // M-1 attested an hour ago; M-2 is revoked by now; M-3 never attested; M-4 quarantined, last attested 30 h ago.
    expect(machineLines).toEqual([
      'rackseal_machines{state="imported"} 1',
      'rackseal_machines{state="attesting"} 0',
      'rackseal_machines{state="attested"} 1',
      'rackseal_machines{state="quarantined"} 1',
      'rackseal_machines{state="revoked"} 1',
      'rackseal_machines_not_attested_within_interval{state="imported"} 1',
      'rackseal_machines_not_attested_within_interval{state="attesting"} 0',
      'rackseal_machines_not_attested_within_interval{state="attested"} 0',
      'rackseal_machines_not_attested_within_interval{state="quarantined"} 1',
      'rackseal_machine_attestation_interval_seconds 86400',
    ]);
    expect(lines).toContain('# TYPE rackseal_machines_not_attested_within_interval gauge');
  });
});
