import { hash } from 'node:crypto';
import { marshal } from './codec/tpm-writer';
import { digest, hashAlgorithm, isHashAlgorithm } from './hash-algorithms';
import { marshalTpmtPublic, type TPMT_PUBLIC } from './structures/tpmt-public';

/**
 * Part 1 §16 Names. An object's Name = nameAlg (u16) ‖ H_nameAlg(TPMT_PUBLIC as marshalled, without
 * the TPM2B size). A parsed public area is hashed from its original bytes, never re-encoded.
 */
export function objectName(pub: TPMT_PUBLIC | (TPMT_PUBLIC & { raw: Buffer })): Buffer {
  const bytes = 'raw' in pub && Buffer.isBuffer(pub.raw) ? pub.raw : marshalTpmtPublic(pub);
  return prefixedDigest(pub.nameAlg, [bytes]);
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
  return prefixedDigest(nameAlg, [parentQualifiedName, name]);
}

/**
 * nameAlg (u16) ‖ H_nameAlg(parts…), written into one buffer. node's one-shot crypto.hash (Node
 * 20.12+) takes under half the time of createHash().update().digest() on a ~300-byte public area,
 * which was most of the Name check on every ReadPublic, CreatePrimary and Create; for the two
 * short Names of a Qualified Name, concatenating them first still costs less than streaming.
 */
function prefixedDigest(nameAlg: number, parts: readonly Buffer[]): Buffer {
  if (!isHashAlgorithm(nameAlg)) {
    // Not a hash this library knows: the u16 writer and digest() throw what they always threw
    // (RangeError for a value that is no u16, UnsupportedHashError for an unknown algorithm).
    return Buffer.concat([marshal((w) => w.u16(nameAlg)), digest(nameAlg, ...parts)]);
  }
  const hashed = hash(hashAlgorithm(nameAlg).node, parts.length === 1 ? parts[0]! : Buffer.concat(parts), 'buffer');
  const name = Buffer.allocUnsafe(2 + hashed.length);
  name.writeUInt16BE(nameAlg, 0);
  hashed.copy(name, 2);
  return name;
}
