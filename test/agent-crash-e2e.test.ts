/**
 * Issue 14's acceptance fault "the agent dies between luksAddKey and its ack", with the BUILT agent:
 * `rackseal-agent run` as a process on swtpm, a LUKS2 image file formatted by cryptsetup, the built
 * control plane and worker on real PostgreSQL and Redis (test/support/agent-e2e-fleet.ts). The agent
 * is killed with SIGKILL at four points of a disk delivery and one of a file delivery, then started
 * again; each time the delivery ends acked exactly once, the image holds exactly the keyslots it
 * should (no key added twice, the old key killed only after the new one opened its slot), and a
 * generation already on the disk is never applied again.
 *
 * The points are reached deterministically, with nothing in the product to enable:
 * - after luksAddKey, or before luksKillSlot: the agent finds `cryptsetup` through PATH, and the
 *   test puts first on the agent's PATH a script that runs the real cryptsetup, logs each call's
 *   arguments (keys go on stdin, never in argv) and, when the test armed it, stalls right after a
 *   successful luksAddKey or right before a luksKillSlot, saying so in a file;
 * - after the install, before the ack reaches the server: the agent talks to the control plane
 *   through a TCP proxy that holds the request carrying the ack — the next poll, which carries the
 *   acks of what the agent installed (test/support/held-acks.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRacksealToken } from '../apps/agent/src/install/luks-token';
import { useAgentE2eFleet } from './support/agent-e2e-fleet';
import type { CliRun } from './support/cli-runner';
import { HeldAcks } from './support/held-acks';
import { luksImage } from './support/rackseal-disk';
import { useSwtpms } from './support/swtpm';
import { TcpProxy } from './support/tcp-proxy';
import { pollUntil } from './support/wait';

jest.setTimeout(300_000);

const SERIAL = 'SN-A';
/** cryptsetup's exit code for "no key available with this passphrase". */
const CRYPTSETUP_NO_KEY = 2;

