import { marshal } from '../codec/tpm-writer';
import { algName, TPM_CC } from '../constants';
import { digest, hashAlgorithm } from '../hash-algorithms';
import { marshalPcrSelection, type TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { PolicyInputError } from './policy-error';

/**
 * How each policy command changes a policy session's digest (TPM 2.0 Part 3 §23), as pure
 * functions of (hashAlg, policyDigest_old, command arguments). A trial session computes the same.
 */


const u32 = (value: number): Buffer => marshal((w) => w.u32(value));

function checkDigest(hashAlg: number, value: Buffer, what: string): void {
  const size = hashAlgorithm(hashAlg).size;
  if (value.length !== size) {
    throw new PolicyInputError(`${what} is ${value.length} bytes, a ${algName(hashAlg)} policy digest has ${size}`);
  }
}

/** The initial digest of every policy session: digest-size zeros (Part 3 §11.1 TPM2_StartAuthSession). */
export function policyZero(hashAlg: number): Buffer {
  return Buffer.alloc(hashAlgorithm(hashAlg).size);
}

/**
 * Part 3 §23.2.3 PolicyUpdate(), shared by PolicySigned, PolicySecret and PolicyAuthorize:
 *   policyDigest' = H(policyDigest ‖ commandCode ‖ arg2)   (arg2: a Name)
 *   policyDigest'' = H(policyDigest' ‖ arg3)              (arg3: policyRef, possibly empty)
 */
export function policyUpdate(hashAlg: number, old: Buffer, commandCode: number, arg2: Buffer, arg3: Buffer): Buffer {
  checkDigest(hashAlg, old, 'policyDigest');
  const first = digest(hashAlg, old, u32(commandCode), arg2);
  return digest(hashAlg, first, arg3);
}

/**
 * Part 3 §23.7 TPM2_PolicyPCR: H(old ‖ TPM_CC_PolicyPCR ‖ TPML_PCR_SELECTION ‖ pcrDigest). The
 * selection is marshalled exactly as the session will send it (bank order, sizeofSelect included).
 */
export function policyPcr(hashAlg: number, old: Buffer, pcrs: TPML_PCR_SELECTION, pcrDigest: Buffer): Buffer {
  checkDigest(hashAlg, old, 'policyDigest');
  checkDigest(hashAlg, pcrDigest, 'pcrDigest');
  return digest(hashAlg, old, u32(TPM_CC.TPM_CC_PolicyPCR), marshalPcrSelection(pcrs), pcrDigest);
}

/** Part 3 §23.4 TPM2_PolicySecret: PolicyUpdate(TPM_CC_PolicySecret, authObject Name, policyRef). */
export function policySecret(hashAlg: number, old: Buffer, authObjectName: Buffer, policyRef: Buffer = Buffer.alloc(0)): Buffer {
  return policyUpdate(hashAlg, old, TPM_CC.TPM_CC_PolicySecret, authObjectName, policyRef);
}

/**
 * Part 3 §23.16 TPM2_PolicyAuthorize: once approvedPolicy is accepted the digest is RESET to zeros,
 * then PolicyUpdate(TPM_CC_PolicyAuthorize, keySign Name, policyRef). So the result depends only on
 * the signing key and policyRef, never on the policy authorized: that is the point of the command.
 */
export function policyAuthorize(hashAlg: number, keySignName: Buffer, policyRef: Buffer = Buffer.alloc(0)): Buffer {
  return policyUpdate(hashAlg, policyZero(hashAlg), TPM_CC.TPM_CC_PolicyAuthorize, keySignName, policyRef);
}

/**
 * Part 3 §23.6 TPM2_PolicyOR: H(0…0 ‖ TPM_CC_PolicyOR ‖ digests), replacing the session digest
 * (which must equal one branch). TPML_DIGEST holds 2 to 8 branches (else TPM_RC_SIZE), each a digest
 * of the session's hash.
 */
export function policyOr(hashAlg: number, branches: readonly Buffer[]): Buffer {
  if (branches.length < 2 || branches.length > 8) {
    throw new PolicyInputError(`PolicyOR takes 2 to 8 branches, got ${branches.length}`);
  }
  branches.forEach((branch, i) => checkDigest(hashAlg, branch, `PolicyOR branch #${i}`));
  return digest(hashAlg, policyZero(hashAlg), u32(TPM_CC.TPM_CC_PolicyOR), ...branches);
}

/** Part 3 §23.11 TPM2_PolicyCommandCode: H(old ‖ TPM_CC_PolicyCommandCode ‖ code). */
export function policyCommandCode(hashAlg: number, old: Buffer, code: number): Buffer {
  checkDigest(hashAlg, old, 'policyDigest');
  return digest(hashAlg, old, u32(TPM_CC.TPM_CC_PolicyCommandCode), u32(code));
}

/**
 * Part 3 §23.22 TPM2_PolicyAuthorizeNV: H(old ‖ TPM_CC_PolicyAuthorizeNV ‖ nvIndex Name). A single
 * hash, not PolicyUpdate. (The TPM first checks the session digest against the policy in the index.)
 */
export function policyAuthorizeNV(hashAlg: number, old: Buffer, nvIndexName: Buffer): Buffer {
  checkDigest(hashAlg, old, 'policyDigest');
  return digest(hashAlg, old, u32(TPM_CC.TPM_CC_PolicyAuthorizeNV), nvIndexName);
}
