// Single files, not the libraries' indexes: boot unlock runs through here (docs/decisions.md "Boot
// unlock loads single files").
import type { ApprovalsResponse } from '@rackseal/node-api-contracts/approvals';
import { approvalDigest, approvalPolicyRef, approvedPcrPolicy, policySelection } from '@rackseal/pcr-policy/approval-math';
import { pcrRead } from '@rackseal/tpm2/commands/pcr';
import { tpm2VerifySignature } from '@rackseal/tpm2/commands/keys-and-attestation';
import { tpm2LoadExternal } from '@rackseal/tpm2/commands/objects';
import { TPM_RH } from '@rackseal/tpm2/constants';
import { objectName } from '@rackseal/tpm2/names';
import type { LoadedObject } from '@rackseal/tpm2/operations/loaded-object';
import { unsealImportedBlob } from '@rackseal/tpm2/operations/sealed-blob';
import type { TpmScope } from '@rackseal/tpm2/operations/tpm-scope';
import { type TPMT_SIGNATURE, unmarshalTpmtSignature } from '@rackseal/tpm2/structures/tpmt-signature';
import { type ParsedPublic, unmarshalTpm2bPublic } from '@rackseal/tpm2/structures/tpmt-public';
import type { PcrSealedKeyTransport } from '@rackseal/wrapping/envelope-format';
import { NoApprovalError, UnwrapRefusal } from './unwrap-errors';

/** One approval, decoded: the PolicyPCR digest the signing key approved and its signature over aHash. */
export interface DecodedApproval {
  readonly approvedPolicy: Buffer;
  readonly signature: TPMT_SIGNATURE;
}

/** The approvals of an ApprovalsResponse that concern this envelope, decoded and checked against it. */
export interface EnvelopeApprovals {
  readonly signingKeyPublic: ParsedPublic;
  readonly policyRef: Buffer;
  readonly selection: ReturnType<typeof policySelection>;
  readonly bank: string;
  readonly pcrs: readonly number[];
  readonly approvals: readonly DecodedApproval[];
}

function bytes(value: unknown, encoding: 'hex' | 'base64', field: string): Buffer {
  const pattern = encoding === 'hex' ? /^(?:[0-9a-f]{2})*$/ : /^[A-Za-z0-9+/]*={0,2}$/;
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new UnwrapRefusal('unwrap.approvals-mismatch', `the approvals' ${field} is not ${encoding}`);
  }
  return Buffer.from(value, encoding);
}

/**
 * Checks, before the TPM is asked, that `response` can open `transport`: same group and epoch (an
 * envelope of another epoch needs a re-wrap, docs/decisions.md "Wrapping"), a policyRef that is
 * approvalPolicyRef(group, epoch) recomputed here, and a signing key whose Name (the hash of the
 * public area sent) is the one the envelope's object is sealed to.
 */
export function approvalsFor(transport: PcrSealedKeyTransport, response: ApprovalsResponse): EnvelopeApprovals {
  if (response.group !== transport.group || response.epoch !== transport.epoch) {
    throw new UnwrapRefusal(
      'unwrap.approvals-mismatch',
      `the envelope was wrapped for group ${JSON.stringify(transport.group)} at approval epoch ${transport.epoch}; the approvals are of group ${JSON.stringify(response.group)} at epoch ${response.epoch}` +
        (response.group === transport.group && response.epoch > transport.epoch ? ' (the epoch was bumped: the envelope must be wrapped again)' : ''),
    );
  }
  const policyRef = approvalPolicyRef(transport.group, transport.epoch);
  if (!bytes(response.policyRef, 'hex', 'policyRef').equals(policyRef)) {
    throw new UnwrapRefusal('unwrap.approvals-mismatch', 'the approvals\' policyRef is not the one of their group and epoch');
  }
  let signingKeyPublic: ParsedPublic;
  try {
    signingKeyPublic = unmarshalTpm2bPublic(bytes(response.signingKeyPublic, 'base64', 'signingKeyPublic'));
  } catch (error) {
    if (error instanceof UnwrapRefusal) {
      throw error;
    }
    throw new UnwrapRefusal('unwrap.approvals-mismatch', 'the approvals\' signingKeyPublic is not a TPM2B_PUBLIC');
  }
  const name = objectName(signingKeyPublic);
  if (!name.equals(transport.signingKeyName)) {
    throw new UnwrapRefusal(
      'unwrap.signer-mismatch',
      `the approvals are signed by key ${name.toString('hex')}; the envelope is sealed to approvals of key ${transport.signingKeyName.toString('hex')}`,
    );
  }
  const approvals = (Array.isArray(response.approvals) ? response.approvals : []).map((a, i) => {
    try {
      return { approvedPolicy: bytes(a.approvedPolicy, 'hex', `approvals[${i}].approvedPolicy`), signature: unmarshalTpmtSignature(bytes(a.signature, 'base64', `approvals[${i}].signature`)) };
    } catch (error) {
      if (error instanceof UnwrapRefusal) {
        throw error;
      }
      throw new UnwrapRefusal('unwrap.approvals-mismatch', `the approvals' approvals[${i}].signature is not a TPMT_SIGNATURE`);
    }
  });
  const policy = { bank: response.bank, pcrs: [...response.pcrs] };
  return { signingKeyPublic, policyRef, selection: policySelection(policy), bank: response.bank, pcrs: policy.pcrs, approvals };
}

