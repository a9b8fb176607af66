/**
 * Issue 12's acceptance with the BUILT agent against TWO control-plane processes over one
 * PostgreSQL: a front spreads requests round-robin over the replicas, so the two calls of one
 * enrollment are served by different processes. Then the fleet's life: a running agent whose PCRs
 * drift is quarantined at its next attestation (one interval), `rackseal policy promote` of the
 * drifted machine approves the new state and the same running agent recovers, and a `warn` group
 * records drift while the machine stays attested, and revoking a running agent's machine ends its run. Oracles: which replica answered which call, the
 * machine's state over the operator API, the audit records, the agent's JSON lines.
 */
import { PcrPoliciesRepository } from '@rackseal/attestation';
import { parsePcrPolicy } from '@rackseal/pcr-policy';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { runAgentCliAsync, runRacksealCli, runRacksealCliAsync, spawnCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { LOCALHOST } from './support/free-port';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testEnv } from './support/test-config';

jest.setTimeout(180_000);

/** One request as the front passed it on: which replica answered it. */
interface Routed {
  readonly method: string;
  readonly path: string;
  readonly replica: number;
  readonly status: number;
}

/** An HTTP front that sends request n to replica n mod 2, headers and body as they came. */
async function roundRobinFront(replicas: readonly string[], routed: Routed[]): Promise<{ server: Server; url: string }> {
  let next = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const replica = next++ % replicas.length;
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name, value]) => typeof value === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding', 'expect'].includes(name))) as Record<string, string>;
      void fetch(`${replicas[replica]!}${req.url!}`, { method: req.method!, headers, ...(chunks.length === 0 ? {} : { body: Buffer.concat(chunks) }) })
        .then(async (answer) => {
          routed.push({ method: req.method!, path: req.url!, replica, status: answer.status });
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        })
        .catch(() => {
          res.writeHead(502).end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  return { server, url: `http://${LOCALHOST}:${(server.address() as AddressInfo).port}` };
}

describe('rackseal-agent against two control-plane replicas: enrollment, drift, promote, warn', () => {
  const fixture = useSwtpms(2);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let replicas: { proc: RunningProcess; baseUrl: string }[] = [];
  let front: { server: Server; url: string };
  const routed: Routed[] = [];
  let ds: DataSource;
  let admin: string;
  let dir: string;
  let tpmA: SwtpmMachine;
  let tpmB: SwtpmMachine;

  /** The operator CLI through the front (async: the front runs in this process). */
  const cli = (...args: string[]) => runRacksealCliAsync(args, { env: { RACKSEAL_SERVER: front.url, RACKSEAL_TOKEN: admin } });
  const agent = (...args: string[]) => runAgentCliAsync(args);

  async function machine(serial: string): Promise<{ id: string; state: string; lastFailure: { code: string } | null }> {
    const response = await fetch(`${front.url}/v1/machines/${serial}`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(response.status).toBe(200);
    return (await response.json()) as { id: string; state: string; lastFailure: { code: string } | null };
  }

  async function audited(action: string, subject: string): Promise<{ action: string; details: Record<string, unknown> }[]> {
    return (await ds.query('SELECT action, details FROM audit_log WHERE action = $1 AND subject = $2 ORDER BY id', [action, subject])) as { action: string; details: Record<string, unknown> }[];
  }

  beforeAll(async () => {
    tpmA = fixture.at(0);
    tpmB = fixture.at(1);
    dir = await mkdtemp(join(tmpdir(), 'rackseal-agent-fleet-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(bootstrap.status).toBe(0);
    admin = bootstrap.stdout.trim();
    replicas = await Promise.all([startControlPlane(testEnv(db, prefix.prefix)), startControlPlane(testEnv(db, prefix.prefix))]);
    expect(replicas[0]!.baseUrl).not.toBe(replicas[1]!.baseUrl);
    front = await roundRobinFront(
      replicas.map((r) => r.baseUrl),
      routed,
    );

    await writeFile(join(dir, 'root.pem'), await fixture.ca.rootCertPem());
    await writeFile(join(dir, 'intermediate.pem'), await fixture.ca.intermediateCertPem());
    for (const pem of ['root.pem', 'intermediate.pem']) {
      const added = await cli('vendor-ca', 'add', join(dir, pem));
      expect([added.status, added.stderr]).toEqual([0, '']);
    }
    const b64 = async (der: Promise<Buffer>) => (await der).toString('base64');
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-ENF,,,enforced,${await b64(tpmA.rsaEkCertDer())},`, `SN-WARN,,,warned,${await b64(tpmB.rsaEkCertDer())},`].join('\n');
    await writeFile(join(dir, 'fleet.csv'), `${csv}\n`);
    const imported = await cli('inventory', 'import', join(dir, 'fleet.csv'));
    expect([imported.status, imported.stderr]).toEqual([0, '']);
    const policies = new PcrPoliciesRepository(ds);
    await policies.put('enforced', FRESH_SWTPM_POLICY, 'test', new Date());
    await policies.put('warned', parsePcrPolicy({ ...FRESH_SWTPM_POLICY, mode: 'warn' }), 'test', new Date());
  }, 240_000);

  afterAll(async () => {
    await new Promise((resolve) => front?.server.close(resolve));
    await Promise.all(replicas.map((r) => r.proc.stop()));
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await rm(dir, { recursive: true, force: true });
  });

  it('one enrollment, two replicas: start is answered by one process, finish by the other; the machine is attested and both decisions audited', async () => {
    routed.length = 0;
    const enrolled = await agent('enroll', '--server', front.url, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-a'), '--ek', 'rsa-2048', '--event-log', 'none', '--json');
    expect([enrolled.status, enrolled.stderr]).toEqual([0, 'rackseal-agent: enroll: no event log sent (--event-log none)\n']);
    const start = routed.find((r) => r.method === 'POST' && r.path === '/node/v1/attestations');
    const finish = routed.find((r) => r.method === 'POST' && /^\/node\/v1\/attestations\/[0-9a-f-]{36}\/finish$/.test(r.path));
    expect(start).toMatchObject({ status: 201 });
    expect(finish).toMatchObject({ status: 200 });
    expect(finish!.replica).not.toBe(start!.replica);

    const out = JSON.parse(enrolled.stdout) as { machineId: string; credentialId: string };
    expect(await machine('SN-ENF')).toMatchObject({ id: out.machineId, state: 'attested', lastFailure: null });
    const started = await audited('attestation.started', 'machine:SN-ENF');
    const succeeded = await audited('attestation.succeeded', 'machine:SN-ENF');
    expect(started).toHaveLength(1);
    expect(succeeded).toHaveLength(1);
    expect(succeeded[0]!.details).toMatchObject({ registrationId: started[0]!.details.registrationId, credentialId: out.credentialId, decision: 'match' });
  });

  it('a running agent: drift quarantines at the next attestation; promote of the drifted machine approves its state and the same agent recovers', async () => {
    const child = spawnCli('rackseal-agent', ['run', '--server', front.url, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-a'), '--event-log', 'none', '--interval', '10s']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    /** The agent's first n JSON lines, waiting up to two intervals for each new one. */
    const lines = async (n: number): Promise<{ outcome: string; code?: string; decision?: string; lines?: string[] }[]> => {
      const deadline = Date.now() + 25_000;
      while (stdout.split('\n').filter((l) => l.trim() !== '').length < n && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      return stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string });
    };
    try {
      expect((await lines(1))[0]).toMatchObject({ outcome: 'attested', decision: 'match' });

      await tpmA.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
      const afterDrift = await lines(2);
      expect(afterDrift).toHaveLength(2);
      expect(afterDrift[1]).toMatchObject({ outcome: 'refused', code: 'attestation.policy-mismatch' });
      expect(afterDrift[1]!.lines!.join('\n')).toMatch(/PCR 4/);
      expect(await machine('SN-ENF')).toMatchObject({ state: 'quarantined', lastFailure: { code: 'attestation.policy-mismatch' } });

      const promoted = await cli('policy', 'promote', 'enforced', '--machine', 'SN-ENF', '--label', 'new kernel');
      expect([promoted.status, promoted.stderr]).toEqual([0, '']);
      expect(promoted.stdout).toContain('promoted machine SN-ENF');

      const afterPromote = await lines(3);
      expect(afterPromote).toHaveLength(3);
      expect(afterPromote[2]).toMatchObject({ outcome: 'attested', decision: 'match' });
      expect(await machine('SN-ENF')).toMatchObject({ state: 'attested' });
      const succeeded = await audited('attestation.succeeded', 'machine:SN-ENF');
      expect(succeeded.at(-1)!.details).toMatchObject({ decision: 'match', matchedSet: 'new kernel' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // Both replicas served the running agent's calls.
    expect(new Set(routed.map((r) => r.replica))).toEqual(new Set([0, 1]));
  });

  it('a quarantined running agent is asked again at its next question once promote approves its state (not an interval later)', async () => {
    const child = spawnCli('rackseal-agent', ['run', '--server', front.url, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-a'), '--event-log', 'none', '--interval', '1h', '--ask-every', '1s']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lines = async (n: number): Promise<{ outcome: string; code?: string; decision?: string }[]> => {
      const deadline = Date.now() + 30_000;
      while (stdout.split('\n').filter((l) => l.trim() !== '').length < n && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      return stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string });
    };
    try {
      expect((await lines(1))[0]).toMatchObject({ outcome: 'attested' });
      await tpmA.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
      // An hour's interval: the operator's request brings the attempt, which the drift quarantines.
      const asked = await cli('machines', 'reattest', 'SN-ENF');
      expect([asked.status, asked.stderr]).toEqual([0, '']);
      expect((await lines(2))[1]).toMatchObject({ outcome: 'refused', code: 'attestation.policy-mismatch' });
      expect(await machine('SN-ENF')).toMatchObject({ state: 'quarantined' });
      // Quarantined, it keeps asking (GET /node/v1/self takes its credential) and is not asked again…
      await new Promise((r) => setTimeout(r, 3000));
      expect(stdout.trim().split('\n')).toHaveLength(2);
      // …until the group's policy approves a new state: then at its next question.
      const promoted = await cli('policy', 'promote', 'enforced', '--machine', 'SN-ENF', '--label', 'newer kernel');
      expect([promoted.status, promoted.stderr]).toEqual([0, '']);
      expect((await lines(3))[2]).toMatchObject({ outcome: 'attested', decision: 'match' });
      expect(await machine('SN-ENF')).toMatchObject({ state: 'attested' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('a warn group: a drifted machine re-attests attested, the drift named in the agent\'s line and the audit record', async () => {
    const stateDir = join(dir, 'state-b');
    const enrolled = await agent('enroll', '--server', front.url, '--tpm', tpmB.device, '--state-dir', stateDir, '--ek', 'rsa-2048', '--event-log', 'none', '--json');
    expect(enrolled.status).toBe(0);
    await tpmB.extendPcr(7, 'sha256', randomBytes(32).toString('hex'));
    const run = await agent('run', '--server', front.url, '--tpm', tpmB.device, '--state-dir', stateDir, '--event-log', 'none', '--once');
    expect([run.status, run.stderr]).toEqual([0, '']);
    const line = JSON.parse(run.stdout) as { outcome: string; decision: string; lines: string[] };
    expect(line).toMatchObject({ outcome: 'attested', decision: 'mismatch' });
    expect(line.lines.join('\n')).toMatch(/PCR 7/);
    expect(await machine('SN-WARN')).toMatchObject({ state: 'attested' });
    const succeeded = await audited('attestation.succeeded', 'machine:SN-WARN');
    expect(succeeded).toHaveLength(2);
    expect(succeeded[1]!.details).toMatchObject({ decision: 'mismatch', drift: expect.arrayContaining([expect.stringMatching(/^PCR 7/)]) });
  });

  it('revoking the machine of a running agent ends its run: the dead credential makes it attest at once, the refusal is final (exit 1)', async () => {
    const child = spawnCli('rackseal-agent', ['run', '--server', front.url, '--tpm', tpmB.device, '--state-dir', join(dir, 'state-b'), '--event-log', 'none', '--interval', '1h', '--ask-every', '1s']);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!stdout.includes('\n') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(JSON.parse(stdout)).toMatchObject({ outcome: 'attested' });
      const revoked = await cli('machines', 'revoke', 'SN-WARN', '--reason', 'decommissioned');
      expect([revoked.status, revoked.stderr]).toEqual([0, '']);
      // An hour's interval: only the dead credential at the next question (1 s) brings the attempt.
      const code = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 30_000))]);
      expect(code).toBe(1);
    } finally {
      child.kill('SIGTERM');
    }
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; code?: string });
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ outcome: 'refused', code: 'attestation.machine-revoked' });
    expect(stderr).toMatch(/^rackseal-agent: run: the machine is revoked; a revoked machine never attests again \(the operator imports it anew\): .+\n$/);
    expect(await machine('SN-WARN')).toMatchObject({ state: 'revoked' });
  });
});
