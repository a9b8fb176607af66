/**
 * Deliveries under faults (issue 14's acceptance): a fan-out of one secret to a fleet of simulated
 * machines, interrupted half-way by a worker killed with SIGKILL, by a Redis restarted empty (no
 * persistence: the jobs are rebuilt from PostgreSQL) and by PostgreSQL stopped and started again.
 * The services are private (a redis-server and a PostgreSQL of this file's own, really stopped);
 * the control plane and the workers are built processes, the workers with the test-only
 * TestEnvelopeSealer (test/support/test-envelope-sealer.ts), and the simulated agents open their
 * envelopes and ack through the mailbox. Oracles: every delivery ends acked in its first round, one
 * `delivery.ready` (one envelope written) and one `delivery.acked` record per delivery, and each
 * agent saw exactly one first ack per delivery. Every wait is for a state, never for time.
 *
 * The machines are seeded as attested in SQL (inventory import, then a finished registration and a
 * live node credential each, sealed under the master key as the finish seals it): enrolling a
 * hundred swtpms would cost minutes and prove nothing the other suites do not.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ApiTokens } from '@rackseal/api-tokens';
import { nodeCredentialContext } from '@rackseal/attestation';
import { SecretBytes } from '@rackseal/config';
import { sealEnvelope } from '@rackseal/envelope';
import { InventoryImporter } from '@rackseal/inventory';
import { DELIVERIES_ROUTE, deliveryAckRoute, type MailboxResponse, nodeApiPath } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { Logger } from 'nestjs-pino';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { PrivatePostgres } from './support/private-postgres';
import { type RunningProcess, startControlPlane, startDeliveryWorker } from './support/processes';
import { PrivateRedis } from './support/redis-server';
import { testConfig, testEnv } from './support/test-config';
import { openTestEnvelope } from './support/test-envelope-sealer';
import { pollUntil } from './support/wait';

jest.setTimeout(240_000);

/** The fleet one secret fans out to. */
const FLEET = 100;
const QUEUE_PREFIX = 'faults';

interface SimulatedMachine {
  readonly serial: string;
  readonly id: string;
  readonly credential: NodeCredential;
}

interface Tally {
  state: string;
  generation: number;
  ready: number;
  acked: number;
}

