import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, webcrypto } from 'node:crypto';
import type { SecretKeyAlgorithm } from '@rackseal/api-contracts';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import * as x509 from '@peculiar/x509';
import { CaError, SecretError } from './secret-errors';

/**
 * Certificates with @peculiar/x509 over node's WebCrypto (passed explicitly: no global provider is
 * set, so nothing else in the process changes behaviour). Private keys are PKCS#8 DER in
 * SecretBytes, from generation to the envelope; they pass to WebCrypto only as non-extractable keys.
 */
type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
type CreateParams = Parameters<typeof x509.X509CertificateGenerator.create>[0] & { signingKey: unknown };
type SigningKey = CreateParams['signingKey'];
type SigningAlgorithm = NonNullable<CreateParams['signingAlgorithm']>;
const crypto = webcrypto as unknown as X509Crypto;

/** Backdating of notBefore, so a machine whose clock is a little behind accepts a fresh certificate. */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
/** The TLS CA rackseal creates: 10 years (it is replaced by import or a new deployment, not renewed). */
const CREATED_CA_VALIDITY_DAYS = 3650;

/** A CA able to sign: its certificate and its key, opened from the envelope for one operation. */
export interface SigningCa {
  readonly certificate: x509.X509Certificate;
  readonly key: SecretBytes;
}

/** A key pair generated for a machine: the private key (PKCS#8 DER) and the public key (SPKI DER). */
export interface GeneratedKey {
  readonly privateKey: SecretBytes;
  readonly publicKey: Buffer;
}

export function generateKeyPair(algorithm: SecretKeyAlgorithm | 'ecdsa-p384'): GeneratedKey {
  const pair =
    algorithm === 'rsa-2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })
      : generateKeyPairSync('ec', { namedCurve: algorithm === 'ecdsa-p384' ? 'P-384' : 'P-256' });
  return {
    privateKey: new SecretBytes(pair.privateKey.export({ type: 'pkcs8', format: 'der' })),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'der' }),
  };
}

/** The self-signed ECDSA P-384 root of the cluster TLS CA (RFC 5280 §4.2.1.9: cA, keyCertSign). */
export async function createTlsCa(now: Date): Promise<{ certificatePem: string; key: SecretBytes }> {
  const generated = generateKeyPair('ecdsa-p384');
  const privateKey = await signingKeyOf(generated.privateKey);
  const publicKey = await crypto.subtle.importKey('spki', generated.publicKey, { name: 'ECDSA', namedCurve: 'P-384' }, true, ['verify']);
  const notBefore = new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: [{ CN: ['rackseal cluster TLS CA'] }, { O: ['rackseal'] }],
      notBefore,
      notAfter: new Date(notBefore.getTime() + CREATED_CA_VALIDITY_DAYS * DAY_MS),
      keys: { privateKey: privateKey.key, publicKey },
      signingAlgorithm: privateKey.signing,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certificatePem: certificate.toString('pem'), key: generated.privateKey };
}

/** A CA import, checked: one CA certificate, a private key that is its key, of a kind we sign with. */
export interface CheckedCa {
  readonly certificate: x509.X509Certificate;
  readonly certificatePem: string;
  readonly key: SecretBytes;
  readonly keyAlgorithm: string;
}

/**
 * Checks an imported CA (certificate PEM and private key PEM: PKCS#8, SEC1 or PKCS#1, unencrypted).
 * Refusals say what is wrong with the import and never quote the key.
 */
export function checkCaImport(certificatePem: string, keyPem: SecretBytes, now: Date): CheckedCa {
  let certificate: x509.X509Certificate;
  try {
    const blocks = certificatePem.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    if (blocks.length !== 1) {
      throw new Error('not one certificate');
    }
    certificate = new x509.X509Certificate(certificatePem);
  } catch {
    throw new CaError('ca.invalid', 'certificate must be exactly one PEM certificate (-----BEGIN CERTIFICATE-----)');
  }
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  if (constraints === null || !constraints.ca) {
    throw new CaError('ca.invalid', 'certificate is not a CA certificate (its basicConstraints lack cA: TRUE, RFC 5280 §4.2.1.9)');
  }
  // A CA outside its validity issues certificates no verifier accepts (RFC 5280 §6.1.3 (a)(2) checks
  // every certificate of the path against the current time); a CA dated a little ahead is clock skew.
  if (certificate.notAfter.getTime() <= now.getTime() || certificate.notBefore.getTime() > now.getTime() + NOT_BEFORE_BACKDATE_MS) {
    throw new CaError('ca.invalid', `certificate is not valid now: notBefore ${certificate.notBefore.toISOString()}, notAfter ${certificate.notAfter.toISOString()}`);
  }
  const usage = certificate.getExtension(x509.KeyUsagesExtension);
  if (usage !== null && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new CaError('ca.invalid', 'certificate\'s keyUsage lacks keyCertSign (RFC 5280 §4.2.1.3)');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem.reveal(), format: 'pem' });
  } catch {
    throw new CaError('ca.invalid', 'privateKey is not an unencrypted PEM private key (PKCS#8, SEC1 or PKCS#1)');
  }
  const keyAlgorithm = describeKey(key);
  if (keyAlgorithm === undefined) {
    throw new CaError('ca.invalid', 'privateKey must be RSA of 2048 bits or more, or ECDSA on P-256, P-384 or P-521');
  }
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!spki.equals(Buffer.from(certificate.publicKey.rawData))) {
    throw new CaError('ca.invalid', 'privateKey is not the key of certificate (their public keys differ)');
  }
  return { certificate, certificatePem: certificate.toString('pem'), key: new SecretBytes(key.export({ type: 'pkcs8', format: 'der' })), keyAlgorithm };
}

