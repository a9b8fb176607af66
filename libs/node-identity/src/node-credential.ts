import { SecretBytes } from '@rackseal/config/secret-bytes';
import { activatedSecretBytes } from './activated-secret';
import { lengthPrefixed } from './fields';
import { hkdfSha256 } from './hkdf';
import { checkAkName, checkEkPubHash, checkRegistrationId } from './identifiers';

/**
 * The node credential: what a machine authenticates its node API calls with after enrollment
 * (docs/decisions.md, "Node identity"). The agent and the control plane each derive it from the
 * activated secret of the registration that attested the machine, so it never crosses the network;
 * each re-attestation has a new registration and a new secret, so the credential rotates.
 *
 * Both outputs are HKDF-SHA256 (RFC 5869) of the activated secret with an empty salt (the secret is
 * uniformly random, §3.1) and an info that binds, length-prefixed, a version label, the output's
 * purpose and the whole context: registration ID, ekPubHash and the AK's Name (§3.2). The ID and
 * the key are separate expansions, so publishing the ID tells nothing about the key.
 */

const CREDENTIAL_LABEL = 'rackseal node credential v1';
const KEY_BYTES = 32;
const ID_BYTES = 16;

export interface NodeCredentialContext {
  /** The registration whose activated secret this is. */
  readonly registrationId: string;
  /** The machine's EK, as the inventory names it (lower-case hex SHA-256). */
  readonly ekPubHash: string;
  /** The Name of the AK the registration activated (TPM 2.0 Library Part 2 §10.5.3). */
  readonly akName: Buffer;
}

export interface NodeCredential {
  /** Public identifier the server looks the key up by. */
  readonly credentialId: string;
  /** The 256-bit HMAC-SHA256 key requests are signed with. */
  readonly key: SecretBytes;
}

export function deriveNodeCredential(activatedSecret: SecretBytes | Buffer, context: NodeCredentialContext): NodeCredential {
  const fields = [checkRegistrationId(context.registrationId), checkEkPubHash(context.ekPubHash), checkAkName(context.akName)];
  const secret = activatedSecretBytes(activatedSecret);
  const derive = (purpose: string, length: number): Buffer => hkdfSha256(secret, Buffer.alloc(0), lengthPrefixed([CREDENTIAL_LABEL, purpose, ...fields]), length);
  const key = derive('key', KEY_BYTES);
  try {
    return { credentialId: derive('id', ID_BYTES).toString('hex'), key: new SecretBytes(key) };
  } finally {
    key.fill(0);
  }
}
