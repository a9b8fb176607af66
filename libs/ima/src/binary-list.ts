import { TpmParseError, TpmReader } from '@rackseal/tpm2';
import { digestSize, type ImaBank } from './hash-algorithms';
import { type ImaEntry, IMA_TEMPLATE_NAMES, type ImaTemplateName, isAllZero } from './ima-entry';
import { ImaParseError } from './ima-parse-error';
import { BinaryListEntry } from './binary-list-entry';
import { checkName, digestNgAlgorithm, FieldError, nameNgEnd, oneOfAt, IMA_EVENT_NAME_LEN_MAX, IMA_LEGACY_DIGEST_SIZE, TEMPLATE_FIELDS } from './template-fields';

/** IMA_TEMPLATE_NAME_LEN_MAX (security/integrity/ima/ima.h): a template name is at most 15 bytes. */
export const IMA_TEMPLATE_NAME_LEN_MAX = 15;
/**
 * The largest template data accepted. The kernel bounds nothing below the list's own size; real
 * entries are under a few KiB (an ima-buf holding a certificate or a kexec command line). 1 MiB
 * keeps one entry from claiming a whole upload.
 */
export const IMA_MAX_TEMPLATE_DATA = 1 << 20;

// Field names for errors, made once: a template string per field read showed in the bench's profile.
const LENGTH_FIELDS = ['d-ng.len', 'n-ng.len', 'sig|buf.len'];

export interface ImaListOptions {
  /**
   * The template-hash algorithm of the list: `sha1` for binary_runtime_measurements (the kernel
   * fixes it, ima_template_desc), the bank's for the per-bank lists binary_runtime_measurements_<bank>
   * of kernels that write them. It sets the template-hash field's size.
   */
  readonly templateHashAlgorithm?: ImaBank;
  /** The index of the first entry in the whole list, for a window of it (incremental attestation). */
  readonly firstIndex?: number;
}

/**
 * Parses binary_runtime_measurements (security/integrity/ima/ima_fs.c, ima_measurements_show): per
 * entry, in the CPU's byte order (little-endian here):
 *   u32 PCR ‖ template hash [hash size] ‖ u32 template-name length ‖ template name ‖
 *   u32 template-data length ‖ template data          (no length for the legacy `ima` template)
 * Refuses truncated entries, unknown templates and malformed fields with ImaParseError naming the
 * entry, the field and the offset. Entries keep where their fields are in `bytes`; their fields are
 * views into it (not copies), made when read (BinaryListEntry).
 */
export function parseBinaryMeasurementList(bytes: Uint8Array, options: ImaListOptions = {}): BinaryListEntry[] {
  const hashSize = digestSize(options.templateHashAlgorithm ?? 'sha1');
  const first = options.firstIndex ?? 0;
  const reader = TpmReader.from(bytes, 'ima_measurement');
  const entries: BinaryListEntry[] = [];
  while (reader.remaining > 0) {
    const index = first + entries.length;
    const start = reader.offset;
    try {
      entries.push(readEntry(reader, index, hashSize, start));
    } catch (error) {
      throw asImaParseError(error, index, start);
    }
  }
  return entries;
}

