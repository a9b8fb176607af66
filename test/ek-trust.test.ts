/**
 * libs/ek-trust against real data: the 51 vendor CA certificates in test/fixtures/vendor-cas
 * (Keylime's tpm_cert_store), EK certificates issued by swtpm_setup's local CA (RSA-2048, P-384, and
 * P-256), quirky variants of those made by DER surgery and re-signing with the CA's own key, a rogue
 * CA with identical names, and the `rackseal ek inspect|verify` CLI. OpenSSL (node:crypto and the
 * `openssl verify` command) is the oracle wherever it accepts the input.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as peculiar from '@peculiar/x509';
import forge from 'node-forge';
import {
  type ChainResult,
  EkCertificateError,
  encodeTlv,
  inspectEkCertificate,
  parseCertificate,
  readCertificate,
  readTlv,
  TAG,
  TrustStore,
  verifyCaChain,
  verifyEkChain,
} from '@rackseal/ek-trust';
import { ekPubHash } from '@rackseal/tpm2';
import { LocalCa } from './support/local-ca';
import { fixturePath } from './support/fixtures';
import { fuzz } from './support/fuzz';
import { runRacksealCli } from './support/cli-runner';
import { useSwtpms } from './support/swtpm';

const VENDOR_CAS = fixturePath('vendor-cas');
const FILES = readdirSync(VENDOR_CAS).filter((f) => f.endsWith('.pem')).sort();
const readFixture = (file: string): Buffer => readFileSync(join(VENDOR_CAS, file));

/** A time at which every fixture CA is inside its validity period (latest notBefore: 2021-09-16). */
const FIXTURE_TIME = new Date('2024-06-01T00:00:00Z');

const ROOTS = [
  'GS_TPM_RT.pem',
  'INF_ECC_010RT.pem',
  'INF_RSA_010RT.pem',
  'INTEL_RT.pem',
  'NTC1.pem',
  'NTC2.pem',
  'NUVO_0100.pem',
  'NUVO_1110.pem',
  'NUVO_1111.pem',
  'NUVO_2110.pem',
  'NUVO_2111.pem',
];

/** Byte-identical copies in the fixture set (Keylime ships Infineon's intermediates under two names). */
const DUPLICATES: Record<string, string> = {
  'IFX_RSA_01I.pem': 'IFX1.pem',
  'IFX_RSA_02I.pem': 'IFX2.pem',
  'IFX_RSA_03I.pem': 'IFX3.pem',
  'IFX_RSA_04I.pem': 'IFX4.pem',
  'IFX_RSA_05I.pem': 'IFX5.pem',
  'IFX_RSA_08I.pem': 'IFX8.pem',
};

const IFX_LEGACY = ['IFX1', 'IFX2', 'IFX3', 'IFX4', 'IFX5', 'IFX8', 'IFX15', 'IFX_RSA_01I', 'IFX_RSA_02I', 'IFX_RSA_03I', 'IFX_RSA_04I', 'IFX_RSA_05I', 'IFX_RSA_08I', 'IFX_RSA_17I', 'IFX_RSA_18I', 'IFX_RSA_20I', 'IFX_RSA_21I'].map((n) => `${n}.pem`);

/** Every intermediate whose issuer is in the set, with the chain up to a self-signed root. */
const CHAINS_TO_ROOTS: Record<string, string[]> = {
  ...Object.fromEntries(['01', '02', '03', '04', '05', '06', '07'].map((n) => [`STM_RSA_${n}I.pem`, ['STM_RSA_RT.pem', 'GS_TPM_RT.pem']])),
  'STM_RSA_RT.pem': ['GS_TPM_RT.pem'],
  ...Object.fromEntries(['IFX_ECC_034', 'IFX_ECC_042', 'INF_ECC_010I', 'INF_ECC_011'].map((n) => [`${n}.pem`, ['INF_ECC_010RT.pem']])),
  ...Object.fromEntries(['IFX_RSA_034', 'IFX_RSA_042', 'INF_RSA_010I', 'INF_RSA_011', 'INF_RSA_022'].map((n) => [`${n}.pem`, ['INF_RSA_010RT.pem']])),
  'INTEL_I.pem': ['INTEL_RT.pem'],
};

const VERISIGN_TPM_ROOT = 'C=US, O=VeriSign\\, Inc., OU=VeriSign Trusted Computing Certification Authority, CN=VeriSign Trusted Platform Module Root CA';
const GLOBALSIGN_ECC_ROOT = 'OU=GlobalSign Trusted Computing Certificate Authority, O=GlobalSign, CN=GlobalSign Trusted Platform Module ECC Root CA';

/** Intermediates whose issuer is not in the set, and the issuer they name. */
const MISSING_ISSUER: Record<string, string> = {
  ...Object.fromEntries([...IFX_LEGACY, 'IFX_RSA_RT.pem'].map((f) => [f, VERISIGN_TPM_ROOT])),
  'STM_ECC_01I.pem': GLOBALSIGN_ECC_ROOT,
  'STM_ECC_01RT.pem': GLOBALSIGN_ECC_ROOT,
  'Nationz_TPM_EK.pem': 'C=CN, O=Nationz Technologies Inc, OU=Nationz TPM Device, CN=Nationz TPM Root CA',
  'Alibaba_Cloud_vTPM_EK.pem': 'C=CN, O=Aliyun, OU=Aliyun TPM Root CA, CN=Aliyun TPM Root CA',
};

