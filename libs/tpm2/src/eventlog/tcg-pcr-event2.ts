import type { TpmReader } from '../codec/tpm-reader';
import type { TpmWriter } from '../codec/tpm-writer';
import { algName } from '../constants';
import type { EventDigest } from './digest-check';
import type { TCG_EfiSpecIDEvent } from './spec-id-event';
import type { TcgEventFields } from './tcg-pcr-event';

/**
 * PFP §10.2.2 TCG_PCR_EVENT2, every record after the Spec ID event of a crypto-agile log:
 *   u32 pcrIndex ‖ u32 eventType ‖ TPML_DIGEST_VALUES (u32 count ‖ {u16 hashAlg ‖ digest}×count)
 *   ‖ u32 eventSize ‖ event[eventSize]
 * Digest sizes come from the Spec ID event, so digests of algorithms we do not implement are still
 * stepped over. Every event must carry exactly one digest per declared algorithm (PFP: one per active
 * bank; Linux enforces the same since 5.9): an event missing a bank would make that bank's replay wrong.
 */
export function readTcgPcrEvent2(r: TpmReader, specId: TCG_EfiSpecIDEvent): TcgEventFields {
  const pcrIndex = r.u32le('pcrIndex');
  const eventType = r.u32le('eventType');
  const countOffset = r.offset;
  const count = r.u32le('digests.count');
  // Refused before the loop, so a garbage count costs nothing.
  if (count !== specId.digestSizes.length) {
    throw r.error(
      'digests.count',
      `${count} digest(s), but the Spec ID event declares ${specId.digestSizes.length} algorithm(s)`,
      countOffset,
    );
  }
  const digests: EventDigest[] = [];
  for (let i = 0; i < count; i += 1) {
    const algOffset = r.offset;
    const hashAlg = r.u16le(`digests[${i}].hashAlg`);
    const declared = specId.digestSizes.find((d) => d.algorithmId === hashAlg);
    if (declared === undefined) {
      throw r.error(`digests[${i}].hashAlg`, `${algName(hashAlg)} is not declared in the Spec ID event`, algOffset);
    }
    if (digests.some((d) => d.hashAlg === hashAlg)) {
      throw r.error(`digests[${i}].hashAlg`, `${algName(hashAlg)} appears twice`, algOffset);
    }
    digests.push({ hashAlg, digest: r.bytesOf(declared.digestSize, `digests[${i}].digest`) });
  }
  const sizeOffset = r.offset;
  const eventSize = r.u32le('eventSize');
  if (eventSize > r.remaining) {
    throw r.error('eventSize', `${eventSize} byte(s) of event data, ${r.remaining} left in the log`, sizeOffset);
  }
  const event = r.bytesOf(eventSize, 'event');
  return { pcrIndex, eventType, digests, event };
}

export function writeTcgPcrEvent2(w: TpmWriter, fields: TcgEventFields): void {
  w.u32le(fields.pcrIndex).u32le(fields.eventType).u32le(fields.digests.length);
  for (const d of fields.digests) {
    w.u16le(d.hashAlg).bytes(d.digest);
  }
  w.u32le(fields.event.length).bytes(fields.event);
}
