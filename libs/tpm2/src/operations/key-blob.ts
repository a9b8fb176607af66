import { parseExact } from '../codec/tpm-reader';
import { marshal } from '../codec/tpm-writer';
import { passwordAuth } from '../client/session-auth';
import { TpmError } from '../client/tpm-errors';
import { tpm2CreatePrimary, tpm2Load, tpm2ReadPublic, writePublicArea } from '../commands/objects';
import { readTpm2bPrivate, type TPM2B_PRIVATE, writeTpm2bPrivate } from '../structures/tpm2b-private';
import { type ParsedPublic, readTpm2bPublic, type TPMT_PUBLIC } from '../structures/tpmt-public';
import type { LoadedObject } from './loaded-object';
import type { TpmScope } from './tpm-scope';
import { UserAuthorization, type UserAuthorizationOptions } from './user-authorization';

/**
 * How to find a key's parent again on a later boot: a primary key is re-derived from its hierarchy
 * and template (CreatePrimary gives the same key while the hierarchy's seed is unchanged), or read
 * at its persistent handle when it was persisted. `name` pins the exact key either way.
 */
export interface ParentDescriptor {
  readonly hierarchy: number;
  readonly template: TPMT_PUBLIC;
  /** Tried first when present (no key derivation); 0 on the wire means none. */
  readonly persistentHandle?: number;
  readonly name: Buffer;
}

/**
 * A TPM-wrapped key as the agent keeps it in its state dir: useless without the TPM (the private
 * area is encrypted to the parent, which never leaves the TPM), and all a later boot needs to Load.
 */
export interface KeyBlob {
  readonly parent: ParentDescriptor;
  /** As the TPM returned it (Create's outPublic): its raw bytes are hashed into the Name. */
  readonly public: ParsedPublic;
  readonly private: TPM2B_PRIVATE;
}

/** "RSKB": rackseal key blob. */
export const KEY_BLOB_MAGIC = 0x52534b42;
export const KEY_BLOB_VERSION = 1;

const MAX_NAME = 66;

/** Not a key blob this version understands (wrong magic, unknown version). */
export class KeyBlobFormatError extends Error {
  constructor(message: string) {
    super(`key blob: ${message}`);
    this.name = 'KeyBlobFormatError';
  }
}

/**
 * The key's parent is not the one the blob was made under: the hierarchy was cleared (new seed),
 * the persisted parent was replaced, or the blob comes from another TPM. Load could only fail.
 */
export class KeyBlobParentError extends Error {
  constructor(
    readonly expectedName: Buffer,
    readonly actualName: Buffer,
  ) {
    super(`key blob parent is ${actualName.toString('hex')} in this TPM, the blob was made under ${expectedName.toString('hex')}`);
    this.name = 'KeyBlobParentError';
  }
}

/**
 * Version 1 layout, all big-endian TPM encodings so the parts can be read by tpm2-tools too:
 *   u32 magic "RSKB" ‖ u16 version 1
 *   u32 parent hierarchy ‖ u32 parent persistent handle (0: none) ‖ TPM2B_NAME parent name
 *   TPM2B_PUBLIC parent template
 *   TPM2B_PUBLIC object public ‖ TPM2B_PRIVATE object private   (tpm2_load -u / -r formats)
 */
export function marshalKeyBlob(blob: KeyBlob): Buffer {
  return marshal((w) => {
    w.u32(KEY_BLOB_MAGIC).u16(KEY_BLOB_VERSION);
    w.u32(blob.parent.hierarchy).u32(blob.parent.persistentHandle ?? 0).tpm2b(blob.parent.name);
    writePublicArea(w, blob.parent.template);
    writePublicArea(w, blob.public);
    writeTpm2bPrivate(w, blob.private);
  });
}

export function unmarshalKeyBlob(bytes: Uint8Array): KeyBlob {
  return parseExact(bytes, 'rackseal key blob', (r) => {
    const magic = r.u32('magic');
    if (magic !== KEY_BLOB_MAGIC) {
      throw new KeyBlobFormatError(`magic 0x${magic.toString(16).padStart(8, '0')} is not "RSKB"`);
    }
    const version = r.u16('version');
    if (version !== KEY_BLOB_VERSION) {
      throw new KeyBlobFormatError(`version ${version} is not supported (this build reads version ${KEY_BLOB_VERSION})`);
    }
    const hierarchy = r.u32('parent.hierarchy');
    const persistentHandle = r.u32('parent.persistentHandle');
    const name = r.tpm2b('parent.name', MAX_NAME);
    const template = readTpm2bPublic(r);
    const pub = readTpm2bPublic(r);
    const priv = readTpm2bPrivate(r);
    return {
      parent: { hierarchy, template, name, ...(persistentHandle === 0 ? {} : { persistentHandle }) },
      public: pub,
      private: priv,
    };
  });
}

/** The parent a descriptor names, made available in `scope` (read if persisted, else re-derived). */
export async function resolveParent(scope: TpmScope, parent: ParentDescriptor, hierarchyAuth?: Buffer): Promise<LoadedObject> {
  const client = scope.client;
  if (parent.persistentHandle !== undefined) {
    try {
      const { outPublic, name } = await tpm2ReadPublic(client, parent.persistentHandle);
      if (name.equals(parent.name)) {
        return { handle: parent.persistentHandle, public: outPublic, name };
      }
    } catch (error) {
      if (!(error instanceof TpmError && error.is('TPM_RC_HANDLE'))) {
        throw error;
      }
    }
  }
  const created = await tpm2CreatePrimary(client, parent.hierarchy, passwordAuth(hierarchyAuth), parent.template);
  scope.track(created.objectHandle);
  if (!created.name.equals(parent.name)) {
    throw new KeyBlobParentError(parent.name, created.name);
  }
  return { handle: created.objectHandle, public: created.outPublic, name: created.name };
}

/**
 * Loads a key blob: its parent is found or re-derived (and flushed again), then TPM2_Load with the
 * parent's USER authorization. The key is left loaded in `scope`.
 */
export async function loadKeyBlob(
  scope: TpmScope,
  blob: KeyBlob,
  options: UserAuthorizationOptions & { readonly hierarchyAuth?: Buffer } = {},
): Promise<LoadedObject> {
  return scope.nested(async (inner) => {
    const parent = await resolveParent(inner, blob.parent, options.hierarchyAuth);
    return loadKeyBlobUnder(scope, parent, blob, options);
  });
}

/**
 * TPM2_Load of a key blob under a parent already resolved (resolveParent: its Name is the one the
 * blob records), with the parent's USER authorization; the key is left loaded in `scope`.
 */
export async function loadKeyBlobUnder(scope: TpmScope, parent: LoadedObject, blob: KeyBlob, options: UserAuthorizationOptions = {}): Promise<LoadedObject> {
  return scope.nested(async (inner) => {
    const auth = new UserAuthorization(inner, parent.public, options);
    const loaded = await auth.use(true, (a) => tpm2Load(scope.client, parent.handle, a, blob.private, blob.public));
    scope.track(loaded.objectHandle);
    return { handle: loaded.objectHandle, public: blob.public, name: loaded.name };
  });
}
