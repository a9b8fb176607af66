/**
 * Boot unlock (issue 14 item 4): the built `rackseal-agent unlock` against a real swtpm and real
 * LUKS2 image files. A disk key installed by the agent's installs code with its PCR-sealed envelope
 * (libs/wrapping, approvals signed by a test signer) comes out of `unlock` byte for byte, offline
 * with no server, and `cryptsetup open --test-passphrase --key-file=-` fed by it opens the image;
 * after a PCR extend nothing is printed and the image stays shut; once approvals of the new state
 * are recorded (as the daemon does) the same token opens again. Every refusal prints one line on
 * stderr and nothing on stdout; no key in any argv, no file written.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { type ApprovalsResponse, encodeDeliveryPayload, parseDeliveryPayload } from '@rackseal/node-api-contracts';
import { wrapToApprovedPcrPolicy } from '@rackseal/wrapping';
import { parseAgentConfig } from '../apps/agent/src/install/agent-config';
import { install } from '../apps/agent/src/install/install';
import { openTransport, TpmClient } from '@rackseal/tpm2';
import { readRacksealToken, writeRacksealToken } from '../apps/agent/src/install/luks-token';
import { APPROVALS_CACHE_FILE } from '../apps/agent/src/unlock/approvals-cache';
import { dropOlderEpochs, recordApprovals } from '../apps/agent/src/unlock/approvals-store';
import { AGENT_ENTRY } from './support/cli-runner';
import { freePort } from './support/free-port';
import { installedDisk as installedRacksealDisk, luksImage as luksImageIn } from './support/rackseal-disk';
import { repoRoot } from './support/repo-root';
import { renderings } from './support/secret-search';
import { useSwtpms } from './support/swtpm';
import { ApprovalSigner, currentPcrSet, provisionMachine, type ProvisionedMachine } from './support/wrapping';

const GROUP = 'rack-a';
const EPOCH = 1;

let root: string;
/** PATH with a cryptsetup that records its argv, then runs the real one. */
let binDir: string;
let argvLog: string;
let counter = 0;
const freshDir = (): string => {
  const dir = join(root, `case-${++counter}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
};

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rackseal-unlock-'));
  chmodSync(root, 0o700);
  binDir = freshDir();
  argvLog = join(binDir, 'argv.log');
  const real = execFileSync('sh', ['-c', 'command -v cryptsetup']).toString().trim();
  writeFileSync(join(binDir, 'cryptsetup'), `#!/bin/sh\nprintf '%s\\0' "$@" >> ${argvLog}\nprintf '\\n' >> ${argvLog}\nexec ${real} "$@"\n`, { mode: 0o755 });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  readonly status: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** The argv the agent was started with (the test's own choice, checked for keys all the same). */
  readonly argv: readonly string[];
}

/** Runs the built agent with binary stdout, an empty TMPDIR of its own, and the recording cryptsetup first on PATH. */
function agent(args: readonly string[], tmp: string): Promise<Run> {
  const argv = [AGENT_ENTRY, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      cwd: repoRoot(),
      env: { PATH: `${binDir}:${process.env.PATH ?? ''}`, HOME: process.env.HOME, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), argv: [process.execPath, ...argv] }));
  });
}

/** `cryptsetup open --test-passphrase --key-file=- IMAGE` fed by `rackseal-agent unlock` through a real pipe. */
function opensThroughPipe(image: string, unlockArgs: readonly string[]): number | null {
  const agentLine = [process.execPath, AGENT_ENTRY, ...unlockArgs].map((a) => `'${a}'`).join(' ');
  return spawnSync('sh', ['-c', `${agentLine} 2>/dev/null | cryptsetup open --test-passphrase --key-file=- '${image}'`], { stdio: 'ignore' }).status;
}

const keysUsed: Buffer[] = [];

/** Nothing of any key in `haystack`, raw or hex/base64. */
function expectNoKey(haystack: Buffer | string): void {
  const bytes = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack, 'utf8');
  for (const key of keysUsed) {
    expect(bytes.includes(key)).toBe(false);
    for (const text of renderings(key)) {
      expect(bytes.includes(Buffer.from(text))).toBe(false);
    }
  }
}

