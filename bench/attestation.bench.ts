import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PcrPoliciesRepository, RuntimePoliciesRepository } from '@rackseal/attestation';
import { AuditLog } from '@rackseal/audit';
import { InventoryImporter } from '@rackseal/inventory';
import { CryptoRandomSource, SystemClock } from '@rackseal/platform';
import { loadTrustStore, TrustStoreCache, VendorCas } from '@rackseal/vendor-cas';
import type { DataSource } from 'typeorm';
import { makeCa, makeEkCertificate, type TestCa } from '../libs/ek-trust/src/testing/certificate-builder';
import { FRESH_SWTPM_POLICY } from '../test/support/attestation-policies';
import { createTestDatabase, openDataSource, type TestDatabase } from '../test/support/database';
import { freePort } from '../test/support/free-port';
import { createTestQueuePrefix, type TestQueuePrefix } from '../test/support/redis';
import { TEST_ADMIN_DATABASE_URL, TEST_REDIS_URL } from '../test/support/services';
import { SoftwareTpm } from '../test/support/software-tpm';
import { testEnv } from '../test/support/test-config';
import { attestationCryptoFloor } from './attestation-floor';
import { type BenchMachine, IMA_BENCH_PATHS, imaBenchDigest, imaBenchPath, type LoadResult, quantile, runLoad } from './attestation-load';
import { summariseCpuProfile } from './cpu-profile';
import { formatTable, us } from './measure';
import { appMain, children, postgresPids, type Started, startProcess, stopProcess, waitLive } from './bench-processes';
import { CpuSample, machineBusyMs } from './proc-cpu';

/**
 * Issue 12's benchmark: full attestations per second — POST /node/v1/attestations and …/finish over
 * HTTP against the built control plane (dist/apps/control-plane), which checks the EK chain, makes
 * the credential, verifies the quote and writes PostgreSQL rows and audit records — with `CLIENTS`
 * simulated agents (test/support/software-tpm.ts: P-256 EK and AK in node:crypto) in this process.
 * Setup is the real one: a P-256 bench vendor CA (root + issuing) added through VendorCas, the
 * machines' EK certificates imported through InventoryImporter, the group's PCR policy stored
 * through PcrPoliciesRepository; every finish must answer `attested`. A worker process runs beside
 * the control planes (as in a deployment: its audit sequencer merges the records into the tree).
 *
 * Each configuration (one control plane, then two on two ports with requests spread round-robin)
 * runs WARMUP + SECONDS; CPU per attestation is read from /proc for each process (control planes,
 * worker, the PostgreSQL backends of the bench database, PostgreSQL's shared auxiliary processes)
 * and process.cpuUsage for the load generator. The raw crypto floor is measured in-process at the
 * end (bench/attestation-floor.ts).
 *
 * Knobs: ATTEST_BENCH_SECONDS (30), ATTEST_BENCH_WARMUP (10), ATTEST_BENCH_CLIENTS (64),
 * ATTEST_BENCH_MACHINES (256), ATTEST_BENCH_REPLICAS ("1,2"), ATTEST_BENCH_WORKER (1; 0 runs no
 * worker), ATTEST_BENCH_LOG_LEVEL (info, the default of a deployment; request logs go to a file),
 * ATTEST_BENCH_POOL (DATABASE_POOL_SIZE of each control plane; unset: the default),
 * ATTEST_BENCH_PROFILE (1: one more one-replica run under `node --cpu-prof`, summarised),
 * ATTEST_BENCH_DATABASE_SOCKET (a directory such as /var/run/postgresql: the processes reach
 * PostgreSQL over its Unix socket instead of TCP to 127.0.0.1),
 * ATTEST_BENCH_DIST (another build's dist/ to run the processes from: before/after pairs),
 * ATTEST_BENCH_KEEP_LOGS (1: keep the processes' logs and profiles, and say where),
 * ATTEST_BENCH_IMA (N > 0: the group also has a runtime policy of IMA_BENCH_PATHS files, so every
 * quote holds PCR 10 and every finish carries the machine's new IMA entries — 1,000 in its first
 * round, N in each one after — replayed and judged by the server; issue 17).
 */
