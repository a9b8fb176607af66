import { policyAuth } from '../client/session-auth';
import type { CommandAuth } from '../client/session-protocol';
import { tpm2Import, tpm2Unseal } from '../commands/keys-and-attestation';
import { tpm2Load } from '../commands/objects';
import { type PolicyAuthorizeInput, tpm2PolicyAuthorize, tpm2PolicyPCR, tpm2StartAuthSession, TPM_SE } from '../commands/policy-session';
import { unmarshalTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { unmarshalTpm2bPrivate } from '../structures/tpm2b-private';
import type { TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { unmarshalTpm2bPublic } from '../structures/tpmt-public';
import type { LoadedObject } from './loaded-object';
import { type SessionSalt, startSaltedSession } from './session-salt';
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
  /**
   * The key every session of the sequence is salted to; default the parent (the EK, whose Name
   * the caller checked). `false`: no salt and no parameter encryption, the unsealed data in clear
   * on the bus; only the bus-capture test's negative control asks for that.
   */
  readonly salt?: SessionSalt;
}

/**
 * The agent's unseal sequence (docs/architecture.md §4.5): TPM2_Import (Part 3 §13.3) of the blob
 * under the parent (the EK), TPM2_Load, then TPM2_Unseal with a policy session that ran TPM2_PolicyPCR over exactly the
 * selection the blob was sealed to (the TPM supplies the current values). Import and Load share
 * one session satisfying the parent's policy. With other PCR values the Unseal fails with
 * TPM_RC_POLICY_FAIL on session 1. The sealed object and every session are flushed before this
 * returns or throws.
 *
 * Salted (the default, to the parent): the parent's policy session is salted and Import encrypts
 * its first parameter, encryptionKey (the inner wrapper's key when there is one; the duplicate
 * itself is already protected by the outer wrapper to the parent, and its seed to the parent's key);
 * the Unseal policy session is salted too and outData (the secret) comes back AES-CFB encrypted
 * with a response HMAC that is checked (Part 1 §19.6, §21).
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
  const salt = options.salt === undefined ? parent : options.salt;
  return scope.nested(async (inner) => {
    const parentAuth = new UserAuthorization(inner, parent.public, { prefer: options.prefer, endorsementAuth: options.endorsementAuth, ...(salt === false ? {} : { salt }) });
    const outPrivate = await parentAuth.use(false, (a) => tpm2Import(client, parent.handle, a, { objectPublic, duplicate, inSymSeed }), salt === false ? {} : { decrypt: true });
    const item = await parentAuth.use(true, (a) => tpm2Load(client, parent.handle, a, outPrivate, objectPublic));
    inner.track(item.objectHandle);
    // The policy session's hash is the sealed object's nameAlg: its authPolicy is of that hash.
    let unsealAuth: CommandAuth;
    let sessionHandle: number;
    if (salt === false) {
      sessionHandle = inner.track((await tpm2StartAuthSession(client, TPM_SE.TPM_SE_POLICY, objectPublic.nameAlg)).sessionHandle);
      unsealAuth = policyAuth(sessionHandle);
    } else {
      const session = await startSaltedSession(inner, salt, 'policy', objectPublic.nameAlg);
      sessionHandle = session.sessionHandle;
      unsealAuth = session.use({ entityName: item.name, encrypt: true });
    }
    await tpm2PolicyPCR(client, sessionHandle, selection);
    if (options.authorize !== undefined) {
      await tpm2PolicyAuthorize(client, sessionHandle, options.authorize);
    }
    const data = await tpm2Unseal(client, item.objectHandle, unsealAuth);
    inner.forget(sessionHandle);
    return data;
  });
}
