import { parseExact, readSized, type TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';
import { algName, TPM_ST } from '../constants';
import { isHashAlgorithm } from '../hash-algorithms';
import { readPcrSelection, type TPML_PCR_SELECTION, writePcrSelection } from './tpml-pcr-selection';

// Bounds from Part 2: TPM2B_NAME holds a TPMU_NAME (§10.5.2: a TPMT_HA, 2 + 64 bytes, or a 4-byte
// handle); TPM2B_DATA holds at most a TPMT_HA (§10.4.3); TPM2B_DIGEST a TPMU_HA (§10.4.2, SHA-512 = 64).
// TPM2B_MAX_NV_BUFFER (§10.4.7) is bounded by the implementation's MAX_NV_BUFFER_SIZE: tpm2-tss
// allows 2048 (TPM2_MAX_NV_BUFFER_SIZE), the largest any TPM we can talk to would send.
const MAX_NAME = 66;
const MAX_DATA = 66;
const MAX_DIGEST = 64;
const MAX_NV_BUFFER = 2048;

/**
 * Part 2 §10.11.1 TPMS_CLOCK_INFO.
 *   clock        UINT64      milliseconds the TPM has been powered since its last TPM2_Clear
 *   resetCount   UINT32      TPM2_Startup(CLEAR) count since the last TPM2_Clear
 *   restartCount UINT32      TPM2_Shutdown(STATE)/Startup(STATE) count since the last reset
 *   safe         TPMI_YES_NO no value of clock greater than the current one might have been reported
 * resetCount and restartCount are obfuscated in attestations signed by keys outside the endorsement and
 * platform hierarchies (Part 3 §18.1).
 */
export interface TPMS_CLOCK_INFO {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** Part 2 §10.11.6 TPMS_TIME_INFO: time (UINT64, ms since TPM2_Startup) ‖ clockInfo. */
export interface TPMS_TIME_INFO {
  readonly time: bigint;
  readonly clockInfo: TPMS_CLOCK_INFO;
}

/** Part 2 §10.12.2 TPMS_TIME_ATTEST_INFO (TPM2_GetTime). */
export interface TPMS_TIME_ATTEST_INFO {
  readonly time: TPMS_TIME_INFO;
  readonly firmwareVersion: bigint;
}

/**
 * Part 2 §10.12.3 TPMS_CERTIFY_INFO (TPM2_Certify): `name` is the certified object's Name
 * (nameAlg ‖ H(TPMT_PUBLIC)), `qualifiedName` its Qualified Name.
 */
export interface TPMS_CERTIFY_INFO {
  readonly name: Buffer;
  readonly qualifiedName: Buffer;
}

/**
 * Part 2 §10.12.4 TPMS_QUOTE_INFO (TPM2_Quote): the PCRs quoted and pcrDigest = H_sign(the selected PCR
 * values, banks in list order, ascending index within a bank), H_sign being the signing scheme's hash.
 */
export interface TPMS_QUOTE_INFO {
  readonly pcrSelect: TPML_PCR_SELECTION;
  readonly pcrDigest: Buffer;
}

/** Part 2 §10.12.5 TPMS_COMMAND_AUDIT_INFO (TPM2_GetCommandAuditDigest). */
export interface TPMS_COMMAND_AUDIT_INFO {
  readonly auditCounter: bigint;
  readonly digestAlg: number;
  readonly auditDigest: Buffer;
  readonly commandDigest: Buffer;
}

/** Part 2 §10.12.6 TPMS_SESSION_AUDIT_INFO (TPM2_GetSessionAuditDigest). */
export interface TPMS_SESSION_AUDIT_INFO {
  readonly exclusiveSession: boolean;
  readonly sessionDigest: Buffer;
}

/**
 * Part 2 §10.12.7 TPMS_CREATION_INFO (TPM2_CertifyCreation): objectName and creationHash =
 * H_nameAlg(TPMS_CREATION_DATA) of the object created.
 */
export interface TPMS_CREATION_INFO {
  readonly objectName: Buffer;
  readonly creationHash: Buffer;
}

/** Part 2 §10.12.8 TPMS_NV_CERTIFY_INFO (TPM2_NV_Certify). */
export interface TPMS_NV_CERTIFY_INFO {
  readonly indexName: Buffer;
  readonly offset: number;
  readonly nvContents: Buffer;
}

/** Part 2 §10.12.9 TPMS_NV_DIGEST_CERTIFY_INFO (TPM2_NV_Certify with size 0). */
export interface TPMS_NV_DIGEST_CERTIFY_INFO {
  readonly indexName: Buffer;
  readonly nvDigest: Buffer;
}

/**
 * Part 2 §10.12.12 TPMS_ATTEST:
 *   magic           TPM_GENERATED    0xFF544347 (TPM_GENERATED_VALUE) when the TPM made it
 *   type            TPMI_ST_ATTEST   selects `attested`
 *   qualifiedSigner TPM2B_NAME       Qualified Name of the signing key
 *   extraData       TPM2B_DATA       the caller's qualifyingData (the verifier's nonce)
 *   clockInfo       TPMS_CLOCK_INFO
 *   firmwareVersion UINT64           vendor-specific (obfuscated like resetCount)
 *   attested        TPMU_ATTEST      [type]
 * `magic` is kept as read, not refused: telling a TPM-generated structure from a forged one is the
 * verifier's decision (reason 'bad-magic'), and it must be able to say so.
 */
interface AttestCommon {
  readonly magic: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  readonly clockInfo: TPMS_CLOCK_INFO;
  readonly firmwareVersion: bigint;
}

/** Part 2 §10.12.11 TPMU_ATTEST, discriminated by §10.12.10 TPMI_ST_ATTEST. */
export type TPMS_ATTEST =
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_CERTIFY; readonly attested: TPMS_CERTIFY_INFO })
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_QUOTE; readonly attested: TPMS_QUOTE_INFO })
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_SESSION_AUDIT; readonly attested: TPMS_SESSION_AUDIT_INFO })
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_COMMAND_AUDIT; readonly attested: TPMS_COMMAND_AUDIT_INFO })
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_TIME; readonly attested: TPMS_TIME_ATTEST_INFO })
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_CREATION; readonly attested: TPMS_CREATION_INFO })
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_NV; readonly attested: TPMS_NV_CERTIFY_INFO })
  | (AttestCommon & { readonly type: typeof TPM_ST.TPM_ST_ATTEST_NV_DIGEST; readonly attested: TPMS_NV_DIGEST_CERTIFY_INFO });

