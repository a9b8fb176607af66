// Single files, not the libraries' indexes: boot unlock runs through here (docs/decisions.md "Boot
// unlock loads single files"). The certified-key half is loaded by import() when an envelope needs it.
import type { ApprovalsResponse } from '@rackseal/node-api-contracts/approvals';
import type { TpmClient } from '@rackseal/tpm2/client/tpm-client';
import type { KeyBlob } from '@rackseal/tpm2/operations/key-blob';
import { withTpmScope } from '@rackseal/tpm2/operations/tpm-scope';
import { deliveryAckProof } from '@rackseal/wrapping/ack-proof';
import { openPayload } from '@rackseal/wrapping/content-cipher';
import { parseEnvelope, type ParsedEnvelope, type PcrSealedKeyTransport } from '@rackseal/wrapping/envelope-format';
import { chooseEk } from '../enrollment/choose-ek';
import { approvalsFor, currentApproval, unsealWithApproval } from './pcr-sealed-unwrap';
import { EnvelopeRecipientError, UnwrapRefusal } from './unwrap-errors';

/** What the agent holds that an envelope may be addressed to (its state dir's identity and certified key). */
export interface UnwrapKeys {
  /** identity.json's ekPubHash: the EK pcr-sealed envelopes are wrapped to. */
  readonly ekPubHash: string;
  /** certified-key.blob (loadCertifiedKey): the key certified-key envelopes are wrapped to. */
  readonly certifiedKey?: KeyBlob;
}

export interface UnwrapOptions {
  /** GET /node/v1/approvals' answer: needed for a pcr-sealed envelope. */
  readonly approvals?: ApprovalsResponse;
  /** The delivery the caller asked for: an envelope of another delivery or version is refused. */
  readonly expect?: { readonly deliveryId: string; readonly secretVersion: number };
  /**
   * `false`: no salted session and no parameter encryption, the content key in clear on the bus.
   * Only the bus-capture test's negative control passes it.
   */
  readonly salt?: false;
}

/**
 * The payload of an envelope made by libs/wrapping for this machine, decrypted with its TPM — the
 * one function deliveries and boot unlock call (docs/decisions.md "Wrapping and the envelope
 * format"). In order, each refusal typed:
 *
 * 1. parseEnvelope: format, version, algorithms, limits (libs/wrapping errors);
 * 2. without the TPM: the delivery (`expect`), the recipient (the certified key's Name, or the EK's
 *    ekPubHash) and for pcr-sealed the approvals' group, epoch, policyRef and signing key Name
 *    (EnvelopeRecipientError, UnwrapRefusal);
 * 3. in the TPM, in one TpmScope (every object and session flushed whatever happens):
 *    certified-key — the key blob loaded under its Name-checked parent (the storage primary), then
 *    RSA_Decrypt or ECDH_ZGen in an HMAC session salted to that parent with response encryption;
 *    pcr-sealed — the EK found by ekPubHash, PCR_Read → the matching approval (NoApprovalError) →
 *    LoadExternal (owner) → VerifySignature → Import + PolicyPCR + PolicyAuthorize + Unseal salted
 *    to the EK;
 * 4. AES-256-GCM with the header as AAD (EnvelopeAuthenticationError on any edit).
 */
export async function unwrapEnvelope(client: TpmClient, envelope: Buffer, keys: UnwrapKeys, options: UnwrapOptions = {}): Promise<Buffer> {
  return (await unwrap(client, envelope, keys, options, false)).payload;
}

/** A delivery unwrapped: its payload and the proof of unwrap its ack carries. */
export interface UnwrappedDelivery {
  readonly payload: Buffer;
  /** HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id): libs/wrapping deliveryAckProof. */
  readonly ackProof: Buffer;
  /** The delivery id and secret version the envelope's authenticated header names. */
  readonly deliveryId: string;
  readonly secretVersion: number;
}

/**
 * unwrapEnvelope for the delivery loop: the payload and the ack proof, computed from the content
 * key after the tag verified and before the key is zeroed (it never leaves this call).
 */
export async function unwrapDelivery(client: TpmClient, envelope: Buffer, keys: UnwrapKeys, options: UnwrapOptions = {}): Promise<UnwrappedDelivery> {
  const opened = await unwrap(client, envelope, keys, options, true);
  return { payload: opened.payload, ackProof: opened.ackProof!, deliveryId: opened.parsed.deliveryId, secretVersion: opened.parsed.secretVersion };
}

async function unwrap(client: TpmClient, envelope: Buffer, keys: UnwrapKeys, options: UnwrapOptions, proof: boolean): Promise<{ payload: Buffer; ackProof?: Buffer; parsed: ParsedEnvelope }> {
  const parsed = parseEnvelope(envelope);
  if (options.expect !== undefined && (parsed.deliveryId !== options.expect.deliveryId || parsed.secretVersion !== options.expect.secretVersion)) {
    throw new UnwrapRefusal(
      'unwrap.wrong-delivery',
      `the envelope is delivery ${JSON.stringify(parsed.deliveryId)} version ${parsed.secretVersion}, not the ${JSON.stringify(options.expect.deliveryId)} version ${options.expect.secretVersion} asked for`,
    );
  }
  const transport = parsed.transport;
  let contentKey: Buffer;
  if (transport.binding === 'certified-key') {
    const { certifiedKeyContentKey, checkCertifiedKeyRecipient } = await import('./certified-key-unwrap');
    const key = checkCertifiedKeyRecipient(transport, keys.certifiedKey);
    contentKey = await withTpmScope(client, (scope) => certifiedKeyContentKey(scope, key, transport, options.salt));
  } else {
    const approvals = checkPcrSealedRecipient(transport, keys, options.approvals);
    contentKey = await withTpmScope(client, async (scope) => {
      const { ek } = await chooseEk(scope, { ekPubHash: keys.ekPubHash });
      const approval = await currentApproval(scope, transport, approvals);
      return unsealWithApproval(scope, ek, transport, approvals, approval, options.salt);
    });
  }
  return { ...openWith(parsed, contentKey, proof), parsed };
}

function openWith(parsed: ParsedEnvelope, contentKey: Buffer, proof: boolean): { payload: Buffer; ackProof?: Buffer } {
  try {
    const payload = openPayload(parsed, contentKey);
    // Only after the tag verified: a proof is never made from a key that did not open this envelope.
    return proof ? { payload, ackProof: deliveryAckProof(contentKey, parsed.deliveryId) } : { payload };
  } finally {
    contentKey.fill(0);
  }
}

function checkPcrSealedRecipient(transport: PcrSealedKeyTransport, keys: UnwrapKeys, approvals: ApprovalsResponse | undefined) {
  if (transport.recipient.toString('hex') !== keys.ekPubHash) {
    throw new EnvelopeRecipientError('pcr-sealed', `EK ${keys.ekPubHash}`, `EK ${transport.recipient.toString('hex')}`);
  }
  if (approvals === undefined) {
    throw new UnwrapRefusal('unwrap.no-approvals', 'a pcr-sealed envelope opens only with the group\'s approvals (GET /node/v1/approvals), and none were given');
  }
  return approvalsFor(transport, approvals);
}
