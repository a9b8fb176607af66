import type { TpmReader } from '../codec/tpm-reader';
import { TpmWriter } from '../codec/tpm-writer';
import { TPM_CC } from '../constants';
import { isHashAlgorithm } from '../hash-algorithms';
import type { TPML_PCR_SELECTION, TPMS_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import type { TpmClient } from '../client/tpm-client';
import { TPM_CAP, TPM_PT } from './capability-constants';
import { TpmAnswerError } from './tpm-answer-error';

/** Part 2 §10.8.2 TPMS_TAGGED_PROPERTY. */
export interface TPMS_TAGGED_PROPERTY {
  readonly property: number;
  readonly value: number;
}

const COMMAND = 'TPM2_GetCapability';

/**
 * Part 2 §10.4 MAX_CAP_HANDLES for the PC Client MAX_CAP_BUFFER of 1024: (1024 - 4 - 4) / 4. A TPM
 * returns fewer when its buffer is smaller, and says moreData.
 */
const MAX_CAP_HANDLES = 254;

/** A moreData loop that makes no progress would never end; a real TPM needs a handful of rounds. */
const MAX_ROUNDS = 64;

const PT_NAMES = new Map<number, string>(Object.entries(TPM_PT).map(([name, value]) => [value, name]));

/** `TPM_PT_NV_BUFFER_MAX` for 0x12c (messages only). */
export function propertyName(property: number): string {
  return PT_NAMES.get(property) ?? `TPM_PT 0x${property.toString(16).padStart(3, '0')}`;
}

/**
 * One TPM2_GetCapability round (Part 3 §30.2): TPMI_YES_NO moreData ‖ TPMS_CAPABILITY_DATA, whose
 * union `read` parses after checking the TPM answered the capability that was asked.
 */
async function getCapability<T>(
  client: TpmClient,
  capability: number,
  property: number,
  propertyCount: number,
  read: (r: TpmReader) => T,
): Promise<{ moreData: boolean; data: T }> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_GetCapability,
    parameters: new TpmWriter().u32(capability).u32(property).u32(propertyCount).toBuffer(),
  });
  const r = response.parameters;
  const moreDataOffset = r.offset;
  const moreData = r.u8('moreData');
  if (moreData > 1) {
    throw r.error('moreData', `${moreData} is not a TPMI_YES_NO`, moreDataOffset);
  }
  const capabilityOffset = r.offset;
  const answered = r.u32('capabilityData.capability');
  if (answered !== capability) {
    throw r.error('capabilityData.capability', `asked for capability ${capability}, the TPM answered ${answered}`, capabilityOffset);
  }
  const data = r.within('TPMS_CAPABILITY_DATA', () => read(r));
  r.end();
  return { moreData: moreData === 1, data };
}

/**
 * A TPML_* count of fixed-size entries, checked against the bytes left before any entry is read:
 * the entries then cannot run short, and reading them needs no per-entry field names (which cost
 * more than the reads on a 46-property answer).
 */
function readCount(r: TpmReader, field: string, entrySize: number): number {
  const offset = r.offset;
  const count = r.u32(`${field}.count`);
  if (count * entrySize > r.remaining) {
    throw r.error(`${field}.count`, `${count} entries need ${count * entrySize} bytes, ${r.remaining} left`, offset);
  }
  return count;
}

/** Part 2 §10.9.8 TPML_TAGGED_TPM_PROPERTY. */
function readTaggedProperties(r: TpmReader): TPMS_TAGGED_PROPERTY[] {
  const count = readCount(r, 'tpmProperty', 8);
  const list: TPMS_TAGGED_PROPERTY[] = [];
  for (let i = 0; i < count; i += 1) {
    list.push({ property: r.u32('tpmProperty[].property'), value: r.u32('tpmProperty[].value') });
  }
  return list;
}

/** Part 2 §10.9.3 TPML_HANDLE. */
function readHandles(r: TpmReader): number[] {
  const count = readCount(r, 'handle', 4);
  const list: number[] = [];
  for (let i = 0; i < count; i += 1) {
    list.push(r.u32('handle[]'));
  }
  return list;
}