/** `ecdsa-p384`, `rsa-2048`, …, or undefined for a key rackseal does not sign with. */
export function describeKey(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) {
    return `rsa-${details.modulusLength}`;
  }
  if (key.asymmetricKeyType === 'ec' && ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '')) {
    return { prime256v1: 'ecdsa-p256', secp384r1: 'ecdsa-p384', secp521r1: 'ecdsa-p521' }[details.namedCurve!];
  }
  return undefined;
}

/** What a leaf certificate says: its subject, SANs (none for a kubelet client) and extended key usages. */
export interface LeafProfile {
  readonly subject: x509.JsonName;
  readonly dnsNames: readonly string[];
  readonly extendedKeyUsages: readonly x509.ExtendedKeyUsage[];
  readonly validityDays: number;
}

/**
 * Issues a certificate for `publicKey` (SPKI DER) from `ca`. Extensions (RFC 5280 §4.2): basic
 * constraints cA FALSE (critical), key usage digitalSignature, plus keyEncipherment for an RSA key
 * (TLS RSA key transport) (critical), the profile's extended key usages, the CA's key identifier,
 * and a subjectAltName only when the profile has DNS names.
 */
export async function issueCertificate(ca: SigningCa, publicKey: Buffer, profile: LeafProfile, now: Date): Promise<x509.X509Certificate> {
  const signing = await signingKeyOf(ca.key);
  const rsa = createPublicKey({ key: publicKey, format: 'der', type: 'spki' }).asymmetricKeyType === 'rsa';
  // A certificate cannot outlive its issuer (RFC 5280 §6.1.3 (a)(2) checks the CA's validity too): an
  // expired CA issues nothing, and a leaf ends no later than its CA, so that its stated notAfter is
  // the day it stops verifying, and renewal is due before it.
  const caNotAfter = ca.certificate.notAfter.getTime();
  if (caNotAfter <= now.getTime()) {
    throw new SecretError('secret.ca-expired', `the CA ${ca.certificate.subject} expired at ${ca.certificate.notAfter.toISOString()}: it issues no certificate`);
  }
  const notBefore = new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS);
  const notAfter = new Date(Math.min(notBefore.getTime() + profile.validityDays * DAY_MS, caNotAfter));
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0), true),
    new x509.ExtendedKeyUsageExtension([...profile.extendedKeyUsages], false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey, false, crypto),
  ];
  if (profile.dnsNames.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(profile.dnsNames.map((value) => ({ type: 'dns' as const, value })), false));
  }
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: profile.subject,
      issuer: ca.certificate.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: signing.key,
      signingAlgorithm: signing.signing,
      extensions,
    },
    crypto,
  );
}

/** Lowercase hex SHA-256 of a certificate's DER. */
export function fingerprintOf(certificate: x509.X509Certificate): string {
  return createHash('sha256').update(Buffer.from(certificate.rawData)).digest('hex');
}

/** A non-extractable WebCrypto signing key from PKCS#8 DER, with the signature algorithm that goes with it. */
async function signingKeyOf(pkcs8: SecretBytes): Promise<{ key: SigningKey; signing: SigningAlgorithm }> {
  const der = pkcs8.reveal();
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType === 'rsa') {
    return {
      key: await crypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']),
      signing: { name: 'RSASSA-PKCS1-v1_5' },
    };
  }
  // FIPS 186-5 / RFC 5758 §3.2: the hash sized to the curve.
  const curve = { prime256v1: ['P-256', 'SHA-256'], secp384r1: ['P-384', 'SHA-384'], secp521r1: ['P-521', 'SHA-512'] }[key.asymmetricKeyDetails?.namedCurve ?? ''];
  if (curve === undefined) {
    throw new CaError('ca.invalid', 'the CA key is of a kind rackseal does not sign with');
  }
  return {
    key: await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: curve[0]! }, false, ['sign']),
    signing: { name: 'ECDSA', hash: curve[1]! } as SigningAlgorithm,
  };
}

/** 16 random bytes, the first below 0x80 and nonzero (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function serialNumber(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}
