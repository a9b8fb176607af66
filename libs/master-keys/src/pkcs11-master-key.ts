import { createHash, randomBytes } from 'node:crypto';
import type { SecretBytes } from '@rackseal/config';
import { DEK_BYTES, KEK_ID_BYTES, type MasterKeyProvider, WRAP_TAG_BYTES, WRAPPED_DEK_BYTES } from '@rackseal/envelope';
import * as pkcs11js from 'pkcs11js';
import { MasterKeyUnavailableError } from './master-key-errors';

/** Where the token is: the PKCS#11 module, the token's label and its user PIN (config `masterKey.pkcs11`). */
export interface Pkcs11TokenSettings {
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: SecretBytes;
}

// A versioned domain of its own: a pkcs11 KEK ID can never equal an env one by construction of the input.
const PKCS11_KEK_ID_DOMAIN = Buffer.from('rackseal.envelope.kek-id.pkcs11.v1\n');

/** CKA_ID of a key `master-key init` creates: random, so two keys of one label on two tokens differ. */
const KEY_ID_BYTES = 16;

/**
 * C_Decrypt answers of a GCM tag that does not verify: PKCS#11 v2.40 §2.12 gives
 * CKR_ENCRYPTED_DATA_INVALID, v3.0 adds CKR_AEAD_DECRYPT_FAILED, and SoftHSM 2.6 answers
 * CKR_GENERAL_ERROR. Any other code is the token failing, not the blob.
 */
const TAG_REFUSALS = new Set([0x40 /* ENCRYPTED_DATA_INVALID */, 0x41 /* ENCRYPTED_DATA_LEN_RANGE */, 0x35 /* AEAD_DECRYPT_FAILED */, 0x05 /* GENERAL_ERROR */]);

/** One loaded module per path in a process: C_Initialize may run once per process (PKCS#11 v2.40 §5.4). */
const loaded = new Map<string, { pkcs11: pkcs11js.PKCS11; users: number }>();

function acquireModule(path: string): pkcs11js.PKCS11 {
  const entry = loaded.get(path);
  if (entry !== undefined) {
    entry.users++;
    return entry.pkcs11;
  }
  const pkcs11 = new pkcs11js.PKCS11();
  try {
    pkcs11.load(path);
    pkcs11.C_Initialize();
  } catch (error) {
    throw new MasterKeyUnavailableError(`the PKCS#11 module ${path} does not load: ${describe(error)}`);
  }
  loaded.set(path, { pkcs11, users: 1 });
  return pkcs11;
}

function releaseModule(path: string): void {
  const entry = loaded.get(path);
  if (entry === undefined || --entry.users > 0) {
    return;
  }
  loaded.delete(path);
  try {
    entry.pkcs11.C_Finalize();
    entry.pkcs11.close();
  } catch {
    // Closing at shutdown: nothing left to protect.
  }
}

/** A PKCS#11 error as text: its CKR name, never an argument (the PIN is an argument of C_Login). */
function describe(error: unknown): string {
  if (error instanceof pkcs11js.Pkcs11Error) {
    return error.message.split(/[:\n]/)[0] ?? 'PKCS#11 error';
  }
  return error instanceof Error ? error.message : String(error);
}

/** A logged-in session on the token labelled `tokenLabel`; one per process and token is enough (calls are synchronous). */
export class Pkcs11Token {
  private closed = false;

  private constructor(
    readonly settings: Pkcs11TokenSettings,
    readonly pkcs11: pkcs11js.PKCS11,
    readonly session: Buffer,
  ) {}

  /** Opens the module, finds exactly one token of the label and logs in with the PIN. */
  static open(settings: Pkcs11TokenSettings): Pkcs11Token {
    const pkcs11 = acquireModule(settings.module);
    try {
      const slots = pkcs11.C_GetSlotList(true).filter((slot) => pkcs11.C_GetTokenInfo(slot).label.trimEnd() === settings.tokenLabel);
      if (slots.length !== 1) {
        throw new MasterKeyUnavailableError(
          `the PKCS#11 module ${settings.module} has ${slots.length === 0 ? 'no' : slots.length} token(s) labelled "${settings.tokenLabel}"${slots.length === 0 ? '' : '; labels must be unique'}`,
        );
      }
      const session = pkcs11.C_OpenSession(slots[0]!, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        pkcs11.C_Login(session, pkcs11js.CKU_USER, settings.pin.reveal().toString('ascii'));
      } catch (error) {
        // Login state is per token and application: another Pkcs11Token of this process logged in already.
        if (!(error instanceof pkcs11js.Pkcs11Error && error.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN)) {
          pkcs11.C_CloseSession(session);
          throw new MasterKeyUnavailableError(`the PKCS#11 token "${settings.tokenLabel}" refused the login (PKCS11_PIN): ${describe(error)}`);
        }
      }
      return new Pkcs11Token(settings, pkcs11, session);
    } catch (error) {
      releaseModule(settings.module);
      throw error instanceof MasterKeyUnavailableError ? error : new MasterKeyUnavailableError(`the PKCS#11 token "${settings.tokenLabel}" cannot be used: ${describe(error)}`);
    }
  }

