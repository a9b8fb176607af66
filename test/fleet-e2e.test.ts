/**
 * Issue 14's first two acceptance bullets, end to end with nothing stood in: real PostgreSQL, Redis,
 * three swtpm machines and cryptsetup; the built control plane, the built worker (the product
 * sealer), and three built `rackseal-agent run` daemons with config files. TLS, kubelet, opaque and
 * disk (`pcr-sealed`, into a LUKS2 image file per machine) secrets reach the group: files with the
 * exact bytes, modes and owners; the image opens with `cryptsetup open --test-passphrase
 * --key-file=-` fed by `rackseal-agent unlock`, offline from the token in its header; after a PCR
 * extend unlock refuses and the image stays shut; after `policy promote` of a canary the agents'
 * next attestation records the new approvals in the tokens and the image opens again, with no new
 * delivery. Then the rotations: a disk-key rotation leaves exactly the new key (besides the
 * installer's enrollment slot) able to open each image, and a group TLS rotation installs a new pair
 * on every machine.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRacksealToken } from '../apps/agent/src/install/luks-token';
import { runBinary, useAgentE2eFleet } from './support/agent-e2e-fleet';
import { AGENT_ENTRY } from './support/cli-runner';
import { freePort } from './support/free-port';
import { luksImage } from './support/rackseal-disk';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { pollUntil } from './support/wait';

jest.setTimeout(300_000);

const SERIALS = ['SN-A', 'SN-B', 'SN-C'] as const;
type Serial = (typeof SERIALS)[number];
const NAMES = ['app-token', 'kubelet', 'root-disk', 'web-tls'];
/** nobody:nogroup on Debian; the agent resolves the names from /etc/passwd and /etc/group. */
const NOBODY = 65534;
/** cryptsetup's exit code for "no key available with this passphrase". */
const CRYPTSETUP_NO_KEY = 2;

const mode = (path: string): number => statSync(path).mode & 0o7777;
const owners = (path: string): [number, number] => [statSync(path).uid, statSync(path).gid];
/** A stored PEM as a file holds it (RFC 7468 line end). */
const pemFile = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);
const keyDer = (pem: string | Buffer): Buffer => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });

