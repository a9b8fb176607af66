/**
 * The agent's installs (issue 14 item 3), with real files and a real cryptsetup on LUKS2 image files:
 * TLS, kubelet and opaque files with their exact bytes, modes and owners, re-applied without a
 * rewrite; reloads run, fail or time out without undoing the install; every refusal of the config
 * file; disk keys added, proven, rotated (exactly the new key opens the image), generations applied
 * once, crashes between luksAddKey and the token update converging; no key in any cryptsetup argv.
 * The test runs as root, so owners are numbers or names from a passwd/group of its own.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DISK_KEY_SIZES, MAX_OPAQUE_BYTES, SECRET_KINDS } from '@rackseal/api-contracts';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { DELIVERY_PAYLOAD_KINDS, DELIVERY_PAYLOAD_LIMITS, type DeliveryPayloadJson, encodeDeliveryPayload, parseDeliveryPayload } from '@rackseal/node-api-contracts';
import { type AgentConfig, AgentConfigError, type DiskTarget, parseAgentConfig } from '../apps/agent/src/install/agent-config';
import { loadAgentConfig } from '../apps/agent/src/install/agent-config-file';
import { runCryptsetup } from '../apps/agent/src/install/cryptsetup';
import { addDiskKey, luksDeviceOf } from '../apps/agent/src/install/disk-install';
import { type DeliveredSecret, install } from '../apps/agent/src/install/install';
import { readLuksMetadata, readRacksealToken, writeRacksealToken } from '../apps/agent/src/install/luks-token';
import { runAgentCli } from './support/cli-runner';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rackseal-installs-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
const freshDir = (): string => {
  const dir = join(root, `case-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** A P-256 key and a self-signed certificate for it, from openssl. */
function keyAndCertificate(dir: string, cn: string): { keyPem: string; certPem: string } {
  const key = join(dir, `${cn}.key`);
  const cert = join(dir, `${cn}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${cn}`, '-days', '1'], { stdio: 'ignore' });
  const pair = { keyPem: readFileSync(key, 'utf8'), certPem: readFileSync(cert, 'utf8') };
  rmSync(key);
  rmSync(cert);
  return pair;
}

/** The payload as the agent gets it: encoded by the contract, parsed back strictly. */
const parsed = (json: DeliveryPayloadJson) => parseDeliveryPayload(encodeDeliveryPayload(json), (bytes) => new SecretBytes(bytes));

function delivery(name: string, json: DeliveryPayloadJson, version = 1, envelope?: Buffer): DeliveredSecret {
  return { name, kind: json.kind, version, deliveryId: `delivery-${name}-${version}`, payload: parsed(json), ...(envelope === undefined ? {} : { envelope }) };
}

const config = (installs: Record<string, unknown>): AgentConfig => parseAgentConfig({ installs }, 'agent.yaml');

