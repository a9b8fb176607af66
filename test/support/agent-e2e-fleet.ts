/**
 * The fleet of the end-to-end suites that run the BUILT agent (test/deliveries-e2e.test.ts,
 * test/fleet-e2e.test.ts, test/agent-crash-e2e.test.ts): real PostgreSQL and Redis, the built
 * control plane and the built worker (the product sealer) as processes, an admin token made with
 * `rackseal token create`, the swtpm vendor CAs added, the machines imported into group `workers`
 * (one swtpm each), the group's PCR policy set with `rackseal policy set`, a Kubernetes CA
 * imported, and every machine enrolled with `rackseal-agent enroll`. The suites start the agents
 * (`rackseal-agent run` with a config file) themselves. `useAgentE2eFleet` registers the hooks.
 */
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { EnvMasterKey, openEnvelope } from '@rackseal/envelope';
import { secretMaterialContext } from '@rackseal/secrets';
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { FRESH_SWTPM_POLICY } from './attestation-policies';
import { type CliRun, runAgentCliAsync, runRacksealCli, runRacksealCliAsync, spawnCli } from './cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './database';
import { jestHooks } from './jest-hooks';
import { type RunningProcess, startApp, startControlPlane } from './processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './redis';
import type { SwtpmFixture, SwtpmMachine } from './swtpm';
import { repoRoot } from './repo-root';
import { testEnv } from './test-config';

/** A delivery as the suites look at it, ordered by secret, version and serial. */
export interface E2eDeliveryRow<S extends string = string> {
  id: string;
  serial: S;
  name: string;
  version: number;
  state: string;
  binding: string;
  envelope: Buffer | null;
  ack_proof_hash: Buffer | null;
}

/** One JSON line of `rackseal-agent run`'s stdout. */
export interface AgentLine {
  readonly outcome: string;
  readonly deliveryId?: string;
  readonly secret?: string;
  readonly state?: string;
  readonly code?: string;
  readonly changed?: boolean;
  readonly [key: string]: unknown;
}

export interface RunningAgent {
  readonly child: ChildProcessWithoutNullStreams;
  /** stdout's lines so far. */
  readonly out: string[];
  readonly exited: Promise<unknown>;
}

export interface AgentStartOptions {
  /** `--ask-every` (how soon a policy change is noticed); default 5s. */
  readonly askEvery?: string;
  /** The server the agent talks to; default the control plane (a proxy in front of it, say). */
  readonly server?: string;
  /** Extra environment (PATH, HOME and these only). */
  readonly env?: NodeJS.ProcessEnv;
}

/** What beforeAll made. */
interface Parts {
  db: TestDatabase;
  prefix: TestQueuePrefix;
  ds: DataSource;
  dir: string;
  admin: string;
  cp: { proc: RunningProcess; baseUrl: string };
  worker: RunningProcess;
}

export class AgentE2eFleet<S extends string> {
  readonly masterKey = randomBytes(32);
  readonly keys = new EnvMasterKey(new SecretBytes(this.masterKey));
  readonly agents = new Map<S, RunningAgent>();
  private readonly made: Partial<Parts> = {};

  constructor(
    readonly serials: readonly S[],
    private readonly fixture: SwtpmFixture,
    private readonly dirPrefix: string,
  ) {}

  private part<K extends keyof Parts>(key: K): Parts[K] {
    const value = this.made[key];
    if (value === undefined) {
      throw new Error(`AgentE2eFleet: ${key} is not there (useAgentE2eFleet makes it in beforeAll)`);
    }
    return value as Parts[K];
  }

  get ds(): DataSource {
    return this.part('ds');
  }
  /** The suite's temporary directory: state dirs, installed files, configs. */
  get dir(): string {
    return this.part('dir');
  }
  get admin(): string {
    return this.part('admin');
  }
  get cp(): { proc: RunningProcess; baseUrl: string } {
    return this.part('cp');
  }
  get worker(): RunningProcess {
    return this.part('worker');
  }

