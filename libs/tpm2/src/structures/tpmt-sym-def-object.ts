import type { TpmReader } from '../codec/tpm-reader';
import type { TpmWriter } from '../codec/tpm-writer';
import { algName, TPM_ALG_ID } from '../constants';

/**
 * Part 2 §11.1.7 TPMT_SYM_DEF_OBJECT: the symmetric algorithm of a storage key (how children and
 * credentials are protected). `keyBits` and `mode` are present unless `algorithm` is TPM_ALG_NULL.
 */
export interface TPMT_SYM_DEF_OBJECT {
  readonly algorithm: number;
  readonly keyBits?: number;
  readonly mode?: number;
}

const SYM_OBJECT_ALGS = new Set<number>([
  TPM_ALG_ID.TPM_ALG_AES,
  TPM_ALG_ID.TPM_ALG_SM4,
  TPM_ALG_ID.TPM_ALG_CAMELLIA,
  TPM_ALG_ID.TPM_ALG_TDES,
]);

export const SYM_NULL: TPMT_SYM_DEF_OBJECT = { algorithm: TPM_ALG_ID.TPM_ALG_NULL };

export function readSymDefObject(r: TpmReader): TPMT_SYM_DEF_OBJECT {
  return r.within('TPMT_SYM_DEF_OBJECT', () => {
    const start = r.offset;
    const algorithm = r.u16('algorithm');
    if (algorithm === TPM_ALG_ID.TPM_ALG_NULL) {
      return SYM_NULL;
    }
    if (!SYM_OBJECT_ALGS.has(algorithm)) {
      throw r.error('algorithm', `${algName(algorithm)} is not a symmetric object algorithm`, start);
    }
    return { algorithm, keyBits: r.u16('keyBits'), mode: r.u16('mode') };
  });
}

export function writeSymDefObject(w: TpmWriter, sym: TPMT_SYM_DEF_OBJECT): void {
  w.u16(sym.algorithm);
  if (sym.algorithm !== TPM_ALG_ID.TPM_ALG_NULL) {
    w.u16(sym.keyBits ?? 0).u16(sym.mode ?? 0);
  }
}
