import { TPM_ALG_ID } from '../constants';
import { passwordAuth } from '../client/session-auth';
import { type SignedAttestation, tpm2Certify, tpm2EcdhZGen, tpm2RsaDecrypt } from '../commands/keys-and-attestation';
import { tpm2Create, tpm2Load } from '../commands/objects';
import { CERTIFIED_DECRYPT_KEY_TEMPLATE } from '../templates';
import type { TPM2B_PRIVATE } from '../structures/tpm2b-private';
import type { EccPublic, RsaPublic, TPMS_ECC_POINT } from '../structures/tpmt-public';
import { type KeyBlob, type ParentDescriptor, resolveParent } from './key-blob';
import type { LoadedObject } from './loaded-object';
import { type SessionSalt, startSaltedSession } from './session-salt';
import { getStoragePrimary, type StoragePrimaryOptions } from './storage-primary';
import type { TpmScope } from './tpm-scope';

export interface CertifiedDecryptKey extends LoadedObject {
  readonly private: TPM2B_PRIVATE;
  /** TPM2_Certify by the AK over the caller's nonce: attest.raw and signatureBytes go to the server. */
  readonly certification: SignedAttestation;
  /** To keep in the state dir; later boots loadKeyBlob it under the re-derived (or persisted) SRK. */
  readonly blob: KeyBlob;
}

export interface CertifiedDecryptKeyOptions extends StoragePrimaryOptions {
  /**
   * The key's template (CERTIFIED_DECRYPT_KEY_TEMPLATE by default, or CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC). Apart from `template`, which is
   * the storage primary's (StoragePrimaryOptions): one name for both made a key template given here
   * the SRK's template too, and the key a child of itself's kind (TPM_RC_TYPE on the parent).
   */
  readonly keyTemplate?: RsaPublic | EccPublic;
  readonly akAuth?: Buffer;
}

/**
 * The TPM-resident decrypt key of docs/architecture.md §3 (CERTIFIED_DECRYPT_KEY_TEMPLATE: RSA-2048, decrypt,
 * fixedTPM/fixedParent/sensitiveDataOrigin, neither sign nor restricted) created under the storage
 * primary and certified by the AK (TPM2_Certify, Part 3 §18.2) over `qualifyingData`. The storage
 * primary is flushed again before this returns; the key stays loaded in `scope`.
 */
export async function createCertifiedDecryptKey(
  scope: TpmScope,
  ak: LoadedObject,
  qualifyingData: Buffer,
  options: CertifiedDecryptKeyOptions = {},
): Promise<CertifiedDecryptKey> {
  const client = scope.client;
  const template = options.keyTemplate ?? CERTIFIED_DECRYPT_KEY_TEMPLATE;
  const key = await scope.nested(async (inner) => {
    const srk = await getStoragePrimary(inner, options);
    // The SRK is userWithAuth with an empty authValue: a password session authorizes it.
    const created = await tpm2Create(client, srk.handle, passwordAuth(), template);
    const loaded = await tpm2Load(client, srk.handle, passwordAuth(), created.outPrivate, created.outPublic);
    scope.track(loaded.objectHandle);
    return { created, loaded, parent: srk.descriptor };
  });
  const certification = await tpm2Certify(
    client,
    { handle: key.loaded.objectHandle, auth: passwordAuth() },
    { handle: ak.handle, auth: passwordAuth(options.akAuth) },
    qualifyingData,
  );
  return {
    handle: key.loaded.objectHandle,
    public: key.created.outPublic,
    name: key.loaded.name,
    private: key.created.outPrivate,
    certification,
    blob: { parent: key.parent, public: key.created.outPublic, private: key.created.outPrivate },
  };
}

/** An OAEP label TPM2_RSA_Decrypt would refuse: it must be empty or end in 0x00. */
export class OaepLabelError extends Error {
  constructor(readonly label: Buffer) {
    super(`the TPM takes only NUL-terminated OAEP labels; ${JSON.stringify(label.toString('latin1'))} does not end in 0x00 (encrypt with the terminator included)`);
    this.name = 'OaepLabelError';
  }
}

