/**
 * compose's fleet without Docker (no engine runs here): the scripts docker/compose.yaml runs, run on
 * this machine against the real thing, wired the way compose wires them —
 *
 * - three TPMs manufactured and served by docker/swtpm/entrypoint.sh, each publishing its EK and
 *   "vendor" CA certificates in SWTPM_PUBLIC_DIR, as the swtpm-N services do;
 * - a control plane and a worker built from this tree (real PostgreSQL and Redis);
 * - docker/fleet-setup.sh with those certificates at FLEET_DIR/machine-N, as compose mounts them;
 * - three agents started by docker/agent-entrypoint.sh with docker/agent.yaml (its server and paths
 *   moved to this test's), restarted whenever they exit, as compose's restart policy does.
 *
 * The fleet must come up by itself: every machine attested, the canary's boot state promoted as
 * the group's policy, both secrets installed on every machine; and fleet-setup run again changes
 * nothing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_ENTRY, RACKSEAL_ENTRY, runRacksealCliAsync } from './support/cli-runner';
import { createTestDatabase, type TestDatabase } from './support/database';
import { onWorkerExit } from './support/exit-guard';
import { freePortPair, LOCALHOST } from './support/free-port';
import { startApp, startControlPlane, type RunningProcess } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { repoRoot } from './support/repo-root';
import { testEnv } from './support/test-config';
import { pollUntil } from './support/wait';

const DOCKER = join(repoRoot(), 'docker');
const MACHINES = [1, 2, 3] as const;

interface Exited {
  readonly code: number | null;
  readonly output: string;
}

/** A child whose stdout and stderr are kept, and whose whole process group can be stopped. */
function start(command: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; exited: Promise<Exited> } {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<Exited>((resolve) => child.once('exit', (code) => resolve({ code, output })));
  return { child, output: () => output, exited };
}

function stopGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid !== undefined && child.exitCode === null) {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  }
}

