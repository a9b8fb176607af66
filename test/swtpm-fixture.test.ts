/**
 * Proves the swtpm fixture against independent tools: tpm2-tools reads what is really in the TPM,
 * openssl verifies the chains, node:crypto recomputes PCR values.
 */
import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isListening } from './support/free-port';
import { LocalCa } from './support/local-ca';
import { startSwtpm, useSwtpms, type SwtpmMachine } from './support/swtpm';
import { runTool, tpm2, ToolFailed } from './support/tpm2-tools';

jest.setTimeout(60_000);

function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** SHA-256 of the DER SubjectPublicKeyInfo: compares keys independent of how they were obtained. */
function spkiSha256(keyOrCert: X509Certificate | KeyObject): string {
  const key = keyOrCert instanceof X509Certificate ? keyOrCert.publicKey : keyOrCert;
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
}

describe('swtpm fixture', () => {
  const fixture = useSwtpms(2, { p256: true });
  let rogue: LocalCa;
  let work: string;

  beforeAll(async () => {
    rogue = await LocalCa.create();
    work = await mkdtemp(join(tmpdir(), 'rackseal-swtpm-test-'));
  }, 60_000);

  afterAll(async () => {
    await rogue?.remove();
    if (work !== undefined) {
      await rm(work, { recursive: true, force: true });
    }
  });

  /** Read an NV index with tpm2-tools (authorised by the index itself, empty password). */
  async function nvRead(tpm: SwtpmMachine, index: string, name: string): Promise<Buffer> {
    const file = join(work, `${name}.der`);
    await tpm2(tpm, 'nvread', index, '-C', index, '-o', file);
    return readFile(file);
  }

  /** openssl verify of a DER cert against a CA's root + intermediate. */
  async function opensslVerify(der: Buffer, ca: LocalCa, name: string): Promise<string> {
    const pem = join(work, `${name}.pem`);
    await writeFile(pem, toPem(der));
    const { stdout } = await runTool('openssl', [
      'verify', '-CAfile', ca.rootCertPath, '-untrusted', ca.intermediateCertPath, pem,
    ]);
    return stdout.toString('utf8').trim();
  }

  /** SPKI SHA-256 of a persistent/transient key as the TPM reports it. */
  async function tpmKeySpki(tpm: SwtpmMachine, handle: string, name: string): Promise<string> {
    const file = join(work, `${name}.pem`);
    await tpm2(tpm, 'readpublic', '-c', handle, '-f', 'pem', '-o', file);
    return spkiSha256(createPublicKey(await readFile(file)));
  }

  it('manufactures each TPM with RSA and P-384 EK certs in NV that chain to the test CA', async () => {
    const spkis: string[] = [];
    for (const [i, tpm] of fixture.machines.entries()) {
      const rsa = await nvRead(tpm, '0x01c00002', `rsa-${i}`);
      const ecc = await nvRead(tpm, '0x01c00016', `ecc-${i}`);

      // NV holds exactly the DER that swtpm_setup wrote to --write-ek-cert-files.
      expect(rsa.equals(await tpm.rsaEkCertDer())).toBe(true);
      expect(ecc.equals(await tpm.eccEkCertDer())).toBe(true);

      expect(await opensslVerify(rsa, fixture.ca, `rsa-${i}`)).toMatch(/: OK$/);
      expect(await opensslVerify(ecc, fixture.ca, `ecc-${i}`)).toMatch(/: OK$/);

      const rsaCert = new X509Certificate(rsa);
      const eccCert = new X509Certificate(ecc);
      expect(rsaCert.publicKey.asymmetricKeyType).toBe('rsa');
      expect(rsaCert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      expect(eccCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
      expect(rsaCert.issuer).toBe('CN=swtpm-localca');

      // The certified keys are the persisted EKs.
      expect(await tpmKeySpki(tpm, '0x81010001', `ek-rsa-${i}`)).toBe(spkiSha256(rsaCert));
      expect(await tpmKeySpki(tpm, '0x81010016', `ek-ecc-${i}`)).toBe(spkiSha256(eccCert));
      spkis.push(spkiSha256(rsaCert), spkiSha256(eccCert));
    }
    // Two TPMs, four distinct EKs.
    expect(new Set(spkis).size).toBe(4);
  });

  it('exposes absolute paths, distinct ports and the tcti/device strings', () => {
    const [a, b] = fixture.machines;
    if (a === undefined || b === undefined) {
      throw new Error('expected two machines');
    }
    for (const tpm of [a, b]) {
      expect(tpm.stateDir.startsWith('/')).toBe(true);
      expect(tpm.ctrlPort).toBe(tpm.port + 1);
      expect(tpm.tcti).toBe(`swtpm:host=127.0.0.1,port=${tpm.port}`);
      expect(tpm.device).toBe(`swtpm:127.0.0.1:${tpm.port}`);
    }
    expect(new Set([a.port, a.ctrlPort, b.port, b.ctrlPort]).size).toBe(4);
    expect(a.stateDir).not.toBe(b.stateDir);
    expect(fixture.ca.rootCertPath.startsWith('/')).toBe(true);
  });

  it('a rogue CA with identical subject names does not verify the EK cert', async () => {
    const tpm = fixture.at(0);
    const ek = await tpm.rsaEkCertDer();

    const [realRoot, realInt, rogueRoot, rogueInt] = await Promise.all([
      fixture.ca.rootCertPem(), fixture.ca.intermediateCertPem(), rogue.rootCertPem(), rogue.intermediateCertPem(),
    ]).then((pems) => pems.map((p) => new X509Certificate(p)));
    if (!realRoot || !realInt || !rogueRoot || !rogueInt) {
      throw new Error('missing CA cert');
    }

    // Same names ...
    expect(rogueRoot.subject).toBe(realRoot.subject);
    expect(rogueRoot.subject).toBe('CN=swtpm-localca-rootca');
    expect(rogueInt.subject).toBe(realInt.subject);
    expect(rogueInt.subject).toBe('CN=swtpm-localca');
    // ... different keys.
    expect(spkiSha256(rogueRoot)).not.toBe(spkiSha256(realRoot));
    expect(spkiSha256(rogueInt)).not.toBe(spkiSha256(realInt));

    // By name the rogue intermediate "issued" the EK cert, but the signature says otherwise. (OpenSSL's
    // checkIssued is false too: it also compares the cert's authorityKeyIdentifier with the issuer's SKID.)
    const ekCert = new X509Certificate(ek);
    expect(ekCert.issuer).toBe(rogueInt.subject);
    expect(ekCert.checkIssued(realInt)).toBe(true);
    expect(ekCert.checkIssued(rogueInt)).toBe(false);
    expect(ekCert.verify(rogueInt.publicKey)).toBe(false);
    expect(ekCert.verify(realInt.publicKey)).toBe(true);

    const failure = await opensslVerify(ek, rogue, 'rogue').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(ToolFailed);
    const f = failure as ToolFailed;
    expect(f.exitCode).not.toBe(0);
    expect(`${f.stderr}${f.stdout.toString()}`).toMatch(/certificate signature failure|unable to get local issuer/);

    // And a cert the rogue issues for the very same key fails against the real CA.
    const forged = await rogue.issueEkCert(ekCert.publicKey);
    expect(spkiSha256(new X509Certificate(forged))).toBe(spkiSha256(ekCert));
    expect(await opensslVerify(forged, rogue, 'forged-vs-rogue')).toMatch(/: OK$/);
    await expect(opensslVerify(forged, fixture.ca, 'forged-vs-real')).rejects.toBeInstanceOf(ToolFailed);
  });

  it('extendPcr extends sha256 PCR 7 and reboot() resets it to zeros', async () => {
    const tpm = fixture.at(1);
    const zeros = '00'.repeat(32);
    expect(await tpm.readPcr(7, 'sha256')).toBe(zeros);

    const digest = createHash('sha256').update('rackseal-test-event').digest();
    await tpm.extendPcr(7, 'sha256', digest.toString('hex'));
    const expected = createHash('sha256').update(Buffer.alloc(32)).update(digest).digest('hex');
    expect(await tpm.readPcr(7, 'sha256')).toBe(expected);
    expect(await fixture.at(0).readPcr(7, 'sha256')).toBe(zeros); // the other TPM is untouched

    await tpm.reboot();
    expect(await tpm.readPcr(7, 'sha256')).toBe(zeros);

    // The TPM still works normally after the reboot: NV and persistent EKs survive.
    expect((await nvRead(tpm, '0x01c00002', 'after-reboot')).equals(await tpm.rsaEkCertDer())).toBe(true);
    await expect(tpm.extendPcr(7, 'sha256', 'abcd')).rejects.toThrow(/32 bytes/);
  });

  it('stop() kills swtpm, frees the ports and removes the state dir (idempotently)', async () => {
    const tpm = await startSwtpm({ ca: fixture.ca, pcrBanks: ['sha1', 'sha256'] });
    const pid = tpm.pid;
    try {
      expect(pid).toEqual(expect.any(Number));
      // pcrBanks is honoured: the sha1 bank exists here (swtpm_setup's default is sha256 only).
      expect(await tpm.readPcr(0, 'sha1')).toBe('00'.repeat(20));
      expect(await isListening(tpm.port)).toBe(true);
      expect(await isListening(tpm.ctrlPort)).toBe(true);
      expect((await stat(tpm.stateDir)).isDirectory()).toBe(true);
    } finally {
      await tpm.stop();
    }
    await tpm.stop(); // idempotent
    expect(tpm.running).toBe(false);
    await expect(stat(tpm.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await isListening(tpm.port)).toBe(false);
    expect(await isListening(tpm.ctrlPort)).toBe(false);
    expect(() => process.kill(pid as number, 0)).toThrow(); // ESRCH: the process is gone (and reaped)
  });

  it('provisions a P-256 EK cert at NV 0x01c0000a matching the L-2 EK and chaining to the CA', async () => {
    for (const [i, tpm] of fixture.machines.entries()) {
      const der = await nvRead(tpm, '0x01c0000a', `p256-${i}`);
      expect(der.equals(await tpm.p256EkCertDer())).toBe(true);
      expect(await opensslVerify(der, fixture.ca, `p256-${i}`)).toMatch(/: OK$/);
      const cert = new X509Certificate(der);
      expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

      // Independently recreate the EK from the default ECC template and compare keys.
      const pem = join(work, `ek-p256-${i}.pem`);
      await tpm2(tpm, 'createek', '-G', 'ecc', '-c', join(work, `ek-p256-${i}.ctx`), '-u', pem, '-f', 'pem');
      await tpm2(tpm, 'flushcontext', '-t');
      expect(spkiSha256(createPublicKey(await readFile(pem)))).toBe(spkiSha256(cert));

      // Attributes match swtpm_setup's own cert indices, and no transient object was left behind.
      const pub = await tpm2(tpm, 'nvreadpublic', '0x01c0000a');
      expect(pub.stdout.toString()).toMatch(/value: 0x62072801/);
      const transient = await tpm2(tpm, 'getcap', 'handles-transient');
      expect(transient.stdout.toString().trim()).toBe('');
    }
  });
});