/** Vendor "roots" cross-signed by a root that is not in the set: chains end there only when pinned. */
const PINNED_CHAINS: Record<string, string[]> = {
  ...Object.fromEntries(IFX_LEGACY.map((f) => [f, ['IFX_RSA_RT.pem']])),
  'STM_ECC_01I.pem': ['STM_ECC_01RT.pem'],
};

function fixtureStore(): { store: TrustStore; fileOf: Map<string, string>; fpOf: (file: string) => string } {
  const store = new TrustStore();
  const fileOf = new Map<string, string>();
  for (const file of FILES) {
    const [result, ...more] = store.addAll(readFixture(file), { label: file });
    expect(more).toEqual([]);
    if (result?.status !== 'added' && result?.status !== 'duplicate') {
      throw new Error(`${file}: ${JSON.stringify(result)}`);
    }
    if (!fileOf.has(result.entry.fingerprint)) {
      fileOf.set(result.entry.fingerprint, file);
    }
  }
  const fpOf = (file: string): string => readCertificate(readFixture(file)).certificate.fingerprint;
  return { store, fileOf, fpOf };
}

function chainFiles(result: ChainResult, fileOf: Map<string, string>, self: string): string[] {
  if (!result.ok) {
    throw new Error(`${self}: ${result.reason}: ${result.message}`);
  }
  // A file's own entry may carry its duplicate's name: report the file asked about.
  return result.chain.map((l, i) => (i === 0 ? self : fileOf.get(l.fingerprint) ?? l.fingerprint));
}

