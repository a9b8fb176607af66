// Single files of libs/tpm2: the agent's boot unlock loads this file alone of libs/pcr-policy
// (docs/decisions.md "Boot unlock loads single files").
import { TPM_ALG_ID } from '@rackseal/tpm2/constants';
import { digest, hashAlgorithmByBank } from '@rackseal/tpm2/hash-algorithms';
import { PolicyDigest } from '@rackseal/tpm2/policy/policy-digest';
import type { TPML_PCR_SELECTION } from '@rackseal/tpm2/structures/tpml-pcr-selection';
import type { PcrPolicy, PcrValueSet } from './pcr-policy';

/**
 * The arithmetic of the updatable PCR-sealed binding (issue 13 item 5; docs/decisions.md "PCR
 * approvals"), shared by the control plane that signs approvals, the wrapping library that seals to
 * them and the agent that proves them. A `pcr-sealed` object's authPolicy is
 *
 *   PolicyAuthorize(Name(signing key), policyRef(group, epoch))
 *
 * and an approval is the signing key's signature over aHash = SHA-256(approvedPolicy ‖ policyRef)
 * (TPM 2.0 Part 3 §23.16: the digest TPM2_VerifySignature checks before PolicyAuthorize accepts the
 * ticket), where approvedPolicy is the PolicyPCR digest of one allowed value set. All policy digests
 * are SHA-256: the sealed object's nameAlg and the signing key's nameAlg.
 */

/** The nameAlg of sealed objects and of the approval signing key, and so of every digest here. */
export const APPROVAL_HASH_ALG = TPM_ALG_ID.TPM_ALG_SHA256;

/** Domain separation for policyRef: no other rackseal signature can be replayed as an approval. */
const POLICY_REF_LABEL = 'rackseal pcr approval v1';

/**
 * policyRef naming a group's approval epoch: SHA-256(label ‖ 0 ‖ group ‖ 0 ‖ epoch as decimal).
 * 32 bytes, within TPM2B_NONCE's limit whatever the group's name. An object sealed under epoch N
 * opens only with approvals signed for epoch N; bumping the epoch withdraws every earlier approval
 * for new envelopes (signatures cannot be un-signed, so envelopes of an older epoch are re-wrapped).
 */
export function approvalPolicyRef(group: string, epoch: number): Buffer {
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    throw new RangeError(`approval epoch must be a positive integer, got ${epoch}`);
  }
  return digest(APPROVAL_HASH_ALG, Buffer.from(POLICY_REF_LABEL), Buffer.of(0), Buffer.from(group, 'utf8'), Buffer.of(0), Buffer.from(String(epoch)));
}

/** The sealed object's authPolicy: PolicyAuthorize(signer's Name, policyRef), SHA-256. */
export function sealedObjectAuthPolicy(signingKeyName: Buffer, policyRef: Buffer): Buffer {
  return new PolicyDigest(APPROVAL_HASH_ALG).authorize(signingKeyName, policyRef).digest;
}

/** The PCR selection of a group's policy, as the agent's PolicyPCR names it. */
export function policySelection(policy: Pick<PcrPolicy, 'bank' | 'pcrs'>): TPML_PCR_SELECTION {
  return [{ hash: hashAlgorithmByBank(policy.bank).alg, pcrs: [...policy.pcrs], sizeofSelect: 3 }];
}

/** approvedPolicy for one allowed set: the PolicyPCR digest (SHA-256 session) of its values. */
export function approvedPcrPolicy(policy: Pick<PcrPolicy, 'bank' | 'pcrs'>, set: Pick<PcrValueSet, 'values'>): Buffer {
  const values = policy.pcrs.map((pcr) => {
    const hex = set.values[pcr];
    if (hex === undefined) {
      throw new RangeError(`the allowed set has no value for PCR ${pcr}`);
    }
    return Buffer.from(hex, 'hex');
  });
  return new PolicyDigest(APPROVAL_HASH_ALG).pcr(policySelection(policy), values).digest;
}

/** aHash, what the signing key signs: SHA-256(approvedPolicy ‖ policyRef) (Part 3 §23.16, §20.1). */
export function approvalDigest(approvedPolicy: Buffer, policyRef: Buffer): Buffer {
  return digest(APPROVAL_HASH_ALG, approvedPolicy, policyRef);
}