/**
 * The approval of the PCR state the TPM holds now: PCR_Read of the selection, its PolicyPCR digest
 * (approvedPcrPolicy, the control plane's arithmetic), the approval with that approvedPolicy; none
 * is NoApprovalError (the PCR values are not listed: the refusal says how many were checked).
 */
export async function currentApproval(scope: TpmScope, transport: PcrSealedKeyTransport, approvals: EnvelopeApprovals): Promise<DecodedApproval> {
  const { values } = await pcrRead(scope.client, approvals.selection);
  const current = approvedPcrPolicy({ bank: approvals.bank, pcrs: approvals.pcrs }, { values: Object.fromEntries(approvals.pcrs.map((pcr, i) => [pcr, values[i]!.toString('hex')])) });
  const match = approvals.approvals.find((a) => a.approvedPolicy.equals(current));
  if (match === undefined) {
    throw new NoApprovalError(transport.group, transport.epoch, approvals.approvals.length);
  }
  return match;
}

/**
 * The TPM's half of the updatable policy (TPM 2.0 Part 3 §23.16): TPM2_LoadExternal of the signing
 * key's public area in the OWNER hierarchy (a key in TPM_RH_NULL yields a NULL ticket, which
 * PolicyAuthorize refuses), its Name checked against the envelope's, TPM2_VerifySignature of the
 * approval over aHash = approvalDigest(approvedPolicy, policyRef) → a TPM_ST_VERIFIED ticket, the
 * key flushed, then unsealImportedBlob: Import + Load under the EK, PolicyPCR → PolicyAuthorize →
 * Unseal, every session salted to the EK (whose ekPubHash the caller checked) with parameter
 * encryption, unless `salt` is false (the bus-capture negative control). Returns the content key.
 * With PCRs other than `approval`'s the Unseal is TPM_RC_POLICY_FAIL.
 */
export async function unsealWithApproval(
  scope: TpmScope,
  ek: LoadedObject,
  transport: PcrSealedKeyTransport,
  approvals: EnvelopeApprovals,
  approval: DecodedApproval,
  salt?: false,
): Promise<Buffer> {
  const client = scope.client;
  const signer = await tpm2LoadExternal(client, approvals.signingKeyPublic, TPM_RH.TPM_RH_OWNER);
  scope.track(signer.objectHandle);
  if (!signer.name.equals(transport.signingKeyName)) {
    throw new UnwrapRefusal('unwrap.signer-mismatch', `the TPM names the approval key ${signer.name.toString('hex')}, the envelope ${transport.signingKeyName.toString('hex')}`);
  }
  const checkTicket = await tpm2VerifySignature(client, signer.objectHandle, approvalDigest(approval.approvedPolicy, approvals.policyRef), approval.signature);
  // The ticket is all PolicyAuthorize needs: free the slot for the EK's sealed object.
  await scope.flush(signer.objectHandle);
  return unsealImportedBlob(scope, ek, transport.blob, approvals.selection, {
    authorize: { approvedPolicy: approval.approvedPolicy, policyRef: approvals.policyRef, keySign: signer.name, checkTicket },
    ...(salt === false ? { salt: false as const } : {}),
  });
}