describe('the 51 vendor CA certificates of test/fixtures/vendor-cas', () => {
  it('all parse, match OpenSSL field for field, and classify as 11 roots and 40 intermediates (34 distinct)', () => {
    expect(FILES).toHaveLength(51);
    const { store } = fixtureStore();
    const kinds: Record<string, string> = {};
    for (const file of FILES) {
      const bytes = readFixture(file);
      const cert = readCertificate(bytes).certificate;
      const openssl = new X509Certificate(bytes);
      expect({
        fingerprint: cert.fingerprint,
        serial: BigInt(`0x${cert.serialNumber}`),
        subject: cert.subject.text,
        issuer: cert.issuer.text,
        notBefore: cert.notBefore.getTime(),
        notAfter: cert.notAfter.getTime(),
        spki: cert.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
      }).toEqual({
        fingerprint: openssl.fingerprint256.replace(/:/g, '').toLowerCase(),
        serial: BigInt(`0x${openssl.serialNumber}`),
        subject: openssl.subject.split('\n').join(', '),
        issuer: openssl.issuer.split('\n').join(', '),
        notBefore: new Date(openssl.validFrom).getTime(),
        notAfter: new Date(openssl.validTo).getTime(),
        spki: openssl.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
      });
      kinds[file] = store.get(cert.fingerprint)!.kind;
    }
    expect(FILES.filter((f) => kinds[f] === 'root')).toEqual(ROOTS);
    expect(FILES.filter((f) => kinds[f] === 'intermediate')).toHaveLength(40);
    expect(store.size).toBe(45);
    expect(store.roots()).toHaveLength(11);
    expect(store.intermediates()).toHaveLength(34);
    // Not self-signed despite the name: cross-signed by VeriSign / GlobalSign roots.
    expect(['IFX_RSA_RT.pem', 'STM_RSA_RT.pem', 'STM_ECC_01RT.pem'].map((f) => kinds[f])).toEqual(['intermediate', 'intermediate', 'intermediate']);
  });

  it('duplicates are ignored: the 6 IFX_RSA_0xI files are byte-identical to IFX1..IFX8', () => {
    const store = new TrustStore();
    const statuses = FILES.map((file) => [file, store.addAll(readFixture(file))[0]!.status] as const);
    expect(statuses.filter(([, s]) => s === 'duplicate').map(([f]) => f)).toEqual(Object.keys(DUPLICATES).sort());
    for (const [copy, original] of Object.entries(DUPLICATES)) {
      expect(readCertificate(readFixture(copy)).certificate.fingerprint).toBe(readCertificate(readFixture(original)).certificate.fingerprint);
    }
  });

  it('Nuvoton roots carry the unsorted-SET quirk; nothing else in the set is quirky', () => {
    const quirky = FILES.filter((f) => readCertificate(readFixture(f)).quirks.length > 0);
    expect(quirky).toEqual(['NTC1.pem', 'NTC2.pem', 'NUVO_0100.pem', 'NUVO_1110.pem', 'NUVO_1111.pem', 'NUVO_2110.pem', 'NUVO_2111.pem']);
    expect(readCertificate(readFixture('NTC1.pem')).quirks).toEqual(['unsorted-set']);
  });

  it.each(Object.entries(CHAINS_TO_ROOTS))('%s chains to %j, each link also verified by OpenSSL', (file, expected) => {
    const { store, fileOf } = fixtureStore();
    const result = verifyCaChain(readFixture(file), { store, now: FIXTURE_TIME });
    expect(chainFiles(result, fileOf, file)).toEqual([file, ...expected]);
    const certs = [file, ...expected].map((f) => new X509Certificate(readFixture(f)));
    for (let i = 0; i + 1 < certs.length; i++) {
      expect(certs[i]!.verify(certs[i + 1]!.publicKey)).toBe(true);
    }
  });

  it.each(ROOTS)('root %s chains to itself', (file) => {
    const { store, fileOf } = fixtureStore();
    expect(chainFiles(verifyCaChain(readFixture(file), { store, now: FIXTURE_TIME }), fileOf, file)).toEqual([file]);
  });

  it.each(Object.entries(MISSING_ISSUER))('%s: its root is absent → untrusted-root naming %s', (file, issuer) => {
    const { store } = fixtureStore();
    const result = verifyCaChain(readFixture(file), { store, now: FIXTURE_TIME });
    expect(result).toMatchObject({ ok: false, reason: 'untrusted-root', missingIssuer: issuer });
    expect(!result.ok && result.message).toContain(`issuer "${issuer}"`);
  });

  it('with its root left out, INTEL_I is untrusted-root naming INTEL_RT; STM_RSA_05I stops at a missing GlobalSign root', () => {
    const store = new TrustStore();
    FILES.filter((f) => f !== 'INTEL_RT.pem' && f !== 'GS_TPM_RT.pem').forEach((f) => store.addAll(readFixture(f)));
    expect(verifyCaChain(readFixture('INTEL_I.pem'), { store, now: FIXTURE_TIME })).toMatchObject({
      ok: false,
      reason: 'untrusted-root',
      missingIssuer: 'C=US, ST=CA, L=Santa Clara, O=Intel Corporation, OU=TPM EK root cert signing, CN=www.intel.com',
    });
    expect(verifyCaChain(readFixture('STM_RSA_05I.pem'), { store, now: FIXTURE_TIME })).toMatchObject({
      ok: false,
      reason: 'untrusted-root',
      missingIssuer: 'OU=GlobalSign Trusted Computing Certificate Authority, O=GlobalSign, CN=GlobalSign Trusted Platform Module Root CA',
      at: { subject: 'C=CH, O=STMicroelectronics NV, CN=STM TPM EK Root CA' },
    });
  });

  it.each(Object.entries(PINNED_CHAINS))('%s chains to %j once that vendor root is pinned as an anchor', (file, expected) => {
    const { store, fileOf, fpOf } = fixtureStore();
    store.setAnchor(fpOf('IFX_RSA_RT.pem'), true);
    store.setAnchor(fpOf('STM_ECC_01RT.pem'), true);
    expect(chainFiles(verifyCaChain(readFixture(file), { store, now: FIXTURE_TIME }), fileOf, file)).toEqual([file, ...expected]);
  });

  it('IFX intermediates chain although OpenSSL rejects the pair: their AKI names the wrong issuer serial', () => {
    // AuthorityKeyIdentifier of IFX1 says issuer serial 03; IFX_RSA_RT's serial is 47:24:04:e0:…
    const ifx1 = new X509Certificate(readFixture('IFX1.pem'));
    const rt = new X509Certificate(readFixture('IFX_RSA_RT.pem'));
    expect(ifx1.checkIssued(rt)).toBe(false);
    expect(ifx1.verify(rt.publicKey)).toBe(true);
  });

  it('an expired fixture intermediate (IFX_RSA_01I, notAfter 2025-10-20) is refused, and accepted within caGraceDays', () => {
    const { store, fpOf } = fixtureStore();
    store.setAnchor(fpOf('IFX_RSA_RT.pem'), true);
    const now = new Date('2026-01-01T00:00:00Z');
    expect(verifyCaChain(readFixture('IFX_RSA_01I.pem'), { store, now })).toMatchObject({ ok: false, reason: 'expired' });
    const graced = verifyCaChain(readFixture('IFX_RSA_01I.pem'), { store, now, caGraceDays: 90 });
    expect(graced).toMatchObject({ ok: true, graceApplied: [{ kind: 'ca', notAfter: '2025-10-20T13:47:43.000Z' }] });
  });

  it('a disabled root takes its chains with it', () => {
    const { store, fpOf } = fixtureStore();
    store.disable(fpOf('GS_TPM_RT.pem'));
    const result = verifyCaChain(readFixture('STM_RSA_05I.pem'), { store, now: FIXTURE_TIME });
    expect(result).toMatchObject({ ok: false, reason: 'disabled-ca', disabledCa: { fingerprint: fpOf('GS_TPM_RT.pem') } });
    expect(!result.ok && result.message).toBe(`CA "${!result.ok && result.disabledCa?.subject}" is disabled (${fpOf('GS_TPM_RT.pem')})`);
  });

  it('parser survey: OpenSSL and @peculiar/x509 read all 51; node-forge fails the 15 ECC ones', () => {
    const forgeFailures: string[] = [];
    for (const file of FILES) {
      const pem = readFixture(file).toString('latin1');
      expect(() => new X509Certificate(pem)).not.toThrow();
      expect(() => new peculiar.X509Certificate(pem)).not.toThrow();
      try {
        forge.pki.certificateFromPem(pem);
      } catch (error) {
        expect((error as Error).message).toBe('Cannot read public key. OID is not RSA.');
        forgeFailures.push(file);
      }
    }
    expect(forgeFailures).toEqual(FILES.filter((f) => new X509Certificate(readFixture(f)).publicKey.asymmetricKeyType === 'ec'));
    expect(forgeFailures).toHaveLength(15);
  });
});

