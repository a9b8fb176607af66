import { constants, createECDH, type ECDH, publicEncrypt } from 'node:crypto';
import { marshal } from '../codec/tpm-writer';
import { algName, TPM_ALG_ID } from '../constants';
import { hashAlgorithm } from '../hash-algorithms';
import { curveById, KeyConversionError, leftPad, publicKeyFromTpmt } from '../keys';
import type { EccPublic, RsaPublic, TPMT_PUBLIC } from '../structures/tpmt-public';
import { ProtectorKeyError } from './errors';
import { KDFe } from './kdf';
import { rsaesOaepEncrypt } from './rsa-oaep';
import { draw, type RandomSource, systemRandom } from './random';

/**
 * Labels of the secret-sharing uses: credential protection (Part 1 §24), duplication (§23) and
 * salted sessions. Passed without the terminating NUL; each scheme adds it.
 */
export const ENCAPSULATION_LABEL = {
  IDENTITY: 'IDENTITY',
  DUPLICATE: 'DUPLICATE',
  SECRET: 'SECRET',
} as const;

/**
 * The outcome of labeled encapsulation to a TPM key: a `seed` only the holder of the private key
 * can recover, and `encryptedSecret`, the content of the TPM2B_ENCRYPTED_SECRET that carries it
 * (TPMU_ENCRYPTED_SECRET, Part 2 §11.4.33: the RSA ciphertext, or the marshalled TPMS_ECC_POINT of
 * the ephemeral key).
 */
export interface LabeledEncapsulation {
  readonly seed: Buffer;
  readonly encryptedSecret: Buffer;
}

export interface EncapsulationOptions {
  /** Source of the RSA seed and OAEP seed. Default: the system CSPRNG. */
  readonly random?: RandomSource;
  /** ECC only: the ephemeral private scalar, big-endian. Default: a fresh key pair per call. */
  readonly ephemeralPrivateKey?: Buffer;
}

/** OpenSSL's names for the curves curveById knows (createECDH does not take JOSE names). */
const ECDH_CURVE_NAMES: Readonly<Record<string, string>> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
};

/**
 * The OAEP hash of an RSA key: the hash of its OAEP scheme when it names one, else its nameAlg
 * (restricted decryption keys such as EKs must have scheme NULL, so for them it is the nameAlg).
 */
export function oaepHashAlg(pub: RsaPublic): number {
  const { scheme } = pub.parameters;
  if (scheme.scheme === TPM_ALG_ID.TPM_ALG_OAEP && scheme.hashAlg !== undefined && scheme.hashAlg !== TPM_ALG_ID.TPM_ALG_NULL) {
    return scheme.hashAlg;
  }
  return pub.nameAlg;
}

/**
 * RSA secret sharing (Part 1 Annex B.10): encryptedSecret = RSAES-OAEP(key, seed) with the OAEP hash,
 * MGF1 over that hash, and the OAEP label = `label` ‖ 0x00. The seed is as long as the OAEP hash.
 * `oaepSeed` is RFC 8017's random seed. Given (to replay vectors, or with an injected random
 * source), the padding is built by rsaesOaepEncrypt; omitted, OpenSSL's OAEP draws it, which is
 * the same encoding at less than half the cost (the swtpm oracle tests prove that path).
 */
export function rsaLabeledEncapsulate(pub: RsaPublic, label: string, seed: Buffer, oaepSeed?: Buffer): LabeledEncapsulation {
  const hashAlg = oaepHashAlg(pub);
  const size = hashAlgorithm(hashAlg).size;
  if (seed.length !== size) {
    throw new RangeError(`seed must be ${size} bytes (${algName(hashAlg)}), got ${seed.length}`);
  }
  let key;
  try {
    key = publicKeyFromTpmt(pub);
  } catch (error) {
    throw new ProtectorKeyError(`RSA public area is unusable: ${(error as Error).message}`);
  }
  const oaepLabel = Buffer.concat([Buffer.from(label, 'latin1'), Buffer.alloc(1)]);
  const encryptedSecret =
    oaepSeed === undefined
      ? publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashAlgorithm(hashAlg).node, oaepLabel }, seed)
      : rsaesOaepEncrypt(key, hashAlg, oaepLabel, seed, oaepSeed);
  return { seed: Buffer.from(seed), encryptedSecret };
}

