/**
 * rackseal on a real Redis Cluster (issue 15 item 3): three masters of the local redis-server built
 * with `redis-cli --cluster create`, REDIS_CLUSTER_NODES naming them, the delivery suites' fleet
 * (test/support/mailbox-fleet.ts: an in-process control plane, a control plane process, worker
 * processes, swtpm-enrolled machines) running on it. A delivery fan-out is planned, sealed, woken
 * over cluster pub/sub, fetched and acked; the rate limiter's script refuses over its bucket;
 * readiness reports Redis up; every key lands in the one slot of the `{QUEUE_PREFIX}` hash tag, on
 * the node owning it; a client seeded with a node that does not own the slot follows MOVED.
 */
import { RateLimiter } from '../apps/control-plane/src/hardening/rate-limiter';
import { RedisDeliveryNotifications } from '@rackseal/deliveries';
import { createRedisConnection } from '@rackseal/jobs';
import { type MailboxResponse, parseDeliveryPayload } from '@rackseal/node-api-contracts';
import { Queue } from 'bullmq';
import type { Cluster } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { type NodeAnswer, useMailboxFleet } from './support/mailbox-fleet';
import { RedisCluster } from './support/redis-cluster';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { openTestEnvelope } from './support/test-envelope-sealer';
import { pollUntil } from './support/wait';

jest.setTimeout(180_000);

