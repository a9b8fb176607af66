/**
 * Software MakeCredential (libs/tpm2 and `rackseal credential make`) against the oracle that matters:
 * swtpm's TPM2_ActivateCredential, driven by tpm2-tools (Part 1 §24, Part 3 §12.5). For the RSA-2048 EK
 * (0x81010001), a P-256 EK from the L-2 template (tpm2_createek -G ecc) and swtpm's P-384 EK
 * (0x81010016, SHA-384 and AES-256), with the EK given as TPM2B_PUBLIC, as a PEM public key and as
 * its EK certificate. ActivateCredential only needs the AK loaded, not its parent, so one RSA AK
 * made under the RSA EK serves all three.
 */
import {
  makeCredential,
  marshalCredentialFile,
  parseCredentialFile,
  unmarshalTpm2bPublic,
  unmarshalTpm2bIdObject,
  unmarshalTpm2bEncryptedSecret,
} from '@rackseal/tpm2';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRacksealCli } from './support/cli-runner';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { flushAllContexts, tpm2 } from './support/tpm2-tools';

function cli(...args: string[]): { status: number | null; stderr: string } {
  const { status, stderr } = runRacksealCli(args);
  return { status, stderr };
}

interface Ek {
  label: string;
  /** -C for tpm2-tools: a persistent handle or a context file. */
  handle: () => string;
  pubFile: string;
  certDer: (tpm: SwtpmMachine) => Promise<Buffer>;
  /** PolicySecret(endorsement) session (low-range EKs), or the empty password (P-384: userWithAuth, PolicyB). */
  auth: 'policysecret' | 'password';
  nameAlgSize: number;
  secretSize: number;
}

