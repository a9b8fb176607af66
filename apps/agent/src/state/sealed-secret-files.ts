import { join } from 'node:path';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import {
  type KeyBlob,
  KeyBlobFormatError,
  marshalKeyBlob,
  NotASealedSecretError,
  SealedSecretRefusedError,
  sealSecret,
  type StoragePrimaryOptions,
  type TpmClient,
  TpmParseError,
  unmarshalKeyBlob,
  unsealSecret,
  type UnsealSecretOptions,
  withTpmScope,
} from '@rackseal/tpm2';
import { StateCorruptError, StateForeignTpmError } from './state-errors';
import { readStateFile, writeStateFile } from './state-files';

/*
 * The TPM half of StateDir's sealed secrets (state-dir.ts saveSealedSecret, loadSealedSecret), which
 * loads this file by import(): boot unlock opens the state dir for identity.json and its approvals
 * only, and must not load libs/tpm2's sealing code with it (docs/decisions.md "Boot unlock loads
 * single files"). `file` is the name StateDir checked (`<name>.sealed`).
 */

/** A sealed-secret key blob is under 400 bytes with the P-256 SRK, under 700 with the RSA one. */
const MAX_SEALED_BYTES = 4 * 1024;

/** Seals `secret` under this TPM's storage key and writes the blob (never the secret) as `file`. */
export async function sealToStateFile(dir: string, file: string, tpm: TpmClient, secret: SecretBytes | Buffer, options: StoragePrimaryOptions): Promise<void> {
  const bytes = secret instanceof SecretBytes ? secret.reveal() : secret;
  try {
    const blob = await withTpmScope(tpm, (scope) => sealSecret(scope, bytes, options));
    await writeStateFile(dir, file, marshalKeyBlob(blob));
  } finally {
    if (bytes !== secret) {
      bytes.fill(0); // our copy; the caller's SecretBytes keeps its own
    }
  }
}

/** The secret `file` holds, unsealed by this TPM (the refusals are StateDir.loadSealedSecret's). */
export async function unsealStateFile(dir: string, file: string, tpm: TpmClient, options: UnsealSecretOptions): Promise<SecretBytes> {
  const path = join(dir, file);
  const bytes = await readStateFile(dir, file, MAX_SEALED_BYTES);
  let blob: KeyBlob;
  try {
    blob = unmarshalKeyBlob(bytes);
  } catch (error) {
    if (error instanceof TpmParseError) {
      throw new StateCorruptError(path, `truncated or malformed key blob: ${error.message}`, { cause: error });
    }
    if (error instanceof KeyBlobFormatError) {
      throw new StateCorruptError(path, error.message, { cause: error });
    }
    throw error;
  }
  let unsealed: Buffer;
  try {
    unsealed = await withTpmScope(tpm, (scope) => unsealSecret(scope, blob, options));
  } catch (error) {
    if (error instanceof NotASealedSecretError) {
      throw new StateCorruptError(path, error.message, { cause: error });
    }
    if (error instanceof SealedSecretRefusedError) {
      throw new StateForeignTpmError(path, error.reason, { cause: error });
    }
    throw error;
  }
  try {
    return new SecretBytes(unsealed);
  } finally {
    unsealed.fill(0); // SecretBytes keeps a copy
  }
}
