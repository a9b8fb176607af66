import {
  algName,
  draw,
  eccLabeledEncapsulate,
  hashAlgorithm,
  isHashAlgorithm,
  objectName,
  oaepHashAlg,
  parseExact,
  rsaLabeledEncapsulate,
  TPM_ALG_ID,
  TPM_ECC_CURVE,
  TPMA_OBJECT,
  type RandomSource,
  systemRandom,
  type TPMT_PUBLIC,
} from '@rackseal/tpm2';
import { deliveryAckProof, type WrappedDelivery } from './ack-proof';
import { sealPayload } from './content-cipher';
import { CONTENT_KEY_BYTES, type EcdhKeyTransport, GCM_NONCE_BYTES, type OaepKeyTransport } from './envelope-format';
import { RecipientKeyError } from './wrapping-errors';

/**
 * The label of the content-key transport, without its NUL. RSA: the OAEP label is this string and
 * its terminating 0x00 ("rackseal-content-key-v1\0"), because TPM2_RSA_Decrypt (Part 3 §14.3,
 * Part 1 Annex B.4) takes only an empty or NUL-terminated label; ECC: the KDFe label (Part 1
 * §11.4.10.3, NUL included there too). Distinct from the TPM's own secret-sharing labels
 * ("SECRET", "DUPLICATE", "IDENTITY"), so a content-key ciphertext is never a salt, a seed or a
 * credential to the TPM, nor the other way round.
 */
export const CONTENT_KEY_LABEL = 'rackseal-content-key-v1';

/** The OAEP label as the TPM and node:crypto take it: CONTENT_KEY_LABEL ‖ 0x00. */
export const CONTENT_KEY_OAEP_LABEL = Buffer.concat([Buffer.from(CONTENT_KEY_LABEL, 'latin1'), Buffer.alloc(1)]);

const ECDH_CURVES = new Set<number>([TPM_ECC_CURVE.TPM_ECC_NIST_P256, TPM_ECC_CURVE.TPM_ECC_NIST_P384, TPM_ECC_CURVE.TPM_ECC_NIST_P521]);

/**
 * Where the randomness comes from: the content key, the RSA OAEP seed, the ECC ephemeral key, the
 * GCM nonce. Default the system CSPRNG; tests pass a recording or fixed source (the bus capture
 * must know the content key it searches for).
 */
export interface WrapOptions {
  readonly random?: RandomSource;
  /** ECC only: the ephemeral private scalar (default a fresh key pair). */
  readonly ephemeralPrivateKey?: Buffer;
}

export interface WrapAddress {
  /** The delivery this envelope answers (issue 14): authenticated, checked by the agent. */
  readonly deliveryId: string;
  readonly secretVersion: number;
}

/** The certified key can take a content key: an unrestricted decrypt key whose scheme the TPM will use as we do. */
function checkRecipient(key: TPMT_PUBLIC): void {
  const attributes = key.objectAttributes;
  if ((attributes & TPMA_OBJECT.decrypt) === 0 || (attributes & TPMA_OBJECT.restricted) !== 0) {
    // A restricted key refuses RSA_Decrypt and ECDH_ZGen (TPM_RC_ATTRIBUTES).
    throw new RecipientKeyError('it is not an unrestricted decryption key');
  }
  if (!isHashAlgorithm(key.nameAlg) || hashAlgorithm(key.nameAlg).size < CONTENT_KEY_BYTES) {
    throw new RecipientKeyError(`its nameAlg ${algName(key.nameAlg)} is not SHA-256 or stronger`);
  }
  if (key.type === TPM_ALG_ID.TPM_ALG_RSA) {
    const scheme = key.parameters.scheme.scheme;
    // RSA_Decrypt with inScheme OAEP needs the key's scheme NULL or that same OAEP (TPM_RC_SCHEME).
    if (scheme !== TPM_ALG_ID.TPM_ALG_NULL && scheme !== TPM_ALG_ID.TPM_ALG_OAEP) {
      throw new RecipientKeyError(`its scheme ${algName(scheme)} is not NULL or OAEP`);
    }
    if (key.parameters.keyBits < 2048) {
      throw new RecipientKeyError(`RSA-${key.parameters.keyBits} is below 2048 bits`);
    }
    return;
  }
  if (key.type === TPM_ALG_ID.TPM_ALG_ECC) {
    const scheme = key.parameters.scheme.scheme;
    if (scheme !== TPM_ALG_ID.TPM_ALG_NULL && scheme !== TPM_ALG_ID.TPM_ALG_ECDH) {
      throw new RecipientKeyError(`its scheme ${algName(scheme)} is not NULL or ECDH (ECDH_ZGen refuses it)`);
    }
    if (!ECDH_CURVES.has(key.parameters.curveID)) {
      throw new RecipientKeyError(`curve 0x${key.parameters.curveID.toString(16)} is not NIST P-256, P-384 or P-521`);
    }
    return;
  }
  throw new RecipientKeyError(`it is a ${algName(key.type)} object, not an RSA or ECC key`);
}