function ecdhFor(pub: EccPublic): { ecdh: ECDH; size: number } {
  let curve;
  try {
    curve = curveById(pub.parameters.curveID);
  } catch (error) {
    throw new ProtectorKeyError((error as KeyConversionError).message);
  }
  const openssl = ECDH_CURVE_NAMES[curve.jwk];
  if (openssl === undefined) {
    throw new ProtectorKeyError(`no ECDH for curve ${curve.jwk}`);
  }
  return { ecdh: createECDH(openssl), size: curve.size };
}

/**
 * ECC secret sharing, one-pass Diffie-Hellman (Part 1 Annex C.6.1 and §11.4.10.3): an ephemeral key
 * on the protector's curve; Z = x(d_eph · Q); seed = KDFe(nameAlg, Z, label, x_eph, x_Q,
 * 8·|nameAlg|); encryptedSecret = TPMS_ECC_POINT(ephemeral public) with full-length coordinates.
 */
export function eccLabeledEncapsulate(pub: EccPublic, label: string, ephemeralPrivateKey?: Buffer): LabeledEncapsulation {
  const { ecdh, size } = ecdhFor(pub);
  if (ephemeralPrivateKey === undefined) {
    ecdh.generateKeys();
  } else {
    try {
      ecdh.setPrivateKey(ephemeralPrivateKey);
    } catch {
      throw new RangeError(`ephemeral private key is not a valid scalar for curve 0x${pub.parameters.curveID.toString(16)}`);
    }
  }
  let qx: Buffer;
  let qy: Buffer;
  try {
    qx = leftPad(pub.unique.x, size);
    qy = leftPad(pub.unique.y, size);
  } catch (error) {
    throw new ProtectorKeyError(`ECC public point is malformed: ${(error as Error).message}`);
  }
  let Z: Buffer;
  try {
    Z = ecdh.computeSecret(Buffer.concat([Buffer.from([0x04]), qx, qy]));
  } catch {
    throw new ProtectorKeyError('ECC public point is not on its curve');
  }
  const ephemeral = ecdh.getPublicKey(); // 0x04 ‖ X ‖ Y, each `size` bytes
  const ephX = ephemeral.subarray(1, 1 + size);
  const ephY = ephemeral.subarray(1 + size);
  const seed = KDFe(pub.nameAlg, Z, label, ephX, qx, 8 * hashAlgorithm(pub.nameAlg).size);
  return { seed, encryptedSecret: marshal((w) => w.tpm2b(ephX).tpm2b(ephY)) };
}

/** Labeled encapsulation to an RSA or ECC public area, with fresh randomness unless given. */
export function labeledEncapsulate(pub: TPMT_PUBLIC, label: string, options: EncapsulationOptions = {}): LabeledEncapsulation {
  const random = options.random ?? systemRandom;
  switch (pub.type) {
    case TPM_ALG_ID.TPM_ALG_RSA: {
      const size = hashAlgorithm(oaepHashAlg(pub)).size;
      const seed = draw(random, size);
      // An injected random source also decides the OAEP seed, so such runs are fully reproducible.
      return rsaLabeledEncapsulate(pub, label, seed, options.random === undefined ? undefined : draw(random, size));
    }
    case TPM_ALG_ID.TPM_ALG_ECC:
      return eccLabeledEncapsulate(pub, label, options.ephemeralPrivateKey);
    default:
      throw new ProtectorKeyError(`${algName(pub.type)} objects cannot receive an encapsulated secret (RSA or ECC only)`);
  }
}
