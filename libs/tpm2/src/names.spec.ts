import { createHash } from 'node:crypto';
import { TPM_ALG_ID, TPM_RH } from './constants';
import { UnsupportedHashError } from './hash-algorithms';
import { handleName, objectName, qualifiedName } from './names';
import { unmarshalTpmtPublic } from './structures/tpmt-public';
import { EK_TEMPLATE_ECC_L2, EK_TEMPLATE_RSA_L1 } from './templates';

// The RSA L-1 EK template (EK Credential Profile 2.0 §B.3.3) as bytes, written out independently of
// the marshaller: the expected Names below are hashes of exactly these bytes.
const EK_POLICY = '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa';
const RSA_EK_L1 = Buffer.from(`0001000b000300b20020${EK_POLICY}000600800043001008000000000001000${'0'.repeat(511)}`, 'hex');

/** Name = nameAlg ‖ H(bytes), computed with createHash as a reference the code under test does not use. */
function referenceName(nameAlg: number, node: string, ...parts: Buffer[]): string {
  const h = createHash(node);
  parts.forEach((p) => h.update(p));
  return Buffer.concat([Buffer.from([nameAlg >> 8, nameAlg & 0xff]), h.digest()]).toString('hex');
}

describe('Names (Part 1 §16) and Qualified Names (§26.5)', () => {
  it('the RSA L-1 EK template: nameAlg ‖ SHA-256 of its marshalled TPMT_PUBLIC', () => {
    const expected = '000b32503929a1287eedaa3e89d932f9b51a6f92abd0fa57721ffa6fc041e04f7498';
    expect(referenceName(TPM_ALG_ID.TPM_ALG_SHA256, 'sha256', RSA_EK_L1)).toBe(expected);
    // A template is marshalled, a parsed area is hashed from its raw bytes: both give the same Name.
    expect(objectName(EK_TEMPLATE_RSA_L1).toString('hex')).toBe(expected);
    expect(objectName(unmarshalTpmtPublic(RSA_EK_L1)).toString('hex')).toBe(expected);
  });

  it('hashes `raw` as given, not a re-encoding of the parsed fields', () => {
    const parsed = unmarshalTpmtPublic(RSA_EK_L1);
    const other = Buffer.from('0102030405', 'hex');
    expect(objectName({ ...parsed, raw: other }).toString('hex')).toBe(referenceName(TPM_ALG_ID.TPM_ALG_SHA256, 'sha256', other));
  });

  it('uses the object\'s own nameAlg for the prefix and the hash (SHA-1, SHA-384, SHA3-256)', () => {
    expect(objectName({ ...EK_TEMPLATE_RSA_L1, nameAlg: TPM_ALG_ID.TPM_ALG_SHA1 }).toString('hex')).toBe('00045392d255c10075b824e54dec40a8a239417fd140');
    const sha384 = objectName({ ...EK_TEMPLATE_RSA_L1, nameAlg: TPM_ALG_ID.TPM_ALG_SHA384 });
    expect(sha384.toString('hex')).toBe('000cc3b52964f41d835b853c1653b7e384fe0e70556a26215290d40443e7630efff1ac94a5352acd387d7d56fa31fd0f56bd');
    const raw = Buffer.from('00230027', 'hex');
    const parsedLike = { ...EK_TEMPLATE_ECC_L2, nameAlg: TPM_ALG_ID.TPM_ALG_SHA3_256, raw };
    expect(objectName(parsedLike).toString('hex')).toBe(referenceName(TPM_ALG_ID.TPM_ALG_SHA3_256, 'sha3-256', raw));
  });

  it('the ECC L-2 EK template', () => {
    expect(objectName(EK_TEMPLATE_ECC_L2).toString('hex')).toBe('000b0f1277a2f3f382e7f75db466fac234182a8d62f97dfbaae7b06fdf52bda51467');
  });

  it('each Name is a buffer of its own: computing the next one does not change it', () => {
    const first = objectName(EK_TEMPLATE_RSA_L1);
    const copy = Buffer.from(first);
    objectName(EK_TEMPLATE_ECC_L2);
    qualifiedName(handleName(TPM_RH.TPM_RH_ENDORSEMENT), first, TPM_ALG_ID.TPM_ALG_SHA256);
    expect(first.equals(copy)).toBe(true);
    expect(first.length).toBe(34);
  });

  it('QN(EK under the endorsement hierarchy) = nameAlg ‖ H(handle ‖ Name)', () => {
    const hierarchy = handleName(TPM_RH.TPM_RH_ENDORSEMENT);
    expect(hierarchy.toString('hex')).toBe('4000000b');
    const name = objectName(EK_TEMPLATE_RSA_L1);
    const qn = qualifiedName(hierarchy, name, TPM_ALG_ID.TPM_ALG_SHA256);
    expect(qn.toString('hex')).toBe('000b640aa7f33b0988c470406b68609ec99dd7323cdc87798bb5d588228a33b06d20');
    expect(qn.toString('hex')).toBe(referenceName(TPM_ALG_ID.TPM_ALG_SHA256, 'sha256', hierarchy, name));
  });

  it('refuses a nameAlg that is no hash this library knows, as before: UnsupportedHashError, or RangeError for a value that is no u16', () => {
    expect(() => objectName({ ...EK_TEMPLATE_RSA_L1, nameAlg: 0x0099 })).toThrow(UnsupportedHashError);
    expect(() => objectName({ ...EK_TEMPLATE_RSA_L1, nameAlg: 0x0099, raw: RSA_EK_L1 })).toThrow('unsupported hash algorithm 0x0099');
    expect(() => objectName({ ...EK_TEMPLATE_RSA_L1, nameAlg: 70000, raw: RSA_EK_L1 })).toThrow(new RangeError('u16: 70000 does not fit in 16 bits'));
    expect(() => qualifiedName(Buffer.alloc(4), Buffer.alloc(34), 0x0099)).toThrow(UnsupportedHashError);
  });
});
