import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_ALG_ID } from '../constants';
import { digest, isHashAlgorithm } from '../hash-algorithms';
import { EFI_GLOBAL_VARIABLE } from './efi-guid';
import { marshalEventLog, parseEventLog } from './event-log';
import { EV } from './event-types';
import type { TCG_EfiSpecIDEvent } from './spec-id-event';
import type { TcgEventFields } from './tcg-pcr-event';
import { encodeUefiVariableData } from './uefi-variable-data';

// A crypto-agile log with SHA-1, SHA-256 and an algorithm this library does not implement (0x00ff,
// 7-byte digests): the Spec ID event's sizes must be enough to step over it.
const UNKNOWN_ALG = 0x00ff;
const SPEC_ID: TCG_EfiSpecIDEvent = {
  signature: 'Spec ID Event03',
  platformClass: 0,
  specVersionMinor: 0,
  specVersionMajor: 2,
  specErrata: 0,
  uintnSize: 2,
  digestSizes: [
    { algorithmId: TPM_ALG_ID.TPM_ALG_SHA1, digestSize: 20 },
    { algorithmId: TPM_ALG_ID.TPM_ALG_SHA256, digestSize: 32 },
    { algorithmId: UNKNOWN_ALG, digestSize: 7 },
  ],
  vendorInfo: Buffer.alloc(0),
};
const HEADER: TcgEventFields = {
  pcrIndex: 0,
  eventType: EV.EV_NO_ACTION,
  digests: [{ hashAlg: TPM_ALG_ID.TPM_ALG_SHA1, digest: Buffer.alloc(20) }],
  event: Buffer.alloc(0),
};
const HEADER_SIZE = 32 + 16 + 4 + 4 + 4 + 3 * 4 + 1; // TCG_PCR_EVENT + TCG_EfiSpecIDEvent = 73

function measured(pcrIndex: number, eventType: number, event: Buffer): TcgEventFields {
  const digests = SPEC_ID.digestSizes.map(({ algorithmId, digestSize }) => ({
    hashAlg: algorithmId,
    digest: isHashAlgorithm(algorithmId) ? digest(algorithmId, event) : Buffer.alloc(digestSize, 0xab),
  }));
  return { pcrIndex, eventType, digests, event };
}

const EVENTS: TcgEventFields[] = [
  HEADER,
  measured(0, EV.EV_S_CRTM_VERSION, Buffer.from('v1\0', 'utf16le')),
  measured(7, EV.EV_EFI_VARIABLE_DRIVER_CONFIG, encodeUefiVariableData({ variableName: EFI_GLOBAL_VARIABLE, unicodeName: 'SecureBoot', variableData: Buffer.from([1]) })),
  measured(4, EV.EV_EFI_BOOT_SERVICES_APPLICATION, Buffer.alloc(32)),
  measured(7, EV.EV_SEPARATOR, Buffer.alloc(4)),
];
const LOG = marshalEventLog({ specId: SPEC_ID, events: EVENTS });
// TCG_PCR_EVENT2 with these three digests: 12 + (2+20) + (2+32) + (2+7) + 4 = 81 bytes before the data.
const EVENT2_HEADER = 81;

function parseError(bytes: Uint8Array): TpmParseError {
  try {
    parseEventLog(bytes);
  } catch (error) {
    if (error instanceof TpmParseError) {
      return error;
    }
    throw error;
  }
  throw new Error('parsed without error');
}

function patched(offset: number, write: (b: Buffer) => void): Buffer {
  const copy = Buffer.from(LOG);
  write(copy.subarray(offset));
  return copy;
}

