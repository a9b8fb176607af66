import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { openTransport, TpmClient } from '@rackseal/tpm2';
import { parseEnvelope } from '@rackseal/wrapping';
import { approvalsForEnvelope } from '../apps/agent/src/unlock/approvals-cache';
import { StateDir } from '../apps/agent/src/state/state-dir';
import { recordApprovals } from '../apps/agent/src/unlock/approvals-store';
import { unwrapEnvelope } from '../apps/agent/src/unwrap/unwrap-envelope';
import { installedDisk } from '../test/support/rackseal-disk';
import type { SwtpmMachine } from '../test/support/swtpm';
import { APPROVAL_BANK, APPROVAL_PCRS, ApprovalSigner, currentPcrSet, provisionMachine } from '../test/support/wrapping';
import { TimingTransport, withBenchSwtpm, withSwtpmClient } from './bench-swtpm';
import { summariseCpuProfile } from './cpu-profile';
import { formatTable, mean, median } from './measure';
import { processCpuMs } from './proc-cpu';

/** dist/bench/unlock.bench.js → dist/apps/agent/src/main.js (built by `npm run bench`). */
const AGENT = join(__dirname, '..', 'apps', 'agent', 'src', 'main.js');
/** The agent's startup snapshot (scripts/build-unlock-snapshot.mjs; `npm run bench` builds it after tsc). */
const UNLOCK_BLOB = join(__dirname, '..', 'apps', 'agent', 'unlock.blob');
const GROUP = 'rack-a';
const EPOCH = 1;
/** The same PCRs on both sides: the approval helpers' selection (sha256:0,7), as clevis's tpm2 pin config. */
/** Node's own modules the unlock cannot do without on swtpm (OpenSSL, the TCP socket, file handles). */
const NODE_BUILTINS = "require('node:crypto'); require('node:net'); require('node:fs/promises')";
const CLEVIS_TPM2_CONFIG = JSON.stringify({ pcr_bank: APPROVAL_BANK, pcr_ids: APPROVAL_PCRS.join(',') });

interface Sample {
  readonly wallMs: number;
  /** user + system of the command and every child it waited for (bash `times`, getrusage(RUSAGE_CHILDREN)). */
  readonly cpuMs: number;
  /** swtpm's CPU over the run, from /proc (a process apart: no one's child). */
  readonly swtpmMs: number;
}

/**
 * Runs a command under bash, which takes the wall time around the command alone ($EPOCHREALTIME,
 * so bash's own start is not counted) and reports its children's CPU with `times` (the command and
 * all it waited for: cryptsetup, jose, tpm2-tools). Stdin from a file, stdout to a file checked by
 * the caller; a failure stops the bench rather than count.
 */
const TIMED = `in="$1" out="$2"; shift 2
s=$EPOCHREALTIME
"$@" <"$in" >"$out"
rc=$?
e=$EPOCHREALTIME
echo "$rc $s $e"
times
`;

interface Command {
  readonly label: string;
  readonly argv: readonly string[];
  readonly stdin?: string;
  readonly env?: Record<string, string>;
  /** What stdout must hold (the key); undefined: anything. */
  readonly expect?: Buffer;
}

function timeRun(command: Command, scratch: string, swtpmPid: number): Sample {
  const out = join(scratch, 'out');
  const swtpmBefore = processCpuMs(swtpmPid) ?? 0;
  const run = spawnSync('bash', ['--norc', '--noprofile', '-c', TIMED, 'timed', command.stdin ?? '/dev/null', out, ...command.argv], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...command.env },
    encoding: 'utf8',
  });
  const swtpmMs = (processCpuMs(swtpmPid) ?? 0) - swtpmBefore;
  const [status, started, ended] = (run.stdout.split('\n')[0] ?? '').split(' ');
  if (run.status !== 0 || status !== '0') {
    throw new Error(`${command.label} exited with ${status ?? run.status}: ${run.stderr}`);
  }
  if (command.expect !== undefined && !readFileSync(out).equals(command.expect)) {
    throw new Error(`${command.label} printed something else than the key`);
  }
  // `times`: the shell's user and system time, then its children's ("0m0.012s 0m0.004s").
  const children = (run.stdout.split('\n')[2] ?? '').split(' ').map(seconds);
  return { wallMs: (Number(ended) - Number(started)) * 1000, cpuMs: children.reduce((a, b) => a + b, 0), swtpmMs };
}