export interface RsaOaepDecryptOptions {
  readonly hashAlg?: number;
  readonly keyAuth?: Buffer;
  /**
   * The key the session is salted to. Default: the storage key `parent` names (the key blob's
   * parent, found by the Name the blob records), else the storage primary getStoragePrimary finds.
   * Never the decrypt key itself: it is unrestricted, so the TPM would RSA_Decrypt a recorded
   * encryptedSalt for anyone (SaltKeyError). `false`: the plaintext crosses the bus in clear; only
   * the bus-capture test's negative control asks for that.
   */
  readonly salt?: SessionSalt;
  readonly parent?: ParentDescriptor;
  readonly storagePrimary?: StoragePrimaryOptions;
}

/**
 * TPM2_RSA_Decrypt (Part 3 §14.3) with RSAES-OAEP, MGF1 and label hash = `hashAlg` (SHA-256 by
 * default), as node:crypto's publicEncrypt({ oaepHash, oaepLabel }) makes it. The TPM only takes
 * a label that ends in a 0x00 octet (an empty one, or a NUL-terminated string), so encrypt with
 * that exact label, terminator included.
 *
 * The key is authorized by an HMAC session salted to a storage key (see `salt`) with the encrypt
 * attribute: the decrypted message crosses the bus AES-CFB encrypted, the response HMAC is
 * checked, and keyAuth is never sent, only HMACed (Part 1 §19.6, §21).
 */
export async function rsaOaepDecrypt(
  scope: TpmScope,
  key: LoadedObject,
  cipherText: Buffer,
  label: Buffer,
  options: RsaOaepDecryptOptions = {},
): Promise<Buffer> {
  if (label.length > 0 && label[label.length - 1] !== 0) {
    // The TPM would answer TPM_RC_VALUE on parameter 3; say what is wrong instead.
    throw new OaepLabelError(label);
  }
  const scheme = { scheme: TPM_ALG_ID.TPM_ALG_OAEP, hashAlg: options.hashAlg ?? TPM_ALG_ID.TPM_ALG_SHA256 };
  if (options.salt === false) {
    return tpm2RsaDecrypt(scope.client, key.handle, passwordAuth(options.keyAuth), cipherText, scheme, label);
  }
  const salt = options.salt;
  return scope.nested(async (inner) => {
    const saltKey =
      salt ?? (options.parent !== undefined ? await resolveParent(inner, options.parent) : await getStoragePrimary(inner, options.storagePrimary));
    const session = await startSaltedSession(inner, saltKey, 'hmac', TPM_ALG_ID.TPM_ALG_SHA256);
    const auth = session.use({ entityName: key.name, authValue: options.keyAuth, encrypt: true });
    const message = await tpm2RsaDecrypt(scope.client, key.handle, auth, cipherText, scheme, label);
    inner.forget(session.sessionHandle);
    return message;
  });
}

export interface EcdhZGenOptions {
  readonly keyAuth?: Buffer;
  /** As RsaOaepDecryptOptions.salt: a storage key, never the decrypt key itself; `false` only for the negative control. */
  readonly salt?: SessionSalt;
  readonly parent?: ParentDescriptor;
  readonly storagePrimary?: StoragePrimaryOptions;
}

/**
 * TPM2_ECDH_ZGen (Part 3 §14.5) with the certified ECC decrypt key: Z = x(d·inPoint), the shared
 * secret of one-pass Diffie-Hellman with the sender's ephemeral key (Part 1 Annex C.6.1), from
 * which the caller derives its key with KDFe (§11.4.10.3). Authorized as rsaOaepDecrypt is: an
 * HMAC session salted to a storage key with the encrypt attribute, so outPoint (Z) crosses the
 * bus AES-CFB encrypted and the response HMAC is checked. Returns Z, the point's x-coordinate.
 */
export async function ecdhZGen(scope: TpmScope, key: LoadedObject, inPoint: TPMS_ECC_POINT, options: EcdhZGenOptions = {}): Promise<Buffer> {
  if (options.salt === false) {
    return (await tpm2EcdhZGen(scope.client, key.handle, passwordAuth(options.keyAuth), inPoint)).x;
  }
  const salt = options.salt;
  return scope.nested(async (inner) => {
    const saltKey =
      salt ?? (options.parent !== undefined ? await resolveParent(inner, options.parent) : await getStoragePrimary(inner, options.storagePrimary));
    const session = await startSaltedSession(inner, saltKey, 'hmac', TPM_ALG_ID.TPM_ALG_SHA256);
    const auth = session.use({ entityName: key.name, authValue: options.keyAuth, encrypt: true });
    const outPoint = await tpm2EcdhZGen(scope.client, key.handle, auth, inPoint);
    inner.forget(session.sessionHandle);
    return outPoint.x;
  });
}
