import { type KeyBlob, marshalKeyBlob, objectName, unmarshalKeyBlob } from '@rackseal/tpm2';
import { StateCorruptError, StateNotEnrolledError } from './state-errors';
import { readStateFile, writeStateFile } from './state-files';

/**
 * The machine's certified decrypt key in the state dir: `certified-key.blob` (libs/tpm2's key blob:
 * the public area and the private area wrapped by this TPM's storage key, useless elsewhere) and
 * `certified-key.json` naming it as the server recorded it. The blob is written first, so the
 * record never names a key the dir does not hold.
 */
export const CERTIFIED_KEY_BLOB_FILE = 'certified-key.blob';
export const CERTIFIED_KEY_RECORD_FILE = 'certified-key.json';
const MAX_BLOB_BYTES = 8 * 1024;
const MAX_RECORD_BYTES = 4 * 1024;

export interface CertifiedKeyRecord {
  readonly keyId: string;
  /** The key's Name, lowercase hex: the blob's public area hashes to it. */
  readonly name: string;
  readonly algorithm: string;
  readonly certifiedAt: string;
}

export async function saveCertifiedKey(dir: string, blob: KeyBlob, record: CertifiedKeyRecord): Promise<void> {
  await writeStateFile(dir, CERTIFIED_KEY_BLOB_FILE, marshalKeyBlob(blob));
  await writeStateFile(dir, CERTIFIED_KEY_RECORD_FILE, Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8'));
}

/**
 * The recorded key with its blob, or undefined when there is none or the two do not agree (a
 * crash between the writes, a damaged file): then the agent certifies a new key.
 */
export async function loadCertifiedKey(dir: string): Promise<{ record: CertifiedKeyRecord; blob: KeyBlob } | undefined> {
  try {
    const record = JSON.parse((await readStateFile(dir, CERTIFIED_KEY_RECORD_FILE, MAX_RECORD_BYTES)).toString('utf8')) as Partial<CertifiedKeyRecord> | null;
    if (typeof record?.keyId !== 'string' || typeof record.name !== 'string') {
      return undefined;
    }
    const blob = unmarshalKeyBlob(await readStateFile(dir, CERTIFIED_KEY_BLOB_FILE, MAX_BLOB_BYTES));
    return objectName(blob.public).toString('hex') === record.name ? { record: record as CertifiedKeyRecord, blob } : undefined;
  } catch (error) {
    if (error instanceof StateNotEnrolledError || error instanceof StateCorruptError || error instanceof SyntaxError || (error instanceof Error && /key blob|TpmParse/.test(`${error.name} ${error.message}`))) {
      return undefined;
    }
    throw error;
  }
}