describe('parseEventLog: crypto-agile (PFP §10.2.2, §10.4.5.1)', () => {
  it('reads the Spec ID header, steps over digests of an unknown algorithm by their declared size, and keeps raw bytes', () => {
    const log = parseEventLog(LOG);
    expect(log.format).toBe('crypto-agile');
    expect(log.algorithms).toEqual([TPM_ALG_ID.TPM_ALG_SHA1, TPM_ALG_ID.TPM_ALG_SHA256, UNKNOWN_ALG]);
    expect(log.specId).toEqual(SPEC_ID);
    expect(log.events.map((e) => [e.index, e.structure, e.pcrIndex, e.eventTypeName])).toEqual([
      [0, 'TCG_PCR_EVENT', 0, 'EV_NO_ACTION'],
      [1, 'TCG_PCR_EVENT2', 0, 'EV_S_CRTM_VERSION'],
      [2, 'TCG_PCR_EVENT2', 7, 'EV_EFI_VARIABLE_DRIVER_CONFIG'],
      [3, 'TCG_PCR_EVENT2', 4, 'EV_EFI_BOOT_SERVICES_APPLICATION'],
      [4, 'TCG_PCR_EVENT2', 7, 'EV_SEPARATOR'],
    ]);
    expect(log.events[1]!.digests[2]).toEqual({ hashAlg: UNKNOWN_ALG, digest: Buffer.alloc(7, 0xab) });
    expect(log.events[0]!.data).toEqual({ kind: 'spec-id', specId: SPEC_ID });
    for (const event of log.events) {
      expect(event.raw.equals(LOG.subarray(event.offset, event.offset + event.raw.length))).toBe(true);
    }
    expect(log.events[1]!.offset).toBe(HEADER_SIZE);
    expect(Buffer.concat(log.events.map((e) => e.raw)).equals(LOG)).toBe(true);
    expect(log.padding).toBeUndefined();
  });

  it('marshals back byte for byte from the parsed fields', () => {
    expect(marshalEventLog(parseEventLog(LOG)).equals(LOG)).toBe(true);
  });

  it('refuses a count that does not match the Spec ID event before reading any digest', () => {
    const error = parseError(patched(HEADER_SIZE + 8, (b) => b.writeUInt32LE(0xffffffff, 0)));
    expect(error.message).toBe(
      `TCG_PCR_EVENT2[1].digests.count at offset ${HEADER_SIZE + 8}: 4294967295 digest(s), but the Spec ID event declares 3 algorithm(s)`,
    );
    expect(parseError(patched(HEADER_SIZE + 8, (b) => b.writeUInt32LE(2, 0))).field).toBe('digests.count');
  });

  it('refuses an eventSize larger than the rest of the log before allocating it', () => {
    const offset = HEADER_SIZE + EVENT2_HEADER - 4;
    const error = parseError(patched(offset, (b) => b.writeUInt32LE(0xffffffff, 0)));
    expect(error).toMatchObject({ structure: 'TCG_PCR_EVENT2[1]', field: 'eventSize', offset });
    expect(error.reason).toBe(`4294967295 byte(s) of event data, ${LOG.length - offset - 4} left in the log`);
  });

  it('refuses a digest of an algorithm the Spec ID event does not declare, and a repeated one', () => {
    const undeclared = parseError(patched(HEADER_SIZE + 12, (b) => b.writeUInt16LE(TPM_ALG_ID.TPM_ALG_SHA512, 0)));
    expect(undeclared.message).toBe(`TCG_PCR_EVENT2[1].digests[0].hashAlg at offset ${HEADER_SIZE + 12}: TPM_ALG_SHA512 is not declared in the Spec ID event`);
    // digests[1] claims SHA-1 (20 bytes) again: caught before its size is used.
    const twice = parseError(patched(HEADER_SIZE + 12 + 22, (b) => b.writeUInt16LE(TPM_ALG_ID.TPM_ALG_SHA1, 0)));
    expect(twice.message).toBe(`TCG_PCR_EVENT2[1].digests[1].hashAlg at offset ${HEADER_SIZE + 34}: TPM_ALG_SHA1 appears twice`);
  });

  it('refuses a malformed Spec ID event instead of falling back to the SHA-1 format', () => {
    const countOffset = 32 + 16 + 4 + 4;
    expect(parseError(patched(countOffset, (b) => b.writeUInt32LE(1_000_000, 0))).message).toBe(
      `TCG_EfiSpecIDEvent.numberOfAlgorithms at offset ${countOffset}: 1000000 algorithm(s) do not fit the 13 byte(s) left (at least one is required)`,
    );
    expect(parseError(patched(countOffset, (b) => b.writeUInt32LE(0, 0))).field).toBe('numberOfAlgorithms');
    const sha256Size = countOffset + 4 + 4 + 2;
    expect(parseError(patched(sha256Size, (b) => b.writeUInt16LE(20, 0))).message).toBe(
      `TCG_EfiSpecIDEvent.digestSizes[1].digestSize at offset ${sha256Size}: 20 is not the 32-byte size of TPM_ALG_SHA256`,
    );
    expect(parseError(patched(32 + 16 + 5, (b) => b.writeUInt8(1, 0))).message).toBe(
      'TCG_EfiSpecIDEvent.specVersionMajor at offset 53: 1 is not 2 (crypto-agile)',
    );
    expect(parseError(patched(0, (b) => b.writeUInt32LE(1, 0))).message).toBe(
      'TCG_PCR_EVENT[0].pcrIndex at offset 0: the Spec ID event must be on PCR 0, not 1',
    );
    expect(parseError(patched(8, (b) => b.writeUInt8(1, 0))).field).toBe('digest');
    // One byte more in eventDataSize (and in the log): the Spec ID event must cover its data exactly.
    const longer = Buffer.concat([LOG.subarray(0, HEADER_SIZE), Buffer.from([0]), LOG.subarray(HEADER_SIZE)]);
    longer.writeUInt32LE(HEADER_SIZE - 32 + 1, 28);
    expect(parseError(longer).message).toBe('TCG_PCR_EVENT[0].(end) at offset 73: 1 trailing byte(s)');
  });

  it('refuses an extended event on a PCR a PC Client TPM does not have', () => {
    const last = parseEventLog(LOG).events[4]!;
    const error = parseError(patched(last.offset, (b) => b.writeUInt32LE(24, 0)));
    expect(error.message).toBe(`TCG_PCR_EVENT2[4].pcrIndex at offset ${last.offset}: EV_SEPARATOR extends PCR 24; a PC Client TPM has PCRs 0–23`);
  });
});

