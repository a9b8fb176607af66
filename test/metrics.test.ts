/**
 * Issue 15 item 2, acceptance: a control-plane process and a worker process from the built dist on
 * real PostgreSQL and Redis, each with its own metrics listener (METRICS_PORT). A demo-like run: a
 * machine whose EK is not in the inventory is refused, a real swtpm machine enrolls with the built
 * agent, a secret is delivered to it (sealed by the product worker, acked by the agent). Then both
 * listeners are scraped: counters and histograms moved, the DB-derived gauges equal what PostgreSQL
 * holds, route labels are templates only, and the API port no longer serves /metrics.
 */
import { PcrPoliciesRepository } from '@rackseal/attestation';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { load } from 'js-yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { runAgentCliAsync, runRacksealCli, runRacksealCliAsync, spawnCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { freePort } from './support/free-port';
import { metricNames, metricsInExpression, parseMetrics, sample, type Samples } from './support/prometheus-text';
import { repoRoot } from './support/repo-root';
import { type RunningProcess, startApp, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { useSwtpms } from './support/swtpm';
import { testEnv } from './support/test-config';
import { pollUntil } from './support/wait';

jest.setTimeout(300_000);

describe('/metrics of a real control plane and worker after a demo-like run (issue 15 item 2)', () => {
  const fixture = useSwtpms(2);
  const masterKey = randomBytes(32);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let ds: DataSource;
  let cp: { proc: RunningProcess; baseUrl: string };
  let worker: RunningProcess;
  let cpMetricsPort: number;
  let workerMetricsPort: number;
  let admin: string;
  let dir: string;
  let cpText: string;
  let workerText: string;
  let cpSamples: Samples;
  let workerSamples: Samples;

  const cli = (...args: string[]) => runRacksealCliAsync(args, { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: admin } });
  const scrape = async (port: number): Promise<string> => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect([response.status, response.headers.get('content-type')]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8']);
    return response.text();
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-metrics-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const env = testEnv(db, prefix.prefix, { RACKSEAL_MASTER_KEY: masterKey.toString('hex') });
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url, RACKSEAL_MASTER_KEY: masterKey.toString('hex') } });
    expect(bootstrap.status).toBe(0);
    admin = bootstrap.stdout.trim();
    cpMetricsPort = await freePort();
    cp = await startControlPlane({ ...env, METRICS_PORT: String(cpMetricsPort) });
    workerMetricsPort = await freePort();
    worker = startApp('worker', { ...env, LOG_LEVEL: 'info', METRICS_PORT: String(workerMetricsPort) });
    await worker.waitForLog((l) => l.msg === 'worker ready');

    // The fleet: one machine in the inventory (fixture.at(0)); fixture.at(1)'s EK is nobody's.
    await writeFile(join(dir, 'root.pem'), await fixture.ca.rootCertPem());
    await writeFile(join(dir, 'intermediate.pem'), await fixture.ca.intermediateCertPem());
    for (const pem of ['root.pem', 'intermediate.pem']) {
      expect((await cli('vendor-ca', 'add', join(dir, pem))).status).toBe(0);
    }
    const ek = (await fixture.at(0).rsaEkCertDer()).toString('base64');
    await writeFile(join(dir, 'fleet.csv'), `serial,asset_tag,hostname,group,ek_cert,ek_pub_hash\nSN-A,,node-a,workers,${ek},\n`);
    expect((await cli('inventory', 'import', join(dir, 'fleet.csv'))).status).toBe(0);
    await new PcrPoliciesRepository(ds).put('workers', FRESH_SWTPM_POLICY, 'test', new Date());

    const enroll = (index: number) =>
      runAgentCliAsync(['enroll', '--server', cp.baseUrl, '--tpm', fixture.at(index).device, '--state-dir', join(dir, `state-${index}`), '--ek', 'rsa-2048', '--event-log', 'none', '--json']);
    expect((await enroll(1)).status).not.toBe(0);
    expect((await enroll(0)).status).toBe(0);

    // A secret for the group: the worker seals it, the agent installs and acks it.
    await writeFile(join(dir, 'token'), randomBytes(32));
    expect((await cli('secrets', 'create', 'app-token', '--kind', 'opaque', '--group', 'workers', '--binding', 'certified-key', '--value-file', join(dir, 'token'))).status).toBe(0);
    const config = join(dir, 'agent.yaml');
    await writeFile(config, `installs:\n  app-token: {kind: opaque, path: ${join(dir, 'files', 'token')}, mode: "0600"}\n`);
    const agent = spawnCli('rackseal-agent', ['run', '--config', config, '--server', cp.baseUrl, '--tpm', fixture.at(0).device, '--state-dir', join(dir, 'state-0'), '--event-log', 'none', '--interval', '1h', '--ask-every', '5s']);
    agent.stdout.resume();
    agent.stderr.resume();
    try {
      await pollUntil(async () => (await ds.query(`SELECT state FROM deliveries`)) as { state: string }[], (rows) => rows.length === 1 && rows[0]!.state === 'acked', 90_000);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((resolve) => (agent.exitCode === null ? agent.once('exit', resolve) : resolve(undefined)));
    }
    // Every audit record of the run is in the signed tree before the gauges are compared.
    await pollUntil(async () => (await ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE seq IS NULL`)) as { n: number }[], (rows) => rows[0]!.n === 0, 60_000);

    cpText = await scrape(cpMetricsPort);
    workerText = await scrape(workerMetricsPort);
    cpSamples = parseMetrics(cpText);
    workerSamples = parseMetrics(workerText);
  }, 280_000);

  afterAll(async () => {
    await worker?.stop();
    await cp?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts attestations by step, outcome and refusal code, as many as the audit log records', async () => {
    // enroll attests once, run once more at its start: every success is an attestation.succeeded record.
    const succeeded = ((await ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'attestation.succeeded'`)) as { n: number }[])[0]!.n;
    expect(succeeded).toBeGreaterThanOrEqual(1);
    expect(sample(cpSamples, 'rackseal_attestations_total', { step: 'start', outcome: 'refused', code: 'attestation.unknown-ek' })).toBe(1);
    expect(sample(cpSamples, 'rackseal_attestations_total', { step: 'start', outcome: 'challenged', code: '' })).toBe(succeeded);
    expect(sample(cpSamples, 'rackseal_attestations_total', { step: 'finish', outcome: 'attested', code: '' })).toBe(succeeded);
    expect(sample(cpSamples, 'rackseal_attestations_total', { step: 'finish', outcome: 'refused', code: 'attestation.unknown-ek' })).toBeUndefined();
  });

  it('times HTTP requests by route template, method and status class, with no raw path or id as a label', () => {
    const started = sample(cpSamples, 'rackseal_attestations_total', { step: 'start', outcome: 'challenged', code: '' });
    expect(sample(cpSamples, 'rackseal_http_request_duration_seconds_count', { route: '/node/v1/attestations', method: 'POST', status_class: '2xx' })).toBe(started);
    expect(sample(cpSamples, 'rackseal_http_request_duration_seconds_count', { route: '/node/v1/attestations', method: 'POST', status_class: '4xx' })).toBe(1);
    expect(sample(cpSamples, 'rackseal_http_request_duration_seconds_count', { route: '/node/v1/attestations/:id/finish', method: 'POST', status_class: '2xx' })).toBe(started);
    expect(sample(cpSamples, 'rackseal_http_request_duration_seconds_count', { route: '/node/v1/deliveries/:id/ack', method: 'POST', status_class: '2xx' })).toBe(1);
    const routes = new Set(cpSamples.filter((s) => s.name.startsWith('rackseal_http_request_duration_seconds')).map((s) => s.labels.route));
    for (const route of routes) {
      // A template or the unmatched bucket: never a UUID, a serial or a query.
      expect([route, /^(\(unmatched\)|\/[a-z0-9/:_.-]*)$/.test(route!) && !/[0-9a-f]{8}-[0-9a-f]{4}/.test(route!) && !route!.includes('SN-A')]).toEqual([route, true]);
    }
  });

  it('reports machines, overdue machines and deliveries per state equal to PostgreSQL', async () => {
    const machines = (await ds.query(`SELECT state, count(*)::int AS n FROM machines GROUP BY state`)) as { state: string; n: number }[];
    expect(machines).toEqual([{ state: 'attested', n: 1 }]);
    for (const state of ['imported', 'attesting', 'attested', 'quarantined', 'revoked']) {
      expect([state, sample(cpSamples, 'rackseal_machines', { state })]).toEqual([state, machines.find((m) => m.state === state)?.n ?? 0]);
    }
    // Attested just now, with the 24 h default: nobody is overdue.
    expect(sample(cpSamples, 'rackseal_machines_not_attested_within_interval', { state: 'attested' })).toBe(0);
    expect(sample(cpSamples, 'rackseal_group_machines_not_attested_within_interval', { group: 'workers' })).toBe(0);
    expect(sample(cpSamples, 'rackseal_group_attestation_interval_seconds', { group: 'workers' })).toBe(86400);
    const deliveries = (await ds.query(`SELECT state, count(*)::int AS n FROM deliveries GROUP BY state`)) as { state: string; n: number }[];
    expect(deliveries).toEqual([{ state: 'acked', n: 1 }]);
    for (const state of ['pending', 'ready', 'acked', 'failed', 'cancelled', 'expired', 'prewrap-pending', 'prewrapped']) {
      expect([state, sample(cpSamples, 'rackseal_deliveries', { state })]).toEqual([state, deliveries.find((d) => d.state === state)?.n ?? 0]);
    }
    for (const source of ['machines', 'deliveries', 'audit']) {
      expect([source, sample(cpSamples, 'rackseal_metrics_source_up', { source })]).toEqual([source, 1]);
    }
  });

  it('reports the audit backlog and tree on both processes, equal to PostgreSQL', async () => {
    const [head] = (await ds.query(`SELECT size::int AS size FROM audit_tree_head WHERE id = 1`)) as { size: number }[];
    expect(head!.size).toBeGreaterThan(0);
    for (const samples of [cpSamples, workerSamples]) {
      expect(sample(samples, 'rackseal_audit_tree_size', {})).toBe(head!.size);
      expect(sample(samples, 'rackseal_audit_pending_records', {})).toBe(0);
    }
    expect(sample(workerSamples, 'rackseal_audit_sequencer_active', {})).toBe(1);
    // One worker, running since before the first record: it integrated every one and signed at least once.
    expect(sample(workerSamples, 'rackseal_audit_sequencer_integrated_records_total', {})).toBe(head!.size);
    expect(sample(workerSamples, 'rackseal_audit_sequencer_checkpoints_signed_total', {})).toBeGreaterThanOrEqual(1);
    expect(sample(workerSamples, 'rackseal_audit_sequencer_failures_total', {})).toBe(0);
  });

  it('the worker reports its job timings and the queue depths', () => {
    expect(sample(workerSamples, 'rackseal_job_duration_seconds_count', { job: 'delivery.deliver', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
    expect(sample(workerSamples, 'rackseal_job_wait_seconds_count', { job: 'delivery.deliver' })).toBeGreaterThanOrEqual(1);
    expect(sample(workerSamples, 'rackseal_queue_jobs', { queue: 'deliveries', state: 'completed' })).toBeGreaterThanOrEqual(1);
    expect(sample(workerSamples, 'rackseal_queue_jobs', { queue: 'deliveries', state: 'failed' })).toBe(0);
    expect(sample(workerSamples, 'rackseal_metrics_source_up', { source: 'queues' })).toBe(1);
    // The process's own figures, from prom-client's defaults.
    expect(sample(workerSamples, 'process_cpu_user_seconds_total', {})).toBeGreaterThan(0);
  });

  it('with METRICS_PORT set the API port answers 404 for /metrics, and the listener serves nothing else', async () => {
    const api = await fetch(`${cp.baseUrl}/metrics`);
    expect([api.status, ((await api.json()) as { code: string }).code]).toEqual([404, 'route.not-found']);
    expect((await fetch(`http://127.0.0.1:${workerMetricsPort}/v1/machines`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${workerMetricsPort}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  /** A metric an expression names is served when its family is, histogram and counter series included. */
  function served(name: string, families: ReadonlySet<string>): boolean {
    return families.has(name) || ['_bucket', '_sum', '_count'].some((suffix) => name.endsWith(suffix) && families.has(name.slice(0, -suffix.length)));
  }

  it('the Grafana dashboard and the alert rules use only metric names the two processes serve', async () => {
    const families = new Set([...metricNames(cpText), ...metricNames(workerText)]);
    const dashboard = JSON.parse(await readFile(join(repoRoot(), 'deploy/grafana/rackseal.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const rules = load(await readFile(join(repoRoot(), 'deploy/prometheus/rackseal-alerts.yaml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const expressions = [
      ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => [panel.title, target.expr] as const)),
      ...rules.groups.flatMap((group) => group.rules.map((rule) => [rule.alert, rule.expr] as const)),
    ];
    expect(expressions.length).toBeGreaterThan(20);
    for (const [where, expr] of expressions) {
      const names = metricsInExpression(expr);
      // Every expression names at least one metric, and each one is served.
      expect([where, expr, names.length > 0]).toEqual([where, expr, true]);
      for (const name of names) {
        expect([where, name, served(name, families)]).toEqual([where, name, true]);
      }
    }
  });

  it('the agent keeps its own counters in its state dir and shows them in status --json: attempts, deliveries, TPM failures', async () => {
    const status = async () => {
      const run = await runAgentCliAsync(['status', '--tpm', fixture.at(0).device, '--state-dir', join(dir, 'state-0'), '--offline', '--json']);
      expect([run.status, run.stderr]).toEqual([0, '']);
      return (JSON.parse(run.stdout) as { metrics: Record<string, unknown> & { attestations: Record<string, number>; deliveries: Record<string, number>; tpmErrors: Record<string, number> } }).metrics;
    };
    const before = await status();
    // enroll does not count: run attested once at its start, installed and acked the one delivery.
    expect(before).toMatchObject({
      attestations: { attested: 1, refused: 0, unreachable: 0, failed: 0 },
      deliveries: { delivered: 1, 'delivery-refused': 0, 'delivery-failed': 0, 'mailbox-invalid': 0 },
      lastDelivery: { outcome: 'delivered', secret: 'app-token' },
      tpmErrors: { tpm: 0, device: 0 },
    });
    expect(before.lastAttestedAt).toEqual(expect.any(String));
    expect(before.lastDeliveredAt).toEqual(expect.any(String));
    // A TPM that does not answer (nothing listens on the port): one failed attempt, one device failure
    // (with --interval the agent does not first open the TPM to ask the server for its interval).
    const dead = `swtpm:127.0.0.1:${await freePort()}`;
    const once = await runAgentCliAsync(['run', '--once', '--server', cp.baseUrl, '--tpm', dead, '--state-dir', join(dir, 'state-0'), '--event-log', 'none', '--interval', '1h', '--config', join(dir, 'agent.yaml')]);
    expect(once.status).not.toBe(0);
    const after = await status();
    expect(after).toMatchObject({ attestations: { attested: 1, failed: 1 }, deliveries: { delivered: 1 }, tpmErrors: { tpm: 0, device: 1 }, lastTpmError: { kind: 'device' } });
    expect(after.since).toBe(before.since);
  });
});