/**
 * Up to `count` TPM properties starting at `first`. Part 3 §30.2: the TPM answers only within the
 * 256-value group of `first` (PT_FIXED 0x100, PT_VAR 0x200) and skips properties it does not
 * implement, so the list may be shorter and need not start at `first`.
 */
export async function getTpmProperties(client: TpmClient, first: number, count: number): Promise<TPMS_TAGGED_PROPERTY[]> {
  const result: TPMS_TAGGED_PROPERTY[] = [];
  let next = first;
  for (let round = 0; round < MAX_ROUNDS && result.length < count; round += 1) {
    const { moreData, data } = await getCapability(client, TPM_CAP.TPM_CAP_TPM_PROPERTIES, next, count - result.length, readTaggedProperties);
    const fresh = data.filter((p) => p.property >= next);
    result.push(...fresh);
    const last = fresh[fresh.length - 1];
    if (!moreData || last === undefined) {
      return result.slice(0, count);
    }
    next = last.property + 1;
  }
  return result.slice(0, count);
}

/** One TPM property; a TPM that does not implement it is a TpmAnswerError naming the property. */
export async function getTpmProperty(client: TpmClient, property: number): Promise<number> {
  const [found] = await getTpmProperties(client, property, 1);
  if (found === undefined || found.property !== property) {
    throw new TpmAnswerError(COMMAND, `the TPM does not report ${propertyName(property)}`);
  }
  return found.value;
}

/**
 * The PCR banks the TPM has allocated (TPM_CAP_PCRS, Part 3 §30.2: the current allocation, in
 * the TPM's order). Implemented but unallocated banks come back with an empty bitmap and are left
 * out. Parsed leniently rather than with readPcrSelection: a TPM may implement a bank this library
 * has no hash for (SM3_256 on some parts), and "is this TPM usable?" must not fail on it; such banks
 * are left out too, as nothing here could read or verify them.
 */
export async function getPcrBanks(client: TpmClient): Promise<TPML_PCR_SELECTION> {
  const { data } = await getCapability(client, TPM_CAP.TPM_CAP_PCRS, 0, 1, (r) => {
    const count = r.u32('assignedPCR.count');
    const banks: TPMS_PCR_SELECTION[] = [];
    for (let i = 0; i < count; i += 1) {
      const hash = r.u16(`assignedPCR[${i}].hash`);
      const sizeofSelect = r.u8(`assignedPCR[${i}].sizeofSelect`);
      const bitmap = r.bytesOf(sizeofSelect, `assignedPCR[${i}].pcrSelect`);
      const pcrs: number[] = [];
      for (let pcr = 0; pcr < sizeofSelect * 8; pcr += 1) {
        if ((bitmap[pcr >> 3]! >> (pcr & 7)) & 1) {
          pcrs.push(pcr);
        }
      }
      if (pcrs.length > 0 && isHashAlgorithm(hash)) {
        banks.push({ hash, pcrs, sizeofSelect });
      }
    }
    return banks;
  });
  // TPM_CAP_PCRS has no property to continue from: the TPM answers the whole allocation at once.
  return data;
}

/**
 * Every handle of one type (TPM_HT_*: 0x01 NV indices, 0x80 transient, 0x81 persistent, 0x02/0x03
 * loaded/saved sessions), ascending, following moreData.
 */
export async function getHandles(client: TpmClient, handleType: number): Promise<number[]> {
  const result: number[] = [];
  let next = (handleType << 24) >>> 0;
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const { moreData, data } = await getCapability(client, TPM_CAP.TPM_CAP_HANDLES, next, MAX_CAP_HANDLES, readHandles);
    const ofType = data.filter((h) => h >>> 24 === handleType && h >= next);
    result.push(...ofType);
    const last = ofType[ofType.length - 1];
    if (!moreData || last === undefined || ofType.length < data.length) {
      return result;
    }
    next = last + 1;
  }
  throw new TpmAnswerError(COMMAND, `the TPM kept answering moreData for handles of type 0x${handleType.toString(16)}`);
}
