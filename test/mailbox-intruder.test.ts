/**
 * The node mailbox's long poll under a hostile or unlucky caller (issue 14 item 2, intruder pass), on
 * real PostgreSQL and Redis through an in-process control plane's Mailbox: a machine piling up waits
 * is held to MAILBOX_MAX_WAITS_PER_MACHINE (the oldest answered at once), a wait abandoned by its
 * client leaves no waiter and no listener behind, and a Redis that does not answer costs a wait its
 * length, never a hang. Every case asserts states and answers, never durations.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { AuditLog } from '@rackseal/audit';
import { DeliveriesRepository, Mailbox, MAILBOX_MAX_WAITS_PER_MACHINE, type MailboxCaller, RedisDeliveryNotifications, VersionRetirement } from '@rackseal/deliveries';
import type { Machine } from '@rackseal/machines';
import { Clock } from '@rackseal/platform';
import { randomUUID } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { createTestDatabase, type TestDatabase } from './support/database';
import { freePort, LOCALHOST } from './support/free-port';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

jest.setTimeout(60_000);

describe('the mailbox long poll against a hostile caller', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let mailbox: Mailbox;

  const callerOf = (machineId: string): MailboxCaller => ({ credentialId: 'test-credential', machine: { id: machineId } as Machine });

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }))] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    mailbox = app.get(Mailbox);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await db?.drop();
    await prefix?.clear();
  });

  it(`one machine's waits beyond ${MAILBOX_MAX_WAITS_PER_MACHINE} end the oldest at once (answered empty); another machine's wait is untouched; aborted waits leave no waiter and no listener`, async () => {
    const machine = randomUUID();
    const other = randomUUID();
    const otherStop = new AbortController();
    const otherWait = mailbox.poll(callerOf(other), 30, otherStop.signal);
    const stops = Array.from({ length: MAILBOX_MAX_WAITS_PER_MACHINE + 3 }, () => new AbortController());
    const waits = stops.map((stop) => mailbox.poll(callerOf(machine), 30, stop.signal));
    // The machine holds the cap, the other machine its one wait.
    expect(mailbox.waitingCount()).toBe(MAILBOX_MAX_WAITS_PER_MACHINE + 1);
    // The three oldest were answered without waiting for their 30 s or their client.
    for (const oldest of waits.slice(0, 3)) {
      await expect(oldest).resolves.toEqual({ deliveries: [] });
    }
    for (const [i, stop] of stops.entries()) {
      stop.abort();
      await expect(waits[i]).resolves.toEqual({ deliveries: [] });
      expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    }
    expect(mailbox.waitingCount()).toBe(1);
    otherStop.abort();
    await expect(otherWait).resolves.toEqual({ deliveries: [] });
    expect(getEventListeners(otherStop.signal, 'abort')).toHaveLength(0);
    expect(mailbox.waitingCount()).toBe(0);
  });

  it('with Redis unreachable a wait ends at its end (or when its client goes) with what PostgreSQL holds, instead of hanging until Redis is back', async () => {
    const deadRedis = `redis://${LOCALHOST}:${await freePort()}`;
    const notifications = new RedisDeliveryNotifications(testConfig(db, prefix.prefix, { REDIS_URL: deadRedis }));
    const lonely = new Mailbox(app.get(DeliveriesRepository), notifications, app.get(AuditLog), app.get(Clock), app.get(VersionRetirement));
    try {
      await expect(lonely.poll(callerOf(randomUUID()), 1, new AbortController().signal)).resolves.toEqual({ deliveries: [] });
      const stop = new AbortController();
      const waiting = lonely.poll(callerOf(randomUUID()), 30, stop.signal);
      expect(lonely.waitingCount()).toBe(1);
      stop.abort();
      await expect(waiting).resolves.toEqual({ deliveries: [] });
      expect(lonely.waitingCount()).toBe(0);
    } finally {
      notifications.onApplicationShutdown();
    }
  }, 20_000);
});
