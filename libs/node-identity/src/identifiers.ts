import { NodeIdentityInputError } from './node-identity-errors';

// The context values both sides bind into the derivations. They are checked here so that the agent
// and the control plane cannot derive from differently written values (e.g. an upper-case hash)
// and get two different credentials without noticing.

/** A registration ID: printable ASCII without spaces (the control plane issues UUIDs). */
const REGISTRATION_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** An ekPubHash as the inventory stores it: lower-case hex SHA-256 (docs/architecture.md §3). */
const EK_PUB_HASH_PATTERN = /^[0-9a-f]{64}$/;

/**
 * A credential ID (node-credential.ts): 32 lower-case hex digits. Public: it travels in the
 * Authorization header. Here with the other identifiers so that the agent's state dir checks it
 * without loading the credential derivation (docs/decisions.md "Boot unlock loads single files").
 */
export const NODE_CREDENTIAL_ID_PATTERN = /^[0-9a-f]{32}$/;

/** A TPM2B_NAME's content (TPM 2.0 Library Part 2 §10.5.3): a handle (4 bytes) or nameAlg ‖ digest, at most 2 + 64. */
const MIN_NAME_BYTES = 4;
const MAX_NAME_BYTES = 66;

export function checkRegistrationId(registrationId: string): string {
  if (typeof registrationId !== 'string' || !REGISTRATION_ID_PATTERN.test(registrationId)) {
    throw new NodeIdentityInputError('a registration ID is 1 to 128 printable ASCII characters without spaces');
  }
  return registrationId;
}

export function checkEkPubHash(ekPubHash: string): string {
  if (typeof ekPubHash !== 'string' || !EK_PUB_HASH_PATTERN.test(ekPubHash)) {
    throw new NodeIdentityInputError('an ekPubHash is 64 lower-case hex digits');
  }
  return ekPubHash;
}

export function checkAkName(akName: Buffer): Buffer {
  if (!Buffer.isBuffer(akName) || akName.length < MIN_NAME_BYTES || akName.length > MAX_NAME_BYTES) {
    throw new NodeIdentityInputError(`an AK Name is ${MIN_NAME_BYTES} to ${MAX_NAME_BYTES} bytes`);
  }
  return akName;
}
