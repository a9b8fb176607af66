import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_ALG_ID } from '../constants';
import { marshalTpm2bPublic, marshalTpmtPublic, unmarshalTpm2bPublic, unmarshalTpmtPublic } from './tpmt-public';

// Templates from TCG EK Credential Profile 2.0 §B.3.3 (RSA L-1) and §B.3.4 (ECC L-2), written out byte by
// byte (the RSA one is what swtpm's ReadPublic returns for its EK at 0x81010001).
const EK_POLICY = '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa';
const RSA_EK_L1 = Buffer.from(`0001000b000300b20020${EK_POLICY}000600800043001008000000000001000${'0'.repeat(511)}`, 'hex');
const ECC_EK_L2 = Buffer.from(`0023000b000300b20020${EK_POLICY}0006008000430010000300100020${'00'.repeat(32)}0020${'00'.repeat(32)}`, 'hex');

describe('TPMT_PUBLIC (Part 2 §12.2.4)', () => {
  it('parses the RSA L-1 EK template and marshals it back byte for byte', () => {
    expect(RSA_EK_L1.length).toBe(314);
    const pub = unmarshalTpmtPublic(RSA_EK_L1);
    expect(pub.type).toBe(TPM_ALG_ID.TPM_ALG_RSA);
    expect(pub.objectAttributes).toBe(0x000300b2);
    expect(pub.authPolicy.toString('hex')).toBe(EK_POLICY);
    expect(pub.type === TPM_ALG_ID.TPM_ALG_RSA && pub.parameters).toEqual({
      symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_AES, keyBits: 128, mode: TPM_ALG_ID.TPM_ALG_CFB },
      scheme: { scheme: TPM_ALG_ID.TPM_ALG_NULL },
      keyBits: 2048,
      exponent: 0,
    });
    expect(pub.raw.equals(RSA_EK_L1)).toBe(true);
    expect(marshalTpmtPublic(pub).equals(RSA_EK_L1)).toBe(true);
  });

  it('parses the ECC L-2 EK template and marshals it back byte for byte', () => {
    expect(ECC_EK_L2.length).toBe(122);
    const pub = unmarshalTpmtPublic(ECC_EK_L2);
    expect(pub.type === TPM_ALG_ID.TPM_ALG_ECC && pub.parameters.curveID).toBe(0x0003);
    expect(marshalTpmtPublic(pub).equals(ECC_EK_L2)).toBe(true);
  });

  it('round-trips through TPM2B_PUBLIC and checks the size covers the content exactly', () => {
    const sized = marshalTpm2bPublic(unmarshalTpmtPublic(ECC_EK_L2));
    expect(sized.readUInt16BE(0)).toBe(122);
    expect(unmarshalTpm2bPublic(sized).raw.equals(ECC_EK_L2)).toBe(true);
    const tooLong = Buffer.concat([Buffer.from([0, 123]), ECC_EK_L2, Buffer.from([0])]);
    expect(() => unmarshalTpm2bPublic(tooLong)).toThrow(/1 trailing byte/);
  });

  it('refuses trailing bytes, truncation and unknown types with a typed error naming the field', () => {
    expect(() => unmarshalTpmtPublic(Buffer.concat([RSA_EK_L1, Buffer.from([0])]))).toThrow(TpmParseError);
    const truncated = (() => {
      try {
        unmarshalTpmtPublic(RSA_EK_L1.subarray(0, 300));
        return undefined;
      } catch (error) {
        return error as TpmParseError;
      }
    })();
    expect(truncated).toMatchObject({ structure: 'TPMT_PUBLIC', field: 'unique.rsa', offset: 58 });
    const badType = Buffer.from(RSA_EK_L1);
    badType.writeUInt16BE(0x0099, 0);
    expect(() => unmarshalTpmtPublic(badType)).toThrow('TPMT_PUBLIC.type at offset 0: 0x0099 is not a public object type');
  });

  it('parses the RSA modulus, policy and raw bytes exactly, as buffers of their own that outlive the input', () => {
    const modulus = Buffer.alloc(256);
    modulus.forEach((_, i) => (modulus[i] = (i * 7 + 3) & 0xff));
    const input = Buffer.from(RSA_EK_L1);
    modulus.copy(input, 58);
    const pub = unmarshalTpmtPublic(input);
    expect(pub.type === TPM_ALG_ID.TPM_ALG_RSA && pub.unique.toString('hex')).toBe(modulus.toString('hex'));
    // unique is the modulus within raw (offset 58 = past its u16 size at 56).
    expect(pub.raw.subarray(58).equals(pub.unique as Buffer)).toBe(true);
    input.fill(0xee);
    expect(pub.raw.equals(Buffer.concat([RSA_EK_L1.subarray(0, 58), modulus]))).toBe(true);
    expect(pub.authPolicy.toString('hex')).toBe(EK_POLICY);
    expect((pub.unique as Buffer).equals(modulus)).toBe(true);
  });

  it('keeps the field order of a parsed public area (type, nameAlg, objectAttributes, authPolicy, parameters, unique, raw)', () => {
    expect(Object.keys(unmarshalTpmtPublic(RSA_EK_L1))).toEqual(['type', 'nameAlg', 'objectAttributes', 'authPolicy', 'parameters', 'unique', 'raw']);
    expect(Object.keys(unmarshalTpmtPublic(ECC_EK_L2))).toEqual(['type', 'nameAlg', 'objectAttributes', 'authPolicy', 'parameters', 'unique', 'raw']);
  });

  it('parses keyedHash and symcipher areas and marshals them back byte for byte', () => {
    // keyedHash: HMAC-SHA256 scheme, 32-byte unique; symcipher: AES-128-CFB, empty unique.
    const keyedHash = Buffer.from(`0008000b000000400000` + `0005000b` + `0020${'11'.repeat(32)}`, 'hex');
    const symcipher = Buffer.from(`0025000b000000400000` + `000600800043` + `0000`, 'hex');
    const k = unmarshalTpmtPublic(keyedHash);
    expect(k.type === TPM_ALG_ID.TPM_ALG_KEYEDHASH && k.parameters).toEqual({ scheme: { scheme: TPM_ALG_ID.TPM_ALG_HMAC, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 } });
    expect(k.type === TPM_ALG_ID.TPM_ALG_KEYEDHASH && k.unique.toString('hex')).toBe('11'.repeat(32));
    expect(marshalTpmtPublic(k).equals(keyedHash)).toBe(true);
    const s = unmarshalTpmtPublic(symcipher);
    expect(s.type === TPM_ALG_ID.TPM_ALG_SYMCIPHER && s.parameters).toEqual({ sym: { algorithm: TPM_ALG_ID.TPM_ALG_AES, keyBits: 128, mode: TPM_ALG_ID.TPM_ALG_CFB } });
    expect(s.raw.equals(symcipher)).toBe(true);
  });

  it('names the modulus\'s size field when it is above 512 bytes or cut short, and the ECC point\'s structure for x', () => {
    const parse = (bytes: Buffer) => {
      try {
        unmarshalTpmtPublic(bytes);
        return undefined;
      } catch (error) {
        return error as TpmParseError;
      }
    };
    const huge = Buffer.from(RSA_EK_L1);
    huge.writeUInt16BE(513, 56);
    expect(parse(huge)).toMatchObject({ structure: 'TPMT_PUBLIC', field: 'unique.rsa.size', offset: 56, reason: '513 exceeds the maximum of 512' });
    expect(parse(RSA_EK_L1.subarray(0, 57))).toMatchObject({ structure: 'TPMT_PUBLIC', field: 'unique.rsa.size', offset: 56, reason: 'needs 2 byte(s), 1 left' });
    expect(parse(RSA_EK_L1.subarray(0, 300))).toMatchObject({ structure: 'TPMT_PUBLIC', field: 'unique.rsa', offset: 58, reason: 'needs 256 byte(s), 242 left' });
    expect(parse(ECC_EK_L2.subarray(0, 70))).toMatchObject({ structure: 'TPMS_ECC_POINT', field: 'x', offset: 56, reason: 'needs 32 byte(s), 14 left' });
    expect(parse(RSA_EK_L1.subarray(0, 50))).toMatchObject({ structure: 'TPMS_RSA_PARMS', field: 'keyBits' });
  });
});
