import { TPM_RH } from '../constants';
import { passwordAuth } from '../client/session-auth';
import { TpmError } from '../client/tpm-errors';
import { tpm2EvictControl } from '../commands/context-management';
import { tpm2CreatePrimary, tpm2ReadPublic } from '../commands/objects';
import type { TPMT_PUBLIC } from '../structures/tpmt-public';
import { SRK_TEMPLATE_ECC, SRK_TEMPLATE_RSA } from '../templates';
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
  /**
   * The SRK template to derive when none is persisted: SRK_TEMPLATE_ECC by default. Given
   * explicitly, a persisted SRK must have this shape; by default a persisted SRK of either
   * Provisioning Guidance template is used (systemd-cryptenroll and tpm2-tools persist either).
   */
  readonly template?: TPMT_PUBLIC;
  /** The owner hierarchy's authValue, for CreatePrimary; empty by default. */
  readonly ownerAuth?: Buffer;
}

/** What a persisted SRK may look like when the caller named no template. */
const STANDARD_SRK_TEMPLATES: readonly TPMT_PUBLIC[] = [SRK_TEMPLATE_ECC, SRK_TEMPLATE_RSA];

/**
 * The storage primary key under TPM_RH_OWNER: the persisted SRK (0x81000001) when it has an
 * accepted template's shape, else CreatePrimary(TPM_RH_OWNER, template) held in `scope`. Even the
 * P-256 derivation is a CreatePrimary per use, so a long-lived agent may persist the SRK once
 * (persistStoragePrimary).
 */
export async function getStoragePrimary(scope: TpmScope, options: StoragePrimaryOptions = {}): Promise<StoragePrimary> {
  const client = scope.client;
  const persistentHandle = options.persistentHandle === undefined ? SRK_PERSISTENT_HANDLE : options.persistentHandle;
  const template = options.template ?? SRK_TEMPLATE_ECC;
  const accepted = options.template ? [options.template] : STANDARD_SRK_TEMPLATES;
  if (persistentHandle !== null) {
    try {
      const { outPublic, name } = await tpm2ReadPublic(client, persistentHandle);
      const matching = accepted.find((candidate) => sameShape(outPublic, candidate));
      if (matching) {
        const descriptor = { hierarchy: TPM_RH.TPM_RH_OWNER, template: matching, persistentHandle, name };
        return { handle: persistentHandle, public: outPublic, name, source: 'persistent', descriptor };
      }
    } catch (error) {
      if (!(error instanceof TpmError && error.is('TPM_RC_HANDLE'))) {
        throw error;
      }
    }
  }
  const created = await tpm2CreatePrimary(client, TPM_RH.TPM_RH_OWNER, passwordAuth(options.ownerAuth), template);
  scope.track(created.objectHandle);
  const descriptor = { hierarchy: TPM_RH.TPM_RH_OWNER, template, name: created.name };
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
