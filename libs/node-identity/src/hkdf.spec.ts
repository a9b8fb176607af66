import { createHmac } from 'node:crypto';
import { hkdfSha256 } from './hkdf';

/** The bytes from..to inclusive, as RFC 5869 Test Case 2 writes its inputs. */
function range(from: number, to: number): Buffer {
  return Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

// RFC 5869 Appendix A.1-A.3: the SHA-256 test cases (PRK and OKM as published).
const VECTORS = [
  {
    name: 'A.1, basic',
    ikm: hex('0b'.repeat(22)),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    length: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.2, longer inputs and outputs',
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm:
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09' +
      'da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    name: 'A.3, zero-length salt and info',
    ikm: hex('0b'.repeat(22)),
    salt: Buffer.alloc(0),
    info: Buffer.alloc(0),
    length: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
] as const;

describe('hkdfSha256 (RFC 5869)', () => {
  it.each(VECTORS)('gives the OKM of RFC 5869 $name', ({ ikm, salt, info, length, okm }) => {
    const out = hkdfSha256(ikm, salt, info, length);
    expect(out).toBeInstanceOf(Buffer);
    expect(out.toString('hex')).toBe(okm);
  });

  it.each(VECTORS)('the vector of $name is copied right: its PRK is HMAC-SHA256(salt, IKM) (§2.2)', ({ ikm, salt, prk }) => {
    // An empty salt is HashLen zero bytes; HMAC pads a short key with zeros, so the two agree.
    expect(createHmac('sha256', salt.length === 0 ? Buffer.alloc(32) : salt).update(ikm).digest('hex')).toBe(prk);
  });

  it('differs for another info, and a shorter output is a prefix of a longer one (§2.3)', () => {
    const { ikm, salt, info } = VECTORS[0];
    expect(hkdfSha256(ikm, salt, Buffer.from('other'), 42).toString('hex')).not.toBe(VECTORS[0].okm);
    expect(hkdfSha256(ikm, salt, info, 16).toString('hex')).toBe(VECTORS[0].okm.slice(0, 32));
  });
});
