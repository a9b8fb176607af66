import type { TpmReader } from '../codec/tpm-reader';
import type { TpmWriter } from '../codec/tpm-writer';
import { algName, TPM_ALG_ID } from '../constants';

/**
 * Part 2 §11.2 scheme structures in their TPMT_ form: a scheme selector and, for most schemes,
 * a hash algorithm. ECDAA also carries a counter (TPMS_SCHEME_ECDAA, §11.2.3.3).
 * XOR keyed-hash schemes carry a hash and a KDF (TPMS_SCHEME_XOR, §11.1.3).
 */
export interface TPMT_SCHEME {
  readonly scheme: number;
  readonly hashAlg?: number;
  /** TPMS_SCHEME_ECDAA.count */
  readonly count?: number;
  /** TPMS_SCHEME_XOR.kdf */
  readonly kdf?: number;
}

export const SCHEME_NULL: TPMT_SCHEME = { scheme: TPM_ALG_ID.TPM_ALG_NULL };

type SchemeLayout = 'none' | 'hash' | 'hash+count' | 'hash+kdf';

/** Part 2 §11.2.3.5 TPMT_RSA_SCHEME (sign and encrypt schemes allowed for RSA keys). */
export const RSA_SCHEMES: ReadonlyMap<number, SchemeLayout> = new Map<number, SchemeLayout>([
  [TPM_ALG_ID.TPM_ALG_NULL, 'none'],
  [TPM_ALG_ID.TPM_ALG_RSAES, 'none'],
  [TPM_ALG_ID.TPM_ALG_RSASSA, 'hash'],
  [TPM_ALG_ID.TPM_ALG_RSAPSS, 'hash'],
  [TPM_ALG_ID.TPM_ALG_OAEP, 'hash'],
]);

/** Part 2 §11.2.5.6 TPMT_ECC_SCHEME. */
export const ECC_SCHEMES: ReadonlyMap<number, SchemeLayout> = new Map<number, SchemeLayout>([
  [TPM_ALG_ID.TPM_ALG_NULL, 'none'],
  [TPM_ALG_ID.TPM_ALG_ECDSA, 'hash'],
  [TPM_ALG_ID.TPM_ALG_ECDH, 'hash'],
  [TPM_ALG_ID.TPM_ALG_ECDAA, 'hash+count'],
  [TPM_ALG_ID.TPM_ALG_SM2, 'hash'],
  [TPM_ALG_ID.TPM_ALG_ECSCHNORR, 'hash'],
  [TPM_ALG_ID.TPM_ALG_ECMQV, 'hash'],
]);

/** Part 2 §11.2.3.2 TPMT_KDF_SCHEME. */
export const KDF_SCHEMES: ReadonlyMap<number, SchemeLayout> = new Map<number, SchemeLayout>([
  [TPM_ALG_ID.TPM_ALG_NULL, 'none'],
  [TPM_ALG_ID.TPM_ALG_MGF1, 'hash'],
  [TPM_ALG_ID.TPM_ALG_KDF1_SP800_56A, 'hash'],
  [TPM_ALG_ID.TPM_ALG_KDF2, 'hash'],
  [TPM_ALG_ID.TPM_ALG_KDF1_SP800_108, 'hash'],
]);

/** Part 2 §11.1.10 TPMT_KEYEDHASH_SCHEME. */
export const KEYEDHASH_SCHEMES: ReadonlyMap<number, SchemeLayout> = new Map<number, SchemeLayout>([
  [TPM_ALG_ID.TPM_ALG_NULL, 'none'],
  [TPM_ALG_ID.TPM_ALG_HMAC, 'hash'],
  [TPM_ALG_ID.TPM_ALG_XOR, 'hash+kdf'],
]);

export function readScheme(r: TpmReader, structure: string, table: ReadonlyMap<number, SchemeLayout>): TPMT_SCHEME {
  return r.within(structure, () => {
    const start = r.offset;
    const scheme = r.u16('scheme');
    const layout = table.get(scheme);
    switch (layout) {
      case 'none':
        return scheme === TPM_ALG_ID.TPM_ALG_NULL ? SCHEME_NULL : { scheme };
      case 'hash':
        return { scheme, hashAlg: r.u16('details.hashAlg') };
      case 'hash+count':
        return { scheme, hashAlg: r.u16('details.hashAlg'), count: r.u16('details.count') };
      case 'hash+kdf':
        return { scheme, hashAlg: r.u16('details.hashAlg'), kdf: r.u16('details.kdf') };
      case undefined:
        throw r.error('scheme', `${algName(scheme)} is not allowed here`, start);
    }
  });
}

export function writeScheme(w: TpmWriter, scheme: TPMT_SCHEME): void {
  w.u16(scheme.scheme);
  if (scheme.hashAlg !== undefined) {
    w.u16(scheme.hashAlg);
  }
  if (scheme.count !== undefined) {
    w.u16(scheme.count);
  }
  if (scheme.kdf !== undefined) {
    w.u16(scheme.kdf);
  }
}
