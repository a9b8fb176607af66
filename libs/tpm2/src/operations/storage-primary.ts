import { TPM_RH } from '../constants';
import { passwordAuth } from '../client/session-auth';
import { TpmError } from '../client/tpm-errors';
import { tpm2EvictControl } from '../commands/context-management';
import { tpm2CreatePrimary, tpm2ReadPublic } from '../commands/objects';
import { SRK_TEMPLATE_RSA } from '../templates';
import type { ParentDescriptor } from './key-blob';
import { type LoadedObject, sameShape } from './loaded-object';
import type { TpmScope } from './tpm-scope';

/** Provisioning Guidance §7.8: the SRK's persistent handle. */
export const SRK_PERSISTENT_HANDLE = 0x81000001;

export interface StoragePrimary extends LoadedObject {
  readonly source: 'persistent' | 'created';
  /** How a key blob finds this parent again. */
  readonly descriptor: ParentDescriptor;
}

export interface StoragePrimaryOptions {
  /** Where a persisted SRK is looked for; null: never look, always derive. */
  readonly persistentHandle?: number | null;
  /** The owner hierarchy's authValue, for CreatePrimary; empty by default. */
  readonly ownerAuth?: Buffer;
}

/**
 * The storage primary key under TPM_RH_OWNER: the persisted SRK (0x81000001) when it has the
 * template's shape, else CreatePrimary(TPM_RH_OWNER, SRK_TEMPLATE_RSA) held in `scope`. Deriving
 * an RSA key costs the TPM far more than any other command here, so a long-lived agent may
 * persist it once (persistStoragePrimary).
 */
export async function getStoragePrimary(scope: TpmScope, options: StoragePrimaryOptions = {}): Promise<StoragePrimary> {
  const client = scope.client;
  const persistentHandle = options.persistentHandle === undefined ? SRK_PERSISTENT_HANDLE : options.persistentHandle;
  if (persistentHandle !== null) {
    try {
      const { outPublic, name } = await tpm2ReadPublic(client, persistentHandle);
      if (sameShape(outPublic, SRK_TEMPLATE_RSA)) {
        const descriptor = { hierarchy: TPM_RH.TPM_RH_OWNER, template: SRK_TEMPLATE_RSA, persistentHandle, name };
        return { handle: persistentHandle, public: outPublic, name, source: 'persistent', descriptor };
      }
    } catch (error) {
      if (!(error instanceof TpmError && error.is('TPM_RC_HANDLE'))) {
        throw error;
      }
    }
  }
  const created = await tpm2CreatePrimary(client, TPM_RH.TPM_RH_OWNER, passwordAuth(options.ownerAuth), SRK_TEMPLATE_RSA);
  scope.track(created.objectHandle);
  const descriptor = { hierarchy: TPM_RH.TPM_RH_OWNER, template: SRK_TEMPLATE_RSA, name: created.name };
  return { handle: created.objectHandle, public: created.outPublic, name: created.name, source: 'created', descriptor };
}

/**
 * Persists a transient storage primary at `persistentHandle` (TPM2_EvictControl, owner
 * authorization) and returns it as persistent. The transient copy stays in its scope.
 */
export async function persistStoragePrimary(
  scope: TpmScope,
  primary: StoragePrimary,
  persistentHandle = SRK_PERSISTENT_HANDLE,
  ownerAuth?: Buffer,
): Promise<StoragePrimary> {
  if (primary.source === 'persistent') {
    return primary;
  }
  await tpm2EvictControl(scope.client, TPM_RH.TPM_RH_OWNER, passwordAuth(ownerAuth), primary.handle, persistentHandle);
  return { ...primary, handle: persistentHandle, source: 'persistent', descriptor: { ...primary.descriptor, persistentHandle } };
}
