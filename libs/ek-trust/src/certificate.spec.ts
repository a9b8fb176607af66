import { ECDH, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { ekPubHash } from '@rackseal/tpm2';
import { verifyEkChain } from './chain';
import { parseCertificate } from './certificate';
import { encodeTlv, readTlv, TAG } from './der';
import { EkCertificateError } from './errors';
import { certificateEkPubHash, inspectEkCertificate, readCertificate } from './inspect';
import { unwrapCertificate, unwrapCertificates } from './input';
import { findUnprintable } from './printable';
import { isSignedBy } from './signature';
import { decodeVendorId } from './tcg';
import { TrustStore } from './trust-store';
import {
  buildTbs,
  encodeName,
  encodeOid,
  issueCertificate,
  keyUsage,
  makeCa,
  makeEkCertificate,
  seq,
  signTbs,
  tcgSubjectAltName,
  type NameSpec,
  type TestCa,
} from './testing/certificate-builder';

// The real-world EK certificate quirks (EkQuirk in errors.ts), each built byte by byte and signed over the
// quirky tbsCertificate, so that a verifier which re-encodes before checking would fail them.

const NOW = new Date('2025-06-01T00:00:00Z');
const FROM = new Date('2016-01-01T00:00:00Z');
const TO = new Date('2045-01-01T00:00:00Z');

const root = makeCa({ subject: [[['CN', 'Quirk Root']]], keys: generateKeyPairSync('ec', { namedCurve: 'P-384' }), notBefore: FROM, notAfter: TO });
const intermediate = makeCa({ subject: [[['C', 'TW']], [['CN', 'Quirk Intermediate']]], keys: generateKeyPairSync('rsa', { modulusLength: 2048 }), issuer: root, notBefore: FROM, notAfter: TO });
const store = new TrustStore();
store.add(root.der);
store.add(intermediate.der);
const ekKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;

function ekWith(extra: Partial<Parameters<typeof makeEkCertificate>[0]> = {}, issuer: TestCa = intermediate): Buffer {
  return makeEkCertificate({ issuer, publicKey: ekKey, notBefore: FROM, notAfter: TO, ...extra });
}

function verifies(cert: Buffer | string, s: TrustStore = store): boolean {
  const result = verifyEkChain(cert, { store: s, now: NOW, ekGraceDays: 0 });
  if (!result.ok) {
    throw new Error(`${result.reason}: ${result.message}`);
  }
  return true;
}

const plain = ekWith();
const plainHash = ekPubHash(ekKey);

describe('reading EK certificates', () => {
  it('reads a TCG-shaped EK certificate: SAN manufacturer/model/version, vendor, key, EKU', () => {
    expect(inspectEkCertificate(plain)).toEqual({
      manufacturer: 'id:49465800',
      vendorId: 'IFX',
      vendorName: 'Infineon',
      model: 'SLB9670',
      version: 'id:000D0009',
      keyAlgorithm: 'rsa',
      keyBits: 2048,
      ekPubHash: plainHash,
      serialNumber: '02',
      issuer: 'C=TW, CN=Quirk Intermediate',
      subject: '',
      notBefore: FROM.toISOString(),
      notAfter: TO.toISOString(),
      fingerprint: new X509Certificate(plain).fingerprint256.replace(/:/g, '').toLowerCase(),
      format: 'der',
      ekCertificateEku: true,
      quirks: ['critical-san-directory-name'],
    });
  });

  it.each([
    ['id:49465800', 'IFX'],
    ['id:53544D20', 'STM'],
    ['id:4E544300', 'NTC'],
    ['id:494E5443', 'INTC'],
    ['id:49424D00', 'IBM'],
    ['id:00001014', null],
    ['IFX', null],
  ])('vendor ID of %s is %s', (manufacturer, id) => {
    expect(decodeVendorId(manufacturer)).toBe(id);
  });

  it('ECC EK keys report the curve; ekPubHash is the one libs/tpm2 computes', () => {
    for (const [curve, name] of [
      ['P-256', 'P-256'],
      ['P-384', 'P-384'],
    ] as const) {
      const key = generateKeyPairSync('ec', { namedCurve: curve }).publicKey;
      const cert = makeEkCertificate({ issuer: intermediate, publicKey: key, notBefore: FROM, notAfter: TO });
      expect(inspectEkCertificate(cert)).toMatchObject({ keyAlgorithm: 'ecc', curve: name, keyBits: Number(curve.slice(2)), ekPubHash: ekPubHash(key) });
    }
  });

  it('ekPubHash: hashing a canonical SPKI as found equals libs/tpm2 (which re-exports the key); other encodings go through libs/tpm2', () => {
    const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const canonical = parseCertificate(makeEkCertificate({ issuer: intermediate, publicKey: ecKey, notBefore: FROM, notAfter: TO }));
    expect(canonical.publicKeyInfo).toEqual({ type: 'ecc', curve: 'P-256', bits: 256, canonical: true });
    expect(certificateEkPubHash(canonical)).toBe(ekPubHash(ecKey));
    // The same key with a compressed point: a different SPKI, the same EK identity.
    const jwk = ecKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    const compressedPoint = ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    const compressedSpki = seq(seq(encodeOid('1.2.840.10045.2.1'), encodeOid('1.2.840.10045.3.1.7')), encodeTlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), compressedPoint])));
    const { tbs, algorithm } = buildTbs({ subject: [], issuer: intermediate.subject, notBefore: FROM, notAfter: TO, publicKey: ecKey, signingKey: intermediate.privateKey, extensions: [keyUsage(4)] });
    const uncompressedSpki = ecKey.export({ type: 'spki', format: 'der' });
    const compressedTbs = encodeTlv(TAG.SEQUENCE, Buffer.from(readTlv(tbs, 0, 'tbs').content.toString('hex').replace(uncompressedSpki.toString('hex'), compressedSpki.toString('hex')), 'hex'));
    const compressed = parseCertificate(signTbs(compressedTbs, algorithm, intermediate.privateKey));
    expect(compressed.publicKeyInfo).toEqual({ type: 'ecc', curve: 'P-256', bits: 256, canonical: false });
    expect(certificateEkPubHash(compressed)).toBe(ekPubHash(ecKey));
    // RSA key sizes as node:crypto counts them, odd ones included.
    for (const modulusLength of [1025, 2048, 3072]) {
      const key = generateKeyPairSync('rsa', { modulusLength }).publicKey;
      const cert = parseCertificate(makeEkCertificate({ issuer: intermediate, publicKey: key, notBefore: FROM, notAfter: TO }));
      expect(cert.publicKeyInfo).toEqual({ type: 'rsa', bits: modulusLength, canonical: true });
      expect(certificateEkPubHash(cert)).toBe(ekPubHash(key));
    }
  });

  it('refuses an EK key that is neither RSA nor a NIST curve', () => {
    const ed = generateKeyPairSync('ed25519').publicKey;
    const cert = makeEkCertificate({ issuer: intermediate, publicKey: ed, notBefore: FROM, notAfter: TO });
    expect(() => inspectEkCertificate(cert)).toThrow(new EkCertificateError('unsupported-key', 'an EK key is RSA or ECC on a NIST curve; this certificate holds a 1.3.101.112 key'));
  });

  it('accepts DER, PEM (also inside `openssl x509 -text` output), base64 and a CSV-style base64 cell', () => {
    const b64 = plain.toString('base64');
    const pem = `Certificate:\n    Data: ...\n-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    expect(inspectEkCertificate(pem)).toMatchObject({ format: 'pem', ekPubHash: plainHash });
    expect(inspectEkCertificate(b64)).toMatchObject({ format: 'base64', ekPubHash: plainHash });
    expect(inspectEkCertificate(Buffer.from(` ${b64}\r\n`))).toMatchObject({ format: 'base64' });
    expect(inspectEkCertificate(plain.toString('base64url'))).toMatchObject({ format: 'base64' });
  });

  it('strips an NV header and 0xFF padding to 1600 bytes (ST33), reporting both; same key, same fingerprint', () => {
    const nv = Buffer.concat([Buffer.from([0x10, 0x01, 0x00, plain.length >> 8, plain.length & 0xff]), plain]);
    const padded = Buffer.concat([nv, Buffer.alloc(1600 - nv.length, 0xff)]);
    const inspected = inspectEkCertificate(padded);
    expect(inspected.quirks).toEqual(['nv-header', 'trailing-padding', 'critical-san-directory-name']);
    expect(inspected.ekPubHash).toBe(plainHash);
    expect(inspected.fingerprint).toBe(inspectEkCertificate(plain).fingerprint);
    expect(inspectEkCertificate(nv).quirks).toEqual(['nv-header', 'critical-san-directory-name']);
    expect(inspectEkCertificate(Buffer.concat([plain, Buffer.alloc(64)])).quirks).toEqual(['trailing-padding', 'critical-san-directory-name']);
    expect(inspectEkCertificate(Buffer.concat([plain, Buffer.from('junk')])).quirks).toEqual(['trailing-data', 'critical-san-directory-name']);
    expect(inspectEkCertificate(padded.toString('base64')).quirks).toEqual(['nv-header', 'trailing-padding', 'critical-san-directory-name']);
    expect(verifies(padded)).toBe(true);
  });

  it('refuses an NV header that declares fewer bytes than the certificate, and truncated DER', () => {
    const short = Buffer.concat([Buffer.from([0x10, 0x01, 0x00, 0x00, 0x10]), plain]);
    expect(() => unwrapCertificate(short)).toThrow(new EkCertificateError('malformed', `NV header declares 16 bytes but the certificate is ${plain.length}`));
    expect(() => unwrapCertificate(plain.subarray(0, plain.length - 1))).toThrow(/^truncated or malformed DER: Certificate at offset 0: length \d+ runs past the end/);
    expect(() => readCertificate(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]))).toThrow(EkCertificateError);
  });

  it('refuses what is not a certificate with a reason, never a crash', () => {
    for (const input of ['', 'hello world', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', Buffer.from([0x10, 0x01, 0x00, 0x00, 0x05, 0x04])]) {
      expect(() => readCertificate(input)).toThrow(EkCertificateError);
    }
    expect(() => unwrapCertificate(`${pemOf(plain)}${pemOf(plain)}`)).toThrow('expected one certificate, found 2 PEM blocks');
    expect(unwrapCertificates(`${pemOf(plain)}${pemOf(plain)}`)).toHaveLength(2);
  });
});

function pemOf(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
}

describe('quirks inside the certificate, verified over the original bytes', () => {
  it.each([
    ['non-minimal serial (STM)', '020400000002', '00000002', ['non-minimal-serial']],
    ['negative serial', '0201ff', 'ff', ['negative-serial']],
    ['negative and non-minimal', '0202ff80', 'ff80', ['non-minimal-serial', 'negative-serial']],
    ['21-octet serial', `0215${'11'.repeat(21)}`, '11'.repeat(21), ['long-serial']],
  ])('%s: inspects and verifies', (_label, serialTlv, hex, quirks) => {
    const serial = readTlv(Buffer.from(serialTlv, 'hex'), 0, 'serial').content;
    const cert = ekWith({ serial });
    expect(inspectEkCertificate(cert)).toMatchObject({ serialNumber: hex, quirks: [...quirks, 'critical-san-directory-name'], ekPubHash: plainHash });
    expect(verifies(cert)).toBe(true);
  });

  it('OpenSSL (node:crypto X509Certificate) refuses the non-minimal serial we accept', () => {
    const cert = ekWith({ serial: Buffer.from('00000002', 'hex') });
    expect(() => new X509Certificate(cert)).toThrow();
  });

  it('unsorted issuer SET (Nuvoton): matches the CA whose SET is sorted, verifies over the unsorted bytes', () => {
    const subject = [[['CN', 'NTC Like Root'], ['O', 'Nuvoton Technology Corporation'], ['C', 'TW']]] as const;
    const sorted = [[['C', 'TW'], ['CN', 'NTC Like Root'], ['O', 'Nuvoton Technology Corporation']]] as const;
    // The CA's own subject DER-sorted, the EK's issuer in vendor order: names must match as sets.
    const nuvoton = makeCa({ subject: sorted, keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }), notBefore: FROM, notAfter: TO });
    expect(parseCertificate(nuvoton.der).quirks).toEqual([]);
    const cert = ekWith({ issuerName: subject }, nuvoton);
    expect(inspectEkCertificate(cert)).toMatchObject({ issuer: 'CN=NTC Like Root + O=Nuvoton Technology Corporation + C=TW', quirks: ['unsorted-set', 'critical-san-directory-name'] });
    const s = new TrustStore();
    s.add(nuvoton.der);
    expect(verifies(cert, s)).toBe(true);
    // Re-encoding the issuer in DER order changes the signed bytes: the signature no longer verifies.
    const parsed = parseCertificate(cert);
    const resorted = Buffer.from(parsed.tbs.toString('hex').replace(encodeName(subject).toString('hex'), encodeName(sorted).toString('hex')), 'hex');
    expect(resorted.equals(parsed.tbs)).toBe(false);
    expect(isSignedBy({ ...parsed, tbs: resorted }, nuvoton.publicKey)).toBe(false);
    expect(isSignedBy(parsed, nuvoton.publicKey)).toBe(true);
  });

  it('critical SAN holding only a directoryName: reported, and not an unhandled critical extension', () => {
    const critical = ekWith();
    const nonCritical = makeEkCertificate({ issuer: intermediate, publicKey: ekKey, notBefore: FROM, notAfter: TO, criticalSan: false });
    expect(inspectEkCertificate(critical).quirks).toEqual(['critical-san-directory-name']);
    expect(inspectEkCertificate(nonCritical).quirks).toEqual([]);
    expect(parseCertificate(critical).unhandledCriticalExtensions).toEqual([]);
    expect(verifies(critical)).toBe(true);
  });

  it('an RSA EK key labelled id-RSAES-OAEP (TPM 1.2 certificates) is read as RSA with the same ekPubHash', () => {
    const spki = ekKey.export({ type: 'spki', format: 'der' });
    const spkiTlv = readTlv(spki, 0, 'spki');
    const bits = readTlv(spki, readTlv(spki, spkiTlv.contentStart, 'alg').end, 'bits');
    const oaepSpki = seq(seq(encodeOid('1.2.840.113549.1.1.7')), bits.raw);
    const { tbs, algorithm } = buildTbs({
      subject: [],
      issuer: intermediate.subject,
      notBefore: FROM,
      notAfter: TO,
      publicKey: ekKey,
      signingKey: intermediate.privateKey,
      extensions: [keyUsage(2), tcgSubjectAltName({ manufacturer: 'id:49465800', model: 'SLB9635', version: 'id:0003000C' })],
    });
    const oaepTbs = encodeTlv(TAG.SEQUENCE, Buffer.from(readTlv(tbs, 0, 'tbs').content.toString('hex').replace(spki.toString('hex'), oaepSpki.toString('hex')), 'hex'));
    const cert = signTbs(oaepTbs, algorithm, intermediate.privateKey);
    expect(inspectEkCertificate(cert)).toMatchObject({ keyAlgorithm: 'rsa', ekPubHash: plainHash, quirks: ['rsaes-oaep-key', 'critical-san-directory-name'] });
    expect(verifies(cert)).toBe(true);
  });

  it('a BER (non-minimal) length is tolerated and reported, and the signature still covers the bytes as sent', () => {
    const { tbs, algorithm } = buildTbs({
      subject: [[['CN', 'ber']]],
      issuer: intermediate.subject,
      notBefore: FROM,
      notAfter: TO,
      publicKey: ekKey,
      signingKey: intermediate.privateKey,
    });
    // Re-wrap the subject Name's first SET with a long-form length of a short value.
    const subjectHex = encodeName([[['CN', 'ber']]]).toString('hex');
    const setTlv = readTlv(Buffer.from(subjectHex, 'hex'), 2, 'set');
    const berSet = Buffer.concat([Buffer.from([TAG.SET, 0x81, setTlv.content.length]), setTlv.content]);
    const berSubject = encodeTlv(TAG.SEQUENCE, berSet);
    const berTbs = encodeTlv(TAG.SEQUENCE, Buffer.from(readTlv(tbs, 0, 'tbs').content.toString('hex').replace(subjectHex, berSubject.toString('hex')), 'hex'));
    const cert = signTbs(berTbs, algorithm, intermediate.privateKey);
    expect(readCertificate(cert).quirks).toEqual(['ber-length']);
    expect(verifies(cert)).toBe(true);
  });

  it('refuses duplicated extensions and mismatched signature algorithms as malformed', () => {
    const twice = issueCertificate({
      subject: [[['CN', 'dup']]],
      issuer: intermediate.subject,
      notBefore: FROM,
      notAfter: TO,
      publicKey: ekKey,
      signingKey: intermediate.privateKey,
      extensions: [keyUsage(2), keyUsage(2)],
    });
    expect(() => parseCertificate(twice)).toThrow(/extension 2\.5\.29\.15 appears twice/);
    const { tbs } = buildTbs({ subject: [[['CN', 'alg']]], issuer: intermediate.subject, notBefore: FROM, notAfter: TO, publicKey: ekKey, signingKey: intermediate.privateKey });
    const sha384 = seq(encodeOid('1.2.840.113549.1.1.12'), Buffer.from([TAG.NULL, 0]));
    expect(() => parseCertificate(signTbs(tbs, sha384, intermediate.privateKey, 'sha384'))).toThrow(
      /TBSCertificate\.signature at offset 4: 1\.2\.840\.113549\.1\.1\.11 differs from the outer signatureAlgorithm 1\.2\.840\.113549\.1\.1\.12/,
    );
  });
});

describe('names as text', () => {
  it('escapes every control character (C0, DEL, C1, line separators, bidi controls) as RFC 4514 hexpairs: none reaches a terminal raw', () => {
    const subject: NameSpec = [[['CN', 'a\u0000b\u001b[31mc\u007fd\u009b2Je\nf\u202eg\u2028h']]];
    const cert = parseCertificate(makeCa({ subject, keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }), notBefore: FROM, notAfter: TO }).der);
    expect(cert.subject.text).toBe('CN=a\\00b\\1b[31mc\\7fd\\c2\\9b2Je\\0af\\e2\\80\\aeg\\e2\\80\\a8h');
    expect(findUnprintable(cert.subject.text)).toBeUndefined();
    // Printable non-ASCII stays as it is.
    const plainName = parseCertificate(makeCa({ subject: [[['CN', 'Prüf-CA']]], keys: generateKeyPairSync('ec', { namedCurve: 'P-256' }), notBefore: FROM, notAfter: TO }).der);
    expect(plainName.subject.text).toBe('CN=Prüf-CA');
  });
});