export type TPMI_ST_ATTEST = TPMS_ATTEST['type'];

/** A TPMS_ATTEST of one type: `AttestOf<typeof TPM_ST.TPM_ST_ATTEST_QUOTE>`. */
export type AttestOf<T extends TPMI_ST_ATTEST> = Extract<TPMS_ATTEST, { type: T }>;

/**
 * A parsed TPMS_ATTEST with the exact bytes it came from: the signature covers these bytes, so
 * verification uses them and never a re-encoding.
 */
export type ParsedAttest = TPMS_ATTEST & { readonly raw: Buffer };

/** TPMI_YES_NO (Part 2 §9.2): a byte that must be 0 or 1. */
function readYesNo(r: TpmReader, field: string): boolean {
  const offset = r.offset;
  const value = r.u8(field);
  if (value > 1) {
    throw r.error(field, `${value} is not a TPMI_YES_NO (0 or 1)`, offset);
  }
  return value === 1;
}

export function readTpmsClockInfo(r: TpmReader): TPMS_CLOCK_INFO {
  return r.within('TPMS_CLOCK_INFO', () => ({
    clock: r.u64('clock'),
    resetCount: r.u32('resetCount'),
    restartCount: r.u32('restartCount'),
    safe: readYesNo(r, 'safe'),
  }));
}

