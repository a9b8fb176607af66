import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiTokenEntity, ApiTokens } from '@rackseal/api-tokens';
import { dataSourceOptions } from '@rackseal/persistence';
import { AuditLog } from '@rackseal/audit';
import { CryptoRandomSource, SystemClock } from '@rackseal/platform';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';
import { createTestDatabase, openDataSource } from '../test/support/database';
import { freePort } from '../test/support/free-port';
import { DIST } from '../test/support/processes';
import { createTestQueuePrefix } from '../test/support/redis';
import { TEST_ADMIN_DATABASE_URL, TEST_REDIS_URL, testServices } from '../test/support/services';
import { testConfig, testEnv } from '../test/support/test-config';
import { appMain, children, postgresPids, type Started, startProcess, stopProcess, waitLive } from './bench-processes';
import { summariseCpuProfile } from './cpu-profile';
import { seedFleet } from './delivery-fleet';
import { type FleetProtocol, SimulatedFleet } from './delivery-load';
import { formatTable } from './measure';
import { MAILBOX_MAX_WAIT_SECONDS } from '@rackseal/node-api-contracts';
import { CpuSample, machineBusyMs, processCpuMs } from './proc-cpu';

/**
 * Issue 14's delivery benchmark: `secrets rotate` of one secret (the decision: POST
 * /v1/secrets/NAME/versions, what the CLI sends) to MACHINES simulated machines, until the last
 * of them acked the new version. Real processes: the built control plane(s), two workers with
 * the product's WrappingEnvelopeSealer (bench/delivery-worker-main.ts counts its seals; RSA-2048
 * certified-key), PostgreSQL and Redis; the fleet (bench/delivery-load.ts) is this process: every
 * machine holds a signed long poll, unwraps in software and acks with the proof.
 *
 * Measured: the time from the decision to the last ack, deliveries/s, CPU of every process over
 * that window (/proc), and that nothing ran twice: every delivery of the version acked exactly once
 * (the fleet's answers, the rows, the `delivery.acked` records), each envelope written once
 * (`delivery.ready` records, the workers' seal counts against the deliveries), the BullMQ
 * `delivery.deliver` jobs completed once each with one attempt.
 *
 * Knobs: DELIVERY_BENCH_MACHINES (10000), DELIVERY_BENCH_KEYS (1100 distinct RSA-2048 keys),
 * DELIVERY_BENCH_REPLICAS (1 control plane), DELIVERY_BENCH_WORKERS (2),
 * DELIVERY_BENCH_CONCURRENCY (WORKER_CONCURRENCY of each; unset: the default),
 * DELIVERY_BENCH_POOL (DATABASE_POOL_SIZE of every process; unset: the default),
 * DELIVERY_BENCH_RAMP (machines starting their loop per second, 400), DELIVERY_BENCH_LOG_LEVEL (info),
 * DELIVERY_BENCH_PROTOCOL (carried: acks carried by the next poll, the agent's; separate: a GET poll
 * and an ack request per delivery — for a control plane built before the POST poll),
 * DELIVERY_BENCH_PROFILE (comma-separated: control-plane, worker — run those under --cpu-prof and
 * summarise), DELIVERY_BENCH_KEEP_LOGS (1: keep logs and profiles).
 */
const GROUP = 'bench';
const SECRET = 'bench-rotated';

