import { TPM_ALG_ID, TPM_RH } from '../constants';
import { curveById } from '../keys';
import { passwordAuth } from '../client/session-auth';
import { TpmError } from '../client/tpm-errors';
import type { TpmClient } from '../client/tpm-client';
import { getHandles } from '../commands/capability';
import { TPM_HT } from '../commands/capability-constants';
import { nvReadAll } from '../commands/nv';
import { tpm2CreatePrimary, tpm2ReadPublic } from '../commands/objects';
import { EK_TEMPLATE_ECC_L2, EK_TEMPLATE_ECC_P384_H3, EK_TEMPLATE_RSA_L1 } from '../templates';
import { type EccPublic, type RsaPublic, type TPMT_PUBLIC, unmarshalTpmtPublic } from '../structures/tpmt-public';
import { type LoadedObject, sameShape } from './loaded-object';
import type { TpmScope } from './tpm-scope';

export type EkKind = 'rsa-2048' | 'ecc-p256' | 'ecc-p384';

/** Where the TCG EK Credential Profile 2.x puts an EK's certificate, template and nonce. */
export interface EkProfile {
  readonly kind: EkKind;
  /** The default template: L-1, L-2 (low range) or H-3 (high range). */
  readonly template: RsaPublic | EccPublic;
  readonly certificateIndex: number;
  /** Low-range EKs only: the manufacturer may store a template and a nonce for unique. */
  readonly templateIndex?: number;
  readonly nonceIndex?: number;
  /**
   * TCG Provisioning Guidance §7.8 reserves 0x81010001 for the RSA-2048 EK. ECC EKs have no handle
   * every TPM agrees on (swtpm puts its P-384 EK at 0x81010016), so they are found by shape.
   */
  readonly preferredHandle?: number;
}

export const EK_PROFILES: Readonly<Record<EkKind, EkProfile>> = {
  'rsa-2048': {
    kind: 'rsa-2048',
    template: EK_TEMPLATE_RSA_L1,
    certificateIndex: 0x01c00002,
    nonceIndex: 0x01c00003,
    templateIndex: 0x01c00004,
    preferredHandle: 0x81010001,
  },
  'ecc-p256': { kind: 'ecc-p256', template: EK_TEMPLATE_ECC_L2, certificateIndex: 0x01c0000a, nonceIndex: 0x01c0000b, templateIndex: 0x01c0000c },
  'ecc-p384': { kind: 'ecc-p384', template: EK_TEMPLATE_ECC_P384_H3, certificateIndex: 0x01c00016 },
};

/** TCG Provisioning Guidance §7.8: persistent handles reserved for endorsement primary keys. */
export const EK_PERSISTENT_HANDLES = { first: 0x81010000, last: 0x810100ff } as const;

export interface EndorsementKey extends LoadedObject {
  readonly kind: EkKind;
  /** persistent: found at `handle`; otherwise derived now by CreatePrimary (transient, in the scope). */
  readonly source: 'persistent' | 'nv-template' | 'default-template';
  /** The template CreatePrimary(TPM_RH_ENDORSEMENT) takes to derive this EK again. */
  readonly template: TPMT_PUBLIC;
}

export interface EndorsementKeyOptions {
  /** The endorsement hierarchy's authValue, for CreatePrimary; empty by default. */
  readonly endorsementAuth?: Buffer;
}

/** An NV index's content, or undefined when the TPM has no such index. */
async function readOptionalIndex(client: TpmClient, index: number): Promise<Buffer | undefined> {
  try {
    return await nvReadAll(client, index);
  } catch (error) {
    if (error instanceof TpmError && error.is('TPM_RC_HANDLE')) {
      return undefined;
    }
    throw error;
  }
}

function withoutRaw<T extends TPMT_PUBLIC>(pub: T): T {
  const copy = { ...pub } as T & { raw?: Buffer };
  delete copy.raw;
  return copy;
}

/**
 * EK Credential Profile §2.2.1.5: the nonce goes at the start of unique, zero-padded to the key
 * size (RSA: the modulus; ECC: x, with y all zeros).
 */