export function writeTpmsClockInfo(w: TpmWriter, info: TPMS_CLOCK_INFO): void {
  w.u64(info.clock).u32(info.resetCount).u32(info.restartCount).u8(info.safe ? 1 : 0);
}

function readAttested(r: TpmReader, common: AttestCommon, type: number, typeOffset: number): TPMS_ATTEST {
  switch (type) {
    case TPM_ST.TPM_ST_ATTEST_CERTIFY:
      return {
        ...common,
        type,
        attested: r.within('TPMS_CERTIFY_INFO', () => ({
          name: r.tpm2b('name', MAX_NAME),
          qualifiedName: r.tpm2b('qualifiedName', MAX_NAME),
        })),
      };
    case TPM_ST.TPM_ST_ATTEST_QUOTE:
      return {
        ...common,
        type,
        attested: r.within('TPMS_QUOTE_INFO', () => ({
          pcrSelect: readPcrSelection(r),
          pcrDigest: r.tpm2b('pcrDigest', MAX_DIGEST),
        })),
      };
    case TPM_ST.TPM_ST_ATTEST_SESSION_AUDIT:
      return {
        ...common,
        type,
        attested: r.within('TPMS_SESSION_AUDIT_INFO', () => ({
          exclusiveSession: readYesNo(r, 'exclusiveSession'),
          sessionDigest: r.tpm2b('sessionDigest', MAX_DIGEST),
        })),
      };
    case TPM_ST.TPM_ST_ATTEST_COMMAND_AUDIT:
      return {
        ...common,
        type,
        attested: r.within('TPMS_COMMAND_AUDIT_INFO', () => {
          const auditCounter = r.u64('auditCounter');
          const algOffset = r.offset;
          const digestAlg = r.u16('digestAlg');
          if (!isHashAlgorithm(digestAlg)) {
            throw r.error('digestAlg', `${algName(digestAlg)} is not a supported hash algorithm`, algOffset);
          }
          return {
            auditCounter,
            digestAlg,
            auditDigest: r.tpm2b('auditDigest', MAX_DIGEST),
            commandDigest: r.tpm2b('commandDigest', MAX_DIGEST),
          };
        }),
      };
    case TPM_ST.TPM_ST_ATTEST_TIME:
      return {
        ...common,
        type,
        attested: r.within('TPMS_TIME_ATTEST_INFO', () => ({
          time: r.within('TPMS_TIME_INFO', () => ({ time: r.u64('time'), clockInfo: readTpmsClockInfo(r) })),
          firmwareVersion: r.u64('firmwareVersion'),
        })),
      };
    case TPM_ST.TPM_ST_ATTEST_CREATION:
      return {
        ...common,
        type,
        attested: r.within('TPMS_CREATION_INFO', () => ({
          objectName: r.tpm2b('objectName', MAX_NAME),
          creationHash: r.tpm2b('creationHash', MAX_DIGEST),
        })),
      };
    case TPM_ST.TPM_ST_ATTEST_NV:
      return {
        ...common,
        type,
        attested: r.within('TPMS_NV_CERTIFY_INFO', () => ({
          indexName: r.tpm2b('indexName', MAX_NAME),
          offset: r.u16('offset'),
          nvContents: r.tpm2b('nvContents', MAX_NV_BUFFER),
        })),
      };
    case TPM_ST.TPM_ST_ATTEST_NV_DIGEST:
      return {
        ...common,
        type,
        attested: r.within('TPMS_NV_DIGEST_CERTIFY_INFO', () => ({
          indexName: r.tpm2b('indexName', MAX_NAME),
          nvDigest: r.tpm2b('nvDigest', MAX_DIGEST),
        })),
      };
    default:
      throw r.error('type', `0x${type.toString(16).padStart(4, '0')} is not a TPMI_ST_ATTEST value`, typeOffset);
  }
}