  /** Handles of the secret keys labelled `label`. */
  keysLabelled(label: string): Buffer[] {
    this.pkcs11.C_FindObjectsInit(this.session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    try {
      return this.pkcs11.C_FindObjects(this.session, 16);
    } finally {
      this.pkcs11.C_FindObjectsFinal(this.session);
    }
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    try {
      this.pkcs11.C_CloseSession(this.session);
    } catch {
      // Already gone with the module: nothing to release.
    }
    releaseModule(this.settings.module);
  }
}

/**
 * The `pkcs11` provider: an AES-256 key that was generated on the token and can never leave it
 * (CKA_SENSITIVE and CKA_ALWAYS_SENSITIVE true, CKA_EXTRACTABLE false and CKA_NEVER_EXTRACTABLE
 * true, checked whenever it is found). The token wraps and unwraps each DEK itself with CKM_AES_GCM
 * (C_Encrypt/C_Decrypt, PKCS#11 v2.40 §2.12.2) with the envelope's nonce and AAD, which gives the
 * same 48-byte wrap as the env provider, so one blob layout serves both.
 */
export class Pkcs11MasterKey implements MasterKeyProvider {
  readonly description: string;

  private constructor(
    private readonly token: Pkcs11Token,
    /** The key object's handle in the token's session (tests read its attributes back through it). */
    readonly handle: Buffer,
    readonly label: string,
    readonly kekId: Buffer,
  ) {
    this.description = `pkcs11:${label}`;
  }

  /**
   * Generates the key `label` on the token (`rackseal master-key init`): refused when a key of that
   * label exists, so two keys never answer to one label.
   */
  static create(token: Pkcs11Token, label: string): Pkcs11MasterKey {
    if (token.keysLabelled(label).length > 0) {
      throw new MasterKeyUnavailableError(`the PKCS#11 token "${token.settings.tokenLabel}" already has a key labelled "${label}"`);
    }
    token.pkcs11.C_GenerateKey(token.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_SIGN, value: false },
      { type: pkcs11js.CKA_VERIFY, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: randomBytes(KEY_ID_BYTES) },
    ]);
    return Pkcs11MasterKey.find(token, label);
  }

  /** The key `label`: exactly one, an AES-256 key that was born on the token and never left it. */
  static find(token: Pkcs11Token, label: string): Pkcs11MasterKey {
    const where = `the PKCS#11 token "${token.settings.tokenLabel}"`;
    const handles = token.keysLabelled(label);
    if (handles.length !== 1) {
      throw new MasterKeyUnavailableError(
        handles.length === 0
          ? `${where} has no key labelled "${label}" (create it once with \`rackseal master-key init\`)`
          : `${where} has ${handles.length} keys labelled "${label}"; a label must name one key`,
      );
    }
    const handle = handles[0]!;
    const attributes = readAttributes(token, handle);
    const problems = [
      attributes.keyType !== pkcs11js.CKK_AES || attributes.valueLen !== 32 ? 'not an AES-256 key' : undefined,
      attributes.extractable ? 'CKA_EXTRACTABLE is true' : undefined,
      attributes.neverExtractable ? undefined : 'CKA_NEVER_EXTRACTABLE is false (it was exportable once)',
      attributes.sensitive ? undefined : 'CKA_SENSITIVE is false',
      attributes.alwaysSensitive ? undefined : 'CKA_ALWAYS_SENSITIVE is false (it was imported or readable once)',
      attributes.encrypt && attributes.decrypt ? undefined : 'it may not encrypt and decrypt',
    ].filter((p) => p !== undefined);
    if (problems.length > 0) {
      throw new MasterKeyUnavailableError(`the key "${label}" of ${where} may not be a master key: ${problems.join('; ')}`);
    }
    const kekId = createHash('sha256')
      .update(PKCS11_KEK_ID_DOMAIN)
      .update(Buffer.from(label, 'ascii'))
      .update(Buffer.from([0]))
      .update(attributes.id)
      .digest()
      .subarray(0, KEK_ID_BYTES);
    return new Pkcs11MasterKey(token, handle, label, kekId);
  }

  wrapDek(dek: Buffer, nonce: Buffer, aad: Buffer): Buffer {
    const { pkcs11, session } = this.token;
    pkcs11.C_EncryptInit(session, gcm(nonce, aad), this.handle);
    return Buffer.from(pkcs11.C_Encrypt(session, dek, Buffer.alloc(WRAPPED_DEK_BYTES + 16)));
  }

  unwrapDek(wrapped: Buffer, nonce: Buffer, aad: Buffer): Buffer | undefined {
    if (wrapped.length !== WRAPPED_DEK_BYTES) {
      return undefined;
    }
    const { pkcs11, session } = this.token;
    const out = Buffer.alloc(WRAPPED_DEK_BYTES);
    try {
      pkcs11.C_DecryptInit(session, gcm(nonce, aad), this.handle);
      const dek = pkcs11.C_Decrypt(session, wrapped, out);
      return dek.length === DEK_BYTES ? Buffer.from(dek) : undefined;
    } catch (error) {
      if (error instanceof pkcs11js.Pkcs11Error && TAG_REFUSALS.has(error.code)) {
        return undefined;
      }
      throw new MasterKeyUnavailableError(`the PKCS#11 token "${this.token.settings.tokenLabel}" failed to unwrap a data key: ${describe(error)}`);
    } finally {
      out.fill(0);
    }
  }
}

