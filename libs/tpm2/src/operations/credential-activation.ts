import { passwordAuth } from '../client/session-auth';
import { tpm2ActivateCredential } from '../commands/keys-and-attestation';
import { unmarshalTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { unmarshalTpm2bIdObject } from '../structures/tpm2b-id-object';
import type { EndorsementKey } from './endorsement-key';
import type { LoadedObject } from './loaded-object';
import type { TpmScope } from './tpm-scope';
import { UserAuthorization, type UserAuthorizationOptions } from './user-authorization';

/** A credential as MakeCredential (server side, crypto/make-credential) returns it: marshalled TPM2Bs. */
export interface CredentialChallenge {
  /** TPM2B_ID_OBJECT. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET. */
  readonly encryptedSecret: Buffer;
}

/**
 * TPM2_ActivateCredential (Part 3 §12.5): recovers the secret a verifier protected for this EK
 * and this AK's Name. The AK is authorized by its (empty) password, the EK by its policy; a
 * credential made for another Name is TPM_RC_INTEGRITY on parameter 1. Both inputs are parsed
 * first, so malformed ones are TpmParseError before anything reaches the TPM.
 */
export async function activateCredential(
  scope: TpmScope,
  ak: LoadedObject,
  ek: EndorsementKey | LoadedObject,
  challenge: CredentialChallenge,
  options: UserAuthorizationOptions & { readonly akAuth?: Buffer } = {},
): Promise<Buffer> {
  const credentialBlob = unmarshalTpm2bIdObject(challenge.credentialBlob);
  const secret = unmarshalTpm2bEncryptedSecret(challenge.encryptedSecret);
  return scope.nested((inner) =>
    new UserAuthorization(inner, ek.public, options).use(true, (ekAuth) =>
      tpm2ActivateCredential(
        scope.client,
        { handle: ak.handle, auth: passwordAuth(options.akAuth) },
        { handle: ek.handle, auth: ekAuth },
        credentialBlob,
        secret,
      ),
    ),
  );
}
