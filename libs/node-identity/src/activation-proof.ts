import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { activatedSecretBytes } from './activated-secret';
import { lengthPrefixed } from './fields';
import { hkdfSha256 } from './hkdf';
import { checkRegistrationId } from './identifiers';
import { NodeIdentityInputError } from './node-identity-errors';

/**
 * The proof the agent sends in the attestation finish call that its TPM activated the credential
 * (TPM2_ActivateCredential, TPM 2.0 Library Part 3 §12.5): an HMAC-SHA256 under a key derived from
 * the activated secret, over the registration ID and its nonce. The secret itself never crosses
 * the network, and a proof made for one registration or nonce does not verify for another.
 *
 * The proof key is HKDF-SHA256 (RFC 5869) of the secret with its own label as info: the secret is
 * uniformly random (the control plane draws it), so an empty salt is enough (§3.1), and the label
 * keeps this key apart from the node credential derived from the same secret (§3.2).
 */

const PROOF_KEY_INFO = Buffer.from('rackseal activation proof v1');
const PROOF_KEY_BYTES = 32;

/** An activation proof is one HMAC-SHA256 output. */
export const ACTIVATION_PROOF_BYTES = 32;

/** A registration's nonce as the control plane issues it. */
const MIN_NONCE_BYTES = 16;
const MAX_NONCE_BYTES = 64;

/** The proof that the holder of `activatedSecret` finishes `registrationId`, whose nonce is `nonce`. */
export function activationProof(activatedSecret: SecretBytes | Buffer, registrationId: string, nonce: Buffer): Buffer {
  checkRegistrationId(registrationId);
  if (!Buffer.isBuffer(nonce) || nonce.length < MIN_NONCE_BYTES || nonce.length > MAX_NONCE_BYTES) {
    throw new NodeIdentityInputError(`a registration nonce is ${MIN_NONCE_BYTES} to ${MAX_NONCE_BYTES} bytes`);
  }
  const key = hkdfSha256(activatedSecretBytes(activatedSecret), Buffer.alloc(0), PROOF_KEY_INFO, PROOF_KEY_BYTES);
  try {
    return createHmac('sha256', key).update(lengthPrefixed([registrationId, nonce])).digest();
  } finally {
    key.fill(0);
  }
}

/**
 * Whether `proof` is the activation proof for `registrationId` and `nonce` under `activatedSecret`;
 * compared in constant time. A proof of another length is false, not an error: it came from the
 * network.
 */
export function verifyActivationProof(activatedSecret: SecretBytes | Buffer, registrationId: string, nonce: Buffer, proof: Buffer): boolean {
  const expected = activationProof(activatedSecret, registrationId, nonce);
  return Buffer.isBuffer(proof) && proof.length === expected.length && timingSafeEqual(expected, proof);
}
