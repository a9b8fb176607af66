import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';

/** Bytes of a data key (DEK) and of the AES-256-GCM DEK wrap a master key provider answers (ciphertext ‖ tag). */
export const DEK_BYTES = 32;
export const WRAP_NONCE_BYTES = 12;
export const WRAP_TAG_BYTES = 16;
export const WRAPPED_DEK_BYTES = DEK_BYTES + WRAP_TAG_BYTES;
export const KEK_ID_BYTES = 8;

/**
 * Where the key-encryption key (KEK) lives (docs/decisions.md, "Master-key providers and rotation").
 * A provider wraps and unwraps 32-byte data keys with AES-256-GCM (NIST SP 800-38D) under its KEK,
 * with the nonce and AAD the envelope gives; the KEK itself never leaves it: `env` keeps it in
 * process memory, `pkcs11` on a token that refuses to export it. Calls are synchronous (pkcs11js
 * is; a DEK wrap is one small operation).
 */
export interface MasterKeyProvider {
  /** The 8-byte KEK ID every blob sealed under this key carries: derived from a name, never the key bytes' secrecy. */
  readonly kekId: Buffer;
  /** For messages and audit records, e.g. `env` or `pkcs11:<key label>`: never key material. */
  readonly description: string;
  /** AES-256-GCM of `dek` (32 bytes) under the KEK: ciphertext ‖ 16-byte tag. */
  wrapDek(dek: Buffer, nonce: Buffer, aad: Buffer): Buffer;
  /** The DEK, or undefined when the tag does not verify (modified blob, other context, other key). */
  unwrapDek(wrapped: Buffer, nonce: Buffer, aad: Buffer): Buffer | undefined;
}

// Versioned domain tag: the KEK ID is not a hash a master key is used for anywhere else.
const ENV_KEK_ID_DOMAIN = Buffer.from('rackseal.envelope.kek-id.v1\n');

const MASTER_KEY_BYTES = 32;

/**
 * The `env` provider: the 32-byte master key (RACKSEAL_MASTER_KEY) in process memory, as
 * SecretBytes; each operation takes a copy and zeroes it. Its KEK ID is the one version-1 blobs
 * carry: SHA-256(domain ‖ key)[:8], so blobs sealed before providers existed still open.
 */
export class EnvMasterKey implements MasterKeyProvider {
  readonly kekId: Buffer;
  readonly description = 'env';

  constructor(private readonly key: SecretBytes) {
    if (!(key instanceof SecretBytes)) {
      throw new TypeError('the master key must be given as SecretBytes');
    }
    if (key.length !== MASTER_KEY_BYTES) {
      throw new RangeError(`the master key must be ${MASTER_KEY_BYTES} bytes, not ${key.length}`);
    }
    this.kekId = this.withKey((kek) => createHash('sha256').update(ENV_KEK_ID_DOMAIN).update(kek).digest().subarray(0, KEK_ID_BYTES));
  }

  wrapDek(dek: Buffer, nonce: Buffer, aad: Buffer): Buffer {
    return this.withKey((kek) => {
      const wrap = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: WRAP_TAG_BYTES });
      wrap.setAAD(aad);
      return Buffer.concat([wrap.update(dek), wrap.final(), wrap.getAuthTag()]);
    });
  }

  unwrapDek(wrapped: Buffer, nonce: Buffer, aad: Buffer): Buffer | undefined {
    if (wrapped.length !== WRAPPED_DEK_BYTES) {
      return undefined;
    }
    return this.withKey((kek) => {
      const unwrap = createDecipheriv('aes-256-gcm', kek, nonce, { authTagLength: WRAP_TAG_BYTES });
      unwrap.setAAD(aad);
      unwrap.setAuthTag(wrapped.subarray(DEK_BYTES));
      const head = unwrap.update(wrapped.subarray(0, DEK_BYTES));
      try {
        return Buffer.concat([head, unwrap.final()]);
      } catch {
        return undefined;
      } finally {
        head.fill(0);
      }
    });
  }

  private withKey<T>(use: (kek: Buffer) => T): T {
    const kek = this.key.reveal();
    try {
      return use(kek);
    } finally {
      kek.fill(0);
    }
  }
}

/**
 * The master keys a process holds: `current` seals; a blob opens under whichever key its KEK ID
 * names, `current` or one of `previous` — the keys a rotation is moving away from, kept until
 * `rackseal master-key rotate` reports done, so rows not yet re-wrapped still open meanwhile.
 */
export class MasterKeys {
  readonly previous: readonly MasterKeyProvider[];

  constructor(
    readonly current: MasterKeyProvider,
    previous: readonly MasterKeyProvider[] = [],
  ) {
    this.previous = previous.filter((key) => !key.kekId.equals(current.kekId));
  }

  /** The key whose KEK ID is `kekId`, if this process holds it. */
  find(kekId: Buffer): MasterKeyProvider | undefined {
    return [this.current, ...this.previous].find((key) => key.kekId.equals(kekId));
  }
}

/** What sealing and opening accept: the process's keys, one provider, or a bare env key (SecretBytes). */
export type MasterKeyInput = MasterKeys | MasterKeyProvider | SecretBytes;

/** `input` as MasterKeys; a SecretBytes is the env provider's key (checked: type and 32 bytes). */
export function masterKeysOf(input: MasterKeyInput): MasterKeys {
  if (input instanceof MasterKeys) {
    return input;
  }
  if (input instanceof SecretBytes) {
    return new MasterKeys(new EnvMasterKey(input));
  }
  if (typeof input === 'object' && input !== null && typeof (input as MasterKeyProvider).wrapDek === 'function') {
    return new MasterKeys(input);
  }
  throw new TypeError('the master key must be given as SecretBytes');
}