describe('parseEventLog: SHA-1 format (PFP §10.2.1)', () => {
  const sha1Event = (pcrIndex: number, eventType: number, event: Buffer): TcgEventFields => ({
    pcrIndex,
    eventType,
    digests: [{ hashAlg: TPM_ALG_ID.TPM_ALG_SHA1, digest: eventType === EV.EV_NO_ACTION ? Buffer.alloc(20) : digest(TPM_ALG_ID.TPM_ALG_SHA1, event) }],
    event,
  });

  it('reads every record as TCG_PCR_EVENT when the first is not a Spec ID Event03, EV_NO_ACTION on PCR 0xFFFFFFFF included', () => {
    const bytes = marshalEventLog({
      specId: undefined,
      events: [
        sha1Event(0, EV.EV_S_CRTM_VERSION, Buffer.from('\0\0')),
        // Windows writes EV_NO_ACTION records on PCR -1 (option_rom_eventlog): never extended, so accepted.
        sha1Event(0xffffffff, EV.EV_NO_ACTION, Buffer.from('WBCL')),
        sha1Event(7, EV.EV_SEPARATOR, Buffer.alloc(4)),
      ],
    });
    const log = parseEventLog(bytes);
    expect(log.format).toBe('sha1');
    expect(log.specId).toBeUndefined();
    expect(log.algorithms).toEqual([TPM_ALG_ID.TPM_ALG_SHA1]);
    expect(log.events.map((e) => [e.structure, e.pcrIndex, e.eventTypeName, e.digestCheck])).toEqual([
      ['TCG_PCR_EVENT', 0, 'EV_S_CRTM_VERSION', 'event-data'],
      ['TCG_PCR_EVENT', 0xffffffff, 'EV_NO_ACTION', 'not-extended'],
      ['TCG_PCR_EVENT', 7, 'EV_SEPARATOR', 'event-data'],
    ]);
    expect(marshalEventLog(log).equals(bytes)).toBe(true);
  });

  it('refuses an eventDataSize beyond the log in the first record (the keylime "bogus" file is text)', () => {
    const text = Buffer.from('bogus\ninvalid\nevent\nlog\nfile\nhere\n');
    expect(parseError(text).message).toBe('TCG_PCR_EVENT[0].eventDataSize at offset 28: 1919248394 byte(s) of event data, 2 left in the log');
  });
});

describe('parseEventLog: the end of the log', () => {
  it('refuses an empty log and a log that is only fill', () => {
    expect(parseError(Buffer.alloc(0)).message).toBe('TCG_PCR_EVENT[0].pcrIndex at offset 0: the event log is empty: no event');
    expect(parseError(Buffer.alloc(100, 0xff)).message).toBe(
      'TCG_PCR_EVENT[0].pcrIndex at offset 0: the event log is 100 byte(s) of 0x00/0xFF fill: no event',
    );
    expect(parseError(Buffer.alloc(64)).reason).toBe('the event log is 64 byte(s) of 0x00/0xFF fill: no event');
  });

  it.each([
    ['0xFF (an ACPI log area EDK2 filled)', Buffer.alloc(4096, 0xff)],
    ['0x00', Buffer.alloc(100)],
    ['0x00 then 0xFF', Buffer.concat([Buffer.alloc(10), Buffer.alloc(30, 0xff)])],
    ['a single 0x00', Buffer.alloc(1)],
  ])('ends the log at trailing fill of %s and reports it', (_name, fill) => {
    const log = parseEventLog(Buffer.concat([LOG, fill]));
    expect(log.events).toHaveLength(5);
    expect(log.padding).toEqual({ offset: LOG.length, length: fill.length });
    expect(marshalEventLog(log).equals(LOG)).toBe(true);
  });

  it('refuses a record cut short, whether at the end or followed by fill', () => {
    const cut = LOG.subarray(0, LOG.length - 1);
    expect(parseError(cut)).toMatchObject({ structure: 'TCG_PCR_EVENT2[4]', field: 'eventSize', reason: '4 byte(s) of event data, 3 left in the log' });
    const header = LOG.subarray(0, LOG.length - 20);
    expect(parseError(header)).toMatchObject({ structure: 'TCG_PCR_EVENT2[4]' });
    // Fill that is followed by data is not padding: it is read as records and fails as such.
    const gap = Buffer.concat([LOG, Buffer.alloc(16), Buffer.from([1])]);
    expect(parseError(gap)).toMatchObject({ structure: 'TCG_PCR_EVENT2[5]', field: 'digests.count', offset: LOG.length + 8 });
  });
});
