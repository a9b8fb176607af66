/**
 * Software import blobs (libs/tpm2 createImportBlob and `rackseal seal`) against swtpm through
 * tpm2-tools, the agent's sequence (docs/architecture.md §4.5; Part 3 §13.3, §12.2, §12.7):
 * tpm2_import under the EK, tpm2_load, tpm2_unseal with a PolicyPCR session, for RSA-2048, P-256 (L-2)
 * and swtpm's P-384 EK parents. A PCR extend must make Unseal fail with TPM_RC_POLICY_FAIL; limits
 * must be refused before any TPM.
 */
import {
  createImportBlob,
  objectName,
  parsePcrSelection,
  parsePcrValues,
  PolicyDigest,
  SealedDataTooLargeError,
  TPM_ALG_ID,
  unmarshalTpm2bPublic,
} from '@rackseal/tpm2';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRacksealCli } from './support/cli-runner';
import { useSwtpms } from './support/swtpm';
import { flushAllContexts, tpm2 } from './support/tpm2-tools';

function cli(...args: string[]): { status: number | null; stderr: string } {
  const { status, stderr } = runRacksealCli(args);
  return { status, stderr };
}

interface Parent {
  label: string;
  handle: () => string;
  pubFile: string;
  auth: 'policysecret' | 'password';
}

const SELECTION = 'sha256:0,7';
/** MAX_SYM_DATA: the most a sealed object holds. */
const MAX_BYTES = 128;

