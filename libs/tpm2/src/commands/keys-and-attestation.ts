import { marshal } from '../codec/tpm-writer';
import { TPM_CC } from '../constants';
import { SCHEME_NULL, type TPMT_SCHEME, writeScheme } from '../structures/schemes';
import { type ParsedAttest, readTpm2bAttest } from '../structures/tpms-attest';
import { writeTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { type TPMS_ID_OBJECT, writeTpm2bIdObject } from '../structures/tpm2b-id-object';
import { readTpm2bPrivate, type TPM2B_PRIVATE, writeTpm2bPrivate } from '../structures/tpm2b-private';
import { writePcrSelection, type TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { readTpmtSignature, type TPMT_SIGNATURE, writeTpmtSignature } from '../structures/tpmt-signature';
import { SYM_NULL, type TPMT_SYM_DEF_OBJECT, writeSymDefObject } from '../structures/tpmt-sym-def-object';
import type { ParsedPublic, TPMS_ECC_POINT, TPMT_PUBLIC } from '../structures/tpmt-public';
import { readSized, type TpmReader } from '../codec/tpm-reader';
import type { CommandAuth } from '../client/session-protocol';
import type { TpmClient } from '../client/tpm-client';
import { writePublicArea } from './objects';
import { readTicket, type TPMT_TK } from './tickets';

/**
 * Commands that use a loaded key: credential activation and import (Part 3 §12.5, §13.3), Unseal
 * (§12.7), RSA_Decrypt (§14.3), ECDH_ZGen (§14.5), the attestations Certify and Quote (§18.2, §18.4) and
 * VerifySignature (§20.1). One function per command; authorization is the caller's.
 */

/**
 * A handle with its authorization. `name` (Part 1 §16) is needed for cpHash when any session of the
 * command is salted and this handle's own authorization is not that session.
 */
export interface AuthorizedHandle {
  readonly handle: number;
  readonly auth: CommandAuth;
  readonly name?: Buffer;
}

// Part 2 bounds: TPM2B_DIGEST / TPM2B_SENSITIVE_DATA (MAX_SYM_DATA 128) / TPM2B_PUBLIC_KEY_RSA.
const MAX_DIGEST = 64;
const MAX_SYM_DATA = 128;
const MAX_RSA_KEY_BYTES = 512;

/**
 * TPM2_ActivateCredential (Part 3 §12.5): the EK (keyHandle, USER role) recovers the seed from
 * `secret`, checks credentialBlob's HMAC against the Name of activateHandle (ADMIN role: an AK's
 * password, as its adminWithPolicy is clear) and returns the credential. A blob made for another
 * Name fails with TPM_RC_INTEGRITY on parameter 1.
 */
export async function tpm2ActivateCredential(
  client: TpmClient,
  activate: AuthorizedHandle,
  key: AuthorizedHandle,
  credentialBlob: TPMS_ID_OBJECT,
  secret: Buffer,
): Promise<Buffer> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_ActivateCredential,
    handles: [activate.handle, key.handle],
    names: [activate.name, key.name],
    sessions: [activate.auth, key.auth],
    parameters: marshal((w) => {
      writeTpm2bIdObject(w, credentialBlob);
      writeTpm2bEncryptedSecret(w, secret);
    }),
  });
  const r = response.parameters;
  const certInfo = r.tpm2b('certInfo', MAX_DIGEST);
  r.end();
  return certInfo;
}

export interface ImportInput {
  readonly objectPublic: TPMT_PUBLIC | ParsedPublic;
  readonly duplicate: TPM2B_PRIVATE;
  /** TPM2B_ENCRYPTED_SECRET's content: the outer wrapper's seed encapsulated to the parent. */
  readonly inSymSeed: Buffer;
  /** The inner wrapper's key; empty (and symmetricAlg NULL) for an outer-wrapped-only duplicate. */
  readonly encryptionKey?: Buffer;
  readonly symmetricAlg?: TPMT_SYM_DEF_OBJECT;
}

/**
 * TPM2_Import (Part 3 §13.3): re-wraps a duplicate under `parentHandle`, returning the private
 * area TPM2_Load takes. Nothing is loaded.
 */
export async function tpm2Import(client: TpmClient, parentHandle: number, parentAuth: CommandAuth, input: ImportInput): Promise<TPM2B_PRIVATE> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_Import,
    handles: [parentHandle],
    sessions: [parentAuth],
    parameters: marshal((w) => {
      w.tpm2b(input.encryptionKey ?? Buffer.alloc(0));
      writePublicArea(w, input.objectPublic);
      writeTpm2bPrivate(w, input.duplicate);
      writeTpm2bEncryptedSecret(w, input.inSymSeed);
      writeSymDefObject(w, input.symmetricAlg ?? SYM_NULL);
    }),
  });
  const r = response.parameters;
  const outPrivate = readTpm2bPrivate(r);
  r.end();
  return outPrivate;
}

/** TPM2_Unseal (Part 3 §12.7): the data of a loaded sealed (keyedHash data) object; USER role. */
export async function tpm2Unseal(client: TpmClient, itemHandle: number, itemAuth: CommandAuth): Promise<Buffer> {
  const response = await client.execute({ code: TPM_CC.TPM_CC_Unseal, handles: [itemHandle], sessions: [itemAuth] });
  const r = response.parameters;
  const outData = r.tpm2b('outData', MAX_SYM_DATA);
  r.end();
  return outData;
}

/**
 * TPM2_RSA_Decrypt (Part 3 §14.3) with an unrestricted decrypt key. inScheme is TPMT_RSA_DECRYPT
 * (TPM_ALG_OAEP + hash, TPM_ALG_RSAES, or NULL for the key's own scheme). The TPM refuses a label
 * whose last octet is not 0x00 (TPM_RC_VALUE): labels are NUL-terminated strings to it.
 */
