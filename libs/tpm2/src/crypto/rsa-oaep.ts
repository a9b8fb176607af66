import { constants, createHash, type KeyObject, publicEncrypt } from 'node:crypto';
import { hashAlgorithm } from '../hash-algorithms';

/** RFC 8017 §B.2.1 MGF1: T = H(seed ‖ u32(0)) ‖ H(seed ‖ u32(1)) ‖ …, truncated to `length`. */
export function mgf1(hashAlg: number, seed: Uint8Array, length: number): Buffer {
  const { node, size } = hashAlgorithm(hashAlg);
  const blocks: Buffer[] = [];
  for (let counter = 0; counter * size < length; counter += 1) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(createHash(node).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i += 1) {
    out[i] = a[i]! ^ b[i]!;
  }
  return out;
}

/**
 * RSAES-OAEP encryption, RFC 8017 §7.1.1, with the EME-OAEP seed given by the caller. The TPM's
 * labeled encapsulation for RSA keys (Part 1 Annex B.10) is OAEP with hash and MGF1 hash = the key's OAEP hash; a
 * fixed seed is what makes go-tpm's vectors reproducible, a random one is production. node:crypto's
 * own OAEP cannot take a seed, so the padding is built here and RSAEP done with RSA_NO_PADDING.
 */
export function rsaesOaepEncrypt(key: KeyObject, hashAlg: number, label: Uint8Array, message: Uint8Array, seed: Uint8Array): Buffer {
  const { node, size: hLen } = hashAlgorithm(hashAlg);
  const modulusBits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || modulusBits === undefined) {
    throw new RangeError('RSAES-OAEP needs an RSA public key');
  }
  const k = Math.ceil(modulusBits / 8);
  if (seed.length !== hLen) {
    throw new RangeError(`OAEP seed must be ${hLen} bytes, got ${seed.length}`);
  }
  // Step 1b: "message too long".
  if (message.length > k - 2 * hLen - 2) {
    throw new RangeError(`message of ${message.length} bytes is too long for OAEP with a ${k}-byte modulus`);
  }
  // Step 2: DB = lHash ‖ PS ‖ 0x01 ‖ M, of k − hLen − 1 bytes.
  const lHash = createHash(node).update(label).digest();
  const ps = Buffer.alloc(k - message.length - 2 * hLen - 2);
  const db = Buffer.concat([lHash, ps, Buffer.from([0x01]), message]);
  const maskedDB = xor(db, mgf1(hashAlg, seed, k - hLen - 1));
  const maskedSeed = xor(Buffer.from(seed), mgf1(hashAlg, maskedDB, hLen));
  const em = Buffer.concat([Buffer.from([0x00]), maskedSeed, maskedDB]);
  return publicEncrypt({ key, padding: constants.RSA_NO_PADDING }, em);
}