describe('deliveries under faults', () => {
  const fleetKey = randomBytes(32);
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let db: TestDatabase;
  let ds: DataSource;
  let cp: { proc: RunningProcess; baseUrl: string };
  let admin: string;
  const fleet: SimulatedMachine[] = [];
  const workers: RunningProcess[] = [];
  /** Per delivery id, how many acks answered 200 with alreadyAcked false (the agents' side of "exactly once"). */
  const firstAcks = new Map<string, number>();
  /** Every answer but a 200 the agents got, as `status code` (a refusal of a fault must be a clear 503, never a 500). */
  const refusals = new Set<string>();

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...testEnv(db, QUEUE_PREFIX, extra), REDIS_URL: redis.url });

  async function startWorker(extra: NodeJS.ProcessEnv = {}): Promise<RunningProcess> {
    // Two seals at a time, each stretched: the fan-out lasts long enough to be interrupted.
    const proc = await startDeliveryWorker(env({ WORKER_CONCURRENCY: '2', WORKER_LOCK_MS: '2000', DELIVERY_RECONCILE_INTERVAL_MS: '1000', RACKSEAL_TEST_SEAL_DELAY_MS: '150', ...extra }), fleetKey);
    workers.push(proc);
    return proc;
  }

  async function stopWorkers(): Promise<void> {
    await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  }

  /** Seeds the fleet: imported, then attested with a finished registration and a live node credential each. */
  async function seedFleet(): Promise<void> {
    const config = testConfig(db, QUEUE_PREFIX);
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, QUEUE_PREFIX, { LOG_LEVEL: 'silent', REDIS_URL: redis.url }))] }).compile();
    const app: INestApplication = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    await app.init();
    try {
      admin = (await app.get(ApiTokens).issue('admin', ['admin'], 'test')).token;
      const serials = Array.from({ length: FLEET }, (_, i) => `SN-F${String(i).padStart(3, '0')}`);
      const ekHash = (serial: string) => createHash('sha256').update(`ek of ${serial}`).digest('hex');
      const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', ...serials.map((s) => `${s},,${s.toLowerCase()},fleet,,${ekHash(s)}`)].join('\n');
      expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
    } finally {
      await app.close();
    }
    const ids = new Map(((await ds.query('SELECT id, serial FROM machines')) as { id: string; serial: string }[]).map((r) => [r.serial, r.id]));
    for (const [serial, id] of [...ids.entries()].sort()) {
      const registrationId = randomUUID();
      const key = randomBytes(32);
      const credentialId = randomBytes(16).toString('hex');
      await ds.transaction(async (m) => {
        await m.query(
          `INSERT INTO attestation_registrations (id, machine_id, previous_state, ek_pub_hash, ek_public, ak_public, ak_name, secret_sealed, nonce, pcr_bank, pcrs, created_at, deadline, finished_at, outcome)
           SELECT $1, id, 'imported', ek_pub_hash, $3, $4, $5, $6, $7, 'sha256', '{0,7}', now(), now() + interval '1 minute', now(), 'attested' FROM machines WHERE id = $2`,
          [registrationId, id, randomBytes(300), randomBytes(100), Buffer.concat([Buffer.from([0, 11]), randomBytes(32)]), randomBytes(100), randomBytes(32)],
        );
        await m.query('INSERT INTO node_credentials (credential_id, machine_id, registration_id, key_sealed, created_at) VALUES ($1, $2, $3, $4, now())', [
          credentialId,
          id,
          registrationId,
          sealEnvelope(config.masterKey.key!, nodeCredentialContext(credentialId), key),
        ]);
        await m.query(`UPDATE machines SET state = 'attested', first_attested_at = now(), last_attested_at = now() WHERE id = $1`, [id]);
      });
      fleet.push({ serial, id, credential: { credentialId, key: new SecretBytes(key) } });
    }
  }

  async function node(machine: SimulatedMachine, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const headers = signNodeRequest({ credential: machine.credential, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) });
    const response = await fetch(`${cp.baseUrl}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : bytes,
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** One simulated agent pass: opens every ready envelope and acks it. A fault may refuse or cut any call: the next pass tries again. */
  async function agentPass(machine: SimulatedMachine): Promise<void> {
    try {
      const box = await node(machine, 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=0`);
      if (box.status !== 200) {
        refusals.add(`${box.status} ${String(box.json.code)}`);
        return;
      }
      for (const d of (box.json as unknown as MailboxResponse).deliveries) {
        const opened = openTestEnvelope(fleetKey, machine.id, d.id, d.version, Buffer.from(d.envelope, 'base64'));
        const answer = await node(machine, 'POST', nodeApiPath(deliveryAckRoute(d.id)), { proof: opened.ackProof.toString('base64') });
        if (answer.status === 200 && answer.json.alreadyAcked === false) {
          firstAcks.set(d.id, (firstAcks.get(d.id) ?? 0) + 1);
        } else if (answer.status !== 200) {
          refusals.add(`${answer.status} ${String(answer.json.code)}`);
        }
      }
    } catch {
      // The control plane or its database is down: what a real agent retries too.
    }
  }

  /** The fleet's agents, polling and acking until stopped. */
  function runAgents(): { stop: () => Promise<void> } {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        for (let i = 0; i < fleet.length; i += 25) {
          await Promise.all(fleet.slice(i, i + 25).map((m) => agentPass(m)));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }

  async function createSecret(name: string): Promise<void> {
    const created = await fetch(`${cp.baseUrl}/v1/secrets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, kind: 'opaque', target: { group: 'fleet' }, binding: 'pcr-sealed', value: randomBytes(32).toString('base64') }),
    });
    expect([created.status, ((await created.json()) as { code?: string }).code]).toEqual([201, undefined]);
  }

  /** Per delivery of `name`: its state and round, and its `delivery.ready` and `delivery.acked` records. */
  async function tally(name: string): Promise<Map<string, Tally>> {
    const rows = (await ds.query(
      `SELECT d.id, d.state, d.generation,
              (SELECT count(*) FROM audit_log a WHERE a.action = 'delivery.ready' AND a.details->>'deliveryId' = d.id::text)::int AS ready,
              (SELECT count(*) FROM audit_log a WHERE a.action = 'delivery.acked' AND a.details->>'deliveryId' = d.id::text)::int AS acked
         FROM deliveries d JOIN secrets s ON s.id = d.secret_id WHERE s.name = $1`,
      [name],
    )) as ({ id: string } & Tally)[];
    return new Map(rows.map((r) => [r.id, { state: r.state, generation: r.generation, ready: r.ready, acked: r.acked }]));
  }

  const states = async (name: string) => {
    const counts: Record<string, number> = {};
    for (const t of (await tally(name)).values()) {
      counts[t.state] = (counts[t.state] ?? 0) + 1;
    }
    return counts;
  };

  /** Waits (state, not time) until the fan-out is under way: some deliveries ready, some still pending. */
  async function midFanOut(name: string): Promise<Record<string, number>> {
    const seen = await pollUntil(() => states(name), (c) => (c.ready ?? 0) + (c.acked ?? 0) >= 10, 60_000, 20);
    expect(seen.pending ?? 0).toBeGreaterThan(0);
    return seen;
  }

  /** The acceptance: every delivery of `name` acked in its first round, one envelope and one ack each, from both sides. */
  async function expectAckedOnce(name: string): Promise<void> {
    // A probe that meets the database restarting reads nothing this time and polls again.
    const done = await pollUntil(() => tally(name).catch(() => new Map<string, Tally>()), (t) => t.size === FLEET && [...t.values()].every((d) => d.state === 'acked'), 180_000, 250);
    expect(done.size).toBe(FLEET);
    expect([...done.values()].filter((d) => !(d.state === 'acked' && d.generation === 1 && d.ready === 1 && d.acked === 1))).toEqual([]);
    expect([...done.keys()].filter((id) => firstAcks.get(id) !== 1)).toEqual([]);
    const failed = (await ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action IN ('delivery.failed', 'delivery.expired')`)) as { n: number }[];
    expect(failed[0]!.n).toBe(0);
  }

  beforeAll(async () => {
    [pg, redis] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
    db = await createTestDatabase({ adminUrl: pg.adminUrl });
    ds = await openDataSource(db.url);
    await seedFleet();
    cp = await startControlPlane(env());
  }, 240_000);

  afterAll(async () => {
    await stopWorkers();
    await cp?.proc.stop('SIGKILL');
    await ds?.destroy();
    await redis?.dispose();
    await pg?.dispose();
  });

  beforeEach(() => refusals.clear());
  afterEach(stopWorkers);

  it(`a worker killed with SIGKILL mid-fan-out: the other takes over its jobs, and all ${FLEET} deliveries end acked once`, async () => {
    const [doomed] = await Promise.all([startWorker(), startWorker()]);
    const agents = runAgents();
    try {
      await createSecret('killed-worker');
      await midFanOut('killed-worker');
      expect(await doomed!.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      await expectAckedOnce('killed-worker');
      expect([...refusals]).toEqual([]);
    } finally {
      await agents.stop();
    }
  });

  it(`Redis restarted empty mid-fan-out: the reconciler rebuilds the lost jobs from PostgreSQL, and all ${FLEET} deliveries end acked once`, async () => {
    await Promise.all([startWorker(), startWorker()]);
    const agents = runAgents();
    try {
      await createSecret('lost-redis');
      await midFanOut('lost-redis');
      await redis.stop();
      await redis.start();
      await expectAckedOnce('lost-redis');
      expect([...refusals]).toEqual([]);
    } finally {
      await agents.stop();
    }
  });

  it(`PostgreSQL stopped and started again mid-fan-out: the control plane and the workers ride it out, and all ${FLEET} deliveries end acked once`, async () => {
    await Promise.all([startWorker(), startWorker()]);
    const agents = runAgents();
    try {
      await createSecret('lost-postgres');
      await midFanOut('lost-postgres');
      await pg.stop();
      // The outage is seen: the control plane's readiness says the database is down.
      const down = await pollUntil(() => fetch(`${cp.baseUrl}/health/ready`).then((r) => r.status), (status) => status === 503);
      expect(down).toBe(503);
      await pg.start();
      await expectAckedOnce('lost-postgres');
      // While it was down the agents were told so: 503 database.unavailable, never a 500. (A
      // transaction cut between two queries fails with TypeORM's released-runner error, classified
      // since: test/database-outage-errors.test.ts.) A failure shows the control plane's error lines.
      const unexpected = [...refusals].filter((r) => r !== '503 database.unavailable');
      const errors = unexpected.length === 0 ? [] : cp.proc.logs.filter((l) => (l.level ?? 0) >= 50);
      expect({ unexpected, errors }).toEqual({ unexpected: [], errors: [] });
      // Nobody exited: the processes reconnected by themselves.
      expect([cp.proc, ...workers].map((p) => p.child.exitCode ?? p.child.signalCode)).toEqual([null, null, null]);
    } finally {
      await agents.stop();
    }
  });
});
