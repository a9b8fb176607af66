/**
 * `rackseal-agent enroll|status|run` (issue 12 item 6): the BUILT agent against a real control plane
 * process, PostgreSQL and swtpm. Machines are imported with their EK certificates through the CLI,
 * the swtpm CA is a vendor CA, and the group's PCR policy (stored, enforce) allows a fresh swtpm's
 * PCRs, so enrollment attests and a PCR extend is drift. Oracles: the machine as GET /v1/machines
 * shows it, the state dir's bytes, and the exact messages and exit codes.
 */
import { PcrPoliciesRepository } from '@rackseal/attestation';
import { openEnvelope } from '@rackseal/envelope';
import { MemoryReplayGuard, verifyNodeRequest } from '@rackseal/node-identity';
import { ekPubHash, unmarshalKeyBlob } from '@rackseal/tpm2';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp as copyDir, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { runAgentCliAsync, runRacksealCli, spawnCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { fixturePath } from './support/fixtures';
import { freePort, LOCALHOST } from './support/free-port';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testConfig, testEnv } from './support/test-config';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { tpm2 } from './support/tpm2-tools';

jest.setTimeout(120_000);


describe('rackseal-agent enroll, status, run (control plane process, swtpm)', () => {
  const fixture = useSwtpms(2, { p256: true });
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let server: { proc: RunningProcess; baseUrl: string };
  let ds: DataSource;
  let admin: string;
  let dir: string;
  let tpmA: SwtpmMachine;
  let tpmB: SwtpmMachine;

  const cli = (...args: string[]) => runRacksealCli(args, { env: { RACKSEAL_SERVER: server.baseUrl, RACKSEAL_TOKEN: admin } });
  const agent = (...args: string[]) => runAgentCliAsync(args);
  const hashOf = async (der: Promise<Buffer>) => ekPubHash(new X509Certificate(await der));

  async function machineBy(hash: string): Promise<{ id: string; serial: string; state: string; lastFailure?: { code: string } | null }> {
    const [row] = (await ds.query('SELECT id FROM machines WHERE ek_pub_hash = $1', [hash])) as { id: string }[];
    const response = await fetch(`${server.baseUrl}/v1/machines/${row!.id}`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(response.status).toBe(200);
    return (await response.json()) as { id: string; serial: string; state: string };
  }

  /** A TCP server below HTTP, answering each request's first bytes with `answer`; closed with every connection. */
  async function rawServer(answer: (socket: Socket) => void): Promise<{ url: string; close: () => Promise<void> }> {
    const sockets = new Set<Socket>();
    const raw: TcpServer = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('data', () => answer(socket));
    });
    await new Promise<void>((resolve) => raw.listen(0, LOCALHOST, resolve));
    return {
      url: `http://${LOCALHOST}:${(raw.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => {
        sockets.forEach((socket) => socket.destroy());
        raw.close(() => resolve());
      }),
    };
  }

  /** Every file of a state dir, sorted. */
  async function stateFiles(stateDir: string): Promise<string[]> {
    return (await readdir(stateDir)).sort();
  }

  beforeAll(async () => {
    tpmA = fixture.at(0);
    tpmB = fixture.at(1);
    dir = await mkdtemp(join(tmpdir(), 'rackseal-agent-enroll-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(bootstrap.status).toBe(0);
    admin = bootstrap.stdout.trim();
    server = await startControlPlane(testEnv(db, prefix.prefix));

    await writeFile(join(dir, 'root.pem'), await fixture.ca.rootCertPem());
    await writeFile(join(dir, 'intermediate.pem'), await fixture.ca.intermediateCertPem());
    for (const pem of ['root.pem', 'intermediate.pem']) {
      const added = cli('vendor-ca', 'add', join(dir, pem));
      expect([added.status, added.stderr]).toEqual([0, '']);
    }
    const b64 = async (der: Promise<Buffer>) => (await der).toString('base64');
    const csv = [
      'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash',
      `SN-A-RSA,,,workers,${await b64(tpmA.rsaEkCertDer())},`,
      `SN-A-P256,,,workers,${await b64(tpmA.p256EkCertDer())},`,
    ].join('\n');
    await writeFile(join(dir, 'fleet.csv'), `${csv}\n`);
    const imported = cli('inventory', 'import', join(dir, 'fleet.csv'));
    expect([imported.status, imported.stderr]).toEqual([0, '']);
    await new PcrPoliciesRepository(ds).put('workers', FRESH_SWTPM_POLICY, 'test', new Date());
  }, 180_000);

  afterAll(async () => {
    await server?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await rm(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await tpmA.reboot();
    await tpmB.reboot();
  });

  it.each([
    { ek: 'rsa-2048', serial: 'SN-A-RSA', cert: () => tpmA.rsaEkCertDer() },
    { ek: 'ecc-p256', serial: 'SN-A-P256', cert: () => tpmA.p256EkCertDer() },
  ])('$ek EK: enroll attests the machine, status reports it, the state dir holds identity, last attestation and the sealed credential', async ({ ek, serial, cert }) => {
    const stateDir = join(dir, `state-${ek}`);
    const enrolled = await agent('enroll', '--server', server.baseUrl, '--tpm', tpmA.device, '--state-dir', stateDir, '--ek', ek, '--event-log', 'none', '--json');
    expect([enrolled.status, enrolled.stderr]).toEqual([0, 'rackseal-agent: enroll: no event log sent (--event-log none)\n']);
    const out = JSON.parse(enrolled.stdout) as { machineId: string; state: string; credentialId: string; policy: unknown };
    const machine = await machineBy(await hashOf(cert()));
    expect(machine).toMatchObject({ serial, state: 'attested' });
    expect(out).toMatchObject({ machineId: machine.id, state: 'attested', credentialId: expect.stringMatching(/^[0-9a-f]{32}$/), policy: { decision: 'match', matchedSet: 'fresh swtpm', summary: [] } });
    const [live] = (await ds.query('SELECT credential_id FROM node_credentials WHERE machine_id = $1 AND revoked_at IS NULL', [machine.id])) as { credential_id: string }[];
    expect(live!.credential_id).toBe(out.credentialId);

    expect(await stateFiles(stateDir)).toEqual(['certified-key.blob', 'certified-key.json', 'identity.json', 'last-attestation.json', 'node-credential.sealed']);
    // Key certification (issue 13 item 1): the key the server recorded is the one whose blob the dir holds.
    const [key] = (await ds.query('SELECT id, name, public_area, registration_id FROM certified_keys WHERE machine_id = $1 AND retired_at IS NULL', [machine.id])) as {
      id: string;
      name: Buffer;
      public_area: Buffer;
      registration_id: string;
    }[];
    expect((out as unknown as { key: unknown }).key).toEqual({
      outcome: 'certified',
      key: { keyId: key!.id, name: key!.name.toString('hex'), algorithm: 'rsa-2048', certifiedAt: expect.any(String) },
    });
    // The operator sees it: `machines show` names the live key, `machines keys` lists it live.
    const keyName = key!.name.toString('hex');
    const shown = cli('machines', 'show', serial);
    expect([shown.status, shown.stderr]).toEqual([0, '']);
    expect(shown.stdout).toMatch(new RegExp(`^certified key: +rsa-2048 ${keyName} \\(certified \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ, key ${key!.id}\\)$`, 'm'));
    const listed = cli('machines', 'keys', serial);
    expect([listed.status, listed.stderr]).toEqual([0, '']);
    expect(listed.stdout.split('\n').filter((l) => l.startsWith(key!.id))).toEqual([expect.stringMatching(new RegExp(`^${key!.id} +rsa-2048 +${keyName} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ +live *$`))]);
    expect(listed.stdout).toMatch(/^1 key\(s\)$/m);
    expect(JSON.parse(cli('machines', 'keys', serial, '--json').stdout)).toEqual([expect.objectContaining({ id: key!.id, name: keyName, retiredAt: null })]);
    const blob = unmarshalKeyBlob(await readFile(join(stateDir, 'certified-key.blob')));
    expect(blob.public.raw.equals(key!.public_area)).toBe(true);
    const identity = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8')) as Record<string, unknown>;
    expect(key!.registration_id).toBe(identity.registrationId);
    expect(identity).toMatchObject({ version: 1, serverUrl: server.baseUrl, machineId: machine.id, credentialId: out.credentialId, ekPubHash: await hashOf(cert()) });

    const status = await agent('status', '--tpm', tpmA.device, '--state-dir', stateDir, '--json');
    expect([status.status, status.stderr]).toEqual([0, '']);
    expect(JSON.parse(status.stdout)).toMatchObject({ enrolled: true, credentialOpens: true, identity: { machineId: machine.id, credentialId: out.credentialId }, lastAttestation: { outcome: 'attested', state: 'attested' } });
    const human = await agent('status', '--tpm', tpmA.device, '--state-dir', stateDir);
    expect(human.stdout).toContain(`enrolled: machine ${machine.id} with ${server.baseUrl}\n`);
    expect(human.stdout).toContain(`  node credential: ${out.credentialId} (registration ${String(identity.registrationId)}), opens in this TPM\n`);
  });

  it('the state dir holds no credential bytes: the key the server holds for the credential appears in no file, raw, hex or base64', async () => {
    // The control plane keeps the node credential's key sealed under its master key (libs/attestation):
    // opened here, it is exactly the key the agent derived and sealed in its TPM.
    for (const ek of ['rsa-2048', 'ecc-p256']) {
      const stateDir = join(dir, `state-${ek}`);
      const { credentialId } = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8')) as { credentialId: string };
      const [row] = (await ds.query('SELECT key_sealed FROM node_credentials WHERE credential_id = $1', [credentialId])) as { key_sealed: Buffer }[];
      const key = openEnvelope(testConfig(db, prefix.prefix).masterKey.key!, `node-credential:${credentialId}`, row!.key_sealed).reveal();
      expect(key).toHaveLength(32);
      const needles = [key, Buffer.from(key.toString('hex')), Buffer.from(key.toString('base64')), Buffer.from(key.toString('base64url'))];
      for (const file of await stateFiles(stateDir)) {
        const bytes = await readFile(join(stateDir, file));
        for (const needle of needles) {
          expect([file, bytes.includes(needle)]).toEqual([file, false]);
        }
      }
    }
  });

  it('a copied state dir used with another TPM: status says the credential does not open in this TPM (exit 1)', async () => {
    const copied = join(dir, 'copied');
    await copyDir(join(dir, 'state-rsa-2048'), copied, { recursive: true });
    const status = await agent('status', '--tpm', tpmB.device, '--state-dir', copied);
    expect(status.status).toBe(1);
    expect(status.stdout).toContain('DOES NOT open in this TPM');
    expect(status.stderr).toBe(
      `rackseal-agent: status: the node credential does not open in this TPM: ${join(copied, 'node-credential.sealed')} was sealed by another TPM: the state dir was copied from another machine, or this TPM was cleared since enrollment (enroll again)\n`,
    );
    const json = await agent('status', '--tpm', tpmB.device, '--state-dir', copied, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ enrolled: true, credentialOpens: false });
    // …and run refuses to attest another machine's identity with this TPM's EKs.
    const { ekPubHash: enrolledEk } = JSON.parse(await readFile(join(copied, 'identity.json'), 'utf8')) as { ekPubHash: string };
    const run = await agent('run', '--server', server.baseUrl, '--tpm', tpmB.device, '--state-dir', copied, '--event-log', 'none', '--once');
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ outcome: 'failed' });
    expect(run.stderr).toBe(
      `rackseal-agent: run: failed: this TPM has no EK with the enrolled ekPubHash ${enrolledEk} (rsa-2048, ecc-p256 tried): the state dir is another machine's, or the TPM was cleared (enroll again)\n`,
    );
  });

  it('not enrolled: status exits 1 saying so', async () => {
    const status = await agent('status', '--tpm', tpmA.device, '--state-dir', join(dir, 'never'));
    expect([status.status, status.stderr]).toEqual([1, `rackseal-agent: status: ${join(dir, 'never')} does not exist: this machine is not enrolled (run rackseal-agent enroll)\n`]);
  });

  it('unknown EK: exit 1 with the server\'s attestation.unknown-ek, no stack trace, nothing stored', async () => {
    const stateDir = join(dir, 'state-unknown');
    const result = await agent('enroll', '--server', server.baseUrl, '--tpm', tpmB.device, '--state-dir', stateDir, '--event-log', 'none');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^rackseal-agent: enroll: no event log sent \(--event-log none\)\nrackseal-agent: enroll: refused by the server: attestation\.unknown-ek: .+\n$/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toBe('');
    expect(await stateFiles(stateDir)).toEqual([]);
  });

  it('server down: retries, then exits 2 naming the server', async () => {
    const port = await freePort();
    const url = `http://${LOCALHOST}:${port}`;
    const result = await agent('enroll', '--server', url, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-down'), '--event-log', 'none');
    expect(result.status).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines.filter((l) => l.includes('retrying in'))).toHaveLength(4);
    expect(lines[1]).toMatch(new RegExp(`^rackseal-agent: enroll: ${url}: connection refused; retrying in \\d+\\.\\d s \\(attempt 2\\)$`));
    expect(lines.at(-1)).toBe(`rackseal-agent: enroll: cannot reach the server ${url}: connection refused (5 attempts)`);
  }, 90_000);

  it('a server that answers headers then trickles its body forever: enroll ends after its retries (exit 2, naming the server and the timeout), and the TPM is free meanwhile', async () => {
    let exited = false;
    let probe: Promise<string> | undefined;
    let asked: () => void = () => undefined;
    const firstRequest = new Promise<void>((resolve) => (asked = resolve));
    const stalled = await rawServer((socket) => {
      socket.write('HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{');
      const timer = setInterval(() => socket.write(' '), 1000);
      socket.on('close', () => clearInterval(timer));
      asked();
    });
    const stateDir = join(dir, 'state-stalled');
    try {
      const run = agent('enroll', '--server', stalled.url, '--tpm', tpmA.device, '--state-dir', stateDir, '--event-log', 'none', '--timeout', '1s').then((r) => {
        exited = true;
        return r;
      });
      await firstRequest;
      // While the agent waits for the server, another user of the TPM gets it (swtpm serves one
      // connection at a time) and finds nothing of the agent's loaded in it.
      probe = tpm2(tpmA, 'getcap', 'handles-transient').then((r) => `${exited ? 'after' : 'before'} the agent exited: [${r.stdout.toString().trim()}]`);
      expect(await probe).toBe('before the agent exited: []');
      const result = await run;
      expect([result.status, result.stdout]).toEqual([2, '']);
      const lines = result.stderr.trim().split('\n');
      expect(lines.filter((l) => l.includes('retrying in'))).toHaveLength(4);
      expect(lines[1]).toMatch(new RegExp(`^rackseal-agent: enroll: ${stalled.url}: no complete answer within 1 s \\(the agent's timeout\\); retrying in \\d+\\.\\d s \\(attempt 2\\)$`));
      expect(lines.at(-1)).toBe(`rackseal-agent: enroll: cannot reach the server ${stalled.url}: no complete answer within 1 s (the agent's timeout) (5 attempts)`);
      expect(await stateFiles(stateDir)).toEqual([]);
    } finally {
      await stalled.close();
    }
  }, 90_000);

  it('a hostile server\'s refusal full of ESC sequences, CR, NUL and bidi overrides: printed escaped and bounded, exit 1', async () => {
    const hostile = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'attestation.\u001b[2Jowned', message: [`\u001b]0;pwned\u0007\u001b[1;1Hall fine\r\u0000\u202eenilno${'x'.repeat(20_000)}`, '\u009b31mred'] }));
      });
    });
    await new Promise<void>((resolve) => hostile.listen(0, LOCALHOST, resolve));
    const url = `http://${LOCALHOST}:${(hostile.address() as AddressInfo).port}`;
    try {
      const result = await agent('enroll', '--server', url, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-hostile'), '--event-log', 'none');
      expect([result.status, result.stdout]).toEqual([1, '']);
      const lines = result.stderr.split('\n');
      // No control or format character (C0, DEL, C1, bidi overrides) on any line.
      expect(lines.filter((line) => /[\p{Cc}\p{Cf}]/u.test(line))).toEqual([]);
      expect(lines[1]).toMatch(/^rackseal-agent: enroll: refused by the server: attestation\.\\u\{1B\}\[2Jowned: \\u\{1B\}\]0;pwned\\u\{7\}\\u\{1B\}\[1;1Hall fine\\u\{D\}\\u\{0\}\\u\{202E\}enilnox+… \(\d+ more characters\)$/);
      expect(lines[1]!.length).toBeLessThan(1200);
      expect(lines[2]).toBe('  \\u{9B}31mred');
    } finally {
      await new Promise((resolve) => hostile.close(resolve));
    }
  });

  it('a URL that does not answer HTTP: "<server> did not answer HTTP", exit 2 at once (no retries)', async () => {
    const ssh = await rawServer((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n'));
    try {
      const result = await agent('enroll', '--server', ssh.url, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-ssh'), '--event-log', 'none');
      expect([result.status, result.stdout]).toEqual([2, '']);
      expect(result.stderr).toBe(`rackseal-agent: enroll: no event log sent (--event-log none)\nrackseal-agent: enroll: ${ssh.url} did not answer HTTP (is the URL the control plane's?)\n`);
    } finally {
      await ssh.close();
    }
  });

  it('a --state-dir that is a symbolic link is refused (exit 2, naming it) before the TPM or the server is touched', async () => {
    const real = join(dir, 'state-real');
    await mkdir(real, { mode: 0o700 });
    const link = join(dir, 'state-link');
    await symlink(real, link);
    for (const args of [['enroll', '--server', server.baseUrl, '--event-log', 'none'], ['status'], ['run', '--once', '--event-log', 'none']]) {
      const result = await agent(...args, '--tpm', tpmA.device, '--state-dir', link);
      expect([args[0], result.status, result.stderr]).toEqual([args[0], 2, `rackseal-agent: ${link}: is a symbolic link; the state dir must be a real directory (give its real path)\n`]);
    }
    expect(await stateFiles(real)).toEqual([]);
  });

  it('TPM unusable: enroll exits 2 naming the device, and the state dir stays empty', async () => {
    const port = await freePort();
    const stateDir = join(dir, 'state-no-tpm');
    const result = await agent('enroll', '--server', server.baseUrl, '--tpm', `swtpm:${LOCALHOST}:${port}`, '--state-dir', stateDir, '--event-log', 'none');
    expect([result.status, result.stdout]).toEqual([2, '']);
    expect(result.stderr).toBe(`rackseal-agent: enroll: no event log sent (--event-log none)\nrackseal-agent: enroll: swtpm:${LOCALHOST}:${port}: connection refused: is swtpm running on this port?\n`);
    expect(await stateFiles(stateDir)).toEqual([]);
  });

  it('usage mistakes exit 2 before the TPM or the server is touched', async () => {
    const bad = await agent('enroll', '--server', 'ftp://x', '--tpm', tpmA.device, '--state-dir', join(dir, 'usage'));
    expect([bad.status, bad.stderr]).toEqual([2, 'rackseal-agent: --server must be an http or https URL, not ftp:\n']);
    const ek = await agent('enroll', '--server', server.baseUrl, '--tpm', tpmA.device, '--state-dir', join(dir, 'usage'), '--ek', 'ecc-p384');
    expect([ek.status, ek.stderr]).toEqual([2, 'rackseal-agent: --ek must be one of rsa-2048, ecc-p256\n']);
    const log = await agent('enroll', '--server', server.baseUrl, '--tpm', tpmA.device, '--state-dir', join(dir, 'usage'), '--event-log', join(dir, 'no-such-log'));
    expect([log.status, log.stderr]).toEqual([2, `rackseal-agent: --event-log ${join(dir, 'no-such-log')}: cannot read it (ENOENT)\n`]);
    const interval = await agent('run', '--state-dir', join(dir, 'state-rsa-2048'), '--interval', '5s', '--once');
    expect([interval.status, interval.stderr]).toEqual([2, 'rackseal-agent: --interval must be a duration of at least 10s, e.g. 90s, 30m, 1h, 1d (not "5s")\n']);
  });

  it('run --once re-attests and rotates the credential; after a PCR extend it quarantines the machine (enforce)', async () => {
    const stateDir = join(dir, 'state-rsa-2048');
    const before = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8')) as { credentialId: string; enrolledAt: string; machineId: string };
    const again = await agent('run', '--tpm', tpmA.device, '--state-dir', stateDir, '--event-log', 'none', '--once');
    expect([again.status, again.stderr]).toEqual([0, '']);
    const line = JSON.parse(again.stdout) as { outcome: string; credentialId: string; machineId: string; state: string };
    expect(line).toMatchObject({ outcome: 'attested', state: 'attested', machineId: before.machineId });
    expect(line.credentialId).not.toBe(before.credentialId);
    const after = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8')) as { credentialId: string; enrolledAt: string };
    expect(after).toMatchObject({ credentialId: line.credentialId, enrolledAt: before.enrolledAt });
    expect((await agent('status', '--tpm', tpmA.device, '--state-dir', stateDir)).status).toBe(0);

    await tpmA.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
    const drift = await agent('run', '--tpm', tpmA.device, '--state-dir', stateDir, '--event-log', 'none', '--once');
    expect(drift.status).toBe(1);
    const refused = JSON.parse(drift.stdout) as { outcome: string; code: string; lines: string[] };
    expect(refused).toMatchObject({ outcome: 'refused', code: 'attestation.policy-mismatch' });
    expect(refused.lines.join('\n')).toMatch(/PCR 4/);
    expect(drift.stderr).toMatch(/^rackseal-agent: run: refused: attestation\.policy-mismatch: .+\n$/);
    expect((await machineBy(await hashOf(tpmA.rsaEkCertDer()))).state).toBe('quarantined');
    const status = await agent('status', '--tpm', tpmA.device, '--state-dir', stateDir, '--json');
    expect(JSON.parse(status.stdout)).toMatchObject({ lastAttestation: { outcome: 'refused', code: 'attestation.policy-mismatch' } });
  });

  it('run without --interval (the interval from GET /node/v1/self) exits cleanly on SIGTERM while waiting', async () => {
    const child = spawnCli('rackseal-agent', ['run', '--tpm', tpmA.device, '--state-dir', join(dir, 'state-ecc-p256'), '--event-log', 'none']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (!stdout.includes('\n') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(JSON.parse(stdout.trim())).toMatchObject({ outcome: 'attested' });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('an operator\'s POST /v1/machines/:ref/reattest makes a running agent attest again at its next question', async () => {
    const stateDir = join(dir, 'state-ecc-p256');
    const child = spawnCli('rackseal-agent', ['run', '--tpm', tpmA.device, '--state-dir', stateDir, '--event-log', 'none', '--ask-every', '1s']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lines = async (n: number): Promise<{ outcome: string; credentialId: string }[]> => {
      const deadline = Date.now() + 60_000;
      while (stdout.split('\n').filter((l) => l.trim() !== '').length < n && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      return stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; credentialId: string });
    };
    try {
      const [first] = await lines(1);
      expect(first).toMatchObject({ outcome: 'attested' });
      const { machineId } = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8')) as { machineId: string };
      const asked = await fetch(`${server.baseUrl}/v1/machines/${machineId}/reattest`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` } });
      expect(asked.status).toBe(200);
      const all = await lines(2);
      expect(all).toHaveLength(2);
      expect(all[1]).toMatchObject({ outcome: 'attested' });
      expect(all[1]!.credentialId).not.toBe(first!.credentialId);
      // The successful attestation answered the request: nothing is pending any more.
      expect(await ds.query('SELECT reattest_requested_at FROM machines WHERE id = $1', [machineId])).toEqual([{ reattest_requested_at: null }]);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  const KERNEL_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';
  (existsSync(KERNEL_LOG) ? it.skip : it)('no kernel event log: enroll sends none and says so on stderr, and attests', async () => {
    const result = await agent('enroll', '--server', server.baseUrl, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-ecc-p256'), '--ek', 'ecc-p256');
    expect([result.status, result.stderr]).toEqual([0, `rackseal-agent: enroll: no event log sent: ${KERNEL_LOG} does not exist\n`]);
    expect(result.stdout).toMatch(/^enrolled machine \S+ with http:\/\/127\.0\.0\.1:\d+: attested\n {2}policy: match \(allowed set "fresh swtpm"\)\n {2}node credential [0-9a-f]{32}, sealed by this TPM in .*\n {2}certified key [0-9a-f]{68} \(rsa-2048\), already on record\n$/);
  });

  it('--event-log FILE is sent with the quote: a log that does not replay to the PCRs is refused by the server (exit 1, its code and lines)', async () => {
    const log = fixturePath('eventlogs', 'crypto_agile_eventlog');
    const result = await agent('enroll', '--server', server.baseUrl, '--tpm', tpmA.device, '--state-dir', join(dir, 'state-ecc-p256'), '--ek', 'ecc-p256', '--event-log', log);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^rackseal-agent: enroll: refused by the server: attestation\.event-log-mismatch: the event log does not replay to the quoted PCR values\n( {2}.+\n)+$/);
  });

  it('run asks GET /node/v1/self, signed with its node credential, and re-attests at once when it says reattest', async () => {
    // A front for the control plane that answers /node/v1/self itself (the route lands separately):
    // no re-attestation at the first question, then one.
    const asked: IncomingMessage['headers'][] = [];
    const front = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/node/v1/self') {
          asked.push(req.headers);
          res.writeHead(200, { 'content-type': 'application/json' });
          // NodeSelfResponse (libs/node-api-contracts self.ts): the interval is nextAttestationDue − lastAttestedAt.
          const last = new Date();
          res.end(JSON.stringify({ machineId: 'm', serial: 'SN-A-P256', group: 'workers', state: 'attested', lastAttestedAt: last.toISOString(), nextAttestationDue: new Date(last.getTime() + 3_600_000).toISOString(), reattest: asked.length === 2 }));
          return;
        }
        void fetch(`${server.baseUrl}${req.url}`, { method: req.method, headers: { 'content-type': 'application/json' }, ...(chunks.length === 0 ? {} : { body: Buffer.concat(chunks) }) }).then(async (answer) => {
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        });
      });
    });
    await new Promise<void>((resolve) => front.listen(0, LOCALHOST, resolve));
    const frontUrl = `http://${LOCALHOST}:${(front.address() as AddressInfo).port}`;
    const stateDir = join(dir, 'state-ecc-p256');
    const child = spawnCli('rackseal-agent', ['run', '--server', frontUrl, '--tpm', tpmA.device, '--state-dir', stateDir, '--event-log', 'none', '--ask-every', '1s']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (stdout.split('\n').length < 3 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; credentialId: string; machineId: string });
      expect(lines.map((l) => l.outcome)).toEqual(['attested', 'attested']);
      // The same machine both times: re-attestation uses the EK the identity names (P-256 here), not the default kind.
      const { id: machineId } = await machineBy(await hashOf(tpmA.p256EkCertDer()));
      expect(lines.map((l) => l.machineId)).toEqual([machineId, machineId]);
      expect(lines[1]!.credentialId).not.toBe(lines[0]!.credentialId);
      // Asked before the first attestation (for the interval) and after it, each request signed with
      // the credential then current: verified as the control plane verifies, with the key it holds.
      expect(asked.length).toBeGreaterThanOrEqual(2);
      const keyOf = async (credentialId: string) => {
        const rows = (await ds.query('SELECT key_sealed FROM node_credentials WHERE credential_id = $1', [credentialId])) as { key_sealed: Buffer }[];
        return rows[0] === undefined ? undefined : openEnvelope(testConfig(db, prefix.prefix).masterKey.key!, `node-credential:${credentialId}`, rows[0].key_sealed);
      };
      const replay = new MemoryReplayGuard(() => new Date());
      const verdicts = await Promise.all(asked.map((headers) => verifyNodeRequest(headers, 'GET', '/node/v1/self', Buffer.alloc(0), { now: new Date(), lookup: keyOf, replay })));
      expect(verdicts.every((v) => v.ok)).toBe(true);
      expect(verdicts[1]).toEqual({ ok: true, credentialId: lines[0]!.credentialId });
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await new Promise((resolve) => front.close(resolve));
    }
  });

  it('status asks the server: a quarantined machine exits 1 naming its state (GET /node/v1/self answers quarantined); a revoked one exits 1 saying revoked (401 node.unknown-credential)', async () => {
    // SN-A-RSA was quarantined by the PCR extend above.
    const quarantined = await agent('status', '--tpm', tpmA.device, '--state-dir', join(dir, 'state-rsa-2048'), '--server', server.baseUrl);
    expect(quarantined.status).toBe(1);
    expect(quarantined.stderr).toMatch(/^rackseal-agent: status: the server http:\/\/\S+ has this machine quarantined: its last attestation did not match its group's PCR policy \(the operator sees why with rackseal machines show\)\n$/);
    expect(quarantined.stdout).toContain('  server: machine quarantined\n');

    // The test before re-attested this machine through a front that is gone now: --server names the control plane.
    const stateDir = join(dir, 'state-ecc-p256');
    const status = (...more: string[]) => agent('status', '--tpm', tpmA.device, '--state-dir', stateDir, '--server', server.baseUrl, ...more);
    const unanswered = await agent('status', '--tpm', tpmA.device, '--state-dir', stateDir);
    expect(unanswered.status).toBe(0);
    expect(unanswered.stdout).toMatch(/\n {2}server: not answered: cannot reach the server http:\/\/\S+: connection refused \(1 attempt\)\n$/);
    const before = await status('--json');
    expect([before.status, before.stderr]).toEqual([0, '']);
    expect(JSON.parse(before.stdout)).toMatchObject({ credentialOpens: true, server: { url: server.baseUrl, state: 'attested' } });
    const { machineId } = JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8')) as { machineId: string };
    const revoked = await fetch(`${server.baseUrl}/v1/machines/${machineId}/revoke`, { method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'decommissioned' }) });
    expect(revoked.status).toBe(200);

    const after = await status();
    expect(after.status).toBe(1);
    expect(after.stdout).toContain('  server: REVOKED: node.unknown-credential: ');
    expect(after.stderr).toBe(
      `rackseal-agent: status: the server ${server.baseUrl} refuses this machine's node credential: the machine was revoked, or enrolled again elsewhere since (node.unknown-credential: node credential ${JSON.parse(before.stdout).identity.credentialId as string} is unknown, rotated or revoked)\n`,
    );
    const json = await status('--json');
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ enrolled: true, credentialOpens: true, server: { refused: { code: 'node.unknown-credential', revoked: true } } });
    // --offline reports the state dir alone, as before.
    expect((await status('--offline')).status).toBe(0);
  });
});