describe("compose's fleet scripts against a real control plane, worker and three swtpm machines", () => {
  let dir: string;
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let controlPlane: RunningProcess;
  let worker: RunningProcess;
  let baseUrl: string;
  let path: string;
  const children: ChildProcess[] = [];
  const unregister = onWorkerExit(() => children.forEach((c) => stopGroup(c, 'SIGKILL')));

  /** The environment of the rackseal CLIs a script calls: the shims first on PATH. */
  const scriptEnv = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ PATH: path, HOME: process.env.HOME, ...extra });
  const agentDir = (n: number): string => join(dir, `agent-${n}`);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-compose-fleet-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const env = testEnv(db, prefix.prefix, { RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: randomBytes(32).toString('hex') });
    ({ proc: controlPlane, baseUrl } = await startControlPlane(env));
    worker = startApp('worker', { ...env, LOG_LEVEL: 'info' });
    await worker.waitForLog((l) => l.msg === 'worker ready');

    // `rackseal` and `rackseal-agent` on PATH, as the images link them.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    for (const [name, entry] of [['rackseal', RACKSEAL_ENTRY], ['rackseal-agent', AGENT_ENTRY]] as const) {
      await writeFile(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${entry}" "$@"\n`);
      await chmod(join(bin, name), 0o755);
    }
    path = `${bin}:${process.env.PATH ?? ''}`;

    // The swtpm-N services: manufactured on first start, certificates published, then serving.
    const tpms: string[] = [];
    for (const n of MACHINES) {
      const [port] = await freePortPair();
      const tpmEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SWTPM_STATE_ROOT: join(dir, `swtpm-${n}`),
        SWTPM_PORT: String(port),
        SWTPM_BIND: LOCALHOST,
        SWTPM_PUBLIC_DIR: join(dir, 'fleet', `machine-${n}`),
      };
      const sidecar = start(join(DOCKER, 'swtpm', 'entrypoint.sh'), [], tpmEnv);
      children.push(sidecar.child);
      const healthy = await pollUntil(
        async () => sidecar.output().includes('serving TPM 2.0') && spawnSync(join(DOCKER, 'swtpm', 'entrypoint.sh'), ['healthcheck'], { env: tpmEnv }).status === 0,
        (ok) => ok,
        60_000,
        200,
      );
      expect({ tpm: n, healthy, output: healthy ? '' : sidecar.output() }).toEqual({ tpm: n, healthy: true, output: '' });
      tpms.push(`swtpm:${LOCALHOST}:${port}`);
    }

    // The agent-N services: docker/agent.yaml with this test's server and paths, and the
    // entrypoint restarted whenever it exits (compose: restart unless-stopped).
    const agentYaml = readFileSync(join(DOCKER, 'agent.yaml'), 'utf8');
    for (const n of MACHINES) {
      await mkdir(join(agentDir(n), 'state'), { recursive: true, mode: 0o700 });
      const config = join(agentDir(n), 'agent.yaml');
      await writeFile(
        config,
        agentYaml
          .replace('http://lb:8080', baseUrl)
          .replaceAll('/var/lib/rackseal-agent', join(agentDir(n), 'state'))
          .replaceAll('/srv/secrets', join(agentDir(n), 'secrets')),
      );
      const agent = start(
        'sh',
        ['-c', 'while :; do "$0" "$@"; sleep 1; done', join(DOCKER, 'agent-entrypoint.sh'), '--tpm', tpms[n - 1] as string, '--config', config],
        scriptEnv({}),
      );
      children.push(agent.child);
    }
  }, 180_000);

  afterAll(async () => {
    for (const child of children) {
      stopGroup(child);
    }
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    unregister();
    await worker?.stop();
    await controlPlane?.stop();
    await db?.drop();
    await prefix?.clear();
    await rm(dir, { recursive: true, force: true });
  });

  const fleetSetup = (): Promise<Exited> =>
    start('sh', [join(DOCKER, 'fleet-setup.sh')], scriptEnv({ DATABASE_URL: db.url, RACKSEAL_SERVER: baseUrl, FLEET_DIR: join(dir, 'fleet') })).exited;

  it('fleet-setup brings the three machines in: every one attested and both secrets installed', async () => {
    const setup = await fleetSetup();
    expect({ code: setup.code, done: setup.output.includes('fleet-setup: done') }).toEqual({ code: 0, done: true });

    const installed = (n: number): boolean =>
      ['demo-shared', 'tls/node.key', 'tls/node.crt', 'tls/ca.crt'].every((f) => existsSync(join(agentDir(n), 'secrets', f)));
    const all = await pollUntil(async () => MACHINES.filter(installed), (ready) => ready.length === MACHINES.length, 180_000, 500);
    expect(all).toEqual([...MACHINES]);

    const token = setup.output.match(/issued token (\S+)/)?.[1];
    expect(token).toBeDefined();
    // The shared value is one value on every machine; each machine's certificate names it.
    const shared = MACHINES.map((n) => readFileSync(join(agentDir(n), 'secrets', 'demo-shared')));
    expect(shared[0]).toHaveLength(32);
    expect(shared.every((value) => value.equals(shared[0] as Buffer))).toBe(true);
    for (const n of MACHINES) {
      const cert = new X509Certificate(readFileSync(join(agentDir(n), 'secrets', 'tls', 'node.crt')));
      expect({ n, san: cert.subjectAltName }).toEqual({ n, san: expect.stringContaining(`DNS:machine-${n}.demo.internal`) });
      expect((statSync(join(agentDir(n), 'secrets', 'tls', 'node.key')).mode & 0o777).toString(8)).toBe('600');
    }
  }, 420_000);

  it('leaves the fleet attested under the promoted policy, and a second run of fleet-setup changes nothing', async () => {
    const admin = await runRacksealCliAsync(['token', 'create', '--name', 'test-admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(admin.status).toBe(0);
    const cli = (...args: string[]) => runRacksealCliAsync([...args, '--json'], { env: { RACKSEAL_SERVER: baseUrl, RACKSEAL_TOKEN: admin.stdout.trim() } });

    const machines = JSON.parse((await cli('machines', 'list', '--group', 'demo')).stdout) as { serial: string; state: string }[];
    expect(machines.map((m) => [m.serial, m.state])).toEqual(MACHINES.map((n) => [`DEMO-000${n}`, 'attested']));
    const policy = JSON.parse((await cli('policy', 'show', 'demo')).stdout) as { policy: { mode: string; allowedSets: { label: string }[] } };
    expect({ mode: policy.policy.mode, sets: policy.policy.allowedSets.map((s) => s.label) }).toEqual({ mode: 'enforce', sets: ['compose-swtpm'] });

    const again = await fleetSetup();
    expect({ code: again.code, output: again.code === 0 ? '' : again.output }).toEqual({ code: 0, output: '' });
    const secrets = JSON.parse((await cli('secrets', 'list')).stdout) as { name: string }[];
    expect(secrets.map((s) => s.name).sort()).toEqual(['demo-shared', 'demo-tls']);
  }, 240_000);
});