export function readTpmsAttest(r: TpmReader): ParsedAttest {
  return r.within('TPMS_ATTEST', () => {
    const start = r.offset;
    const magic = r.u32('magic');
    const typeOffset = r.offset;
    const type = r.u16('type');
    const qualifiedSigner = r.tpm2b('qualifiedSigner', MAX_NAME);
    const extraData = r.tpm2b('extraData', MAX_DATA);
    const clockInfo = readTpmsClockInfo(r);
    const firmwareVersion = r.u64('firmwareVersion');
    const attest = readAttested(r, { magic, qualifiedSigner, extraData, clockInfo, firmwareVersion }, type, typeOffset);
    return { ...attest, raw: r.rawSince(start) };
  });
}

function writeAttested(w: TpmWriter, attest: TPMS_ATTEST): void {
  switch (attest.type) {
    case TPM_ST.TPM_ST_ATTEST_CERTIFY:
      w.tpm2b(attest.attested.name).tpm2b(attest.attested.qualifiedName);
      return;
    case TPM_ST.TPM_ST_ATTEST_QUOTE:
      writePcrSelection(w, attest.attested.pcrSelect);
      w.tpm2b(attest.attested.pcrDigest);
      return;
    case TPM_ST.TPM_ST_ATTEST_SESSION_AUDIT:
      w.u8(attest.attested.exclusiveSession ? 1 : 0).tpm2b(attest.attested.sessionDigest);
      return;
    case TPM_ST.TPM_ST_ATTEST_COMMAND_AUDIT:
      w.u64(attest.attested.auditCounter).u16(attest.attested.digestAlg);
      w.tpm2b(attest.attested.auditDigest).tpm2b(attest.attested.commandDigest);
      return;
    case TPM_ST.TPM_ST_ATTEST_TIME:
      w.u64(attest.attested.time.time);
      writeTpmsClockInfo(w, attest.attested.time.clockInfo);
      w.u64(attest.attested.firmwareVersion);
      return;
    case TPM_ST.TPM_ST_ATTEST_CREATION:
      w.tpm2b(attest.attested.objectName).tpm2b(attest.attested.creationHash);
      return;
    case TPM_ST.TPM_ST_ATTEST_NV:
      w.tpm2b(attest.attested.indexName).u16(attest.attested.offset).tpm2b(attest.attested.nvContents);
      return;
    case TPM_ST.TPM_ST_ATTEST_NV_DIGEST:
      w.tpm2b(attest.attested.indexName).tpm2b(attest.attested.nvDigest);
      return;
  }
}

export function writeTpmsAttest(w: TpmWriter, attest: TPMS_ATTEST): void {
  w.u32(attest.magic).u16(attest.type).tpm2b(attest.qualifiedSigner).tpm2b(attest.extraData);
  writeTpmsClockInfo(w, attest.clockInfo);
  w.u64(attest.firmwareVersion);
  writeAttested(w, attest);
}

/** TPMS_ATTEST from its exact bytes, as `tpm2_quote -m` and `tpm2_certify -o` write it. */
export function unmarshalTpmsAttest(bytes: Uint8Array): ParsedAttest {
  return parseExact(bytes, 'TPMS_ATTEST', readTpmsAttest);
}

export function marshalTpmsAttest(attest: TPMS_ATTEST): Buffer {
  return marshal((w) => writeTpmsAttest(w, attest));
}

/** Part 2 §10.12.13 TPM2B_ATTEST: u16 size ‖ TPMS_ATTEST, the size covering it exactly. */
export function readTpm2bAttest(r: TpmReader): ParsedAttest {
  return r.within('TPM2B_ATTEST', () => readSized(r, 'attestationData', readTpmsAttest));
}

export function unmarshalTpm2bAttest(bytes: Uint8Array): ParsedAttest {
  return parseExact(bytes, 'TPM2B_ATTEST', readTpm2bAttest);
}

export function marshalTpm2bAttest(attest: TPMS_ATTEST): Buffer {
  return marshal((w) => w.sized((inner) => writeTpmsAttest(inner, attest)));
}
