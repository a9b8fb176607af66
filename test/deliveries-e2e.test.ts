/**
 * Issue 14's deliveries end to end, with nothing stood in: real PostgreSQL, Redis and swtpm; a
 * control-plane process and a worker process from the built dist with the product envelope sealer
 * (libs/wrapping through WrappingEnvelopeSealer); the BUILT agent enrolled with `rackseal-agent
 * enroll` and running `rackseal-agent run` with a config file. A TLS secret (certified-key), an
 * opaque secret (pcr-sealed, under the group's signed PCR approvals) and a kubelet client credential
 * reach both machines: files with the exact bytes the control plane holds and their modes, every
 * delivery acked exactly once with the proof of unwrap; a rotation installs the new pair; an agent
 * killed (-9) between its install and its ack converges after a restart with one ack; a delivery the
 * config has no place for is reported and left unacked. Before the agents run, the worker's
 * envelopes are opened with unwrapDelivery in the machines' TPMs to the exact payload, and the proof
 * the agent computes is the one whose hash the server stored.
 */
import { PcrPoliciesRepository } from '@rackseal/attestation';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { EnvMasterKey, openEnvelope } from '@rackseal/envelope';
import { parseDeliveryPayload } from '@rackseal/node-api-contracts';
import { secretMaterialContext } from '@rackseal/secrets';
import { type ChildProcessWithoutNullStreams, execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { NODE_CREDENTIAL_SECRET } from '../apps/agent/src/enrollment/attest-and-store';
import { NodeApiClient } from '../apps/agent/src/node-api/node-api-client';
import { loadCertifiedKey } from '../apps/agent/src/state/certified-key-state';
import { StateDir } from '../apps/agent/src/state/state-dir';
import { withTpmDevice } from '../apps/agent/src/tpm-device';
import { unwrapDelivery } from '../apps/agent/src/unwrap/unwrap-envelope';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { runAgentCliAsync, runRacksealCli, runRacksealCliAsync, spawnCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type RunningProcess, startApp, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testEnv } from './support/test-config';
import { pollUntil } from './support/wait';

jest.setTimeout(300_000);

interface DeliveryRow {
  id: string;
  serial: string;
  name: string;
  version: number;
  state: string;
  binding: string;
  envelope: Buffer | null;
  ack_proof_hash: Buffer | null;
}

interface AgentLine {
  outcome: string;
  deliveryId?: string;
  secret?: string;
  code?: string;
  changed?: boolean;
}

const SERIALS = ['SN-A', 'SN-B'] as const;
const mode = (path: string): number => statSync(path).mode & 0o7777;
/** A stored PEM as a file holds it: the payload's PEM ends with its line end (RFC 7468), which libs/secrets' text leaves off. */
const pemFile = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);

