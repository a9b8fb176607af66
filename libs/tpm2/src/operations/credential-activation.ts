import { passwordAuth } from '../client/session-auth';
import { tpm2ActivateCredential } from '../commands/keys-and-attestation';
import { unmarshalTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { unmarshalTpm2bIdObject } from '../structures/tpm2b-id-object';
import type { EndorsementKey } from './endorsement-key';
import type { LoadedObject } from './loaded-object';
import type { SessionSalt } from './session-salt';
import type { TpmScope } from './tpm-scope';
import { UserAuthorization, type UserAuthorizationOptions } from './user-authorization';

/** A credential as MakeCredential (server side, crypto/make-credential) returns it: marshalled TPM2Bs. */
export interface CredentialChallenge {
  /** TPM2B_ID_OBJECT. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET. */
  readonly encryptedSecret: Buffer;
}

export interface ActivateCredentialOptions extends UserAuthorizationOptions {
  readonly akAuth?: Buffer;
  /**
   * The key the EK's session is salted to; default the EK itself. `false` sends the credential in
   * clear over the bus: only the bus-capture test's negative control asks for that.
   */
  readonly salt?: SessionSalt;
}

/**
 * TPM2_ActivateCredential (Part 3 §12.5): recovers the secret a verifier protected for this EK
 * and this AK's Name. The AK is authorized by its (empty) password, the EK by its policy; a
 * credential made for another Name is TPM_RC_INTEGRITY on parameter 1. Both inputs are parsed
 * first, so malformed ones are TpmParseError before anything reaches the TPM.
 *
 * The EK's authorization session is salted to the EK (Part 1 §19.6.11) and has the encrypt
 * attribute, so certInfo (the secret) crosses the bus AES-CFB encrypted under a key only this
 * process and the TPM know (Part 1 §21), and the response is HMAC-checked. `ek.public` must be the
 * EK whose Name the caller checked (the agent: against the ekPubHash it enrolled with, or the
 * certificate the server matched): salting to a key an interposer substituted would give him the salt.
 */
export async function activateCredential(
  scope: TpmScope,
  ak: LoadedObject,
  ek: EndorsementKey | LoadedObject,
  challenge: CredentialChallenge,
  options: ActivateCredentialOptions = {},
): Promise<Buffer> {
  const credentialBlob = unmarshalTpm2bIdObject(challenge.credentialBlob);
  const secret = unmarshalTpm2bEncryptedSecret(challenge.encryptedSecret);
  const salt = options.salt === undefined ? ek : options.salt;
  const authOptions = { prefer: options.prefer, endorsementAuth: options.endorsementAuth, ...(salt === false ? {} : { salt }) };
  return scope.nested((inner) =>
    new UserAuthorization(inner, ek.public, authOptions).use(
      true,
      (ekAuth) =>
        tpm2ActivateCredential(
          scope.client,
          { handle: ak.handle, auth: passwordAuth(options.akAuth), name: ak.name },
          { handle: ek.handle, auth: ekAuth, name: ek.name },
          credentialBlob,
          secret,
        ),
      salt === false ? {} : { encrypt: true },
    ),
  );
}
