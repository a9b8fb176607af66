import { join, resolve } from 'node:path';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import type { TpmClient } from '@rackseal/tpm2/client/tpm-client';
import type { StoragePrimaryOptions } from '@rackseal/tpm2/operations/storage-primary';
import type { UnsealSecretOptions } from '@rackseal/tpm2/operations/sealed-secret';
import { IdentityFormatError, type NodeIdentity, parseIdentity, serializeIdentity } from './node-identity';
import { StateCorruptError } from './state-errors';
import { ensureStateDirectory, readStateFile, writeStateFile } from './state-files';

export const IDENTITY_FILE = 'identity.json';
const SEALED_SUFFIX = '.sealed';

/** identity.json is a few hundred bytes. */
const MAX_IDENTITY_BYTES = 16 * 1024;

/** Sealed secrets are files named after them: lowercase letters, digits and dashes. */
const SECRET_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** A sealed secret's name that is not a plain file name (a caller's mistake, refused before any I/O). */
export class InvalidSecretNameError extends Error {
  constructor(name: string) {
    super(`sealed secret name ${JSON.stringify(name)} must be 1 to 64 of a-z 0-9 - (not starting with -)`);
    this.name = 'InvalidSecretNameError';
  }
}

function sealedFile(name: string): string {
  if (!SECRET_NAME.test(name)) {
    throw new InvalidSecretNameError(name);
  }
  return `${name}${SEALED_SUFFIX}`;
}

/**
 * The agent's state dir (`--state-dir`): identity.json, the non-secret record of the enrollment,
 * and `<name>.sealed` files, each a KeyBlob (libs/tpm2 key-blob.ts) of a secret sealed under this
 * TPM's storage key. Nothing in it is useful without that TPM: a copy on another machine is
 * refused with StateForeignTpmError. Files are replaced atomically, mode 0600, in a directory of
 * mode 0700 (state-files.ts); every failure is a StateDirError naming the file and the cause.
 */
export class StateDir {
  private constructor(readonly path: string) {}

  /**
   * The state dir at `path`, checked (owned by the agent's user, writable by nobody else). A missing
   * dir is created with mode 0700 when `create` (enroll), else StateNotEnrolledError (run, status).
   */
  static async open(path: string, options: { readonly create?: boolean } = {}): Promise<StateDir> {
    const absolute = resolve(path);
    await ensureStateDirectory(absolute, options.create ?? false);
    return new StateDir(absolute);
  }

  async saveIdentity(identity: NodeIdentity): Promise<void> {
    await writeStateFile(this.path, IDENTITY_FILE, serializeIdentity(identity));
  }

  async loadIdentity(): Promise<NodeIdentity> {
    const bytes = await readStateFile(this.path, IDENTITY_FILE, MAX_IDENTITY_BYTES);
    try {
      return parseIdentity(bytes);
    } catch (error) {
      if (error instanceof IdentityFormatError) {
        throw new StateCorruptError(join(this.path, IDENTITY_FILE), error.reason, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Seals `secret` (1 to 128 bytes) in the TPM under its storage key and writes the blob as
   * `<name>.sealed`; the secret itself is never written. TPM failures are libs/tpm2's errors.
   * The TPM code is loaded by import() (sealed-secret-files.ts): boot unlock reads identity.json
   * only and does not load it (docs/decisions.md "Boot unlock loads single files").
   */
  async saveSealedSecret(tpm: TpmClient, name: string, secret: SecretBytes | Buffer, options: StoragePrimaryOptions = {}): Promise<void> {
    const file = sealedFile(name);
    await (await import('./sealed-secret-files')).sealToStateFile(this.path, file, tpm, secret, options);
  }

  /**
   * The secret `<name>.sealed` holds, unsealed by this TPM. Missing: StateNotEnrolledError; not a
   * sealed-secret blob: StateCorruptError; sealed by another TPM (a copied state dir), or altered:
   * StateForeignTpmError. Other TPM failures are libs/tpm2's errors. As SecretBytes, so that no log
   * line or error can print it by accident.
   */
  async loadSealedSecret(tpm: TpmClient, name: string, options: UnsealSecretOptions = {}): Promise<SecretBytes> {
    const file = sealedFile(name);
    return (await import('./sealed-secret-files')).unsealStateFile(this.path, file, tpm, options);
  }
}
