/**
 * deploy/ (issue 14 item 4), exercised as far as this machine allows: the crypttab keyscript run
 * with the CRYPTTAB_* contract in a fake root (the real built agent against swtpm; a stub askpass
 * for the fallback), the initramfs-tools hook run with a stub hook-functions into a DESTDIR and the
 * agent it copied run from there, `systemd-analyze verify` of the units, and the AF_UNIX key file
 * path served as systemd would (Accept=yes: the connection as the agent's stdout, the peer bound to
 * \0<random>/cryptsetup/<volume> as systemd-cryptsetup binds it).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApprovalsResponse } from '@rackseal/node-api-contracts';
import { openTransport, TpmClient } from '@rackseal/tpm2';
import { APPROVALS_CACHE_FILE } from '../apps/agent/src/unlock/approvals-cache';
import { recordApprovals } from '../apps/agent/src/unlock/approvals-store';
import { AGENT_ENTRY } from './support/cli-runner';
import { installedDisk, type InstalledDisk, luksImage } from './support/rackseal-disk';
import { repoRoot } from './support/repo-root';
import { useSwtpms } from './support/swtpm';
import { ApprovalSigner, currentPcrSet, provisionMachine, type ProvisionedMachine } from './support/wrapping';

const DEPLOY = join(repoRoot(), 'deploy');
const KEYSCRIPT = join(DEPLOY, 'initramfs-tools/scripts/rackseal-keyscript');
const HOOK = join(DEPLOY, 'initramfs-tools/hooks/rackseal');
const GROUP = 'rack-b';
const ASKPASS_OUTPUT = 'recovery passphrase from askpass';

let root: string;
let counter = 0;
const freshDir = (): string => {
  const dir = join(root, `case-${++counter}`);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o700);
  return dir;
};
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rackseal-deploy-'));
  chmodSync(root, 0o700);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('deploy/ with the built agent, swtpm and real LUKS2 images', () => {
  const fixture = useSwtpms(1);
  const signer = new ApprovalSigner();
  let tpm: string;
  let machine: ProvisionedMachine;
  let approvals: ApprovalsResponse;
  let disk: InstalledDisk;
  /** A state dir with the approvals cached, as the daemon leaves it. */
  let state: string;
  let emptyConfig: string;

  beforeAll(async () => {
    tpm = fixture.at(0).device;
    const client = new TpmClient(await openTransport(tpm));
    try {
      machine = await provisionMachine(client);
      approvals = signer.approvals(GROUP, 1, [await currentPcrSet(client)]);
    } finally {
      await client.close();
    }
    disk = await installedDisk(freshDir(), machine, signer, GROUP, 1);
    state = freshDir();
    await recordApprovals(state, approvals);
    emptyConfig = join(freshDir(), 'agent.yaml');
    writeFileSync(emptyConfig, '');
  });

  describe('crypttab keyscript (initramfs-tools contract)', () => {
    /** A fake root: askpass that prints a passphrase and records its prompt, and an agent on PATH that records its calls. */
    function fakeRoot(): { dir: string; env: NodeJS.ProcessEnv; calls: string; prompt: string } {
      const dir = freshDir();
      mkdirSync(join(dir, 'lib/cryptsetup'), { recursive: true });
      mkdirSync(join(dir, 'bin'));
      const prompt = join(dir, 'askpass.prompt');
      const calls = join(dir, 'agent.calls');
      writeFileSync(join(dir, 'lib/cryptsetup/askpass'), `#!/bin/sh\nprintf '%s' "$1" > ${prompt}\nprintf '${ASKPASS_OUTPUT}'\n`, { mode: 0o755 });
      writeFileSync(
        join(dir, 'bin/rackseal-agent'),
        `#!/bin/sh\necho "$@" >> ${calls}\nexec ${process.execPath} ${AGENT_ENTRY} "$@" --tpm ${tpm} --state-dir ${state} --config ${emptyConfig}\n`,
        { mode: 0o755 },
      );
      return { dir, calls, prompt, env: { PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}`, RACKSEAL_ASKPASS: join(dir, 'lib/cryptsetup/askpass'), RACKSEAL_TPM_WAIT: '0' } };
    }

    /** The keyscript as cryptroot runs it: the key file field as $1, the CRYPTTAB_* variables, stdout captured as bytes. */
    function keyscript(env: NodeJS.ProcessEnv, source: string, tried = 0) {
      const result = spawnSync(KEYSCRIPT, ['none'], {
        env: { ...env, CRYPTTAB_NAME: 'cryptroot', CRYPTTAB_SOURCE: source, CRYPTTAB_KEY: 'none', CRYPTTAB_TRIED: String(tried), CRYPTTAB_OPTIONS: 'luks,keyscript=rackseal-keyscript' },
      });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString('utf8') };
    }

    it('prints exactly the key from the agent, and cryptsetup opens the image with it', () => {
      const fake = fakeRoot();
      const run = keyscript(fake.env, disk.image);
      expect([run.status, run.stdout.toString('hex'), run.stderr]).toEqual([0, disk.key.toString('hex'), '']);
      expect(readFileSync(fake.calls, 'utf8')).toBe(`unlock --device ${disk.image}\n`);
      expect(existsSync(fake.prompt)).toBe(false);
      expect(spawnSync('cryptsetup', ['open', '--test-passphrase', '--key-file=-', disk.image], { input: run.stdout }).status).toBe(0);
    });

    it('falls back to askpass when unlock fails: its output alone on stdout, the agent\'s reason on stderr', () => {
      const fake = fakeRoot();
      const { image } = luksImage(freshDir());
      const run = keyscript(fake.env, image);
      expect([run.status, run.stdout.toString('utf8')]).toEqual([0, ASKPASS_OUTPUT]);
      expect(run.stderr).toBe(`rackseal-agent: unlock: ${image} has no rackseal token: no rackseal disk key was installed on it (cryptsetup luksDump shows its tokens)\nrackseal: no key for cryptroot from this TPM (see the line above); asking for its passphrase\n`);
      expect(readFileSync(fake.prompt, 'utf8')).toBe('Please unlock disk cryptroot: ');
    });

    it('after a refused key (CRYPTTAB_TRIED=1) asks a person at once, without calling the agent', () => {
      const fake = fakeRoot();
      const run = keyscript(fake.env, disk.image, 1);
      expect([run.status, run.stdout.toString('utf8')]).toEqual([0, ASKPASS_OUTPUT]);
      expect(existsSync(fake.calls)).toBe(false);
    });
  });

  describe('initramfs-tools hook', () => {
    interface HookRun {
      readonly dir: string;
      readonly destdir: string;
      readonly log: string;
      readonly config: string;
      readonly stateDir: string;
      readonly keyscriptCopy: string;
      readonly status: number | null;
      readonly stderr: string;
    }

    /** The hook run with a stub hook-functions into a fresh DESTDIR, for a config and state dir of its own. */
    function runHook(packageDir = repoRoot()): HookRun {
      const dir = freshDir();
      const destdir = join(dir, 'initramfs');
      mkdirSync(destdir);
      const log = join(dir, 'hook.log');
      // hook-functions as initramfs-tools has them, reduced to what the hook calls: each call logged.
      const functions = join(dir, 'hook-functions');
      writeFileSync(
        functions,
        [
          `copy_exec() { echo "copy_exec $1 $2" >> ${log}; mkdir -p "$DESTDIR$(dirname "$2")"; cp "$1" "$DESTDIR$2"; }`,
          `manual_add_modules() { echo "manual_add_modules $*" >> ${log}; }`,
          '',
        ].join('\n'),
      );
      const config = join(dir, 'agent.yaml');
      const stateDir = join(dir, 'state');
      mkdirSync(stateDir, { mode: 0o700 });
      writeFileSync(config, `tpm: ${tpm}\nstateDir: ${stateDir}\n`);
      for (const file of [APPROVALS_CACHE_FILE, 'identity.json', 'node-credential.sealed']) {
        writeFileSync(join(stateDir, file), file === APPROVALS_CACHE_FILE ? readFileSync(join(state, APPROVALS_CACHE_FILE)) : '{}', { mode: 0o600 });
      }
      rmSync(join(stateDir, 'identity.json')); // an unenrolled machine with a pre-wrapped disk: no identity yet
      const keyscriptCopy = join(dir, 'rackseal-keyscript');
      writeFileSync(keyscriptCopy, readFileSync(KEYSCRIPT), { mode: 0o755 });
      const run = spawnSync('sh', [HOOK], {
        env: { PATH: process.env.PATH, DESTDIR: destdir, RACKSEAL_HOOK_FUNCTIONS: functions, RACKSEAL_PACKAGE_DIR: packageDir, RACKSEAL_CONFIG: config, RACKSEAL_NODE: process.execPath, RACKSEAL_KEYSCRIPT: keyscriptCopy },
        encoding: 'utf8',
      });
      return { dir, destdir, log, config, stateDir, keyscriptCopy, status: run.status, stderr: run.stderr };
    }

    /**
     * The copied keyscript as cryptroot runs it, calling the agent the hook wrote (DESTDIR/usr/bin,
     * which runs DESTDIR's node, blob and files) through a shim that adds what the initramfs's
     * /etc/rackseal/agent.yaml would give it: the copied config, and the copied state dir.
     */
    function keyscriptInInitramfs(hook: HookRun, device: string) {
      const shim = join(hook.dir, 'rackseal-agent');
      writeFileSync(shim, `#!/bin/sh\nexec ${join(hook.destdir, 'usr/bin/rackseal-agent')} "$@" --config ${join(hook.destdir, 'etc/rackseal/agent.yaml')} --state-dir ${join(hook.destdir, hook.stateDir.slice(1))}\n`, { mode: 0o755 });
      const run = spawnSync(join(hook.destdir, 'lib/cryptsetup/scripts/rackseal-keyscript'), ['none'], {
        env: { PATH: process.env.PATH, RACKSEAL_AGENT: shim, RACKSEAL_TPM_WAIT: '0', RACKSEAL_ASKPASS: '/bin/false', CRYPTTAB_NAME: 'cryptroot', CRYPTTAB_SOURCE: device, CRYPTTAB_KEY: 'none', CRYPTTAB_TRIED: '0' },
        cwd: hook.destdir,
      });
      return { status: run.status, stdout: run.stdout, stderr: run.stderr.toString('utf8') };
    }

    it('copies node, the agent and its runtime modules, its startup snapshot, the TPM drivers, the config and the offline state; the copied agent unlocks', () => {
      const hook = runHook();
      const { destdir, stateDir, config } = hook;
      expect([hook.status, hook.stderr]).toEqual([0, '']);
      const cryptsetup = execFileSync('sh', ['-c', 'command -v cryptsetup']).toString().trim();
      expect(readFileSync(hook.log, 'utf8')).toBe(
        [`copy_exec ${process.execPath} /usr/bin/node`, `copy_exec ${cryptsetup} /sbin/cryptsetup`, 'manual_add_modules tpm_tis tpm_crb', `copy_exec ${hook.keyscriptCopy} /lib/cryptsetup/scripts/rackseal-keyscript`, ''].join('\n'),
      );
      expect(statSync(join(destdir, 'usr/bin/rackseal-agent')).mode & 0o777).toBe(0o755);
      expect(readFileSync(join(destdir, 'etc/rackseal/agent.yaml'), 'utf8')).toBe(readFileSync(config, 'utf8'));
      // The state dir: what offline unlock reads, not the sealed credential.
      expect(readdirSync(join(destdir, stateDir.slice(1)))).toEqual([APPROVALS_CACHE_FILE]);
      expect(statSync(join(destdir, stateDir.slice(1))).mode & 0o777).toBe(0o700);
      expect(existsSync(join(destdir, 'usr/lib/rackseal/node_modules/js-yaml/package.json'))).toBe(true);
      const copied = execFileSync('find', [join(destdir, 'usr/lib/rackseal/dist'), '-type', 'f']).toString().trim().split('\n');
      expect(copied.every((f) => f.endsWith('.js'))).toBe(true);
      expect(copied.some((f) => f.endsWith('unlock-snapshot.bundle.js'))).toBe(false);
      // The blob this build made, accepted by the node copied (the same binary here).
      expect(readFileSync(join(destdir, 'usr/lib/rackseal/unlock.blob')).equals(readFileSync(join(repoRoot(), 'dist/apps/agent/unlock.blob')))).toBe(true);

      // What the copy is for: the agent as the initramfs has it, from the copied files alone (the
      // DESTDIR is outside the repository, so no module resolves from its node_modules), with the
      // copied config and state dir.
      const unlock = spawnSync(process.execPath, [join(destdir, 'usr/lib/rackseal/dist/apps/agent/src/main.js'), 'unlock', '--device', disk.image, '--config', join(destdir, 'etc/rackseal/agent.yaml'), '--state-dir', join(destdir, stateDir.slice(1))], {
        env: { PATH: process.env.PATH },
        cwd: destdir,
      });
      expect([unlock.status, unlock.stderr.toString('utf8'), unlock.stdout.toString('hex')]).toEqual([0, '', disk.key.toString('hex')]);
    });

    it('the keyscript unlocks through the startup snapshot alone: the agent\'s files removed, the key printed and cryptsetup opens the image with it', () => {
      const hook = runHook();
      expect([hook.status, hook.stderr]).toEqual([0, '']);
      // Without its JavaScript files the agent can only run from the blob.
      rmSync(join(hook.destdir, 'usr/lib/rackseal/dist'), { recursive: true });
      rmSync(join(hook.destdir, 'usr/lib/rackseal/node_modules'), { recursive: true });
      const run = keyscriptInInitramfs(hook, disk.image);
      expect([run.status, run.stderr, run.stdout.toString('hex')]).toEqual([0, '', disk.key.toString('hex')]);
      expect(spawnSync('cryptsetup', ['open', '--test-passphrase', '--key-file=-', disk.image], { input: run.stdout }).status).toBe(0);
      // What a failed unlock says from the snapshot is what the files say: the same code.
      const { image } = luksImage(freshDir());
      const refused = spawnSync(join(hook.destdir, 'usr/bin/rackseal-agent'), ['unlock', '--device', image, '--config', join(hook.destdir, 'etc/rackseal/agent.yaml')], { env: { PATH: process.env.PATH } });
      expect([refused.status, refused.stdout.length, refused.stderr.toString('utf8')]).toEqual([
        1,
        0,
        `rackseal-agent: unlock: ${image} has no rackseal token: no rackseal disk key was installed on it (cryptsetup luksDump shows its tokens)\n`,
      ]);
    });

    it('a blob the node refuses (another V8 configuration: exit 14) or a missing blob: unlock runs from the files and prints the key once', () => {
      const hook = runHook();
      expect([hook.status, hook.stderr]).toEqual([0, '']);
      const blob = join(hook.destdir, 'usr/lib/rackseal/unlock.blob');
      // The same bundle made into a blob under other V8 flags: Node checks them before running anything.
      execFileSync(process.execPath, ['--hash-seed=1', '--snapshot-blob', blob, '--build-snapshot', join(repoRoot(), 'dist/apps/agent/src/unlock-snapshot.bundle.js')]);
      expect(spawnSync(process.execPath, ['--snapshot-blob', blob, '--', '--version']).status).toBe(14);
      const refused = keyscriptInInitramfs(hook, disk.image);
      expect([refused.status, refused.stdout.toString('hex')]).toEqual([0, disk.key.toString('hex')]);
      expect(refused.stderr).toMatch(/^Failed to load the startup snapshot because it was built with a different version of V8 or with different V8 configurations\.\n/);
      expect(refused.stderr).toMatch(/\nrackseal-agent: the startup snapshot did not start \(exit 14\); unlocking from the files\n$/);

      rmSync(blob);
      const missing = keyscriptInInitramfs(hook, disk.image);
      expect([missing.status, missing.stderr, missing.stdout.toString('hex')]).toEqual([0, '', disk.key.toString('hex')]);
    });

    it('a package whose blob this node refuses: the hook rebuilds it from the bundle with the node it copies, and it unlocks', () => {
      // The package as `npm install -g` leaves it, with a blob made under other V8 flags.
      const pkg = freshDir();
      writeFileSync(join(pkg, 'package.json'), readFileSync(join(repoRoot(), 'package.json')));
      execFileSync('cp', ['-R', join(repoRoot(), 'dist'), join(pkg, 'dist')]);
      mkdirSync(join(pkg, 'node_modules'));
      for (const module of ['js-yaml', 'argparse']) {
        execFileSync('cp', ['-R', join(repoRoot(), 'node_modules', module), join(pkg, 'node_modules', module)]);
      }
      execFileSync(process.execPath, ['--hash-seed=1', '--snapshot-blob', join(pkg, 'dist/apps/agent/unlock.blob'), '--build-snapshot', join(pkg, 'dist/apps/agent/src/unlock-snapshot.bundle.js')]);
      const hook = runHook(pkg);
      expect([hook.status, hook.stderr]).toEqual([0, `rackseal: ${pkg}/dist/apps/agent/unlock.blob was not made by ${process.execPath}: rebuilt from the bundle with it\n`]);
      rmSync(join(hook.destdir, 'usr/lib/rackseal/dist'), { recursive: true });
      const run = keyscriptInInitramfs(hook, disk.image);
      expect([run.status, run.stderr, run.stdout.toString('hex')]).toEqual([0, '', disk.key.toString('hex')]);
    });
  });

  describe('systemd units', () => {
    const unitText = (name: string) => readFileSync(join(DEPLOY, 'systemd', name), 'utf8');

    it('systemd-analyze verify finds nothing to say (the agent path replaced by a stub that exists)', () => {
      const dir = freshDir();
      const stub = join(dir, 'rackseal-agent');
      writeFileSync(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      for (const unit of ['rackseal-agent.service', 'rackseal-unlock.socket', 'rackseal-unlock@.service']) {
        writeFileSync(join(dir, unit), unitText(unit).replaceAll('/usr/bin/rackseal-agent', stub));
      }
      const verify = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'rackseal-agent.service'), join(dir, 'rackseal-unlock.socket'), join(dir, 'rackseal-unlock@.service')], { encoding: 'utf8' });
      expect([verify.status, verify.stderr, verify.stdout]).toEqual([0, '', '']);
    });

    it('hold the directives the design depends on', () => {
      const daemon = unitText('rackseal-agent.service');
      for (const line of ['ExecStart=/usr/bin/rackseal-agent run --config /etc/rackseal/agent.yaml', 'After=network-online.target', 'Wants=network-online.target', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'DeviceAllow=/dev/tpmrm0 rw', 'StateDirectory=rackseal-agent']) {
        expect(daemon.split('\n')).toContain(line);
      }
      const socket = unitText('rackseal-unlock.socket').split('\n');
      for (const line of ['ListenStream=/run/rackseal/unlock.sock', 'Accept=yes', 'SocketMode=0600']) {
        expect(socket).toContain(line);
      }
      const service = unitText('rackseal-unlock@.service').split('\n');
      for (const line of ['ExecStart=/usr/bin/rackseal-agent unlock --crypttab-peer %i --config /etc/rackseal/agent.yaml', 'StandardInput=socket', 'StandardOutput=socket', 'DeviceAllow=/dev/tpmrm0 rw']) {
        expect(service).toContain(line);
      }
    });
  });

  describe('the AF_UNIX key file (systemd-cryptsetup path), served as systemd serves it', () => {
    /**
     * systemd-cryptsetup's side: bind \0<random>/cryptsetup/<volume>, connect, read to EOF (python3,
     * which can bind a client socket); systemd's side: accept, start the agent with the connection
     * as stdin/stdout and `--crypttab-peer <n>-<peer pid>-<peer uid>`.
     */
    async function serve(volume: string, crypttab: string): Promise<{ peerOutput: Buffer; agentStderr: string; agentStatus: number | null }> {
      const dir = freshDir();
      const path = join(dir, 'unlock.sock');
      const peerScript = `import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\ns.bind('\\0' + 'R4nd0m' + '/cryptsetup/' + sys.argv[2])\ns.connect(sys.argv[1])\nd=b''\nwhile True:\n  c=s.recv(4096)\n  if not c: break\n  d+=c\nsys.stdout.buffer.write(d)\n`;
      let agentStderr = '';
      let agentStatus: number | null = null;
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(path, resolve));
      const peer = spawn('python3', ['-c', peerScript, path, volume], { stdio: ['ignore', 'pipe', 'inherit'] });
      const peerPid = peer.pid!;
      const out: Buffer[] = [];
      peer.stdout.on('data', (c: Buffer) => out.push(c));
      const agentDone = new Promise<void>((resolve) => {
        server.once('connection', (connection: Socket) => {
          connection.pause();
          const agent = spawn(process.execPath, [AGENT_ENTRY, 'unlock', '--crypttab-peer', `1-${peerPid}-0`, '--crypttab', crypttab, '--tpm', tpm, '--state-dir', state, '--config', emptyConfig], {
            stdio: [connection, connection, 'pipe'],
          });
          connection.destroy(); // the agent holds the connection now; ours would keep it open
          agent.stderr.setEncoding('utf8').on('data', (c: string) => (agentStderr += c));
          agent.once('close', (status) => {
            agentStatus = status;
            resolve();
          });
        });
      });
      await new Promise<void>((resolve) => peer.once('close', () => resolve()));
      await agentDone;
      server.close();
      return { peerOutput: Buffer.concat(out), agentStderr, agentStatus };
    }

    it('the volume from the peer\'s socket name, its device from the crypttab: the key, and only it, reaches the peer', async () => {
      const crypttab = join(freshDir(), 'crypttab');
      writeFileSync(crypttab, `# volume device key options\nother /dev/sdz1 none luks\ndata-vol ${disk.image} /run/rackseal/unlock.sock luks,headless=true\n`);
      const served = await serve('data-vol', crypttab);
      expect([served.agentStatus, served.agentStderr, served.peerOutput.toString('hex')]).toEqual([0, '', disk.key.toString('hex')]);
    });

    it('a volume the crypttab does not list: nothing on the connection, the reason on stderr', async () => {
      const crypttab = join(freshDir(), 'crypttab');
      writeFileSync(crypttab, `data-vol ${disk.image} /run/rackseal/unlock.sock luks\n`);
      const served = await serve('unknown-vol', crypttab);
      expect([served.agentStatus, served.peerOutput.length]).toEqual([1, 0]);
      expect(served.agentStderr).toBe(`rackseal-agent: unlock: ${crypttab} has no line for volume "unknown-vol"\n`);
    });
  });
});
