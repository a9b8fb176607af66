import { TPM_ALG_ID, TPMA_OBJECT } from '../constants';
import { SessionAuthorization } from '../client/salted-session';
import { passwordAuth } from '../client/session-auth';
import { TpmError } from '../client/tpm-errors';
import { SealedDataTooLargeError } from '../crypto/errors';
import { tpm2Unseal } from '../commands/keys-and-attestation';
import { tpm2Create } from '../commands/objects';
import { TpmAnswerError } from '../commands/tpm-answer-error';
import { MAX_SYM_DATA } from '../structures/tpmt-sensitive';
import type { TPMT_PUBLIC } from '../structures/tpmt-public';
import { SEALED_SECRET_TEMPLATE } from '../templates';
import { type KeyBlob, KeyBlobParentError, loadKeyBlobUnder, resolveParent } from './key-blob';
import { sameShape } from './loaded-object';
import { type SessionSalt, startSaltedSession } from './session-salt';
import { getStoragePrimary, type StoragePrimaryOptions } from './storage-primary';
import type { TpmScope } from './tpm-scope';

/** An empty secret: nothing to seal (and Create would make an object that unseals to nothing). */
export class EmptySealedSecretError extends Error {
  constructor() {
    super('a sealed secret must hold at least one byte');
    this.name = 'EmptySealedSecretError';
  }
}

/**
 * The blob's public area is not a sealed secret as sealSecret makes it (SEALED_SECRET_TEMPLATE's
 * shape): another kind of key blob, or one whose attributes would let the object leave the TPM.
 */
export class NotASealedSecretError extends Error {
  constructor(reason: string) {
    super(`not a sealed secret: ${reason}`);
    this.name = 'NotASealedSecretError';
  }
}

/**
 * Why this TPM will not load a sealed secret's blob:
 *   other-parent  the storage key the blob names is not in this TPM (a blob from another TPM, or the
 *                 owner hierarchy was cleared since): found before any Load.
 *   integrity     TPM2_Load answered TPM_RC_INTEGRITY: the private area was not wrapped by this
 *                 parent, or it or the public area was altered (the TPM checks the private area's
 *                 HMAC over the Name first, and cannot tell the cases apart). Other refusals of
 *                 TPM2_Load stay TpmError.
 */
export type SealedSecretRefusal = 'other-parent' | 'integrity';

/** This TPM refused to load a sealed secret's blob; `reason` says why, `cause` has the detail. */
export class SealedSecretRefusedError extends Error {
  constructor(
    readonly reason: SealedSecretRefusal,
    override readonly cause: KeyBlobParentError | TpmError,
  ) {
    const why = {
      'other-parent': 'it was sealed under a storage key this TPM does not have (another TPM, or this one was cleared)',
      integrity: 'the TPM found its private area was not made under this TPM\'s storage key, or was altered',
    }[reason];
    super(`this TPM cannot load the sealed secret: ${why} (${cause.message})`);
    this.name = 'SealedSecretRefusedError';
  }
}

/**
 * A sealed secret's public area must have SEALED_SECRET_TEMPLATE's shape: a keyedHash data object
 * (sign and decrypt clear, scheme NULL) that is fixedTPM and fixedParent. Checked before any TPM
 * command, so another kind of blob is refused by name rather than by Unseal's TPM_RC_TYPE.
 */
export function checkSealedSecretPublic(pub: TPMT_PUBLIC): void {
  if (pub.type !== TPM_ALG_ID.TPM_ALG_KEYEDHASH) {
    throw new NotASealedSecretError(`its object type is 0x${pub.type.toString(16)}, not TPM_ALG_KEYEDHASH`);
  }
  if (!sameShape(pub, SEALED_SECRET_TEMPLATE)) {
    const missing = (pub.objectAttributes & (TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent)) !== (TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent);
    throw new NotASealedSecretError(
      missing
        ? `fixedTPM and fixedParent must both be set (attributes 0x${pub.objectAttributes.toString(16).padStart(8, '0')})`
        : `its public area differs from the sealed-secret template (attributes 0x${pub.objectAttributes.toString(16).padStart(8, '0')})`,
    );
  }
}

export interface SealSecretOptions extends StoragePrimaryOptions {
  /**
   * The key the Create session is salted to; default the storage primary the secret is sealed
   * under. `false`: the secret crosses the bus in clear; only the bus-capture test's negative
   * control asks for that.
   */
  readonly salt?: SessionSalt;
}