describe('deliveries end to end: product worker, built agents, real TPMs', () => {
  const fixture = useSwtpms(2);
  const masterKey = randomBytes(32);
  const keys = new EnvMasterKey(new SecretBytes(masterKey));
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let cp: { proc: RunningProcess; baseUrl: string };
  let worker: RunningProcess;
  let ds: DataSource;
  let admin: string;
  let dir: string;
  const opaqueValue = randomBytes(48);
  const agents = new Map<string, { child: ChildProcessWithoutNullStreams; out: string[]; exited: Promise<unknown> }>();

  const tpm = (serial: string): SwtpmMachine => fixture.at(SERIALS.indexOf(serial as (typeof SERIALS)[number]));
  const stateDir = (serial: string) => join(dir, `state-${serial}`);
  const files = (serial: string) => join(dir, `files-${serial}`);
  const cli = (...args: string[]) => runRacksealCliAsync(args, { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: admin } });

  async function deliveries(name?: string): Promise<DeliveryRow[]> {
    return (await ds.query(
      `SELECT d.id, m.serial, s.name, v.version, d.state, d.binding, d.envelope, d.ack_proof_hash FROM deliveries d
         JOIN machines m ON m.id = d.machine_id JOIN secrets s ON s.id = d.secret_id JOIN secret_versions v ON v.id = d.version_id
        WHERE $1::text IS NULL OR s.name = $1 ORDER BY s.name, v.version, m.serial`,
      [name ?? null],
    )) as DeliveryRow[];
  }

  const ackCount = async (deliveryId: string) =>
    Number(((await ds.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'delivery.acked' AND subject = $1`, [`delivery:${deliveryId}`])) as { n: string }[])[0]!.n);

  async function material(name: string, version: number, serial: string): Promise<{ key: Buffer; certificatePem: string; kubeletConf: string | null }> {
    const [row] = (await ds.query(
      `SELECT sm.id, sm.material_sealed, sm.certificate_pem, sm.kubelet_conf FROM secret_materials sm JOIN secret_versions v ON v.id = sm.version_id
         JOIN secrets s ON s.id = v.secret_id JOIN machines m ON m.id = sm.machine_id WHERE s.name = $1 AND v.version = $2 AND m.serial = $3`,
      [name, version, serial],
    )) as { id: string; material_sealed: Buffer; certificate_pem: string; kubelet_conf: string | null }[];
    return { key: openEnvelope(keys, secretMaterialContext(row!.id), row!.material_sealed).reveal(), certificatePem: row!.certificate_pem, kubeletConf: row!.kubelet_conf };
  }

  async function agentConfig(serial: string, extra = ''): Promise<string> {
    const f = files(serial);
    const path = join(dir, `agent-${serial}.yaml`);
    await writeFile(
      path,
      [
        'installs:',
        '  web-tls:',
        '    kind: tls',
        `    keyPath: ${f}/tls/node.key`,
        `    certPath: ${f}/tls/node.crt`,
        `    chainPath: ${f}/tls/ca.crt`,
        '    mode: "0600"',
        `  app-token: {kind: opaque, path: ${f}/app/token, mode: "0640"}`,
        '  kubelet:',
        '    kind: kubelet-client',
        `    pemPath: ${f}/kubelet/kubelet-client-current.pem`,
        `    kubeconfigPath: ${f}/kubelet/kubelet.conf`,
        extra,
      ].join('\n'),
    );
    return path;
  }

  function startAgent(serial: string, config: string): void {
    const child = spawnCli('rackseal-agent', ['run', '--config', config, '--server', cp.baseUrl, '--tpm', tpm(serial).device, '--state-dir', stateDir(serial), '--event-log', 'none', '--interval', '1h', '--ask-every', '5s']);
    const out: string[] = [];
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop()!;
      out.push(...lines.filter((l) => l.trim() !== ''));
    });
    child.stderr.on('data', () => undefined);
    agents.set(serial, { child, out, exited: new Promise((resolve) => child.once('exit', resolve)) });
  }

  async function stopAgent(serial: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const agent = agents.get(serial);
    agents.delete(serial);
    if (agent !== undefined && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill(signal);
      await agent.exited;
    }
  }

  const lines = (serial: string): AgentLine[] => (agents.get(serial)?.out ?? []).map((l) => JSON.parse(l) as AgentLine);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-deliveries-e2e-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const env = testEnv(db, prefix.prefix, { RACKSEAL_MASTER_KEY: masterKey.toString('hex') });
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url, RACKSEAL_MASTER_KEY: masterKey.toString('hex') } });
    expect(bootstrap.status).toBe(0);
    admin = bootstrap.stdout.trim();
    cp = await startControlPlane(env);
    // The product worker: apps/worker's main, its sealer the wrapping library's.
    worker = startApp('worker', { ...env, LOG_LEVEL: 'info' });
    await worker.waitForLog((l) => l.msg === 'worker ready');

    await writeFile(join(dir, 'root.pem'), await fixture.ca.rootCertPem());
    await writeFile(join(dir, 'intermediate.pem'), await fixture.ca.intermediateCertPem());
    for (const pem of ['root.pem', 'intermediate.pem']) {
      expect((await cli('vendor-ca', 'add', join(dir, pem))).status).toBe(0);
    }
    const b64 = async (der: Promise<Buffer>) => (await der).toString('base64');
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-A,,node-a,workers,${await b64(tpm('SN-A').rsaEkCertDer())},`, `SN-B,,node-b,workers,${await b64(tpm('SN-B').rsaEkCertDer())},`];
    await writeFile(join(dir, 'fleet.csv'), `${csv.join('\n')}\n`);
    expect((await cli('inventory', 'import', join(dir, 'fleet.csv'))).status).toBe(0);
    await new PcrPoliciesRepository(ds).put('workers', FRESH_SWTPM_POLICY, 'test', new Date());
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k8s.key'), '-out', join(dir, 'k8s.crt'), '-subj', '/CN=kubernetes', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'], { stdio: 'ignore' });
    expect((await cli('ca', 'import', '--kind', 'kubernetes', join(dir, 'k8s.crt'), join(dir, 'k8s.key'))).status).toBe(0);

    for (const serial of SERIALS) {
      const enrolled = await runAgentCliAsync(['enroll', '--server', cp.baseUrl, '--tpm', tpm(serial).device, '--state-dir', stateDir(serial), '--ek', 'rsa-2048', '--event-log', 'none', '--json']);
      expect([serial, enrolled.status]).toEqual([serial, 0]);
    }
  }, 240_000);

  afterAll(async () => {
    await Promise.all([...agents.keys()].map((serial) => stopAgent(serial, 'SIGKILL')));
    await worker?.stop();
    await cp?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await rm(dir, { recursive: true, force: true });
  });

  it('the product worker seals envelopes each machine\'s TPM opens to the exact payload, and the agent\'s proof is the one the server stored', async () => {
    const probe = randomBytes(40);
    await writeFile(join(dir, 'probe'), probe);
    expect((await cli('secrets', 'create', 'probe-sealed', '--kind', 'opaque', '--group', 'workers', '--binding', 'pcr-sealed', '--value-file', join(dir, 'probe'))).status).toBe(0);
    expect((await cli('secrets', 'create', 'probe-certified', '--kind', 'opaque', '--group', 'workers', '--binding', 'certified-key', '--value-file', join(dir, 'probe'))).status).toBe(0);
    const ready = await pollUntil(
      async () => [...(await deliveries('probe-sealed')), ...(await deliveries('probe-certified'))],
      (rows) => rows.length === 4 && rows.every((r) => r.state === 'ready'),
      60_000,
    );
    expect(ready.map((r) => [r.name, r.serial, r.state])).toEqual([
      ['probe-sealed', 'SN-A', 'ready'],
      ['probe-sealed', 'SN-B', 'ready'],
      ['probe-certified', 'SN-A', 'ready'],
      ['probe-certified', 'SN-B', 'ready'],
    ]);
    for (const row of ready) {
      const state = await StateDir.open(stateDir(row.serial));
      const identity = await state.loadIdentity();
      const certified = await loadCertifiedKey(state.path);
      const opened = await withTpmDevice(tpm(row.serial).device, async (client) => {
        const credential = { credentialId: identity.credentialId, key: await state.loadSealedSecret(client, NODE_CREDENTIAL_SECRET) };
        const approvals = row.binding === 'pcr-sealed' ? await new NodeApiClient({ serverUrl: cp.baseUrl }).approvals(credential) : undefined;
        return unwrapDelivery(client, row.envelope!, { ekPubHash: identity.ekPubHash, certifiedKey: certified!.blob }, { ...(approvals === undefined ? {} : { approvals }), expect: { deliveryId: row.id, secretVersion: 1 } });
      });
      const payload = parseDeliveryPayload(opened.payload, (b) => Buffer.from(b));
      expect([row.name, row.serial, payload.kind, payload.kind === 'opaque' && payload.value.toString('hex')]).toEqual([row.name, row.serial, 'opaque', probe.toString('hex')]);
      expect(createHash('sha256').update(opened.ackProof).digest().toString('hex')).toBe(row.ack_proof_hash!.toString('hex'));
    }
    // Machine A's envelope in machine B's TPM: refused.
    const stateB = await StateDir.open(stateDir('SN-B'));
    const identityB = await stateB.loadIdentity();
    const forA = ready.find((r) => r.name === 'probe-certified' && r.serial === 'SN-A')!;
    const refusal = await withTpmDevice(tpm('SN-B').device, async (client) => unwrapDelivery(client, forA.envelope!, { ekPubHash: identityB.ekPubHash, certifiedKey: (await loadCertifiedKey(stateB.path))!.blob })).catch((e: unknown) => e);
    expect((refusal as { code?: string }).code).toBe('unwrap.wrong-recipient');
  });

  it('running agents install tls, opaque (pcr-sealed) and kubelet secrets with the exact bytes and modes and ack each delivery once; one the config has no place for is reported and not acked', async () => {
    for (const serial of SERIALS) {
      startAgent(serial, await agentConfig(serial));
    }
    // `run` attests first; libs/secrets refuses a create while a target machine is attesting (secret.machine-unfit).
    for (const serial of SERIALS) {
      expect(await pollUntil(async () => lines(serial).some((l) => l.outcome === 'attested'), (x) => x, 60_000)).toBe(true);
    }
    // After attesting, `run` records the group's approvals in the state dir, what boot unlock reads offline.
    for (const serial of SERIALS) {
      const readCache = async (): Promise<unknown> => JSON.parse(await readFile(join(stateDir(serial), 'approvals.json'), 'utf8').catch(() => 'null')) as unknown;
      const cached = await pollUntil(readCache, (c) => c !== null, 30_000);
      expect(cached).toMatchObject({ format: 1, entries: [{ approvals: { group: 'workers', epoch: expect.any(Number), approvals: [expect.objectContaining({ label: expect.any(String) })] } }] });
    }
    await writeFile(join(dir, 'app-token'), opaqueValue);
    for (const args of [
      ['web-tls', '--kind', 'tls', '--binding', 'certified-key', '--san', '{hostname}.workers.example'],
      ['app-token', '--kind', 'opaque', '--binding', 'pcr-sealed', '--value-file', join(dir, 'app-token')],
      ['kubelet', '--kind', 'kubelet-client', '--binding', 'certified-key', '--api-server', 'https://10.0.0.1:6443'],
    ]) {
      const created = await cli('secrets', 'create', args[0]!, '--group', 'workers', ...args.slice(1));
      expect([args[0], created.status, created.stderr]).toEqual([args[0], 0, '']);
    }
    const names = ['app-token', 'kubelet', 'web-tls'];
    const rows = await pollUntil(
      async () => (await deliveries()).filter((r) => names.includes(r.name)),
      (r) => r.length === 6 && r.every((d) => d.state === 'acked'),
      120_000,
      250,
    );
    expect(rows.map((r) => [r.name, r.serial, r.state])).toEqual(names.flatMap((n) => SERIALS.map((s) => [n, s, 'acked'])));
    for (const row of rows) {
      expect([row.id, await ackCount(row.id), row.envelope]).toEqual([row.id, 1, null]);
    }

    const tlsCa = (await cli('ca', 'download', '--kind', 'tls')).stdout;
    for (const serial of SERIALS) {
      const f = files(serial);
      expect(readFileSync(join(f, 'app/token')).equals(opaqueValue)).toBe(true);
      expect(mode(join(f, 'app/token'))).toBe(0o640);

      const tls = await material('web-tls', 1, serial);
      const keyDer = createPrivateKey(readFileSync(join(f, 'tls/node.key'))).export({ type: 'pkcs8', format: 'der' });
      expect(keyDer.equals(tls.key)).toBe(true);
      expect(readFileSync(join(f, 'tls/node.crt'), 'utf8')).toBe(pemFile(tls.certificatePem));
      expect(readFileSync(join(f, 'tls/ca.crt'), 'utf8')).toBe(pemFile(tlsCa));
      expect([mode(join(f, 'tls/node.key')), mode(join(f, 'tls/node.crt')), mode(join(f, 'tls/ca.crt'))]).toEqual([0o600, 0o644, 0o644]);
      expect(new X509Certificate(tls.certificatePem).subjectAltName).toContain(`node-${serial === 'SN-A' ? 'a' : 'b'}.workers.example`);

      const kubelet = await material('kubelet', 1, serial);
      const pem = readFileSync(join(f, 'kubelet/kubelet-client-current.pem'), 'utf8');
      expect(pem.startsWith(pemFile(kubelet.certificatePem))).toBe(true);
      expect(createPrivateKey(pem.slice(pemFile(kubelet.certificatePem).length)).export({ type: 'pkcs8', format: 'der' }).equals(kubelet.key)).toBe(true);
      expect(readFileSync(join(f, 'kubelet/kubelet.conf'), 'utf8')).toBe(kubelet.kubeletConf);
      expect([mode(join(f, 'kubelet/kubelet-client-current.pem')), mode(join(f, 'kubelet/kubelet.conf'))]).toEqual([0o600, 0o600]);
    }

    // The probes of the first case have no installs entry: reported, held back, still ready (never acked).
    for (const serial of SERIALS) {
      const refused = lines(serial).filter((l) => l.outcome === 'delivery-refused');
      expect(new Set(refused.map((l) => `${l.secret} ${l.code}`))).toEqual(new Set(['probe-sealed install.no-target', 'probe-certified install.no-target']));
      expect(lines(serial).filter((l) => l.outcome === 'delivered').map((l) => l.secret).sort()).toEqual(names);
    }
    expect((await deliveries('probe-sealed')).map((r) => r.state)).toEqual(['ready', 'ready']);
  });

  it('a rotation installs the new pair on every machine, acked once each', async () => {
    const before = readFileSync(join(files('SN-A'), 'tls/node.crt'), 'utf8');
    const rotated = await cli('secrets', 'rotate', 'web-tls');
    expect([rotated.status, rotated.stderr]).toEqual([0, '']);
    const rows = await pollUntil(
      async () => (await deliveries('web-tls')).filter((r) => r.version === 2),
      (r) => r.length === 2 && r.every((d) => d.state === 'acked'),
      90_000,
      250,
    );
    expect(rows.map((r) => [r.serial, r.state])).toEqual([['SN-A', 'acked'], ['SN-B', 'acked']]);
    for (const serial of SERIALS) {
      const tls = await material('web-tls', 2, serial);
      expect(readFileSync(join(files(serial), 'tls/node.crt'), 'utf8')).toBe(pemFile(tls.certificatePem));
      expect(createPrivateKey(readFileSync(join(files(serial), 'tls/node.key'))).export({ type: 'pkcs8', format: 'der' }).equals(tls.key)).toBe(true);
    }
    expect(readFileSync(join(files('SN-A'), 'tls/node.crt'), 'utf8')).not.toBe(before);
    for (const row of rows) {
      expect(await ackCount(row.id)).toBe(1);
    }
    // The operator's view: rackseal deliveries list and retry.
    const listed = await cli('deliveries', 'list', '--secret', 'web-tls', '--state', 'acked', '--json');
    expect([listed.status, (JSON.parse(listed.stdout) as { machine: { serial: string }; secret: { version: number } }[]).map((d) => `${d.machine.serial}@${d.secret.version}`).sort()]).toEqual([0, ['SN-A@1', 'SN-A@2', 'SN-B@1', 'SN-B@2']]);
    const table = await cli('deliveries', 'list', '--machine', 'SN-A', '--state', 'ready');
    expect(table.stdout).toMatch(/^ID\s+SECRET\s+KIND\s+MACHINE\s+BINDING\s+STATE/);
    expect(table.stdout).toContain('probe-sealed@1');
    expect(table.stdout).toMatch(/2 deliveries\n$/);
    const notFailed = await cli('deliveries', 'retry', rows[0]!.id);
    expect([notFailed.status, notFailed.stderr]).toEqual([2, `rackseal: deliveries retry: delivery ${rows[0]!.id} is acked: only a failed delivery is retried\n`]);
  });

  it('an agent killed (-9) after its install and before its ack converges after a restart: the files right, the delivery acked once, the reload run once', async () => {
    // The reload records that it ran, then stalls: the agent is inside install(), the files written, no ack sent.
    const marker = join(dir, 'reloads');
    const script = join(dir, 'stall.sh');
    await writeFile(script, `#!/bin/sh\necho "$$" >> ${marker}\nexec sleep 120\n`, { mode: 0o755 });
    await stopAgent('SN-A');
    const config = await agentConfig('SN-A', `  crashy: {kind: opaque, path: ${files('SN-A')}/crashy, mode: "0600", reload: [${script}]}`);
    startAgent('SN-A', config);
    expect(await pollUntil(async () => lines('SN-A').some((l) => l.outcome === 'attested'), (x) => x, 60_000)).toBe(true);
    const value = randomBytes(24);
    await writeFile(join(dir, 'crashy'), value);
    expect((await cli('secrets', 'create', 'crashy', '--kind', 'opaque', '--machine', 'SN-A', '--binding', 'pcr-sealed', '--value-file', join(dir, 'crashy'))).status).toBe(0);
    await pollUntil(async () => existsSync(marker), (x) => x, 90_000, 100);
    expect(readFileSync(join(files('SN-A'), 'crashy')).equals(value)).toBe(true);
    const [stalled] = await deliveries('crashy');
    expect(stalled!.state).toBe('ready');

    await stopAgent('SN-A', 'SIGKILL');
    for (const pid of readFileSync(marker, 'utf8').trim().split('\n')) {
      try {
        process.kill(Number(pid), 'SIGKILL'); // the stalled reload the killed agent left behind
      } catch {
        // already gone
      }
    }
    expect((await deliveries('crashy'))[0]!.state).toBe('ready');

    startAgent('SN-A', config);
    const [done] = await pollUntil(async () => deliveries('crashy'), (r) => r[0]?.state === 'acked', 90_000, 250);
    expect(done!.state).toBe('acked');
    expect(await ackCount(done!.id)).toBe(1);
    expect(readFileSync(join(files('SN-A'), 'crashy')).equals(value)).toBe(true);
    // The re-applied delivery changed nothing, so no reload ran again.
    expect(readFileSync(marker, 'utf8').trim().split('\n')).toHaveLength(1);
    const delivered = lines('SN-A').find((l) => l.outcome === 'delivered' && l.secret === 'crashy');
    expect(delivered).toMatchObject({ changed: false });
  });
});
