import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_ALG_ID, TPM_GENERATED_VALUE, TPM_ST } from '../constants';
import vectors from '../verify/swtpm-vectors.json';
import {
  marshalTpm2bAttest,
  marshalTpmsAttest,
  type TPMS_ATTEST,
  unmarshalTpm2bAttest,
  unmarshalTpmsAttest,
} from './tpms-attest';

// Captured from tpm2-tools on swtpm; ../verify/swtpm-vectors.json says with which commands.
const QUOTE = Buffer.from(vectors.rsassaQuote.msg, 'hex');
const CERTIFY = Buffer.from(vectors.certify.msg, 'hex');

function parseError(bytes: Uint8Array, parse: (b: Uint8Array) => unknown = unmarshalTpmsAttest): TpmParseError {
  try {
    parse(bytes);
  } catch (error) {
    if (error instanceof TpmParseError) {
      return error;
    }
    throw error;
  }
  throw new Error('parsed without error');
}

const COMMON = {
  magic: TPM_GENERATED_VALUE,
  qualifiedSigner: Buffer.from('000b'.padEnd(68, 'a'), 'hex'),
  extraData: Buffer.from('cafe', 'hex'),
  clockInfo: { clock: 123456789n, resetCount: 7, restartCount: 1, safe: true },
  firmwareVersion: 0x2019102300163636n,
} as const;
const NAME = Buffer.from('000b'.padEnd(68, '5'), 'hex');
const DIGEST = Buffer.alloc(32, 0x42);

/** One of every TPMU_ATTEST member (Part 2 §10.12.11), for the round trips. */
const EVERY_TYPE: readonly TPMS_ATTEST[] = [
  { ...COMMON, type: TPM_ST.TPM_ST_ATTEST_CERTIFY, attested: { name: NAME, qualifiedName: Buffer.from(NAME).reverse() } },
  {
    ...COMMON,
    type: TPM_ST.TPM_ST_ATTEST_QUOTE,
    attested: { pcrSelect: [{ hash: TPM_ALG_ID.TPM_ALG_SHA256, pcrs: [0, 7, 23], sizeofSelect: 3 }], pcrDigest: DIGEST },
  },
  { ...COMMON, type: TPM_ST.TPM_ST_ATTEST_SESSION_AUDIT, attested: { exclusiveSession: false, sessionDigest: DIGEST } },
  {
    ...COMMON,
    type: TPM_ST.TPM_ST_ATTEST_COMMAND_AUDIT,
    attested: { auditCounter: 2n ** 40n, digestAlg: TPM_ALG_ID.TPM_ALG_SHA384, auditDigest: Buffer.alloc(48, 1), commandDigest: Buffer.alloc(48, 2) },
  },
  {
    ...COMMON,
    type: TPM_ST.TPM_ST_ATTEST_TIME,
    attested: { time: { time: 99n, clockInfo: { ...COMMON.clockInfo, safe: false } }, firmwareVersion: 1n },
  },
  { ...COMMON, type: TPM_ST.TPM_ST_ATTEST_CREATION, attested: { objectName: NAME, creationHash: DIGEST } },
  { ...COMMON, type: TPM_ST.TPM_ST_ATTEST_NV, attested: { indexName: NAME, offset: 16, nvContents: Buffer.from('hello') } },
  { ...COMMON, type: TPM_ST.TPM_ST_ATTEST_NV_DIGEST, attested: { indexName: NAME, nvDigest: DIGEST } },
];

