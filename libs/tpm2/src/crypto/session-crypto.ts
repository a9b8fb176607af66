import { createCipheriv, createDecipheriv } from 'node:crypto';
import { marshal } from '../codec/tpm-writer';
import { TPM_ALG_ID } from '../constants';
import { digest, hashAlgorithm, hmac } from '../hash-algorithms';
import { KDFa } from './kdf';

/**
 * The arithmetic of HMAC sessions and parameter encryption (TPM 2.0 Part 1 §19.6, §21), as pure
 * functions over bytes: the session key of a salted session, cpHash and rpHash, the command and
 * response HMACs, and the AES-CFB key stream of the first parameter. The session state and the
 * wire layout live in client/auth-session.ts and client/session-protocol.ts.
 */

/** AES block (and so CFB IV) size in bytes. */
const AES_BLOCK_BYTES = 16;
const AES_KEY_BITS = new Set([128, 192, 256]);

/**
 * Part 1 §19.6.8 / §19.6.11 sessionKey of a salted (and optionally bound) session:
 *   sessionKey = KDFa(authHash, bind.authValue ‖ salt, "ATH", nonceTPM, nonceCaller, 8·|authHash|)
 * rackseal's sessions are never bound, so `bindAuthValue` is empty unless a test says otherwise.
 */
export function saltedSessionKey(authHash: number, salt: Uint8Array, nonceTPM: Uint8Array, nonceCaller: Uint8Array, bindAuthValue: Uint8Array = Buffer.alloc(0)): Buffer {
  return KDFa(authHash, Buffer.concat([bindAuthValue, salt]), 'ATH', nonceTPM, nonceCaller, 8 * hashAlgorithm(authHash).size);
}

/**
 * An authValue as the TPM uses it in HMAC and parameter-encryption keys: trailing zero octets
 * removed (Part 1 §19.6, "authValue with trailing zeros removed"; so "pw" and "pw\0\0" are the same password).
 */
export function trimAuthValue(authValue: Uint8Array): Buffer {
  let end = authValue.length;
  while (end > 0 && authValue[end - 1] === 0) {
    end -= 1;
  }
  return Buffer.from(authValue.subarray(0, end));
}

/**
 * cpHash (Part 1 §18.7): H_authHash(commandCode ‖ Name(handle 1) ‖ … ‖ parameters),
 * the parameters exactly as sent (the first one already encrypted when a session decrypts it).
 */
export function cpHash(hashAlg: number, commandCode: number, names: readonly Uint8Array[], parameters: Uint8Array): Buffer {
  return digest(hashAlg, marshal((w) => w.u32(commandCode)), ...names, parameters);
}

/** rpHash (Part 1 §18.8): H_authHash(responseCode ‖ commandCode ‖ parameters), as received. */
export function rpHash(hashAlg: number, commandCode: number, parameters: Uint8Array, responseCode = 0): Buffer {
  return digest(hashAlg, marshal((w) => w.u32(responseCode).u32(commandCode)), parameters);
}

/**
 * The session HMAC of Part 1 §19.6 ("HMAC Computation", for commands and responses alike):
 *   HMAC_authHash(key, pHash ‖ nonceNewer ‖ nonceOlder ‖ [nonceDecrypt] ‖ [nonceEncrypt] ‖ sessionAttributes)
 * For a command nonceNewer = nonceCaller and nonceOlder = nonceTPM; for a response the reverse
 * (the TPM's new nonce first). The extra nonces only ever appear in the first session of a command
 * (`extraNonces`). `key` is sessionKey ‖ authValue, or sessionKey alone for a policy session.
 */
export function sessionHmac(
  hashAlg: number,
  key: Uint8Array,
  pHash: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  sessionAttributes: number,
  extraNonces: readonly Uint8Array[] = [],
): Buffer {
  return hmac(hashAlg, key, pHash, nonceNewer, nonceOlder, ...extraNonces, Buffer.from([sessionAttributes]));
}

/**
 * Part 1 §21.3 CFB mode parameter encryption: key ‖ IV = KDFa(authHash, sessionValue, "CFB",
 * nonceNewer, nonceOlder, keyBits + 128), then AES-CFB (full-block feedback, no padding) over the
 * buffer of the first TPM2B parameter (not its size field). sessionValue is sessionKey ‖ the
 * authorized entity's authValue. A command's parameter: nonceNewer = nonceCaller,
 * nonceOlder = nonceTPM; a response's: nonceNewer = the new nonceTPM, nonceOlder = nonceCaller.
 */
export function parameterCfb(
  direction: 'encrypt' | 'decrypt',
  hashAlg: number,
  sessionValue: Uint8Array,
  keyBits: number,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  data: Uint8Array,
): Buffer {
  if (!AES_KEY_BITS.has(keyBits)) {
    throw new RangeError(`AES-${keyBits} is not an AES key size`);
  }
  const keyAndIv = KDFa(hashAlg, sessionValue, 'CFB', nonceNewer, nonceOlder, keyBits + 8 * AES_BLOCK_BYTES);
  const key = keyAndIv.subarray(0, keyBits / 8);
  const iv = keyAndIv.subarray(keyBits / 8);
  const cipher = direction === 'encrypt' ? createCipheriv(`aes-${keyBits}-cfb`, key, iv) : createDecipheriv(`aes-${keyBits}-cfb`, key, iv);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** Part 2 §11.1.6 TPMT_SYM_DEF for parameter encryption; rackseal uses AES-128-CFB only. */
export interface TPMT_SYM_DEF {
  readonly algorithm: number;
  readonly keyBits: number;
  readonly mode: number;
}

/** AES-128 in CFB mode: what tpm2-tss and systemd ask for, and what every PC Client TPM has. */
export const SYM_AES_128_CFB: TPMT_SYM_DEF = { algorithm: TPM_ALG_ID.TPM_ALG_AES, keyBits: 128, mode: TPM_ALG_ID.TPM_ALG_CFB };
