import { SecretBytes } from '@rackseal/config/secret-bytes';
import { NodeIdentityInputError } from './node-identity-errors';

/**
 * The secret a TPM2_ActivateCredential returned (TPM 2.0 Library Part 3 §12.5): the control plane
 * chose it for MakeCredential, the TPM holding the EK and the AK gave it back. It is a TPM2B_DIGEST
 * (Part 2 §10.4.2), so at most the size of the EK's name digest; rackseal uses 32 bytes, and fewer
 * than 16 would be too weak a root for the keys derived from it.
 */
export const MIN_ACTIVATED_SECRET_BYTES = 16;
export const MAX_ACTIVATED_SECRET_BYTES = 64;

/** The bytes of an activated secret given as SecretBytes or a Buffer, its size checked. */
export function activatedSecretBytes(secret: SecretBytes | Buffer): Buffer {
  const bytes = secret instanceof SecretBytes ? secret.reveal() : secret;
  if (bytes.length < MIN_ACTIVATED_SECRET_BYTES || bytes.length > MAX_ACTIVATED_SECRET_BYTES) {
    throw new NodeIdentityInputError(
      `an activated secret is ${MIN_ACTIVATED_SECRET_BYTES} to ${MAX_ACTIVATED_SECRET_BYTES} bytes, not ${bytes.length}`,
    );
  }
  return bytes;
}
