import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_ALG_ID } from '../constants';
import vectors from '../verify/swtpm-vectors.json';
import { marshalTpmtSignature, signatureHash, type TPMT_SIGNATURE, unmarshalTpmtSignature } from './tpmt-signature';

// Captured from tpm2_quote on swtpm; ../verify/swtpm-vectors.json says with which commands.
const RSASSA = Buffer.from(vectors.rsassaQuote.sig, 'hex');
const RSAPSS = Buffer.from(vectors.rsapssQuote.sig, 'hex');
const ECDSA = Buffer.from(vectors.ecdsaQuote.sig, 'hex');

function parseError(bytes: Uint8Array): TpmParseError {
  try {
    unmarshalTpmtSignature(bytes);
  } catch (error) {
    if (error instanceof TpmParseError) {
      return error;
    }
    throw error;
  }
  throw new Error('parsed without error');
}

const SYNTHETIC: readonly TPMT_SIGNATURE[] = [
  { sigAlg: TPM_ALG_ID.TPM_ALG_RSASSA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA1, sig: Buffer.alloc(128, 7) } },
  { sigAlg: TPM_ALG_ID.TPM_ALG_ECDSA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA384, signatureR: Buffer.alloc(47, 1), signatureS: Buffer.alloc(48, 2) } },
  { sigAlg: TPM_ALG_ID.TPM_ALG_ECDAA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, signatureR: Buffer.alloc(32, 3), signatureS: Buffer.alloc(32, 4) } },
  { sigAlg: TPM_ALG_ID.TPM_ALG_SM2, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, signatureR: Buffer.alloc(0), signatureS: Buffer.alloc(1) } },
  { sigAlg: TPM_ALG_ID.TPM_ALG_ECSCHNORR, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA512, signatureR: Buffer.alloc(66, 5), signatureS: Buffer.alloc(66, 6) } },
  { sigAlg: TPM_ALG_ID.TPM_ALG_HMAC, signature: { hashAlg: TPM_ALG_ID.TPM_ALG_SHA256, digest: Buffer.alloc(32, 9) } },
  { sigAlg: TPM_ALG_ID.TPM_ALG_NULL },
];

describe('TPMT_SIGNATURE (Part 2 §11.3.4)', () => {
  it('parses tpm2_quote signatures (RSASSA, RSAPSS, ECDSA) and marshals them back byte for byte', () => {
    const rsassa = unmarshalTpmtSignature(RSASSA);
    expect(rsassa.sigAlg).toBe(TPM_ALG_ID.TPM_ALG_RSASSA);
    expect(rsassa.sigAlg === TPM_ALG_ID.TPM_ALG_RSASSA && rsassa.signature.sig.length).toBe(256);
    expect(signatureHash(rsassa)).toBe(TPM_ALG_ID.TPM_ALG_SHA256);

    const rsapss = unmarshalTpmtSignature(RSAPSS);
    expect(rsapss.sigAlg).toBe(TPM_ALG_ID.TPM_ALG_RSAPSS);

    const ecdsa = unmarshalTpmtSignature(ECDSA);
    expect(ecdsa).toEqual({
      sigAlg: TPM_ALG_ID.TPM_ALG_ECDSA,
      signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, signatureR: ECDSA.subarray(6, 38), signatureS: ECDSA.subarray(40, 72) },
    });
    for (const bytes of [RSASSA, RSAPSS, ECDSA]) {
      expect(marshalTpmtSignature(unmarshalTpmtSignature(bytes)).equals(bytes)).toBe(true);
    }
  });

  it.each(SYNTHETIC.map((s) => [s.sigAlg.toString(16), s] as const))('round-trips sigAlg 0x%s exactly', (_alg, signature) => {
    const bytes = marshalTpmtSignature(signature);
    expect(unmarshalTpmtSignature(bytes)).toEqual(signature);
    expect(marshalTpmtSignature(unmarshalTpmtSignature(bytes)).equals(bytes)).toBe(true);
  });

  it('the NULL signature is just its sigAlg; HMAC carries exactly one digest of its hash', () => {
    expect(marshalTpmtSignature({ sigAlg: TPM_ALG_ID.TPM_ALG_NULL }).toString('hex')).toBe('0010');
    expect(parseError(Buffer.from(`0005000b${'00'.repeat(31)}`, 'hex'))).toMatchObject({ structure: 'TPMT_HA', field: 'digest', offset: 4 });
  });

  it('names structure, field and offset for unknown schemes, unknown hashes, truncation and trailing bytes', () => {
    expect(() => unmarshalTpmtSignature(Buffer.from('0001000b', 'hex'))).toThrow(
      'TPMT_SIGNATURE.sigAlg at offset 0: TPM_ALG_RSA is not a signature scheme',
    );
    expect(parseError(Buffer.from('001400100000', 'hex'))).toMatchObject({
      structure: 'TPMS_SIGNATURE_RSA',
      field: 'hash',
      offset: 2,
      reason: 'TPM_ALG_NULL is not a supported hash algorithm',
    });
    expect(parseError(ECDSA.subarray(0, 60))).toMatchObject({ structure: 'TPMS_SIGNATURE_ECC', field: 'signatureS', offset: 40 });
    expect(parseError(RSASSA.subarray(0, 5))).toMatchObject({ structure: 'TPMS_SIGNATURE_RSA', field: 'sig.size', offset: 4 });
    expect(parseError(Buffer.concat([RSASSA, Buffer.from([0])]))).toMatchObject({ structure: 'TPMT_SIGNATURE', field: '(end)', offset: 262 });
    expect(parseError(Buffer.from('0014000b0201', 'hex'))).toMatchObject({ field: 'sig.size', reason: '513 exceeds the maximum of 512' });
  });

  it('every prefix and every single-byte change either parses or throws TpmParseError', () => {
    for (const sample of [RSASSA, ECDSA, ...SYNTHETIC.map(marshalTpmtSignature)]) {
      for (let length = 0; length < sample.length; length += 1) {
        expect(parseError(sample.subarray(0, length))).toBeInstanceOf(TpmParseError);
      }
      for (let i = 0; i < Math.min(sample.length, 80); i += 1) {
        for (const value of [0x00, 0x01, 0x80, 0xff]) {
          const mutated = Buffer.from(sample);
          mutated[i] = value;
          try {
            unmarshalTpmtSignature(mutated);
          } catch (error) {
            expect(error).toBeInstanceOf(TpmParseError);
          }
        }
      }
    }
  });
});