describe('TPMS_ATTEST (Part 2 §10.12.12)', () => {
  it('parses a tpm2_quote message (two banks) field by field and keeps its raw bytes', () => {
    const attest = unmarshalTpmsAttest(QUOTE);
    expect(attest).toMatchObject({
      magic: 0xff544347,
      type: TPM_ST.TPM_ST_ATTEST_QUOTE,
      clockInfo: { clock: 2053n, resetCount: 2, restartCount: 0, safe: true },
      firmwareVersion: 0x2019102300163636n,
    });
    expect(attest.qualifiedSigner.toString('hex')).toBe('000b8eb0935a8e767a38814f2746f5c97ab7f39cee745e4bd27b59d916263bf547ca');
    expect(attest.extraData.toString('hex')).toBe('0102030405');
    expect(attest.type === TPM_ST.TPM_ST_ATTEST_QUOTE && attest.attested.pcrSelect).toEqual([
      { hash: TPM_ALG_ID.TPM_ALG_SHA256, pcrs: [0, 7], sizeofSelect: 3 },
      { hash: TPM_ALG_ID.TPM_ALG_SHA1, pcrs: [1], sizeofSelect: 3 },
    ]);
    expect(attest.type === TPM_ST.TPM_ST_ATTEST_QUOTE && attest.attested.pcrDigest.toString('hex')).toBe(
      '4fea5e6a3ec5f5474a26d858bc77b6d7bd3ab864ea02d988683fdc648602b248',
    );
    expect(attest.raw.equals(QUOTE)).toBe(true);
    expect(marshalTpmsAttest(attest).equals(QUOTE)).toBe(true);
  });

  it('parses a tpm2_certify message: the certified Name is the one tpm2_readpublic printed', () => {
    const attest = unmarshalTpmsAttest(CERTIFY);
    expect(attest.type).toBe(TPM_ST.TPM_ST_ATTEST_CERTIFY);
    expect(attest.extraData.toString('hex')).toBe('00ff55aa');
    expect(attest.type === TPM_ST.TPM_ST_ATTEST_CERTIFY && attest.attested.name.toString('hex')).toBe(vectors.certify.certifiedName);
    expect(marshalTpmsAttest(attest).equals(CERTIFY)).toBe(true);
  });

  it.each(EVERY_TYPE.map((a) => [a.type.toString(16), a] as const))('round-trips type 0x%s exactly', (_type, attest) => {
    const bytes = marshalTpmsAttest(attest);
    const parsed = unmarshalTpmsAttest(bytes);
    const { raw, ...fields } = parsed;
    expect(fields).toEqual(attest);
    expect(raw.equals(bytes)).toBe(true);
    expect(marshalTpmsAttest(parsed).equals(bytes)).toBe(true);
  });

  it('reads TPM2B_ATTEST: the size covers the TPMS_ATTEST exactly', () => {
    const sized = marshalTpm2bAttest(unmarshalTpmsAttest(QUOTE));
    expect(sized.readUInt16BE(0)).toBe(QUOTE.length);
    expect(unmarshalTpm2bAttest(sized).raw.equals(QUOTE)).toBe(true);
    const short = Buffer.from(sized);
    short.writeUInt16BE(QUOTE.length - 1, 0);
    // A size one short cuts the content: the error is inside it (offsets relative to the content).
    expect(parseError(short, unmarshalTpm2bAttest)).toMatchObject({ structure: 'TPMS_QUOTE_INFO', field: 'pcrDigest', offset: 92 });
    expect(parseError(Buffer.concat([sized, Buffer.from([0])]), unmarshalTpm2bAttest)).toMatchObject({
      structure: 'TPM2B_ATTEST',
      field: '(end)',
      offset: QUOTE.length + 2,
    });
  });

  it('keeps a wrong magic as read (refusing it is the verifier’s call)', () => {
    const forged = Buffer.from(QUOTE);
    forged.writeUInt32BE(0x12345678, 0);
    expect(unmarshalTpmsAttest(forged).magic).toBe(0x12345678);
  });

  it('names structure, field and offset for truncation, trailing bytes and bad values', () => {
    // Layout of the quote: …, TPML_PCR_SELECTION at 74 (two banks), pcrDigest size at 90, digest at 92.
    expect(parseError(QUOTE.subarray(0, 100))).toMatchObject({ structure: 'TPMS_QUOTE_INFO', field: 'pcrDigest', offset: 92 });
    expect(parseError(QUOTE.subarray(0, 60))).toMatchObject({ structure: 'TPMS_CLOCK_INFO', field: 'resetCount', offset: 57 });
    expect(parseError(QUOTE.subarray(0, 3))).toMatchObject({ structure: 'TPMS_ATTEST', field: 'magic', offset: 0 });
    expect(parseError(Buffer.concat([QUOTE, Buffer.from([0])]))).toMatchObject({ structure: 'TPMS_ATTEST', field: '(end)', offset: 124 });

    const unknownType = Buffer.from(QUOTE);
    unknownType.writeUInt16BE(0x8013, 4);
    expect(() => unmarshalTpmsAttest(unknownType)).toThrow('TPMS_ATTEST.type at offset 4: 0x8013 is not a TPMI_ST_ATTEST value');

    const notYesNo = Buffer.from(QUOTE);
    notYesNo[65] = 2;
    expect(parseError(notYesNo)).toMatchObject({ structure: 'TPMS_CLOCK_INFO', field: 'safe', offset: 65 });

    const hugeName = Buffer.from(QUOTE);
    hugeName.writeUInt16BE(67, 6);
    expect(parseError(hugeName)).toMatchObject({ field: 'qualifiedSigner.size', offset: 6, reason: '67 exceeds the maximum of 66' });

    const badBank = Buffer.from(QUOTE);
    badBank.writeUInt16BE(0x0099, 84);
    expect(parseError(badBank)).toMatchObject({ structure: 'TPMS_PCR_SELECTION[1]', field: 'hash', offset: 84 });
  });

  it('every prefix and every single-byte change either parses or throws TpmParseError', () => {
    for (const sample of [QUOTE, CERTIFY, ...EVERY_TYPE.map(marshalTpmsAttest)]) {
      for (let length = 0; length < sample.length; length += 1) {
        expect(parseError(sample.subarray(0, length))).toBeInstanceOf(TpmParseError);
      }
      for (let i = 0; i < sample.length; i += 1) {
        for (const value of [0x00, 0x01, 0x80, 0xff]) {
          const mutated = Buffer.from(sample);
          mutated[i] = value;
          try {
            unmarshalTpmsAttest(mutated);
          } catch (error) {
            expect(error).toBeInstanceOf(TpmParseError);
          }
        }
      }
    }
  });
});
