/**
 * The agent's state dir (apps/agent/src/state) against two swtpm machines: the sealed node secret and
 * identity.json round trip; a state dir copied to the other machine is refused (StateForeignTpmError);
 * truncated, altered and oversized files are StateCorruptError, never a crash; the secret's bytes are
 * in no file of the dir, in any encoding; the dir is 0700 and its files 0600, and a dir or file that
 * another user owns or can write, a symbolic link (the dir itself or a file in it) or a FIFO is refused.
 */
import { createAttestationKey, createCertifiedDecryptKey, getEndorsementKey, getStoragePrimary, marshalKeyBlob, openTransport, TpmClient, unmarshalKeyBlob, withTpmScope } from '@rackseal/tpm2';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { deriveNodeCredential } from '@rackseal/node-identity';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdentityFormatError, type NodeIdentity, serializeIdentity } from '../apps/agent/src/state/node-identity';
import { IDENTITY_FILE, InvalidSecretNameError, StateDir } from '../apps/agent/src/state/state-dir';
import { StateCorruptError, StateForeignTpmError, StateIoError, StateNotEnrolledError, StatePermissionError } from '../apps/agent/src/state/state-errors';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { tpm2 } from './support/tpm2-tools';

const IDENTITY: NodeIdentity = {
  serverUrl: 'https://rackseal.example:8443',
  machineId: '3f0c9a52-6f0e-4b55-9d7e-0d1c2b3a4f5e',
  registrationId: '7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  credentialId: '0123456789abcdef0123456789abcdef',
  ekPubHash: 'a'.repeat(64),
  enrolledAt: '2026-12-02T16:15:38.123Z',
};

const CREDENTIAL = 'node-credential';
const mode = async (path: string) => ((await stat(path)).mode & 0o7777).toString(8).padStart(4, '0');