export async function tpm2RsaDecrypt(
  client: TpmClient,
  keyHandle: number,
  keyAuth: CommandAuth,
  cipherText: Buffer,
  inScheme: TPMT_SCHEME,
  label: Buffer,
): Promise<Buffer> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_RSA_Decrypt,
    handles: [keyHandle],
    sessions: [keyAuth],
    parameters: marshal((w) => {
      w.tpm2b(cipherText);
      writeScheme(w, inScheme);
      w.tpm2b(label);
    }),
  });
  const r = response.parameters;
  const message = r.tpm2b('message', MAX_RSA_KEY_BYTES);
  r.end();
  return message;
}

// Part 2 §11.2.5.2 / §10.3.2: TPMS_ECC_POINT coordinates are TPM2B_ECC_PARAMETER (MAX_ECC_KEY_BYTES 128).
const MAX_ECC_KEY_BYTES = 128;

/**
 * TPM2_ECDH_ZGen (Part 3 §14.5): with an unrestricted ECC decrypt key (USER role), the point
 * d·inPoint, whose x-coordinate is the Diffie-Hellman Z of the ephemeral key inPoint and the
 * loaded key. outPoint is TPM2B_ECC_POINT, the response's first parameter: a session with the
 * encrypt attribute carries it AES-CFB encrypted, as it is the secret Z. inPoint off the key's
 * curve is TPM_RC_ECC_POINT; a restricted or non-decrypt key TPM_RC_ATTRIBUTES / TPM_RC_KEY.
 */
export async function tpm2EcdhZGen(client: TpmClient, keyHandle: number, keyAuth: CommandAuth, inPoint: TPMS_ECC_POINT): Promise<TPMS_ECC_POINT> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_ECDH_ZGen,
    handles: [keyHandle],
    sessions: [keyAuth],
    parameters: marshal((w) => {
      w.sized((inner) => inner.tpm2b(inPoint.x).tpm2b(inPoint.y));
    }),
  });
  const r = response.parameters;
  const outPoint = readSized(r, 'outPoint', (p) => {
    const x = p.tpm2b('outPoint.x', MAX_ECC_KEY_BYTES);
    return { x, y: p.tpm2b('outPoint.y', MAX_ECC_KEY_BYTES) };
  });
  r.end();
  return outPoint;
}

/** An attestation structure signed by the TPM, with the exact bytes verifiers and tpm2-tools use. */
export interface SignedAttestation {
  /** TPMS_ATTEST, parsed; `raw` is the signed bytes (`tpm2_quote -m`, `tpm2_certify -o`). */
  readonly attest: ParsedAttest;
  readonly signature: TPMT_SIGNATURE;
  /** TPMT_SIGNATURE as the TPM returned it (`tpm2_quote -s`). */
  readonly signatureBytes: Buffer;
}

function readSignedAttestation(r: TpmReader): SignedAttestation {
  const attest = readTpm2bAttest(r);
  const start = r.offset;
  const signature = readTpmtSignature(r);
  const signatureBytes = r.rawSince(start);
  r.end();
  return { attest, signature, signatureBytes };
}

/**
 * TPM2_Certify (Part 3 §18.2): signHandle (USER) signs that objectHandle (ADMIN) is loaded in this
 * TPM, with its Name and qualifyingData (the verifier's nonce). inScheme NULL: the signing key's
 * own scheme.
 */
export async function tpm2Certify(
  client: TpmClient,
  object: { readonly handle: number; readonly auth: CommandAuth },
  sign: { readonly handle: number; readonly auth: CommandAuth },
  qualifyingData: Buffer,
  inScheme: TPMT_SCHEME = SCHEME_NULL,
): Promise<SignedAttestation> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_Certify,
    handles: [object.handle, sign.handle],
    sessions: [object.auth, sign.auth],
    parameters: marshal((w) => {
      w.tpm2b(qualifyingData);
      writeScheme(w, inScheme);
    }),
  });
  return readSignedAttestation(response.parameters);
}

/**
 * TPM2_Quote (Part 3 §18.4): signHandle (USER) signs the digest of the selected PCRs with
 * qualifyingData. The digest uses the signing scheme's hash, whatever the banks.
 */
export async function tpm2Quote(
  client: TpmClient,
  signHandle: number,
  signAuth: CommandAuth,
  qualifyingData: Buffer,
  PCRselect: TPML_PCR_SELECTION,
  inScheme: TPMT_SCHEME = SCHEME_NULL,
): Promise<SignedAttestation> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_Quote,
    handles: [signHandle],
    sessions: [signAuth],
    parameters: marshal((w) => {
      w.tpm2b(qualifyingData);
      writeScheme(w, inScheme);
      writePcrSelection(w, PCRselect);
    }),
  });
  return readSignedAttestation(response.parameters);
}

/**
 * TPM2_VerifySignature (Part 3 §20.1): checks `signature` over `digest` with a loaded public key
 * (no authorization). The ticket (TPM_ST_VERIFIED) proves it to PolicyAuthorize; for a key in
 * TPM_RH_NULL it is a NULL ticket. A bad signature is TPM_RC_SIGNATURE on parameter 2.
 */
export async function tpm2VerifySignature(client: TpmClient, keyHandle: number, digest: Buffer, signature: TPMT_SIGNATURE): Promise<TPMT_TK> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_VerifySignature,
    handles: [keyHandle],
    parameters: marshal((w) => {
      w.tpm2b(digest);
      writeTpmtSignature(w, signature);
    }),
  });
  const r = response.parameters;
  const validation = readTicket(r, 'validation');
  r.end();
  return validation;
}
