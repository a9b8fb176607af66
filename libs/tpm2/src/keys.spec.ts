import { createPublicKey, ECDH, generateKeyPairSync } from 'node:crypto';
import { ekPubHash } from './keys';

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
