/**
 * Issue 14's boot-unlock target: `rackseal-agent unlock` within 1.2× of bare `node -e 0` plus its TPM
 * round trips (measured in bench/unlock.bench.ts; no timing here). What it costs above that floor is
 * mostly loading files, so, as test/agent-startup.test.ts does for `--help`, these tests hold the
 * structure: an offline unlock from the LUKS2 token loads exactly the files listed below, and of
 * node_modules only js-yaml's one-file build. A barrel import on the path (a library's index instead
 * of the file it needs) or an --online/installs module loaded eagerly shows up here as a changed
 * list (docs/decisions.md "Boot unlock loads single files").
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { openTransport, TpmClient } from '@rackseal/tpm2';
import { StateDir } from '../apps/agent/src/state/state-dir';
import { deterministicRandomBytes, WARM_RANDOM_LABEL } from '../apps/agent/src/unlock-snapshot-warm-tpm';
import { recordApprovals } from '../apps/agent/src/unlock/approvals-store';
import { AGENT_ENTRY } from './support/cli-runner';
import { installedDisk, type InstalledDisk } from './support/rackseal-disk';
import { repoRoot } from './support/repo-root';
import { useSwtpms } from './support/swtpm';
import { ApprovalSigner, currentPcrSet, provisionMachine } from './support/wrapping';

/** Every project file an offline `unlock --device IMG --config FILE` may load, relative to dist/. */
const UNLOCK_FILES = [
  'apps/agent/src/commands/agent-config-defaults.js',
  'apps/agent/src/commands/duration.js',
  'apps/agent/src/commands/tpm.command.js',
  'apps/agent/src/commands/unlock.action.js',
  'apps/agent/src/enrollment/choose-ek.js',
  'apps/agent/src/install/agent-config-file.js',
  'apps/agent/src/install/agent-config.js',
  'apps/agent/src/install/install-errors.js',
  'apps/agent/src/install/luks-token-format.js',
  'apps/agent/src/install/luks2-header.js',
  'apps/agent/src/main.js',
  'apps/agent/src/state/node-identity.js',
  'apps/agent/src/state/state-dir.js',
  'apps/agent/src/state/state-errors.js',
  'apps/agent/src/state/state-files.js',
  'apps/agent/src/tpm-device.js',
  'apps/agent/src/unlock/approvals-cache.js',
  'apps/agent/src/unlock/unlock-disk.js',
  'apps/agent/src/unlock/unlock-errors.js',
  'apps/agent/src/unwrap/pcr-sealed-unwrap.js',
  'apps/agent/src/unwrap/unwrap-envelope.js',
  'apps/agent/src/unwrap/unwrap-errors.js',
  'libs/api-contracts/src/secrets.js',
  'libs/command-line/src/cli-error.js',
  'libs/command-line/src/closed-output.js',
  'libs/command-line/src/command-tree.js',
  'libs/command-line/src/exit-codes.js',
  'libs/command-line/src/run-command-line.js',
  'libs/command-line/src/version.js',
  'libs/config/src/secret-bytes.js',
  'libs/node-api-contracts/src/delivery-payloads.js',
  'libs/node-identity/src/identifiers.js',
  'libs/node-identity/src/node-identity-errors.js',
  'libs/pcr-policy/src/approval-math.js',
  'libs/tpm2/src/client/open-transport.js',
  'libs/tpm2/src/client/response-codes.js',
  'libs/tpm2/src/client/salted-session.js',
  'libs/tpm2/src/client/session-auth.js',
  'libs/tpm2/src/client/session-protocol.js',
  'libs/tpm2/src/client/swtpm-transport.js',
  'libs/tpm2/src/client/tpm-client.js',
  'libs/tpm2/src/client/tpm-errors.js',
  'libs/tpm2/src/client/transport.js',
  'libs/tpm2/src/codec/tpm-parse-error.js',
  'libs/tpm2/src/codec/tpm-reader.js',
  'libs/tpm2/src/codec/tpm-writer.js',
  'libs/tpm2/src/commands/capability-constants.js',
  'libs/tpm2/src/commands/capability.js',
  'libs/tpm2/src/commands/context-management.js',
  'libs/tpm2/src/commands/keys-and-attestation.js',
  'libs/tpm2/src/commands/nv.js',
  'libs/tpm2/src/commands/objects.js',
  'libs/tpm2/src/commands/pcr.js',
  'libs/tpm2/src/commands/policy-session.js',
  'libs/tpm2/src/commands/salted-session.js',
  'libs/tpm2/src/commands/tickets.js',
  'libs/tpm2/src/commands/tpm-answer-error.js',
  'libs/tpm2/src/constants.js',
  'libs/tpm2/src/crypto/errors.js',
  'libs/tpm2/src/crypto/kdf.js',
  'libs/tpm2/src/crypto/labeled-encapsulation.js',
  'libs/tpm2/src/crypto/random.js',
  'libs/tpm2/src/crypto/rsa-oaep.js',
  'libs/tpm2/src/crypto/session-crypto.js',
  'libs/tpm2/src/hash-algorithms.js',
  'libs/tpm2/src/key-object-cache.js',
  'libs/tpm2/src/keys.js',
  'libs/tpm2/src/names.js',
  'libs/tpm2/src/operations/endorsement-key.js',
  'libs/tpm2/src/operations/loaded-object.js',
  'libs/tpm2/src/operations/sealed-blob.js',
  'libs/tpm2/src/operations/session-salt.js',
  'libs/tpm2/src/operations/tpm-scope.js',
  'libs/tpm2/src/operations/user-authorization.js',
  'libs/tpm2/src/policy/ek-policies.js',
  'libs/tpm2/src/policy/pcr-values.js',
  'libs/tpm2/src/policy/policy-commands.js',
  'libs/tpm2/src/policy/policy-digest.js',
  'libs/tpm2/src/policy/policy-error.js',
  'libs/tpm2/src/structures/schemes.js',
  'libs/tpm2/src/structures/tpm2b-encrypted-secret.js',
  'libs/tpm2/src/structures/tpm2b-id-object.js',
  'libs/tpm2/src/structures/tpm2b-private.js',
  'libs/tpm2/src/structures/tpml-pcr-selection.js',
  'libs/tpm2/src/structures/tpms-attest.js',
  'libs/tpm2/src/structures/tpmt-public.js',
  'libs/tpm2/src/structures/tpmt-signature.js',
  'libs/tpm2/src/structures/tpmt-sym-def-object.js',
  'libs/tpm2/src/templates.js',
  'libs/wrapping/src/ack-proof.js',
  'libs/wrapping/src/content-cipher.js',
  'libs/wrapping/src/envelope-format.js',
  'libs/wrapping/src/wrapping-errors.js',
];