  tpm(serial: S): SwtpmMachine {
    return this.fixture.at(this.serials.indexOf(serial));
  }
  stateDir(serial: S): string {
    return join(this.dir, `state-${serial}`);
  }
  /** Where the suite's configs put the machine's installed files. */
  files(serial: S): string {
    return join(this.dir, `files-${serial}`);
  }

  /** The operator's CLI against the control plane; `secrets rotate` waits for every ack, hence the long kill timeout. */
  readonly cli = (...args: string[]): Promise<CliRun> => runRacksealCliAsync(args, { env: { RACKSEAL_SERVER: this.cp.baseUrl, RACKSEAL_TOKEN: this.admin }, timeoutMs: 150_000 });

  async start(): Promise<void> {
    const made = this.made;
    const dir = (made.dir = await mkdtemp(join(tmpdir(), this.dirPrefix)));
    const db = (made.db = await createTestDatabase());
    const prefix = (made.prefix = createTestQueuePrefix());
    made.ds = await openDataSource(db.url, 2);
    const env = testEnv(db, prefix.prefix, { RACKSEAL_MASTER_KEY: this.masterKey.toString('hex') });
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url, RACKSEAL_MASTER_KEY: this.masterKey.toString('hex') } });
    check(bootstrap, 'token create');
    made.admin = bootstrap.stdout.trim();
    made.cp = await startControlPlane(env);
    // The product worker: apps/worker's main, its sealer the wrapping library's.
    made.worker = startApp('worker', { ...env, LOG_LEVEL: 'info' });
    await made.worker.waitForLog((l) => l.msg === 'worker ready');

    await writeFile(join(dir, 'root.pem'), await this.fixture.ca.rootCertPem());
    await writeFile(join(dir, 'intermediate.pem'), await this.fixture.ca.intermediateCertPem());
    for (const pem of ['root.pem', 'intermediate.pem']) {
      check(await this.cli('vendor-ca', 'add', join(dir, pem)), `vendor-ca add ${pem}`);
    }
    const rows = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash'];
    for (const serial of this.serials) {
      rows.push(`${serial},,node-${serial.slice(3).toLowerCase()},workers,${(await this.tpm(serial).rsaEkCertDer()).toString('base64')},`);
    }
    await writeFile(join(dir, 'fleet.csv'), `${rows.join('\n')}\n`);
    check(await this.cli('inventory', 'import', join(dir, 'fleet.csv')), 'inventory import');
    // The operator's command: the policy set signs the group's approvals (libs/attestation PcrApprovals).
    await writeFile(join(dir, 'policy.json'), JSON.stringify(FRESH_SWTPM_POLICY));
    check(await this.cli('policy', 'set', 'workers', '--file', join(dir, 'policy.json')), 'policy set');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k8s.key'), '-out', join(dir, 'k8s.crt'), '-subj', '/CN=kubernetes', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'], { stdio: 'ignore' });
    check(await this.cli('ca', 'import', '--kind', 'kubernetes', join(dir, 'k8s.crt'), join(dir, 'k8s.key')), 'ca import');

    for (const serial of this.serials) {
      check(await runAgentCliAsync(['enroll', '--server', this.cp.baseUrl, '--tpm', this.tpm(serial).device, '--state-dir', this.stateDir(serial), '--ek', 'rsa-2048', '--event-log', 'none', '--json']), `${serial}: rackseal-agent enroll`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.keys()].map((serial) => this.stopAgent(serial, 'SIGKILL')));
    const made = this.made;
    await made.worker?.stop();
    await made.cp?.proc.stop();
    await made.ds?.destroy();
    await made.db?.drop();
    await made.prefix?.clear();
    if (made.dir !== undefined) {
      await rm(made.dir, { recursive: true, force: true });
    }
  }

  /** Every delivery (or those of secret `name`), ordered by secret, version and serial. */
  async deliveries(name?: string): Promise<E2eDeliveryRow<S>[]> {
    return (await this.ds.query(
      `SELECT d.id, m.serial, s.name, v.version, d.state, d.binding, d.envelope, d.ack_proof_hash FROM deliveries d
         JOIN machines m ON m.id = d.machine_id JOIN secrets s ON s.id = d.secret_id JOIN secret_versions v ON v.id = d.version_id
        WHERE $1::text IS NULL OR s.name = $1 ORDER BY s.name, v.version, m.serial`,
      [name ?? null],
    )) as E2eDeliveryRow<S>[];
  }

  /** How many `delivery.acked` audit records the delivery has (exactly one when acked once). */
  async ackCount(deliveryId: string): Promise<number> {
    const [row] = (await this.ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'delivery.acked' AND subject = $1`, [`delivery:${deliveryId}`])) as { n: string }[];
    return Number(row!.n);
  }

  /** The per-machine material the control plane holds: the key (PKCS#8 DER, or a disk's raw bytes), the certificate, a kubelet's kubeconfig. */
  async material(name: string, version: number, serial: S): Promise<{ key: Buffer; certificatePem: string | null; kubeletConf: string | null }> {
    const [row] = (await this.ds.query(
      `SELECT sm.id, sm.material_sealed, sm.certificate_pem, sm.kubelet_conf FROM secret_materials sm JOIN secret_versions v ON v.id = sm.version_id
         JOIN secrets s ON s.id = v.secret_id JOIN machines m ON m.id = sm.machine_id WHERE s.name = $1 AND v.version = $2 AND m.serial = $3`,
      [name, version, serial],
    )) as { id: string; material_sealed: Buffer; certificate_pem: string | null; kubelet_conf: string | null }[];
    if (row === undefined) {
      throw new Error(`no material of ${name} v${version} for ${serial}`);
    }
    return { key: openEnvelope(this.keys, secretMaterialContext(row.id), row.material_sealed).reveal(), certificatePem: row.certificate_pem, kubeletConf: row.kubelet_conf };
  }

  /** Starts `rackseal-agent run` for `serial` with `config`, collecting its stdout lines. */
  startAgent(serial: S, config: string, options: AgentStartOptions = {}): RunningAgent {
    const args = ['run', '--config', config, '--server', options.server ?? this.cp.baseUrl, '--tpm', this.tpm(serial).device, '--state-dir', this.stateDir(serial), '--event-log', 'none', '--interval', '1h', '--ask-every', options.askEvery ?? '5s'];
    const child = spawnCli('rackseal-agent', args, options.env === undefined ? {} : { env: options.env });
    const out: string[] = [];
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop()!;
      out.push(...parts.filter((l) => l.trim() !== ''));
    });
    child.stderr.on('data', () => undefined);
    const agent = { child, out, exited: new Promise((resolve) => child.once('exit', resolve)) };
    this.agents.set(serial, agent);
    return agent;
  }

  /** Stops the machine's agent (SIGTERM unless told) and waits for its exit. */
  async stopAgent(serial: S, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const agent = this.agents.get(serial);
    this.agents.delete(serial);
    if (agent !== undefined && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill(signal);
      await agent.exited;
    }
  }

  /** The running agent's stdout lines, parsed. */
  lines(serial: S): AgentLine[] {
    return (this.agents.get(serial)?.out ?? []).map((l) => JSON.parse(l) as AgentLine);
  }
}

function check(run: CliRun, what: string): void {
  if (run.status !== 0) {
    throw new Error(`${what} exited ${String(run.status)}: ${run.stderr}`);
  }
}

/** An AgentE2eFleet of `serials` (one swtpm each, in order), made in beforeAll and torn down in afterAll. */
export function useAgentE2eFleet<S extends string>(serials: readonly S[], fixture: SwtpmFixture, dirPrefix: string): AgentE2eFleet<S> {
  const hooks = jestHooks('useAgentE2eFleet');
  const fleet = new AgentE2eFleet(serials, fixture, dirPrefix);
  hooks.beforeAll(() => fleet.start(), 240_000);
  hooks.afterAll(() => fleet.close());
  return fleet;
}

/** A child's exit status and stdout (binary: a key printed by `rackseal-agent unlock`), stdin fed from `input` when given. */
export function runBinary(command: string, args: readonly string[], input?: Buffer): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot(), env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}