describe('rackseal on a Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  let cluster: RedisCluster;
  // Started before the fleet (hooks run in the order they are registered) and stopped after it.
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 60_000);
  const fixture = useSwtpms(1, { p256: true });
  /**
   * Every process and config of the fleet: the cluster's seeds, and a REDIS_URL where nothing listens
   * (its host is ignored in cluster mode), so a client that fell back to one Redis would fail.
   */
  const clusterEnv = (): NodeJS.ProcessEnv => ({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: cluster.nodesVariable });
  const fleet = useMailboxFleet(fixture, clusterEnv);
  afterAll(() => cluster?.stop());
  const { fleetKey, machineId, startWorker, operator, poll, ack } = fleet;

  /** The fleet's config (cluster mode) with `extra` on top. */
  const clusterConfig = (extra: NodeJS.ProcessEnv = {}) => testConfig(fleet.parts.db, fleet.parts.prefix.prefix, { ...clusterEnv(), LOG_LEVEL: 'silent', ...extra });

  /** The slot of the deployment's hash tag, and the port of the master owning it. */
  async function tagSlot(): Promise<{ slot: number; owner: number }> {
    const client = cluster.node(cluster.ports[0]!);
    try {
      const slot = (await client.call('CLUSTER', 'KEYSLOT', fleet.parts.prefix.keyPrefix)) as number;
      return { slot, owner: await cluster.ownerOf(slot) };
    } finally {
      client.disconnect();
    }
  }

  it('the cluster really is three masters sharing the slots, and the hash tag lives on one of them', async () => {
    const { slot, owner } = await tagSlot();
    expect(cluster.ports).toContain(owner);
    const owners = new Set<number>();
    for (const port of cluster.ports) {
      const client = cluster.node(port);
      const info = (await client.call('CLUSTER', 'INFO')) as string;
      expect(info).toMatch(/cluster_state:ok/);
      expect(info).toMatch(/cluster_size:3/);
      client.disconnect();
      owners.add(await cluster.ownerOf([0, 8000, 16383][cluster.ports.indexOf(port)]!));
    }
    expect(owners.size).toBe(3);
    expect(slot).toBeGreaterThanOrEqual(0);
  });

  it('a secret for a group fans out: planned, sealed by a worker, the long poll woken over cluster pub/sub, fetched and acked', async () => {
    const value = randomBytes(40);
    const created = await operator('post', '/v1/secrets').send({ name: 'cluster-token', kind: 'opaque', target: { group: 'workers' }, binding: 'pcr-sealed', value: value.toString('base64') });
    expect([created.status, created.body.code]).toEqual([201, undefined]);
    const planned = (await fleet.parts.ds.query(`SELECT d.id, d.machine_id, d.state FROM deliveries d JOIN secrets s ON s.id = d.secret_id WHERE s.name = 'cluster-token' ORDER BY d.machine_id`)) as { id: string; machine_id: string; state: string }[];
    expect(planned.map((d) => d.state)).toEqual(['pending', 'pending']);
    expect(new Set(planned.map((d) => d.machine_id))).toEqual(new Set(Object.values(machineId)));

    // The poll waits on the control-plane process before any worker runs; the worker's PUBLISH (through
    // whichever node its cluster client picks) reaches the process's subscription on another.
    const waiting = poll('SN-RSA', 30);
    await startWorker();
    const answered = await Promise.race([waiting, new Promise<'not woken'>((resolve) => setTimeout(() => resolve('not woken'), 20_000))]);
    expect(answered).not.toBe('not woken');
    const mailbox = (answered as NodeAnswer).json as unknown as MailboxResponse;
    expect(mailbox.deliveries.map((d) => d.secret)).toEqual(['cluster-token']);
    const delivery = mailbox.deliveries[0]!;
    const opened = openTestEnvelope(fleetKey, machineId['SN-RSA']!, delivery.id, 1, Buffer.from(delivery.envelope, 'base64'));
    const payload = parseDeliveryPayload(opened.payload, (b) => Buffer.from(b));
    expect(payload.kind === 'opaque' && payload.value.equals(value)).toBe(true);
    const acked = await ack('SN-RSA', delivery.id, opened.ackProof);
    expect([acked.status, acked.json.state, acked.json.alreadyAcked]).toEqual([200, 'acked', false]);

    // The other machine's delivery, sealed by the same BullMQ run on the cluster, is acked too.
    const other = await pollUntil(() => poll('SN-P256', 0), (r) => (r.json as unknown as MailboxResponse).deliveries.length === 1);
    const otherDelivery = (other.json as unknown as MailboxResponse).deliveries[0]!;
    const otherOpened = openTestEnvelope(fleetKey, machineId['SN-P256']!, otherDelivery.id, 1, Buffer.from(otherDelivery.envelope, 'base64'));
    expect((await ack('SN-P256', otherDelivery.id, otherOpened.ackProof)).json.state).toBe('acked');
    const states = (await fleet.parts.ds.query(`SELECT d.state FROM deliveries d JOIN secrets s ON s.id = d.secret_id WHERE s.name = 'cluster-token'`)) as { state: string }[];
    expect(states.map((s) => s.state)).toEqual(['acked', 'acked']);
    // The job went through BullMQ on the cluster: completed there, none failed.
    const counts = await fleet.parts.queue.getJobCounts('completed', 'failed');
    expect(counts.completed).toBeGreaterThanOrEqual(1);
    expect(counts.failed).toBe(0);
  });

  it('the rate limiter\'s script runs on the cluster: a bucket refuses past its burst, another bucket is untouched', async () => {
    const limiter = new RateLimiter(clusterConfig({ RATE_LIMIT_ADDRESS_PER_SECOND: '1', RATE_LIMIT_BURST_SECONDS: '2' }));
    try {
      limiter.onModuleInit();
      // The limiter queues nothing while its client connects (and lets requests through meanwhile): a
      // bucket of its own shows when the cluster answers, by refusing once its burst is spent.
      const warmedUp = await pollUntil(() => limiter.take('address', 'warm-up'), (v) => !v.allowed, 20_000, 100);
      expect(warmedUp.allowed).toBe(false);
      const address = `198.51.100.${randomBytes(1)[0]}`;
      const verdicts = [];
      for (let i = 0; i < 3; i += 1) {
        verdicts.push(await limiter.take('address', address));
      }
      // A refusal can only come from Redis: the limiter lets requests through when Redis does not answer.
      expect(verdicts).toEqual([{ allowed: true }, { allowed: true }, { allowed: false, retryAfterSeconds: 1 }]);
      expect(await limiter.take('address', '203.0.113.9')).toEqual({ allowed: true });
      const { owner } = await tagSlot();
      const node = cluster.node(owner);
      expect(await node.exists(limiter.keyOf('address', address))).toBe(1);
      node.disconnect();
    } finally {
      limiter.onApplicationShutdown();
    }
  });

  it('readiness reports Redis up through the cluster client', async () => {
    const response = await fetch(`${fleet.parts.cp2.baseUrl}/health/ready`);
    const body = (await response.json()) as { status: string; redis: { status: string } };
    expect([response.status, body.status, body.redis.status]).toEqual([200, 'ready', 'up']);
  });

  it('every rackseal key is in the slot of the {QUEUE_PREFIX} hash tag, on the node owning it, and no other node holds one', async () => {
    const { slot, owner } = await tagSlot();
    const keyPrefix = fleet.parts.prefix.keyPrefix;
    const byNode = new Map<number, string[]>();
    for (const port of cluster.ports) {
      const client = cluster.node(port);
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      byNode.set(port, keys);
      if (port === owner) {
        const slots = await Promise.all(keys.map((k) => client.call('CLUSTER', 'KEYSLOT', k) as Promise<number>));
        expect(new Set(slots)).toEqual(new Set([slot]));
      }
      client.disconnect();
    }
    const owned = byNode.get(owner)!;
    expect(owned.every((k) => k.startsWith(`${keyPrefix}:`))).toBe(true);
    // BullMQ's queues (both), the job schedulers and the rate buckets all made keys there.
    expect(owned.some((k) => k.startsWith(`${keyPrefix}:deliveries:`))).toBe(true);
    expect(owned.some((k) => k.startsWith(`${keyPrefix}:maintenance:`))).toBe(true);
    expect(owned.some((k) => k.startsWith(`${keyPrefix}:rate:address:`))).toBe(true);
    for (const port of cluster.ports.filter((p) => p !== owner)) {
      expect([port, byNode.get(port)]).toEqual([port, []]);
    }
  });

  it('a client seeded only with a node that does not own the slot follows MOVED: commands, BullMQ and pub/sub all work through it', async () => {
    const { owner } = await tagSlot();
    const stranger = cluster.ports.find((p) => p !== owner)!;
    const key = `${fleet.parts.prefix.keyPrefix}:moved-probe`;
    // A plain client on that node is redirected: the cluster client below must follow it.
    const plain = cluster.node(stranger);
    await expect(plain.set(key, 'x')).rejects.toThrow(/^MOVED \d+ 127\.0\.0\.1:\d+$/);
    plain.disconnect();

    const config = clusterConfig({ REDIS_CLUSTER_NODES: `127.0.0.1:${stranger}` });
    const client = createRedisConnection(config, 'publisher') as Cluster;
    const notifications = [new RedisDeliveryNotifications(config), new RedisDeliveryNotifications(config)] as const;
    try {
      expect(client.isCluster).toBe(true);
      expect(await client.set(key, 'through-moved')).toBe('OK');
      expect(await client.get(key)).toBe('through-moved');
      expect(await client.del(key)).toBe(1);

      // BullMQ's multi-key scripts, sent through the stranger, run on the owner.
      const producer = createRedisConnection(config, 'queue-producer');
      const probe = new Queue('moved-probe', { connection: producer, prefix: fleet.parts.prefix.keyPrefix });
      try {
        await probe.add('probe', { n: 1 });
        expect((await probe.getJobCounts('waiting')).waiting).toBe(1);
        await probe.obliterate({ force: true });
        expect((await probe.getJobCounts('waiting')).waiting).toBe(0);
      } finally {
        await probe.close();
        producer.disconnect();
      }

      const heard: string[] = [];
      await notifications[0].subscribe((id) => heard.push(id));
      const id = '5b0c2c57-2a83-4d0e-9a57-0c7d3c1c7a11';
      await notifications[1].publish(id);
      expect(await pollUntil(async () => heard, (h) => h.length > 0, 10_000)).toEqual([id]);
    } finally {
      client.disconnect();
      notifications.forEach((n) => n.onApplicationShutdown());
    }
  });
});
