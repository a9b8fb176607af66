import { NestFactory } from '@nestjs/core';
import { Injectable } from '@nestjs/common';
import { JobHandler, InvalidJobPayloadError, JobQueue } from '@rackseal/jobs';
import { Queue, type Job } from 'bullmq';
import IORedis from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { DataSource, QueryRunner } from 'typeorm';
import { JobHandlerSetError } from '../apps/worker/src/handler-registry';
import { AuditVerifyChainJob } from '../apps/worker/src/jobs/audit-verify-chain.job';
import { WorkerModule } from '../apps/worker/src/worker.module';
import { createTestDatabase, openDataSource, resetAuditLog, type TestDatabase } from './support/database';
import { startApp, type RunningProcess } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testServices } from './support/services';
import { testConfig, testEnv } from './support/test-config';
import { pollUntil } from './support/wait';

@Injectable()
class SecondVerifyHandler {
  @JobHandler('audit.verify-chain')
  async run(): Promise<void> {}
}

describe('worker', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let ds: DataSource;
  let queue: Queue;
  let producer: JobQueue;
  const procs: RunningProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url);
    queue = new Queue('maintenance', {
      connection: new IORedis(testServices().redisUrl, { maxRetriesPerRequest: null }),
      prefix: prefix.keyPrefix,
    });
    producer = new JobQueue(testConfig(db, prefix.prefix));
  });

  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop('SIGKILL')));
    await queue.obliterate({ force: true });
    await resetAuditLog(ds);
  });

  afterAll(async () => {
    await producer.onApplicationShutdown();
    await queue.close();
    await ds.destroy();
    await prefix.clear();
    await db.drop();
  });

  function startWorker(extra: NodeJS.ProcessEnv = {}): RunningProcess {
    const proc = startApp('worker', testEnv(db, prefix.prefix, { LOG_LEVEL: 'info', ...extra }));
    procs.push(proc);
    return proc;
  }

  const ready = (p: RunningProcess) => p.waitForLog((l) => l.msg === 'worker ready');
  const auditVerdicts = async () =>
    (await ds.query(`SELECT outcome, details FROM audit_log WHERE action = 'audit.chain-verified' ORDER BY seq`)) as {
      outcome: string;
      details: { records: number };
    }[];

  describe('boot', () => {
    it('refuses to boot when a catalog job has no handler', async () => {
      const config = testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' });
      const boot = NestFactory.createApplicationContext(WorkerModule.forRoot(config, []), { logger: false, abortOnError: false });
      await expect(boot).rejects.toThrow(JobHandlerSetError);
      await expect(
        NestFactory.createApplicationContext(WorkerModule.forRoot(config, []), { logger: false, abortOnError: false }),
      ).rejects.toThrow('job "audit.verify-chain" has no handler');
    });

    it('refuses to boot when a job has two handlers', async () => {
      const config = testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' });
      await expect(
        NestFactory.createApplicationContext(WorkerModule.forRoot(config, [AuditVerifyChainJob, SecondVerifyHandler]), {
          logger: false,
          abortOnError: false,
        }),
      ).rejects.toThrow(
        'job "audit.verify-chain" has 2 handlers: AuditVerifyChainJob.run, SecondVerifyHandler.run',
      );
    });
  });

  describe('jobs', () => {
    it('runs a job end to end and records its verdict in the audit chain', async () => {
      const worker = startWorker();
      await ready(worker);
      const { id } = await producer.enqueue('audit.verify-chain', { requestId: randomUUID(), trigger: 'operator' });
      const job = await pollUntil(
        () => queue.getJob(id),
        (j) => j?.finishedOn !== undefined,
      );
      expect(await job!.getState()).toBe('completed');
      expect(job!.returnvalue).toEqual({ ok: true, records: 0 });
      expect(await auditVerdicts()).toEqual([{ outcome: 'success', details: expect.objectContaining({ records: 0, trigger: 'operator' }) }]);
    });

    it('enqueues the same request once, whatever the number of calls', async () => {
      const requestId = randomUUID();
      const first = await producer.enqueue('audit.verify-chain', { requestId, trigger: 'operator' });
      const second = await producer.enqueue('audit.verify-chain', { requestId, trigger: 'operator' });
      expect(second.id).toBe(first.id);
      const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);
    });

    it('refuses an invalid payload on enqueue and puts nothing on the queue', async () => {
      await expect(producer.enqueue('audit.verify-chain', { requestId: 'not-a-uuid', trigger: 'operator' })).rejects.toThrow(
        InvalidJobPayloadError,
      );
      await expect(
        producer.enqueue('audit.verify-chain', { requestId: randomUUID(), trigger: 'operator', extra: 1 } as never),
      ).rejects.toThrow(/property extra should not exist/);
      expect(await queue.count()).toBe(0);
    });

    it('fails a malformed payload found in Redis once, without retries', async () => {
      const worker = startWorker();
      await ready(worker);
      // Written straight to Redis, bypassing the producer's validation: what a compromised or
      // outdated producer could leave there.
      const raw = await queue.add('audit.verify-chain', { trigger: 'rm -rf /' }, { attempts: 5 });
      const job = await pollUntil(
        () => queue.getJob(raw.id!),
        (j) => j?.finishedOn !== undefined,
      );
      expect(await job!.getState()).toBe('failed');
      expect(job!.attemptsMade).toBe(1);
      expect(job!.failedReason).toMatch(/invalid payload for job audit.verify-chain: .*requestId must be a UUID/);
      expect(await auditVerdicts()).toEqual([]);
    });
  });

  describe('graceful shutdown', () => {
    let blocker: QueryRunner;

    /** Holds an exclusive lock on audit_log so a verify job stays in flight until we let go. */
    async function blockAuditLog(): Promise<void> {
      blocker = ds.createQueryRunner();
      await blocker.connect();
      await blocker.startTransaction();
      await blocker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
    }

    async function unblockAuditLog(): Promise<void> {
      await blocker.rollbackTransaction();
      await blocker.release();
    }

    async function jobInFlight(): Promise<Job> {
      const { id } = await producer.enqueue('audit.verify-chain', { requestId: randomUUID(), trigger: 'operator' });
      const active = await pollUntil(
        async () => ((await (await queue.getJob(id))?.getState()) ?? 'missing') as string,
        (s) => s === 'active',
      );
      expect(active).toBe('active');
      // The job's query is now queued behind our lock inside PostgreSQL.
      await pollUntil(
        async () =>
          ((await ds.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = $1`, [
            db.name,
          ])) as { n: number }[])[0]!.n,
        (n) => n > 0,
      );
      return (await queue.getJob(id))!;
    }

    it('finishes the running job on SIGTERM before exiting', async () => {
      const worker = startWorker({ WORKER_SHUTDOWN_GRACE_MS: '30000' });
      await ready(worker);
      await blockAuditLog();
      const job = await jobInFlight();

      worker.child.kill('SIGTERM');
      await worker.waitForLog((l) => l.msg === 'stopping: no new jobs, waiting for running ones');
      // The worker is waiting for the job, not gone.
      expect(worker.child.exitCode).toBeNull();
      expect(await job.getState()).toBe('active');

      await unblockAuditLog();
      const exit = await worker.exited;
      expect(exit.signal === 'SIGTERM' || exit.code === 0).toBe(true);
      const finished = (await queue.getJob(job.id!))!;
      expect(await finished.getState()).toBe('completed');
      expect(finished.returnvalue).toEqual({ ok: true, records: 0 });
      expect((await auditVerdicts()).map((v) => v.outcome)).toEqual(['success']);
    });

    it('hands a job that outlives the grace period to another worker instead of losing it', async () => {
      const first = startWorker({ WORKER_SHUTDOWN_GRACE_MS: '500', WORKER_LOCK_MS: '2000' });
      await ready(first);
      await blockAuditLog();
      const job = await jobInFlight();

      first.child.kill('SIGTERM');
      await first.waitForLog((l) => l.msg === 'running jobs outlived the grace period; leaving them to stalled-job recovery');
      await first.exited;
      expect(await job.getState()).toBe('active');

      const second = startWorker({ WORKER_LOCK_MS: '2000' });
      await ready(second);
      await unblockAuditLog();
      const finished = await pollUntil(
        () => queue.getJob(job.id!),
        (j) => j?.finishedOn !== undefined,
      );
      expect(await finished!.getState()).toBe('completed');
      expect(finished!.returnvalue).toEqual({ ok: true, records: 0 });
      // Whatever the first worker managed before it let go, the chain holds exactly one verdict per run.
      const verdicts = await auditVerdicts();
      expect(verdicts.length).toBeGreaterThanOrEqual(1);
      expect(verdicts.every((v) => v.outcome === 'success')).toBe(true);
    });
  });
});