/** Runs `unlock` once with a hook that lists require.cache, and writes a script requiring those files. */
function loadOnlyScript(unlock: Command, scratch: string): { script: string; files: number } {
  const list = join(scratch, 'loaded.json');
  const hook = join(scratch, 'list-hook.js');
  writeFileSync(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(require.cache).filter((f) => f !== __filename))));\n`);
  const [node, ...args] = unlock.argv;
  const run = spawnSync(node!, ['--require', hook, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (run.status !== 0) {
    throw new Error(`unlock with the list hook exited with ${run.status}: ${run.stderr}`);
  }
  const files = (JSON.parse(readFileSync(list, 'utf8')) as string[]).filter((f) => f !== AGENT);
  const script = join(scratch, 'load-only.js');
  writeFileSync(script, files.map((f) => `require(${JSON.stringify(f)});`).join('\n') + '\n');
  return { script, files: files.length };
}

function seconds(text: string): number {
  const match = /^([0-9]+)m([0-9.]+)s$/.exec(text);
  if (match === null) {
    throw new Error(`bash times printed ${JSON.stringify(text)}`);
  }
  return (Number(match[1]) * 60 + Number(match[2])) * 1000;
}

/**
 * Issue 14's boot-unlock benchmark: `rackseal-agent unlock --device IMG` against clevis's tpm2 pin
 * on the same swtpm, the same PCRs (sha256:0,7) and the same LUKS2 image, and against the floor of
 * bare Node start-up plus swtpm's own time for the TPM commands unlock sends. All commands
 * alternate run by run; medians.
 */
export async function unlockBench(runs = Number(process.env.RACKSEAL_BENCH_RUNS ?? 30)): Promise<string> {
  // clevis is the comparison, not a dependency of the product: prepare-env does not install it.
  for (const tool of ['clevis', 'clevis-decrypt-tpm2', 'clevis-luks-bind']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) {
      throw new Error(`the unlock bench needs ${tool}: as root, apt-get install -y clevis clevis-tpm2 clevis-luks (bench/README.md)`);
    }
  }
  const scratch = mkdtempSync(join(tmpdir(), 'rackseal-unlock-bench-'));
  try {
    return await withBenchSwtpm((swtpm) => benchOn(swtpm, scratch, runs));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function benchOn(swtpm: SwtpmMachine, scratch: string, runs: number): Promise<string> {
  const swtpmPid = swtpm.pid;
  if (swtpmPid === undefined) {
    throw new Error('swtpm has no pid');
  }
  const withClient = <T>(work: (client: TpmClient) => Promise<T>): Promise<T> => withSwtpmClient(swtpm.device, work);
  const machine = await withClient(provisionMachine);
  const signer = new ApprovalSigner();
  const disks = join(scratch, 'disks');
  mkdirSync(disks, { mode: 0o700 });
  const disk = await installedDisk(disks, machine, signer, GROUP, EPOCH);
  const approvals = signer.approvals(GROUP, EPOCH, [await withClient(currentPcrSet)]);
  // As a machine keeps them: the approvals in the state dir and in the token (what the daemon does).
  // identity.json too (which EK), as enrollment leaves it: unlock reads it before the TPM.
  const stateDir = join(scratch, 'state');
  await (await StateDir.open(stateDir, { create: true })).saveIdentity({
    serverUrl: 'https://rackseal.example',
    machineId: 'bench-machine',
    registrationId: 'bench-registration',
    credentialId: '0123456789abcdef0123456789abcdef',
    ekPubHash: machine.ekPubHash,
    enrolledAt: new Date(0).toISOString(),
  });
  await recordApprovals(stateDir, approvals, { devices: [{ device: disk.image }] });
  const config = join(scratch, 'agent.yaml');
  writeFileSync(config, `tpm: ${swtpm.device}\nstateDir: ${stateDir}\ninstalls:\n  root-disk:\n    kind: disk\n    device: ${disk.image}\n    enrollKeyFile: ${join(dirname(disk.image), 'enroll.key')}\n`);

  // clevis: a slot of its own in the same header (authorized by slot 0's enrollment key file), and a plain JWE.
  const clevisEnv = { TPM2TOOLS_TCTI: swtpm.tcti };
  const env = { ...process.env, ...clevisEnv };
  execFileSync('clevis', ['luks', 'bind', '-y', '-k', join(dirname(disk.image), 'enroll.key'), '-d', disk.image, 'tpm2', CLEVIS_TPM2_CONFIG], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const clevisSlot = Number(/^([0-9]+): tpm2 /m.exec(execFileSync('clevis', ['luks', 'list', '-d', disk.image], { env, encoding: 'utf8' }))?.[1] ?? NaN);
  const clevisKey = execFileSync('clevis', ['luks', 'pass', '-d', disk.image, '-s', String(clevisSlot)], { env });
  // `clevis luks pass` proves the passphrase with `cryptsetup open --test-passphrase`: the slot's
  // KDF made as cheap as the rackseal slot's (PBKDF2, 1000 iterations), so that proof costs a
  // cryptsetup start, not cryptsetup's default Argon2id.
  execFileSync('cryptsetup', ['luksConvertKey', '--batch-mode', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-slot', String(clevisSlot), '--key-file=-', disk.image], { input: clevisKey });
  const jwe = join(scratch, 'key.jwe');
  writeFileSync(jwe, execFileSync('clevis', ['encrypt', 'tpm2', CLEVIS_TPM2_CONFIG], { env, input: disk.key }));

  const commands: Command[] = [
    { label: '`rackseal-agent unlock --device IMG`', argv: [process.execPath, AGENT, 'unlock', '--device', disk.image, '--config', config], expect: disk.key },
    // The same unlock from the startup snapshot, as the initramfs runs it (deploy/initramfs-tools).
    {
      label: '`node --snapshot-blob unlock.blob -- unlock --device IMG`',
      argv: [process.execPath, '--snapshot-blob', UNLOCK_BLOB, '--', 'unlock', '--device', disk.image, '--config', config],
      expect: disk.key,
    },
    // What `clevis luks unlock -d IMG` does before its `cryptsetup open` (clevis-luks-unlock: clevis_luks_unlock_device, no key check).
    {
      label: '`clevis luks unlock` up to `cryptsetup open`',
      argv: ['bash', '--norc', '-c', '. clevis-luks-common-functions && clevis_luks_unlock_device "$0"', disk.image],
      env: clevisEnv,
      expect: clevisKey,
    },
    { label: `\`clevis luks pass -d IMG -s ${clevisSlot}\``, argv: ['clevis', 'luks', 'pass', '-d', disk.image, '-s', String(clevisSlot)], env: clevisEnv, expect: clevisKey },
    { label: '`clevis decrypt < JWE`', argv: ['clevis', 'decrypt'], stdin: jwe, env: clevisEnv, expect: disk.key },
    // The Node modules any client of swtpm over TCP loads (crypto, net, fs/promises), not in `node -e 0`.
    { label: `\`node -e "${NODE_BUILTINS}"\``, argv: [process.execPath, '-e', NODE_BUILTINS] },
    // The snapshot's start alone: deserialize, run the command line, print the version.
    { label: '`node --snapshot-blob unlock.blob -- --version`', argv: [process.execPath, '--snapshot-blob', UNLOCK_BLOB, '--', '--version'] },
    { label: '`node -e 0`', argv: [process.execPath, '-e', '0'] },
  ];
  // The module-loading part of unlock alone: the files one unlock loads (as require.cache lists them),
  // required by a script that then exits, without running anything (main.js aside: it runs the CLI).
  const loadOnly = loadOnlyScript(commands[0]!, scratch);
  commands.splice(commands.length - 3, 0, { label: `\`node\` requiring the ${loadOnly.files} files unlock loads, nothing run`, argv: [process.execPath, loadOnly.script] });
  // UNLOCK_BENCH_BEFORE=…/dist/apps/agent/src/main.js: another build's agent in the same rounds (before/after).
  const before = process.env.UNLOCK_BENCH_BEFORE;
  if (before !== undefined) {
    commands.splice(2, 0, { label: `\`rackseal-agent unlock\` (${before})`, argv: [process.execPath, before, 'unlock', '--device', disk.image, '--config', config], expect: disk.key });
  }
  // UNLOCK_BENCH_BEFORE_BLOB=…/unlock.blob: another build's startup snapshot in the same rounds (its unlock and its start alone).
  const beforeBlob = process.env.UNLOCK_BENCH_BEFORE_BLOB;
  if (beforeBlob !== undefined) {
    commands.splice(
      2,
      0,
      { label: `\`node --snapshot-blob ${beforeBlob} -- unlock --device IMG\``, argv: [process.execPath, '--snapshot-blob', beforeBlob, '--', 'unlock', '--device', disk.image, '--config', config], expect: disk.key },
      { label: `\`node --snapshot-blob ${beforeBlob} -- --version\``, argv: [process.execPath, '--snapshot-blob', beforeBlob, '--', '--version'] },
    );
  }
  const clevisAt = commands.findIndex((c) => c.label.startsWith('`clevis luks unlock`'));

  // The TPM part of the floor: the commands unlock sends (the same unwrapEnvelope, on a warm
  // client in this process), their round trips summed. A byte replay is not possible: the
  // salted sessions' HMACs cover the TPM's fresh nonces.
  const envelope = disk.envelope;
  const transport = parseEnvelope(envelope).transport;
  if (transport.binding !== 'pcr-sealed') {
    throw new Error('the bench disk is not pcr-sealed');
  }
  const envelopeApprovals = approvalsForEnvelope([approvals], transport.group, transport.epoch)!;
  const tpmRoundTrips = async (): Promise<{ ms: number; commands: number; swtpmMs: number }> => {
    const timing = new TimingTransport(await openTransport(swtpm.device));
    const client = new TpmClient(timing);
    const swtpmBefore = processCpuMs(swtpmPid) ?? 0;
    try {
      await unwrapEnvelope(client, envelope, { ekPubHash: transport.recipient.toString('hex') }, { approvals: envelopeApprovals });
    } finally {
      await client.close();
    }
    return { ms: timing.tpmMs, commands: timing.commands, swtpmMs: (processCpuMs(swtpmPid) ?? 0) - swtpmBefore };
  };

  for (const command of commands) {
    timeRun(command, scratch, swtpmPid); // warm the page cache
  }
  const profiles = process.env.UNLOCK_BENCH_PROFILE === '1' ? profileUnlocks(commands.slice(0, 2), scratch, swtpmPid) : '';
  for (let i = 0; i < 20; i += 1) {
    await tpmRoundTrips(); // and V8's compile of the client path
  }
  const samples = commands.map(() => [] as Sample[]);
  const roundTrips: { ms: number; commands: number; swtpmMs: number }[] = [];
  for (let i = 0; i < runs; i += 1) {
    commands.forEach((command, c) => samples[c]!.push(timeRun(command, scratch, swtpmPid)));
    roundTrips.push(await tpmRoundTrips());
  }
  const wall = samples.map((s) => median(s.map((x) => x.wallMs)));
  const cpu = samples.map((s) => median(s.map((x) => x.cpuMs)));
  const swtpmCpu = samples.map((s) => mean(s.map((x) => x.swtpmMs)));
  const tpmMs = median(roundTrips.map((r) => r.ms));
  const tpmCommands = roundTrips[0]!.commands;
  const node = commands.length - 1;
  const builtins = commands.length - 3;
  const floorWall = wall[node]! + tpmMs;
  const builtinsFloorWall = wall[builtins]! + tpmMs;
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const rows = commands.map((command, c) => [command.label, ms(wall[c]!), ms(cpu[c]!), ms(swtpmCpu[c]!), c === 0 ? '1.00×' : `${(wall[c]! / wall[0]!).toFixed(2)}×`]);
  const swtpmFloorCpu = ms(mean(roundTrips.map((r) => r.swtpmMs)));
  rows.push([`floor: \`node -e 0\` + ${tpmCommands} TPM round trips (${ms(tpmMs)})`, ms(floorWall), ms(cpu[node]!), swtpmFloorCpu, `${(floorWall / wall[0]!).toFixed(2)}×`]);
  rows.push([`\`node -e "${NODE_BUILTINS}"\` + the round trips`, ms(builtinsFloorWall), ms(cpu[builtins]!), swtpmFloorCpu, `${(builtinsFloorWall / wall[0]!).toFixed(2)}×`]);
  const header = ['command (to the key on stdout)', 'wall (median)', 'CPU, children included (median)', 'swtpm CPU (mean)', 'wall / rackseal'];
  const ratio = (c: number) => `${(wall[c]! / wall[0]!).toFixed(2)}×`;
  const summary = [
    `clevis / rackseal (wall): luks unlock path ${ratio(clevisAt)}, luks pass ${ratio(clevisAt + 1)}, decrypt ${ratio(clevisAt + 2)} (target ≥ 1.5×)`,
    `rackseal / floor (wall): ${(wall[0]! / floorWall).toFixed(2)}× (target ≤ 1.2×); CPU: rackseal ${ms(cpu[0]!)} against node -e 0 ${ms(cpu[node]!)} (${(cpu[0]! / cpu[node]!).toFixed(2)}×)`,
    `snapshot / floor (wall): ${(wall[1]! / floorWall).toFixed(2)}× (target ≤ 1.2×); snapshot / files ${ratio(1)}; CPU ${ms(cpu[1]!)}; its start alone ${ms(wall[node - 1]! - wall[node]!)} above node -e 0`,
    `rackseal / (node with crypto, net, fs/promises + round trips) (wall): ${(wall[0]! / builtinsFloorWall).toFixed(2)}×`,
    `above node -e 0 (wall): unlock ${ms(wall[0]! - wall[node]!)}, of which loading its files ${ms(wall[builtins - 1]! - wall[node]!)} and the TPM round trips ${ms(tpmMs)}`,
    ...(before === undefined ? [] : [`before / after (wall): ${ratio(clevisAt - 1)}; CPU ${ms(cpu[clevisAt - 1]!)} → ${ms(cpu[0]!)}`]),
    ...(beforeBlob === undefined
      ? []
      : [
          `snapshot before / after (wall): unlock ${(wall[2]! / wall[1]!).toFixed(2)}×, ${ms(wall[2]!)} → ${ms(wall[1]!)} (CPU ${ms(cpu[2]!)} → ${ms(cpu[1]!)}); start alone ${ms(wall[3]!)} → ${ms(wall[node - 1]!)} (CPU ${ms(cpu[3]!)} → ${ms(cpu[node - 1]!)})`,
          `before blob / floor (wall): ${(wall[2]! / floorWall).toFixed(2)}×`,
        ]),
  ];
  return `${runs} alternating rounds; one swtpm (${swtpm.device}), one LUKS2 image with a rackseal token and a clevis slot, PCRs ${APPROVAL_BANK}:${APPROVAL_PCRS.join(',')}.\n\n${formatTable([header, ...rows])}\n\n${summary.join('\n')}${profiles}`;
}

/**
 * UNLOCK_BENCH_PROFILE=1: each unlock command run 20 times more under `node --cpu-prof` (sampling
 * every 100 µs: one unlock is a few dozen milliseconds), the profiles of each summed by subsystem.
 */
function profileUnlocks(commands: readonly Command[], scratch: string, swtpmPid: number): string {
  return commands
    .map((command, c) => {
      const dir = join(scratch, `profiles-${c}`);
      mkdirSync(dir);
      const [node, ...args] = command.argv;
      for (let i = 0; i < 20; i += 1) {
        timeRun({ ...command, argv: [node!, '--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir, ...args] }, scratch, swtpmPid);
      }
      return `\n\nCPU profile of ${command.label}, 20 runs summed:\n\n${summariseCpuProfile(readdirSync(dir).map((f) => join(dir, f)), 25)}`;
    })
    .join('');
}

if (require.main === module) {
  unlockBench().then(
    (table) => process.stdout.write(`${table}\n`),
    (error: unknown) => {
      process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
