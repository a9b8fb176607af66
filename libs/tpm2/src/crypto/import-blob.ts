import { marshal } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPMA_OBJECT } from '../constants';
import { digest, hashAlgorithm } from '../hash-algorithms';
import { objectName } from '../names';
import { SCHEME_NULL } from '../structures/schemes';
import { writeTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { writeTpm2bPrivate } from '../structures/tpm2b-private';
import { type KeyedHashPublic, marshalTpm2bPublic, type TPMT_PUBLIC } from '../structures/tpmt-public';
import { marshalTpm2bSensitive, MAX_SYM_DATA } from '../structures/tpmt-sensitive';
import { AuthPolicySizeError, SealedDataTooLargeError } from './errors';
import { ENCAPSULATION_LABEL, type EncapsulationOptions, labeledEncapsulate } from './labeled-encapsulation';
import { outerWrap, protectorParameters } from './outer-wrap';
import { draw, systemRandom } from './random';

/** The three inputs TPM2_Import (Part 3 §13.3) takes besides the parent, marshalled. */
export interface ImportBlob {
  /** objectPublic, TPM2B_PUBLIC (`tpm2_import -u`). */
  readonly public: Buffer;
  /** duplicate, TPM2B_PRIVATE (`tpm2_import -i`). */
  readonly duplicate: Buffer;
  /** inSymSeed, TPM2B_ENCRYPTED_SECRET (`tpm2_import -s`). */
  readonly inSymSeed: Buffer;
  /** The sealed object's public area and Name, for callers that bind to it. */
  readonly objectPublic: KeyedHashPublic;
  readonly name: Buffer;
}

export interface ImportBlobOptions extends EncapsulationOptions {
  /**
   * authPolicy of the sealed object (a PolicyPCR digest, a PolicyAuthorize digest, …), of the
   * nameAlg's digest size. Absent or empty: no policy, and Unseal takes the empty password.
   */
  readonly authPolicy?: Buffer;
  /** nameAlg of the sealed object. Default TPM_ALG_SHA256. */
  readonly nameAlg?: number;
}

/**
 * A sealed data object made outside the TPM and duplicated to `parentPublic` (an EK or other
 * storage key) with an outer wrapper only, as go-tpm-tools' CreateImportBlob does (Part 1 §23.3.2;
 * Part 3 §13.3 TPM2_Import with symmetricAlg NULL and an empty encryptionKey).
 *
 * Public area: keyedHash, scheme NULL (sealed data), unique = H_nameAlg(seedValue ‖ data).
 * objectAttributes: fixedTPM and fixedParent clear (else TPM_RC_ATTRIBUTES on Import: the object is
 * a duplicate), encryptedDuplication clear (no inner wrapper), sign and decrypt clear (a data
 * object); with a policy only adminWithPolicy (0x80), so userWithAuth is clear and Unseal, a USER
 * action, needs the policy; without one userWithAuth (0x40), so the empty password unseals.
 * Sensitive area: authValue empty, seedValue = digest-size random bytes (the TPM refuses any other
 * size), sensitive = data (≤ MAX_SYM_DATA).
 * Outer wrapper: seed encapsulated to the parent with label "DUPLICATE"; the object's Name is the
 * STORAGE context and is HMACed with dupSensitive; the parent's nameAlg and symmetric definition.
 */
export function createImportBlob(parentPublic: TPMT_PUBLIC, data: Buffer, options: ImportBlobOptions = {}): ImportBlob {
  const protector = protectorParameters(parentPublic, 'parent');
  if (data.length > MAX_SYM_DATA) {
    throw new SealedDataTooLargeError(data.length, MAX_SYM_DATA);
  }
  const nameAlg = options.nameAlg ?? TPM_ALG_ID.TPM_ALG_SHA256;
  const digestSize = hashAlgorithm(nameAlg).size;
  const authPolicy = options.authPolicy ?? Buffer.alloc(0);
  if (authPolicy.length !== 0 && authPolicy.length !== digestSize) {
    throw new AuthPolicySizeError(authPolicy.length, digestSize, nameAlg);
  }
  const random = options.random ?? systemRandom;

  const seedValue = draw(random, digestSize);
  const objectPublic: KeyedHashPublic = {
    type: TPM_ALG_ID.TPM_ALG_KEYEDHASH,
    nameAlg,
    objectAttributes: authPolicy.length === 0 ? TPMA_OBJECT.userWithAuth : TPMA_OBJECT.adminWithPolicy,
    authPolicy: Buffer.from(authPolicy),
    parameters: { scheme: SCHEME_NULL },
    unique: digest(nameAlg, seedValue, data),
  };
  // Marshalled once: the Name hashes the TPMT_PUBLIC inside the TPM2B_PUBLIC that TPM2_Import takes.
  const publicBytes = marshalTpm2bPublic(objectPublic);
  const name = objectName({ ...objectPublic, raw: publicBytes.subarray(2) });
  const sensitive = marshalTpm2bSensitive({
    sensitiveType: TPM_ALG_ID.TPM_ALG_KEYEDHASH,
    authValue: Buffer.alloc(0),
    seedValue,
    sensitive: Buffer.from(data),
  });

  // `options`, not the defaulted source: only an injected source also draws the OAEP seed (padding
  // built in JavaScript, to replay vectors); by default OpenSSL's OAEP pads, at under half the cost.
  const { seed, encryptedSecret } = labeledEncapsulate(protector.key, ENCAPSULATION_LABEL.DUPLICATE, options);
  const wrapped = outerWrap(protector, seed, name, sensitive);
  return {
    public: publicBytes,
    duplicate: marshal((w) => writeTpm2bPrivate(w, { integrityOuter: wrapped.integrityHMAC, encrypted: wrapped.encrypted })),
    inSymSeed: marshal((w) => writeTpm2bEncryptedSecret(w, encryptedSecret)),
    objectPublic,
    name,
  };
}
