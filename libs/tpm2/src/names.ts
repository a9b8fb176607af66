import { marshal } from './codec/tpm-writer';
import { digest } from './hash-algorithms';
import { marshalTpmtPublic, type TPMT_PUBLIC } from './structures/tpmt-public';

/**
 * Part 1 §16 Names. An object's Name = nameAlg (u16) ‖ H_nameAlg(TPMT_PUBLIC as marshalled, without
 * the TPM2B size). A parsed public area is hashed from its original bytes, never re-encoded.
 */
export function objectName(pub: TPMT_PUBLIC | (TPMT_PUBLIC & { raw: Buffer })): Buffer {
  const bytes = 'raw' in pub && Buffer.isBuffer(pub.raw) ? pub.raw : marshalTpmtPublic(pub);
  return Buffer.concat([marshal((w) => w.u16(pub.nameAlg)), digest(pub.nameAlg, bytes)]);
}

/** The Name of a permanent handle (hierarchy, TPM_RS_PW): its 4-byte handle value (Part 1 §16). */
export function handleName(handle: number): Buffer {
  return marshal((w) => w.u32(handle));
}

/**
 * Part 1 §26.5 Qualified Name: QN(object) = nameAlg ‖ H_nameAlg(QN(parent) ‖ Name(object)); a
 * hierarchy's QN is its handle. A quote's qualifiedSigner is the AK's QN under the EK.
 */
export function qualifiedName(parentQualifiedName: Buffer, name: Buffer, nameAlg: number): Buffer {
  return Buffer.concat([marshal((w) => w.u16(nameAlg)), digest(nameAlg, parentQualifiedName, name)]);
}