/** Of node_modules, by package: js-yaml's single-file build (agent-config-file.ts says why). */
const UNLOCK_PACKAGE_FILES = ['js-yaml/dist/js-yaml.js'];

/**
 * Node's own modules the offline path must not load: a child process (cryptsetup: the header is read
 * directly when well), HTTP (the --online path), workers, and what Nest/TypeORM-style code brings.
 */
const FORBIDDEN_BUILTINS = ['child_process', 'http', 'https', 'tls', 'worker_threads', 'dns', 'zlib', 'vm'].map((m) => `NativeModule ${m}`);

interface Loaded {
  readonly files: string[];
  readonly builtins: string[];
}

describe('rackseal-agent unlock: the files an offline boot unlock loads (issue 14 benchmark)', () => {
  const fixture = useSwtpms(1);
  let root: string;
  let hook: string;
  let report: string;
  let disk: InstalledDisk;
  let config: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'rackseal-unlock-files-'));
    hook = join(root, 'loaded.js');
    report = join(root, 'loaded.json');
    writeFileSync(
      hook,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ files: Object.keys(require.cache).filter((f) => f !== __filename), builtins: process.moduleLoadList })));\n`,
    );
    const tpm = fixture.at(0).device;
    const withClient = async <T>(work: (client: TpmClient) => Promise<T>): Promise<T> => {
      const client = new TpmClient(await openTransport(tpm));
      try {
        return await work(client);
      } finally {
        await client.close();
      }
    };
    const machine = await withClient(provisionMachine);
    const signer = new ApprovalSigner();
    const disks = join(root, 'disks');
    mkdirSync(disks, { mode: 0o700 });
    disk = await installedDisk(disks, machine, signer, 'rack-a', 1);
    // The state dir as the daemon leaves it: identity.json (which EK) and the approvals, also in the token.
    const stateDir = join(root, 'state');
    const state = await StateDir.open(stateDir, { create: true });
    await state.saveIdentity({
      serverUrl: 'https://rackseal.example',
      machineId: 'machine-1',
      registrationId: 'registration-1',
      credentialId: '0123456789abcdef0123456789abcdef',
      ekPubHash: machine.ekPubHash,
      enrolledAt: new Date(0).toISOString(),
    });
    await recordApprovals(stateDir, signer.approvals('rack-a', 1, [await withClient(currentPcrSet)]), { devices: [{ device: disk.image }] });
    config = join(root, 'agent.yaml');
    writeFileSync(config, `tpm: ${tpm}\nstateDir: ${stateDir}\ninstalls:\n  root-disk:\n    kind: disk\n    device: ${disk.image}\n    enrollKeyFile: ${join(dirname(disk.image), 'enroll.key')}\n`);
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** The built agent with the hook; it must print exactly the key and nothing on stderr. */
  function unlockLoads(args: readonly string[]): Loaded {
    rmSync(report, { force: true });
    const run = spawnSync(process.execPath, ['--require', hook, AGENT_ENTRY, ...args], { cwd: repoRoot(), env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    expect([run.status, run.stderr.toString('utf8')]).toEqual([0, '']);
    expect(run.stdout.toString('hex')).toBe(disk.key.toString('hex'));
    return JSON.parse(readFileSync(report, 'utf8')) as Loaded;
  }

  it('loads exactly the listed project files, js-yaml as one file, and no child process, HTTP or worker module', () => {
    const loaded = unlockLoads(['unlock', '--device', disk.image, '--config', config]);
    const dist = join(repoRoot(), 'dist');
    const packages = loaded.files.filter((f) => f.includes('/node_modules/'));
    const project = loaded.files.filter((f) => !f.includes('/node_modules/'));
    expect(project.map((f) => relative(dist, f)).sort()).toEqual(UNLOCK_FILES);
    expect(packages.map((f) => f.slice(f.lastIndexOf('/node_modules/') + '/node_modules/'.length)).sort()).toEqual(UNLOCK_PACKAGE_FILES);
    expect(loaded.builtins.filter((m) => FORBIDDEN_BUILTINS.includes(m))).toEqual([]);
  });

  describe('from the startup snapshot (dist/apps/agent/unlock.blob, docs/decisions.md "Boot unlock from a startup snapshot")', () => {
    it("two unlocks from the blob draw their salts and nonces fresh: none from the warm-up's counter, none twice", () => {
      // A preload that records every randomBytes the unlock draws through node:crypto's module object
      // (what the bundle reads at each call: `(0, node_crypto_1.randomBytes)(…)`).
      const draws = join(root, 'draws.json');
      const recorder = join(root, 'draws.js');
      writeFileSync(
        recorder,
        `const crypto = require('node:crypto'); const drawn = []; const original = crypto.randomBytes;\n` +
          `crypto.randomBytes = (size, callback) => { if (callback !== undefined) return original(size, callback); const bytes = original(size); drawn.push(bytes.toString('hex')); return bytes; };\n` +
          `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(draws)}, JSON.stringify(drawn)));\n`,
      );
      const unlock = (): string[] => {
        const run = spawnSync(process.execPath, ['--snapshot-blob', join(repoRoot(), 'dist/apps/agent/unlock.blob'), '--require', recorder, '--', 'unlock', '--device', disk.image, '--config', config], {
          cwd: root,
          env: { PATH: process.env.PATH },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        expect([run.status, run.stderr.toString('utf8'), run.stdout.toString('hex')]).toEqual([0, '', disk.key.toString('hex')]);
        return JSON.parse(readFileSync(draws, 'utf8')) as string[];
      };
      const [first, second] = [unlock(), unlock()];
      // The salts of the salted sessions and the caller's nonces (at least one of each, 16 bytes or more).
      expect(first.filter((hex) => hex.length >= 32).length).toBeGreaterThanOrEqual(2);
      expect(first.length).toBe(second.length);
      const counter = deterministicRandomBytes(WARM_RANDOM_LABEL)(32 * 4096).toString('hex');
      expect([...first, ...second].filter((hex) => counter.includes(hex))).toEqual([]);
      expect(first.filter((hex) => second.includes(hex))).toEqual([]);
    });

    const bundle = (): string => join(repoRoot(), 'dist/apps/agent/src/unlock-snapshot.bundle.js');
    /** esbuild's module wrapper in the bundle (whitespace minified): each module's code under its path, run on first require. */
    const COMMONJS_HELPER = 'var __commonJS=(cb,mod)=>function __require2(){';

    it('holds the listed files evaluated at build time (main.js aside, which runs the arguments), the device transport beside swtpm\'s, and js-yaml', () => {
      // The bundle with esbuild's wrapper recording which module bodies run while the snapshot is built.
      const source = readFileSync(bundle(), 'utf8');
      expect(source.split(COMMONJS_HELPER)).toHaveLength(2);
      const list = join(root, 'evaluated.json');
      const recording = join(root, 'recording.bundle.js');
      writeFileSync(
        recording,
        source.replace(
          COMMONJS_HELPER,
          `var evaluated = [];\nrequire('node:v8').startupSnapshot.addSerializeCallback(() => require('node:fs').writeFileSync(${JSON.stringify(list)}, JSON.stringify(evaluated)));\n` +
            `${COMMONJS_HELPER}\n  if (!mod) evaluated.push(__getOwnPropNames(cb)[0]);\n`,
        ),
      );
      const build = spawnSync(process.execPath, ['--snapshot-blob', join(root, 'recording.blob'), '--build-snapshot', recording], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
      expect([build.status, build.stderr]).toEqual([0, '']);
      const evaluated = (JSON.parse(readFileSync(list, 'utf8')) as string[]).sort();
      const expected = [
        ...UNLOCK_FILES.filter((f) => f !== 'apps/agent/src/main.js'),
        'apps/agent/src/unlock-snapshot.js',
        'apps/agent/src/unlock-snapshot-warm.js',
        'apps/agent/src/unlock-snapshot-warm-tpm.js',
        'apps/agent/src/unlock-warm-transcript.js',
        'libs/tpm2/src/client/device-transport.js',
      ].map((f) => `dist/${f}`);
      expect(evaluated).toEqual([...UNLOCK_PACKAGE_FILES.map((f) => `node_modules/${f}`), ...expected].sort());
    });

    it('unlocks with the arguments of the run, printing exactly the key, and opens no JavaScript file (strace)', () => {
      const trace = join(root, 'open.trace');
      const run = spawnSync(
        'strace',
        ['-f', '-qq', '-e', 'trace=open,openat', '-o', trace, process.execPath, '--snapshot-blob', join(repoRoot(), 'dist/apps/agent/unlock.blob'), '--', 'unlock', '--device', disk.image, '--config', config],
        { cwd: root, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect([run.status, run.stderr.toString('utf8'), run.stdout.toString('hex')]).toEqual([0, '', disk.key.toString('hex')]);
      const opened = [...readFileSync(trace, 'utf8').matchAll(/open(?:at)?\([^"]*"([^"]+)"/g)].map((m) => m[1]!);
      expect(opened).toContain(disk.image);
      expect(opened).toContain(config);
      // Of the build, the blob alone: no module file is looked up, read or compiled.
      const blob = join(repoRoot(), 'dist/apps/agent/unlock.blob');
      expect([...new Set(opened.filter((f) => /\.(js|cjs|mjs)$/.test(f) || f.includes('/node_modules/') || f.includes('/dist/')))]).toEqual([blob]);
    });
  });

  it('the list is not vacuous: the same hook sees the index of a library when one is loaded', () => {
    // `tpm info` is not on the boot path and loads libs/tpm2's index (EK certificates, capabilities).
    rmSync(report, { force: true });
    const run = spawnSync(process.execPath, ['--require', hook, AGENT_ENTRY, 'tpm', 'info', '--tpm', fixture.at(0).device, '--json'], { cwd: repoRoot(), env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(run.status).toBe(0);
    const loaded = JSON.parse(readFileSync(report, 'utf8')) as Loaded;
    expect(loaded.files.map((f) => relative(join(repoRoot(), 'dist'), f))).toContain('libs/tpm2/src/index.js');
  });
});
