import { randomBytes } from 'node:crypto';
import { marshal } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPM_CC, TPM_RH } from '../constants';
import { hashAlgorithm } from '../hash-algorithms';
import { ENCAPSULATION_LABEL, type EncapsulationOptions, labeledEncapsulate } from '../crypto/labeled-encapsulation';
import { saltedSessionKey, SYM_AES_128_CFB, type TPMT_SYM_DEF } from '../crypto/session-crypto';
import { writeTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import type { TPMT_PUBLIC } from '../structures/tpmt-public';
import { SaltedSession, type SaltedSessionType } from '../client/salted-session';
import type { TpmClient } from '../client/tpm-client';
import { tpm2FlushContext } from './context-management';
import { TPM_SE } from './policy-session';

const MAX_DIGEST = 64;

/** The key a session's salt is encrypted to: loaded at `handle`, with the public area the caller trusts. */
export interface SaltKey {
  readonly handle: number;
  /** The caller's copy, checked against a Name it trusts; never the TPM's word for it. */
  readonly public: TPMT_PUBLIC;
}

export interface SaltedSessionOptions {
  /** The session's hash (authHash); a policy session's must be the authorized object's nameAlg. */
  readonly authHash?: number;
  /** Parameter encryption: AES-128-CFB unless told. */
  readonly symmetric?: TPMT_SYM_DEF;
  /** Default: authHash-size random bytes. */
  readonly nonceCaller?: Buffer;
  /** Randomness of the salt (tests replaying an exchange). */
  readonly encapsulation?: EncapsulationOptions;
}

/**
 * TPM2_StartAuthSession (Part 3 §11.1) salted with tpmKey = `saltKey`, bind = TPM_RH_NULL:
 *   encryptedSalt = the salt encapsulated to tpmKey with the label "SECRET" (Part 1 §19.6.13 and
 *     Annex B.10.2 for RSA-OAEP, Annex C.6.1 for ECDH: the same secret sharing as credentials and
 *     duplicates, crypto/labeled-encapsulation.ts; the salt is as long as tpmKey's nameAlg digest)
 *   sessionKey = KDFa(authHash, salt, "ATH", nonceTPM, nonceCaller, 8·|authHash|) (Part 1 §19.6.11)
 *   symmetric = TPMT_SYM_DEF (Part 2 §11.1.6), AES-128-CFB: parameter encryption (Part 1 §21.3).
 * Only the holder of tpmKey's private key learns the salt, so a bus observer cannot compute the
 * session key. A key at `handle` that is not `saltKey.public` decrypts another salt (or refuses:
 * TPM_RC_VALUE), and the first command's HMAC then fails. The session is flushed if its answer
 * does not parse.
 */
export async function tpm2StartSaltedSession(
  client: TpmClient,
  saltKey: SaltKey,
  sessionType: SaltedSessionType,
  options: SaltedSessionOptions = {},
): Promise<SaltedSession> {
  const authHash = options.authHash ?? TPM_ALG_ID.TPM_ALG_SHA256;
  const size = hashAlgorithm(authHash).size;
  const nonceCaller = options.nonceCaller ?? randomBytes(size);
  if (nonceCaller.length < 16 || nonceCaller.length > size) {
    throw new RangeError(`nonceCaller must be 16 to ${size} bytes, got ${nonceCaller.length}`);
  }
  const symmetric = options.symmetric ?? SYM_AES_128_CFB;
  const { seed: salt, encryptedSecret } = labeledEncapsulate(saltKey.public, ENCAPSULATION_LABEL.SECRET, options.encapsulation);
  const response = await client.execute({
    code: TPM_CC.TPM_CC_StartAuthSession,
    handles: [saltKey.handle, TPM_RH.TPM_RH_NULL],
    parameters: marshal((w) => {
      w.tpm2b(nonceCaller);
      writeTpm2bEncryptedSecret(w, encryptedSecret);
      w.u8(sessionType === 'hmac' ? TPM_SE.TPM_SE_HMAC : TPM_SE.TPM_SE_POLICY);
      w.u16(symmetric.algorithm).u16(symmetric.keyBits).u16(symmetric.mode);
      w.u16(authHash);
    }),
    responseHandles: 1,
  });
  const sessionHandle = response.handles[0]!;
  try {
    const r = response.parameters;
    const nonceTPM = r.tpm2b('nonceTPM', MAX_DIGEST);
    r.end();
    const sessionKey = saltedSessionKey(authHash, salt, nonceTPM, nonceCaller);
    return new SaltedSession(sessionHandle, sessionType, authHash, symmetric, sessionKey, nonceTPM);
  } catch (error) {
    await tpm2FlushContext(client, sessionHandle).catch(() => undefined);
    throw error;
  } finally {
    salt.fill(0);
  }
}
