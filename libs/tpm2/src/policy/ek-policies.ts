import { marshal } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPM_RH } from '../constants';
import { digest, hashAlgorithm } from '../hash-algorithms';
import { handleName } from '../names';
import { policyAuthorizeNV, policyOr, policySecret, policyZero } from './policy-commands';

/**
 * The EK authorization policies of the TCG EK Credential Profile 2.0 (§B.6 and the high-range
 * templates of §B.4), computed rather than copied, so each published digest is reproduced:
 *   PolicyA = PolicySecret(TPM_RH_ENDORSEMENT)                 (low-range EKs: 8371…69aa in SHA-256)
 *   PolicyC = PolicyAuthorizeNV(the hash's EK policy NV index) (lets the endorsement owner add policies)
 *   PolicyB = PolicyOR(PolicyA, PolicyC)                       (high-range EKs, e.g. swtpm's P-384 EK)
 */

/** The NV index PolicyC refers to, per policy hash (EK profile §B.6). */
export const EK_POLICY_NV_INDEX: Readonly<Record<number, number>> = {
  [TPM_ALG_ID.TPM_ALG_SHA256]: 0x01c07f01,
  [TPM_ALG_ID.TPM_ALG_SHA384]: 0x01c07f02,
  [TPM_ALG_ID.TPM_ALG_SHA512]: 0x01c07f03,
};

/**
 * TPMA_NV of those indices (Part 2 §13.4): POLICYWRITE 0x8 | WRITEALL 0x1000 | PPREAD 0x10000 |
 * OWNERREAD 0x20000 | AUTHREAD 0x40000 | POLICYREAD 0x80000 | NO_DA 0x2000000 | WRITTEN 0x20000000.
 */
export const EK_POLICY_NV_ATTRIBUTES = 0x220f1008;

/** PolicyA: PolicySecret with the endorsement hierarchy, whose Name is its handle; empty policyRef. */
export function ekPolicyA(hashAlg: number): Buffer {
  return policySecret(hashAlg, policyZero(hashAlg), handleName(TPM_RH.TPM_RH_ENDORSEMENT));
}

/**
 * The Name of the EK policy NV index (Part 1 §16: nameAlg ‖ H(TPMS_NV_PUBLIC)). Its TPMS_NV_PUBLIC
 * (Part 2 §13.5) has authPolicy = PolicyA and dataSize = a TPMT_HA of the hash (2 + digest size).
 */
export function ekPolicyNvIndexName(hashAlg: number): Buffer {
  const nvIndex = EK_POLICY_NV_INDEX[hashAlg];
  if (nvIndex === undefined) {
    throw new RangeError(`the EK profile defines no policy NV index for hash 0x${hashAlg.toString(16)}`);
  }
  const nvPublic = marshal((w) =>
    w
      .u32(nvIndex)
      .u16(hashAlg)
      .u32(EK_POLICY_NV_ATTRIBUTES)
      .tpm2b(ekPolicyA(hashAlg))
      .u16(2 + hashAlgorithm(hashAlg).size),
  );
  return Buffer.concat([marshal((w) => w.u16(hashAlg)), digest(hashAlg, nvPublic)]);
}

/** PolicyC: PolicyAuthorizeNV with the EK policy NV index. */
export function ekPolicyC(hashAlg: number): Buffer {
  return policyAuthorizeNV(hashAlg, policyZero(hashAlg), ekPolicyNvIndexName(hashAlg));
}

/** PolicyB: PolicyOR(PolicyA, PolicyC), the authPolicy of the high-range (H-*) EK templates. */
export function ekPolicyB(hashAlg: number): Buffer {
  return policyOr(hashAlg, [ekPolicyA(hashAlg), ekPolicyC(hashAlg)]);
}
