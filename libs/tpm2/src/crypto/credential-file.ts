import { parseExact } from '../codec/tpm-reader';
import { marshal } from '../codec/tpm-writer';
import { readTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { readTpm2bIdObject, type TPMS_ID_OBJECT } from '../structures/tpm2b-id-object';
import type { MadeCredential } from './make-credential';

/**
 * tpm2-tools' credential file, as written by tpm2_makecredential and read by
 * tpm2_activatecredential -i: u32 magic 0xBADCC0DE ‖ u32 version 1 ‖ TPM2B_ID_OBJECT ‖
 * TPM2B_ENCRYPTED_SECRET, all big-endian.
 */
export const CREDENTIAL_FILE_MAGIC = 0xbadcc0de;
export const CREDENTIAL_FILE_VERSION = 1;

/** A parsed credential file: the two structures' exact bytes, and their parsed content. */
export interface CredentialFile extends MadeCredential {
  readonly idObject: TPMS_ID_OBJECT;
  /** TPM2B_ENCRYPTED_SECRET.secret */
  readonly secret: Buffer;
}

export function marshalCredentialFile(credential: MadeCredential): Buffer {
  return marshal((w) =>
    w.u32(CREDENTIAL_FILE_MAGIC).u32(CREDENTIAL_FILE_VERSION).bytes(credential.credentialBlob).bytes(credential.encryptedSecret),
  );
}

/** Parses a credential file; anything but exactly magic, version 1 and the two structures is a TpmParseError. */
export function parseCredentialFile(bytes: Uint8Array): CredentialFile {
  return parseExact(bytes, 'tpm2-tools credential file', (r) => {
    const magicOffset = r.offset;
    const magic = r.u32('magic');
    if (magic !== CREDENTIAL_FILE_MAGIC) {
      throw r.error('magic', `0x${magic.toString(16).padStart(8, '0')} is not 0xbadcc0de`, magicOffset);
    }
    const versionOffset = r.offset;
    const version = r.u32('version');
    if (version !== CREDENTIAL_FILE_VERSION) {
      throw r.error('version', `version ${version} is not ${CREDENTIAL_FILE_VERSION}`, versionOffset);
    }
    const blobStart = r.offset;
    const idObject = readTpm2bIdObject(r);
    const credentialBlob = r.rawSince(blobStart);
    const secretStart = r.offset;
    const secret = readTpm2bEncryptedSecret(r);
    return { credentialBlob, encryptedSecret: r.rawSince(secretStart), idObject, secret };
  });
}
