/**
 * go-tpm's published test vectors (google/go-tpm tpm2/test/testvectors, copied byte for byte to
 * test/fixtures/tpm-vectors; SOURCES.md there names the commit): KDFa, KDFe, and RSA/ECC labeled encapsulation
 * with fixed OAEP seeds and ephemeral keys, over SHA-1/256/384/512, RSA-2048/3072/4096 and
 * P-256/384/521. Every vector must reproduce byte for byte; the counts are asserted so a truncated
 * fixture cannot pass quietly.
 */
import {
  eccLabeledEncapsulate,
  KDFa,
  KDFe,
  marshalTpmtSensitive,
  rsaLabeledEncapsulate,
  TPM_ALG_ID,
  unmarshalTpmtPublic,
  unmarshalTpmtSensitive,
  type EccPublic,
  type RsaPublic,
  oaepHashAlg,
  hashAlgorithm,
} from '@rackseal/tpm2';
import { createECDH, createPrivateKey, constants, privateDecrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePath } from './support/fixtures';

const VECTORS = fixturePath('tpm-vectors');

function load<T>(file: string): T[] {
  return JSON.parse(readFileSync(join(VECTORS, file), 'utf8')) as T[];
}

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

interface KdfVector {
  Name: string;
  HashAlg: number;
  Label: string;
  ContextU: string;
  ContextV: string;
  Bits: number;
  Result: string;
}
type KdfaVector = KdfVector & { Key: string };
type KdfeVector = KdfVector & { Z: string };

interface EncapsVector {
  Name: string;
  Label: string;
  /** TPMT_PUBLIC, no size prefix. */
  PublicKey: string;
  /** TPMT_SENSITIVE of the same key. */
  PrivateKey: string;
  Secret: string;
  Ciphertext: string;
}
type RsaVector = EncapsVector & { OAEPSalt: string };
type EccVector = EncapsVector & { EphemeralPrivate: string };

const kdfa = load<KdfaVector>('kdfa.json');
const kdfe = load<KdfeVector>('kdfe.json');
const rsa = load<RsaVector>('rsa_labeled_encaps.json');
const ecc = load<EccVector>('ecc_labeled_encaps.json');

describe('go-tpm vectors', () => {
  it('has all 100 vectors of each kind', () => {
    expect([kdfa.length, kdfe.length, rsa.length, ecc.length]).toEqual([100, 100, 100, 100]);
  });

  it.each(kdfa)('KDFa $Name', (v) => {
    expect(KDFa(v.HashAlg, hex(v.Key), v.Label, hex(v.ContextU), hex(v.ContextV), v.Bits).toString('hex')).toBe(v.Result);
  });

  it.each(kdfe)('KDFe $Name', (v) => {
    expect(KDFe(v.HashAlg, hex(v.Z), v.Label, hex(v.ContextU), hex(v.ContextV), v.Bits).toString('hex')).toBe(v.Result);
  });

  it.each(rsa)('RSA labeled encapsulation $Name ($Label)', (v) => {
    const pub = unmarshalTpmtPublic(hex(v.PublicKey));
    expect(pub.type).toBe(TPM_ALG_ID.TPM_ALG_RSA);
    const { encryptedSecret } = rsaLabeledEncapsulate(pub as RsaPublic, v.Label, hex(v.Secret), hex(v.OAEPSalt));
    expect(encryptedSecret.toString('hex')).toBe(v.Ciphertext);

    // Independently: OpenSSL's OAEP decoding with the vector's private key recovers the secret.
    const priv = unmarshalTpmtSensitive(hex(v.PrivateKey));
    expect(marshalTpmtSensitive(priv).toString('hex')).toBe(v.PrivateKey);
    const key = rsaPrivateKey(pub as RsaPublic, priv.sensitive);
    const secret = privateDecrypt(
      { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashAlgorithm(oaepHashAlg(pub as RsaPublic)).node, oaepLabel: Buffer.from(`${v.Label}\0`) },
      encryptedSecret,
    );
    expect(secret.toString('hex')).toBe(v.Secret);
  });

  it.each(ecc)('ECC labeled encapsulation $Name ($Label)', (v) => {
    const pub = unmarshalTpmtPublic(hex(v.PublicKey));
    expect(pub.type).toBe(TPM_ALG_ID.TPM_ALG_ECC);
    const { seed, encryptedSecret } = eccLabeledEncapsulate(pub as EccPublic, v.Label, hex(v.EphemeralPrivate));
    expect(seed.toString('hex')).toBe(v.Secret);
    expect(encryptedSecret.toString('hex')).toBe(v.Ciphertext);

    // Independently: the TPM's side (d_static · Q_ephemeral, then KDFe) derives the same seed.
    const priv = unmarshalTpmtSensitive(hex(v.PrivateKey));
    expect(marshalTpmtSensitive(priv).toString('hex')).toBe(v.PrivateKey);
    const eccPub = pub as EccPublic;
    const size = eccPub.unique.x.length;
    const tpm = createECDH({ 3: 'prime256v1', 4: 'secp384r1', 5: 'secp521r1' }[eccPub.parameters.curveID]!);
    tpm.setPrivateKey(priv.sensitive);
    const ephX = encryptedSecret.subarray(2, 2 + size);
    const ephY = encryptedSecret.subarray(4 + size);
    const Z = tpm.computeSecret(Buffer.concat([Buffer.from([4]), ephX, ephY]));
    expect(KDFe(pub.nameAlg, Z, v.Label, ephX, eccPub.unique.x, 8 * hashAlgorithm(pub.nameAlg).size).toString('hex')).toBe(v.Secret);
  });
});

/** The RSA private key from the public modulus and the TPMT_SENSITIVE prime p (the TPM stores only p). */
function rsaPrivateKey(pub: RsaPublic, prime: Buffer): ReturnType<typeof createPrivateKey> {
  const big = (b: Buffer): bigint => BigInt(`0x${b.toString('hex')}`);
  const toB64 = (n: bigint): string => {
    const h = n.toString(16);
    return Buffer.from(h.length % 2 === 0 ? h : `0${h}`, 'hex').toString('base64url');
  };
  const modInverse = (a: bigint, m: bigint): bigint => {
    let [oldR, r] = [((a % m) + m) % m, m];
    let [oldS, s] = [1n, 0n];
    while (r !== 0n) {
      const q = oldR / r;
      [oldR, r] = [r, oldR - q * r];
      [oldS, s] = [s, oldS - q * s];
    }
    return ((oldS % m) + m) % m;
  };
  const n = big(pub.unique);
  const e = BigInt(pub.parameters.exponent === 0 ? 65537 : pub.parameters.exponent);
  const p = big(prime);
  const q = n / p;
  expect(p * q).toBe(n);
  const d = modInverse(e, (p - 1n) * (q - 1n));
  return createPrivateKey({
    key: { kty: 'RSA', n: toB64(n), e: toB64(e), d: toB64(d), p: toB64(p), q: toB64(q), dp: toB64(d % (p - 1n)), dq: toB64(d % (q - 1n)), qi: toB64(modInverse(q, p)) },
    format: 'jwk',
  });
}
