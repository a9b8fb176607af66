import { parseExact, readSized, type TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';
import { algName, TPM_ALG_ID } from '../constants';

/**
 * Part 2 §11.1.13 TPMU_SENSITIVE_CREATE / §11.1.14 TPM2B_SENSITIVE_DATA: the most data a sealed
 * (keyedHash data) object can hold. The specification leaves it to the platform but says "for
 * interoperability, MAX_SYM_DATA should be 128"; the reference code, libtpms and tpm2-tss use 128.
 */
export const MAX_SYM_DATA = 128;

/** Part 2 §10.3.1 TPMU_HA: the largest digest (SHA-512) bounds TPM2B_AUTH and TPM2B_DIGEST. */
const MAX_DIGEST = 64;

/**
 * The bound of each TPMU_SENSITIVE_COMPOSITE arm (Part 2 §12.3.2.3), all of them TPM2B:
 * rsa TPM2B_PRIVATE_KEY_RSA (5·MAX_RSA_KEY_BYTES/2 since rev 1.59, room for CRT values),
 * ecc TPM2B_ECC_PARAMETER (MAX_ECC_KEY_BYTES), bits TPM2B_SENSITIVE_DATA (MAX_SYM_DATA),
 * sym TPM2B_SYM_KEY (MAX_SYM_KEY_BYTES).
 */
const SENSITIVE_MAX = new Map<number, number>([
  [TPM_ALG_ID.TPM_ALG_RSA, (512 * 5) / 2],
  [TPM_ALG_ID.TPM_ALG_ECC, 128],
  [TPM_ALG_ID.TPM_ALG_KEYEDHASH, MAX_SYM_DATA],
  [TPM_ALG_ID.TPM_ALG_SYMCIPHER, 32],
]);

/**
 * Part 2 §12.3.2.4 TPMT_SENSITIVE: the private part of an object. `sensitive` is the
 * TPMU_SENSITIVE_COMPOSITE arm selected by `sensitiveType` (an RSA prime, an ECC private scalar, the
 * sealed data or HMAC key of a keyedHash object, a symmetric key). For keyedHash objects,
 * TPMT_PUBLIC.unique = H_nameAlg(seedValue ‖ sensitive) binds the two halves (ref
 * CryptComputeSymmetricUnique).
 */
export interface TPMT_SENSITIVE {
  readonly sensitiveType: number;
  readonly authValue: Buffer;
  readonly seedValue: Buffer;
  readonly sensitive: Buffer;
}

export function readTpmtSensitive(r: TpmReader): TPMT_SENSITIVE {
  return r.within('TPMT_SENSITIVE', () => {
    const typeOffset = r.offset;
    const sensitiveType = r.u16('sensitiveType');
    const max = SENSITIVE_MAX.get(sensitiveType);
    if (max === undefined) {
      throw r.error('sensitiveType', `${algName(sensitiveType)} is not a public object type`, typeOffset);
    }
    return {
      sensitiveType,
      authValue: r.tpm2b('authValue', MAX_DIGEST),
      seedValue: r.tpm2b('seedValue', MAX_DIGEST),
      sensitive: r.tpm2b('sensitive', max),
    };
  });
}

export function writeTpmtSensitive(w: TpmWriter, sensitive: TPMT_SENSITIVE): void {
  w.u16(sensitive.sensitiveType).tpm2b(sensitive.authValue).tpm2b(sensitive.seedValue).tpm2b(sensitive.sensitive);
}

export function unmarshalTpmtSensitive(bytes: Uint8Array): TPMT_SENSITIVE {
  return parseExact(bytes, 'TPMT_SENSITIVE', readTpmtSensitive);
}

export function marshalTpmtSensitive(sensitive: TPMT_SENSITIVE): Buffer {
  return marshal((w) => writeTpmtSensitive(w, sensitive));
}

/**
 * Part 2 §12.3.3 TPM2B_SENSITIVE: u16 size ‖ TPMT_SENSITIVE. This, not the bare TPMT_SENSITIVE, is
 * what the outer duplication wrapper encrypts (Part 1 §23.3.2, Outer Duplication Wrapper).
 */
export function readTpm2bSensitive(r: TpmReader): TPMT_SENSITIVE {
  return r.within('TPM2B_SENSITIVE', () => readSized(r, 'sensitiveArea', readTpmtSensitive));
}

export function unmarshalTpm2bSensitive(bytes: Uint8Array): TPMT_SENSITIVE {
  return parseExact(bytes, 'TPM2B_SENSITIVE', readTpm2bSensitive);
}

export function marshalTpm2bSensitive(sensitive: TPMT_SENSITIVE): Buffer {
  return marshal((w) => w.sized((inner) => writeTpmtSensitive(inner, sensitive)));
}
