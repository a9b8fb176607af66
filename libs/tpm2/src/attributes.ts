import { TPM_ALG_ID, TPMA_OBJECT, type TPMA_OBJECT_NAME } from './constants';
import type { TPMT_PUBLIC } from './structures/tpmt-public';

export type AttributeCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly attribute: string; readonly message: string };

const OK: AttributeCheck = { ok: true };

/** Names of the TPMA_OBJECT bits set in `attributes`, in bit order. */
export function describeObjectAttributes(attributes: number): TPMA_OBJECT_NAME[] {
  return (Object.entries(TPMA_OBJECT) as [TPMA_OBJECT_NAME, number][])
    .filter(([, bit]) => (attributes & bit) !== 0)
    .map(([name]) => name);
}

function requireBits(pub: TPMT_PUBLIC, role: string, set: readonly TPMA_OBJECT_NAME[], clear: readonly TPMA_OBJECT_NAME[]): AttributeCheck {
  for (const name of set) {
    if ((pub.objectAttributes & TPMA_OBJECT[name]) === 0) {
      return { ok: false, attribute: name, message: `${role} must have ${name} set` };
    }
  }
  for (const name of clear) {
    if ((pub.objectAttributes & TPMA_OBJECT[name]) !== 0) {
      return { ok: false, attribute: name, message: `${role} must have ${name} clear` };
    }
  }
  return OK;
}

/**
 * An attestation key must be a restricted signing key that was born in, and cannot leave, its TPM:
 * then a quote it signs can only have been made by that TPM over that TPM's own PCRs
 * (Part 1 §24.4: restricted keys sign only TPM-generated data).
 */
export function checkAkAttributes(pub: TPMT_PUBLIC): AttributeCheck {
  if (pub.type !== TPM_ALG_ID.TPM_ALG_RSA && pub.type !== TPM_ALG_ID.TPM_ALG_ECC) {
    return { ok: false, attribute: 'type', message: 'AK must be an RSA or ECC key' };
  }
  return requireBits(pub, 'AK', ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'restricted', 'sign'], ['decrypt']);
}

/**
 * The key secrets are wrapped to: an RSA-2048 decrypt key generated inside the TPM that can never
 * leave it, and that cannot sign (so it cannot be abused to forge) nor is restricted (so
 * TPM2_RSA_Decrypt works on it).
 */
export function checkCertifiedKeyAttributes(pub: TPMT_PUBLIC): AttributeCheck {
  if (pub.type !== TPM_ALG_ID.TPM_ALG_RSA) {
    return { ok: false, attribute: 'type', message: 'certified key must be an RSA key' };
  }
  if (pub.parameters.keyBits !== 2048) {
    return { ok: false, attribute: 'keyBits', message: `certified key must be RSA-2048, not RSA-${pub.parameters.keyBits}` };
  }
  return requireBits(pub, 'certified key', ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'decrypt'], ['sign', 'restricted']);
}
