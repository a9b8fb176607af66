import { TPM_ALG_ID } from '../constants';
import { marshalTpmtPublic, type ParsedPublic, type TPMT_PUBLIC } from '../structures/tpmt-public';

/** An object the TPM holds (transient in a TpmScope, or persistent), with its public area and Name. */
export interface LoadedObject {
  readonly handle: number;
  readonly public: ParsedPublic;
  readonly name: Buffer;
}

/** Bytes of `unique` at the end of a marshalled TPMT_PUBLIC (Part 2 §12.2.3.2 TPMU_PUBLIC_ID). */
function uniqueLength(pub: TPMT_PUBLIC): number {
  return pub.type === TPM_ALG_ID.TPM_ALG_ECC ? 4 + pub.unique.x.length + pub.unique.y.length : 2 + pub.unique.length;
}

/**
 * A public area without its `unique` field: what a template fixes. A key created from a template
 * has the template's shape and its own unique (the public key), so this is how a persisted key is
 * recognised as "made from that template" without re-creating it.
 */
export function publicShape(pub: TPMT_PUBLIC): Buffer {
  const bytes = marshalTpmtPublic(pub);
  return bytes.subarray(0, bytes.length - uniqueLength(pub));
}

export function sameShape(a: TPMT_PUBLIC, b: TPMT_PUBLIC): boolean {
  return publicShape(a).equals(publicShape(b));
}
