import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { ImaParseError, parseBinaryMeasurementList } from '@rackseal/ima';
import { ATTESTATION_LIMITS, type ImaMeasurementsWire, type ImaTemplateHashAlgorithm, isImaTemplateHashAlgorithm } from '@rackseal/node-api-contracts';

/**
 * The most of the list the agent reads: the whole list is read to find entry boundaries (the kernel
 * file cannot seek by entry), and a list this long has a window past what the server takes anyway.
 */
const MAX_LIST_BYTES = 256 * 1024 * 1024;

/** The measurement list cannot be sent as asked: named, for the attempt's line. */
export class ImaListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImaListError';
  }
}

/**
 * The entries the server asked for (`fromEntry` on) of the machine's list, as the finish call's
 * `ima`, read after the quote was made (IMA appends an entry before it extends PCR 10, so the list
 * may run ahead of the quote, never behind it). The list is the per-bank one of the quote's bank,
 * `<path>_<bank>` (binary_runtime_measurements_sha256: kernels with IMA's template-hash crypto
 * agility write one per allocated PCR bank, its template hashes under that bank's hash), sent with
 * `templateHashAlgorithm` naming the bank; when there is none (an older kernel, a bank the server
 * names that is not an IMA bank), the list at `path` as it is, with no algorithm named (the server
 * then reads it as the runtime policy's `ima.log_hash_alg` says) unless its own name ends with one
 * (`…_runtime_measurements_sha256` configured as the list). A list shorter than `fromEntry`
 * belongs to a new boot: it is sent whole, from entry 0, and the server starts the machine's state
 * again. A list that does not exist is sent as no list — the server judges that as a failure, it is
 * not a way around the policy. A per-bank list that is a symbolic link is refused: the kernel's are
 * files, and that path is derived from the server's bank, not configured.
 */
export async function readImaWindow(path: string, fromEntry: number, bank?: string): Promise<ImaMeasurementsWire | undefined> {
  // Checked before it becomes part of a path: the bank is the server's word.
  if (isImaTemplateHashAlgorithm(bank)) {
    const perBank = `${path}_${bank}`;
    // Not followed if a link: securityfs holds the kernel's files, and this path is derived, not configured.
    const bytes = await readBounded(perBank, constants.O_NOFOLLOW);
    if (bytes !== undefined) {
      return { ...windowOf(perBank, bytes, fromEntry, bank), templateHashAlgorithm: bank };
    }
  }
  const bytes = await readBounded(path);
  if (bytes === undefined) {
    return undefined;
  }
  // A configured list that is itself a per-bank one (imaList: …/binary_runtime_measurements_sha256) says its algorithm by its name.
  const named = perBankAlgorithmOf(path);
  return named === undefined ? windowOf(path, bytes, fromEntry, 'sha1') : { ...windowOf(path, bytes, fromEntry, named), templateHashAlgorithm: named };
}

/** The bank a per-bank list's file name ends with (`…_runtime_measurements_sha256`), if it is one. */
function perBankAlgorithmOf(path: string): ImaTemplateHashAlgorithm | undefined {
  const suffix = /_runtime_measurements_([a-z0-9]+)$/.exec(basename(path))?.[1];
  return isImaTemplateHashAlgorithm(suffix) ? suffix : undefined;
}

/** The window from `fromEntry` of the list `bytes` read from `path`, whose template hashes are `algorithm`'s. */
function windowOf(path: string, bytes: Buffer, fromEntry: number, algorithm: ImaTemplateHashAlgorithm): ImaMeasurementsWire {
  let entries;
  try {
    entries = parseBinaryMeasurementList(bytes, { templateHashAlgorithm: algorithm });
  } catch (error) {
    if (error instanceof ImaParseError) {
      throw new ImaListError(`the IMA list ${path} does not parse (${error.message}): is it binary_runtime_measurements?`);
    }
    throw error;
  }
  const first = fromEntry <= entries.length ? fromEntry : 0;
  const window = Buffer.concat(entries.slice(first).map((e) => e.raw));
  if (window.length > ATTESTATION_LIMITS.imaEntriesBytes) {
    throw new ImaListError(`the IMA list ${path} from entry ${first} is ${window.length} bytes, more than the ${ATTESTATION_LIMITS.imaEntriesBytes} one attestation carries`);
  }
  return { firstEntry: first, entries: window.toString('base64') };
}

async function readBounded(path: string, flags = 0): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | flags);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    if ((error as NodeJS.ErrnoException).code === 'ELOOP' && (flags & constants.O_NOFOLLOW) !== 0) {
      throw new ImaListError(`the IMA list ${path} is a symbolic link: a per-bank list is the kernel's own file, never a link`);
    }
    throw new ImaListError(`the IMA list ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    // securityfs shows the list as a regular file; a FIFO or a device would hang or never end.
    if (!(await handle.stat()).isFile()) {
      throw new ImaListError(`the IMA list ${path} is not a regular file`);
    }
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(1024 * 1024);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) {
        return Buffer.concat(chunks, length);
      }
      length += bytesRead;
      if (length > MAX_LIST_BYTES) {
        throw new ImaListError(`the IMA list ${path} is larger than ${MAX_LIST_BYTES} bytes`);
      }
      chunks.push(chunk.subarray(0, bytesRead));
    }
  } catch (error) {
    if (error instanceof ImaListError) {
      throw error;
    }
    throw new ImaListError(`the IMA list ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  } finally {
    await handle.close();
  }
}
