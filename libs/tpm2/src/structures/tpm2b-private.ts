import { parseExact, TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';

/**
 * Part 2 §12.3.4 _PRIVATE as it travels outer-wrapped: a duplicate (Part 1 §23.3.2, Outer
 * Duplication Wrapper), and also an object's private area under its parent. integrityOuter
 * (TPM2B_DIGEST, the outer HMAC) ‖ the encrypted rest (for a duplicate without inner wrapper,
 * dupSensitive = CFB(TPM2B_SENSITIVE)). The encrypted part's size field is encrypted too, so it is
 * simply the remainder.
 */
export interface TPM2B_PRIVATE {
  readonly integrityOuter: Buffer;
  readonly encrypted: Buffer;
}

const MAX_DIGEST = 64;

/** Part 2 §12.3.5 TPM2B_PRIVATE: u16 size ‖ _PRIVATE. */
export function readTpm2bPrivate(r: TpmReader): TPM2B_PRIVATE {
  return r.within('TPM2B_PRIVATE', () => {
    const content = r.tpm2b('buffer');
    const inner = new TpmReader(content, '_PRIVATE');
    // The encrypted part runs to the end of the content, so nothing can trail it.
    return {
      integrityOuter: inner.tpm2b('integrityOuter', MAX_DIGEST),
      encrypted: inner.bytesOf(inner.remaining, 'encrypted'),
    };
  });
}

export function writeTpm2bPrivate(w: TpmWriter, priv: TPM2B_PRIVATE): void {
  w.sized((inner) => inner.tpm2b(priv.integrityOuter).bytes(priv.encrypted));
}

export function unmarshalTpm2bPrivate(bytes: Uint8Array): TPM2B_PRIVATE {
  return parseExact(bytes, 'TPM2B_PRIVATE', readTpm2bPrivate);
}

export function marshalTpm2bPrivate(priv: TPM2B_PRIVATE): Buffer {
  return marshal((w) => writeTpm2bPrivate(w, priv));
}
