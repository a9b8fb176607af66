import { policyAuth } from '../client/session-auth';
import { tpm2Import, tpm2Unseal } from '../commands/keys-and-attestation';
import { tpm2Load } from '../commands/objects';
import { type PolicyAuthorizeInput, tpm2PolicyAuthorize, tpm2PolicyPCR, tpm2StartAuthSession, TPM_SE } from '../commands/policy-session';
import { unmarshalTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { unmarshalTpm2bPrivate } from '../structures/tpm2b-private';
import type { TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { unmarshalTpm2bPublic } from '../structures/tpmt-public';
import type { LoadedObject } from './loaded-object';
import type { TpmScope } from './tpm-scope';
import { UserAuthorization, type UserAuthorizationOptions } from './user-authorization';

/** An import blob as createImportBlob / `rackseal seal` make it: three marshalled TPM2Bs. */
export interface SealedImportBlob {
  /** TPM2B_PUBLIC (obj.pub). */
  readonly public: Buffer;
  /** TPM2B_PRIVATE (obj.dpriv). */
  readonly duplicate: Buffer;
  /** TPM2B_ENCRYPTED_SECRET (obj.seed). */
  readonly inSymSeed: Buffer;
}

export interface UnsealOptions extends UserAuthorizationOptions {
  /**
   * For an object sealed to PolicyAuthorize(key, policyRef) rather than to PolicyPCR: after
   * PolicyPCR(selection), PolicyAuthorize with the signer's approval of that PCR policy.
   */
  readonly authorize?: PolicyAuthorizeInput;
}

/**
 * The agent's unseal sequence (docs/architecture.md §4.5): TPM2_Import (Part 3 §13.3) of the blob
 * under the parent (the EK), TPM2_Load, then TPM2_Unseal with a policy session that ran TPM2_PolicyPCR over exactly the
 * selection the blob was sealed to (the TPM supplies the current values). Import and Load share
 * one session satisfying the parent's policy. With other PCR values the Unseal fails with
 * TPM_RC_POLICY_FAIL on session 1. The sealed object and every session are flushed before this
 * returns or throws.
 */
export async function unsealImportedBlob(
  scope: TpmScope,
  parent: LoadedObject,
  blob: SealedImportBlob,
  selection: TPML_PCR_SELECTION,
  options: UnsealOptions = {},
): Promise<Buffer> {
  const objectPublic = unmarshalTpm2bPublic(blob.public);
  const duplicate = unmarshalTpm2bPrivate(blob.duplicate);
  const inSymSeed = unmarshalTpm2bEncryptedSecret(blob.inSymSeed);
  const client = scope.client;
  return scope.nested(async (inner) => {
    const parentAuth = new UserAuthorization(inner, parent.public, options);
    const outPrivate = await parentAuth.use(false, (a) => tpm2Import(client, parent.handle, a, { objectPublic, duplicate, inSymSeed }));
    const item = await parentAuth.use(true, (a) => tpm2Load(client, parent.handle, a, outPrivate, objectPublic));
    inner.track(item.objectHandle);
    const session = await tpm2StartAuthSession(client, TPM_SE.TPM_SE_POLICY, objectPublic.nameAlg);
    inner.track(session.sessionHandle);
    await tpm2PolicyPCR(client, session.sessionHandle, selection);
    if (options.authorize !== undefined) {
      await tpm2PolicyAuthorize(client, session.sessionHandle, options.authorize);
    }
    const data = await tpm2Unseal(client, item.objectHandle, policyAuth(session.sessionHandle));
    inner.forget(session.sessionHandle);
    return data;
  });
}