/**
 * Seals `secret` (1..MAX_SYM_DATA bytes) in this TPM: TPM2_Create (Part 3 §12.1) of a sealed data
 * object from SEALED_SECRET_TEMPLATE under the storage primary key (persisted or derived, as
 * getStoragePrimary finds it), the secret as inSensitive.data. The result is a KeyBlob recording the
 * parent; its private area is encrypted and integrity-protected under that SRK, which never leaves
 * the TPM, so the blob is useless anywhere else. Nothing stays loaded: the SRK, if derived, is flushed.
 * The Create runs in an HMAC session salted to that SRK with the decrypt attribute, so the secret
 * crosses the bus AES-CFB encrypted (Part 1 §21), never in clear.
 */
export async function sealSecret(scope: TpmScope, secret: Buffer, options: SealSecretOptions = {}): Promise<KeyBlob> {
  if (secret.length === 0) {
    throw new EmptySealedSecretError();
  }
  if (secret.length > MAX_SYM_DATA) {
    throw new SealedDataTooLargeError(secret.length, MAX_SYM_DATA);
  }
  return scope.nested(async (inner) => {
    const srk = await getStoragePrimary(inner, options);
    // The SRK is userWithAuth with an empty authValue. Salted, an HMAC session authorizes it and
    // encrypts inSensitive, Create's first parameter, which holds the secret (Part 1 §21). There is
    // no recorded Name to check the SRK against yet: the blob records this one from now on.
    const salt = options.salt === undefined ? srk : options.salt;
    const auth =
      salt === false
        ? passwordAuth()
        : (await startSaltedSession(inner, salt, 'hmac', TPM_ALG_ID.TPM_ALG_SHA256)).use({ entityName: srk.name, decrypt: true });
    const created = await tpm2Create(inner.client, srk.handle, auth, SEALED_SECRET_TEMPLATE, {
      inSensitive: { userAuth: Buffer.alloc(0), data: secret },
    });
    if (auth instanceof SessionAuthorization) {
      inner.forget(auth.session.sessionHandle);
    }
    if (!sameShape(created.outPublic, SEALED_SECRET_TEMPLATE)) {
      throw new TpmAnswerError('TPM2_Create', 'the sealed object\'s public area is not the template that was asked for');
    }
    return { parent: srk.descriptor, public: created.outPublic, private: created.outPrivate };
  });
}

export interface UnsealSecretOptions {
  /** The owner hierarchy's authValue, to re-derive the SRK; empty by default. */
  readonly hierarchyAuth?: Buffer;
  /**
   * The key the Unseal session is salted to; default the blob's parent (the SRK whose Name the blob
   * records). `false`: the secret crosses the bus in clear; only the bus-capture test's negative
   * control asks for that.
   */
  readonly salt?: SessionSalt;
}

/**
 * The secret a sealSecret blob holds: its parent found or re-derived with the Name the blob records
 * (resolveParent), TPM2_Load, then TPM2_Unseal (Part 3 §12.7). The Unseal is authorized by an HMAC
 * session salted to that parent, with the encrypt attribute: outData crosses the bus AES-CFB
 * encrypted and its response HMAC is checked (Part 1 §19.6, §21). The object, the session and any
 * derived SRK are flushed before this returns or throws. A blob this TPM cannot load is
 * SealedSecretRefusedError.
 */
export async function unsealSecret(scope: TpmScope, blob: KeyBlob, options: UnsealSecretOptions = {}): Promise<Buffer> {
  checkSealedSecretPublic(blob.public);
  return scope.nested(async (inner) => {
    const { item, parent } = await (async () => {
      const found = await resolveParent(inner, blob.parent, options.hierarchyAuth);
      return { parent: found, item: await loadKeyBlobUnder(inner, found, blob) };
    })().catch((error: unknown) => {
      throw refusal(error);
    });
    const salt = options.salt === undefined ? parent : options.salt;
    if (salt === false) {
      return tpm2Unseal(inner.client, item.handle, passwordAuth());
    }
    const session = await startSaltedSession(inner, salt, 'hmac', TPM_ALG_ID.TPM_ALG_SHA256);
    const data = await tpm2Unseal(inner.client, item.handle, session.use({ entityName: item.name, encrypt: true }));
    inner.forget(session.sessionHandle);
    return data;
  });
}

/** What a failed loadKeyBlob means for a sealed secret; anything else (transport, auth) as it was. */
function refusal(error: unknown): unknown {
  if (error instanceof KeyBlobParentError) {
    return new SealedSecretRefusedError('other-parent', error);
  }
  if (error instanceof TpmError && error.command === 'TPM2_Load' && error.is('TPM_RC_INTEGRITY')) {
    return new SealedSecretRefusedError('integrity', error);
  }
  return error;
}
