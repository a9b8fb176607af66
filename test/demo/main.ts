import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '@rackseal/config';
import { JobQueue } from '@rackseal/jobs';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { Client } from 'pg';
import { runRacksealCli } from '../support/cli-runner';
import { startApp, startControlPlane, type RunningProcess } from '../support/processes';
import { pollUntil } from '../support/wait';

/**
 * `npm run demo`: brings rackseal up against the real PostgreSQL and Redis and shows it working.
 * Today that is the foundation: control plane and worker boot (migrating under the advisory lock),
 * readiness checks both services, the worker runs a job, and the audit chain verifies. The
 * zero-touch machine flow (docs/architecture.md §4) is added here by the later issues (15).
 */

const out = (line = '') => process.stdout.write(`${line}\n`);

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const [n, row] of rows.entries()) {
    out(`  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`);
    if (n === 0) {
      out(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    }
  }
}

async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      out(`created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

async function main(): Promise<number> {
  const env: NodeJS.ProcessEnv = {
    RACKSEAL_ENV: 'demo',
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/rackseal_demo',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: process.env.QUEUE_PREFIX ?? 'rackseal-demo',
    PORT: process.env.PORT ?? '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
  const config = loadConfig(env);
  out('rackseal demo');
  out(`  PostgreSQL ${new URL(config.database.url).host}${new URL(config.database.url).pathname}, Redis ${new URL(config.redis.url).host}, queue prefix ${config.redis.keyPrefix}`);
  await ensureDatabase(config.database.url);

  const procs: RunningProcess[] = [];
  const producer = new JobQueue(config);
  const queueConnection = new IORedis(config.redis.url, { maxRetriesPerRequest: null });
  try {
    const [{ proc: controlPlane, baseUrl }, worker] = await Promise.all([
      startControlPlane(env),
      (async () => {
        const w = startApp('worker', env);
        await w.waitForLog((l) => l.msg === 'worker ready');
        return w;
      })(),
    ]);
    procs.push(controlPlane, worker);
    out(`  control plane pid ${controlPlane.child.pid} at ${baseUrl}, worker pid ${worker.child.pid}`);

    const response = await fetch(`${baseUrl}/health/ready`);
    const ready = (await response.json()) as Record<string, { status: string; latencyMs: number }> & { status: string };
    out();
    out(`GET /health/ready -> ${response.status} ${ready.status}`);
    table([
      ['dependency', 'status', 'latency'],
      ['postgres', ready.postgres!.status, `${ready.postgres!.latencyMs} ms`],
      ['redis', ready.redis!.status, `${ready.redis!.latencyMs} ms`],
    ]);

    const { id } = await producer.enqueue('audit.verify-chain', { requestId: randomUUID(), trigger: 'operator' });
    const queue = new Queue('maintenance', { connection: queueConnection, prefix: config.redis.keyPrefix });
    const job = await pollUntil(() => queue.getJob(id), (j) => j?.finishedOn !== undefined, 15000);
    const state = job === undefined ? 'missing' : await job.getState();
    await queue.close();
    out();
    out(`worker job audit.verify-chain ${id}: ${state} ${JSON.stringify(job?.returnvalue ?? null)}`);

    const verify = runRacksealCli(['audit', 'verify'], { env: { ...process.env, ...env } });
    out(`rackseal audit verify: ${(verify.stdout + verify.stderr).trim()} (exit ${verify.status})`);

    out();
    out('demo arrives with the attestation issues: swtpm machines, inventory import, attestation,');
    out('key certification, secret delivery, LUKS unlock and rotation will be shown here.');
    const ok = response.status === 200 && state === 'completed' && verify.status === 0;
    out(ok ? '\ndemo: foundation healthy' : '\ndemo: FAILED');
    return ok ? 0 : 1;
  } finally {
    await producer.onApplicationShutdown();
    queueConnection.disconnect();
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