/** CKM_AES_GCM with a 96-bit nonce and a 128-bit tag (NIST SP 800-38D §5.2.1). */
function gcm(nonce: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.AesGCM = { type: pkcs11js.CK_PARAMS_AES_GCM, iv: nonce, aad, ivBits: nonce.length * 8, tagBits: WRAP_TAG_BYTES * 8 };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

/** The key's security attributes, read back from the token (what the tests check too). */
export interface Pkcs11KeyAttributes {
  readonly keyType: number;
  readonly valueLen: number;
  readonly id: Buffer;
  readonly sensitive: boolean;
  readonly alwaysSensitive: boolean;
  readonly extractable: boolean;
  readonly neverExtractable: boolean;
  readonly encrypt: boolean;
  readonly decrypt: boolean;
}

export function readAttributes(token: Pkcs11Token, handle: Buffer): Pkcs11KeyAttributes {
  const types = [
    pkcs11js.CKA_KEY_TYPE,
    pkcs11js.CKA_VALUE_LEN,
    pkcs11js.CKA_ID,
    pkcs11js.CKA_SENSITIVE,
    pkcs11js.CKA_ALWAYS_SENSITIVE,
    pkcs11js.CKA_EXTRACTABLE,
    pkcs11js.CKA_NEVER_EXTRACTABLE,
    pkcs11js.CKA_ENCRYPT,
    pkcs11js.CKA_DECRYPT,
  ];
  const values = token.pkcs11.C_GetAttributeValue(token.session, handle, types.map((type) => ({ type })));
  const raw = (type: number): Buffer => (values.find((a) => a.type === type)?.value as Buffer | undefined) ?? Buffer.alloc(0);
  const flag = (type: number): boolean => raw(type)[0] === 1;
  const ulong = (type: number): number => (raw(type).length === 0 ? -1 : Number(raw(type).readUIntLE(0, Math.min(6, raw(type).length))));
  return {
    keyType: ulong(pkcs11js.CKA_KEY_TYPE),
    valueLen: ulong(pkcs11js.CKA_VALUE_LEN),
    id: raw(pkcs11js.CKA_ID),
    sensitive: flag(pkcs11js.CKA_SENSITIVE),
    alwaysSensitive: flag(pkcs11js.CKA_ALWAYS_SENSITIVE),
    extractable: flag(pkcs11js.CKA_EXTRACTABLE),
    neverExtractable: flag(pkcs11js.CKA_NEVER_EXTRACTABLE),
    encrypt: flag(pkcs11js.CKA_ENCRYPT),
    decrypt: flag(pkcs11js.CKA_DECRYPT),
  };
}