export function applyEkNonce(template: TPMT_PUBLIC, nonce: Buffer): TPMT_PUBLIC {
  const pad = (bytes: Buffer, size: number) => Buffer.concat([bytes, Buffer.alloc(Math.max(0, size - bytes.length))]);
  if (template.type === TPM_ALG_ID.TPM_ALG_RSA && nonce.length <= template.parameters.keyBits / 8) {
    return { ...withoutRaw(template), unique: pad(nonce, template.parameters.keyBits / 8) };
  }
  if (template.type === TPM_ALG_ID.TPM_ALG_ECC && nonce.length <= curveById(template.parameters.curveID).size) {
    const size = curveById(template.parameters.curveID).size;
    return { ...withoutRaw(template), unique: { x: pad(nonce, size), y: Buffer.alloc(size) } };
  }
  throw new RangeError(`an EK nonce of ${nonce.length} bytes does not fit the template's unique field`);
}

/** The template the manufacturer's NV indices describe, or the profile's default. */
async function expectedTemplate(client: TpmClient, profile: EkProfile): Promise<{ template: TPMT_PUBLIC; fromNv: boolean }> {
  const templateBytes = profile.templateIndex === undefined ? undefined : await readOptionalIndex(client, profile.templateIndex);
  const nonce = profile.nonceIndex === undefined ? undefined : await readOptionalIndex(client, profile.nonceIndex);
  let template: TPMT_PUBLIC = templateBytes === undefined ? profile.template : withoutRaw(unmarshalTpmtPublic(templateBytes));
  if (nonce !== undefined) {
    template = applyEkNonce(template, nonce);
  }
  return { template, fromNv: templateBytes !== undefined || nonce !== undefined };
}

async function readPersistent(client: TpmClient, handle: number, template: TPMT_PUBLIC): Promise<LoadedObject | undefined> {
  try {
    const { outPublic, name } = await tpm2ReadPublic(client, handle);
    return sameShape(outPublic, template) ? { handle, public: outPublic, name } : undefined;
  } catch (error) {
    if (error instanceof TpmError && error.is('TPM_RC_HANDLE')) {
      return undefined;
    }
    throw error;
  }
}

/**
 * The TPM's endorsement key of `kind`, cheapest first:
 *   1. the profile's reserved persistent handle (RSA: 0x81010001) when it holds a key of the
 *      default template's shape (one ReadPublic);
 *   2. otherwise the template the EK template/nonce NV indices describe (or the default), and a
 *      persistent key of that shape anywhere in 0x81010000-0x810100FF;
 *   3. otherwise CreatePrimary(TPM_RH_ENDORSEMENT, that template): the same key every time, held
 *      transiently in `scope`.
 * "Shape" is the public area but unique, so a key made from the template is recognised without
 * re-deriving it. Whether it matches the EK certificate is the caller's check (ekPubHash).
 */
export async function getEndorsementKey(scope: TpmScope, kind: EkKind = 'rsa-2048', options: EndorsementKeyOptions = {}): Promise<EndorsementKey> {
  const client = scope.client;
  const profile = EK_PROFILES[kind];
  const tried = new Set<number>();
  if (profile.preferredHandle !== undefined) {
    tried.add(profile.preferredHandle);
    const found = await readPersistent(client, profile.preferredHandle, profile.template);
    if (found !== undefined) {
      return { ...found, kind, source: 'persistent', template: profile.template };
    }
  }
  const { template, fromNv } = await expectedTemplate(client, profile);
  const candidates = (await getHandles(client, TPM_HT.TPM_HT_PERSISTENT)).filter(
    (h) => h >= EK_PERSISTENT_HANDLES.first && h <= EK_PERSISTENT_HANDLES.last && !tried.has(h),
  );
  for (const handle of candidates) {
    const found = await readPersistent(client, handle, template);
    if (found !== undefined) {
      return { ...found, kind, source: 'persistent', template };
    }
  }
  const created = await tpm2CreatePrimary(client, TPM_RH.TPM_RH_ENDORSEMENT, passwordAuth(options.endorsementAuth), template);
  scope.track(created.objectHandle);
  return {
    handle: created.objectHandle,
    public: created.outPublic,
    name: created.name,
    kind,
    source: fromNv ? 'nv-template' : 'default-template',
    template,
  };
}
