import { join, resolve } from 'node:path';
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
import { IdentityFormatError, type NodeIdentity, parseIdentity, serializeIdentity } from './node-identity';
import { StateCorruptError, StateForeignTpmError } from './state-errors';
import { ensureStateDirectory, readStateFile, writeStateFile } from './state-files';

export const IDENTITY_FILE = 'identity.json';
const SEALED_SUFFIX = '.sealed';

/** identity.json is a few hundred bytes. */
const MAX_IDENTITY_BYTES = 16 * 1024;
/** A sealed-secret key blob is under 400 bytes with the P-256 SRK, under 700 with the RSA one. */
const MAX_SEALED_BYTES = 4 * 1024;

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
   */
  async saveSealedSecret(tpm: TpmClient, name: string, secret: SecretBytes | Buffer, options: StoragePrimaryOptions = {}): Promise<void> {
    const file = sealedFile(name);
    const bytes = secret instanceof SecretBytes ? secret.reveal() : secret;
    try {
      const blob = await withTpmScope(tpm, (scope) => sealSecret(scope, bytes, options));
      await writeStateFile(this.path, file, marshalKeyBlob(blob));
    } finally {
      if (bytes !== secret) {
        bytes.fill(0); // our copy; the caller's SecretBytes keeps its own
      }
    }
  }

  /**
   * The secret `<name>.sealed` holds, unsealed by this TPM. Missing: StateNotEnrolledError; not a
   * sealed-secret blob: StateCorruptError; sealed by another TPM (a copied state dir), or altered:
   * StateForeignTpmError. Other TPM failures are libs/tpm2's errors. As SecretBytes, so that no log
   * line or error can print it by accident.
   */
  async loadSealedSecret(tpm: TpmClient, name: string, options: UnsealSecretOptions = {}): Promise<SecretBytes> {
    const file = sealedFile(name);
    const path = join(this.path, file);
    const bytes = await readStateFile(this.path, file, MAX_SEALED_BYTES);
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
}
