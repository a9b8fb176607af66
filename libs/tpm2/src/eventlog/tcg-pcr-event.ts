import type { TpmReader } from '../codec/tpm-reader';
import type { TpmWriter } from '../codec/tpm-writer';
import { TPM_ALG_ID } from '../constants';
import type { EventDigest } from './digest-check';

/** The fields every event record has, whichever of the two structures carried it. */
export interface TcgEventFields {
  readonly pcrIndex: number;
  readonly eventType: number;
  readonly digests: readonly EventDigest[];
  /** The event data (PFP: `event`), eventSize bytes. */
  readonly event: Buffer;
}

const SHA1_DIGEST_SIZE = 20;

/**
 * PFP §10.2.1 TCG_PCClientPCREvent, a.k.a. TCG_PCR_EVENT: the SHA-1-only record of a legacy log,
 * and the first record (the Spec ID event) of a crypto-agile log. All fields little-endian.
 *   u32 pcrIndex ‖ u32 eventType ‖ digest[20] ‖ u32 eventDataSize ‖ event[eventDataSize]
 */
export function readTcgPcrEvent(r: TpmReader): TcgEventFields {
  const pcrIndex = r.u32le('pcrIndex');
  const eventType = r.u32le('eventType');
  const digest = r.bytesOf(SHA1_DIGEST_SIZE, 'digest');
  const sizeOffset = r.offset;
  const eventDataSize = r.u32le('eventDataSize');
  // Checked before anything is allocated: a garbage size must not become a 4 GiB Buffer.
  if (eventDataSize > r.remaining) {
    throw r.error('eventDataSize', `${eventDataSize} byte(s) of event data, ${r.remaining} left in the log`, sizeOffset);
  }
  const event = r.bytesOf(eventDataSize, 'event');
  return { pcrIndex, eventType, digests: [{ hashAlg: TPM_ALG_ID.TPM_ALG_SHA1, digest }], event };
}

export function writeTcgPcrEvent(w: TpmWriter, fields: TcgEventFields): void {
  const sha1 = fields.digests.length === 1 ? fields.digests[0] : undefined;
  if (sha1 === undefined || sha1.hashAlg !== TPM_ALG_ID.TPM_ALG_SHA1 || sha1.digest.length !== SHA1_DIGEST_SIZE) {
    throw new RangeError('a TCG_PCR_EVENT carries exactly one SHA-1 digest');
  }
  w.u32le(fields.pcrIndex).u32le(fields.eventType).bytes(sha1.digest).u32le(fields.event.length).bytes(fields.event);
}
