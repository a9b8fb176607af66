import { TPM_RH } from '../constants';
import { tpm2Create, tpm2Load } from '../commands/objects';
import { AK_TEMPLATE_ECC } from '../templates';
import type { TPM2B_PRIVATE } from '../structures/tpm2b-private';
import type { EccPublic, RsaPublic } from '../structures/tpmt-public';
import type { EndorsementKey } from './endorsement-key';
import type { KeyBlob } from './key-blob';
import type { LoadedObject } from './loaded-object';
import type { TpmScope } from './tpm-scope';
import { UserAuthorization, type UserAuthorizationOptions } from './user-authorization';

export interface AttestationKey extends LoadedObject {
  readonly private: TPM2B_PRIVATE;
  /** To keep in the state dir: a later boot loads the same AK under the same EK (loadKeyBlob). */
  readonly blob: KeyBlob;
}

export interface AttestationKeyOptions extends UserAuthorizationOptions {
  /**
   * AK_TEMPLATE_ECC (default) or AK_TEMPLATE_RSA. P-256 by default because a TPM generates it in
   * milliseconds where an RSA-2048 AK is a random prime search (≈200 ms mean on swtpm, up to 500 ms);
   * every PC Client TPM implements P-256, and the verifier takes either.
   */
  readonly template?: RsaPublic | EccPublic;
}

/**
 * A new attestation key under the EK (TPM2_Create then TPM2_Load, Part 3 §12.1-12.2), each
 * authorized by the EK's policy (one policy session for both). The AK stays loaded in `scope`;
 * the session is gone when this returns, success or not.
 */
export async function createAttestationKey(scope: TpmScope, ek: EndorsementKey, options: AttestationKeyOptions = {}): Promise<AttestationKey> {
  const template = options.template ?? AK_TEMPLATE_ECC;
  return scope.nested(async (inner) => {
    const client = scope.client;
    const auth = new UserAuthorization(inner, ek.public, options);
    const created = await auth.use(false, (a) => tpm2Create(client, ek.handle, a, template));
    const loaded = await auth.use(true, (a) => tpm2Load(client, ek.handle, a, created.outPrivate, created.outPublic));
    scope.track(loaded.objectHandle);
    const parent = {
      hierarchy: TPM_RH.TPM_RH_ENDORSEMENT,
      template: ek.template,
      name: ek.name,
      ...(ek.source === 'persistent' ? { persistentHandle: ek.handle } : {}),
    };
    return {
      handle: loaded.objectHandle,
      public: created.outPublic,
      name: loaded.name,
      private: created.outPrivate,
      blob: { parent, public: created.outPublic, private: created.outPrivate },
    };
  });
}
