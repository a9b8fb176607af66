import { TpmParseError } from '../codec/tpm-parse-error';
import { TpmReader } from '../codec/tpm-reader';
import { marshal, TpmWriter } from '../codec/tpm-writer';
import { TPM_ALG_ID } from '../constants';
import { checkDigests, type DigestCheck, isDigestVerified } from './digest-check';
import { decodeEventData, type EventData } from './event-data';
import { EV, eventTypeName } from './event-types';
import { hasSpecIdEvent03Signature, readSpecIdEvent, type TCG_EfiSpecIDEvent, writeSpecIdEvent } from './spec-id-event';
import { readTcgPcrEvent, type TcgEventFields, writeTcgPcrEvent } from './tcg-pcr-event';
import { readTcgPcrEvent2, writeTcgPcrEvent2 } from './tcg-pcr-event2';

/** `crypto-agile`: Spec ID Event03 header then TCG_PCR_EVENT2; `sha1`: every record a TCG_PCR_EVENT. */
export type EventLogFormat = 'crypto-agile' | 'sha1';

/** One record of the log, parsed, with its raw bytes and offset kept beside the parsed values. */
export interface TcgPcrEvent extends TcgEventFields {
  /** Position in the log from 0; in a crypto-agile log 0 is the Spec ID event (as tpm2_eventlog's EventNum). */
  readonly index: number;
  /** Byte offset of the record in the log. */
  readonly offset: number;
  /** The record's bytes exactly as in the log. */
  readonly raw: Buffer;
  readonly structure: 'TCG_PCR_EVENT' | 'TCG_PCR_EVENT2';
  readonly eventTypeName: string;
  /** The event data decoded where the PFP defines it (never trusted on its own: see digestCheck). */
  readonly data: EventData;
  readonly digestCheck: DigestCheck;
  /**
   * Every digest was recomputed from the whole event data (digestCheck `event-data`): only then is
   * `data` what was measured. Replay never needs it; it only says whether decoded data can be trusted.
   */
  readonly digestVerified: boolean;
}

export interface TcgEventLog {
  readonly format: EventLogFormat;
  /** The crypto-agile header's TCG_EfiSpecIDEvent; undefined for a SHA-1 log. */
  readonly specId: TCG_EfiSpecIDEvent | undefined;
  /** The banks the log carries digests for, in Spec ID order (TPM_ALG_SHA1 alone for a SHA-1 log). */
  readonly algorithms: readonly number[];
  /** Every record, the Spec ID header and EV_NO_ACTION events included. */
  readonly events: readonly TcgPcrEvent[];
  /** 0x00/0xFF fill after the last event, treated as the end of the log (see parseEventLog). */
  readonly padding: { readonly offset: number; readonly length: number } | undefined;
}

/**
 * PC Client TPMs have PCRs 0–23 (PC Client Platform TPM Profile, PCR requirements). An event that
 * extends any other index cannot be replayed; EV_NO_ACTION is never extended, and Windows logs
 * EV_NO_ACTION events on PCR 0xFFFFFFFF (option_rom_eventlog, where tpm2_eventlog 5.4 segfaults).
 */
export const PC_CLIENT_PCR_COUNT = 24;

/**
 * Parses a TCG PC Client event log (`/sys/kernel/security/tpm0/binary_bios_measurements`).
 *
 * Format: the first record is always a TCG_PCR_EVENT; if it is EV_NO_ACTION carrying
 * "Spec ID Event03" the log is crypto-agile (PFP §10.4.5.1) and every later record a TCG_PCR_EVENT2
 * sized by that header; otherwise it is a SHA-1 log of TCG_PCR_EVENT records.
 *
 * Decisions:
 * - An empty input (or one that is nothing but fill) is a TpmParseError, not an empty result: every
 *   firmware log has at least one record, so a 0-byte file means the capture failed, not that nothing
 *   was measured. tpm2_eventlog and Keylime refuse it too.
 * - Trailing fill: firmware hands over the whole ACPI log area (EDK2 fills it with 0xFF) and some
 *   tools zero-pad, so when everything from a record boundary to the end is 0x00/0xFF bytes, the log
 *   ends there and the fill is reported in `padding`. Linux stops at the same place (a record of type 0
 *   and size 0 ends its walk). Fill cannot hide a measurement: an event dropped this way was either
 *   never extended, or the quote will not match. A record cut short anywhere is a TpmParseError.
 * - Every malformed input is a TpmParseError naming the record (`TCG_PCR_EVENT2[12]`), the field and
 *   the absolute offset; event data that does not decode only marks that event `undecodable`.
 */