/**
 * The `certified-key` binding: `payload` AES-256-GCM-encrypted under a fresh content key, which is
 * sent to the machine's certified decrypt key (its public area as certified, issue 13 item 1):
 *
 * - RSA: content key = 32 random bytes, RSAES-OAEP (RFC 8017 §7.1) with the key's OAEP hash (its
 *   OAEP scheme's hash, else its nameAlg: SHA-256 for CERTIFIED_DECRYPT_KEY_TEMPLATE), MGF1 of that
 *   hash and label CONTENT_KEY_OAEP_LABEL: TPM2_RSA_Decrypt undoes exactly this. With a hash
 *   longer than 32 bytes the OAEP message is as long as the hash and the content key its first 32.
 * - ECC: one-pass Diffie-Hellman (Part 1 Annex C.6.1) with an ephemeral key on the key's curve;
 *   content key = KDFe(nameAlg, Z, CONTENT_KEY_LABEL, x_ephemeral, x_key, 256) (§11.4.10.3). The
 *   agent recovers Z with TPM2_ECDH_ZGen.
 *
 * libs/tpm2's labeled encapsulation makes both (the same arithmetic as a TPM seed, another label).
 */
export function wrapToCertifiedKey(key: TPMT_PUBLIC, payload: Buffer, address: WrapAddress, options: WrapOptions = {}): Buffer {
  return certifiedKeyWrap(key, payload, address, options, false).envelope;
}

/**
 * wrapToCertifiedKey for a delivery: the envelope and its ack proof (deliveryAckProof), computed
 * from the content key before it is zeroed, so the key never leaves this call.
 */
export function wrapDeliveryToCertifiedKey(key: TPMT_PUBLIC, payload: Buffer, address: WrapAddress, options: WrapOptions = {}): WrappedDelivery {
  const wrapped = certifiedKeyWrap(key, payload, address, options, true);
  return { envelope: wrapped.envelope, ackProof: wrapped.ackProof! };
}

function certifiedKeyWrap(key: TPMT_PUBLIC, payload: Buffer, address: WrapAddress, options: WrapOptions, proof: boolean): { envelope: Buffer; ackProof?: Buffer } {
  checkRecipient(key);
  const recipient = objectName(key);
  let transport: OaepKeyTransport | EcdhKeyTransport;
  let seed: Buffer;
  if (key.type === TPM_ALG_ID.TPM_ALG_RSA) {
    const hashAlg = oaepHashAlg(key);
    const size = hashAlgorithm(hashAlg).size;
    // An injected source also draws the OAEP seed (libs/tpm2's encoder); else OpenSSL's OAEP does.
    const encapsulated = options.random === undefined
      ? rsaLabeledEncapsulate(key, CONTENT_KEY_LABEL, systemRandom(size))
      : rsaLabeledEncapsulate(key, CONTENT_KEY_LABEL, draw(options.random, size), draw(options.random, size));
    seed = encapsulated.seed;
    transport = { binding: 'certified-key', keyTransport: TPM_ALG_ID.TPM_ALG_OAEP, recipient, hashAlg, encryptedKey: encapsulated.encryptedSecret };
  } else if (key.type === TPM_ALG_ID.TPM_ALG_ECC) {
    const encapsulated = eccLabeledEncapsulate(key, CONTENT_KEY_LABEL, options.ephemeralPrivateKey);
    seed = encapsulated.seed;
    const ephemeral = parseExact(encapsulated.encryptedSecret, 'TPMS_ECC_POINT', (r) => ({ x: r.tpm2b('x'), y: r.tpm2b('y') }));
    transport = { binding: 'certified-key', keyTransport: TPM_ALG_ID.TPM_ALG_ECDH, recipient, hashAlg: key.nameAlg, curveID: key.parameters.curveID, ephemeral };
  } else {
    throw new RecipientKeyError('not an RSA or ECC key');
  }
  const contentKey = Buffer.from(seed.subarray(0, CONTENT_KEY_BYTES));
  seed.fill(0);
  try {
    const envelope = sealPayload({ ...address, transport }, contentKey, payload, draw(options.random ?? systemRandom, GCM_NONCE_BYTES));
    return proof ? { envelope, ackProof: deliveryAckProof(contentKey, address.deliveryId) } : { envelope };
  } finally {
    contentKey.fill(0);
  }
}