describe('fuzzing the certificate reader and the chain builder', () => {
  it('20,000 mutants of real CA certificates and their NV/PEM forms: EkCertificateError or a result, never a crash', () => {
    const { store } = fixtureStore();
    const ders = ['STM_RSA_05I.pem', 'INTEL_I.pem', 'NTC1.pem', 'IFX_RSA_17I.pem', 'Nationz_TPM_EK.pem'].map((f) => readCertificate(readFixture(f)).certificate.der);
    const seeds = [...ders, nvDump(ders[0]!), readFixture('INF_ECC_010I.pem')];
    const report = fuzz(
      seeds,
      (input) => {
        // The chain builder must answer for anything; the reader may refuse with its typed error.
        const chain = verifyEkChain(input, { store, extraIntermediates: [input], now: FIXTURE_TIME, ekGraceDays: 0 });
        expect(typeof chain.ok).toBe('boolean');
        const read = readCertificate(input);
        verifyCaChain(read, { store, now: FIXTURE_TIME });
        return inspectEkCertificate(read);
      },
      (error) => error instanceof EkCertificateError,
      20_000,
    );
    expect(report.unexpected).toEqual([]);
    expect(report.crashes).toBe(0);
    expect(report.refused).toBeGreaterThan(1000);
    expect(report.accepted).toBeGreaterThan(100);
  });
});

/** Lowercase hex SHA-256 of a PEM file's certificate DER. */
function fingerprintOfPem(path: string): string {
  return readCertificate(readFileSync(path)).certificate.fingerprint;
}

/** `openssl verify -CAfile root -untrusted intermediate leaf`: true when OpenSSL accepts the chain. */
function opensslVerifies(rootPem: string, intermediatePem: string, leafDer: Buffer, dir: string): boolean {
  const leafPem = join(dir, `leaf-${Math.random().toString(16).slice(2)}.pem`);
  writeFileSync(leafPem, `-----BEGIN CERTIFICATE-----\n${leafDer.toString('base64')}\n-----END CERTIFICATE-----\n`);
  return spawnSync('openssl', ['verify', '-CAfile', rootPem, '-untrusted', intermediatePem, leafPem], { encoding: 'utf8' }).status === 0;
}

/** Wraps DER as a TPM NV index holds it on some TPMs: TCG header, then 0xFF padding to 1600 bytes. */
function nvDump(der: Buffer): Buffer {
  const withHeader = Buffer.concat([Buffer.from([0x10, 0x01, 0x00, der.length >> 8, der.length & 0xff]), der]);
  return Buffer.concat([withHeader, Buffer.alloc(1600 - withHeader.length, 0xff)]);
}

/** Replaces the serial INTEGER of a certificate's tbs and re-signs it (sha256WithRSA) with `key`. */
function resign(der: Buffer, key: KeyObject, edit: (tbsHex: string) => string): Buffer {
  const cert = parseCertificate(der);
  const body = Buffer.from(edit(readTlv(cert.tbs, 0, 'tbs').content.toString('hex')), 'hex');
  const tbs = encodeTlv(TAG.SEQUENCE, body);
  const signature = sign('sha256', tbs, key);
  const algorithm = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
  return encodeTlv(TAG.SEQUENCE, Buffer.concat([tbs, algorithm, encodeTlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), signature]))]));
}