const FAR_PAST = new Date('2015-01-01T00:00:00Z');
const FAR_FUTURE = new Date('2045-01-01T00:00:00Z');
const GROUP = 'bench';

const knob = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number`);
  }
  return value;
};

interface Setup {
  readonly db: TestDatabase;
  readonly ds: DataSource;
  readonly prefix: TestQueuePrefix;
  readonly machines: BenchMachine[];
  readonly root: TestCa;
  readonly issuing: TestCa;
}

/** The vendor CA, the inventory and the group's policy, each through the library that owns its tables. */
async function setUp(machineCount: number, ima: number): Promise<Setup> {
  const db = await createTestDatabase();
  const prefix = createTestQueuePrefix();
  let ds: DataSource | undefined;
  try {
    ds = await openDataSource(db.url);
    const setup = await populate(db, ds, prefix, machineCount);
    if (ima > 0) {
      const digests = Object.fromEntries(Array.from({ length: IMA_BENCH_PATHS }, (_, i) => [imaBenchPath(i), [imaBenchDigest(imaBenchPath(i)).toString('hex')]]));
      await new RuntimePoliciesRepository(ds).put(GROUP, JSON.stringify({ meta: { version: 1 }, digests }), 'enforce', 'bench', new Date(), ds.manager);
    }
    return setup;
  } catch (error) {
    await ds?.destroy();
    await db.drop();
    throw error;
  }
}

async function populate(db: TestDatabase, ds: DataSource, prefix: TestQueuePrefix, machineCount: number): Promise<Setup> {
  const clock = new SystemClock();
  const audit = new AuditLog(ds, clock);
  const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const root = makeCa({ subject: [[['O', 'Bench TPM Vendor']], [['CN', 'Bench ECC EK Root']]], keys: p256(), notBefore: FAR_PAST, notAfter: FAR_FUTURE });
  const issuing = makeCa({ subject: [[['O', 'Bench TPM Vendor']], [['CN', 'Bench ECC EK Issuing CA']]], keys: p256(), issuer: root, notBefore: FAR_PAST, notAfter: FAR_FUTURE, pathLength: 0 });
  const added = await new VendorCas(ds, audit, clock, new CryptoRandomSource()).addBundle(
    [
      { content: root.der, source: 'bench root' },
      { content: issuing.der, source: 'bench issuing CA' },
    ],
    { addedBy: 'bench' },
  );
  if (added.results.some((r) => r.status !== 'added')) {
    throw new Error(`vendor CAs not added: ${JSON.stringify(added.results)}`);
  }
  const machines: BenchMachine[] = [];
  const rows = ['serial,asset_tag,hostname,group,ek_cert'];
  for (let i = 0; i < machineCount; i += 1) {
    const tpm = new SoftwareTpm();
    const der = makeEkCertificate({ issuer: issuing, publicKey: tpm.ek.publicKey, notBefore: FAR_PAST, notAfter: FAR_FUTURE, serial: i + 1 });
    const serial = `BENCH-${String(i).padStart(5, '0')}`;
    rows.push(`${serial},,node${i}.bench,${GROUP},${der.toString('base64')}`);
    machines.push({ serial, tpm, ekCertificate: der.toString('base64') });
  }
  const importer = new InventoryImporter(ds, audit, clock, { loadTrustStore: (m) => loadTrustStore(m), ekGraceDays: 0 });
  const summary = await importer.import(Readable.from([Buffer.from(`${rows.join('\n')}\n`)]), { actor: 'bench', fileName: 'bench-inventory.csv' });
  if (summary.status !== 'succeeded' || summary.counts.created !== machineCount) {
    throw new Error(`inventory import: ${JSON.stringify(summary)}`);
  }
  // A software TPM's PCRs start at zero, as a fresh swtpm's do: the same policy attests both.
  await new PcrPoliciesRepository(ds).put(GROUP, FRESH_SWTPM_POLICY, 'bench', clock.now());
  return { db, ds, prefix, machines, root, issuing };
}

interface RunResult {
  readonly label: string;
  readonly serverMs: number;
  readonly workerMs: number;
  readonly pgBackendMs: number;
  readonly pgAuxMs: number;
  readonly machineBusyMs: number;
  readonly pgBackends: number;
  /** 1-minute load average when the window opened and closed (other work on the machine shows here). */
  readonly load: LoadResult;
  readonly loadAverage: readonly [number, number];
  readonly profile?: string;
}

async function runConfiguration(
  setup: Setup,
  label: string,
  replicas: number,
  options: { profileDir?: string; socketDir?: string; worker: boolean; logLevel: string; pool?: string; clients: number; warmup: number; seconds: number; logDir: string; ima: number },
): Promise<RunResult> {
  const env = testEnv(options.socketDir === undefined ? setup.db : { url: overSocket(setup.db.url, options.socketDir) }, setup.prefix.prefix, { LOG_LEVEL: options.logLevel, MIGRATIONS_AT_BOOT: 'false', ...(options.pool === undefined ? {} : { DATABASE_POOL_SIZE: options.pool }) });
  const nodeArgs = options.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`];
  const servers: Started[] = [];
  const others: Started[] = [];
  try {
    const urls: string[] = [];
    for (let i = 0; i < replicas; i += 1) {
      const port = await freePort();
      const logPath = join(options.logDir, `control-plane-${label.replace(/\W+/g, '-')}-${i}.log`);
      const proc = startProcess(appMain('control-plane'), `control plane ${i + 1}`, { ...env, PORT: String(port) }, nodeArgs, logPath);
      servers.push(proc);
      await waitLive(proc, port, logPath);
      urls.push(`http://127.0.0.1:${port}`);
    }
    if (options.worker) {
      others.push(startProcess(appMain('worker'), 'worker', env, [], join(options.logDir, `worker-${label.replace(/\W+/g, '-')}.log`)));
    }
    let serverCpu: CpuSample | undefined;
    let workerCpu: CpuSample | undefined;
    let backendCpu: CpuSample | undefined;
    let auxCpu: CpuSample | undefined;
    let busy0 = 0;
    const result: Partial<RunResult> = {};
    const load = await runLoad({
      baseUrls: urls,
      machines: setup.machines,
      clients: options.clients,
      warmupSeconds: options.warmup,
      seconds: options.seconds,
      imaPerRound: options.ima,
      onWindow: async (edge) => {
        if (edge === 'open') {
          const pids = await postgresPids(setup.ds, setup.db.name);
          busy0 = machineBusyMs();
          serverCpu = new CpuSample(servers.map((s) => s.child.pid!));
          workerCpu = new CpuSample(others.map((s) => s.child.pid!));
          backendCpu = new CpuSample(pids.backends);
          auxCpu = new CpuSample(pids.aux);
          Object.assign(result, { pgBackends: pids.backends.length, loadAverage: [loadavg()[0]!, 0] });
        } else {
          Object.assign(result, {
            loadAverage: [result.loadAverage![0], loadavg()[0]!],
            machineBusyMs: machineBusyMs() - busy0,
            serverMs: serverCpu!.usedMs(),
            workerMs: workerCpu!.usedMs(),
            pgBackendMs: backendCpu!.usedMs(),
            pgAuxMs: auxCpu!.usedMs(),
          });
        }
      },
    });
    for (const proc of [...servers, ...others]) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(`${proc.name} exited during the run: ${proc.stderr}`);
      }
    }
    return { label, load, ...(result as Omit<RunResult, 'label' | 'load'>) };
  } finally {
    await Promise.all([...servers, ...others].map(stopProcess));
  }
}