const knob = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number`);
  }
  return value;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection after `ms` (the timer does not keep the process alive). */
function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what())), ms).unref())]);
}

/** Waits until `pids` together use less than 5 % of a core over a second (the fleet's polls parked), or `maxMs`. */
async function settle(pids: readonly number[], maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    const before = pids.map((p) => processCpuMs(p) ?? 0).reduce((a, b) => a + b, 0);
    await sleep(1000);
    const after = pids.map((p) => processCpuMs(p) ?? 0).reduce((a, b) => a + b, 0);
    if (after - before < 50) {
      return;
    }
  }
}

/**
 * Resolves when every delivery of `secret`@`version` is acked in PostgreSQL (checked every 200 ms,
 * one indexed count), with the last ack's time (acked_at, the control plane's clock at its batch):
 * the window ends at the last commit, not at an answer (a carried ack is answered with the next
 * poll's answer, up to its 30 s later).
 */
async function ackedInDatabase(ds: DataSource, secret: string, version: number, count: number): Promise<Date> {
  for (;;) {
    const rows = (await ds.query(
      `SELECT count(*) FILTER (WHERE d.state = 'acked')::int AS acked, max(d.acked_at) AS last
         FROM deliveries d JOIN secret_versions v ON v.id = d.version_id JOIN secrets s ON s.id = v.secret_id
        WHERE s.name = $1 AND v.version = $2`,
      [secret, version],
    )) as { acked: number; last: Date | null }[];
    if (rows[0]!.acked >= count && rows[0]!.last !== null) {
      return rows[0]!.last;
    }
    await sleep(200);
  }
}

async function redisPid(redis: IORedis): Promise<number | undefined> {
  const info = await redis.info('server');
  const match = /process_id:(\d+)/.exec(info);
  return match === null ? undefined : Number(match[1]);
}

export async function deliveryBench(): Promise<string> {
  process.env[TEST_ADMIN_DATABASE_URL] ??= process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env[TEST_REDIS_URL] ??= 'redis://127.0.0.1:6379';
  const count = knob('DELIVERY_BENCH_MACHINES', 10_000);
  const distinctKeys = Math.min(count, knob('DELIVERY_BENCH_KEYS', 1100));
  const replicas = Math.max(1, knob('DELIVERY_BENCH_REPLICAS', 1));
  const workerCount = Math.max(1, knob('DELIVERY_BENCH_WORKERS', 2));
  const ramp = Math.max(1, knob('DELIVERY_BENCH_RAMP', 400));
  const logLevel = process.env.DELIVERY_BENCH_LOG_LEVEL ?? 'info';
  const protocol = (process.env.DELIVERY_BENCH_PROTOCOL ?? 'carried') as FleetProtocol;
  if (protocol !== 'carried' && protocol !== 'separate') {
    throw new Error('DELIVERY_BENCH_PROTOCOL must be carried or separate');
  }
  const profiled = new Set((process.env.DELIVERY_BENCH_PROFILE ?? '').split(',').filter((p) => p !== ''));
  const workDir = mkdtempSync(join(tmpdir(), 'rackseal-delivery-bench-'));
  const db = await createTestDatabase();
  const prefix = createTestQueuePrefix();
  const ds = await openDataSource(db.url);
  const redis = new IORedis(testServices().redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('deliveries', { connection: redis, prefix: prefix.keyPrefix });
  const procs: Started[] = [];
  let fleet: SimulatedFleet | undefined;
  const extra = {
    LOG_LEVEL: logLevel,
    MIGRATIONS_AT_BOOT: 'false',
    ...(process.env.DELIVERY_BENCH_POOL === undefined ? {} : { DATABASE_POOL_SIZE: process.env.DELIVERY_BENCH_POOL }),
    ...(process.env.DELIVERY_BENCH_CONCURRENCY === undefined ? {} : { WORKER_CONCURRENCY: process.env.DELIVERY_BENCH_CONCURRENCY }),
  };
  const env = testEnv(db, prefix.prefix, extra);
  const profileArgs = (what: string) => (profiled.has(what) ? ['--cpu-prof', `--cpu-prof-dir=${join(workDir, `profile-${what}`)}`] : []);
  const lines: string[] = [];
  try {
    const clock = new SystemClock();
    // As `rackseal token create` does: a data source that knows the token entity.
    const tokenDs = await new DataSource({ ...dataSourceOptions(testConfig(db, prefix.prefix), 'rackseal-bench'), entities: [ApiTokenEntity] }).initialize();
    const admin = await new ApiTokens(tokenDs, new AuditLog(tokenDs, clock), clock, new CryptoRandomSource())
      .issue('bench', ['admin'], 'bench')
      .then((t) => t.token)
      .finally(() => tokenDs.destroy());
    const urls: string[] = [];
    for (let i = 0; i < replicas; i += 1) {
      const port = await freePort();
      const logPath = join(workDir, `control-plane-${i}.log`);
      const proc = startProcess(appMain('control-plane'), `control plane ${i + 1}`, { ...env, PORT: String(port) }, profileArgs('control-plane'), logPath);
      procs.push(proc);
      await waitLive(proc, port, logPath);
      urls.push(`http://127.0.0.1:${port}`);
    }
    const operator = async (method: 'POST', path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const response = await fetch(`${urls[0]}${path}`, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const seedStarted = performance.now();
    const machines = await seedFleet(ds, { count, distinctKeys, group: GROUP, masterKey: testConfig(db, prefix.prefix).masterKey.key! });
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    for (let i = 0; i < workerCount; i += 1) {
      procs.push(startProcess(join(process.env.ATTEST_BENCH_DIST ?? DIST, 'bench', 'delivery-worker-main.js'), `worker ${i + 1}`, env, profileArgs('worker').map((a) => a.replace(/profile-worker$/, `profile-worker-${i + 1}`)), join(workDir, `worker-${i + 1}.log`)));
    }
    const servers = procs.slice(0, replicas);
    const workers = procs.slice(replicas);
    for (const w of workers) {
      const until = Date.now() + 60_000;
      while (!readFileSync(join(workDir, `${w.name.replace(' ', '-')}.log`), 'utf8').includes('worker ready')) {
        if (Date.now() > until || w.child.exitCode !== null) {
          throw new Error(`${w.name} did not start: ${w.stderr}`);
        }
        await sleep(200);
      }
    }
    fleet = new SimulatedFleet(machines, urls, protocol);
    const parkStarted = performance.now();
    await fleet.start(ramp);
    await settle(servers.map((s) => s.child.pid!), 60_000);
    const parkSeconds = (performance.now() - parkStarted) / 1000;
    fleet.throwIfFailed();
    // Version 1 (the create) reaches the fleet first: the warm-up round (JIT, pools, caches), timed too.
    const c0 = Date.now();
    const created = await operator('POST', '/v1/secrets', { name: SECRET, kind: 'opaque', target: { group: GROUP }, binding: 'certified-key' });
    if (created.status !== 201) {
      throw new Error(`secret create answered ${created.status}: ${JSON.stringify(created.body)}`);
    }
    const firstAcked = await within(Promise.race([ackedInDatabase(ds, SECRET, 1, count), fleet.failed()]), 900_000, () => `version 1 not acked by every machine within 15 min`);
    const warmupSeconds = (firstAcked.getTime() - c0) / 1000;
    // The warm-up's re-polls parked together and end their 30 s wait together: let that wave of empty
    // answers (and the re-polls it sends) pass before the window, so that the window does not measure it.
    await sleep(Math.max(0, firstAcked.getTime() + (MAILBOX_MAX_WAIT_SECONDS + 2) * 1000 - Date.now()));
    await settle([...servers, ...workers].map((s) => s.child.pid!), 20_000);
    const unavailableBefore = fleet.stats.unavailable;
    // The idle fleet: what its long polls cost before the decision (each one that ends after its 30 s is sent again).
    const idle = { polls: fleet.stats.polls, cp: new CpuSample(servers.map((s) => s.child.pid!)), at: performance.now() };
    await sleep(5000);
    const idleRate = { pollsPerSecond: ((fleet.stats.polls - idle.polls) * 1000) / (performance.now() - idle.at), cpMsPerSecond: (idle.cp.usedMs() * 1000) / (performance.now() - idle.at) };
    const pollsBefore = fleet.stats.polls;
    const ackRequestsBefore = fleet.stats.ackRequests;
    const sentBefore = fleet.stats.sent;
    const emptyBefore = fleet.stats.emptyPolls;

    // The window: from the decision to the last ack.
    const pg = await postgresPids(ds, db.name);
    const redisProcess = await redisPid(redis);
    const samples = {
      servers: new CpuSample(servers.map((s) => s.child.pid!)),
      workers: workers.map((w) => new CpuSample([w.child.pid!])),
      pgBackends: new CpuSample(pg.backends),
      pgAux: new CpuSample(pg.aux),
      redis: new CpuSample(redisProcess === undefined ? [] : [redisProcess]),
    };
    const busy0 = machineBusyMs();
    const load0 = loadavg()[0]!;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const t0Epoch = Date.now();
    const rotated = await operator('POST', `/v1/secrets/${SECRET}/versions`, {});
    const decided = performance.now();
    if (rotated.status !== 201) {
      throw new Error(`rotate answered ${rotated.status}: ${JSON.stringify(rotated.body)}`);
    }
    const lastAck = await within(Promise.race([ackedInDatabase(ds, SECRET, 2, count), fleet.failed()]), 900_000, () => `not every machine acked within 15 min`);
    const seconds = (lastAck.getTime() - t0Epoch) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const used = {
      servers: samples.servers.usedMs(),
      workers: samples.workers.map((w) => w.usedMs()),
      pgBackends: samples.pgBackends.usedMs(),
      pgAux: samples.pgAux.usedMs(),
      redis: samples.redis.usedMs(),
      generator: (cpu.user + cpu.system) / 1000,
      busy: machineBusyMs() - busy0,
    };
    const load1 = loadavg()[0]!;
    const windowPolls = fleet.stats.polls - pollsBefore;
    const windowEmpty = fleet.stats.emptyPolls - emptyBefore;
    const windowAckRequests = fleet.stats.ackRequests - ackRequestsBefore;
    const windowSent = fleet.stats.sent - sentBefore;
    const resent = fleet.stats.resent;
    const unavailable = fleet.stats.unavailable - unavailableBefore;
    // The carried acks' answers come with the next poll's answer (the rotation's next, or the wait's end): await them for the checks.
    await fleet.answered(45_000);
    const unanswered = fleet.stats.unanswered;
    const answeredNew = fleet.stats.acked;
    const alreadyAcked = fleet.stats.alreadyAcked;
    const alreadyAckedResent = fleet.stats.alreadyAckedResent;
    await fleet.stop();
    fleet = undefined;
    await sleep(1000);
    // Stopped before the checks: a profiled process writes its profile as it exits.
    await Promise.all(procs.map(stopProcess));

    // Nothing twice.
    const version = (await ds.query(`SELECT v.id FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.name = $1 AND v.version = 2`, [SECRET])) as { id: string }[];
    const versionId = version[0]!.id;
    const states = (await ds.query(`SELECT state, count(*)::int AS n, sum(attempts)::int AS attempts, max(generation)::int AS generation FROM deliveries WHERE version_id = $1 GROUP BY state`, [versionId])) as { state: string; n: number; attempts: number; generation: number }[];
    const audit = (await ds.query(
      `SELECT action, count(*)::int AS n, count(DISTINCT details->>'deliveryId')::int AS distinct_ids FROM audit_log WHERE action IN ('delivery.ready', 'delivery.acked') AND details->>'versionId' = $1 GROUP BY action`,
      [versionId],
    )) as { action: string; n: number; distinct_ids: number }[];
    const seals = workers.map((w) => Number(/bench-sealer seals=(\d+)\n(?![\s\S]*bench-sealer)/.exec(w.stderr)?.[1] ?? 0));
    const jobCounts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
    // The version's jobs by their deterministic ids (removeOnComplete keeps the newest 10,000 of the queue).
    const ids = ((await ds.query('SELECT id FROM deliveries WHERE version_id = $1', [versionId])) as { id: string }[]).map((r) => r.id);
    const acksNew = ids.filter((id) => answeredNew.has(id)).length;
    const jobs = await Promise.all(ids.map((id) => queue.getJob(`delivery.deliver.${id}.1`)));
    const completed = jobs.filter((j) => j !== undefined && j.finishedOn !== undefined && j.failedReason === undefined);
    const retried = completed.filter((j) => j!.attemptsMade > 1).length;
    const otherRounds = (await Promise.all(ids.map((id) => queue.getJob(`delivery.deliver.${id}.2`)))).filter((j) => j !== undefined).length;

    const ms = (v: number) => `${v.toFixed(2)} ms`;
    const per = (v: number) => ms(v / count);
    lines.push(
      `Protocol: ${protocol}. ${count} machines (${distinctKeys} distinct RSA-2048 certified keys dealt in turn), ${replicas} control plane(s), ${workerCount} workers (WORKER_CONCURRENCY ${extra.WORKER_CONCURRENCY ?? 'default'}, DATABASE_POOL_SIZE ${extra.DATABASE_POOL_SIZE ?? 'default'}), LOG_LEVEL=${logLevel}; fleet seeded in ${seedSeconds.toFixed(1)} s, its ${count} long polls parked in ${parkSeconds.toFixed(1)} s; warm-up round (the create: version 1 to every machine) ${warmupSeconds.toFixed(1)} s.`,
      '',
      formatTable([
        ['idle fleet before: polls/s, control-plane CPU', 'decision (POST …/versions: plan + outbox)', 'decision → last ack', 'deliveries/s', 'polls answered in the window (empty) + ack requests; requests sent per delivery', 'requests resent (connection errors; 503 retried)', 'machine busy', 'load avg (open → close)'],
        [`${idleRate.pollsPerSecond.toFixed(0)}/s, ${(idleRate.cpMsPerSecond / 10).toFixed(0)} % of a core`, ms(decided - t0), `${seconds.toFixed(2)} s`, (count / seconds).toFixed(0), `${windowPolls} (${windowEmpty}) + ${windowAckRequests}; ${(windowSent / count).toFixed(2)}`, `${resent}; ${unavailable}`, `${((100 * used.busy) / (seconds * 1000 * 2)).toFixed(0)} % of 2 cores`, `${load0.toFixed(1)} → ${load1.toFixed(1)}`],
      ]),
      '',
      formatTable([
        ['process', 'CPU in the window', 'CPU per delivery'],
        [`control plane${replicas > 1 ? 's' : ''}`, ms(used.servers), per(used.servers)],
        ...used.workers.map((w, i) => [`worker ${i + 1}`, ms(w), per(w)]),
        [`PostgreSQL backends (${pg.backends.length})`, ms(used.pgBackends), per(used.pgBackends)],
        ['PostgreSQL auxiliary', ms(used.pgAux), per(used.pgAux)],
        ['Redis', ms(used.redis), per(used.redis)],
        [`load generator (${count} agents: sign, RSA-OAEP decrypt, GCM, HMAC)`, ms(used.generator), per(used.generator)],
        ['sum', ms(used.servers + used.workers.reduce((a, b) => a + b, 0) + used.pgBackends + used.pgAux + used.redis + used.generator), per(used.servers + used.workers.reduce((a, b) => a + b, 0) + used.pgBackends + used.pgAux + used.redis + used.generator)],
      ]),
      '',
      formatTable([
        ['check', 'expected', 'found'],
        ['deliveries of the version, by state', `${count} acked`, states.map((s) => `${s.n} ${s.state}`).join(', ')],
        ['attempts counted / highest round', `${count} / 1`, states.map((s) => `${s.attempts} / ${s.generation}`).join(', ')],
        ['acks answered new (distinct ids) / alreadyAcked (after a resent request) / unanswered', `${count} / 0 (any) / 0`, `${acksNew} / ${alreadyAcked} (${alreadyAckedResent}) / ${unanswered}`],
        ...audit.map((a) => [`audit ${a.action} (distinct deliveries)`, String(count), `${a.n} (${a.distinct_ids})`]),
        ['seals per worker, both rounds (sum)', `sum ${2 * count}`, `${seals.join(' + ')} = ${seals.reduce((a, b) => a + b, 0)}`],
        ['BullMQ delivery.deliver jobs of the version: completed (retried; a second round)', `${count} (0; 0)`, `${completed.length} (${retried}; ${otherRounds})`],
        ['BullMQ queue counts', 'failed 0, nothing left', JSON.stringify(jobCounts)],
      ]),
    );
    for (const what of profiled) {
      for (const dir of readdirSync(workDir).filter((d) => d.startsWith(`profile-${what}`))) {
        for (const file of readdirSync(join(workDir, dir)).filter((f) => f.endsWith('.cpuprofile'))) {
          lines.push('', `#### --cpu-prof: ${dir.replace('profile-', '')} (whole process life)`, '', summariseCpuProfile(join(workDir, dir, file), 20));
        }
      }
    }
  } finally {
    await fleet?.stop();
    await Promise.all(procs.map(stopProcess));
    children.forEach((c) => c.kill('SIGKILL'));
    await queue.close();
    redis.disconnect();
    await ds.destroy();
    await db.drop();
    await prefix.clear();
    if (process.env.DELIVERY_BENCH_KEEP_LOGS === '1') {
      process.stderr.write(`delivery bench: logs kept in ${workDir}\n`);
    } else {
      rmSync(workDir, { recursive: true, force: true });
    }
  }
  return lines.join('\n');
}
