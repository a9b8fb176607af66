import { algName, TPM_ALG_ID, TPMA_OBJECT } from '../constants';
import type { SaltedSession, SaltedSessionType } from '../client/salted-session';
import { type SaltKey, tpm2StartSaltedSession } from '../commands/salted-session';
import type { TpmScope } from './tpm-scope';

/**
 * The key given to salt a session cannot be trusted with it. Only a restricted decryption key (an
 * EK or a storage key) will do: the TPM refuses RSA_Decrypt and ECDH_ZGen with a restricted key,
 * whereas with an unrestricted one (a certified decrypt key) anyone on the bus could send the
 * recorded encryptedSalt back to the TPM as ciphertext and be handed the salt.
 */
export class SaltKeyError extends Error {
  constructor(reason: string) {
    super(`cannot salt a session to this key: ${reason}`);
    this.name = 'SaltKeyError';
  }
}

/** Refuses a salt key that is not an RSA or ECC restricted decryption key (see SaltKeyError). */
export function checkSaltKey(key: SaltKey): void {
  const pub = key.public;
  if (pub.type !== TPM_ALG_ID.TPM_ALG_RSA && pub.type !== TPM_ALG_ID.TPM_ALG_ECC) {
    throw new SaltKeyError(`it is a ${algName(pub.type)} object, not an RSA or ECC key`);
  }
  const storage = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if ((pub.objectAttributes & storage) !== storage || (pub.objectAttributes & TPMA_OBJECT.sign) !== 0) {
    throw new SaltKeyError(
      `objectAttributes 0x${pub.objectAttributes.toString(16).padStart(8, '0')} are not a restricted decryption key's (restricted and decrypt set, sign clear)`,
    );
  }
}

/**
 * Parameter encryption for an operation: `false` sends secrets in clear (only the bus-capture
 * test's negative control does), else the session is salted to this key. The operations choose the
 * key themselves (the EK or the storage key whose Name they checked) unless given one here.
 */
export type SessionSalt = SaltKey | false;

/**
 * A salted session (TPM2_StartAuthSession, commands/salted-session.ts) held in `scope`, after the
 * salt key is checked. The policy session's hash must be the authorized object's nameAlg.
 */
export async function startSaltedSession(scope: TpmScope, saltKey: SaltKey, sessionType: SaltedSessionType, authHash: number): Promise<SaltedSession> {
  checkSaltKey(saltKey);
  const session = await tpm2StartSaltedSession(scope.client, saltKey, sessionType, { authHash });
  scope.track(session.sessionHandle);
  return session;
}