const ms = (value: number): string => `${value.toFixed(1)} ms`;

export async function attestationBench(): Promise<string> {
  process.env[TEST_ADMIN_DATABASE_URL] ??= process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env[TEST_REDIS_URL] ??= 'redis://127.0.0.1:6379';
  const seconds = knob('ATTEST_BENCH_SECONDS', 30);
  const warmup = knob('ATTEST_BENCH_WARMUP', 10);
  const clients = knob('ATTEST_BENCH_CLIENTS', 64);
  const machineCount = Math.max(clients, knob('ATTEST_BENCH_MACHINES', 256));
  const replicaCounts = (process.env.ATTEST_BENCH_REPLICAS ?? '1,2').split(',').filter((r) => r !== '').map(Number);
  const worker = process.env.ATTEST_BENCH_WORKER !== '0';
  const logLevel = process.env.ATTEST_BENCH_LOG_LEVEL ?? 'info';
  const pool = process.env.ATTEST_BENCH_POOL;
  const profile = process.env.ATTEST_BENCH_PROFILE === '1';
  const socketDir = process.env.ATTEST_BENCH_DATABASE_SOCKET;
  const ima = knob('ATTEST_BENCH_IMA', 0);
  const setup = await setUp(machineCount, ima);
  const workDir = mkdtempSync(join(tmpdir(), 'rackseal-attest-bench-'));
  const common = { worker, logLevel, pool, clients, warmup, seconds, logDir: workDir, ima, ...(socketDir === undefined ? {} : { socketDir }) };
  const cleanUp = async (): Promise<void> => {
    await setup.ds.destroy();
    await setup.db.drop();
    await setup.prefix.clear();
  };
  // Ctrl-C or a kill: no 'exit' event fires for a signal, so the processes and the database go here.
  const onSignal = (signal: NodeJS.Signals) => {
    children.forEach((c) => c.kill('SIGKILL'));
    rmSync(workDir, { recursive: true, force: true });
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const runs: RunResult[] = [];
  let floor: Awaited<ReturnType<typeof attestationCryptoFloor>>;
  let trustStore: string;
  try {
    for (const replicas of replicaCounts) {
      runs.push(await runConfiguration(setup, `${replicas} control plane${replicas === 1 ? '' : 's'}${ima > 0 ? `, IMA ${ima} new entries/round` : ''}`, replicas, common));
    }
    if (profile) {
      const profileDir = join(workDir, 'profile');
      const run = await runConfiguration(setup, '1 control plane, --cpu-prof', 1, { ...common, profileDir });
      const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
      runs.push({ ...run, ...(file === undefined ? {} : { profile: summariseCpuProfile(join(profileDir, file)) }) });
    }
    const tpm = setup.machines[0]!.tpm;
    const key = (ca: TestCa): KeyObject => new X509Certificate(ca.der).publicKey;
    floor = await attestationCryptoFloor({
      ekDer: Buffer.from(setup.machines[0]!.ekCertificate, 'base64'),
      issuingDer: setup.issuing.der,
      issuingKey: key(setup.issuing),
      rootKey: key(setup.root),
      tpm,
      iterations: 5000,
    });
    trustStore = await trustStoreCost(setup.ds);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    await cleanUp();
    if (process.env.ATTEST_BENCH_KEEP_LOGS === '1') {
      process.stderr.write(`attestation bench: logs kept in ${workDir}\n`);
    } else {
      rmSync(workDir, { recursive: true, force: true });
    }
  }

  const floorMs = (floor.start.cpuUs + floor.finish.cpuUs) / 1000;
  const latency = formatTable([
    ['configuration', 'attestations/s', 'start p50 / p95 / p99', 'finish p50 / p95 / p99', 'whole p50 / p95 / p99', 'attestations', '503 retried'],
    ...runs.map((r) => {
      const three = (s: Float64Array): string => `${ms(quantile(s, 0.5))} / ${ms(quantile(s, 0.95))} / ${ms(quantile(s, 0.99))}`;
      return [r.label, (r.load.attestations / r.load.seconds).toFixed(0), three(r.load.start), three(r.load.finish), three(r.load.whole), String(r.load.attestations), String(r.load.unavailable)];
    }),
  ]);
  const cpu = formatTable([
    ['configuration', 'control plane(s) CPU / att.', 'ratio to floor', 'PostgreSQL backends / att.', 'PostgreSQL aux / att.', 'worker / att.', 'load generator / att.', 'machine busy', 'load avg (open → close)'],
    ...runs.map((r) => {
      const per = (value: number) => ms(value / r.load.attestations);
      return [
        r.label,
        per(r.serverMs),
        `${(r.serverMs / r.load.attestations / floorMs).toFixed(1)}×`,
        `${per(r.pgBackendMs)} (${r.pgBackends} backends)`,
        per(r.pgAuxMs),
        worker ? per(r.workerMs) : '—',
        per(r.load.generatorCpuMs),
        `${((100 * r.machineBusyMs) / (r.load.seconds * 1000 * cpus().length)).toFixed(0)} % of ${cpus().length} cores`,
        `${r.loadAverage[0].toFixed(1)} → ${r.loadAverage[1].toFixed(1)}`,
      ];
    }),
  ]);
  const floorTable = formatTable([
    ['raw crypto floor (in-process, 5,000 iterations)', 'CPU per iteration', 'wall p50', 'wall p99'],
    ['start: EK cert read + 2 signature verifies, ekPubHash, AK Name, MakeCredential P-256, seal', us(floor.start.cpuUs), us(floor.start.p50Us), us(floor.start.p99Us)],
    ['finish: open, proof (HKDF + HMAC), AK import + ECDSA verify + PCR digest, credential (2 HKDF), seal', us(floor.finish.cpuUs), us(floor.finish.p50Us), us(floor.finish.p99Us)],
    ['one attestation', us(floor.start.cpuUs + floor.finish.cpuUs), us(floor.start.p50Us + floor.finish.p50Us), ''],
  ]);
  const profiles = runs.filter((r) => r.profile !== undefined).map((r) => `#### CPU profile of the control plane (${r.label})\n\n${r.profile!}`);
  const notes = `${clients} clients, ${machineCount} machines (P-256 EKs, certificates of a P-256 bench vendor CA), warm-up ${warmup} s + ${seconds} s measured per configuration; LOG_LEVEL=${logLevel}; DATABASE_POOL_SIZE ${pool ?? 'default'} per control plane; PostgreSQL over ${socketDir === undefined ? 'TCP (127.0.0.1)' : `its Unix socket (${socketDir})`}; ${worker ? 'one worker process (audit sequencer) running' : 'no worker'}. CPU per attestation is the process's CPU over the measured window divided by the attestations finished in it.`;
  return [notes, latency, cpu, floorTable, trustStore, ...profiles].join('\n\n');
}

/**
 * What an attestation start pays for its trust store, in this process on the bench database (two
 * CAs): loaded and parsed from vendor_cas on every call (loadTrustStore), or reused while the rows
 * are unchanged (TrustStoreCache, what the control plane uses). Blocks alternate; CPU of this
 * process (node-postgres and the parsing; the backend's share is not counted) per call.
 */
async function trustStoreCost(ds: DataSource): Promise<string> {
  const cache = new TrustStoreCache();
  const variants: [string, () => Promise<unknown>][] = [
    ['loadTrustStore (vendor_cas read and parsed per call)', () => loadTrustStore(ds)],
    ['TrustStoreCache.load (flags read per call, store reused)', () => cache.load(ds)],
  ];
  const cpuUs = new Map<string, number[]>();
  const wallUs = new Map<string, number[]>();
  const calls = 500;
  for (let round = 0; round < 6; round += 1) {
    for (const [name, load] of variants) {
      const before = process.cpuUsage();
      const started = performance.now();
      for (let i = 0; i < calls; i += 1) {
        await load();
      }
      const used = process.cpuUsage(before);
      if (round > 0) {
        cpuUs.set(name, [...(cpuUs.get(name) ?? []), (used.user + used.system) / calls]);
        wallUs.set(name, [...(wallUs.get(name) ?? []), ((performance.now() - started) * 1000) / calls]);
      }
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return formatTable([
    ['trust store per attestation start (2 CAs, 5 × 500 calls alternating)', 'CPU per call (median of blocks)', 'wall per call (median)'],
    ...variants.map(([name]) => [name, us(median(cpuUs.get(name)!)), us(median(wallUs.get(name)!))]),
  ]);
}

/** The same database reached through PostgreSQL's Unix socket in `dir` (libpq's host=/dir form, percent-encoded). */
function overSocket(url: string, dir: string): string {
  const parsed = new URL(url);
  return `postgres://${parsed.username}@${encodeURIComponent(dir)}${parsed.pathname}`;
}
