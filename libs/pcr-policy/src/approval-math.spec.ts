import { digest, PolicyDigest, TPM_ALG_ID } from '@rackseal/tpm2';
import { approvalDigest, approvalPolicyRef, approvedPcrPolicy, policySelection, sealedObjectAuthPolicy } from './approval-math';

const SHA256 = TPM_ALG_ID.TPM_ALG_SHA256;

describe('approval math', () => {
  it('policyRef is 32 bytes, fixed by the label, group and epoch', () => {
    const ref = approvalPolicyRef('rack-a', 3);
    expect(ref).toHaveLength(32);
    expect(ref.toString('hex')).toBe(digest(SHA256, Buffer.from('rackseal pcr approval v1\u0000rack-a\u00003')).toString('hex'));
    expect(approvalPolicyRef('rack-a', 4).equals(ref)).toBe(false);
    expect(approvalPolicyRef('rack-b', 3).equals(ref)).toBe(false);
    // The separator keeps ("rack-a1", 2) apart from ("rack-a", 12).
    expect(approvalPolicyRef('rack-a1', 2).equals(approvalPolicyRef('rack-a', 12))).toBe(false);
  });

  it('refuses an epoch that is not a positive integer', () => {
    for (const epoch of [0, -1, 1.5, Number.NaN]) {
      expect(() => approvalPolicyRef('g', epoch)).toThrow(RangeError);
    }
  });

  it('approvedPolicy is the PolicyPCR digest of the set in the policy PCR order', () => {
    const policy = { bank: 'sha256', pcrs: [0, 7] };
    const set = { values: { 0: '11'.repeat(32), 7: '22'.repeat(32) } };
    const expected = new PolicyDigest(SHA256).pcr(policySelection(policy), [Buffer.alloc(32, 0x11), Buffer.alloc(32, 0x22)]).digest;
    expect(approvedPcrPolicy(policy, set).toString('hex')).toBe(expected.toString('hex'));
    expect(policySelection(policy)).toEqual([{ hash: SHA256, pcrs: [0, 7], sizeofSelect: 3 }]);
  });

  it('the sealed policy is PolicyAuthorize and the approval digest hashes approvedPolicy then policyRef', () => {
    const name = Buffer.concat([Buffer.from('000b', 'hex'), Buffer.alloc(32, 5)]);
    const ref = approvalPolicyRef('g', 1);
    expect(sealedObjectAuthPolicy(name, ref).toString('hex')).toBe(new PolicyDigest(SHA256).authorize(name, ref).digest.toString('hex'));
    const approved = Buffer.alloc(32, 9);
    expect(approvalDigest(approved, ref).toString('hex')).toBe(digest(SHA256, approved, ref).toString('hex'));
  });
});