describe('rackseal-agent unlock (built agent, swtpm, real cryptsetup)', () => {
  const fixture = useSwtpms(1);
  const signer = new ApprovalSigner();
  let tpm: string;
  let machine: ProvisionedMachine;

  /** A client for a moment: swtpm serves one connection at a time, and the agent needs it too. */
  async function withClient<T>(work: (client: TpmClient) => Promise<T>): Promise<T> {
    const client = new TpmClient(await openTransport(tpm));
    try {
      return await work(client);
    } finally {
      await client.close();
    }
  }
  const approvalsOfNow = async (): Promise<ApprovalsResponse> => signer.approvals(GROUP, EPOCH, [await withClient(currentPcrSet)]);

  beforeAll(async () => {
    tpm = fixture.at(0).device;
    machine = await withClient(provisionMachine);
  });

  const installedDisk = async () => {
    const disk = await installedRacksealDisk(freshDir(), machine, signer, GROUP, EPOCH);
    keysUsed.push(disk.key);
    return disk;
  };
  const luksImage = () => luksImageIn(freshDir());

  /** Runs unlock and checks what every run must hold: argv without key, TMPDIR still empty. */
  async function unlock(image: string, stateDir: string, extra: readonly string[] = []): Promise<Run> {
    const tmp = freshDir();
    const run = await agent(['unlock', '--device', image, '--tpm', tpm, '--state-dir', stateDir, '--config', join(root, 'no-config.yaml'), ...extra], tmp);
    expectNoKey(run.argv.join('\0'));
    expect(readdirSync(tmp)).toEqual([]);
    return run;
  }

  /** A refusal: non-zero, one line on stderr naming the cause, nothing at all on stdout. */
  function expectRefusal(run: Run, status: number, message: RegExp): void {
    expect({ status: run.status, stdout: run.stdout.toString('hex') }).toEqual({ status, stdout: '' });
    expect(run.stderr).toMatch(/^rackseal-agent: unlock: [^\n]+\n$/);
    expect(run.stderr).toMatch(message);
    expectNoKey(run.stderr);
  }

  beforeAll(() => writeFileSync(join(root, 'no-config.yaml'), ''));

  it('offline, from approvals in the state dir: exactly the key, which opens the image; a PCR extend shuts it; approvals of the new state open the same token again', async () => {
    const { image, key, envelope } = await installedDisk();
    const state = freshDir();
    // The daemon's step after an attestation: the approvals kept for the next boot.
    await recordApprovals(state, await approvalsOfNow());
    const before = readdirSync(state).sort();
    expect(before).toEqual([APPROVALS_CACHE_FILE]);

    const run = await unlock(image, state);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout.toString('hex')).toBe(key.toString('hex'));
    expect(readdirSync(state).sort()).toEqual(before); // offline unlock writes nothing
    const args = ['unlock', '--device', image, '--tpm', tpm, '--state-dir', state, '--config', join(root, 'no-config.yaml')];
    expect(opensThroughPipe(image, args)).toBe(0);

    await fixture.at(0).extendPcr(7, 'sha256', randomBytes(32).toString('hex'));
    expectRefusal(await unlock(image, state), 1, new RegExp(`${image}: no approval for the current PCR state \\(group "${GROUP}", epoch ${EPOCH}, 1 approval\\(s\\) checked\\)`));
    expect(opensThroughPipe(image, args)).not.toBe(0);

    // policy promote: the new state is approved too; the daemon records it; no new delivery.
    const promoted = signer.approvals(GROUP, EPOCH, [{ 0: '00'.repeat(32), 7: '00'.repeat(32) }, await withClient(currentPcrSet)]);
    await recordApprovals(state, promoted);
    const again = await unlock(image, state);
    expect([again.status, again.stdout.toString('hex')]).toEqual([0, key.toString('hex')]);
    expect(opensThroughPipe(image, args)).toBe(0);
    expect(await readRacksealToken(image)).toMatchObject({ generation: 1, envelope });
    await fixture.at(0).reboot(); // PCRs back to their boot values for the next tests
  });

  it('offline from the token alone (no state dir at all, as a disk wrapped before enrollment): the daemon stores the approvals in the header', async () => {
    const { image, key } = await installedDisk();
    const state = freshDir();
    const approvals = await approvalsOfNow();
    expect(await recordApprovals(state, approvals, { devices: [{ device: image }] })).toEqual([{ device: image, outcome: 'updated' }]);
    expect(await recordApprovals(state, approvals, { devices: [{ device: image }] })).toEqual([{ device: image, outcome: 'unchanged' }]);
    // Another group's or epoch's approvals are not put beside this envelope.
    expect(await recordApprovals(state, signer.approvals(GROUP, EPOCH + 1, []), { devices: [{ device: image }] })).toEqual([
      { device: image, outcome: 'skipped', reason: "the envelope is not of these approvals' group and epoch" },
    ]);
    expect((await readRacksealToken(image))?.approvals).toEqual(approvals);

    const run = await unlock(image, join(root, 'no-such-state-dir'));
    expect([run.status, run.stderr, run.stdout.toString('hex')]).toEqual([0, '', key.toString('hex')]);
  });

  it('reads a well header itself (no cryptsetup run); with a damaged header copy it asks cryptsetup, and still prints the key', async () => {
    const { image, key } = await installedDisk();
    const state = freshDir();
    await recordApprovals(state, await approvalsOfNow());
    // The recording cryptsetup's log (absent until the first call through it).
    const calls = () => (existsSync(argvLog) ? readFileSync(argvLog, 'utf8') : '').split('\n').filter((line) => line.includes(image)).length;
    const before = calls();
    const run = await unlock(image, state);
    expect([run.status, run.stderr, run.stdout.toString('hex')]).toEqual([0, '', key.toString('hex')]);
    expect(calls()).toBe(before);

    // One byte of the secondary header's JSON area: cryptsetup still opens the header (it uses the primary).
    const fd = openSync(image, 'r+');
    const head = Buffer.alloc(16);
    readSync(fd, head, 0, 16, 0);
    const byte = Buffer.alloc(1);
    const at = Number(head.readBigUInt64BE(8)) + 4096 + 2;
    readSync(fd, byte, 0, 1, at);
    writeSync(fd, Buffer.from([byte[0]! ^ 0x01]), 0, 1, at);
    closeSync(fd);
    const fallback = await unlock(image, state);
    expect([fallback.status, fallback.stderr, fallback.stdout.toString('hex')]).toEqual([0, '', key.toString('hex')]);
    expect(calls()).toBe(before + 1);
  });

  it('no approvals of the envelope\'s group and epoch anywhere: refused, naming where it looked', async () => {
    const { image } = await installedDisk();
    const state = freshDir();
    await recordApprovals(state, signer.approvals(GROUP, EPOCH + 1, [await withClient(currentPcrSet)]));
    expectRefusal(await unlock(image, state), 1, new RegExp(`no approvals of group "${GROUP}" at epoch ${EPOCH} in the rackseal token, in ${state}`));
  });

  it('a tampered envelope in the token: refused by GCM, nothing printed', async () => {
    const { image } = await installedDisk();
    const state = freshDir();
    await recordApprovals(state, await approvalsOfNow());
    const token = (await readRacksealToken(image))!;
    const tampered = Buffer.from(token.envelope!);
    tampered[tampered.length - 20] = tampered[tampered.length - 20]! ^ 0x01;
    const { tokenId, ...rest } = token;
    await writeRacksealToken({ device: image }, { ...rest, envelope: tampered }, tokenId, true);
    expectRefusal(await unlock(image, state), 1, /envelope/i);
  });

  it('a token whose JSON was edited (a field rackseal does not write): refused, pointing at the token', async () => {
    const { image } = await installedDisk();
    const exported = JSON.parse(execFileSync('cryptsetup', ['token', 'export', '--token-id', '0', image]).toString()) as Record<string, unknown>;
    spawnSync('cryptsetup', ['token', 'import', '--json-file=-', '--token-id', '0', '--token-replace', image], { input: JSON.stringify({ ...exported, extra: 1 }) });
    expectRefusal(await unlock(image, freshDir()), 1, /rackseal token 0 is not one rackseal writes \(unknown field "extra"\)/);
  });

  it('a LUKS2 device without a rackseal token, a file that is not LUKS, a device that does not exist: refused', async () => {
    const { image } = luksImage();
    expectRefusal(await unlock(image, freshDir()), 1, new RegExp(`${image} has no rackseal token`));
    const plain = join(freshDir(), 'plain.img');
    writeFileSync(plain, randomBytes(1 << 20));
    expectRefusal(await unlock(plain, freshDir()), 2, new RegExp(`${plain} is not a readable LUKS2 device`));
    expectRefusal(await unlock(join(root, 'absent.img'), freshDir()), 2, /is not a readable LUKS2 device/);
  });

  it('no TPM (nothing listening, a device node that does not exist): refused, naming it', async () => {
    const { image } = await installedDisk();
    const state = freshDir();
    await recordApprovals(state, await approvalsOfNow());
    const port = await freePort();
    const refusedTcp = await unlock(image, state, ['--tpm', `swtpm:127.0.0.1:${port}`]);
    expectRefusal(refusedTcp, 2, new RegExp(`127\\.0\\.0\\.1:${port}`));
    expectRefusal(await unlock(image, state, ['--tpm', '/dev/rackseal-no-tpm']), 2, /\/dev\/rackseal-no-tpm/);
  });

  it('policy withdraw: the same generation re-wrapped at the next epoch replaces the token\'s envelope (keyslots untouched); the withdrawn state no longer unlocks; an older epoch is never taken back; a key that does not open the slot is refused', async () => {
    await fixture.at(0).reboot();
    const stateA = await withClient(currentPcrSet);
    const { image, key, envelope: epoch1Envelope } = await installedDisk();
    const config = parseAgentConfig({ installs: { 'root-disk': { kind: 'disk', device: image } } }, 'agent.yaml');
    const slots = () => Object.keys((JSON.parse(execFileSync('cryptsetup', ['luksDump', '--dump-json-metadata', image]).toString()) as { keyslots: object }).keyslots).sort();
    const slotsBefore = slots();
    const payload = (k: Buffer) => encodeDeliveryPayload({ format: 1, kind: 'disk', key: k.toString('base64'), generation: 1 });
    const deliver = (envelope: Buffer, k: Buffer, approvals?: ApprovalsResponse) =>
      install({ name: 'root-disk', kind: 'disk', version: 1, deliveryId: 'delivery-withdraw', payload: parseDeliveryPayload(payload(k), (b) => new SecretBytes(b)), envelope, ...(approvals === undefined ? {} : { approvals }) }, config);
    const wrapAt = (epoch: number, k: Buffer) => wrapToApprovedPcrPolicy({ ekPublic: machine.ekPublic, group: GROUP, epoch, signingKeyName: signer.name }, payload(k), { deliveryId: 'delivery-withdraw', secretVersion: 1 });

    // State B approved beside A at epoch 1 (policy promote); the machine boots B.
    await fixture.at(0).extendPcr(7, 'sha256', randomBytes(32).toString('hex'));
    const stateB = await withClient(currentPcrSet);
    const state = freshDir();
    const epoch1 = signer.approvals(GROUP, 1, [stateA, stateB]);
    const epoch2 = signer.approvals(GROUP, 2, [stateB]);
    await recordApprovals(state, epoch1, { devices: [{ device: image }] });
    // A copy of the disk taken before the withdrawal (a backup, an image copied off the machine).
    const copy = join(freshDir(), 'copy.img');
    copyFileSync(image, copy);

    // policy withdraw A: epoch 2 approves B only; the workers seal the same key again at epoch 2.
    await recordApprovals(state, epoch2, { devices: [{ device: image }] });
    const epoch2Envelope = wrapAt(2, key);
    const report = await deliver(epoch2Envelope, key, epoch2);
    expect(report.disk).toMatchObject({ changed: true, generation: 1, retired: [], envelope: { group: GROUP, fromEpoch: 1, toEpoch: 2 } });
    const token = (await readRacksealToken(image))!;
    expect([token.envelope!.equals(epoch2Envelope), token.approvals]).toEqual([true, epoch2]);
    expect(slots()).toEqual(slotsBefore);
    // The state dir keeps no epoch-1 signature once no configured disk needs one.
    expect(await dropOlderEpochs(state, GROUP, 2, [{ device: copy }])).toEqual([]);
    expect(await dropOlderEpochs(state, GROUP, 2, [{ device: image }])).toEqual([1]);
    expect(JSON.parse(readFileSync(join(state, APPROVALS_CACHE_FILE), 'utf8')).entries.map((e: { approvals: ApprovalsResponse }) => e.approvals.epoch)).toEqual([2]);

    // State B: the same key, offline, from the token alone and from the state dir alone.
    const inB = await unlock(image, join(root, 'no-such-state-dir'));
    expect([inB.status, inB.stderr, inB.stdout.toString('hex')]).toEqual([0, '', key.toString('hex')]);
    const { tokenId, approvals: _kept, ...bare } = token;
    await writeRacksealToken({ device: image }, bare, tokenId, true);
    const fromCache = await unlock(image, state);
    expect([fromCache.status, fromCache.stdout.toString('hex')]).toEqual([0, key.toString('hex')]);
    await writeRacksealToken({ device: image }, { ...bare, approvals: epoch2 as unknown as Record<string, unknown> }, tokenId, true);

    // Re-applied, or the epoch-1 round arriving late: nothing changes (never a downgrade).
    expect((await deliver(epoch2Envelope, key, epoch2)).disk).toMatchObject({ changed: false, generation: 1 });
    expect((await deliver(epoch1Envelope, key, epoch1)).disk).toMatchObject({ changed: false, generation: 1 });
    expect((await readRacksealToken(image))!.envelope!.equals(epoch2Envelope)).toBe(true);
    // A newer epoch holding a key that is not the keyslot's: refused, the token as it was.
    await expect(deliver(wrapAt(3, randomBytes(32)), randomBytes(32))).rejects.toMatchObject({ code: 'disk.key-mismatch' });
    expect((await readRacksealToken(image))!.envelope!.equals(epoch2Envelope)).toBe(true);
    expect(slots()).toEqual(slotsBefore);

    // Reboot into the withdrawn state A: refused, with every approval the token and the state dir hold.
    await fixture.at(0).reboot();
    expect(await withClient(currentPcrSet)).toEqual(stateA);
    const args = ['unlock', '--device', image, '--tpm', tpm, '--state-dir', state, '--config', join(root, 'no-config.yaml')];
    expectRefusal(await unlock(image, state), 1, new RegExp(`no approval for the current PCR state \\(group "${GROUP}", epoch 2, 1 approval\\(s\\) checked\\)`));
    expect(opensThroughPipe(image, args)).not.toBe(0);
    // What remains: the copy taken before the withdrawal still carries the epoch-1 envelope and its
    // approvals, and opens in A (docs/guide/threat-model.md: rotate the disk secret for such copies).
    const copied = await unlock(copy, join(root, 'no-such-state-dir'));
    expect([copied.status, copied.stdout.toString('hex')]).toEqual([0, key.toString('hex')]);
  });

  it('usage: no --device, or two ways of naming it', async () => {
    const tmp = freshDir();
    const none = await agent(['unlock', '--config', join(root, 'no-config.yaml')], tmp);
    expect([none.status, none.stdout.length, none.stderr]).toEqual([2, 0, 'rackseal-agent: unlock: --device is required (the LUKS2 device whose rackseal token holds the key)\n']);
    const both = await agent(['unlock', '--device', '/dev/x', '--crypttab-peer', '1-2-0', '--config', join(root, 'no-config.yaml')], tmp);
    expect([both.status, both.stdout.length, both.stderr]).toEqual([2, 0, 'rackseal-agent: unlock: --device and --crypttab-peer name the device two ways; give one\n']);
  });

  afterAll(() => {
    // Every cryptsetup call of every run, and none with a key in its argv.
    const log = readFileSync(argvLog);
    expect(log.toString('utf8')).toContain('luksDump');
    expectNoKey(log);
  });
});