describe('the built agent killed (SIGKILL) mid-delivery converges after a restart', () => {
  const fixture = useSwtpms(1);
  const fleet = useAgentE2eFleet([SERIAL], fixture, 'rackseal-agent-crash-e2e-');
  const held = new HeldAcks();
  let proxy: TcpProxy;
  let dir: string;
  let shimDir: string;
  let image: string;
  let config: string;
  /** Which line of the cryptsetup log the current agent process started at. */
  let logMark = 0;

  const token = () => readRacksealToken(image);
  const keyslots = (): number[] =>
    Object.keys((JSON.parse(execFileSync('cryptsetup', ['luksDump', '--dump-json-metadata', image]).toString()) as { keyslots: Record<string, unknown> }).keyslots)
      .map(Number)
      .sort((a, b) => a - b);
  /** cryptsetup's exit status for `key` on the image (any keyslot, or `slot`); the test's own cryptsetup, not the agent's. */
  const opens = (key: Buffer, slot?: number): number | null =>
    spawnSync('cryptsetup', ['open', '--test-passphrase', ...(slot === undefined ? [] : [`--key-slot=${slot}`]), '--key-file=-', image], { input: key }).status;
  const diskKey = async (version: number) => (await fleet.material('root-disk', version, SERIAL)).key;
  /** Every cryptsetup call of the agents so far (their arguments), as the stand-in logged them. */
  const calls = (): string[] => (existsSync(join(shimDir, 'cryptsetup.log')) ? readFileSync(join(shimDir, 'cryptsetup.log'), 'utf8').split('\n').filter((l) => l !== '') : []);
  /** The running agent's cryptsetup calls. */
  const callsSinceStart = (): string[] => calls().slice(logMark);
  const delivery = async (name: string, version: number) => (await fleet.deliveries(name)).find((d) => d.version === version);
  const lines = () => fleet.lines(SERIAL);

  function startAgent(): void {
    logMark = calls().length;
    fleet.startAgent(SERIAL, config, { server: `http://127.0.0.1:${proxy.port}`, askEvery: '2s', env: { PATH: `${shimDir}:${process.env.PATH ?? ''}` } });
  }

  async function waitAttested(): Promise<void> {
    expect(await pollUntil(async () => lines().some((l) => l.outcome === 'attested'), (x) => x, 60_000)).toBe(true);
  }

  /** Arms the cryptsetup stall `point`, runs `start` (a create or a rotation), and resolves once the agent is stalled there. */
  async function stallAt(point: 'after-luksAddKey' | 'before-luksKillSlot', start: () => Promise<CliRun>): Promise<void> {
    await writeFile(join(shimDir, `stall-${point}`), '');
    const started = await start();
    expect([started.status, started.stderr]).toEqual([0, '']);
    expect(await pollUntil(async () => existsSync(join(shimDir, 'stalled')), (x) => x, 120_000, 100)).toBe(true);
  }

  /** SIGKILL for the agent (and the stalled cryptsetup stand-in it leaves behind), then a fresh agent. */
  async function crashAndRestart(): Promise<void> {
    await fleet.stopAgent(SERIAL, 'SIGKILL');
    const stalled = join(shimDir, 'stalled');
    if (existsSync(stalled)) {
      try {
        process.kill(Number(readFileSync(stalled, 'utf8').trim()), 'SIGKILL');
      } catch {
        // already gone
      }
      await rm(stalled);
    }
    held.release();
    startAgent();
    await waitAttested();
  }

  async function ackedOnce(name: string, version: number): Promise<string> {
    const row = await pollUntil(() => delivery(name, version), (d) => d?.state === 'acked', 120_000, 250);
    expect([row?.state, await fleet.ackCount(row!.id)]).toEqual(['acked', 1]);
    // The agent's line for it: acked by this agent, first time (written when the poll that carried the ack answers).
    const line = await pollUntil(async () => lines().find((l) => l.outcome === 'delivered' && l.deliveryId === row!.id), (l) => l !== undefined, 60_000, 250);
    expect(line).toMatchObject({ alreadyAcked: false });
    return row!.id;
  }

  beforeAll(async () => {
    dir = fleet.dir;
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(fleet.cp.baseUrl).port) }, held.interceptor);
    shimDir = join(dir, 'shim');
    await mkdir(shimDir);
    const real = execFileSync('sh', ['-c', 'command -v cryptsetup']).toString().trim();
    await writeFile(
      join(shimDir, 'cryptsetup'),
      [
        '#!/bin/sh',
        `dir='${shimDir}'`,
        'printf "%s\\n" "$*" >> "$dir/cryptsetup.log"',
        'stall() { rm -f "$dir/stall-$1"; echo $$ > "$dir/stalled.tmp"; mv "$dir/stalled.tmp" "$dir/stalled"; exec sleep 600; }',
        'if [ "$1" = luksKillSlot ] && [ -e "$dir/stall-before-luksKillSlot" ]; then stall before-luksKillSlot; fi',
        `'${real}' "$@"`,
        'status=$?',
        'if [ "$1" = luksAddKey ] && [ $status -eq 0 ] && [ -e "$dir/stall-after-luksAddKey" ]; then stall after-luksAddKey; fi',
        'exit $status',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const disks = join(dir, 'disks');
    await mkdir(disks);
    const luks = luksImage(disks);
    image = luks.image;
    config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      ['installs:', `  root-disk: {kind: disk, device: ${image}, enrollKeyFile: ${luks.enrollKeyFile}}`, `  app-token: {kind: opaque, path: ${fleet.files(SERIAL)}/app/token, mode: "0600"}`, ''].join('\n'),
    );
    startAgent();
    await waitAttested();
  }, 120_000);

  afterAll(async () => {
    await fleet.stopAgent(SERIAL, 'SIGKILL');
    const stalled = join(shimDir ?? '', 'stalled');
    if (shimDir !== undefined && existsSync(stalled)) {
      process.kill(Number(readFileSync(stalled, 'utf8').trim()), 'SIGKILL');
    }
    await proxy?.cut();
  });

  it('killed right after luksAddKey of the first key: the restarted agent takes the slot it added (none added twice), names it in the token and acks once', async () => {
    await stallAt('after-luksAddKey', () => fleet.cli('secrets', 'create', 'root-disk', '--kind', 'disk', '--group', 'workers', '--binding', 'pcr-sealed', '--size', '32'));
    const key = await diskKey(1);
    const atCrash = await token();
    const added = atCrash!.pending!.keyslot;
    // The key is in its slot; the token says so only as pending; the server has no ack.
    expect(atCrash).toMatchObject({ secret: 'root-disk', pending: { keyslot: added, generation: 1 }, retiring: [] });
    expect(atCrash!.keyslot).toBeUndefined();
    expect(keyslots()).toEqual([0, added]);
    expect(opens(key, added)).toBe(0);
    expect((await delivery('root-disk', 1))?.state).toBe('ready');

    await crashAndRestart();
    await ackedOnce('root-disk', 1);
    expect(await token()).toMatchObject({ secret: 'root-disk', keyslot: added, generation: 1, retiring: [] });
    expect((await token())!.pending).toBeUndefined();
    expect(keyslots()).toEqual([0, added]);
    expect(opens(key)).toBe(0);
    // The restarted agent proved the slot it found and added nothing.
    expect(callsSinceStart().filter((c) => c.startsWith('luksAddKey'))).toEqual([]);
    expect(callsSinceStart()).toContain(`open --test-passphrase --key-slot=${added} --key-file=- ${image}`);
  });

  it('a rotation killed right after luksAddKey of the new key: the old key still opens the disk then; after the restart the new slot is proven before the old one is killed, and acked once', async () => {
    const old = await diskKey(1);
    const oldSlot = (await token())!.keyslot!;
    await stallAt('after-luksAddKey', () => fleet.cli('secrets', 'rotate', 'root-disk', '--no-wait'));
    const fresh = await diskKey(2);
    const atCrash = await token();
    const added = atCrash!.pending!.keyslot;
    expect(atCrash).toMatchObject({ keyslot: oldSlot, generation: 1, pending: { keyslot: added, generation: 2 }, retiring: [] });
    expect(keyslots()).toEqual([0, oldSlot, added].sort((a, b) => a - b));
    expect([opens(old, oldSlot), opens(fresh, added)]).toEqual([0, 0]);
    expect((await delivery('root-disk', 2))?.state).toBe('ready');

    await crashAndRestart();
    await ackedOnce('root-disk', 2);
    expect(await token()).toMatchObject({ keyslot: added, generation: 2, retiring: [] });
    expect(keyslots()).toEqual([0, added]);
    expect([opens(fresh), opens(old)]).toEqual([0, CRYPTSETUP_NO_KEY]);
    const restarted = callsSinceStart();
    expect(restarted.filter((c) => c.startsWith('luksAddKey'))).toEqual([]);
    const proven = restarted.indexOf(`open --test-passphrase --key-slot=${added} --key-file=- ${image}`);
    const killed = restarted.indexOf(`luksKillSlot --batch-mode --key-file=- ${image} ${oldSlot}`);
    expect(proven).toBeGreaterThanOrEqual(0);
    expect(killed).toBeGreaterThan(proven);
  });

  it('a rotation killed after the token names the new key and before the old slot is killed: the restart kills it with the new key, adds nothing, and acks once', async () => {
    const old = await diskKey(2);
    const oldSlot = (await token())!.keyslot!;
    await stallAt('before-luksKillSlot', () => fleet.cli('secrets', 'rotate', 'root-disk', '--no-wait'));
    const fresh = await diskKey(3);
    const atCrash = await token();
    const current = atCrash!.keyslot!;
    expect(atCrash).toMatchObject({ generation: 3, retiring: [oldSlot] });
    expect(keyslots()).toEqual([0, oldSlot, current].sort((a, b) => a - b));
    expect([opens(old, oldSlot), opens(fresh, current)]).toEqual([0, 0]);
    expect((await delivery('root-disk', 3))?.state).toBe('ready');

    await crashAndRestart();
    const id = await ackedOnce('root-disk', 3);
    expect(await token()).toMatchObject({ keyslot: current, generation: 3, retiring: [] });
    expect(keyslots()).toEqual([0, current]);
    expect([opens(fresh), opens(old)]).toEqual([0, CRYPTSETUP_NO_KEY]);
    expect(callsSinceStart().filter((c) => c.startsWith('luksAddKey'))).toEqual([]);
    // Generation 3 was on the disk already: nothing new installed, only the retirement finished.
    expect(lines().find((l) => l.deliveryId === id && l.outcome === 'delivered')).toMatchObject({ changed: false, disk: { keyslot: current, generation: 3, retired: [oldSlot] } });
  });

  it('a rotation killed after the install, its ack held before the server: the restart finds the generation on the disk, changes nothing, and acks once', async () => {
    held.holdAllBut((await fleet.deliveries()).map((d) => d.id));
    expect((await fleet.cli('secrets', 'rotate', 'root-disk', '--no-wait')).status).toBe(0);
    const ackId = await pollUntil(async () => held.held[0], (id) => id !== undefined, 120_000, 100);
    const v4 = await delivery('root-disk', 4);
    expect([ackId, v4?.state, await fleet.ackCount(v4!.id)]).toEqual([v4!.id, 'ready', 0]);
    const fresh = await diskKey(4);
    const atCrash = await token();
    const current = atCrash!.keyslot!;
    expect(atCrash).toMatchObject({ generation: 4, retiring: [] });
    expect(keyslots()).toEqual([0, current]);
    expect([opens(fresh), opens(await diskKey(3))]).toEqual([0, CRYPTSETUP_NO_KEY]);

    await crashAndRestart();
    await ackedOnce('root-disk', 4);
    expect(await token()).toMatchObject({ keyslot: current, generation: 4, retiring: [] });
    expect(keyslots()).toEqual([0, current]);
    expect(opens(fresh)).toBe(0);
    // The generation on the disk stopped the re-application: no key added, no slot killed.
    expect(callsSinceStart().filter((c) => c.startsWith('luksAddKey') || c.startsWith('luksKillSlot'))).toEqual([]);
    expect(lines().find((l) => l.deliveryId === v4!.id && l.outcome === 'delivered')).toMatchObject({ changed: false, disk: { keyslot: current, generation: 4, retired: [] } });
  });

  it('a file install killed after the unwrap and the write, its ack held before the server: the restart rewrites nothing and acks once', async () => {
    const value = randomBytes(40);
    await writeFile(join(dir, 'app-token'), value);
    held.holdAllBut((await fleet.deliveries()).map((d) => d.id));
    expect((await fleet.cli('secrets', 'create', 'app-token', '--kind', 'opaque', '--group', 'workers', '--binding', 'pcr-sealed', '--value-file', join(dir, 'app-token'))).status).toBe(0);
    const ackId = await pollUntil(async () => held.held[0], (id) => id !== undefined, 120_000, 100);
    const row = await delivery('app-token', 1);
    expect([ackId, row?.state, await fleet.ackCount(row!.id)]).toEqual([row!.id, 'ready', 0]);
    const path = join(fleet.files(SERIAL), 'app/token');
    expect(readFileSync(path).equals(value)).toBe(true);

    await crashAndRestart();
    await ackedOnce('app-token', 1);
    expect(readFileSync(path).equals(value)).toBe(true);
    expect(lines().find((l) => l.deliveryId === row!.id && l.outcome === 'delivered')).toMatchObject({ changed: false });
  });
});
