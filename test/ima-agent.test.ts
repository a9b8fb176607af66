/**
 * Runtime integrity end to end (issue 17 items 2-4) with the BUILT programs: `rackseal policy runtime
 * set|show` against a control-plane process, and `rackseal-agent enroll|run --once` reading an IMA
 * measurement list from a file (`--ima-list`, as agent.yaml's `imaList`) whose extends were applied
 * to swtpm's PCR 10 entry by entry. The agent sends only the entries after the server's next index
 * (the count checked is in its JSON line and the machine's state), the whole list after a reboot
 * (a shorter list at once; a longer one after the server's attestation.ima-restart, retried at
 * once), and a file the policy does not allow quarantines the machine with the file named.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcrPoliciesRepository } from '@rackseal/attestation';
import { buildImaEntry, entryExtend, type ImaEntry, marshalBinaryEntry } from '@rackseal/ima';
import type { DataSource } from 'typeorm';
import { FRESH_SWTPM_POLICY } from './support/attestation-policies';
import { runAgentCliAsync, runRacksealCli, runRacksealCliAsync } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testEnv } from './support/test-config';

jest.setTimeout(240_000);

const sha256 = (text: string) => createHash('sha256').update(text).digest();
const file = (path: string, content = `content of ${path}`): ImaEntry => buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(content), name: path });
const BASE = [file('boot_aggregate', 'aggregate'), file('/usr/bin/bash'), file('/usr/lib/libc.so.6'), file('/usr/sbin/sshd'), file('/etc/ld.so.cache')];
const LATER = [file('/usr/bin/ls'), file('/usr/bin/cat'), file('/usr/bin/grep')];
const MORE = [file('/usr/bin/awk')];
const EVIL = file('/usr/bin/evil');
const POLICY = {
  meta: { version: 1, generator: 3 },
  release: 0,
  digests: Object.fromEntries([...BASE, ...LATER, ...MORE].map((e) => [e.path, [e.digest.digest.toString('hex')]])),
  excludes: [],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
};

describe('rackseal-agent sends its IMA list; rackseal policy runtime (issue 17)', () => {
  const fixture = useSwtpms(1);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let server: { proc: RunningProcess; baseUrl: string };
  let ds: DataSource;
  let admin: string;
  let dir: string;
  let tpm: SwtpmMachine;
  let list: string;

  const cli = (args: string[], input?: string) => runRacksealCliAsync(args, { env: { RACKSEAL_SERVER: server.baseUrl, RACKSEAL_TOKEN: admin }, ...(input === undefined ? {} : { input }) });
  const agentRun = () => runAgentCliAsync(['run', '--server', server.baseUrl, '--tpm', tpm.device, '--state-dir', join(dir, 'state'), '--event-log', 'none', '--ima-list', list, '--once']);
  const imaState = async () =>
    ((await ds.query("SELECT s.state FROM machine_ima_states s JOIN machines m ON m.id = s.machine_id WHERE m.serial = 'SN-AGENT'")) as { state: { nextEntry: number; bootTime: string | null } }[])[0]!.state;

  /**
   * The per-bank list binary_runtime_measurements_sha256 beside the SHA-1 one, as kernels with IMA's
   * template-hash crypto agility write it: none, honest (template hashes under SHA-256), or lying
   * (SHA-1 template hashes zero-padded to 32 bytes).
   */
  let perBank: 'none' | 'honest' | 'lying' = 'none';
  const perBankList = () => `${list}_sha256`;

  /** The kernel measures: PCR 10 extended, the entry appended to the list file (and to the per-bank list). */
  async function measure(entries: readonly ImaEntry[]): Promise<void> {
    for (const entry of entries) {
      const extend = entryExtend(entry, { bank: 'sha256' }).extend;
      await tpm.extendPcr(10, 'sha256', extend.toString('hex'));
      await appendFile(list, marshalBinaryEntry(entry));
      if (perBank !== 'none') {
        const templateHash = perBank === 'honest' ? extend : Buffer.concat([entry.templateHash, Buffer.alloc(12)]);
        await appendFile(perBankList(), marshalBinaryEntry({ ...entry, templateHash }));
      }
    }
  }

  async function reboot(): Promise<void> {
    await tpm.reboot();
    await writeFile(list, Buffer.alloc(0));
    await rm(perBankList(), { force: true });
    if (perBank !== 'none') {
      await writeFile(perBankList(), Buffer.alloc(0));
    }
  }

  /** The `ima` details of the last attestation's audit record. */
  const lastImaAudit = async () =>
    ((await ds.query("SELECT details->'ima' AS ima FROM audit_log WHERE action IN ('attestation.succeeded', 'attestation.refused') ORDER BY id DESC LIMIT 1")) as { ima: Record<string, unknown> }[])[0]!.ima;

  /** The JSON line of one `run --once`. */
  const lineOf = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;

  beforeAll(async () => {
    tpm = fixture.at(0);
    dir = await mkdtemp(join(tmpdir(), 'rackseal-ima-agent-'));
    list = join(dir, 'binary_runtime_measurements');
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
      expect((await cli(['vendor-ca', 'add', join(dir, pem)])).status).toBe(0);
    }
    await writeFile(join(dir, 'fleet.csv'), `serial,asset_tag,hostname,group,ek_cert,ek_pub_hash\nSN-AGENT,,,racks,${(await tpm.rsaEkCertDer()).toString('base64')},\n`);
    expect((await cli(['inventory', 'import', join(dir, 'fleet.csv')])).status).toBe(0);
    await new PcrPoliciesRepository(ds).put('racks', FRESH_SWTPM_POLICY, 'test', new Date());
  }, 240_000);

  afterAll(async () => {
    await server?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    await rm(dir, { recursive: true, force: true });
  });

  it('policy runtime set --file - and show: the Keylime JSON stored with its SHA-256; a bad one refused naming the field', async () => {
    const bad = await cli(['policy', 'runtime', 'set', 'racks', '--file', '-'], JSON.stringify({ ...POLICY, extra: 1 }));
    // A 400 (policy.invalid) is the CLI's exit 2, with the server's message naming the field.
    expect([bad.status, bad.stderr]).toEqual([2, 'rackseal: policy runtime set: runtime policy extra: unknown field (not in the runtime-policy format)\n']);
    const both = await cli(['policy', 'runtime', 'set', 'racks']);
    expect([both.status, both.stderr]).toEqual([2, 'rackseal: policy runtime set: give --file (a Keylime runtime policy) or --from-machine (a canary), not both\n']);

    const set = await cli(['policy', 'runtime', 'set', 'racks', '--file', '-'], JSON.stringify(POLICY));
    expect([set.status, set.stderr]).toEqual([0, '']);
    const digest = createHash('sha256').update(JSON.stringify(POLICY)).digest('hex');
    expect(set.stdout).toContain(`(sha256 ${digest})`);
    const shown = await cli(['policy', 'runtime', 'show', 'racks']);
    expect(shown.stdout).toMatch(/mode: +enforce \(a failing IMA list quarantines\)\n/);
    expect(shown.stdout).toMatch(/files: +9\n/);
    const json = await cli(['policy', 'runtime', 'show', 'racks', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ sha256: digest, policy: POLICY });
  });

  it('enroll sends the whole list; run sends only the new entries (3 of 8 checked)', async () => {
    await reboot();
    await measure(BASE);
    const enrolled = await runAgentCliAsync(['enroll', '--server', server.baseUrl, '--tpm', tpm.device, '--state-dir', join(dir, 'state'), '--ek', 'rsa-2048', '--event-log', 'none', '--ima-list', list, '--json']);
    expect(enrolled.status).toBe(0);
    expect(await imaState()).toMatchObject({ nextEntry: 5 });
    // No per-bank list: the configured one sent with no algorithm named, read as the policy's log_hash_alg (sha1).
    const audit = await lastImaAudit();
    expect(audit).toMatchObject({ decision: 'pass', templateHashAlgorithm: 'sha1' });
    expect(audit).not.toHaveProperty('policyLogHashAlgorithm');

    await measure(LATER);
    const run = await agentRun();
    expect(run.status).toBe(0);
    expect(lineOf(run.stdout)).toMatchObject({ outcome: 'attested', ima: { decision: 'pass', entriesChecked: 3, nextEntry: 8 } });
    expect(await imaState()).toMatchObject({ nextEntry: 8 });
  });

  it('after a reboot: a shorter list is sent whole at once; a longer one after attestation.ima-restart, retried at once', async () => {
    await reboot();
    await measure(BASE);
    const shorter = await agentRun();
    expect(lineOf(shorter.stdout)).toMatchObject({ outcome: 'attested', ima: { decision: 'pass', entriesChecked: 5, nextEntry: 5 } });

    await reboot();
    await measure([...BASE, ...LATER, ...MORE]);
    const longer = await agentRun();
    expect(longer.status).toBe(0);
    // Sent from 5 (the old boot's next entry), refused as another boot, then sent whole.
    expect(lineOf(longer.stdout)).toMatchObject({ outcome: 'attested', ima: { decision: 'pass', entriesChecked: 9, nextEntry: 9 } });
    const restarts = (await ds.query("SELECT count(*)::int AS n FROM audit_log WHERE action = 'attestation.refused' AND details->>'code' = 'attestation.ima-restart'")) as { n: number }[];
    expect(restarts[0]!.n).toBe(1);
  });

  it('a per-bank list of the quote\'s bank beside the SHA-1 list is the one sent, its algorithm named, and attests', async () => {
    perBank = 'honest';
    await reboot();
    await measure(BASE);
    const first = await agentRun();
    expect([first.status, first.stderr]).toEqual([0, '']);
    expect(lineOf(first.stdout)).toMatchObject({ outcome: 'attested', ima: { decision: 'pass', entriesChecked: 5, nextEntry: 5 } });
    // Parsed as SHA-256 template hashes (the SHA-1 list would not parse so): the agent named the
    // bank; the policy's log_hash_alg (sha1) gave way and is recorded.
    expect(await lastImaAudit()).toMatchObject({ decision: 'pass', templateHashAlgorithm: 'sha256', policyLogHashAlgorithm: 'sha1' });

    await measure(LATER);
    const next = await agentRun();
    expect(lineOf(next.stdout)).toMatchObject({ outcome: 'attested', ima: { decision: 'pass', entriesChecked: 3, nextEntry: 8 } });
    expect(await lastImaAudit()).toMatchObject({ templateHashAlgorithm: 'sha256' });
  });

  it('a per-bank list whose template hashes are SHA-1 (lying about its algorithm) fails, each entry named (warn: recorded)', async () => {
    expect((await cli(['policy', 'runtime', 'set', 'racks', '--file', '-', '--mode', 'warn'], JSON.stringify(POLICY))).status).toBe(0);
    perBank = 'lying';
    await reboot();
    await measure(BASE);
    const run = await agentRun();
    expect(run.status).toBe(0);
    const line = lineOf(run.stdout);
    // The quote is reached (PCR 10 is replayed from the template data), but no template hash is the data's SHA-256.
    expect(line).toMatchObject({ outcome: 'attested', ima: { decision: 'fail', entriesChecked: 5 } });
    const bash = BASE[1]!;
    expect(JSON.stringify(line.lines)).toContain(`entry 1 /usr/bin/bash sha256:${bash.digest.digest.toString('hex')}: template-hash-mismatch (template hash)`);
    expect(await lastImaAudit()).toMatchObject({ decision: 'fail', mode: 'warn', templateHashAlgorithm: 'sha256', failureCount: 5 });
    expect(await imaState()).toMatchObject({ nextEntry: 0, bootTime: null });

    // Back to enforce, and an honest per-bank list of this boot for what follows.
    expect((await cli(['policy', 'runtime', 'set', 'racks', '--file', '-', '--mode', 'enforce'], JSON.stringify(POLICY))).status).toBe(0);
    perBank = 'honest';
    await reboot();
    await measure([...BASE, ...LATER, ...MORE]);
    const honest = await agentRun();
    expect(lineOf(honest.stdout)).toMatchObject({ outcome: 'attested', ima: { decision: 'pass', entriesChecked: 9, nextEntry: 9 } });
  });

  it('a control plane older than ima.templateHashAlgorithm refuses it: the agent sends the configured list again, with no algorithm, and attests', async () => {
    // A front answering a finish that names the algorithm as such a control plane does: its
    // ValidationPipe's refusal of an unknown field (the real server's answer for another unknown
    // name, the name put back), before the registration is looked at.
    const finishes: unknown[] = [];
    const front = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let forwarded = body;
        let named = false;
        if (req.url?.endsWith('/finish') === true) {
          const finish = JSON.parse(body.toString('utf8')) as { ima?: Record<string, unknown> };
          finishes.push(finish.ima?.templateHashAlgorithm);
          if (finish.ima?.templateHashAlgorithm !== undefined) {
            named = true;
            const { templateHashAlgorithm, ...ima } = finish.ima;
            forwarded = Buffer.from(JSON.stringify({ ...finish, ima: { ...ima, unknownToThisServer: templateHashAlgorithm } }));
          }
        }
        void fetch(`${server.baseUrl}${req.url!}`, { method: req.method, headers: { 'content-type': 'application/json' }, ...(forwarded.length === 0 ? {} : { body: forwarded }) }).then(async (answer) => {
          const text = Buffer.from(await answer.arrayBuffer()).toString('utf8');
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(named ? text.replaceAll('unknownToThisServer', 'templateHashAlgorithm') : text);
        });
      });
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    try {
      const frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
      const run = await runAgentCliAsync(['run', '--server', frontUrl, '--tpm', tpm.device, '--state-dir', join(dir, 'state'), '--event-log', 'none', '--ima-list', list, '--once']);
      expect([run.status, run.stderr]).toEqual([0, '']);
      expect(lineOf(run.stdout)).toMatchObject({ outcome: 'attested', ima: { decision: 'pass', entriesChecked: 0, nextEntry: 9 } });
      // The per-bank list named, refused; the configured one sent with nothing named, read as the policy's sha1.
      expect(finishes).toEqual(['sha256', undefined]);
      expect(await lastImaAudit()).toMatchObject({ decision: 'pass', templateHashAlgorithm: 'sha1' });
    } finally {
      await new Promise((resolve) => front.close(resolve));
    }
  });

  it('policy runtime set --from-machine: what the machine ran this boot becomes the allowlist, with the excludes given', async () => {
    const set = await cli(['policy', 'runtime', 'set', 'racks', '--from-machine', 'SN-AGENT', '--exclude', '/tmp/.*', '/var/log/.*', '--mode', 'enforce', '--json']);
    expect([set.status, set.stderr]).toEqual([0, '']);
    const answer = JSON.parse(set.stdout) as { paths: number; excludes: number; mode: string; policy: { digests: Record<string, string[]>; excludes: string[] } };
    expect(answer).toMatchObject({ paths: 9, excludes: 2, mode: 'enforce' });
    expect(answer.policy.excludes).toEqual(['/tmp/.*', '/var/log/.*']);
    expect(answer.policy.digests['/usr/bin/awk']).toEqual([MORE[0]!.digest.digest.toString('hex')]);
    const misuse = await cli(['policy', 'runtime', 'set', 'racks', '--file', '-', '--exclude', '/tmp/.*'], '{}');
    expect([misuse.status, misuse.stderr]).toEqual([2, 'rackseal: policy runtime set: --exclude goes with --from-machine (a policy file carries its own excludes)\n']);
  });

  it('a file the policy does not allow: refused, the machine quarantined, the file named', async () => {
    await measure([EVIL]);
    const run = await agentRun();
    expect(run.status).toBe(1);
    const line = lineOf(run.stdout);
    expect(line).toMatchObject({ outcome: 'refused', code: 'attestation.runtime-policy-violation' });
    expect(JSON.stringify(line.lines)).toContain(`entry 9 /usr/bin/evil sha256:${EVIL.digest.digest.toString('hex')}: not-in-allowlist (digests)`);
    const machine = (await ds.query("SELECT state FROM machines WHERE serial = 'SN-AGENT'")) as { state: string }[];
    expect(machine[0]!.state).toBe('quarantined');
    expect(await imaState()).toMatchObject({ nextEntry: 0, bootTime: null });
  });
});