describe('agent state dir (swtpm)', () => {
  const fixture = useSwtpms(2);
  let root: string;
  const clients: TpmClient[] = [];
  let count = 0;
  /** A fresh path under the test's temp dir. */
  const fresh = (label: string) => join(root, `${label}-${++count}`);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rackseal-agent-state-'));
    for (const tpm of [fixture.at(0), fixture.at(1)]) {
      clients.push(new TpmClient(await openTransport(tpm.device)));
    }
  });

  afterAll(async () => {
    for (const client of clients) {
      await client.close();
    }
    await rm(root, { recursive: true, force: true });
  });

  /** swtpm has no resource manager: after each test neither TPM may hold an object or a session. */
  afterEach(async () => {
    for (const [index, tpm] of [fixture.at(0), fixture.at(1)].entries()) {
      await clients[index]!.close();
      expect(await loaded(tpm)).toBe('');
    }
  });

  async function loaded(tpm: SwtpmMachine): Promise<string> {
    const parts = await Promise.all(['handles-transient', 'handles-loaded-session', 'handles-saved-session'].map(async (c) => (await tpm2(tpm, 'getcap', c)).stdout.toString().trim()));
    return parts.join('');
  }

  /** An enrolled state dir on TPM 0: identity.json and the sealed credential. */
  async function enrolled(secret: Buffer): Promise<StateDir> {
    const state = await StateDir.open(fresh('enrolled'), { create: true });
    await state.saveIdentity(IDENTITY);
    await state.saveSealedSecret(clients[0]!, CREDENTIAL, secret);
    return state;
  }

  async function rejection(work: Promise<unknown>): Promise<Error> {
    const error = await work.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }

  describe('round trip', () => {
    it('creates the dir 0700 (parents too), writes 0600 files, reads back the identity and the secret, leaves no temporary file', async () => {
      const secret = randomBytes(32);
      const parent = fresh('parent');
      const state = await StateDir.open(join(parent, 'agent'), { create: true });
      expect([await mode(parent), await mode(state.path)]).toEqual(['0700', '0700']);
      await state.saveIdentity(IDENTITY);
      await state.saveSealedSecret(clients[0]!, CREDENTIAL, secret);
      // A second save replaces the files (rotation on re-attestation).
      const rotated = randomBytes(32);
      await state.saveSealedSecret(clients[0]!, CREDENTIAL, rotated);
      await state.saveIdentity({ ...IDENTITY, credentialId: 'fedcba9876543210fedcba9876543210' });
      expect((await readdir(state.path)).sort()).toEqual([IDENTITY_FILE, `${CREDENTIAL}.sealed`]);
      expect([await mode(join(state.path, IDENTITY_FILE)), await mode(join(state.path, `${CREDENTIAL}.sealed`))]).toEqual(['0600', '0600']);

      const reopened = await StateDir.open(state.path);
      expect(await reopened.loadIdentity()).toEqual({ ...IDENTITY, credentialId: 'fedcba9876543210fedcba9876543210' });
      expect((await reopened.loadSealedSecret(clients[0]!, CREDENTIAL)).reveal().equals(rotated)).toBe(true);
      expect(JSON.parse(await readFile(join(state.path, IDENTITY_FILE), 'utf8'))).toEqual({ version: 1, ...IDENTITY, credentialId: 'fedcba9876543210fedcba9876543210' });
    });

    it('the node credential key as libs/node-identity derives it (SecretBytes) seals and comes back as SecretBytes, printed only as [redacted]', async () => {
      const credential = deriveNodeCredential(randomBytes(32), { registrationId: IDENTITY.registrationId, ekPubHash: IDENTITY.ekPubHash, akName: Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]) });
      const state = await StateDir.open(fresh('credential'), { create: true });
      await state.saveIdentity({ ...IDENTITY, credentialId: credential.credentialId });
      await state.saveSealedSecret(clients[0]!, CREDENTIAL, credential.key);
      const loaded = await state.loadSealedSecret(clients[0]!, CREDENTIAL);
      expect(loaded).toBeInstanceOf(SecretBytes);
      expect(loaded.reveal().equals(credential.key.reveal())).toBe(true);
      expect([`${String(loaded)}`, JSON.stringify({ loaded })]).toEqual(['[redacted]', '{"loaded":"[redacted]"}']);
      expect((await state.loadIdentity()).credentialId).toBe(credential.credentialId);
      const sealed = await readFile(join(state.path, `${CREDENTIAL}.sealed`));
      expect(sealed.includes(credential.key.reveal())).toBe(false);
    });

    it('the secret is in no file of the dir: not raw, hex, base64 or base64url; the sealed file is a KeyBlob (RSKB) of a keyedHash object', async () => {
      const secret = randomBytes(32);
      const state = await enrolled(secret);
      const encodings = [secret, Buffer.from(secret.toString('hex')), Buffer.from(secret.toString('hex').toUpperCase()), Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('base64url'))];
      const files = await readdir(state.path);
      expect(files.length).toBe(2);
      for (const file of files) {
        const bytes = await readFile(join(state.path, file));
        for (const encoded of encodings) {
          expect(bytes.includes(encoded)).toBe(false);
        }
        // Nor any 8-byte window of it.
        for (let i = 0; i + 8 <= secret.length; i++) {
          expect(bytes.includes(secret.subarray(i, i + 8))).toBe(false);
        }
      }
      const sealed = await readFile(join(state.path, `${CREDENTIAL}.sealed`));
      expect(sealed.subarray(0, 4).toString('latin1')).toBe('RSKB');
      expect(unmarshalKeyBlob(sealed).public.type).toBe(0x0008);
    });
  });

  describe('a state dir copied to another machine', () => {
    it('TPM B refuses the sealed credential (StateForeignTpmError, other-parent); the identity, not secret, still reads', async () => {
      const secret = randomBytes(32);
      const state = await enrolled(secret);
      const copy = fresh('copied');
      await cp(state.path, copy, { recursive: true, preserveTimestamps: true });
      const onB = await StateDir.open(copy);
      expect(await onB.loadIdentity()).toEqual(IDENTITY);
      const error = await rejection(onB.loadSealedSecret(clients[1]!, CREDENTIAL));
      expect(error).toBeInstanceOf(StateForeignTpmError);
      expect({ kind: (error as StateForeignTpmError).kind, refusal: (error as StateForeignTpmError).refusal }).toEqual({ kind: 'foreign-tpm', refusal: 'other-parent' });
      expect(error.message).toBe(
        `${join(copy, `${CREDENTIAL}.sealed`)} was sealed by another TPM: the state dir was copied from another machine, or this TPM was cleared since enrollment (enroll again)`,
      );
      // The original still unseals on its own machine.
      expect((await state.loadSealedSecret(clients[0]!, CREDENTIAL)).reveal().equals(secret)).toBe(true);
    });

    it('a copy whose blob names TPM B\'s storage key is refused by TPM B itself (TPM_RC_INTEGRITY)', async () => {
      const state = await enrolled(randomBytes(32));
      const copy = fresh('relabelled');
      await cp(state.path, copy, { recursive: true });
      const file = join(copy, `${CREDENTIAL}.sealed`);
      const srkB = await withTpmScope(clients[1]!, (s) => getStoragePrimary(s));
      await writeFile(file, marshalKeyBlob({ ...unmarshalKeyBlob(await readFile(file)), parent: srkB.descriptor }));
      const error = await rejection((await StateDir.open(copy)).loadSealedSecret(clients[1]!, CREDENTIAL));
      expect(error).toBeInstanceOf(StateForeignTpmError);
      expect((error as StateForeignTpmError).refusal).toBe('integrity');
      expect(error.message).toBe(`${file} is refused by this machine's TPM (TPM_RC_INTEGRITY): it was sealed by another TPM, or altered (enroll again)`);
    });
  });

  describe('corrupt files are refused, nothing crashes', () => {
    it.each([
      ['empty', (b: Buffer) => b.subarray(0, 0), /is corrupt: truncated or malformed key blob: rackseal key blob\.magic at offset 0: /],
      ['cut after the magic', (b: Buffer) => b.subarray(0, 5), /is corrupt: truncated or malformed key blob: rackseal key blob\.version at offset 4: /],
      ['cut in half', (b: Buffer) => b.subarray(0, b.length >> 1), /is corrupt: truncated or malformed key blob: TPM2B_PUBLIC\.publicArea at offset \d+: needs/],
      ['one byte short', (b: Buffer) => b.subarray(0, b.length - 1), /is corrupt: truncated or malformed key blob: TPM2B_PRIVATE\.buffer at offset \d+: needs \d+ byte\(s\), \d+ left/],
      ['one byte more', (b: Buffer) => Buffer.concat([b, Buffer.from([0])]), /is corrupt: truncated or malformed key blob: rackseal key blob/],
      ['another magic', (b: Buffer) => Buffer.concat([Buffer.from('XXXX'), b.subarray(4)]), /is corrupt: key blob: magic 0x58585858 is not "RSKB"/],
      ['version 2', (b: Buffer) => { const c = Buffer.from(b); c.writeUInt16BE(2, 4); return c; }, /is corrupt: key blob: version 2 is not supported/],
    ])('%s: StateCorruptError naming the file and the fault', async (_label, damage, message) => {
      const state = await enrolled(randomBytes(32));
      const file = join(state.path, `${CREDENTIAL}.sealed`);
      await writeFile(file, damage(await readFile(file)));
      const error = await rejection(state.loadSealedSecret(clients[0]!, CREDENTIAL));
      expect(error).toBeInstanceOf(StateCorruptError);
      expect(error.message.startsWith(`${file} is corrupt: `)).toBe(true);
      expect(error.message).toMatch(message);
      expect(error.message.endsWith('(enroll again to replace it)')).toBe(true);
    });

    it('a flipped bit in the private area: the TPM\'s integrity check refuses it (StateForeignTpmError, integrity)', async () => {
      const state = await enrolled(randomBytes(32));
      const file = join(state.path, `${CREDENTIAL}.sealed`);
      const bytes = await readFile(file);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x80;
      await writeFile(file, bytes);
      const error = await rejection(state.loadSealedSecret(clients[0]!, CREDENTIAL));
      expect(error).toBeInstanceOf(StateForeignTpmError);
      expect((error as StateForeignTpmError).refusal).toBe('integrity');
    });

    it('another kind of key blob in the file (the certified decrypt key): StateCorruptError, before any TPM command', async () => {
      const state = await enrolled(randomBytes(32));
      const keyBlob = await withTpmScope(clients[0]!, async (s) => {
        const ek = await getEndorsementKey(s, 'rsa-2048');
        return (await createCertifiedDecryptKey(s, await createAttestationKey(s, ek), randomBytes(16))).blob;
      });
      const file = join(state.path, `${CREDENTIAL}.sealed`);
      await writeFile(file, marshalKeyBlob(keyBlob));
      const error = await rejection(state.loadSealedSecret(clients[0]!, CREDENTIAL));
      expect(error).toBeInstanceOf(StateCorruptError);
      expect(error.message).toBe(`${file} is corrupt: not a sealed secret: its object type is 0x1, not TPM_ALG_KEYEDHASH (enroll again to replace it)`);
    });

    it('an oversized file is refused by its size without being read whole', async () => {
      const state = await enrolled(randomBytes(32));
      const file = join(state.path, `${CREDENTIAL}.sealed`);
      await truncate(file, 64 * 1024 * 1024);
      const error = await rejection(state.loadSealedSecret(clients[0]!, CREDENTIAL));
      expect(error).toBeInstanceOf(StateCorruptError);
      expect(error.message).toBe(`${file} is corrupt: larger than 4096 bytes, more than the agent ever writes there (enroll again to replace it)`);
    });

    it.each([
      ['not JSON', '{"version": 1,', 'not UTF-8 JSON'],
      ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'not UTF-8 JSON'],
      ['an array', '[]', 'not a JSON object'],
      ['version 2', JSON.stringify({ ...IDENTITY, version: 2 }), 'version 2 is not supported (this agent reads version 1)'],
      ['no version', JSON.stringify(IDENTITY), 'member version is missing'],
      ['an unknown member', JSON.stringify({ version: 1, ...IDENTITY, credential: 'x' }), 'unknown member "credential"'],
      ['a missing member', JSON.stringify({ version: 1, ...IDENTITY, machineId: undefined }), 'member machineId is missing'],
      ['a number for an id', JSON.stringify({ version: 1, ...IDENTITY, registrationId: 7 }), 'registrationId must be a string, not number'],
      ['a machine id with a space', JSON.stringify({ version: 1, ...IDENTITY, machineId: 'a b' }), 'machineId is not an id (1 to 128 of A-Z a-z 0-9 . _ : -)'],
      ['a registration id with a space', JSON.stringify({ version: 1, ...IDENTITY, registrationId: 'a b' }), 'registrationId is not valid: a registration ID is 1 to 128 printable ASCII characters without spaces'],
      ['an upper-case credential id', JSON.stringify({ version: 1, ...IDENTITY, credentialId: 'A'.repeat(32) }), 'credentialId is not a credential ID (32 lower-case hex digits)'],
      ['an upper-case ekPubHash', JSON.stringify({ version: 1, ...IDENTITY, ekPubHash: 'A'.repeat(64) }), 'ekPubHash is not valid: an ekPubHash is 64 lower-case hex digits'],
      ['a file: URL', JSON.stringify({ version: 1, ...IDENTITY, serverUrl: 'file:///etc/passwd' }), 'serverUrl must be http(s), not file:'],
      ['a URL with a password', JSON.stringify({ version: 1, ...IDENTITY, serverUrl: 'https://u:p@h/' }), 'serverUrl must not carry a user name or password'],
      ['a 31st of February', JSON.stringify({ version: 1, ...IDENTITY, enrolledAt: '2026-02-31T00:00:00.000Z' }), 'enrolledAt 2026-02-31T00:00:00.000Z is not a real time'],
      ['a local time', JSON.stringify({ version: 1, ...IDENTITY, enrolledAt: '2026-02-03T00:00:00+01:00' }), 'enrolledAt is not an ISO 8601 UTC time like 2026-01-02T03:04:05.000Z'],
    ])('identity.json with %s: StateCorruptError naming the fault', async (_label, content, reason) => {
      const state = await StateDir.open(fresh('identity'), { create: true });
      await writeFile(join(state.path, IDENTITY_FILE), content, { mode: 0o600 });
      const error = await rejection(state.loadIdentity());
      expect(error).toBeInstanceOf(StateCorruptError);
      expect(error.message).toBe(`${join(state.path, IDENTITY_FILE)} is corrupt: ${reason} (enroll again to replace it)`);
    });

    it('the agent never writes an identity it would refuse: IdentityFormatError, and the old file stays', async () => {
      const state = await StateDir.open(fresh('identity-write'), { create: true });
      await state.saveIdentity(IDENTITY);
      const before = await readFile(join(state.path, IDENTITY_FILE));
      const error = await rejection(state.saveIdentity({ ...IDENTITY, ekPubHash: 'not-a-hash' }));
      expect(error).toBeInstanceOf(IdentityFormatError);
      expect(() => serializeIdentity({ ...IDENTITY, serverUrl: 'ftp://x' })).toThrow('node identity: serverUrl must be http(s), not ftp:');
      expect((await readFile(join(state.path, IDENTITY_FILE))).equals(before)).toBe(true);
    });
  });

  describe('missing state', () => {
    it('no state dir: StateNotEnrolledError (without create); an empty dir: no identity, no credential', async () => {
      const missing = fresh('missing');
      const error = await rejection(StateDir.open(missing));
      expect(error).toBeInstanceOf(StateNotEnrolledError);
      expect(error.message).toBe(`${missing} does not exist: this machine is not enrolled (run rackseal-agent enroll)`);
      await expect(lstat(missing)).rejects.toThrow(/ENOENT/);
      const empty = await StateDir.open(missing, { create: true });
      await expect(empty.loadIdentity()).rejects.toThrow(new StateNotEnrolledError(join(missing, IDENTITY_FILE)));
      await expect(empty.loadSealedSecret(clients[0]!, CREDENTIAL)).rejects.toThrow(new StateNotEnrolledError(join(missing, `${CREDENTIAL}.sealed`)));
    });

    it('a secret name that is not a plain file name is refused before any file or TPM is touched', async () => {
      const state = await StateDir.open(fresh('names'), { create: true });
      for (const name of ['../identity', 'a/b', '', '-x', 'Upper', 'x'.repeat(65)]) {
        await expect(state.saveSealedSecret(clients[0]!, name, randomBytes(8))).rejects.toThrow(InvalidSecretNameError);
        await expect(state.loadSealedSecret(clients[0]!, name)).rejects.toThrow(InvalidSecretNameError);
      }
      expect(await readdir(state.path)).toEqual([]);
    });
  });

  describe('permissions', () => {
    it.each([['0777'], ['0770'], ['0720'], ['0702']])('an existing dir of mode %s is refused (writable by group or others)', async (octal) => {
      const dir = fresh('loose');
      await mkdir(dir);
      await chmod(dir, parseInt(octal, 8));
      for (const create of [false, true]) {
        const error = await rejection(StateDir.open(dir, { create }));
        expect(error).toBeInstanceOf(StatePermissionError);
        expect(error.message).toBe(`${dir}: is writable by group or others (mode ${octal}); the agent trusts only what it alone can write (chmod go-w)`);
      }
      // The agent does not "fix" it: an operator must look at who could have written there.
      expect(await mode(dir)).toBe(octal);
    });

    it('an existing 0755 dir is used as it is', async () => {
      const dir = fresh('readable');
      await mkdir(dir, { mode: 0o755 });
      const state = await StateDir.open(dir);
      await state.saveIdentity(IDENTITY);
      expect(await mode(dir)).toBe('0755');
      expect(await mode(join(dir, IDENTITY_FILE))).toBe('0600');
    });

    it('a dir owned by another user is refused', async () => {
      let dir = '/';
      if (process.geteuid?.() === 0) {
        dir = fresh('foreign');
        await mkdir(dir, { mode: 0o700 });
        await chown(dir, 65534, 65534);
      }
      const error = await rejection(StateDir.open(dir));
      expect(error).toBeInstanceOf(StatePermissionError);
      expect(error.message).toMatch(/: is owned by uid \d+, not by the agent's uid \d+$/);
    });

    it('a state dir path that is a file is refused', async () => {
      const file = fresh('file');
      await writeFile(file, 'x');
      const error = await rejection(StateDir.open(file, { create: true }));
      expect(error.message).toBe(`${file}: is not a directory`);
      expect(error).toBeInstanceOf(StatePermissionError);
    });

    it('a state file that group or others can write, or another user owns, is refused on read', async () => {
      const state = await enrolled(randomBytes(32));
      const file = join(state.path, IDENTITY_FILE);
      await chmod(file, 0o666);
      const error = await rejection(state.loadIdentity());
      expect(error).toBeInstanceOf(StatePermissionError);
      expect(error.message).toBe(`${file}: is writable by group or others (mode 0666); the agent trusts only what it alone can write (chmod go-w)`);
      await chmod(file, 0o600);
      if (process.geteuid?.() === 0) {
        await chown(file, 65534, 65534);
        await expect(state.loadIdentity()).rejects.toThrow(`${file}: is owned by uid 65534, not by the agent's uid 0`);
      }
    });

    it('a symbolic link in place of a state file is refused, even to a good file', async () => {
      const state = await enrolled(randomBytes(32));
      const other = await enrolled(randomBytes(32));
      const file = join(state.path, `${CREDENTIAL}.sealed`);
      await rm(file);
      await symlink(join(other.path, `${CREDENTIAL}.sealed`), file);
      const error = await rejection(state.loadSealedSecret(clients[0]!, CREDENTIAL));
      expect(error).toBeInstanceOf(StatePermissionError);
      expect(error.message).toBe(`${file}: is a symbolic link; the agent keeps only regular files in its state dir`);
    });

    it('a state dir that is a symbolic link is refused, even to a good dir the agent owns, and nothing is written through it', async () => {
      const real = await enrolled(randomBytes(32));
      const before = (await readdir(real.path)).sort();
      const link = fresh('link');
      await symlink(real.path, link);
      for (const create of [false, true]) {
        const error = await rejection(StateDir.open(link, { create }));
        expect(error).toBeInstanceOf(StatePermissionError);
        expect(error.message).toBe(`${link}: is a symbolic link; the state dir must be a real directory (give its real path)`);
      }
      // A dangling link is refused too, not created through (enroll would make the target).
      const dangling = fresh('dangling');
      await symlink(join(root, 'nowhere-yet'), dangling);
      await expect(StateDir.open(dangling, { create: true })).rejects.toThrow(`${dangling}: is a symbolic link; the state dir must be a real directory (give its real path)`);
      expect((await readdir(root)).includes('nowhere-yet')).toBe(false);
      expect((await readdir(real.path)).sort()).toEqual(before);
    });

    it('a symbolic link placed for a state file is replaced on write, never written through', async () => {
      const state = await StateDir.open(fresh('write-link'), { create: true });
      const victim = join(root, `victim-${++count}`);
      await writeFile(victim, 'keep');
      await symlink(victim, join(state.path, IDENTITY_FILE));
      await state.saveIdentity(IDENTITY);
      expect(await readFile(victim, 'utf8')).toBe('keep');
      expect((await lstat(join(state.path, IDENTITY_FILE))).isFile()).toBe(true);
      expect(await state.loadIdentity()).toEqual(IDENTITY);
    });

    it('a FIFO in place of identity.json is refused at once, not read (which would block)', async () => {
      const state = await StateDir.open(fresh('fifo'), { create: true });
      const file = join(state.path, IDENTITY_FILE);
      execFileSync('mkfifo', ['-m', '0600', file]);
      const error = await rejection(state.loadIdentity());
      expect(error).toBeInstanceOf(StatePermissionError);
      expect(error.message).toBe(`${file}: is not a regular file`);
    });

    it('a write that fails (a directory where the file goes) is StateIoError and leaves no temporary file', async () => {
      const state = await StateDir.open(fresh('blocked'), { create: true });
      await mkdir(join(state.path, IDENTITY_FILE));
      await writeFile(join(state.path, IDENTITY_FILE, 'keep'), 'x');
      const error = await rejection(state.saveIdentity(IDENTITY));
      expect(error).toBeInstanceOf(StateIoError);
      expect(error.message).toMatch(new RegExp(`^cannot write ${join(state.path, IDENTITY_FILE)}: (EISDIR|ENOTEMPTY|EEXIST)$`));
      expect(await readdir(state.path)).toEqual([IDENTITY_FILE]);
    });
  });
});