/** A passwd and group of the test's own, so owners by name need no system user. */
function etcDir(): string {
  const dir = freshDir();
  writeFileSync(join(dir, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nrs-web:x:4242:4242::/nonexistent:/usr/sbin/nologin\n');
  writeFileSync(join(dir, 'group'), 'root:x:0:\nrs-tls:x:4343:\n');
  return dir;
}

const mode = (path: string): number => statSync(path).mode & 0o7777;
const leftovers = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes('.tmp'));

describe('payload contract agrees with the operator contract', () => {
  it('kinds, opaque size and disk key sizes', () => {
    expect([...DELIVERY_PAYLOAD_KINDS].sort()).toEqual([...SECRET_KINDS].sort());
    expect(DELIVERY_PAYLOAD_LIMITS.opaqueBytes).toBe(MAX_OPAQUE_BYTES);
    expect(DELIVERY_PAYLOAD_LIMITS.diskKeyBytes).toEqual([...DISK_KEY_SIZES]);
  });
});

describe('agent config file', () => {
  it('reads a full example (YAML) with its defaults', async () => {
    const dir = freshDir();
    const file = join(dir, 'agent.yaml');
    writeFileSync(
      file,
      [
        'server: https://rackseal.example',
        'tpm: /dev/tpmrm0',
        'stateDir: /var/lib/rackseal-agent',
        'installs:',
        '  web-tls:',
        '    kind: tls',
        '    keyPath: /etc/nginx/tls/node.key',
        '    certPath: /etc/nginx/tls/node.crt',
        '    chainPath: /etc/nginx/tls/ca.crt',
        '    owner: root',
        '    group: www-data',
        '    mode: "0640"',
        '    reload: [/usr/bin/systemctl, reload, nginx]',
        '  kubelet:',
        '    kind: kubelet-client',
        '    pemPath: /var/lib/kubelet/pki/kubelet-client-current.pem',
        '    kubeconfigPath: /etc/kubernetes/kubelet.conf',
        '  db-password: {kind: opaque, path: /etc/app/db-password, owner: 1001}',
        '  root-disk: {kind: disk, device: /dev/nvme0n1p3, keySize: 32, enrollKeyFile: /etc/rackseal/enroll.key}',
        '',
      ].join('\n'),
    );
    const loaded = await loadAgentConfig(file);
    expect({ server: loaded.server, tpm: loaded.tpm, stateDir: loaded.stateDir }).toEqual({ server: 'https://rackseal.example', tpm: '/dev/tpmrm0', stateDir: '/var/lib/rackseal-agent' });
    expect(Object.fromEntries(loaded.installs)).toEqual({
      'web-tls': { kind: 'tls', keyPath: '/etc/nginx/tls/node.key', certPath: '/etc/nginx/tls/node.crt', chainPath: '/etc/nginx/tls/ca.crt', mode: 0o640, owner: { name: 'root' }, group: { name: 'www-data' }, reload: ['/usr/bin/systemctl', 'reload', 'nginx'] },
      kubelet: { kind: 'kubelet-client', pemPath: '/var/lib/kubelet/pki/kubelet-client-current.pem', kubeconfigPath: '/etc/kubernetes/kubelet.conf' },
      'db-password': { kind: 'opaque', path: '/etc/app/db-password', mode: 0o600, owner: { id: 1001 } },
      'root-disk': { kind: 'disk', device: '/dev/nvme0n1p3', keySize: 32, enrollKeyFile: '/etc/rackseal/enroll.key' },
    });
  });

  it('an absent default file is an empty config; an absent named one, an empty file and bad YAML are as expected', async () => {
    const dir = freshDir();
    expect((await loadAgentConfig(join(dir, 'none.yaml'), true)).installs.size).toBe(0);
    await expect(loadAgentConfig(join(dir, 'none.yaml'))).rejects.toThrow(`${join(dir, 'none.yaml')}: does not exist`);
    writeFileSync(join(dir, 'empty.yaml'), '');
    expect((await loadAgentConfig(join(dir, 'empty.yaml'))).installs.size).toBe(0);
    writeFileSync(join(dir, 'twice.yaml'), 'tpm: /dev/tpm0\ntpm: /dev/tpmrm0\n');
    await expect(loadAgentConfig(join(dir, 'twice.yaml'))).rejects.toThrow(/is not valid YAML: duplicated mapping key \(line 2/);
    writeFileSync(join(dir, 'octal.yaml'), 'installs:\n  x:\n    kind: opaque\n    path: /etc/x\n    mode: 0640\n');
    await expect(loadAgentConfig(join(dir, 'octal.yaml'))).rejects.toThrow('installs.x.mode: must be a quoted octal string such as "0640" (YAML reads an unquoted 0640 as the decimal 640)');
  });

  it('a config path that is a FIFO, an endless device or a directory is refused at once naming it, never read forever (boot unlock reads it)', async () => {
    const dir = freshDir();
    execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
    await expect(loadAgentConfig(join(dir, 'fifo.yaml'))).rejects.toThrow(`${join(dir, 'fifo.yaml')}: is not a regular file`);
    await expect(loadAgentConfig('/dev/zero')).rejects.toThrow('/dev/zero: is not a regular file');
    await expect(loadAgentConfig(dir)).rejects.toThrow(`${dir}: is not a regular file`);
    writeFileSync(join(dir, 'big.yaml'), Buffer.alloc(1024 * 1024 + 1, 0x23));
    await expect(loadAgentConfig(join(dir, 'big.yaml'))).rejects.toThrow(`${join(dir, 'big.yaml')}: is larger than 1048576 bytes`);
  });

  const tls = { kind: 'tls', keyPath: '/etc/t/k', certPath: '/etc/t/c' };
  it.each<[string, unknown, string, RegExp]>([
    ['a list at the top', [], '', /must be a mapping/],
    ['an unknown top-level field', { servers: 'x' }, 'servers', /unknown field \(allowed here: server, serverCa, tpm, stateDir, imaList, installs\)/],
    ['a server that is no URL', { server: 'rackseal' }, 'server', /http:\/\/ or https:\/\/ URL/],
    ['a server of another scheme', { server: 'ftp://x' }, 'server', /http:\/\/ or https:\/\/ URL/],
    ['an empty tpm', { tpm: '' }, 'tpm', /non-empty string/],
    ['a relative stateDir', { stateDir: 'var/lib/x' }, 'stateDir', /absolute path/],
    ['a relative imaList', { imaList: 'ima/binary_runtime_measurements' }, 'imaList', /absolute path/],
    ['installs as a list', { installs: [] }, 'installs', /must be a mapping/],
    ['a bad secret name', { installs: { 'Web TLS': tls } }, 'installs.Web TLS', /is not a secret name/],
    ['an install that is a string', { installs: { web: 'tls' } }, 'installs.web', /must be a mapping/],
    ['no kind', { installs: { web: { keyPath: '/k' } } }, 'installs.web.kind', /one of tls, kubelet-client, opaque, disk/],
    ['an unknown kind', { installs: { web: { ...tls, kind: 'ssh' } } }, 'installs.web.kind', /one of/],
    ['an unknown field', { installs: { web: { ...tls, keyFile: '/k' } } }, 'installs.web.keyFile', /unknown field \(allowed here: kind, keyPath, certPath, chainPath, owner, group, mode, reload\)/],
    ['a disk field on tls', { installs: { web: { ...tls, device: '/dev/sda' } } }, 'installs.web.device', /unknown field/],
    ['a missing keyPath', { installs: { web: { kind: 'tls', certPath: '/c' } } }, 'installs.web.keyPath', /is required/],
    ['a relative path', { installs: { web: { ...tls, certPath: 'etc/c' } } }, 'installs.web.certPath', /absolute path/],
    ['a path with NUL', { installs: { web: { ...tls, certPath: '/etc/c\0x' } } }, 'installs.web.certPath', /without NUL/],
    ['a path with ..', { installs: { web: { ...tls, certPath: '/etc/../c' } } }, 'installs.web.certPath', /normalised/],
    ['a path with //', { installs: { web: { ...tls, certPath: '/etc//c' } } }, 'installs.web.certPath', /normalised/],
    ['a path ending in /', { installs: { web: { ...tls, certPath: '/etc/c/' } } }, 'installs.web.certPath', /normalised/],
    ['the root as a path', { installs: { web: { ...tls, certPath: '/' } } }, 'installs.web.certPath', /normalised/],
    ['a path as a number', { installs: { web: { ...tls, certPath: 1 } } }, 'installs.web.certPath', /non-empty string/],
    ['a mode as a number', { installs: { web: { ...tls, mode: 416 } } }, 'installs.web.mode', /quoted octal string/],
    ['a mode that is not octal', { installs: { web: { ...tls, mode: '0680' } } }, 'installs.web.mode', /octal mode string/],
    ['a mode with setuid', { installs: { web: { ...tls, mode: '4600' } } }, 'installs.web.mode', /at most 0777/],
    ['a mode readable by others', { installs: { web: { ...tls, mode: '0644' } } }, 'installs.web.mode', /gives others access/],
    ['a mode the owner cannot read', { installs: { web: { ...tls, mode: '0040' } } }, 'installs.web.mode', /owner read/],
    ['an owner that is no name', { installs: { web: { ...tls, owner: 'www data' } } }, 'installs.web.owner', /user or group name/],
    ['an owner id too large', { installs: { web: { ...tls, owner: 4294967295 } } }, 'installs.web.owner', /number from 0 to 4294967294/],
    ['a negative owner id', { installs: { web: { ...tls, owner: -1 } } }, 'installs.web.owner', /a name or a number from 0/],
    ['a group that is no name', { installs: { web: { ...tls, group: 'a:b' } } }, 'installs.web.group', /user or group name/],
    ['a reload as a shell string', { installs: { web: { ...tls, reload: 'systemctl reload nginx' } } }, 'installs.web.reload', /not a shell string/],
    ['an empty reload', { installs: { web: { ...tls, reload: [] } } }, 'installs.web.reload', /non-empty list/],
    ['a reload by PATH lookup', { installs: { web: { ...tls, reload: ['systemctl', 'reload'] } } }, 'installs.web.reload[0]', /absolute path/],
    ['a reload argument that is a number', { installs: { web: { ...tls, reload: ['/bin/kill', -1] } } }, 'installs.web.reload[1]', /string without NUL/],
    ['a mode on kubelet-client', { installs: { k: { kind: 'kubelet-client', pemPath: '/p', kubeconfigPath: '/c', mode: '0600' } } }, 'installs.k.mode', /unknown field/],
    ['a disk keySize of 16', { installs: { d: { kind: 'disk', device: '/dev/sda', keySize: 16 } } }, 'installs.d.keySize', /32 or 64/],
    ['a disk without device', { installs: { d: { kind: 'disk' } } }, 'installs.d.device', /is required/],
    ['a disk with a relative enrollKeyFile', { installs: { d: { kind: 'disk', device: '/dev/sda', enrollKeyFile: 'key' } } }, 'installs.d.enrollKeyFile', /absolute path/],
    ['two installs of one file', { installs: { a: tls, b: { kind: 'opaque', path: '/etc/t/k' } } }, 'installs.b.path', /\/etc\/t\/k is also installs\.a\.keyPath/],
    ['two disk secrets on one device', { installs: { a: { kind: 'disk', device: '/dev/sda' }, b: { kind: 'disk', device: '/dev/sda' } } }, 'installs.b.device', /is also installs\.a\.device/],
    ['a relative serverCa (issue 15)', { serverCa: 'ca.pem' }, 'serverCa', /absolute path/],
  ])('refuses %s, naming the field', (_what, document, field, message) => {
    let error: unknown;
    try {
      parseAgentConfig(document, '/etc/rackseal/agent.yaml');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(AgentConfigError);
    expect((error as AgentConfigError).field).toBe(field);
    expect((error as AgentConfigError).message).toMatch(message);
    expect((error as AgentConfigError).message.startsWith(`/etc/rackseal/agent.yaml: ${field === '' ? '' : `${field}: `}`)).toBe(true);
  });
  it('gives the commands their defaults (built agent): a flag wins over the file, the file over the built-in default; a bad file is exit 2 naming the field', () => {
    const dir = freshDir();
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, `stateDir: ${join(dir, 'from-config')}\n`);
    const fromFile = runAgentCli(['status', '--offline', '--json', '--config', file]);
    expect([fromFile.status, (JSON.parse(fromFile.stdout) as { stateDir: string }).stateDir]).toEqual([1, join(dir, 'from-config')]);
    const fromFlag = runAgentCli(['status', '--offline', '--json', '--config', file, '--state-dir', join(dir, 'from-flag')]);
    expect((JSON.parse(fromFlag.stdout) as { stateDir: string }).stateDir).toBe(join(dir, 'from-flag'));
    if (!existsSync('/etc/rackseal/agent.yaml')) {
      const builtIn = runAgentCli(['status', '--offline', '--json']);
      expect((JSON.parse(builtIn.stdout) as { stateDir: string }).stateDir).toBe('/var/lib/rackseal-agent');
    }
    writeFileSync(file, 'installs:\n  x: {kind: opaque, path: relative}\n');
    const bad = runAgentCli(['status', '--offline', '--config', file]);
    expect([bad.status, bad.stderr]).toEqual([2, `rackseal-agent: status: config file ${file}: installs.x.path: must be an absolute path\n`]);
    const enroll = runAgentCli(['enroll', '--state-dir', join(dir, 'state'), '--config', join(dir, 'none.yaml')]);
    expect([enroll.status, enroll.stderr]).toEqual([2, `rackseal-agent: enroll: config file ${join(dir, 'none.yaml')}: does not exist\n`]);
  });
});

describe('file installs', () => {
  it('tls: key, certificate and chain with their exact bytes, modes and owners; a re-apply rewrites nothing', async () => {
    const dir = freshDir();
    const { keyPem, certPem } = keyAndCertificate(dir, 'node');
    const { certPem: caPem } = keyAndCertificate(dir, 'ca');
    const marker = join(dir, 'reloaded');
    const cfg = config({
      web: { kind: 'tls', keyPath: join(dir, 'tls/node.key'), certPath: join(dir, 'tls/node.crt'), chainPath: join(dir, 'tls/ca.crt'), owner: 'rs-web', group: 'rs-tls', mode: '0640', reload: ['/usr/bin/touch', marker] },
    });
    const deps = { etcDir: etcDir() };
    const report = await install(delivery('web', { format: 1, kind: 'tls', keyPem, certPem, chainPem: caPem }), cfg, deps);
    expect(report).toMatchObject({ name: 'web', kind: 'tls', version: 1, changed: true, reload: { ok: true, argv0: '/usr/bin/touch' } });
    expect(readFileSync(join(dir, 'tls/node.key'), 'utf8')).toBe(keyPem);
    expect(readFileSync(join(dir, 'tls/node.crt'), 'utf8')).toBe(certPem);
    expect(readFileSync(join(dir, 'tls/ca.crt'), 'utf8')).toBe(caPem);
    expect([mode(join(dir, 'tls/node.key')), mode(join(dir, 'tls/node.crt')), mode(join(dir, 'tls/ca.crt'))]).toEqual([0o640, 0o644, 0o644]);
    for (const file of ['node.key', 'node.crt', 'ca.crt']) {
      const info = statSync(join(dir, 'tls', file));
      expect([info.uid, info.gid]).toEqual([4242, 4343]);
    }
    expect(leftovers(join(dir, 'tls'))).toEqual([]);

    const before = ['node.key', 'node.crt', 'ca.crt'].map((f) => statSync(join(dir, 'tls', f), { bigint: true }));
    rmSync(marker);
    const again = await install(delivery('web', { format: 1, kind: 'tls', keyPem, certPem, chainPem: caPem }), cfg, deps);
    expect(again.changed).toBe(false);
    expect(again.files?.map((f) => f.changed)).toEqual([false, false, false]);
    expect(again.reload).toBeUndefined();
    expect(() => statSync(marker)).toThrow(); // no reload when nothing changed
    const after = ['node.key', 'node.crt', 'ca.crt'].map((f) => statSync(join(dir, 'tls', f), { bigint: true }));
    expect(after.map((s) => [s.ino, s.mtimeNs])).toEqual(before.map((s) => [s.ino, s.mtimeNs]));
  });

  it('tls: a new pair replaces the old one; a certificate that is not the key\'s is refused with nothing written', async () => {
    const dir = freshDir();
    const first = keyAndCertificate(dir, 'one');
    const second = keyAndCertificate(dir, 'two');
    const cfg = config({ web: { kind: 'tls', keyPath: join(dir, 'k.pem'), certPath: join(dir, 'c.pem') } });
    await install(delivery('web', { format: 1, kind: 'tls', ...first, chainPem: first.certPem }), cfg);
    const refused = install(delivery('web', { format: 1, kind: 'tls', keyPem: second.keyPem, certPem: first.certPem, chainPem: first.certPem }, 2), cfg);
    await expect(refused).rejects.toMatchObject({ code: 'install.bad-material', message: "web: the delivered certificate is not the delivered key's" });
    expect(readFileSync(join(dir, 'k.pem'), 'utf8')).toBe(first.keyPem);
    const report = await install(delivery('web', { format: 1, kind: 'tls', ...second, chainPem: second.certPem }, 2), cfg);
    expect(report.changed).toBe(true);
    expect([readFileSync(join(dir, 'k.pem'), 'utf8'), readFileSync(join(dir, 'c.pem'), 'utf8')]).toEqual([second.keyPem, second.certPem]);
    expect([mode(join(dir, 'k.pem')), mode(join(dir, 'c.pem'))]).toEqual([0o600, 0o644]);
    expect(leftovers(dir)).toEqual([]);
  });

  it('kubelet-client: certificate then key in one 0600 PEM, kubelet.conf 0600, owner by uid', async () => {
    const dir = freshDir();
    const { keyPem, certPem } = keyAndCertificate(dir, 'system:node:n1');
    const kubeconfig = 'apiVersion: v1\nkind: Config\nusers:\n- name: "system:node:n1"\n';
    const cfg = config({ kubelet: { kind: 'kubelet-client', pemPath: join(dir, 'pki/kubelet-client-current.pem'), kubeconfigPath: join(dir, 'kubelet.conf'), owner: 4242 } });
    const report = await install(delivery('kubelet', { format: 1, kind: 'kubelet-client', keyPem, certPem, kubeconfig }), cfg);
    expect(report.changed).toBe(true);
    expect(readFileSync(join(dir, 'pki/kubelet-client-current.pem'), 'utf8')).toBe(certPem + keyPem);
    expect(readFileSync(join(dir, 'kubelet.conf'), 'utf8')).toBe(kubeconfig);
    expect([mode(join(dir, 'pki/kubelet-client-current.pem')), mode(join(dir, 'kubelet.conf'))]).toEqual([0o600, 0o600]);
    expect([statSync(join(dir, 'kubelet.conf')).uid, statSync(join(dir, 'kubelet.conf')).gid]).toEqual([4242, 0]);
    // openssl reads the combined file as the kubelet does: the certificate and the key are a pair.
    const modulus = (args: string[]) => execFileSync('openssl', args).toString();
    expect(modulus(['pkey', '-in', join(dir, 'pki/kubelet-client-current.pem'), '-pubout'])).toBe(modulus(['x509', '-in', join(dir, 'pki/kubelet-client-current.pem'), '-noout', '-pubkey']));
  });

  it('opaque: the value byte for byte (NUL and newlines kept), mode 0600 by default', async () => {
    const dir = freshDir();
    const value = Buffer.concat([Buffer.from('line 1\n\0'), randomBytes(100), Buffer.from('\r\n')]);
    const cfg = config({ token: { kind: 'opaque', path: join(dir, 'token') } });
    await install(delivery('token', { format: 1, kind: 'opaque', value: value.toString('base64') }), cfg);
    expect(readFileSync(join(dir, 'token')).equals(value)).toBe(true);
    expect(mode(join(dir, 'token'))).toBe(0o600);
  });

  it('a changed mode or owner is put right on re-apply, even with the same bytes', async () => {
    const dir = freshDir();
    const cfg = config({ token: { kind: 'opaque', path: join(dir, 'token'), mode: '0400' } });
    const d = delivery('token', { format: 1, kind: 'opaque', value: Buffer.from('v').toString('base64') });
    await install(d, cfg);
    chmodSync(join(dir, 'token'), 0o666);
    expect((await install(d, cfg)).changed).toBe(true);
    expect(mode(join(dir, 'token'))).toBe(0o400);
  });

  it('a failing reload is reported and the new files stay; a hung one is killed at its timeout', async () => {
    const dir = freshDir();
    const fail = config({ token: { kind: 'opaque', path: join(dir, 'token'), reload: ['/bin/false'] } });
    const report = await install(delivery('token', { format: 1, kind: 'opaque', value: Buffer.from('new').toString('base64') }), fail);
    expect(report.reload).toEqual({ ok: false, argv0: '/bin/false', exitCode: 1 });
    expect(readFileSync(join(dir, 'token'), 'utf8')).toBe('new');
    const missing = config({ token: { kind: 'opaque', path: join(dir, 'token'), reload: ['/nonexistent/reload'] } });
    expect((await install(delivery('token', { format: 1, kind: 'opaque', value: Buffer.from('newer').toString('base64') }), missing)).reload).toEqual({ ok: false, argv0: '/nonexistent/reload', error: 'ENOENT' });
    const hung = config({ token: { kind: 'opaque', path: join(dir, 'token'), reload: ['/bin/sleep', '600'] } });
    const slow = await install(delivery('token', { format: 1, kind: 'opaque', value: Buffer.from('newest').toString('base64') }), hung, { reloadTimeoutMs: 100 });
    expect(slow.reload).toEqual({ ok: false, argv0: '/bin/sleep', timedOut: true, signal: 'SIGKILL' });
    expect(readFileSync(join(dir, 'token'), 'utf8')).toBe('newest');
  });

  it('refuses a secret the config does not name, a kind other than configured, an unknown owner, and a target that is a directory, writing nothing', async () => {
    const dir = freshDir();
    const { keyPem, certPem } = keyAndCertificate(dir, 'x');
    const tlsJson: DeliveryPayloadJson = { format: 1, kind: 'tls', keyPem, certPem, chainPem: certPem };
    const cfg = config({
      web: { kind: 'tls', keyPath: join(dir, 'out/k'), certPath: join(dir, 'out/c'), chainPath: join(dir, 'out/chain') },
      other: { kind: 'opaque', path: join(dir, 'out/o'), owner: 'nobody-here' },
    });
    await expect(install(delivery('db', tlsJson), cfg)).rejects.toMatchObject({ code: 'install.no-target' });
    await expect(install(delivery('other', tlsJson), cfg)).rejects.toMatchObject({ code: 'install.kind-mismatch' });
    await expect(install({ ...delivery('web', tlsJson), kind: 'opaque' }, cfg)).rejects.toMatchObject({ code: 'install.kind-mismatch' });
    await expect(install(delivery('other', { format: 1, kind: 'opaque', value: 'eA==' }), cfg, { etcDir: etcDir() })).rejects.toMatchObject({ code: 'install.unknown-owner', message: expect.stringMatching(/user nobody-here is not in .*passwd/) });
    mkdirSync(join(dir, 'out/k'), { recursive: true });
    await expect(install(delivery('web', tlsJson), cfg)).rejects.toMatchObject({ code: 'install.io', message: `cannot replace ${join(dir, 'out/k')}: it is a directory` });
    expect(readdirSync(join(dir, 'out'))).toEqual(['k']);
  });
});

// ── disk keys ────────────────────────────────────────────────────────────────────────────────

/** Every argv the agent gave cryptsetup, through a wrapper that records it and runs the real one. */
let cryptsetupLog: string;
let cryptsetupWrapper: string;
/** Every key the disk tests used, to look for in the argv log. */
const keysUsed: Buffer[] = [];

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'rackseal-cryptsetup-'));
  cryptsetupLog = join(dir, 'argv.log');
  cryptsetupWrapper = join(dir, 'cryptsetup');
  writeFileSync(cryptsetupWrapper, `#!/bin/sh\nprintf '%s\\0' "$@" >> ${cryptsetupLog}\nprintf '\\n' >> ${cryptsetupLog}\nexec cryptsetup "$@"\n`, { mode: 0o755 });
});