describe('import blobs imported, loaded and unsealed by swtpm', () => {
  const fixture = useSwtpms(1);
  let dir: string;
  const at = (file: string): string => join(dir, file);

  const PARENTS: Parent[] = [
    { label: 'RSA-2048 EK 0x81010001', handle: () => '0x81010001', pubFile: 'ek-rsa.pub', auth: 'policysecret' },
    { label: 'ECC P-256 EK (L-2)', handle: () => at('ek-p256.ctx'), pubFile: 'ek-p256.pub', auth: 'policysecret' },
    { label: 'ECC P-384 EK 0x81010016', handle: () => '0x81010016', pubFile: 'ek-p384.pub', auth: 'password' },
  ];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-import-'));
    const tpm = fixture.at(0);
    try {
      await tpm2(tpm, 'readpublic', '-c', '0x81010001', '-o', at('ek-rsa.pub'));
      await tpm2(tpm, 'readpublic', '-c', '0x81010016', '-o', at('ek-p384.pub'));
      await tpm2(tpm, 'createek', '-G', 'ecc', '-c', at('ek-p256.ctx'), '-u', at('ek-p256.pub'));
    } finally {
      await flushAllContexts(tpm);
    }
    // Give PCR 0 a non-zero value so the policy binds to something other than the reset state.
    await tpm.extendPcr(0, 'sha256', randomBytes(32).toString('hex'));
    await tpm2(tpm, 'pcrread', SELECTION, '-o', at('pcrs.bin'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** EK authorization for Import and Load: a fresh PolicySecret session each time, or nothing. */
  async function parentAuth(parent: Parent): Promise<string[]> {
    if (parent.auth === 'password') {
      return [];
    }
    await tpm2(fixture.at(0), 'startauthsession', '--policy-session', '-S', at('s.ctx'));
    await tpm2(fixture.at(0), 'policysecret', '-S', at('s.ctx'), '-c', 'e');
    return ['-P', `session:${at('s.ctx')}`];
  }

  /** tpm2_import then tpm2_load; returns the object's context file and the Name tpm2_load printed. */
  async function importAndLoad(parent: Parent, blobDir: string): Promise<{ ctx: string; name: string }> {
    const tpm = fixture.at(0);
    const priv = join(blobDir, 'obj.priv');
    const ctx = join(blobDir, 'obj.ctx');
    try {
      await tpm2(tpm, 'import', '-C', parent.handle(), ...(await parentAuth(parent)),
        '-u', join(blobDir, 'obj.pub'), '-i', join(blobDir, 'obj.dpriv'), '-s', join(blobDir, 'obj.seed'), '-r', priv);
      await flushAllContexts(tpm);
      const loaded = await tpm2(tpm, 'load', '-C', parent.handle(), ...(await parentAuth(parent)),
        '-u', join(blobDir, 'obj.pub'), '-r', priv, '-c', ctx);
      const name = /name: ([0-9a-f]+)/.exec(loaded.stdout.toString())?.[1] ?? '';
      return { ctx, name };
    } finally {
      await flushAllContexts(tpm);
    }
  }

  async function unsealWithPcrPolicy(ctx: string): Promise<Buffer> {
    const tpm = fixture.at(0);
    const out = at(`unsealed-${randomBytes(4).toString('hex')}.bin`);
    try {
      await tpm2(tpm, 'startauthsession', '--policy-session', '-S', at('p.ctx'));
      await tpm2(tpm, 'policypcr', '-S', at('p.ctx'), '-l', SELECTION);
      await tpm2(tpm, 'unseal', '-c', ctx, '-p', `session:${at('p.ctx')}`, '-o', out);
      return await readFile(out);
    } finally {
      await flushAllContexts(tpm);
    }
  }

  async function unsealWithPassword(ctx: string): Promise<Buffer> {
    const out = at(`unsealed-${randomBytes(4).toString('hex')}.bin`);
    try {
      await tpm2(fixture.at(0), 'unseal', '-c', ctx, '-o', out);
      return await readFile(out);
    } finally {
      await flushAllContexts(fixture.at(0));
    }
  }

  async function writeBlob(name: string, blob: { public: Buffer; duplicate: Buffer; inSymSeed: Buffer }): Promise<string> {
    const blobDir = at(name);
    await mkdir(blobDir);
    await writeFile(join(blobDir, 'obj.pub'), blob.public);
    await writeFile(join(blobDir, 'obj.dpriv'), blob.duplicate);
    await writeFile(join(blobDir, 'obj.seed'), blob.inSymSeed);
    return blobDir;
  }

  it.each(PARENTS)('$label: `rackseal seal --pcrs sha256:0,7` → import, load, PolicyPCR unseal returns exactly the secret', async (parent) => {
    const secret = randomBytes(32);
    await writeFile(at('secret.bin'), secret);
    const blobDir = at(`cli-${parent.pubFile}`);
    const run = cli('seal', '--ek', at(parent.pubFile), '--pcrs', SELECTION, '--pcr-values', at('pcrs.bin'), '--secret', at('secret.bin'), '--out-dir', blobDir);
    expect(run).toEqual({ status: 0, stderr: '' });
    const pub = unmarshalTpm2bPublic(await readFile(join(blobDir, 'obj.pub')));
    const selection = parsePcrSelection(SELECTION);
    const expected = new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).pcr(selection, parsePcrValues(selection, await readFile(at('pcrs.bin')))).digest;
    expect(pub.objectAttributes).toBe(0x80);
    expect(pub.authPolicy.equals(expected)).toBe(true);
    const { ctx, name } = await importAndLoad(parent, blobDir);
    expect(name).toBe(objectName(pub).toString('hex'));
    expect((await unsealWithPcrPolicy(ctx)).toString('hex')).toBe(secret.toString('hex'));
  });

  it.each(PARENTS)('$label: the library blob without a policy (userWithAuth) unseals with the empty password', async (parent) => {
    const secret = randomBytes(MAX_BYTES);
    const blob = createImportBlob(unmarshalTpm2bPublic(await readFile(at(parent.pubFile))), secret);
    expect(blob.objectPublic.objectAttributes).toBe(0x40);
    const { ctx } = await importAndLoad(parent, await writeBlob(`lib-nopolicy-${parent.pubFile}`, blob));
    expect((await unsealWithPassword(ctx)).toString('hex')).toBe(secret.toString('hex'));
  });

  it('129 bytes are refused: SealedDataTooLargeError from the library, exit 2 naming MAX_SYM_DATA from the CLI', async () => {
    const ekPublic = unmarshalTpm2bPublic(await readFile(at('ek-rsa.pub')));
    expect(() => createImportBlob(ekPublic, randomBytes(129))).toThrow(SealedDataTooLargeError);
    await writeFile(at('big.bin'), randomBytes(129));
    expect(cli('seal', '--ek', at('ek-rsa.pub'), '--secret', at('big.bin'), '--out-dir', at('big'))).toEqual({
      status: 2,
      stderr: 'rackseal: --secret: sealed data of 129 bytes exceeds MAX_SYM_DATA (128 bytes)\n',
    });
  });

  it('PCR values of the wrong length, a bad selection, or --pcrs without values exit 2', async () => {
    await writeFile(at('secret.bin'), randomBytes(32));
    await writeFile(at('short.bin'), (await readFile(at('pcrs.bin'))).subarray(0, 63));
    const base = ['seal', '--ek', at('ek-rsa.pub'), '--secret', at('secret.bin'), '--out-dir', at('refused')];
    expect(cli(...base, '--pcrs', SELECTION, '--pcr-values', at('short.bin'))).toEqual({
      status: 2,
      stderr: 'rackseal: --pcr-values: PCR values for sha256:0,7 must be 64 bytes, got 63\n',
    });
    expect(cli(...base, '--pcrs', 'sha256:0,7+sha1:1', '--pcr-values', at('pcrs.bin'))).toEqual({
      status: 2,
      stderr: 'rackseal: --pcr-values: PCR values for sha256:0,7+sha1:1 must be 84 bytes, got 64\n',
    });
    expect(cli(...base, '--pcrs', 'sha257:0', '--pcr-values', at('pcrs.bin')).status).toBe(2);
    expect(cli(...base, '--pcrs', SELECTION)).toEqual({ status: 2, stderr: 'rackseal: --pcrs and --pcr-values go together\n' });
  });

  // Last: it extends a PCR, then reboots the TPM to restore the PCRs for anything after it.
  it.each(PARENTS)('$label: after PCR 7 is extended, Unseal fails with TPM_RC_POLICY_FAIL (0x99D)', async (parent) => {
    const tpm = fixture.at(0);
    const selection = parsePcrSelection(SELECTION);
    const values = parsePcrValues(selection, await readFile(at('pcrs.bin')));
    const secret = randomBytes(32);
    const blob = createImportBlob(unmarshalTpm2bPublic(await readFile(at(parent.pubFile))), secret, {
      authPolicy: new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).pcr(selection, values).digest,
    });
    const { ctx } = await importAndLoad(parent, await writeBlob(`lib-pcr-${parent.pubFile}`, blob));
    expect((await unsealWithPcrPolicy(ctx)).equals(secret)).toBe(true);
    await tpm.extendPcr(7, 'sha256', randomBytes(32).toString('hex'));
    try {
      await expect(unsealWithPcrPolicy(ctx)).rejects.toThrow(/Esys_Unseal\(0x99D\) - tpm:session\(1\):a policy check failed/);
    } finally {
      // A reboot resets the PCRs (pcrs.bin is re-read) and voids saved contexts: recreate the P-256 EK.
      await tpm.reboot();
      await tpm2(tpm, 'pcrread', SELECTION, '-o', at('pcrs.bin'));
      try {
        await tpm2(tpm, 'createek', '-G', 'ecc', '-c', at('ek-p256.ctx'), '-u', at('ek-p256.pub'));
      } finally {
        await flushAllContexts(tpm);
      }
    }
  });
});
