/**
 * Rotation and revocation (issue 14 items 5 and 7) on real PostgreSQL and Redis: two machines
 * enrolled on swtpm by an in-process control plane, a second control plane as a process (the node
 * mailbox, the CLI's server), worker processes that seal with the test-only TestEnvelopeSealer, and
 * simulated agents that open their envelopes with the sealer's per-machine keys and ack through the
 * mailbox. Every case waits for states, never for time.
 */
import { Test } from '@nestjs/testing';
import { SecretRotationSchedule } from '@rackseal/deliveries';
import type { MailboxResponse } from '@rackseal/node-api-contracts';
import { Clock } from '@rackseal/platform';
import type { Queue } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { JOB_HANDLER_PROVIDERS, WorkerModule } from '../apps/worker/src/worker.module';
import { FRESH_SWTPM_POLICY, MovableClock, SRTM } from './support/attestation-policies';
import { runRacksealCliAsync } from './support/cli-runner';
import type { TestDatabase } from './support/database';
import { useMailboxFleet } from './support/mailbox-fleet';
import type { RunningProcess } from './support/processes';
import type { TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { openTestEnvelope, TestEnvelopeSealer } from './support/test-envelope-sealer';
import { pollUntil } from './support/wait';

jest.setTimeout(240_000);

interface DeliveryRow {
  id: string;
  machine_id: string;
  version: number;
  state: string;
  generation: number;
  envelope: Buffer | null;
  acked_at: Date | null;
}

interface VersionRow {
  id: string;
  version: number;
  value_origin: string | null;
  retired_at: Date | null;
}

describe('rotation and revocation', () => {
  const fixture = useSwtpms(1, { p256: true });
  const fleet = useMailboxFleet(fixture);
  const { fleetKey, machineId, startWorker, operator, poll, ack } = fleet;
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let cp2: { proc: RunningProcess; baseUrl: string };
  let ds: DataSource;
  let admin: string;
  let queue: Queue;
  const live = ['SN-RSA', 'SN-P256'];
  /** Secrets the simulated agents leave unacked (ready in the mailbox). */
  const holdBack = new Set<string>();

  const cli = (...args: string[]) => runRacksealCliAsync([...args, '--server', cp2.baseUrl], { env: { RACKSEAL_TOKEN: admin }, timeoutMs: 180_000 });

  async function create(name: string, kind: string, extra: Record<string, unknown> = {}): Promise<void> {
    const created = await operator('post', '/v1/secrets').send({ name, kind, target: { group: 'workers' }, binding: 'pcr-sealed', ...extra });
    expect([created.status, created.body.code]).toEqual([201, undefined]);
  }

  async function deliveriesOf(name: string): Promise<DeliveryRow[]> {
    return (await ds.query(
      `SELECT d.id, d.machine_id, v.version, d.state, d.generation, d.envelope, d.acked_at FROM deliveries d JOIN secrets s ON s.id = d.secret_id JOIN secret_versions v ON v.id = d.version_id
        WHERE s.name = $1 ORDER BY v.version, d.machine_id`,
      [name],
    )) as DeliveryRow[];
  }

  async function versionsOf(name: string): Promise<VersionRow[]> {
    return (await ds.query('SELECT v.id, v.version, v.value_origin, v.retired_at FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.name = $1 ORDER BY v.version', [name])) as VersionRow[];
  }

  const secretId = async (name: string) => ((await ds.query('SELECT id FROM secrets WHERE name = $1', [name])) as { id: string }[])[0]!.id;

  const auditOf = async (action: string, about = '') =>
    (await ds.query(`SELECT actor, outcome, details FROM audit_log WHERE action = $1 AND details::text LIKE $2 ORDER BY id`, [action, `%${about}%`])) as {
      actor: string;
      outcome: string;
      details: Record<string, unknown>;
    }[];

  /** One simulated agent pass: opens every ready envelope with the machine's key and acks it; answers the ids it acked. */
  async function agentPass(serial: string): Promise<string[]> {
    const box = (await poll(serial)).json as unknown as MailboxResponse;
    const acked: string[] = [];
    for (const d of box.deliveries.filter((x) => !holdBack.has(x.secret))) {
      const opened = openTestEnvelope(fleetKey, machineId[serial]!, d.id, d.version, Buffer.from(d.envelope, 'base64'));
      const answer = await ack(serial, d.id, opened.ackProof);
      // A delivery of an older version may be cancelled (retired) between the poll and the ack.
      expect([200, 409]).toContain(answer.status);
      if (answer.status === 200) {
        acked.push(d.id);
      }
    }
    return acked;
  }

  /** The live agents ack what comes until `done` holds. */
  async function ackUntil(done: () => Promise<boolean>): Promise<boolean> {
    return pollUntil(
      async () => {
        for (const serial of live) {
          await agentPass(serial);
        }
        return done();
      },
      (ok) => ok,
      120_000,
      200,
    );
  }

  const allAcked = (name: string, version: number, count = live.length) => async () => {
    const rows = (await deliveriesOf(name)).filter((d) => d.version === version);
    return rows.length === count && rows.every((d) => d.state === 'acked');
  };

  beforeAll(() => ({ db, prefix, cp2, ds, admin, queue } = fleet.parts));

  it('secrets rotate --no-wait answers at once; the waiting form returns when every target acked; then the older versions are retired and their live deliveries cancelled; --group is a check refused for another group or a machine-targeted secret', async () => {
    await create('shared-a', 'opaque');
    await startWorker();
    expect(await ackUntil(allAcked('shared-a', 1))).toBe(true);

    const quick = await cli('secrets', 'rotate', 'shared-a', '--no-wait');
    expect([quick.status, quick.stderr]).toEqual([0, '']);
    expect(quick.stdout).toMatch(/^rotated secret shared-a \(opaque, group workers\): version 2/);
    expect((await deliveriesOf('shared-a')).filter((d) => d.version === 2)).toHaveLength(2);
    expect((await versionsOf('shared-a')).map((v) => [v.version, v.value_origin, v.retired_at])).toEqual([
      [1, 'generated', null],
      [2, 'generated', null],
    ]);

    // The waiting form: the simulated agents ack v2 and v3 while the CLI polls the progress route.
    let finished = false;
    const waiting = cli('secrets', 'rotate', 'shared-a', '--group', 'workers').finally(() => (finished = true));
    expect(await ackUntil(() => Promise.resolve(finished))).toBe(true);
    const waited = await waiting;
    expect([waited.status, waited.stderr]).toEqual([0, '']);
    expect(waited.stdout).toMatch(/version 3[^\n]*\n2\/2 target\(s\) acked\n$/);
    const rows = await deliveriesOf('shared-a');
    expect(rows.filter((d) => d.version === 3).map((d) => d.state)).toEqual(['acked', 'acked']);
    // v2's deliveries were acked, or cancelled by the retirement when v3 won the race.
    expect(rows.filter((d) => d.version === 2).every((d) => d.state === 'acked' || d.state === 'cancelled')).toBe(true);
    expect(rows.every((d) => d.envelope === null)).toBe(true);
    const versions = await versionsOf('shared-a');
    expect(versions.map((v) => [v.version, v.retired_at !== null])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    // Each version's last ack retired the ones before it: v2's retired v1 (or v3's retired both).
    const retiredRecords = (await auditOf('secret.versions-retired', await secretId('shared-a'))).map((r) => r.details);
    expect(retiredRecords.flatMap((d) => d.retired as number[]).sort()).toEqual([1, 2]);
    expect(retiredRecords.every((d) => (d.retired as number[]).every((v) => v < (d.version as number)))).toBe(true);
    const progress = await operator('get', '/v1/secrets/shared-a/versions/3/deliveries');
    expect(progress.body).toMatchObject({ secret: 'shared-a', version: 3, retiredAt: null, total: 2, settled: true, states: { acked: 2, pending: 0, ready: 0 } });
    expect((await operator('get', '/v1/secrets/shared-a/versions/1/deliveries')).body.retiredAt).not.toBeNull();
    expect((await operator('get', '/v1/secrets/shared-a/versions/9/deliveries')).body.code).toBe('secret.not-found');
    expect((await operator('get', '/v1/secrets/shared-a/versions/x/deliveries')).body.code).toBe('secret.invalid');

    // --group: the secret targets workers, not edge — refused, audited, nothing written.
    const wrong = await cli('secrets', 'rotate', 'shared-a', '--group', 'edge', '--no-wait');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/shared-a targets group workers, not edge; nothing rotated/);
    expect((await versionsOf('shared-a')).map((v) => v.version)).toEqual([1, 2, 3]);
    expect((await auditOf('secret.rotated', 'secret.wrong-group')).map((r) => r.outcome)).toEqual(['refused']);
    const single = await operator('post', '/v1/secrets').send({ name: 'one-machine', kind: 'opaque', target: { machine: 'SN-RSA' }, binding: 'pcr-sealed' });
    expect(single.status).toBe(201);
    const machineTargeted = await operator('post', '/v1/secrets/one-machine/versions').send({ group: 'workers' });
    expect([machineTargeted.status, machineTargeted.body.code]).toEqual([400, 'secret.invalid']);
    expect((await versionsOf('one-machine')).map((v) => v.version)).toEqual([1]);
  });

  it('TLS certificates are renewed renewBeforeDays before their end: not due the day before, one secret.rotate job when due, and the job run twice makes one version with fresh certificates', async () => {
    await create('web-tls', 'tls', { parameters: { sans: ['{hostname}.cluster.internal'], validityDays: 90, renewBeforeDays: 30 } });
    const id = await secretId('web-tls');
    const clock = new MovableClock();
    const moduleRef = await Test.createTestingModule({
      imports: [WorkerModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }), JOB_HANDLER_PROVIDERS, { sealer: new TestEnvelopeSealer(fleetKey) })],
    })
      .overrideProvider(Clock)
      .useValue(clock)
      .compile();
    const jobId = `secret.rotate.${id}.1`;
    try {
      const schedule = moduleRef.get(SecretRotationSchedule);
      // notAfter = now - 5 min + 90 days: due from day 60 minus 5 minutes.
      clock.offsetMs = 59 * 86_400_000;
      await schedule.check();
      expect(await queue.getJob(jobId)).toBeUndefined();
      clock.offsetMs = 61 * 86_400_000;
      await schedule.check();
      const job = await queue.getJob(jobId);
      expect(job?.data).toEqual({ secretId: id, fromVersion: 1, reason: 'renew-before' });
      const outcomes = await Promise.all([schedule.rotate(id, 1, 'renew-before'), schedule.rotate(id, 1, 'renew-before')]);
      expect(outcomes.sort()).toEqual([2, undefined]);
      expect(await schedule.rotate(id, 1, 'renew-before')).toBeUndefined();
    } finally {
      // Other secrets were due at day 61 too: their jobs are not this test's.
      for (const job of await queue.getJobs(['waiting', 'delayed', 'prioritized'])) {
        if (job.name === 'secret.rotate') {
          await job.remove();
        }
      }
      await moduleRef.close();
    }
    expect((await versionsOf('web-tls')).map((v) => v.version)).toEqual([1, 2]);
    const notAfter = (await ds.query(
      'SELECT v.version, m.not_after FROM secret_materials m JOIN secret_versions v ON v.id = m.version_id JOIN secrets s ON s.id = v.secret_id WHERE s.name = $1 ORDER BY v.version',
      ['web-tls'],
    )) as { version: number; not_after: Date }[];
    const first = notAfter.filter((r) => r.version === 1).map((r) => r.not_after.getTime());
    const second = notAfter.filter((r) => r.version === 2).map((r) => r.not_after.getTime());
    expect([first.length, second.length]).toEqual([2, 2]);
    expect(Math.min(...second)).toBeGreaterThan(Math.max(...first) + 60 * 86_400_000 - 60_000);
    expect((await auditOf('secret.rotated', id)).map((r) => [r.actor, r.details.trigger, r.details.reason, r.details.version])).toEqual([['system:rotation-schedule', 'scheduled', 'renew-before', 2]]);
    expect((await deliveriesOf('web-tls')).filter((d) => d.version === 2)).toHaveLength(2);
  });

  it('a disk key past rotateEveryDays is rotated once by the schedule with two workers, and the new version reaches both machines', async () => {
    const invalid = await operator('post', '/v1/secrets').send({ name: 'disk-bad', kind: 'disk', target: { group: 'workers' }, binding: 'pcr-sealed', parameters: { rotateEveryDays: -1 } });
    expect([invalid.status, invalid.body.code, invalid.body.message]).toEqual([400, 'secret.invalid', expect.stringContaining('parameters.rotateEveryDays')]);
    await create('disk-a', 'disk', { parameters: { size: 64, rotateEveryDays: 1 } });
    expect((await operator('get', '/v1/secrets/disk-a')).body.parameters).toEqual({ size: 64, rotateEveryDays: 1 });
    await create('disk-default', 'disk');
    expect((await operator('get', '/v1/secrets/disk-default')).body.parameters).toEqual({ size: 32, rotateEveryDays: 365 });
    // Version 1 made two days ago: due.
    await ds.query(`UPDATE secret_versions SET created_at = created_at - interval '2 days' WHERE secret_id = $1`, [await secretId('disk-a')]);
    const checks = async () => (await queue.getJobs(['completed'])).filter((j) => j.name === 'secret.rotation-check').length;
    await Promise.all([startWorker({ SECRET_ROTATION_CHECK_INTERVAL_MS: '1000' }), startWorker({ SECRET_ROTATION_CHECK_INTERVAL_MS: '1000' })]);
    const two = await pollUntil(() => versionsOf('disk-a'), (v) => v.length >= 2, 60_000);
    expect(two.map((v) => v.version)).toEqual([1, 2]);
    // Three more checks run after it: none makes another version (version 2 is not due).
    const seen = await checks();
    expect(await pollUntil(checks, (n) => n >= seen + 3, 60_000)).toBeGreaterThanOrEqual(seen + 3);
    expect((await versionsOf('disk-a')).map((v) => v.version)).toEqual([1, 2]);
    expect((await auditOf('secret.rotated', await secretId('disk-a'))).map((r) => [r.details.trigger, r.details.reason, r.details.version])).toEqual([['scheduled', 'rotate-every', 2]]);
    expect(await ackUntil(allAcked('disk-a', 2))).toBe(true);
    expect((await versionsOf('disk-a')).map((v) => v.retired_at !== null)).toEqual([true, false]);
  });

  it('an approval epoch bump makes every pcr-sealed delivery of the group\'s current versions pending in a new round, in its transaction; the workers seal them again and the agents ack', async () => {
    expect(await ackUntil(async () => (await allAcked('disk-a', 2)()) && (await allAcked('shared-a', 3)()))).toBe(true);
    const generations = async () => new Map(((await ds.query('SELECT id, generation FROM deliveries')) as { id: string; generation: number }[]).map((r) => [r.id, r.generation]));
    const before = [...(await deliveriesOf('disk-a')), ...(await deliveriesOf('shared-a'))];
    const generationsBefore = await generations();
    const extra = { label: 'extra', values: Object.fromEntries(SRTM.map((pcr) => [pcr, randomBytes(32).toString('hex')])) };
    expect((await operator('put', '/v1/groups/workers/policy').send({ ...FRESH_SWTPM_POLICY, allowedSets: [...FRESH_SWTPM_POLICY.allowedSets, extra] })).status).toBe(200);
    // Adding a set is no withdrawal: nothing is re-wrapped.
    expect((await deliveriesOf('disk-a')).filter((d) => d.version === 2).map((d) => d.state)).toEqual(['acked', 'acked']);
    expect(await auditOf('delivery.rewrap-planned')).toEqual([]);
    // Dropping a set withdraws it: a new epoch.
    expect((await operator('put', '/v1/groups/workers/policy').send({ ...FRESH_SWTPM_POLICY })).status).toBe(200);
    const [bump] = await auditOf('delivery.rewrap-planned', 'workers');
    expect(bump!.details).toMatchObject({ group: 'workers', fromEpoch: 1, toEpoch: 2 });
    const latest = new Set<string>();
    for (const d of [...(await deliveriesOf('disk-a')).filter((x) => x.version === 2), ...(await deliveriesOf('shared-a')).filter((x) => x.version === 3)]) {
      latest.add(d.id);
    }
    expect(latest.size).toBe(4);
    const after = [...(await deliveriesOf('disk-a')), ...(await deliveriesOf('shared-a'))];
    for (const d of after) {
      const was = before.find((b) => b.id === d.id)!;
      if (latest.has(d.id)) {
        expect([d.state, d.generation, d.envelope, d.acked_at]).toEqual(['pending', was.generation + 1, null, null]);
      } else {
        // Older versions (retired) are not re-wrapped.
        expect([d.state, d.generation]).toEqual([was.state, was.generation]);
      }
    }
    const generationsAfter = await generations();
    const bumped = [...generationsAfter].filter(([id, g]) => g === generationsBefore.get(id)! + 1).length;
    expect(bump!.details.deliveries).toBe(bumped);
    const outbox = (await ds.query('SELECT delivery_id, generation FROM delivery_outbox WHERE delivery_id = ANY($1::uuid[])', [[...latest]])) as { delivery_id: string; generation: number }[];
    expect(outbox.filter((o) => o.generation === generationsAfter.get(o.delivery_id))).toHaveLength(4);
    await startWorker();
    expect(await ackUntil(async () => (await allAcked('disk-a', 2)()) && (await allAcked('shared-a', 3)()))).toBe(true);
  });

  it('revoking a machine cancels its live deliveries, rotates the shared generated secrets it held for the others, flags the uploaded ones, is audited, and refuses its long poll and acks', async () => {
    await create('uploaded-b', 'opaque', { value: randomBytes(24).toString('base64') });
    holdBack.add('p256-only');
    const single = await operator('post', '/v1/secrets').send({ name: 'p256-only', kind: 'opaque', target: { machine: 'SN-P256' }, binding: 'pcr-sealed' });
    expect(single.status).toBe(201);
    await startWorker();
    expect(await ackUntil(allAcked('uploaded-b', 1))).toBe(true);
    const ready = await pollUntil(() => deliveriesOf('p256-only'), (rows) => rows[0]?.state === 'ready');
    expect(ready[0]!.state).toBe('ready');
    // An ack proof the revoked machine will try to use afterwards.
    const box = (await poll('SN-P256')).json as unknown as MailboxResponse;
    const pending = box.deliveries.find((d) => d.secret === 'p256-only')!;
    const proof = openTestEnvelope(fleetKey, machineId['SN-P256']!, pending.id, 1, Buffer.from(pending.envelope, 'base64')).ackProof;
    const sharedBefore = (await versionsOf('shared-a')).length;

    const revoked = await operator('post', '/v1/machines/SN-P256/revoke').send({ reason: 'chassis stolen' });
    expect([revoked.status, revoked.body.changed]).toEqual([200, true]);
    live.splice(live.indexOf('SN-P256'), 1);

    const p256 = (await ds.query('SELECT state, envelope FROM deliveries WHERE machine_id = $1', [machineId['SN-P256']])) as { state: string; envelope: Buffer | null }[];
    expect(p256.filter((d) => ['pending', 'ready', 'failed'].includes(d.state))).toEqual([]);
    expect(p256.every((d) => d.envelope === null)).toBe(true);
    expect((await deliveriesOf('p256-only')).map((d) => d.state)).toEqual(['cancelled']);
    const [cancelled] = await auditOf('delivery.cancelled', machineId['SN-P256']);
    expect(cancelled).toMatchObject({ actor: 'system:revocation', details: { reason: 'machine revoked', machineId: machineId['SN-P256'] } });
    expect(cancelled!.details.deliveryIds).toContain(pending.id);

    // The generated shared value: a new version for the machine that remains, committed with the revoke.
    const shared = await versionsOf('shared-a');
    expect(shared).toHaveLength(sharedBefore + 1);
    expect(shared[shared.length - 1]!.value_origin).toBe('generated');
    const newest = (await deliveriesOf('shared-a')).filter((d) => d.version === shared.length);
    expect(newest.map((d) => d.machine_id)).toEqual([machineId['SN-RSA']]);
    expect((await auditOf('secret.rotated', machineId['SN-P256'])).map((r) => [r.actor, r.details.name, r.details.trigger])).toEqual(
      expect.arrayContaining([['system:revocation', 'shared-a', 'machine-revoked']]),
    );
    // The uploaded shared value cannot be made up: flagged for the operator, no new version.
    expect((await versionsOf('uploaded-b')).map((v) => [v.version, v.value_origin])).toEqual([[1, 'uploaded']]);
    const flagged = await operator('get', '/v1/secrets/uploaded-b');
    expect(flagged.body.rotationRequired).toMatchObject({ reason: expect.stringContaining('rackseal secrets rotate uploaded-b --value-file') });
    expect((await auditOf('secret.rotation-required', 'uploaded-b')).map((r) => r.details)).toEqual([expect.objectContaining({ name: 'uploaded-b', revokedMachineId: machineId['SN-P256'], origin: 'uploaded' })]);
    // Not shared (a disk key, a machine's own value): not rotated by the revocation.
    expect((await versionsOf('disk-a')).map((v) => v.version)).toEqual([1, 2]);
    expect((await versionsOf('p256-only')).map((v) => v.version)).toEqual([1]);
    expect((await auditOf('machine.revoked', 'chassis stolen')).length).toBe(1);

    // The revoked machine's node identity is dead: its long poll and its ack are refused.
    const refusedPoll = await poll('SN-P256', 5);
    expect([refusedPoll.status, refusedPoll.json.code]).toEqual([401, 'node.unknown-credential']);
    const refusedAck = await ack('SN-P256', pending.id, proof);
    expect([refusedAck.status, refusedAck.json.code]).toEqual([401, 'node.unknown-credential']);
    expect((await deliveriesOf('p256-only')).map((d) => d.state)).toEqual(['cancelled']);

    // The remaining machine gets the new shared version; its ack retires the older one.
    expect(await ackUntil(allAcked('shared-a', shared.length, 1))).toBe(true);
    expect((await versionsOf('shared-a')).map((v) => v.retired_at !== null)).toEqual([...Array(shared.length - 1).fill(true), false]);

    // The operator's upload answers the flag.
    const file = join(tmpdir(), `rotation-${process.pid}.bin`);
    await writeFile(file, randomBytes(24), { mode: 0o600 });
    const uploaded = await cli('secrets', 'rotate', 'uploaded-b', '--value-file', file, '--no-wait');
    expect([uploaded.status, uploaded.stderr]).toEqual([0, '']);
    expect((await operator('get', '/v1/secrets/uploaded-b')).body.rotationRequired).toBeNull();
    expect((await deliveriesOf('uploaded-b')).filter((d) => d.version === 2).map((d) => d.machine_id)).toEqual([machineId['SN-RSA']]);
  });
});