describe('a fleet of three: every kind of secret, boot unlock across a PCR change, rotations', () => {
  const fixture = useSwtpms(3);
  const fleet = useAgentE2eFleet(SERIALS, fixture, 'rackseal-fleet-e2e-');
  const { cli } = fleet;
  /** The unlock child's config: a server where nothing listens, so an unlock that tried the network would fail. */
  let offlineConfig: string;
  let dir: string;
  const opaqueValue = randomBytes(48);
  const images = new Map<Serial, { image: string; enrollKeyFile: string }>();

  const tpm = (serial: Serial): SwtpmMachine => fleet.tpm(serial);
  const files = (serial: Serial) => fleet.files(serial);
  const image = (serial: Serial) => images.get(serial)!.image;
  const deliveries = (name?: string) => fleet.deliveries(name);
  const ackCount = (deliveryId: string) => fleet.ackCount(deliveryId);
  const material = (name: string, version: number, serial: Serial) => fleet.material(name, version, serial);
  const lines = (serial: Serial) => fleet.lines(serial);
  const agents = fleet.agents;

  const machineStates = async () => ((await fleet.ds.query(`SELECT serial, state FROM machines ORDER BY serial`)) as { serial: string; state: string }[]).map((r) => `${r.serial} ${r.state}`);

  async function agentConfig(serial: Serial): Promise<string> {
    const f = files(serial);
    const { image: device, enrollKeyFile } = images.get(serial)!;
    const path = join(dir, `agent-${serial}.yaml`);
    await writeFile(
      path,
      [
        'installs:',
        `  web-tls: {kind: tls, keyPath: ${f}/tls/node.key, certPath: ${f}/tls/node.crt, chainPath: ${f}/tls/ca.crt, mode: "0600"}`,
        `  app-token: {kind: opaque, path: ${f}/app/token, mode: "0640", owner: nobody, group: nogroup}`,
        `  kubelet: {kind: kubelet-client, pemPath: ${f}/kubelet/kubelet-client-current.pem, kubeconfigPath: ${f}/kubelet/kubelet.conf, owner: ${NOBODY}}`,
        `  root-disk: {kind: disk, device: ${device}, enrollKeyFile: ${enrollKeyFile}}`,
        '',
      ].join('\n'),
    );
    return path;
  }

  /**
   * `rackseal-agent unlock` as boot runs it: offline, from the image's token alone (a state dir that
   * does not exist, a config naming a server where nothing listens).
   */
  const unlockArgs = (serial: Serial) => ['unlock', '--device', image(serial), '--tpm', tpm(serial).device, '--state-dir', join(dir, 'no-state-dir'), '--config', offlineConfig];
  const unlock = (serial: Serial) => runBinary(process.execPath, [AGENT_ENTRY, ...unlockArgs(serial)]);
  /** `rackseal-agent unlock … | cryptsetup open --test-passphrase --key-file=- IMAGE`: cryptsetup's exit status. */
  async function opensThroughPipe(serial: Serial): Promise<number | null> {
    const agentLine = [process.execPath, AGENT_ENTRY, ...unlockArgs(serial)].map((a) => `'${a}'`).join(' ');
    return (await runBinary('sh', ['-c', `${agentLine} 2>/dev/null | cryptsetup open --test-passphrase --key-file=- '${image(serial)}'`])).status;
  }
  /** Whether `key` opens any keyslot of the image. */
  const opensWith = async (serial: Serial, key: Buffer) => (await runBinary('cryptsetup', ['open', '--test-passphrase', '--key-file=-', image(serial)], key)).status;
  const keyslots = (serial: Serial): number[] =>
    Object.keys((JSON.parse(execFileSync('cryptsetup', ['luksDump', '--dump-json-metadata', image(serial)]).toString()) as { keyslots: Record<string, unknown> }).keyslots)
      .map(Number)
      .sort();

  beforeAll(async () => {
    dir = fleet.dir;
    offlineConfig = join(dir, 'offline.yaml');
    await writeFile(offlineConfig, `server: http://127.0.0.1:${await freePort()}\n`);
    for (const serial of SERIALS) {
      const disks = join(dir, `disks-${serial}`);
      await mkdir(disks);
      images.set(serial, luksImage(disks));
      fleet.startAgent(serial, await agentConfig(serial), { askEvery: '2s' });
    }
    // `run` attests first; a create while a target machine is attesting would leave it out until its next attestation.
    for (const serial of SERIALS) {
      expect([serial, await pollUntil(async () => lines(serial).some((l) => l.outcome === 'attested'), (x) => x, 60_000)]).toEqual([serial, true]);
    }
  }, 240_000);

  it('tls, kubelet, opaque and disk secrets reach all three machines: exact bytes, modes and owners, each acked once; the disk key sits in a keyslot beside the enrollment slot', async () => {
    await writeFile(join(dir, 'app-token'), opaqueValue);
    for (const args of [
      ['web-tls', '--kind', 'tls', '--binding', 'certified-key', '--san', '{hostname}.workers.example'],
      ['app-token', '--kind', 'opaque', '--binding', 'pcr-sealed', '--value-file', join(dir, 'app-token')],
      ['kubelet', '--kind', 'kubelet-client', '--binding', 'certified-key', '--api-server', 'https://10.0.0.1:6443'],
      ['root-disk', '--kind', 'disk', '--binding', 'pcr-sealed', '--size', '32'],
    ]) {
      const created = await cli('secrets', 'create', args[0]!, '--group', 'workers', ...args.slice(1));
      expect([args[0], created.status, created.stderr]).toEqual([args[0], 0, '']);
    }
    const rows = await pollUntil(deliveries, (r) => r.length === 12 && r.every((d) => d.state === 'acked'), 120_000, 250);
    expect(rows.map((r) => [r.name, r.serial, r.version, r.state])).toEqual(NAMES.flatMap((n) => SERIALS.map((s) => [n, s, 1, 'acked'])));
    for (const row of rows) {
      expect([row.id, await ackCount(row.id)]).toEqual([row.id, 1]);
    }

    const tlsCa = (await cli('ca', 'download', '--kind', 'tls')).stdout;
    const root = process.getuid!();
    for (const serial of SERIALS) {
      const f = files(serial);
      expect(readFileSync(join(f, 'app/token')).equals(opaqueValue)).toBe(true);
      expect([mode(join(f, 'app/token')), ...owners(join(f, 'app/token'))]).toEqual([0o640, NOBODY, NOBODY]);

      const tls = await material('web-tls', 1, serial);
      expect(keyDer(readFileSync(join(f, 'tls/node.key'))).equals(tls.key)).toBe(true);
      expect(readFileSync(join(f, 'tls/node.crt'), 'utf8')).toBe(pemFile(tls.certificatePem!));
      expect(readFileSync(join(f, 'tls/ca.crt'), 'utf8')).toBe(pemFile(tlsCa));
      expect(['tls/node.key', 'tls/node.crt', 'tls/ca.crt'].map((p) => [mode(join(f, p)), ...owners(join(f, p))])).toEqual([
        [0o600, root, root],
        [0o644, root, root],
        [0o644, root, root],
      ]);

      const kubelet = await material('kubelet', 1, serial);
      const pem = readFileSync(join(f, 'kubelet/kubelet-client-current.pem'), 'utf8');
      expect(pem.startsWith(pemFile(kubelet.certificatePem!))).toBe(true);
      expect(keyDer(pem.slice(pemFile(kubelet.certificatePem!).length)).equals(kubelet.key)).toBe(true);
      expect(readFileSync(join(f, 'kubelet/kubelet.conf'), 'utf8')).toBe(kubelet.kubeletConf);
      // owner given, group not: the file's group stays the agent's (root's).
      expect(['kubelet/kubelet-client-current.pem', 'kubelet/kubelet.conf'].map((p) => [mode(join(f, p)), ...owners(join(f, p))])).toEqual([
        [0o600, NOBODY, root],
        [0o600, NOBODY, root],
      ]);

      const disk = await material('root-disk', 1, serial);
      const token = await readRacksealToken(image(serial));
      expect(token).toMatchObject({ secret: 'root-disk', generation: 1, retiring: [] });
      expect(keyslots(serial)).toEqual([0, token!.keyslot]);
      expect(await opensWith(serial, disk.key)).toBe(0);
    }
    // One machine's disk key does not open another's image: the material is per machine.
    expect(await opensWith('SN-B', (await material('root-disk', 1, 'SN-A')).key)).toBe(CRYPTSETUP_NO_KEY);
  });

  it('boot unlock, offline from the token: opens each image; a PCR extend shuts it; `policy promote` opens it again through the agents\' next attestation, with no new delivery', async () => {
    for (const serial of SERIALS) {
      const unlocked = await unlock(serial);
      expect([serial, unlocked.status, unlocked.stderr, unlocked.stdout.toString('hex')]).toEqual([serial, 0, '', (await material('root-disk', 1, serial)).key.toString('hex')]);
      expect([serial, await opensThroughPipe(serial)]).toEqual([serial, 0]);
    }

    // The same firmware change on every machine (PCR 7: secure boot state).
    const digest = randomBytes(32).toString('hex');
    for (const serial of SERIALS) {
      await tpm(serial).extendPcr(7, 'sha256', digest);
    }
    for (const serial of SERIALS) {
      const refused = await unlock(serial);
      expect([serial, refused.status, refused.stdout.length]).toEqual([serial, 1, 0]);
      expect(refused.stderr).toMatch(/no approval for the current PCR state \(group "workers", epoch 1, 1 approval\(s\) checked\)/);
      // Nothing on the pipe: cryptsetup has no key to try, and the image stays shut.
      expect([serial, await opensThroughPipe(serial)]).not.toEqual([serial, 0]);
    }

    // The machines attest in the new state: an enforce policy quarantines them.
    for (const serial of SERIALS) {
      expect((await cli('machines', 'reattest', serial)).status).toBe(0);
    }
    expect(await pollUntil(machineStates, (s) => s.every((l) => l.endsWith(' quarantined')), 60_000, 250)).toEqual(SERIALS.map((s) => `${s} quarantined`));
    const before = await deliveries();

    // The operator approves the new state from a canary; the agents see the policy change, attest,
    // and record the group's approvals in their disks' tokens.
    const promoted = await cli('policy', 'promote', 'workers', '--machine', 'SN-A', '--label', 'new firmware');
    expect([promoted.status, promoted.stderr]).toEqual([0, '']);
    expect(await pollUntil(machineStates, (s) => s.every((l) => l.endsWith(' attested')), 60_000, 250)).toEqual(SERIALS.map((s) => `${s} attested`));
    for (const serial of SERIALS) {
      const token = await pollUntil(async () => readRacksealToken(image(serial)), (t) => (t?.approvals as { approvals?: unknown[] } | undefined)?.approvals?.length === 2, 60_000, 250);
      expect((token!.approvals as { approvals: { label: string }[] }).approvals.map((a) => a.label).sort()).toEqual(['fresh swtpm', 'new firmware']);
      expect(token).toMatchObject({ generation: 1 });
    }

    for (const serial of SERIALS) {
      const unlocked = await unlock(serial);
      expect([serial, unlocked.status, unlocked.stderr, unlocked.stdout.toString('hex')]).toEqual([serial, 0, '', (await material('root-disk', 1, serial)).key.toString('hex')]);
      expect([serial, await opensThroughPipe(serial)]).toEqual([serial, 0]);
    }
    // No new delivery: the same rows, in the same states.
    expect(await deliveries()).toEqual(before);
  });

  it('a disk-key rotation leaves exactly the new key able to open each image; a group TLS rotation installs a new pair on every machine', async () => {
    const oldDisk = new Map<Serial, Buffer>();
    for (const serial of SERIALS) {
      oldDisk.set(serial, (await material('root-disk', 1, serial)).key);
    }
    // `secrets rotate` waits until every target acked.
    const disk = await cli('secrets', 'rotate', 'root-disk');
    expect([disk.status, disk.stdout]).toEqual([0, expect.stringMatching(/3\/3 target\(s\) acked\n$/)]);
    const diskRows = (await deliveries('root-disk')).filter((r) => r.version === 2);
    expect(diskRows.map((r) => [r.serial, r.state])).toEqual(SERIALS.map((s) => [s, 'acked']));
    for (const serial of SERIALS) {
      const fresh = (await material('root-disk', 2, serial)).key;
      const token = await readRacksealToken(image(serial));
      expect(token).toMatchObject({ generation: 2, retiring: [] });
      // The installer's enrollment slot and the new key's: the old key's slot is gone.
      expect(keyslots(serial)).toEqual([0, token!.keyslot]);
      expect([serial, await opensWith(serial, fresh), await opensWith(serial, oldDisk.get(serial)!)]).toEqual([serial, 0, CRYPTSETUP_NO_KEY]);
      // Boot unlock gives the new key, offline, from the token (the approvals kept through the rotation).
      const unlocked = await unlock(serial);
      expect([serial, unlocked.status, unlocked.stdout.toString('hex')]).toEqual([serial, 0, fresh.toString('hex')]);
      expect([serial, await opensThroughPipe(serial)]).toEqual([serial, 0]);
    }

    const beforeCrt = new Map(SERIALS.map((s) => [s, readFileSync(join(files(s), 'tls/node.crt'), 'utf8')]));
    const tls = await cli('secrets', 'rotate', 'web-tls', '--group', 'workers');
    expect([tls.status, tls.stdout]).toEqual([0, expect.stringMatching(/3\/3 target\(s\) acked\n$/)]);
    expect((await deliveries('web-tls')).filter((r) => r.version === 2).map((r) => [r.serial, r.state])).toEqual(SERIALS.map((s) => [s, 'acked']));
    for (const serial of SERIALS) {
      const pair = await material('web-tls', 2, serial);
      const crt = readFileSync(join(files(serial), 'tls/node.crt'), 'utf8');
      expect(crt).toBe(pemFile(pair.certificatePem!));
      expect(crt).not.toBe(beforeCrt.get(serial));
      expect(keyDer(readFileSync(join(files(serial), 'tls/node.key'))).equals(pair.key)).toBe(true);
      expect(mode(join(files(serial), 'tls/node.key'))).toBe(0o600);
    }
    for (const row of [...diskRows, ...(await deliveries('web-tls')).filter((r) => r.version === 2)]) {
      expect([row.id, await ackCount(row.id)]).toEqual([row.id, 1]);
    }
    // The daemons are still running: none ended on the way (a stuck promise would have let one exit quietly).
    expect(SERIALS.map((s) => [s, agents.get(s)!.child.exitCode, agents.get(s)!.child.signalCode])).toEqual(SERIALS.map((s) => [s, null, null]));
  });
});
