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
import { parseDeliveryPayload } from '@rackseal/node-api-contracts';
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_CREDENTIAL_SECRET } from '../apps/agent/src/enrollment/attest-and-store';
import { NodeApiClient } from '../apps/agent/src/node-api/node-api-client';
import { loadCertifiedKey } from '../apps/agent/src/state/certified-key-state';
import { StateDir } from '../apps/agent/src/state/state-dir';
import { withTpmDevice } from '../apps/agent/src/tpm-device';
import { unwrapDelivery } from '../apps/agent/src/unwrap/unwrap-envelope';
import { useAgentE2eFleet } from './support/agent-e2e-fleet';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { pollUntil } from './support/wait';

jest.setTimeout(300_000);

const SERIALS = ['SN-A', 'SN-B'] as const;
type Serial = (typeof SERIALS)[number];
const mode = (path: string): number => statSync(path).mode & 0o7777;
/** A stored PEM as a file holds it: the payload's PEM ends with its line end (RFC 7468), which libs/secrets' text leaves off. */
const pemFile = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);

describe('deliveries end to end: product worker, built agents, real TPMs', () => {
  const fixture = useSwtpms(2);
  const fleet = useAgentE2eFleet(SERIALS, fixture, 'rackseal-deliveries-e2e-');
  const { cli } = fleet;
  let cp: { baseUrl: string };
  let dir: string;
  const opaqueValue = randomBytes(48);

  const tpm = (serial: Serial): SwtpmMachine => fleet.tpm(serial);
  const stateDir = (serial: Serial) => fleet.stateDir(serial);
  const files = (serial: Serial) => fleet.files(serial);
  const deliveries = (name?: string) => fleet.deliveries(name);
  const ackCount = (deliveryId: string) => fleet.ackCount(deliveryId);
  const material = (name: string, version: number, serial: Serial) => fleet.material(name, version, serial);
  const startAgent = (serial: Serial, config: string) => fleet.startAgent(serial, config);
  const stopAgent = (serial: Serial, signal?: NodeJS.Signals) => fleet.stopAgent(serial, signal);
  const lines = (serial: Serial) => fleet.lines(serial);

  async function agentConfig(serial: Serial, extra = ''): Promise<string> {
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

  beforeAll(() => {
    ({ cp, dir } = fleet);
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
      expect(readFileSync(join(f, 'tls/node.crt'), 'utf8')).toBe(pemFile(tls.certificatePem!));
      expect(readFileSync(join(f, 'tls/ca.crt'), 'utf8')).toBe(pemFile(tlsCa));
      expect([mode(join(f, 'tls/node.key')), mode(join(f, 'tls/node.crt')), mode(join(f, 'tls/ca.crt'))]).toEqual([0o600, 0o644, 0o644]);
      expect(new X509Certificate(tls.certificatePem!).subjectAltName).toContain(`node-${serial === 'SN-A' ? 'a' : 'b'}.workers.example`);

      const kubelet = await material('kubelet', 1, serial);
      const pem = readFileSync(join(f, 'kubelet/kubelet-client-current.pem'), 'utf8');
      expect(pem.startsWith(pemFile(kubelet.certificatePem!))).toBe(true);
      expect(createPrivateKey(pem.slice(pemFile(kubelet.certificatePem!).length)).export({ type: 'pkcs8', format: 'der' }).equals(kubelet.key)).toBe(true);
      expect(readFileSync(join(f, 'kubelet/kubelet.conf'), 'utf8')).toBe(kubelet.kubeletConf);
      expect([mode(join(f, 'kubelet/kubelet-client-current.pem')), mode(join(f, 'kubelet/kubelet.conf'))]).toEqual([0o600, 0o600]);
    }

    // The probes of the first case have no installs entry: reported, held back, still ready (never acked).
    for (const serial of SERIALS) {
      const refused = lines(serial).filter((l) => l.outcome === 'delivery-refused');
      expect(new Set(refused.map((l) => `${l.secret} ${l.code}`))).toEqual(new Set(['probe-sealed install.no-target', 'probe-certified install.no-target']));
      // The last ack's line is written when the poll that carried it answers (at the latest its wait later).
      const delivered = await pollUntil(async () => lines(serial).filter((l) => l.outcome === 'delivered').map((l) => l.secret).sort(), (d) => d.length >= names.length, 60_000, 250);
      expect(delivered).toEqual(names);
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
      expect(readFileSync(join(files(serial), 'tls/node.crt'), 'utf8')).toBe(pemFile(tls.certificatePem!));
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
    const delivered = await pollUntil(async () => lines('SN-A').find((l) => l.outcome === 'delivered' && l.secret === 'crashy'), (l) => l !== undefined, 60_000, 250);
    expect(delivered).toMatchObject({ changed: false });
  });
});