describe('MakeCredential activated by swtpm (tpm2_activatecredential)', () => {
  const fixture = useSwtpms(1, { p256: true });
  let dir: string;
  let akName: Buffer;
  const at = (file: string): string => join(dir, file);

  const EKS: Ek[] = [
    { label: 'RSA-2048 EK 0x81010001', handle: () => '0x81010001', pubFile: 'ek-rsa.pub', certDer: (t) => t.rsaEkCertDer(), auth: 'policysecret', nameAlgSize: 32, secretSize: 256 },
    { label: 'ECC P-256 EK (L-2)', handle: () => at('ek-p256.ctx'), pubFile: 'ek-p256.pub', certDer: (t) => t.p256EkCertDer(), auth: 'policysecret', nameAlgSize: 32, secretSize: 68 },
    { label: 'ECC P-384 EK 0x81010016', handle: () => '0x81010016', pubFile: 'ek-p384.pub', certDer: (t) => t.eccEkCertDer(), auth: 'password', nameAlgSize: 48, secretSize: 100 },
  ];

  /**
   * The encrypted secret's layout: an RSA EK's is TPM2B of the key's size; an ECC EK's a TPM2B
   * holding TPMS_ECC_POINT (TPM 2.0 Part 2 §11.2.5.2), whose coordinates are TPM2B_ECC_PARAMETERs
   * of at most the curve's size. tpm2-tools writes a coordinate without its leading zero bytes (a
   * shorter TPM2B, as valid), we write it at full size: so 1 point in ~128 is a byte or two shorter.
   */
  function secretLayout(secret: Buffer, ek: Ek): { size: number } | { x: boolean; y: boolean; consistent: boolean } {
    if (ek.pubFile === 'ek-rsa.pub') {
      return { size: secret.length };
    }
    const coordinate = (ek.secretSize - 4) / 2;
    const xSize = secret.readUInt16BE(2);
    const ySize = secret.readUInt16BE(4 + xSize);
    return {
      x: xSize > 0 && xSize <= coordinate,
      y: ySize > 0 && ySize <= coordinate,
      consistent: secret.readUInt16BE(0) === 4 + xSize + ySize && secret.length === 6 + xSize + ySize,
    };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-cred-'));
    const tpm = fixture.at(0);
    try {
      await tpm2(tpm, 'readpublic', '-c', '0x81010001', '-o', at('ek-rsa.pub'));
      await tpm2(tpm, 'readpublic', '-c', '0x81010016', '-o', at('ek-p384.pub'));
      await tpm2(tpm, 'createek', '-G', 'ecc', '-c', at('ek-p256.ctx'), '-u', at('ek-p256.pub'));
      await flushAllContexts(tpm);
      await tpm2(tpm, 'createak', '-C', '0x81010001', '-c', at('ak.ctx'), '-G', 'rsa', '-g', 'sha256', '-s', 'rsassa', '-u', at('ak.pub'), '-n', at('ak.name'));
    } finally {
      await flushAllContexts(tpm);
    }
    akName = await readFile(at('ak.name'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** tpm2_activatecredential with the EK's auth; returns the recovered credential. Always flushes. */
  async function activate(ek: Ek, credentialFile: string): Promise<Buffer> {
    const tpm = fixture.at(0);
    const out = at(`activated-${randomBytes(4).toString('hex')}.bin`);
    try {
      const args = ['-c', at('ak.ctx'), '-C', ek.handle(), '-i', credentialFile, '-o', out];
      if (ek.auth === 'policysecret') {
        await tpm2(tpm, 'startauthsession', '--policy-session', '-S', at('s.ctx'));
        await tpm2(tpm, 'policysecret', '-S', at('s.ctx'), '-c', 'e');
        args.push('-P', `session:${at('s.ctx')}`);
      }
      await tpm2(tpm, 'activatecredential', ...args);
      return await readFile(out);
    } finally {
      await flushAllContexts(tpm);
    }
  }

  it.each(EKS)('$label: the library\'s credential (EK from TPM2B_PUBLIC) activates to exactly the secret', async (ek) => {
    const ekPublic = unmarshalTpm2bPublic(await readFile(at(ek.pubFile)));
    const secret = randomBytes(32);
    const made = makeCredential(ekPublic, akName, secret);
    // Sizes as the TPM makes them: the HMAC and the seed follow the EK nameAlg and key type.
    expect(made.credentialBlob.readUInt16BE(0)).toBe(2 + ek.nameAlgSize + 2 + 32);
    expect(unmarshalTpm2bIdObject(made.credentialBlob).integrityHMAC).toHaveLength(ek.nameAlgSize);
    expect(unmarshalTpm2bEncryptedSecret(made.encryptedSecret)).toHaveLength(ek.secretSize);
    const file = at(`lib-${ek.pubFile}.cred`);
    await writeFile(file, marshalCredentialFile(made));
    expect((await activate(ek, file)).toString('hex')).toBe(secret.toString('hex'));
  });

  it.each(EKS)('$label: `rackseal credential make` with the EK as TPM2B_PUBLIC, PEM key, PEM and DER certificate', async (ek) => {
    const certificate = new X509Certificate(await ek.certDer(fixture.at(0)));
    const inputs: Record<string, string | Buffer> = {
      'tpm2b-public': await readFile(at(ek.pubFile)),
      'pem-key': certificate.publicKey.export({ type: 'spki', format: 'pem' }),
      'pem-cert': certificate.toString(),
      'der-cert': certificate.raw,
    };
    for (const [form, content] of Object.entries(inputs)) {
      const ekFile = at(`${ek.pubFile}.${form}`);
      await writeFile(ekFile, content);
      const secret = randomBytes(32);
      await writeFile(at('secret.bin'), secret);
      const out = at(`cli-${ek.pubFile}-${form}.cred`);
      const run = cli('credential', 'make', '--ek', ekFile, '--name', akName.toString('hex'), '--secret', at('secret.bin'), '--out', out);
      expect({ form, ...run }).toEqual({ form, status: 0, stderr: '' });
      expect({ form, activated: (await activate(ek, out)).toString('hex') }).toEqual({ form, activated: secret.toString('hex') });
    }
  });

  it.each(EKS)('$label: a credential made for another Name is refused with TPM_RC_INTEGRITY (0x1DF)', async (ek) => {
    const otherName = Buffer.concat([akName.subarray(0, 2), randomBytes(32)]);
    const made = makeCredential(unmarshalTpm2bPublic(await readFile(at(ek.pubFile))), otherName, randomBytes(32));
    const file = at(`other-${ek.pubFile}.cred`);
    await writeFile(file, marshalCredentialFile(made));
    await expect(activate(ek, file)).rejects.toThrow(/Esys_ActivateCredential\(0x1DF\) - tpm:parameter\(1\):integrity check failed/);
  });

  it('a tampered credential blob is refused with 0x1DF; a tampered encrypted seed is refused too', async () => {
    const [rsa, p256] = [EKS[0]!, EKS[1]!];
    const made = makeCredential(unmarshalTpm2bPublic(await readFile(at(rsa.pubFile))), akName, randomBytes(32));
    const file = marshalCredentialFile(made);
    const encIdentityByte = 8 + made.credentialBlob.length - 1;
    const tampered = Buffer.from(file);
    tampered[encIdentityByte] = tampered[encIdentityByte]! ^ 0x01;
    await writeFile(at('tampered.cred'), tampered);
    await expect(activate(rsa, at('tampered.cred'))).rejects.toThrow(/Esys_ActivateCredential\(0x1DF\)/);

    // RSA: the OAEP decryption of a corrupted seed fails; libtpms 0.9 reports it as 0x101.
    const badSeed = Buffer.from(file);
    badSeed[file.length - 1] = badSeed[file.length - 1]! ^ 0x01;
    await writeFile(at('bad-seed.cred'), badSeed);
    await expect(activate(rsa, at('bad-seed.cred'))).rejects.toThrow(/Esys_ActivateCredential\(0x101\)/);

    // ECC: a point off the curve is TPM_RC_ECC_POINT for parameter 2 (0x2E7).
    const ecc = marshalCredentialFile(makeCredential(unmarshalTpm2bPublic(await readFile(at(p256.pubFile))), akName, randomBytes(32)));
    ecc[ecc.length - 1] = ecc[ecc.length - 1]! ^ 0x01;
    await writeFile(at('bad-point.cred'), ecc);
    await expect(activate(p256, at('bad-point.cred'))).rejects.toThrow(/Esys_ActivateCredential\(0x2E7\)/);

    // The TPM is unharmed: a good credential still activates.
    const secret = randomBytes(32);
    await writeFile(at('good.cred'), marshalCredentialFile(makeCredential(unmarshalTpm2bPublic(await readFile(at(rsa.pubFile))), akName, secret)));
    expect((await activate(rsa, at('good.cred'))).equals(secret)).toBe(true);
  });

  it.each(EKS)('$label: tpm2_makecredential -T none writes the file format we write and parse', async (ek) => {
    const secret = randomBytes(32);
    await writeFile(at('secret.bin'), secret);
    const theirs = at(`tools-${ek.pubFile}.cred`);
    await tpm2(fixture.at(0), 'makecredential', '-T', 'none', '-u', at(ek.pubFile), '-s', at('secret.bin'), '-n', akName.toString('hex'), '-o', theirs);
    const parsed = parseCredentialFile(await readFile(theirs));
    const ours = makeCredential(unmarshalTpm2bPublic(await readFile(at(ek.pubFile))), akName, secret);
    // Random seeds make the bytes differ; the layout must not.
    expect(parsed.credentialBlob.length).toBe(ours.credentialBlob.length);
    expect(secretLayout(parsed.encryptedSecret, ek)).toEqual(secretLayout(ours.encryptedSecret, ek));
    expect(marshalCredentialFile(parsed).equals(await readFile(theirs))).toBe(true);
    expect((await activate(ek, theirs)).equals(secret)).toBe(true);
  });

  it('CLI refusals: malformed Name and oversized secret exit 2, an AK as --ek exits 1, each saying why', async () => {
    await writeFile(at('secret.bin'), randomBytes(32));
    await writeFile(at('big.bin'), randomBytes(33));
    const base = ['credential', 'make', '--out', at('x.cred')];
    expect(cli(...base, '--ek', at('ek-rsa.pub'), '--name', '000b00', '--secret', at('secret.bin'))).toEqual({
      status: 2,
      stderr: 'rackseal: invalid object Name 000b00: 3 bytes, a TPM_ALG_SHA256 Name has 34\n',
    });
    expect(cli(...base, '--ek', at('ek-rsa.pub'), '--name', akName.toString('hex'), '--secret', at('big.bin'))).toEqual({
      status: 2,
      stderr: 'rackseal: credential of 33 bytes exceeds the 32-byte limit (digest size of the EK nameAlg TPM_ALG_SHA256)\n',
    });
    expect(cli(...base, '--ek', at('ak.pub'), '--name', akName.toString('hex'), '--secret', at('secret.bin'))).toEqual({
      status: 1,
      stderr: 'rackseal: --ek: EK is not a storage key: objectAttributes 0x00050072 must have restricted and decrypt set and sign clear\n',
    });
    const garbage = cli(...base, '--ek', at('secret.bin'), '--name', akName.toString('hex'), '--secret', at('secret.bin'));
    expect(garbage.status).toBe(2);
    expect(garbage.stderr).toMatch(/^rackseal: --ek ".*secret.bin" is not a TPM2B_PUBLIC \(TPM2B_PUBLIC/);
    expect(cli(...base, '--ek', at('missing.pub'), '--name', akName.toString('hex'), '--secret', at('secret.bin')).status).toBe(2);
  });
});
