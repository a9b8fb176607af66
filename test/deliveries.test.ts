/**
 * Deliveries, their outbox and the node mailbox (issue 14 items 1-2) on real PostgreSQL and Redis:
 * two machines enrolled on swtpm by an in-process control plane (the attestation's hook plans
 * deliveries there), a second control plane as a process, and worker processes that seal with the
 * test-only TestEnvelopeSealer (test/support/test-envelope-sealer.ts: real AES-GCM to a per-machine
 * software key the simulated agent derives; the product's sealer is the wrapping library's, wired at
 * merge). Each case asserts states, bytes and audit records.
 */
import { Test } from '@nestjs/testing';
import { AUDIT_ROW_COLUMNS, AuditLog, type AuditRow, canonicalJson, leafOfRow } from '@rackseal/audit';
import { DeliveriesRepository, DeliveryGaveUpError, DeliveryNotifications, DeliveryProcessor, EnvelopeSealer, Mailbox, OutboxRelay, UnwiredEnvelopeSealer, VersionRetirement } from '@rackseal/deliveries';
import { MachinesRepository } from '@rackseal/machines';
import { JobQueue } from '@rackseal/jobs';
import { Clock } from '@rackseal/platform';
import { type MailboxResponse, parseDeliveryPayload } from '@rackseal/node-api-contracts';
import type { Queue } from 'bullmq';
import { createHash, randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { JOB_HANDLER_PROVIDERS, WorkerModule } from '../apps/worker/src/worker.module';
import type { TestDatabase } from './support/database';
import { useMailboxFleet } from './support/mailbox-fleet';
import type { TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { openTestEnvelope, TestEnvelopeSealer } from './support/test-envelope-sealer';
import { pollUntil } from './support/wait';

jest.setTimeout(180_000);

interface DeliveryRow {
  id: string;
  machine_id: string;
  state: string;
  generation: number;
  envelope: Buffer | null;
  ack_proof_hash: Buffer | null;
  last_error: string | null;
  attempts: number;
}

describe('deliveries and the mailbox', () => {
  const fixture = useSwtpms(1, { p256: true });
  const fleet = useMailboxFleet(fixture);
  const { fleetKey, machineId, credential, startWorker, operator, poll, ack } = fleet;
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let ds: DataSource;
  let queue: Queue;

  /** The worker's providers in this process, not started (no consumers, no relay loop): to call the processor and the relay directly. */
  async function workerProviders(sealer: EnvelopeSealer): Promise<{ processor: DeliveryProcessor; relay: OutboxRelay; close: () => Promise<void> }> {
    const moduleRef = await Test.createTestingModule({ imports: [WorkerModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }), JOB_HANDLER_PROVIDERS, { sealer })] }).compile();
    return { processor: moduleRef.get(DeliveryProcessor), relay: moduleRef.get(OutboxRelay), close: () => moduleRef.close() };
  }

  async function createOpaque(name: string, value: Buffer, target: Record<string, string> = { group: 'workers' }): Promise<void> {
    const created = await operator('post', '/v1/secrets').send({ name, kind: 'opaque', target, binding: 'pcr-sealed', value: value.toString('base64') });
    expect([created.status, created.body.code]).toEqual([201, undefined]);
  }

  async function deliveriesOf(name: string): Promise<DeliveryRow[]> {
    return (await ds.query(
      `SELECT d.id, d.machine_id, d.state, d.generation, d.envelope, d.ack_proof_hash, d.last_error, d.attempts FROM deliveries d JOIN secrets s ON s.id = d.secret_id WHERE s.name = $1 ORDER BY d.machine_id`,
      [name],
    )) as DeliveryRow[];
  }

  const auditCount = async (action: string, about = '') =>
    Number(((await ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = $1 AND details::text LIKE $2`, [action, `%${about}%`])) as { n: string }[])[0]!.n);

  beforeAll(() => ({ db, prefix, ds, queue } = fleet.parts));

  it('a secret created for a group plans one pending delivery per attested machine in its transaction; a worker seals them; the long poll on another control plane wakes; the ack takes the right proof once', async () => {
    const value = randomBytes(48);
    await createOpaque('app-token', value);
    const planned = await deliveriesOf('app-token');
    expect(planned.map((d) => [d.state, d.envelope, d.generation])).toEqual([
      ['pending', null, 1],
      ['pending', null, 1],
    ]);
    expect(new Set(planned.map((d) => d.machine_id))).toEqual(new Set(Object.values(machineId)));
    const outbox = (await ds.query('SELECT delivery_id, generation, enqueued_at FROM delivery_outbox WHERE delivery_id = ANY($1::uuid[])', [planned.map((d) => d.id)])) as { enqueued_at: Date | null }[];
    expect(outbox.map((o) => o.enqueued_at)).toEqual([null, null]);
    expect(await auditCount('delivery.planned', 'app-token')).toBe(1);

    // The long poll waits on the process replica before any worker runs; the worker's publish wakes it.
    const waiting = poll('SN-RSA', 30);
    await startWorker();
    // Not a benchmark: the poll must be woken by the publish, well before its own 30 s wait ends.
    const answered = await Promise.race([waiting, new Promise<'not woken'>((resolve) => setTimeout(() => resolve('not woken'), 20_000))]);
    expect(answered).not.toBe('not woken');
    const mailbox = (answered as { status: number; json: MailboxResponse & Record<string, unknown> }).json;
    expect(mailbox.deliveries).toHaveLength(1);
    const [delivery] = mailbox.deliveries;
    const rsa = planned.find((d) => d.machine_id === machineId['SN-RSA'])!;
    expect(delivery).toMatchObject({ id: rsa.id, secret: 'app-token', kind: 'opaque', version: 1, binding: 'pcr-sealed' });
    const stored = (await deliveriesOf('app-token')).find((d) => d.id === rsa.id)!;
    expect(stored.state).toBe('ready');
    expect(Buffer.from(delivery!.envelope, 'base64').equals(stored.envelope!)).toBe(true);
    // The envelope holds no value in the clear, and opens only with this machine's key.
    expect(stored.envelope!.includes(value)).toBe(false);
    expect(() => openTestEnvelope(fleetKey, machineId['SN-P256']!, rsa.id, 1, stored.envelope!)).toThrow();
    const opened = openTestEnvelope(fleetKey, machineId['SN-RSA']!, rsa.id, 1, stored.envelope!);
    // The agent's payload contract (libs/node-api-contracts delivery-payloads.ts), parsed as the agent does.
    const payload = parseDeliveryPayload(opened.payload, (b) => Buffer.from(b));
    expect(payload.kind).toBe('opaque');
    expect(payload.kind === 'opaque' && payload.value.equals(value)).toBe(true);

    // Refusals: audited, nothing changes.
    const refusalsBefore = await auditCount('delivery.ack-refused');
    const wrong = await ack('SN-RSA', rsa.id, randomBytes(32));
    expect([wrong.status, wrong.json.code]).toEqual([400, 'delivery.bad-proof']);
    const foreign = await ack('SN-RSA', rsa.id, opened.ackProof, 'SN-P256');
    expect([foreign.status, foreign.json.code]).toEqual([404, 'delivery.not-found']);
    const unknown = await ack('SN-RSA', '00000000-0000-4000-8000-000000000000', opened.ackProof);
    expect([unknown.status, unknown.json.code]).toEqual([404, 'delivery.not-found']);
    const malformed = await ack('SN-RSA', rsa.id, 'AAAA');
    expect([malformed.status, malformed.json.code]).toEqual([400, 'delivery.invalid']);
    expect(await auditCount('delivery.ack-refused')).toBe(refusalsBefore + 4);
    const [foreignRecord] = (await ds.query(`SELECT details FROM audit_log WHERE action = 'delivery.ack-refused' AND details->>'ownerId' = $1`, [machineId['SN-RSA']])) as { details: Record<string, unknown> }[];
    expect(foreignRecord!.details).toMatchObject({ code: 'delivery.not-found', machineId: machineId['SN-P256'], deliveryId: rsa.id });
    expect((await deliveriesOf('app-token')).find((d) => d.id === rsa.id)!.state).toBe('ready');

    const first = await ack('SN-RSA', rsa.id, opened.ackProof);
    expect([first.status, first.json.alreadyAcked, first.json.state]).toEqual([200, false, 'acked']);
    const second = await ack('SN-RSA', rsa.id, opened.ackProof);
    expect([second.status, second.json.alreadyAcked, second.json.ackedAt]).toEqual([200, true, first.json.ackedAt]);
    expect(await auditCount('delivery.acked', rsa.id)).toBe(1);
    const acked = (await deliveriesOf('app-token')).find((d) => d.id === rsa.id)!;
    expect([acked.state, acked.envelope]).toEqual(['acked', null]);
    expect((await poll('SN-RSA', 0)).json.deliveries).toEqual([]);
    // The other machine's delivery is ready in its own mailbox only.
    const other = (await poll('SN-P256', 0)).json as unknown as MailboxResponse;
    expect(other.deliveries.map((d) => d.secret)).toEqual(['app-token']);
  });

  it('acks arriving together are decided in one batch as one by one: a repeated ack answered alreadyAcked, a wrong proof and a foreign delivery refused and audited, one acked record each', async () => {
    await createOpaque('batched-acks', randomBytes(24));
    await startWorker();
    const ready = await pollUntil(
      () => deliveriesOf('batched-acks'),
      (rows) => rows.length === 2 && rows.every((d) => d.state === 'ready'),
    );
    const rsa = ready.find((d) => d.machine_id === machineId['SN-RSA'])!;
    const p256 = ready.find((d) => d.machine_id === machineId['SN-P256'])!;
    const proofOf = (serial: string, d: DeliveryRow) => openTestEnvelope(fleetKey, machineId[serial]!, d.id, 1, d.envelope!).ackProof;
    const caller = async (serial: string) => ({ credentialId: credential[serial]!.credentialId, machine: (await fleet.parts.app.get(MachinesRepository).findById(machineId[serial]!))! });
    const [asRsa, asP256] = [await caller('SN-RSA'), await caller('SN-P256')];
    const mailbox = fleet.parts.app.get(Mailbox);
    const recordsBefore = Number(((await ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'delivery.ack-refused'`)) as { n: string }[])[0]!.n);
    // Submitted in one turn of the event loop: one batch, one transaction.
    const answers = await Promise.allSettled([
      mailbox.ack(asRsa, rsa.id, { proof: proofOf('SN-RSA', rsa).toString('base64') }),
      mailbox.ack(asRsa, rsa.id.toUpperCase(), { proof: proofOf('SN-RSA', rsa).toString('base64') }),
      mailbox.ack(asP256, p256.id, { proof: randomBytes(32).toString('base64') }),
      mailbox.ack(asRsa, p256.id, { proof: proofOf('SN-P256', p256).toString('base64') }),
    ]);
    const [first, repeated, wrong, foreign] = answers;
    expect(first).toMatchObject({ status: 'fulfilled', value: { deliveryId: rsa.id, alreadyAcked: false, state: 'acked' } });
    expect(repeated).toMatchObject({ status: 'fulfilled', value: { deliveryId: rsa.id, alreadyAcked: true } });
    expect((repeated as PromiseFulfilledResult<{ ackedAt: string }>).value.ackedAt).toBe((first as PromiseFulfilledResult<{ ackedAt: string }>).value.ackedAt);
    expect(wrong).toMatchObject({ status: 'rejected', reason: { code: 'delivery.bad-proof' } });
    expect(foreign).toMatchObject({ status: 'rejected', reason: { code: 'delivery.not-found' } });
    expect(Number(((await ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'delivery.ack-refused'`)) as { n: string }[])[0]!.n)).toBe(recordsBefore + 2);
    expect(await auditCount('delivery.acked', rsa.id)).toBe(1);
    expect(await auditCount('delivery.acked', p256.id)).toBe(0);
    expect((await deliveriesOf('batched-acks')).map((d) => [d.id, d.state])).toEqual(
      [rsa, p256].sort((a, b) => a.machine_id.localeCompare(b.machine_id)).map((d) => [d.id, d.id === rsa.id ? 'acked' : 'ready']),
    );
    // The refused delivery is still acked by its own machine with its proof.
    expect(await mailbox.ack(asP256, p256.id, { proof: proofOf('SN-P256', p256).toString('base64') })).toMatchObject({ alreadyAcked: false, state: 'acked' });
    expect(await auditCount('delivery.acked', p256.id)).toBe(1);
  });

  it('the last acks of a version arriving on two replicas at once retire the older version exactly once; a retirement its process left undone after the acks committed is the sweep\'s, once', async () => {
    await createOpaque('retire-race', randomBytes(24));
    await startWorker();
    const app = fleet.parts.app;
    const versionsOf = async () =>
      (await ds.query(`SELECT v.id, v.version, v.retired_at FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.name = 'retire-race' ORDER BY v.version`)) as {
        id: string;
        version: number;
        retired_at: Date | null;
      }[];
    const readyOf = (version: number) =>
      pollUntil(
        async () =>
          (await ds.query(
            `SELECT d.id, d.machine_id, d.state, d.generation, d.envelope, v.version FROM deliveries d JOIN secret_versions v ON v.id = d.version_id JOIN secrets s ON s.id = d.secret_id
              WHERE s.name = 'retire-race' AND v.version = $1 ORDER BY d.machine_id`,
            [version],
          )) as (DeliveryRow & { version: number })[],
        (rows) => rows.length === 2 && rows.every((d) => d.state === 'ready'),
      );
    const proofOf = (d: DeliveryRow & { version?: number }) => openTestEnvelope(fleetKey, d.machine_id, d.id, d.version!, d.envelope!).ackProof.toString('base64');
    const serialOf = (d: DeliveryRow) => Object.keys(machineId).find((serial) => machineId[serial] === d.machine_id)!;
    const caller = async (d: DeliveryRow) => ({ credentialId: credential[serialOf(d)]!.credentialId, machine: (await app.get(MachinesRepository).findById(d.machine_id))! });
    const replicaA = app.get(Mailbox);
    // A second replica: its own batcher, the same database (as another control-plane process).
    const replicaB = new Mailbox(app.get(DeliveriesRepository), app.get(DeliveryNotifications), app.get(AuditLog), app.get(Clock), app.get(VersionRetirement));
    const secretId = ((await ds.query(`SELECT id FROM secrets WHERE name = 'retire-race'`)) as { id: string }[])[0]!.id;

    for (const d of await readyOf(1)) {
      expect(await replicaA.ack(await caller(d), d.id, { proof: proofOf(d) })).toMatchObject({ alreadyAcked: false });
    }
    const rotate = async () => expect((await operator('post', '/v1/secrets/retire-race/versions').send({ value: randomBytes(24).toString('base64') })).status).toBe(201);
    await rotate();
    const [first, second] = await readyOf(2);
    const answers = await Promise.all([replicaA.ack(await caller(first!), first!.id, { proof: proofOf(first!) }), replicaB.ack(await caller(second!), second!.id, { proof: proofOf(second!) })]);
    expect(answers.map((a) => [a.state, a.alreadyAcked])).toEqual([
      ['acked', false],
      ['acked', false],
    ]);
    expect((await versionsOf()).map((v) => [v.version, v.retired_at !== null])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(await auditCount('secret.versions-retired', secretId)).toBe(1);
    expect(await auditCount('delivery.acked', first!.id)).toBe(1);
    expect(await auditCount('delivery.acked', second!.id)).toBe(1);

    // Version 3 acked by the statement alone: a process that stopped after the commit, before its retirement check.
    await rotate();
    const v3 = await readyOf(3);
    const recordedAt = app.get(AuditLog).statementRecordedAt([]);
    const decided = await app.get(DeliveriesRepository).ackMany(
      v3.map((d) => ({ id: d.id, machineId: d.machine_id, proofHash: createHash('sha256').update(Buffer.from(proofOf(d), 'base64')).digest(), actor: `node-credential:${credential[serialOf(d)]!.credentialId}` })),
      new Date(),
      {
        action: 'delivery.acked',
        outcome: 'success',
        recordedAt,
      },
    );
    expect(decided.map((d) => [d.kind, d.kind === 'acked' && d.alreadyAcked])).toEqual([
      ['acked', false],
      ['acked', false],
    ]);
    expect((await versionsOf()).map((v) => v.retired_at !== null)).toEqual([true, false, false]);
    // The statement's records are what append writes: the sequencer's leaf covers exactly these details.
    const v3Id = (await versionsOf())[2]!.id;
    for (const d of v3) {
      const rows = (await ds.query(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE subject = $1 AND action = $2`, [`delivery:${d.id}`, 'delivery.acked'])) as AuditRow[];
      expect(rows.map((r) => [r.actor, r.action, r.outcome])).toEqual([[`node-credential:${credential[serialOf(d)]!.credentialId}`, 'delivery.acked', 'success']]);
      expect(leafOfRow(rows[0]!, 1)?.detailsText).toBe(canonicalJson({ deliveryId: d.id, machineId: d.machine_id, versionId: v3Id, generation: d.generation }));
    }
    const retirement = app.get(VersionRetirement);
    expect(await retirement.sweep(new Date(), 100)).toBe(1);
    expect(await retirement.sweep(new Date(), 100)).toBe(0);
    expect((await versionsOf()).map((v) => v.retired_at !== null)).toEqual([true, true, false]);
    expect(await auditCount('secret.versions-retired', secretId)).toBe(2);
    // The agents' acks after all this: harmless, answered with the statement's ackedAt.
    for (const d of v3) {
      const again = await replicaB.ack(await caller(d), d.id, { proof: proofOf(d) });
      expect(again).toMatchObject({ alreadyAcked: true, state: 'acked' });
      expect(again.ackedAt).toBe(decided[v3.indexOf(d)]!.kind === 'acked' ? (decided[v3.indexOf(d)] as { ackedAt: Date }).ackedAt.toISOString() : null);
      expect(await auditCount('delivery.acked', d.id)).toBe(1);
    }
  });

  it('the handler run twice and at once writes one envelope, audits one ready and leaves the rest as no-ops', async () => {
    await createOpaque('twice', randomBytes(16), { machine: 'SN-P256' });
    const [delivery] = await deliveriesOf('twice');
    const sealer = new TestEnvelopeSealer(fleetKey);
    const providers = await workerProviders(sealer);
    try {
      const outcomes = await Promise.all([1, 2, 3].map(() => providers.processor.deliver(delivery!.id, 1, false)));
      expect(outcomes.filter((o) => o === 'ready')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'no-op')).toHaveLength(2);
      const after = (await deliveriesOf('twice'))[0]!;
      expect(after.state).toBe('ready');
      expect(await providers.processor.deliver(delivery!.id, 1, false)).toBe('no-op');
      expect((await deliveriesOf('twice'))[0]!.envelope!.equals(after.envelope!)).toBe(true);
      expect(await auditCount('delivery.ready', delivery!.id)).toBe(1);
      // A stale round (an old job of a retried delivery) is a no-op too.
      expect(await providers.processor.deliver(delivery!.id, 7, false)).toBe('no-op');
    } finally {
      await providers.close();
    }
  });

  it('the same job enqueued twice is one job', async () => {
    const producer = new JobQueue(testConfig(db, prefix.prefix));
    try {
      const payload = { deliveryId: '11111111-1111-4111-8111-111111111111', generation: 1 };
      const [a] = await producer.enqueueMany('delivery.deliver', [payload, payload]);
      await producer.enqueue('delivery.deliver', payload);
      const jobs = (await queue.getJobs()).filter((j) => j.id === a!.id);
      expect(jobs).toHaveLength(1);
      expect(a!.id).toBe('delivery.deliver.11111111-1111-4111-8111-111111111111.1');
      await queue.remove(a!.id);
    } finally {
      await producer.onApplicationShutdown();
    }
  });

  it('the last failed attempt leaves the delivery failed (dead letter) with its code; the operator lists and retries it and a worker then delivers the new round', async () => {
    await createOpaque('unlucky', randomBytes(16), { machine: 'SN-RSA' });
    const [delivery] = await deliveriesOf('unlucky');
    const providers = await workerProviders(new UnwiredEnvelopeSealer());
    try {
      await expect(providers.processor.deliver(delivery!.id, 1, false)).rejects.toMatchObject({ code: 'delivery.sealer-unavailable' });
      expect((await deliveriesOf('unlucky'))[0]).toMatchObject({ state: 'pending', last_error: 'delivery.sealer-unavailable', attempts: 1 });
      await expect(providers.processor.deliver(delivery!.id, 1, true)).rejects.toBeInstanceOf(DeliveryGaveUpError);
    } finally {
      await providers.close();
    }
    expect((await deliveriesOf('unlucky'))[0]).toMatchObject({ state: 'failed', last_error: 'delivery.sealer-unavailable', attempts: 2, envelope: null });
    expect(await auditCount('delivery.failed', delivery!.id)).toBe(1);

    const listed = await operator('get', '/v1/deliveries?state=failed&secret=unlucky');
    expect(listed.status).toBe(200);
    expect((listed.body as { id: string; lastError: string; machine: { serial: string } }[]).map((d) => [d.id, d.lastError, d.machine.serial])).toEqual([[delivery!.id, 'delivery.sealer-unavailable', 'SN-RSA']]);
    const badState = await operator('get', '/v1/deliveries?state=lost');
    expect([badState.status, badState.body.code]).toEqual([400, 'delivery.invalid']);

    const retried = await operator('post', `/v1/deliveries/${delivery!.id}/retry`);
    expect([retried.status, retried.body.state, retried.body.generation]).toEqual([200, 'pending', 2]);
    expect(await auditCount('delivery.retried', delivery!.id)).toBe(1);
    const again = await operator('post', `/v1/deliveries/${delivery!.id}/retry`);
    expect([again.status, again.body.code]).toEqual([409, 'delivery.not-failed']);
    const missing = await operator('post', '/v1/deliveries/00000000-0000-4000-8000-000000000000/retry');
    expect([missing.status, missing.body.code]).toEqual([404, 'delivery.not-found']);

    await startWorker();
    const done = await pollUntil(() => deliveriesOf('unlucky'), (rows) => rows[0]!.state === 'ready');
    expect(done[0]).toMatchObject({ state: 'ready', generation: 2, last_error: null });
    expect(openTestEnvelope(fleetKey, machineId['SN-RSA']!, delivery!.id, 1, done[0]!.envelope!).payload.length).toBeGreaterThan(0);
  });

  it('two workers relay the outbox without duplicates: every row enqueued once, every delivery ready once', async () => {
    await Promise.all([startWorker(), startWorker()]);
    const names = Array.from({ length: 10 }, (_, i) => `fanout-${i}`);
    await Promise.all(names.map((name) => createOpaque(name, randomBytes(16))));
    const rows = async () => (await Promise.all(names.map((n) => deliveriesOf(n)))).flat();
    const ready = await pollUntil(rows, (all) => all.length === 20 && all.every((d) => d.state === 'ready'));
    expect(ready.map((d) => d.state)).toEqual(Array(20).fill('ready'));
    const outbox = (await ds.query('SELECT delivery_id, enqueued_by FROM delivery_outbox WHERE delivery_id = ANY($1::uuid[])', [ready.map((d) => d.id)])) as { delivery_id: string; enqueued_by: string | null }[];
    expect(outbox).toHaveLength(20);
    expect(outbox.every((o) => o.enqueued_by !== null)).toBe(true);
    const readyAudits = Number(((await ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'delivery.ready' AND details->>'deliveryId' = ANY($1::text[])`, [ready.map((d) => d.id)])) as { n: string }[])[0]!.n);
    expect(readyAudits).toBe(20);
  });

  it('the reconciler rebuilds the jobs Redis lost (the queue obliterated after the relay) and every delivery still ends ready exactly once', async () => {
    await createOpaque('lost', randomBytes(16));
    const providers = await workerProviders(new TestEnvelopeSealer(fleetKey));
    try {
      expect(await providers.relay.relayBatch()).toBe(2);
    } finally {
      await providers.close();
    }
    const planned = await deliveriesOf('lost');
    expect(planned.map((d) => d.state)).toEqual(['pending', 'pending']);
    expect((await queue.getJobs()).filter((j) => planned.some((d) => j.id === `delivery.deliver.${d.id}.1`))).toHaveLength(2);
    // Redis lost its data: the jobs (and any schedule) are gone, the outbox says they were enqueued.
    await queue.obliterate({ force: true });
    expect(await queue.getJobs()).toEqual([]);
    await startWorker({ DELIVERY_RECONCILE_INTERVAL_MS: '1000' });
    const done = await pollUntil(() => deliveriesOf('lost'), (rows) => rows.every((d) => d.state === 'ready'), 60_000);
    expect(done.map((d) => d.state)).toEqual(['ready', 'ready']);
    for (const d of done) {
      expect(await auditCount('delivery.ready', d.id)).toBe(1);
    }
  });

  it('a job that finds its machine revoked (a revoke committed after the job was queued) cancels the delivery with one record; the other run and a later one are no-ops', async () => {
    await createOpaque('revoked-late', randomBytes(16), { machine: 'SN-P256' });
    const [delivery] = await deliveriesOf('revoked-late');
    expect(delivery!.state).toBe('pending');
    // The machine as a revoke leaves it, without the revoke's own cancellations: the race the job must handle.
    await ds.query(`UPDATE machines SET state = 'revoked' WHERE id = $1`, [machineId['SN-P256']]);
    const providers = await workerProviders(new TestEnvelopeSealer(fleetKey));
    try {
      const outcomes = await Promise.all([1, 2].map(() => providers.processor.deliver(delivery!.id, 1, false)));
      expect(outcomes.sort()).toEqual(['cancelled', 'no-op']);
      const after = (await deliveriesOf('revoked-late'))[0]!;
      expect([after.state, after.envelope]).toEqual(['cancelled', null]);
      expect(await auditCount('delivery.cancelled', delivery!.id)).toBe(1);
      expect(await providers.processor.deliver(delivery!.id, 1, false)).toBe('no-op');
    } finally {
      await providers.close();
      await ds.query(`UPDATE machines SET state = 'attested' WHERE id = $1`, [machineId['SN-P256']]);
    }
  });
});
