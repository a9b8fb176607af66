import { TPM_ALG_ID, TPM_CC } from '../constants';
import { parsePcrSelection } from '../structures/tpml-pcr-selection';
import { EK_POLICY_A_SHA256, EK_POLICY_B_SHA384 } from '../templates';
import { ekPolicyA, ekPolicyB, ekPolicyC, ekPolicyNvIndexName } from './ek-policies';
import { parsePcrValues } from './pcr-values';
import { policyAuthorize, policyOr, policyZero } from './policy-commands';
import { PolicyDigest } from './policy-digest';
import { PcrValuesLengthError, PolicyInputError } from './policy-error';

const { TPM_ALG_SHA256: SHA256, TPM_ALG_SHA384: SHA384, TPM_ALG_SHA512: SHA512 } = TPM_ALG_ID;
const hex = (b: Buffer): string => b.toString('hex');

// Published values: TCG EK Credential Profile PolicyA/B/C and the NV index Names, as go-tpm's
// ek_test.go (TestCalculatePolicyA/IndexName/C/B) and tpm2-tss' EK template tests state them.
const EK_POLICIES = [
  {
    hash: SHA256,
    a: '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa',
    nvName: '000b0c9d717e9c3fe69fda41769450bb145957f8b3610e084dbf65591a5d11ecd83f',
    c: '3767e2edd43ff45a3a7e1eaefcef78643dca964632e7aad82c673a30d8633fde',
    b: 'ca3d0a99a2b93906f7a3342414efcfb3a385d44cd1fd459089d19b5071c0b7a0',
  },
  {
    hash: SHA384,
    a: '8bbf2266537c171cb56e403c4dc1d4b64f432611dc386e6f532050c3278c930e143e8bb1133824ccb431053871c6db53',
    nvName: '000cdb62fca346612c976732ff4e8621fb4e858be82586486504f7d02e621f8d7d61ae32cfc60c4d120609ed6768afcf090c',
    c: 'd6032ce61f2fb3c240eb3cf6a33237ef2b6a16f4293c22b455e261cffd217ad5b4947c2d73e63005eed2dc2b3593d165',
    b: 'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
  },
  {
    hash: SHA512,
    a: '1e3b76502c8a1425aa0b7b3fc646a1b0fae063b03b5368f9c4cddecaff0891dd682bac1a85d4d832b781ea451915de5fc5bf0dc4a1917cd42fa041e3f998e0ee',
    nvName:
      '000d1c47c0bbcbd3cf7d7cae6987d31937c171015dde3b7f0d3c869bca1f7e8a223b9acfadb49b7c9cf14d450f41e9327de34d9291eece2c58ab1dc10e9059cce560',
    c: '589ee1e146544716e8deafe6db247b01b81e9f9c7dd16b814aa159138749105fba5388dd1dea702f35240c184933121e2c61b8f50d3ef91393a49a38c3f73fc8',
    b: 'b8221ca69e8550a4914de3faa6a18c072cc01208073a928d5d66d59ef79e49a429c41a6b269571d57edb25fbdb1838425608b413cd616a5f6db5b6071af99bea',
  },
];

describe('EK policies (TCG EK Credential Profile §B.6)', () => {
  it.each(EK_POLICIES)('hash 0x$hash: PolicyA, the policy NV index Name, PolicyC and PolicyB', ({ hash, a, nvName, c, b }) => {
    expect(hex(ekPolicyA(hash))).toBe(a);
    expect(hex(ekPolicyNvIndexName(hash))).toBe(nvName);
    expect(hex(ekPolicyC(hash))).toBe(c);
    expect(hex(ekPolicyB(hash))).toBe(b);
  });

  it('reproduces the authPolicy constants of the EK templates', () => {
    expect(ekPolicyA(SHA256).equals(EK_POLICY_A_SHA256)).toBe(true);
    expect(ekPolicyB(SHA384).equals(EK_POLICY_B_SHA384)).toBe(true);
  });
});

describe('PolicyDigest', () => {
  // Worked by hand from Part 3 §23.7: H(0^32 ‖ 0000017F ‖ 00000001 000B 03 800000 ‖ H(0^32));
  // test/tpm2-policy.test.ts checks this selection against tpm2_createpolicy on swtpm.
  it('PolicyPCR over sha256 PCR 7 = zeros is 8b5682…0a8b', () => {
    const digest = new PolicyDigest(SHA256).pcr(parsePcrSelection('sha256:7'), [Buffer.alloc(32)]).digest;
    expect(hex(digest)).toBe('8b5682d81b29435d08d79278150611dc7e5923b2fefcce684a09577b40130a8b');
  });

  it('PolicyAuthorize ignores what came before; PolicyOR too', () => {
    const name = Buffer.from(`000b${'ab'.repeat(32)}`, 'hex');
    const after = new PolicyDigest(SHA256).commandCode(TPM_CC.TPM_CC_Unseal).authorize(name, Buffer.from('ref')).digest;
    expect(after.equals(policyAuthorize(SHA256, name, Buffer.from('ref')))).toBe(true);
    const branches = [ekPolicyA(SHA256), policyZero(SHA256)];
    expect(new PolicyDigest(SHA256).secret(Buffer.from('4000000b', 'hex')).or(branches).digest.equals(policyOr(SHA256, branches))).toBe(true);
  });

  it('refuses PolicyOR with fewer than 2 or more than 8 branches, or a branch of another hash', () => {
    expect(() => policyOr(SHA256, [ekPolicyA(SHA256)])).toThrow(new PolicyInputError('PolicyOR takes 2 to 8 branches, got 1'));
    expect(() => policyOr(SHA256, Array.from({ length: 9 }, () => policyZero(SHA256)))).toThrow(PolicyInputError);
    expect(() => policyOr(SHA256, [ekPolicyA(SHA256), ekPolicyA(SHA384)])).toThrow(
      'PolicyOR branch #1 is 48 bytes, a TPM_ALG_SHA256 policy digest has 32',
    );
  });

  it('refuses PCR values that do not fit the selection', () => {
    const selection = parsePcrSelection('sha1:0+sha256:0,7');
    expect(() => new PolicyDigest(SHA256).pcr(selection, [Buffer.alloc(32), Buffer.alloc(32), Buffer.alloc(32)])).toThrow(
      'PCR value #0 for sha1:0+sha256:0,7 must be 20 bytes, got 32',
    );
    expect(() => new PolicyDigest(SHA256).pcr(selection, [Buffer.alloc(20)])).toThrow('sha1:0+sha256:0,7 selects 3 PCR(s), 1 value(s) given');
  });
});

describe('parsePcrValues', () => {
  it('splits concatenated values per PCR in selection order', () => {
    const values = parsePcrValues(parsePcrSelection('sha1:3+sha256:0,7'), Buffer.concat([Buffer.alloc(20, 1), Buffer.alloc(32, 2), Buffer.alloc(32, 3)]));
    expect(values.map((v) => [v.length, v[0]])).toEqual([
      [20, 1],
      [32, 2],
      [32, 3],
    ]);
  });

  it('names expected and actual length', () => {
    const attempt = (): unknown => parsePcrValues(parsePcrSelection('sha256:0,7'), Buffer.alloc(63));
    expect(attempt).toThrow(PcrValuesLengthError);
    expect(attempt).toThrow('PCR values for sha256:0,7 must be 64 bytes, got 63');
  });
});