function readEntry(reader: TpmReader, index: number, hashSize: number, start: number): BinaryListEntry {
  const bytes = reader.bytes;
  const pcr = reader.u32le('pcr');
  const hashAt = reader.skip(hashSize, 'template_hash');
  const violation = isAllZero(bytes, hashAt, hashAt + hashSize);
  const nameLength = reader.u32le('template_name_len');
  if (nameLength === 0 || nameLength > IMA_TEMPLATE_NAME_LEN_MAX) {
    throw reader.error('template_name_len', `${nameLength} is not within 1..${IMA_TEMPLATE_NAME_LEN_MAX}`, reader.offset - 4);
  }
  // Compared in place: a string (or a view, or a closure) per entry for the template name showed in the bench's profile.
  const nameAt = reader.skip(nameLength, 'template_name');
  const template = oneOfAt(IMA_TEMPLATE_NAMES, bytes, nameAt, nameLength);
  if (template === undefined) {
    throw reader.error('template_name', `unsupported template "${bytes.toString('latin1', nameAt, nameAt + nameLength).replace(/[^\x20-\x7e]/g, '?')}"`, nameAt);
  }
  if (template === 'ima') {
    const dataAt = reader.skip(IMA_LEGACY_DIGEST_SIZE, 'd');
    const nameLen = reader.u32le('n.len');
    if (nameLen > IMA_EVENT_NAME_LEN_MAX) {
      throw reader.error('n.len', `${nameLen} exceeds IMA_EVENT_NAME_LEN_MAX (${IMA_EVENT_NAME_LEN_MAX})`, reader.offset - 4);
    }
    const legacyNameAt = reader.skip(nameLen, 'n');
    checkName(bytes, legacyNameAt, legacyNameAt + nameLen, 'n', legacyNameAt);
    return new BinaryListEntry(bytes, index, pcr, template, violation, start, reader.offset, hashSize, dataAt, 'sha1', dataAt, legacyNameAt, legacyNameAt + nameLen, -1);
  }
  const dataLength = reader.u32le('template_data_len');
  if (dataLength > IMA_MAX_TEMPLATE_DATA) {
    throw reader.error('template_data_len', `${dataLength} exceeds ${IMA_MAX_TEMPLATE_DATA}`, reader.offset - 4);
  }
  const dataAt = reader.skip(dataLength, 'template_data');
  const dataEnd = dataAt + dataLength;
  // The fields are read in place within the template data (no reader or view per field), each
  // bounds-checked against the data's end.
  const fields = TEMPLATE_FIELDS[template];
  // Field bounds in locals, not arrays or a closure: per-entry allocations are what a 100,000-entry list pays for in GC.
  let at = dataAt;
  const digestStart = at + 4;
  const digestEnd = (at = fieldEnd(reader, bytes, at, dataEnd, 0, fields));
  const nameStart = at + 4;
  const nameEnd = (at = fieldEnd(reader, bytes, at, dataEnd, 1, fields));
  let extraStart = -1;
  if (fields.length === 3) {
    extraStart = at + 4;
    at = fieldEnd(reader, bytes, at, dataEnd, 2, fields);
  }
  if (at !== dataEnd) {
    throw reader.error('template_data', `${dataEnd - at} byte(s) after the ${template} fields`, at);
  }
  const algorithm = digestNgAlgorithm(bytes, digestStart, digestEnd);
  const end = nameNgEnd(bytes, nameStart, nameEnd);
  return new BinaryListEntry(bytes, index, pcr, template, violation, start, dataEnd, hashSize, dataAt, algorithm, digestEnd - digestSize(algorithm), nameStart, end, extraStart);
}

/** The end of template-data field `i` (u32 length ‖ data) starting at `at`, checked against the data's end. */
function fieldEnd(reader: TpmReader, bytes: Buffer, at: number, dataEnd: number, i: number, fields: readonly string[]): number {
  if (at + 4 > dataEnd) {
    throw reader.error(LENGTH_FIELDS[i]!, `needs 4 byte(s), ${dataEnd - at} left in the template data`, at);
  }
  const length = bytes.readUInt32LE(at);
  if (length > dataEnd - at - 4) {
    throw reader.error(fields[i]!, `needs ${length} byte(s), ${dataEnd - at - 4} left in the template data`, at + 4);
  }
  return at + 4 + length;
}

/** Assembles an entry (shared with the ASCII parser). */
export function finish(
  index: number,
  pcr: number,
  templateHash: Buffer,
  templateName: ImaTemplateName,
  templateData: Buffer,
  digest: ImaEntry['digest'],
  name: Buffer,
  signature: Buffer | undefined,
  buffer: Buffer | undefined,
  raw: Buffer,
): ImaEntry {
  const entry: { -readonly [K in keyof ImaEntry]: ImaEntry[K] } = {
    index,
    pcr,
    templateHash,
    templateName,
    templateData,
    digest,
    name,
    path: name.toString('utf8'),
    violation: isAllZero(templateHash),
    raw,
  };
  if (signature !== undefined) {
    entry.signature = signature;
  }
  if (buffer !== undefined) {
    entry.buffer = buffer;
  }
  return entry;
}

function asImaParseError(error: unknown, index: number, start: number): unknown {
  if (error instanceof TpmParseError) {
    // The reader's offsets are within the list (or, for fields, within the template data reader,
    // whose offsets readEntry already translated where it could).
    return new ImaParseError(index, error.field, error.offset, error.reason);
  }
  if (error instanceof FieldError) {
    return new ImaParseError(index, error.field, error.at, error.message);
  }
  if (error instanceof ImaParseError) {
    return error;
  }
  return error instanceof Error ? error : new ImaParseError(index, '(entry)', start, String(error));
}