export function parseEventLog(bytes: Uint8Array): TcgEventLog {
  const log = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fillStart = trailingFillStart(log);
  if (log.length === 0 || fillStart === 0) {
    const what = log.length === 0 ? 'the event log is empty' : `the event log is ${log.length} byte(s) of 0x00/0xFF fill`;
    throw new TpmParseError('TCG_PCR_EVENT[0]', 'pcrIndex', 0, `${what}: no event`);
  }

  const r = new TpmReader(log, 'EventLog');
  const first = r.within('TCG_PCR_EVENT[0]', () => readTcgPcrEvent(r));
  const specId = first.eventType === EV.EV_NO_ACTION && hasSpecIdEvent03Signature(first.event) ? readHeader(log, first, r.offset) : undefined;
  const uintnSize = specId?.uintnSize ?? 2;
  const events: TcgPcrEvent[] = [];
  const push = (fields: TcgEventFields, structure: TcgPcrEvent['structure'], offset: number) => {
    const isHeader = specId !== undefined && events.length === 0;
    const data: EventData = isHeader ? { kind: 'spec-id', specId } : decodeEventData(fields.eventType, fields.event, uintnSize);
    const digestCheck = checkDigests(fields.eventType, fields.digests, fields.event, data);
    // Spelled out rather than spread: `{ ...fields, … }` put objects in V8's slow mode, nearly doubling parse time.
    events.push({
      pcrIndex: fields.pcrIndex,
      eventType: fields.eventType,
      digests: fields.digests,
      event: fields.event,
      index: events.length,
      offset,
      raw: r.rawSince(offset),
      structure,
      eventTypeName: eventTypeName(fields.eventType),
      data,
      digestCheck,
      digestVerified: isDigestVerified(digestCheck),
    });
  };
  checkPcrIndex(first, 'TCG_PCR_EVENT[0]', 0);
  push(first, 'TCG_PCR_EVENT', 0);

  let padding: TcgEventLog['padding'];
  while (r.remaining > 0) {
    const offset = r.offset;
    if (offset >= fillStart) {
      padding = { offset, length: r.remaining };
      break;
    }
    const structure = specId === undefined ? 'TCG_PCR_EVENT' : 'TCG_PCR_EVENT2';
    const name = `${structure}[${events.length}]`;
    const fields = r.within(name, () => (specId === undefined ? readTcgPcrEvent(r) : readTcgPcrEvent2(r, specId)));
    checkPcrIndex(fields, name, offset);
    push(fields, structure, offset);
  }

  return {
    format: specId === undefined ? 'sha1' : 'crypto-agile',
    specId,
    algorithms: specId === undefined ? [TPM_ALG_ID.TPM_ALG_SHA1] : specId.digestSizes.map((d) => d.algorithmId),
    events,
    padding,
  };
}

/**
 * The Spec ID event is the whole of the first record's data: it must be on PCR 0 with a zero digest
 * (PFP §10.4.5.1) and be exactly as long as its content. It is re-read from the log itself so that
 * errors carry absolute offsets.
 */
function readHeader(log: Buffer, first: TcgEventFields, end: number): TCG_EfiSpecIDEvent {
  const name = 'TCG_PCR_EVENT[0]';
  if (first.pcrIndex !== 0) {
    throw new TpmParseError(name, 'pcrIndex', 0, `the Spec ID event must be on PCR 0, not ${first.pcrIndex}`);
  }
  if (first.digests[0]!.digest.some((b) => b !== 0)) {
    throw new TpmParseError(name, 'digest', 8, 'the Spec ID event digest must be zero');
  }
  const r = new TpmReader(log.subarray(0, end), name);
  r.bytesOf(end - first.event.length, '(header)');
  const specId = readSpecIdEvent(r);
  r.end();
  return specId;
}

function checkPcrIndex(fields: TcgEventFields, structure: string, offset: number): void {
  if (fields.eventType !== EV.EV_NO_ACTION && fields.pcrIndex >= PC_CLIENT_PCR_COUNT) {
    throw new TpmParseError(
      structure,
      'pcrIndex',
      offset,
      `${eventTypeName(fields.eventType)} extends PCR ${fields.pcrIndex}; a PC Client TPM has PCRs 0–${PC_CLIENT_PCR_COUNT - 1}`,
    );
  }
}

/** Where the run of 0x00/0xFF bytes that ends the buffer starts (one backward scan: O(n), not O(n²)). */
function trailingFillStart(log: Buffer): number {
  let i = log.length;
  while (i > 0 && (log[i - 1] === 0x00 || log[i - 1] === 0xff)) {
    i -= 1;
  }
  return i;
}

/**
 * Marshals a parsed log back from its parsed fields (not its raw bytes), without the padding:
 * marshalEventLog(parseEventLog(x)) equals x minus its trailing fill. Also builds logs for tests:
 * with a specId, events[0] is the header record, whose event data is written from the specId.
 */
export function marshalEventLog(log: { readonly specId: TCG_EfiSpecIDEvent | undefined; readonly events: readonly TcgEventFields[] }): Buffer {
  const w = new TpmWriter();
  log.events.forEach((event, index) => {
    if (index === 0 && log.specId !== undefined) {
      writeTcgPcrEvent(w, { ...event, event: marshal((inner) => writeSpecIdEvent(inner, log.specId!)) });
    } else if (log.specId === undefined || index === 0) {
      writeTcgPcrEvent(w, event);
    } else {
      writeTcgPcrEvent2(w, event);
    }
  });
  return w.toBuffer();
}
