import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ImaParseError, parseBinaryMeasurementList } from '@rackseal/ima';
import { ATTESTATION_LIMITS, type ImaMeasurementsWire } from '@rackseal/node-api-contracts';

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
 * The entries the server asked for (`fromEntry` on) of the list at `path`, as the finish call's
 * `ima`, read after the quote was made (IMA appends an entry before it extends PCR 10, so the list
 * may run ahead of the quote, never behind it). A list shorter than `fromEntry` belongs to a new
 * boot: it is sent whole, from entry 0, and the server starts the machine's state again. A list
 * that does not exist is sent as no list — the server judges that as a failure, it is not a way
 * around the policy.
 */
export async function readImaWindow(path: string, fromEntry: number): Promise<ImaMeasurementsWire | undefined> {
  const bytes = await readBounded(path);
  if (bytes === undefined) {
    return undefined;
  }
  let entries;
  try {
    entries = parseBinaryMeasurementList(bytes);
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

async function readBounded(path: string): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
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