interface Cli {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Cli {
  return runRacksealCli(args);
}

describe('swtpm EK certificates', () => {
  const fixture = useSwtpms(1, { p256: true });
  let rogue: LocalCa;
  let dir: string;
  let signingKey: KeyObject;

  beforeAll(async () => {
    rogue = await LocalCa.create();
    dir = await mkdtemp(join(tmpdir(), 'rackseal-ek-trust-'));
  }, 120_000);

  afterAll(async () => {
    await rogue?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const store = (): TrustStore => {
    const s = new TrustStore();
    s.addAll(readFileSync(fixture.ca.rootCertPath));
    s.addAll(readFileSync(fixture.ca.intermediateCertPath));
    return s;
  };
  const now = (): Date => new Date();

  const EKS = [
    { label: 'RSA-2048', der: () => fixture.at(0).rsaEkCertDer(), key: { keyAlgorithm: 'rsa', keyBits: 2048 } },
    { label: 'ECC P-384', der: () => fixture.at(0).eccEkCertDer(), key: { keyAlgorithm: 'ecc', keyBits: 384, curve: 'P-384' } },
    { label: 'ECC P-256', der: () => fixture.at(0).p256EkCertDer(), key: { keyAlgorithm: 'ecc', keyBits: 256, curve: 'P-256' } },
  ];

  it.each(EKS)('$label: inspects to the TCG fields swtpm writes and the ekPubHash libs/tpm2 computes', async ({ der, key }) => {
    const bytes = await der();
    expect(inspectEkCertificate(bytes)).toMatchObject({
      manufacturer: 'id:00001014',
      vendorId: null,
      vendorName: 'IBM (swtpm)',
      model: 'swtpm',
      version: 'id:20191023',
      ...key,
      ekPubHash: ekPubHash(new X509Certificate(bytes)),
      subject: 'CN=unknown',
      issuer: 'CN=swtpm-localca',
      notAfter: '9999-12-31T23:59:59.000Z',
      ekCertificateEku: true,
      tpmSpecification: { family: '2.0', level: 0, revision: 164 },
      quirks: ['critical-san-directory-name'],
    });
  });

  it.each(EKS)('$label: chains to the fixture\'s local CA (and openssl verify agrees)', async ({ der }) => {
    const bytes = await der();
    const result = verifyEkChain(bytes, { store: store(), now: now(), ekGraceDays: 0 });
    expect(result).toEqual({
      ok: true,
      chain: [
        expect.objectContaining({ subject: 'CN=unknown', source: 'leaf', kind: 'leaf', fingerprint: readCertificate(bytes).certificate.fingerprint }),
        expect.objectContaining({ subject: 'CN=swtpm-localca', source: 'store', kind: 'intermediate', fingerprint: fingerprintOfPem(fixture.ca.intermediateCertPath) }),
        expect.objectContaining({ subject: 'CN=swtpm-localca-rootca', source: 'store', kind: 'root', fingerprint: fingerprintOfPem(fixture.ca.rootCertPath) }),
      ],
      graceApplied: [],
    });
    expect(opensslVerifies(fixture.ca.rootCertPath, fixture.ca.intermediateCertPath, bytes, dir)).toBe(true);
    // The intermediate may also come with the request instead of from the store.
    const rootOnly = new TrustStore();
    rootOnly.addAll(readFileSync(fixture.ca.rootCertPath));
    const viaRequest = verifyEkChain(bytes, { store: rootOnly, extraIntermediates: [readFileSync(fixture.ca.intermediateCertPath)], now: now(), ekGraceDays: 0 });
    expect(viaRequest.ok && viaRequest.chain.map((l) => l.source)).toEqual(['leaf', 'extra', 'store']);
  });

  it.each(EKS)('$label: with an NV header and 0xFF padding to 1600 bytes it inspects to the same ekPubHash and still chains', async ({ der }) => {
    const bytes = await der();
    const wrapped = nvDump(bytes);
    expect(wrapped).toHaveLength(1600);
    const plain = inspectEkCertificate(bytes);
    const quirky = inspectEkCertificate(wrapped);
    expect(quirky.ekPubHash).toBe(plain.ekPubHash);
    expect(quirky.fingerprint).toBe(plain.fingerprint);
    expect(quirky.quirks).toEqual(['nv-header', 'trailing-padding', 'critical-san-directory-name']);
    expect(verifyEkChain(wrapped, { store: store(), now: now(), ekGraceDays: 0 }).ok).toBe(true);
  });

  it('a rogue CA with identical subject names is refused: signature-invalid, at whichever level it is offered', async () => {
    const genuineRoot = readCertificate(readFileSync(fixture.ca.rootCertPath)).certificate;
    const genuineIntermediate = readCertificate(readFileSync(fixture.ca.intermediateCertPath)).certificate;
    const rogueRoot = readCertificate(readFileSync(rogue.rootCertPath)).certificate;
    const rogueIntermediate = readCertificate(readFileSync(rogue.intermediateCertPath)).certificate;
    // Same names, different keys: only a signature can tell them apart.
    expect(rogueRoot.subject.text).toBe(genuineRoot.subject.text);
    expect(rogueIntermediate.subject.text).toBe(genuineIntermediate.subject.text);
    expect(rogueIntermediate.issuer.raw.equals(genuineIntermediate.issuer.raw)).toBe(true);
    expect(rogueIntermediate.fingerprint).not.toBe(genuineIntermediate.fingerprint);

    // The attacker mints a certificate for the real TPM's EK key (or any key) under the rogue CA.
    const realEk = await fixture.at(0).rsaEkCertDer();
    const forged = await rogue.issueEkCert(new X509Certificate(realEk).publicKey);
    expect(inspectEkCertificate(forged).ekPubHash).toBe(inspectEkCertificate(realEk).ekPubHash);
    expect(readCertificate(forged).certificate.issuer.raw.equals(readCertificate(realEk).certificate.issuer.raw)).toBe(true);

    const refused = verifyEkChain(forged, { store: store(), now: now(), ekGraceDays: 0 });
    expect(refused).toEqual({
      ok: false,
      reason: 'signature-invalid',
      message: `the signature of "CN=unknown" does not verify with the key of trusted CA "CN=swtpm-localca" (${genuineIntermediate.fingerprint})`,
      at: { fingerprint: readCertificate(forged).certificate.fingerprint, subject: 'CN=unknown' },
    });
    expect(opensslVerifies(fixture.ca.rootCertPath, fixture.ca.intermediateCertPath, forged, dir)).toBe(false);

    // Supplying the rogue intermediate with the request moves the refusal one level up.
    const withRogueIntermediate = verifyEkChain(forged, { store: store(), extraIntermediates: [readFileSync(rogue.intermediateCertPath)], now: now(), ekGraceDays: 0 });
    expect(withRogueIntermediate).toEqual({
      ok: false,
      reason: 'signature-invalid',
      message: `the signature of "CN=swtpm-localca" does not verify with the key of trusted CA "CN=swtpm-localca-rootca" (${genuineRoot.fingerprint})`,
      at: { fingerprint: rogueIntermediate.fingerprint, subject: 'CN=swtpm-localca' },
    });

    // And the other way round: trusting only the rogue CA refuses the genuine certificate.
    const rogueStore = new TrustStore();
    rogueStore.addAll(readFileSync(rogue.rootCertPath));
    rogueStore.addAll(readFileSync(rogue.intermediateCertPath));
    expect(verifyEkChain(realEk, { store: rogueStore, now: now(), ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'signature-invalid' });
  });

  describe('quirky variants of the real certificate, re-signed with the local CA key', () => {
    beforeAll(() => {
      signingKey = createPrivateKey(readFileSync(fixture.ca.signingKeyPath));
    });

    it('non-minimal serial (00 00 00 02) and negative serial (ff 80) inspect and verify; OpenSSL refuses the non-minimal one', async () => {
      const der = await fixture.at(0).rsaEkCertDer();
      const tbsHex = readTlv(parseCertificate(der).tbs, 0, 'tbs').content.toString('hex');
      const serialHex = readTlv(Buffer.from(tbsHex, 'hex'), readTlv(Buffer.from(tbsHex, 'hex'), 0, 'version').end, 'serial').raw.toString('hex');
      const withSerial = (replacement: string): Buffer => resign(der, signingKey, (hex) => hex.replace(serialHex, replacement));
      const nonMinimal = withSerial('020400000002');
      const negative = withSerial('0202ff80');
      expect(serialHex.startsWith('02')).toBe(true);
      for (const [cert, serial, quirks] of [
        [nonMinimal, '00000002', ['non-minimal-serial']],
        [negative, 'ff80', ['non-minimal-serial', 'negative-serial']],
      ] as const) {
        expect(inspectEkCertificate(cert)).toMatchObject({ serialNumber: serial, quirks: [...quirks, 'critical-san-directory-name'], ekPubHash: inspectEkCertificate(der).ekPubHash });
        expect(verifyEkChain(cert, { store: store(), now: now(), ekGraceDays: 0 }).ok).toBe(true);
      }
      expect(() => new X509Certificate(nonMinimal)).toThrow();
      expect(new X509Certificate(withSerial('0201ff')).serialNumber).toBe('-01');
    });

    it('parser survey on the real certificate: which library reads which quirk', async () => {
      const der = await fixture.at(0).rsaEkCertDer();
      const tbsHex = readTlv(parseCertificate(der).tbs, 0, 'tbs').content.toString('hex');
      const serialHex = readTlv(Buffer.from(tbsHex, 'hex'), readTlv(Buffer.from(tbsHex, 'hex'), 0, 'version').end, 'serial').raw.toString('hex');
      const variants: Record<string, Buffer> = {
        plain: der,
        nvHeader: Buffer.concat([Buffer.from([0x10, 0x01, 0x00, der.length >> 8, der.length & 0xff]), der]),
        padding1600: Buffer.concat([der, Buffer.alloc(1600 - der.length, 0xff)]),
        nonMinimalSerial: resign(der, signingKey, (hex) => hex.replace(serialHex, '020400000002')),
        negativeSerial: resign(der, signingKey, (hex) => hex.replace(serialHex, '0201ff')),
      };
      const issuerKey = createPublicKey(readFileSync(fixture.ca.intermediateCertPath));
      const forgeIssuer = forge.pki.certificateFromPem(readFileSync(fixture.ca.intermediateCertPath, 'latin1'));
      const survey: Record<string, Record<string, string>> = {};
      for (const [name, bytes] of Object.entries(variants)) {
        const row: Record<string, string> = {};
        try {
          const c = new X509Certificate(bytes);
          row.openssl = c.verify(issuerKey) ? 'ok' : 'bad-signature';
        } catch {
          row.openssl = 'refused';
        }
        try {
          const c = new peculiar.X509Certificate(bytes);
          // It reads past the DER silently: its rawData (and any fingerprint taken from it) includes the padding.
          row.peculiar = c.rawData.byteLength === bytes.length && name === 'padding1600' ? 'ok (keeps the padding in rawData)' : 'ok';
        } catch {
          row.peculiar = 'refused';
        }
        try {
          const c = forge.pki.certificateFromAsn1(forge.asn1.fromDer(forge.util.createBuffer(bytes.toString('binary'))));
          row.forge = forgeIssuer.verify(c) ? 'ok' : 'bad-signature (re-encodes the tbs)';
        } catch {
          row.forge = 'refused';
        }
        const ours = verifyEkChain(bytes, { store: store(), now: now(), ekGraceDays: 0 });
        row.ekTrust = ours.ok ? 'ok' : ours.reason;
        survey[name] = row;
      }
      expect(survey).toEqual({
        plain: { openssl: 'ok', peculiar: 'ok', forge: 'ok', ekTrust: 'ok' },
        nvHeader: { openssl: 'refused', peculiar: 'refused', forge: 'refused', ekTrust: 'ok' },
        padding1600: { openssl: 'ok', peculiar: 'ok (keeps the padding in rawData)', forge: 'refused', ekTrust: 'ok' },
        nonMinimalSerial: { openssl: 'refused', peculiar: 'ok', forge: 'bad-signature (re-encodes the tbs)', ekTrust: 'ok' },
        negativeSerial: { openssl: 'ok', peculiar: 'ok', forge: 'ok', ekTrust: 'ok' },
      });
    });
  });

  describe('rackseal ek inspect / ek verify', () => {
    let files: {
      rsa: string;
      ecc: string;
      nv: string;
      forged: string;
      caDir: string;
      intermediate: string;
      notCert: string;
      badCaDir: string;
    };

    beforeAll(async () => {
      const tpm = fixture.at(0);
      const rsa = await tpm.rsaEkCertDer();
      const cliDir = join(dir, 'cli');
      const caDir = join(cliDir, 'cas');
      const badCaDir = join(cliDir, 'bad-cas');
      mkdirSync(caDir, { recursive: true });
      mkdirSync(badCaDir, { recursive: true });
      files = {
        rsa: join(cliDir, 'ek-rsa.der'),
        ecc: join(cliDir, 'ek-ecc.der'),
        nv: join(cliDir, 'ek-rsa.nv'),
        forged: join(cliDir, 'forged.der'),
        caDir,
        intermediate: join(cliDir, 'intermediate.pem'),
        notCert: join(cliDir, 'notes.txt'),
        badCaDir,
      };
      writeFileSync(files.rsa, rsa);
      writeFileSync(files.ecc, await tpm.eccEkCertDer());
      writeFileSync(files.nv, nvDump(rsa));
      writeFileSync(files.forged, await rogue.issueEkCert(new X509Certificate(rsa).publicKey));
      writeFileSync(join(caDir, 'root.pem'), readFileSync(fixture.ca.rootCertPath));
      writeFileSync(files.intermediate, readFileSync(fixture.ca.intermediateCertPath));
      writeFileSync(files.notCert, 'not a certificate\n');
      writeFileSync(join(badCaDir, 'root.pem'), readFileSync(fixture.ca.rootCertPath));
      writeFileSync(join(badCaDir, 'ek.der'), rsa);
    });

    it('ek inspect --json prints the library\'s inspection, also for an NV dump (exit 0)', () => {
      const result = cli('ek', 'inspect', '--json', files.nv);
      expect(result).toMatchObject({ status: 0, stderr: '' });
      const json = JSON.parse(result.stdout) as Record<string, unknown>;
      expect(json).toEqual(inspectEkCertificate(readFileSync(files.nv)));
      expect(json).toMatchObject({ manufacturer: 'id:00001014', model: 'swtpm', version: 'id:20191023', keyAlgorithm: 'rsa', quirks: ['nv-header', 'trailing-padding', 'critical-san-directory-name'] });
      expect(json.ekPubHash).toBe(inspectEkCertificate(readFileSync(files.rsa)).ekPubHash);
    });

    it('ek inspect (text) names every field', () => {
      const i = inspectEkCertificate(readFileSync(files.ecc));
      const result = cli('ek', 'inspect', files.ecc);
      expect(result.status).toBe(0);
      expect(result.stdout).toBe(
        [
          'manufacturer: id:00001014 (IBM (swtpm))',
          'model:        swtpm',
          'version:      id:20191023',
          'key:          ecc P-384',
          `ekPubHash:    ${i.ekPubHash}`,
          `serial:       ${i.serialNumber}`,
          'subject:      CN=unknown',
          'issuer:       CN=swtpm-localca',
          `not before:   ${i.notBefore}`,
          'not after:    9999-12-31T23:59:59.000Z',
          `fingerprint:  ${i.fingerprint}`,
          'format:       der',
          'EK EKU:       yes (2.23.133.8.1)',
          'TPM spec:     2.0 level 0 revision 164',
          'quirks:       critical-san-directory-name',
          '',
        ].join('\n'),
      );
    });

    it('ek inspect: a missing file or a non-certificate exits 2 with the reason', () => {
      const missing = join(dir, 'nope.der');
      expect(cli('ek', 'inspect', missing)).toEqual({ status: 2, stdout: '', stderr: `rackseal: cannot read certificate "${missing}": ENOENT\n` });
      expect(cli('ek', 'inspect', '--json', files.notCert)).toEqual({
        status: 2,
        stdout: '',
        stderr: `rackseal: "${files.notCert}" is not a readable certificate: not DER, PEM or base64 DER\n`,
      });
    });

    it('ek verify --ca DIR --ca FILE CERT exits 0 and prints the chain', () => {
      const result = cli('ek', 'verify', '--ca', files.caDir, '--ca', files.intermediate, files.rsa);
      const leaf = readCertificate(readFileSync(files.rsa)).certificate.fingerprint;
      expect(result).toEqual({
        status: 0,
        stderr: '',
        stdout: [
          'EK certificate verified: chain of 3 certificates',
          `  0 leaf         ${leaf}  CN=unknown`,
          `  1 intermediate ${fingerprintOfPem(fixture.ca.intermediateCertPath)}  CN=swtpm-localca`,
          `  2 root         ${fingerprintOfPem(fixture.ca.rootCertPath)}  CN=swtpm-localca-rootca`,
          '',
        ].join('\n'),
      });
      const json = cli('ek', 'verify', '--json', '--ca', files.caDir, '--ca', files.intermediate, files.ecc);
      expect(json.status).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, chain: [{ kind: 'leaf' }, { kind: 'intermediate' }, { kind: 'root' }], graceApplied: [] });
      // The NV dump and a PEM intermediate bundle given as --intermediate work the same way.
      expect(cli('ek', 'verify', '--ca', files.caDir, '--intermediate', files.intermediate, files.nv).status).toBe(0);
      // A pinned intermediate ends the chain by itself.
      expect(cli('ek', 'verify', '--anchor', files.intermediate, files.rsa).stdout).toMatch(/^EK certificate verified: chain of 2 certificates\n/);
    });

    it('ek verify refuses a rogue-CA certificate (exit 1) and an incomplete chain (exit 1), with the reason on stderr', () => {
      expect(cli('ek', 'verify', '--ca', files.caDir, '--ca', files.intermediate, files.forged)).toEqual({
        status: 1,
        stdout: '',
        stderr: `rackseal: EK certificate refused (signature-invalid): the signature of "CN=unknown" does not verify with the key of trusted CA "CN=swtpm-localca" (${fingerprintOfPem(fixture.ca.intermediateCertPath)})\n`,
      });
      expect(cli('ek', 'verify', '--ca', files.caDir, files.rsa)).toEqual({
        status: 1,
        stdout: '',
        stderr: 'rackseal: EK certificate refused (untrusted-root): issuer "CN=swtpm-localca" of "CN=unknown" is not a trusted CA\n',
      });
      const json = cli('ek', 'verify', '--json', '--ca', files.caDir, files.rsa);
      expect(json.status).toBe(1);
      expect(JSON.parse(json.stdout)).toEqual({ valid: false, reason: 'untrusted-root', message: 'issuer "CN=swtpm-localca" of "CN=unknown" is not a trusted CA' });
      // All 51 vendor CAs load from the fixture directory; none of them issued swtpm's certificate.
      expect(cli('ek', 'verify', '--ca', VENDOR_CAS, files.rsa)).toMatchObject({ status: 1, stderr: expect.stringContaining('(untrusted-root)') });
    });

    it('ek verify usage errors and unreadable inputs exit 2', () => {
      expect(cli('ek', 'verify', files.rsa)).toEqual({ status: 2, stdout: '', stderr: 'rackseal: ek verify needs at least one --ca PATH (or --anchor PATH)\n' });
      expect(cli('ek', 'verify', '--ca', files.badCaDir, files.rsa)).toEqual({
        status: 2,
        stdout: '',
        stderr: `rackseal: --ca "${join(files.badCaDir, 'ek.der')}": "CN=unknown" is not a CA certificate (basicConstraints cA is not TRUE)\n`,
      });
      expect(cli('ek', 'verify', '--ca', files.notCert, files.rsa)).toEqual({ status: 2, stdout: '', stderr: `rackseal: --ca "${files.notCert}": not DER, PEM or base64 DER\n` });
      expect(cli('ek', 'verify', '--ca', join(dir, 'absent'), files.rsa)).toEqual({ status: 2, stdout: '', stderr: `rackseal: cannot read --ca "${join(dir, 'absent')}": ENOENT\n` });
      expect(cli('ek', 'verify', '--ca', files.caDir, files.notCert)).toEqual({ status: 2, stdout: '', stderr: `rackseal: "${files.notCert}" is not a readable certificate: not DER, PEM or base64 DER\n` });
      expect(cli('ek', 'verify', '--ca', files.caDir, '--ek-grace-days', '-3', files.rsa)).toEqual({ status: 2, stdout: '', stderr: 'rackseal: --ek-grace-days must be a number of days >= 0 or "inf"\n' });
      expect(cli('ek', 'verify', '--ca', files.caDir, '--at', 'yesterday', files.rsa)).toEqual({ status: 2, stdout: '', stderr: 'rackseal: --at "yesterday" is not an ISO 8601 time\n' });
    });

    it('ek verify --at before the local CA existed is not-yet-valid (exit 1)', () => {
      const result = cli('ek', 'verify', '--ca', files.caDir, '--ca', files.intermediate, '--at', '2000-01-01T00:00:00Z', files.rsa);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/^rackseal: EK certificate refused \(not-yet-valid\): EK certificate "CN=unknown" is not valid before /);
    });
  });
});