const newKey = (): SecretBytes => {
  const bytes = randomBytes(32);
  keysUsed.push(bytes);
  return new SecretBytes(bytes);
};

/** A LUKS2 image file whose slot 0 opens with the enrollment key file (fast PBKDF2 for the test). */
function luksImage(): { image: string; enrollKeyFile: string } {
  const dir = freshDir();
  const image = join(dir, 'disk.img');
  const enrollKeyFile = join(dir, 'enroll.key');
  writeFileSync(image, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '20M', image]);
  writeFileSync(enrollKeyFile, 'installer passphrase', { mode: 0o600 });
  execFileSync('cryptsetup', ['luksFormat', '--batch-mode', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', enrollKeyFile, image]);
  return { image, enrollKeyFile };
}

/** Whether `key` opens the image (any slot), asked of cryptsetup directly. */
const opens = (image: string, key: SecretBytes): boolean => spawnSync('cryptsetup', ['open', '--test-passphrase', '--key-file=-', image], { input: key.reveal() }).status === 0;
const keyslots = async (image: string): Promise<number[]> => [...(await readLuksMetadata({ device: image })).keyslots].sort((a, b) => a - b);
const rawTokens = (image: string): Record<string, { type: string; keyslots: string[] }> => (JSON.parse(execFileSync('cryptsetup', ['luksDump', '--dump-json-metadata', image]).toString()) as { tokens: Record<string, { type: string; keyslots: string[] }> }).tokens;
const dump = (image: string): string => execFileSync('cryptsetup', ['luksDump', '--dump-json-metadata', image]).toString();

function diskDelivery(name: string, key: SecretBytes, generation: number, envelope?: Buffer): DeliveredSecret {
  return delivery(name, { format: 1, kind: 'disk', key: key.reveal().toString('base64'), generation }, generation, envelope);
}

describe('disk keys into LUKS2 (real cryptsetup on image files)', () => {
  it('first install, re-apply, rotation, an older generation, and every key kept out of argv', async () => {
    const { image, enrollKeyFile } = luksImage();
    const cfg = config({ 'root-disk': { kind: 'disk', device: image, enrollKeyFile } });
    const k1 = newKey();
    const envelope1 = randomBytes(900);
    const deps = { cryptsetup: cryptsetupWrapper };

    const first = await install(diskDelivery('root-disk', k1, 1, envelope1), cfg, deps);
    expect(first).toMatchObject({ changed: true, disk: { changed: true, keyslot: 1, generation: 1, retired: [] } });
    expect(opens(image, k1)).toBe(true);
    expect(await keyslots(image)).toEqual([0, 1]);
    const token1 = await readRacksealToken(image);
    expect(token1).toEqual({ tokenId: 0, secret: 'root-disk', keyslot: 1, generation: 1, envelope: envelope1, retiring: [] });
    expect(rawTokens(image)).toEqual({ '0': expect.objectContaining({ type: 'rackseal', keyslots: ['1'] }) });
    // Boot reads it back offline with cryptsetup alone.
    const exported = JSON.parse(execFileSync('cryptsetup', ['token', 'export', '--token-id', '0', image]).toString()) as { envelope: string; generation: number };
    expect([Buffer.from(exported.envelope, 'base64').equals(envelope1), exported.generation]).toEqual([true, 1]);

    const header = dump(image);
    const again = await install(diskDelivery('root-disk', k1, 1, envelope1), cfg, deps);
    expect(again).toMatchObject({ changed: false, disk: { changed: false, keyslot: 1, generation: 1, retired: [] } });
    expect(dump(image)).toBe(header);

    // Rotation authorised by the current key alone (no enrollment file): exactly the new key opens.
    const k2 = newKey();
    const envelope2 = randomBytes(700);
    const rotating = config({ 'root-disk': { kind: 'disk', device: image } });
    const currentDiskKey = jest.fn(async () => k1);
    const rotated = await install(diskDelivery('root-disk', k2, 2, envelope2), rotating, { ...deps, currentDiskKey });
    expect(rotated.disk).toEqual({ changed: true, keyslot: 2, generation: 2, retired: [1] });
    expect(currentDiskKey).toHaveBeenCalledWith(expect.objectContaining({ keyslot: 1, generation: 1 }), image);
    expect([opens(image, k2), opens(image, k1)]).toEqual([true, false]);
    expect(await keyslots(image)).toEqual([0, 2]);
    expect(await readRacksealToken(image)).toEqual({ tokenId: 0, secret: 'root-disk', keyslot: 2, generation: 2, envelope: envelope2, retiring: [] });

    // The old generation again: nothing happens, and the old key stays out.
    const header2 = dump(image);
    const stale = await install(diskDelivery('root-disk', k1, 1, envelope1), rotating, deps);
    expect(stale.disk).toEqual({ changed: false, keyslot: 2, generation: 2, retired: [] });
    expect(dump(image)).toBe(header2);
    expect(opens(image, k1)).toBe(false);

    // No key, in any spelling, in any argv cryptsetup was given.
    const log = readFileSync(cryptsetupLog);
    expect(log.toString()).toContain('luksAddKey');
    for (const key of keysUsed) {
      for (const spelling of [key, Buffer.from(key.toString('hex')), Buffer.from(key.toString('base64'))]) {
        expect(log.includes(spelling)).toBe(false);
      }
    }
  });

  it('a crash between luksAddKey and the token update: the re-applied delivery finds its slot, one token, no extra slot', async () => {
    const { image, enrollKeyFile } = luksImage();
    const target: DiskTarget = { kind: 'disk', device: image, enrollKeyFile };
    const cfg = config({ data: { kind: 'disk', device: image, enrollKeyFile } });
    const k1 = newKey();
    await install(diskDelivery('data', k1, 1), cfg);
    const k2 = newKey();
    // Step 1 only, as if the agent died right after luksAddKey.
    const luks = luksDeviceOf(target);
    const added = await addDiskKey(luks, await readLuksMetadata(luks), { name: 'data', key: k2, generation: 2 }, target, { currentDiskKey: async () => k1 });
    expect(await keyslots(image)).toEqual([0, 1, added.keyslot]);
    expect(await readRacksealToken(image)).toMatchObject({ keyslot: 1, generation: 1, pending: { keyslot: added.keyslot, generation: 2 } });

    const resumed = await install(diskDelivery('data', k2, 2), cfg, { currentDiskKey: async () => k1 });
    expect(resumed.disk).toEqual({ changed: true, keyslot: added.keyslot, generation: 2, retired: [1], recovered: true });
    expect(await keyslots(image)).toEqual([0, added.keyslot]);
    expect(Object.values(rawTokens(image)).filter((t) => t.type === 'rackseal')).toHaveLength(1);
    expect([opens(image, k2), opens(image, k1)]).toEqual([true, false]);
    expect((await readRacksealToken(image))?.pending).toBeUndefined();
  });

  it('a crashed generation overtaken by a newer one: its orphan slot is killed with the old one', async () => {
    const { image, enrollKeyFile } = luksImage();
    const target: DiskTarget = { kind: 'disk', device: image, enrollKeyFile };
    const cfg = config({ data: { kind: 'disk', device: image, enrollKeyFile } });
    const k1 = newKey();
    await install(diskDelivery('data', k1, 1), cfg);
    const k2 = newKey();
    const luks = luksDeviceOf(target);
    const orphan = await addDiskKey(luks, await readLuksMetadata(luks), { name: 'data', key: k2, generation: 2 }, target, { currentDiskKey: async () => k1 });
    const k3 = newKey();
    const report = await install(diskDelivery('data', k3, 3), cfg, { currentDiskKey: async () => k1 });
    expect(report.disk).toMatchObject({ changed: true, generation: 3 });
    expect([...(report.disk?.retired ?? [])].sort()).toEqual([1, orphan.keyslot].sort());
    expect(await keyslots(image)).toEqual([0, report.disk!.keyslot!].sort((a, b) => a - b));
    expect([opens(image, k3), opens(image, k2), opens(image, k1)]).toEqual([true, false, false]);
  });

  it('a crash after the token update, before the old slot is killed: the same delivery again kills it', async () => {
    const { image, enrollKeyFile } = luksImage();
    const target: DiskTarget = { kind: 'disk', device: image, enrollKeyFile };
    const cfg = config({ data: { kind: 'disk', device: image, enrollKeyFile } });
    const k1 = newKey();
    await install(diskDelivery('data', k1, 1), cfg);
    const k2 = newKey();
    const luks = luksDeviceOf(target);
    const added = await addDiskKey(luks, await readLuksMetadata(luks), { name: 'data', key: k2, generation: 2 }, target, { currentDiskKey: async () => k1 });
    // What commitDiskKey writes before its luksKillSlot.
    await writeRacksealToken(luks, { secret: 'data', keyslot: added.keyslot, generation: 2, retiring: [1] }, 0, true);
    expect(opens(image, k1)).toBe(true);
    const finished = await install(diskDelivery('data', k2, 2), cfg);
    expect(finished.disk).toEqual({ changed: false, keyslot: added.keyslot, generation: 2, retired: [1] });
    expect([opens(image, k2), opens(image, k1)]).toEqual([true, false]);
    expect(await readRacksealToken(image)).toEqual({ tokenId: 0, secret: 'data', keyslot: added.keyslot, generation: 2, retiring: [] });
  });

  it('refusals: no authorising key (the header left as it was), another secret\'s disk, a key of the wrong size, not LUKS2, a second rackseal token', async () => {
    const { image, enrollKeyFile } = luksImage();
    const before = dump(image);
    const noEnroll = config({ data: { kind: 'disk', device: image } });
    await expect(install(diskDelivery('data', newKey(), 1), noEnroll)).rejects.toMatchObject({ code: 'disk.no-authorizing-key' });
    expect(dump(image)).toBe(before);
    const wrongEnroll = join(freshDir(), 'wrong.key');
    writeFileSync(wrongEnroll, 'not the passphrase');
    await expect(install(diskDelivery('data', newKey(), 1), config({ data: { kind: 'disk', device: image, enrollKeyFile: wrongEnroll } }))).rejects.toMatchObject({
      code: 'disk.no-authorizing-key',
      message: expect.stringContaining(`${wrongEnroll} does not open it`),
    });
    expect(dump(image)).toBe(before);

    await install(diskDelivery('data', newKey(), 1), config({ data: { kind: 'disk', device: image, enrollKeyFile } }));
    await expect(install(diskDelivery('other', newKey(), 5), config({ other: { kind: 'disk', device: image, enrollKeyFile } }))).rejects.toMatchObject({ code: 'disk.other-secret' });
    await expect(install(diskDelivery('data', newKey(), 2), config({ data: { kind: 'disk', device: image, keySize: 64, enrollKeyFile } }))).rejects.toMatchObject({ code: 'disk.key-size' });

    const plain = join(freshDir(), 'plain.img');
    writeFileSync(plain, Buffer.alloc(1024 * 1024));
    await expect(install(diskDelivery('data', newKey(), 1), config({ data: { kind: 'disk', device: plain, enrollKeyFile } }))).rejects.toMatchObject({ code: 'disk.not-luks2' });

    spawnSync('cryptsetup', ['token', 'import', '--json-file=-', image], { input: JSON.stringify({ type: 'rackseal', keyslots: [], format: 1, secret: 'data' }) });
    await expect(install(diskDelivery('data', newKey(), 2), config({ data: { kind: 'disk', device: image, enrollKeyFile } }))).rejects.toMatchObject({ code: 'disk.token-conflict' });
  });

  it('refuses to run cryptsetup with a key in its argv', async () => {
    const key = newKey();
    await expect(runCryptsetup({ device: '/nonexistent' }, ['open', '--test-passphrase', `--key-file=${key.reveal().toString('hex')}`], [key])).rejects.toThrow('refusing to run cryptsetup: a key would be in its argv');
  });
});
