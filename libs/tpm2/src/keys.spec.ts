import { createPublicKey, ECDH, generateKeyPairSync } from 'node:crypto';
import { ekPubHash, KeyConversionError, publicKeyFromTpmt, tpmtPublicFromKey } from './keys';
import { marshalTpm2bPublic, type TPMT_PUBLIC, unmarshalTpm2bPublic } from './structures/tpmt-public';
import { CERTIFIED_DECRYPT_KEY_TEMPLATE, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_RSA_L1 } from './templates';

// DER prefix of a P-256 SubjectPublicKeyInfo holding a 33-byte compressed point (RFC 5480 §2).
const P256_COMPRESSED_SPKI_PREFIX = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');

describe('ekPubHash', () => {
  it('is the same for the compressed and the uncompressed encoding of one EC key', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const uncompressed = publicKey.export({ type: 'spki', format: 'der' });
    const point = uncompressed.subarray(uncompressed.length - 65);
    const compressed = ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    const compressedKey = createPublicKey({ key: Buffer.concat([P256_COMPRESSED_SPKI_PREFIX, compressed]), format: 'der', type: 'spki' });
    // OpenSSL keeps the compressed form on export, so hashing the export naively would differ.
    expect(compressedKey.export({ type: 'spki', format: 'der' }).length).toBe(uncompressed.length - 32);
    expect(ekPubHash(compressedKey)).toBe(ekPubHash(publicKey));
  });
});

describe('publicKeyFromTpmt', () => {
  const parsed = <T extends TPMT_PUBLIC>(pub: T) => unmarshalTpm2bPublic(marshalTpm2bPublic(pub));

  it('gives the same KeyObject for the same key parsed twice, and the right key', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const first = publicKeyFromTpmt(parsed(tpmtPublicFromKey(publicKey, EK_TEMPLATE_RSA_L1)));
    // Another object, other attributes: only the modulus and exponent decide the key.
    const second = publicKeyFromTpmt(parsed(tpmtPublicFromKey(publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE)));
    expect(second).toBe(first);
    expect(first.equals(publicKey)).toBe(true);
    // An ekPubHash of it equals the one of the original key (computed once, then remembered).
    expect(ekPubHash(first)).toBe(ekPubHash(publicKey));
    expect(ekPubHash(parsed(tpmtPublicFromKey(publicKey, EK_TEMPLATE_RSA_L1)))).toBe(ekPubHash(publicKey));
  });

  it('tells keys apart: another modulus, another exponent, another ECC point', () => {
    const a = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const b = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey;
    const pubA = tpmtPublicFromKey(a, EK_TEMPLATE_RSA_L1);
    const keyA = publicKeyFromTpmt(pubA);
    const keyB = publicKeyFromTpmt(tpmtPublicFromKey(b, EK_TEMPLATE_RSA_L1));
    expect(keyB.equals(b)).toBe(true);
    expect(keyA.equals(keyB)).toBe(false);
    // a's modulus with exponent 3 is a key of its own, not a's cached KeyObject.
    const aWithThree = publicKeyFromTpmt({ ...pubA, parameters: { ...pubA.parameters, exponent: 3 } });
    expect(aWithThree.asymmetricKeyDetails?.publicExponent).toBe(3n);
    expect(publicKeyFromTpmt(pubA).asymmetricKeyDetails?.publicExponent).toBe(65537n);

    const p = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const q = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const keyP = publicKeyFromTpmt(tpmtPublicFromKey(p, EK_TEMPLATE_ECC_L2));
    const keyQ = publicKeyFromTpmt(tpmtPublicFromKey(q, EK_TEMPLATE_ECC_L2));
    expect(keyP.equals(p)).toBe(true);
    expect(keyQ.equals(q)).toBe(true);
  });

  it('refuses a point off the curve every time (a refusal is not cached as a key)', () => {
    const p = tpmtPublicFromKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, EK_TEMPLATE_ECC_L2);
    const offCurve = { ...p, unique: { x: p.unique.x, y: Buffer.alloc(32, 7) } };
    expect(() => publicKeyFromTpmt(offCurve)).toThrow(KeyConversionError);
    expect(() => publicKeyFromTpmt(offCurve)).toThrow(KeyConversionError);
  });
});
